"""A lineage server in a child process on a fixed port: one a test can kill and start again.

The child serves the real application of :func:`lineage.server.app.create_app` with uvicorn, over
the stores it is given, behind one ASGI middleware that writes down every answered blob
upload and crashes the process where it is told to. Nothing on the client side is
touched: the SDK talks HTTP to a real server.

    server = ServerProcess(store, blobs, port=free_port(), log=tmp_path / "puts.log")
    server.start(crash_after=40)  # PUTs one at a time; SIGKILL right after the 40th answer
    server.start(crash_on="createRun")  # SIGKILL once such a GraphQL request is done, unanswered
    server.wait()                 # until it has died
    server.start()                # the same port, the same stores
    server.puts()                 # [(pid, digest, status), ...] of every answered PUT
    server.stop()

With ``crash_after``, the child handles one PUT at a time, so that exactly that many blobs
have landed (and been answered) when it kills itself, and none is half-way through being
published. The child watches its stdin and exits when it closes, so a killed test run leaves
no server behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class ServerProcess:
    """``create_app(store, blobs)`` served by a child process on ``HOST:port``."""

    def __init__(self, store: str, blobs: str, *, port: int, log: Path) -> None:
        self.store = store
        self.blobs = blobs
        self.port = port
        self.log = log
        self.url = f"http://{HOST}:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, crash_after: int = 0, crash_on: str = "", timeout: float = 60) -> None:
        self.stop()  # the previous life, if any (dead by now, or made so)
        command = [sys.executable, __file__, self.store, self.blobs, str(self.port)]
        command += [str(self.log), "--crash-after", str(crash_after), "--crash-on", crash_on]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"lineage server exited with {self.process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"lineage server on {self.url} did not answer in {timeout}s")
            time.sleep(0.05)

    def wait(self) -> int:
        """Until the child has exited; its exit status (-9: it killed itself)."""
        assert self.process is not None
        return self.process.wait()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the child stops on EOF
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def puts(self) -> list[tuple[int, str, int]]:
        """Every answered ``PUT /blobs/{digest}``: (server pid, digest, HTTP status)."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            pid, digest, status = line.split()
            found.append((int(pid), digest, int(status)))
        return found


class _Faults:
    """Writes down each answered blob PUT; with ``crash_after``, serves PUTs one at a time
    and SIGKILLs the process right after answering that many. With ``crash_on``, SIGKILLs it
    when the answer to a GraphQL request whose body holds that word is about to leave: the
    request has done its work, and the client never hears of it."""

    def __init__(self, app: Any, log: Path, crash_after: int, crash_on: str) -> None:
        self.app = app
        self.log = log
        self.crash_after = crash_after
        self.crash_on = crash_on.encode()
        self.answered = 0
        self.one_at_a_time = asyncio.Lock()

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and self.crash_on and scope["path"] == "/graphql":
            await self._graphql(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] != "PUT":
            await self.app(scope, receive, send)
            return
        status = 0

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        gate = self.one_at_a_time if self.crash_after else contextlib.nullcontext()
        async with gate:
            await self.app(scope, receive, answer)
            with self.log.open("a") as log:
                log.write(f"{os.getpid()} {scope['path'].rsplit('/', 1)[-1]} {status}\n")
            self.answered += 1
            if self.crash_after and self.answered >= self.crash_after:
                os.kill(os.getpid(), signal.SIGKILL)  # a crash: no shutdown, no cleanup

    async def _graphql(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        body = bytearray()

        async def reading() -> Message:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start" and self.crash_on in body:
                os.kill(os.getpid(), signal.SIGKILL)
            await send(message)

        await self.app(scope, reading, answer)


def _serve(store: str, blobs: str, port: int, log: Path, crash_after: int, crash_on: str) -> None:
    import uvicorn

    from lineage.server.app import create_app
    from lineage.server.http import HTTP, LOOP

    app = create_app(store, blobs)
    config = uvicorn.Config(
        _Faults(app, log, crash_after, crash_on),
        host=HOST,
        port=port,
        log_level="warning",
        http=HTTP,  # as `lineage server` reads requests
        loop=LOOP,
    )
    server = uvicorn.Server(config)

    def watch_stdin() -> None:
        sys.stdin.buffer.read()  # returns when the parent closes the pipe or dies
        server.should_exit = True

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A lineage server for tests.")
    parser.add_argument("store")
    parser.add_argument("blobs")
    parser.add_argument("port", type=int)
    parser.add_argument("log", type=Path)
    parser.add_argument("--crash-after", type=int, default=0)
    parser.add_argument("--crash-on", default="")
    args = parser.parse_args(argv)
    _serve(args.store, args.blobs, args.port, args.log, args.crash_after, args.crash_on)
    return 0


if __name__ == "__main__":
    sys.exit(main())
