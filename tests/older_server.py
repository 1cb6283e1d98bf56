"""A lineage server as one from before ``POST /blobs/batch``: today's application without that
route, served by uvicorn from a thread on a free loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from lineage.server.http import HTTP, LOOP


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """``app`` served by uvicorn from a thread, on a free loopback port; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", http=HTTP, loop=LOOP)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        app.state.lineage.close()


def older(app: Starlette) -> Starlette:
    """The same server without ``POST /blobs/batch``: what a server from before it answers."""
    app.router.routes = [
        r for r in app.router.routes if not (isinstance(r, Route) and r.path == "/blobs/batch")
    ]
    return app
