"""``lineage server``: the ASGI application of :mod:`lineage.server.app`, served by uvicorn.

The server holds nothing of its own, so ``workers`` processes (or several hosts behind a
load balancer) can serve one graph store and one blob store. Workers are started by uvicorn
from :func:`app_from_env`, which reads the settings :func:`serve` puts in the environment.

Bound to a loopback address, the server lets anyone on the machine read without a token
(unless ``require_token``); bound to anything else, every request needs one.
"""

from __future__ import annotations

import errno
import gc
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

from lineage.errors import InvalidInput, ServerError
from lineage.server.app import (
    DEFAULT_MAX_UPLOAD,
    DEFAULT_MAX_UPLOADS,
    DEFAULT_UPLOAD_IDLE_TIMEOUT,
    check_upload_settings,
    create_app,
    open_service,
)
from lineage.server.auth import is_loopback
from lineage.server.http import HTTP, LOOP

__all__ = ["app_from_env", "background", "serve"]

logger = logging.getLogger(__name__)

_REQUIRE_TOKEN = "LINEAGE_SERVER_REQUIRE_TOKEN"
_MAX_UPLOAD = "LINEAGE_SERVER_MAX_UPLOAD"
_MAX_UPLOADS = "LINEAGE_SERVER_MAX_UPLOADS"
_UPLOAD_IDLE_TIMEOUT = "LINEAGE_SERVER_UPLOAD_IDLE_TIMEOUT"
_PROJECT = "LINEAGE_PROJECT"  # the CLI's own variable, as -p (a safe name) after serve
# A worker's youngest generation is collected when this many of its objects are alive (the
# interpreter's default is 700). A request makes no reference cycle (its objects go when it
# does), but a 100-node answer holds a few thousand objects at once: with 700, nearly every
# request paid a collection that found nothing, promoting its live objects to the older
# generations, whose passes came every few dozen requests. Under 50,000 (traversal's
# _BIG_ANSWER), so that a young count past it still means a big answer.
YOUNG_OBJECTS = 20_000


def serve(
    store: str | None = None,
    blobs: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    require_token: bool = False,
    *,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    max_uploads: int = DEFAULT_MAX_UPLOADS,
    upload_idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT,
    project: str | None = None,
) -> None:
    """Serve the stores named by ``store`` and ``blobs`` (default: as the SDK) until stopped;
    ``project`` is the default project (the dashboard's index opens on it).

    Raises :class:`~lineage.errors.ServerError` when ``host:port`` cannot be bound (in use).

    >>> serve("neo4j://graph:7687", "s3://bucket/blobs", host="0.0.0.0", workers=4)
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"workers must be a positive integer, got {workers!r}")
    if not is_loopback(host) and not require_token:
        logger.warning("bound to %s, not loopback: every request needs a token", host)
        require_token = True
    check_upload_settings(max_uploads, upload_idle_timeout)  # here, once, not in each worker
    open_service(store, blobs).graph.close()  # fail here, once, if a store cannot be opened
    if store:
        os.environ["LINEAGE_STORE"] = store
    if blobs:
        os.environ["LINEAGE_BLOBS"] = blobs
    os.environ[_REQUIRE_TOKEN] = "1" if require_token else "0"
    os.environ[_MAX_UPLOAD] = str(max_upload)
    os.environ[_MAX_UPLOADS] = str(max_uploads)
    os.environ[_UPLOAD_IDLE_TIMEOUT] = repr(float(upload_idle_timeout))
    if project:
        os.environ[_PROJECT] = project
    else:
        os.environ.pop(_PROJECT, None)
    _run(
        uvicorn.Config(
            "lineage.server.serving:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http=HTTP,
            loop=LOOP,
        )
    )


def _run(config: uvicorn.Config) -> None:
    sock = _bind(config.host, config.port)
    shown = f"[{config.host}]" if ":" in config.host else config.host
    # uvicorn announces the address only for a socket it bound itself; in its log format
    logging.getLogger("uvicorn.error").info(
        "lineage serving on http://%s:%d (Ctrl+C to quit)", shown, sock.getsockname()[1]
    )
    with sock:
        if config.workers == 1:
            uvicorn.Server(config).run(sockets=[sock])
        else:
            Multiprocess(config, sockets=[sock]).run()


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port is a clear error, not uvicorn's
    log line and exit code. IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets of
    that proto, and without it every keep-alive response waits ~40 ms for a delayed ACK
    (uvicorn issue #3149; measured in bench/README.md)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(
                f"port {port} on {host} is in use: {reason}; stop what listens there or "
                "choose another with --port",
                host=host,
                port=port,
            ) from exc
        raise ServerError(
            f"cannot listen on {host} port {port}: {reason}", host=host, port=port
        ) from exc
    sock.set_inheritable(True)
    return sock


def app_from_env() -> Starlette:
    """The application as :func:`serve` configured it, in each worker process.

    What it holds once made (modules, the schema, the stores' clients) lives as long as the
    process: it is moved out of the garbage collector's reach (``gc.freeze``), so that the
    collector's full passes walk only what requests made, not tens of thousands of objects
    that never die (each such pass was a stall of tens of ms in a request's p99). The
    youngest generation is collected less often (:data:`YOUNG_OBJECTS`)."""
    app = create_app(
        os.environ.get("LINEAGE_STORE"),
        os.environ.get("LINEAGE_BLOBS"),
        require_token=os.environ.get(_REQUIRE_TOKEN, "1") != "0",
        max_upload=int(os.environ.get(_MAX_UPLOAD, DEFAULT_MAX_UPLOAD)),
        max_uploads=int(os.environ.get(_MAX_UPLOADS, DEFAULT_MAX_UPLOADS)),
        upload_idle_timeout=float(
            os.environ.get(_UPLOAD_IDLE_TIMEOUT, DEFAULT_UPLOAD_IDLE_TIMEOUT)
        ),
        project=os.environ.get(_PROJECT) or None,
    )
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
    return app


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
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", http=HTTP, loop=LOOP
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="lineage-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ServerError(f"the lineage server did not start on {host} port {port}")
            time.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join()
        app.state.lineage.close()
