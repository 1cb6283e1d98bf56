"""``lineage server``: the ASGI application of :mod:`lineage.server.app`, served by uvicorn.

The server holds nothing of its own, so ``workers`` processes (or several hosts behind a
load balancer) can serve one graph store and one blob store. Workers are started by uvicorn
from :func:`app_from_env`, which reads the settings :func:`serve` puts in the environment.

Bound to a loopback address, the server lets anyone on the machine read without a token
(unless ``require_token``); bound to anything else, every request needs one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors.multiprocess import Multiprocess

from lineage.errors import InvalidInput, StoreUnavailable
from lineage.server.app import DEFAULT_MAX_UPLOAD, create_app, open_service
from lineage.server.auth import is_loopback

__all__ = ["app_from_env", "background", "serve"]

logger = logging.getLogger(__name__)

_REQUIRE_TOKEN = "LINEAGE_SERVER_REQUIRE_TOKEN"
_MAX_UPLOAD = "LINEAGE_SERVER_MAX_UPLOAD"


def serve(
    store: str | None = None,
    blobs: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    require_token: bool = False,
    *,
    max_upload: int = DEFAULT_MAX_UPLOAD,
) -> None:
    """Serve the stores named by ``store`` and ``blobs`` (default: as the SDK) until stopped.

    >>> serve("neo4j://graph:7687", "s3://bucket/blobs", host="0.0.0.0", workers=4)
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"workers must be a positive integer, got {workers!r}")
    if not is_loopback(host) and not require_token:
        logger.warning("bound to %s, not loopback: every request needs a token", host)
        require_token = True
    open_service(store, blobs).graph.close()  # fail here, once, if a store cannot be opened
    if store:
        os.environ["LINEAGE_STORE"] = store
    if blobs:
        os.environ["LINEAGE_BLOBS"] = blobs
    os.environ[_REQUIRE_TOKEN] = "1" if require_token else "0"
    os.environ[_MAX_UPLOAD] = str(max_upload)
    _run(
        uvicorn.Config(
            "lineage.server.serving:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
        )
    )


def _run(config: uvicorn.Config) -> None:
    if config.workers == 1:
        uvicorn.Server(config).run()
        return
    # uvicorn binds the shared listener with proto 0, so asyncio never sets TCP_NODELAY on
    # accepted connections and every keep-alive response waits ~40 ms for a delayed ACK
    # (uvicorn issue #3149; measured in bench/README.md). Rebind it as IPPROTO_TCP.
    bound = config.bind_socket()
    sock = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())
    Multiprocess(config, sockets=[sock]).run()


def app_from_env() -> Starlette:
    """The application as :func:`serve` configured it, in each worker process."""
    return create_app(
        os.environ.get("LINEAGE_STORE"),
        os.environ.get("LINEAGE_BLOBS"),
        require_token=os.environ.get(_REQUIRE_TOKEN, "1") != "0",
        max_upload=int(os.environ.get(_MAX_UPLOAD, DEFAULT_MAX_UPLOAD)),
    )


@contextmanager
def background(
    store: str | None = None,
    blobs: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **options: Any,
) -> Iterator[str]:
    """Serve from a thread of this process until the block ends; yield the base URL.

    For the demo, benchmarks and tests: a real HTTP server on a free loopback port.
    ``options`` go to :func:`~lineage.server.app.create_app`.

    >>> with background(store, blobs) as url:
    ...     httpx.post(f"{url}/graphql", json={"query": "{ projects { name } }"})
    """
    app = create_app(store, blobs, **options)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="lineage-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise StoreUnavailable(f"the lineage server did not start on {host}:{port}")
            time.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join()
        app.state.lineage.close()
