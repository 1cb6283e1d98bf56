"""The floor under ``lineage server``'s OpenLineage endpoint: the same HTTP stack, no lineage.

``bench_openlineage.py --floor`` starts this in a child process and drives it with the same
clients and events as ``lineage server``, so that lineage's figures can be read against what
the stack itself allows on the same machine in the same minutes:

- ``http``: uvicorn with lineage's own HTTP settings (``lineage.server.http``: httptools,
  asyncio, the access log at info as ``lineage server`` has it) and a Starlette route that
  reads the body, parses it as JSON and answers ``201``. Nothing is checked or stored.
- ``commit``: the same, and each event inserted into a SQLite table in WAL mode and committed
  (``synchronous=NORMAL``, as lineage's store) by one writer thread before the answer: a
  store of the raw events with one commit a request, no grouping.

    python bench/floor_server.py PORT http|commit
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lineage.server.http import HTTP, LOOP


def app(mode: str) -> Starlette:
    writer = ThreadPoolExecutor(1)
    db: sqlite3.Connection | None = None
    if mode == "commit":
        path = Path(tempfile.mkdtemp(prefix="floor-")) / "events.db"
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT)")

    def store(body: bytes) -> None:
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO events (body) VALUES (?)", (body.decode(),))
        db.execute("COMMIT")

    async def lineage(request: Request) -> Response:
        body = await request.body()
        json.loads(body)
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(writer, store, body)
        return Response(b"{}", status_code=201, media_type="application/json")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/api/v1/lineage", lineage, methods=["POST"]),
            Route("/healthz", health),
        ]
    )


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode not in ("http", "commit"):
        raise SystemExit(f"mode must be http or commit, not {mode!r}")
    uvicorn.run(app(mode), host="127.0.0.1", port=port, http=HTTP, loop=LOOP)


if __name__ == "__main__":
    main()
