"""The server's OpenLineage group writer in a process of its own.

:class:`~lineage.openlineage.group.GroupWriter` writes groups in a thread of the server's
process, whose event loop takes the requests: both run Python under one interpreter lock,
and each of the writer's waits on the disk hands the lock to the loop for up to its switch
interval, so a single event costs the server ~2.2 ms of CPU and the machine's second core
stays half idle (bench/README.md). :class:`ProcessWriter` has the same interface and hands
the groups to a child process (``python -m lineage.openlineage.writer``) over a socket pair:
the loop parses, checks and answers requests; the child maps and writes the groups on the
other core, with a store and blob store of its own opened on the same URLs. Over a local
blob store the child has the manifests' files written by a process of its own in turn
(:mod:`lineage.storage.filewriter`), while it goes on with the group.

Semantics are the thread writer's: the events that arrive while a group is written make the
next group; ``await store(event)`` returns once the event is committed, or raises the error
that refused it (nothing of it stored); a write token revoked since it was known is refused
in the child, before its group. The child starts with the first event (the request waits
for it, a fraction of a second once); if it cannot start, or the store cannot be opened
there, the writer says why once and the thread writer takes the events. If the child dies,
the events it held are answered ``StoreUnavailable`` (their senders retry: the OpenLineage
client does on 5xx) and the next event starts a new one. The child exits when the server
closes the socket (or dies), after the group it is writing.

Frames both ways (:mod:`lineage.framing`): a 4-byte length, then a pickle (our two processes, over a
socket pair no one else holds). To the child: first ``(store, blobs)``, then lists of
``(seq, event, sender)``; from the child: ``"ready"`` or an error message, then lists of
``(seq, refusal)``, ``refusal`` None for stored, else an error as ``(class, message, fields)``.
A server over SQLite writes so; over Neo4j, whose work is done by the database server, in a
thread (``LINEAGE_OPENLINEAGE_WRITER=process`` or ``thread`` decides instead).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from lineage.errors import LineageError, StoreUnavailable
from lineage.framing import frame, frames
from lineage.openlineage.group import MAX_GROUP, GroupWriter
from lineage.storage import local_dir

__all__ = ["ProcessWriter", "wanted"]

logger = logging.getLogger(__name__)

_START_SECONDS = 60.0  # for the child to import lineage and open the stores
_STOP_SECONDS = 10.0  # for the child to finish its group once the socket is closed
Error = tuple[str, str, dict[str, Any]]  # an exception's class (module:qualname), message, fields


def wanted(store: str) -> bool:
    """Whether the server writes OpenLineage groups over ``store`` in a child process: by
    default over an embedded SQLite store, whose writes are the server process's own CPU;
    not over Neo4j, whose work is done in the database server (the writer thread mostly
    waits on it). ``LINEAGE_OPENLINEAGE_WRITER=process`` or ``thread`` decides instead."""
    choice = os.environ.get("LINEAGE_OPENLINEAGE_WRITER", "").strip().lower()
    if choice in ("process", "thread"):
        return choice == "process"
    if choice:
        logger.warning(
            "LINEAGE_OPENLINEAGE_WRITER=%r is neither 'process' nor 'thread': ignored", choice
        )
    return local_dir(store) is not None


def _error(error: BaseException) -> Error:
    kind = type(error)
    fields = {}
    for key, value in vars(error).items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - a field that cannot travel is left out
            continue
        fields[key] = value
    return f"{kind.__module__}:{kind.__qualname__}", str(error), fields


def _exception(error: Error) -> Exception:
    """The exception :func:`_error` described, rebuilt without calling its ``__init__``
    (whose signature varies); a class that cannot be found becomes a LineageError."""
    name, message, fields = error
    module, _, qualname = name.partition(":")
    try:
        kind: Any = importlib.import_module(module)
        for part in qualname.split("."):
            kind = getattr(kind, part)
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            raise TypeError(name)
        rebuilt: Exception = kind.__new__(kind)
        Exception.__init__(rebuilt, message)
    except Exception:  # noqa: BLE001 - not a class of ours: the message is what matters
        return LineageError(message)
    rebuilt.__dict__.update(fields)
    return rebuilt


class _Channel(asyncio.Protocol):
    """The server's end of the socket: answers routed to the futures waiting for them."""

    def __init__(self, lost: Callable[[Exception], None]) -> None:
        self.buffer = bytearray()
        self.waiting: dict[int, asyncio.Future[None]] = {}
        self.ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._lost = lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for message in frames(self.buffer):
            if not self.ready.done():
                self.ready.set_result(message)
                continue
            for seq, refusal in message:
                future = self.waiting.pop(seq, None)
                if future is None or future.done():
                    continue
                if refusal is None:
                    future.set_result(None)
                else:
                    future.set_exception(_exception(refusal))

    def connection_lost(self, exc: Exception | None) -> None:
        gone = StoreUnavailable("the OpenLineage writer process stopped; send the event again")
        if not self.ready.done():
            self.ready.set_result("the writer process stopped as it started")
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(gone)
        self.waiting.clear()
        self._lost(gone)


class ProcessWriter:
    """:class:`GroupWriter`'s interface; the groups written by a child process.

    ``fallback`` is the thread writer that takes the events when no child can be started
    (said once, in the server's log). Used from one event loop.
    """

    def __init__(self, store: str, blobs: str, fallback: GroupWriter) -> None:
        self.store_url = store
        self.blobs_url = blobs
        self.fallback = fallback
        self._child: subprocess.Popen[bytes] | None = None
        self._channel: _Channel | None = None
        self._starting: asyncio.Task[_Channel | None] | None = None
        self._seq = 0
        self._failed = False  # the child could not start: the thread writer from now on

    async def store(self, event: Mapping[str, Any], sender: Hashable = None) -> None:
        channel = await self._ready()
        if channel is None:
            await self.fallback.store(event, sender)
            return
        (future,) = self._send(channel, [(event, sender)])
        await future

    async def store_many(self, events: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Each event stored in order; for each, None or the error that refused it."""
        channel = await self._ready()
        if channel is None:
            return await self.fallback.store_many(events)
        futures = self._send(channel, [(event, None) for event in events])
        return list(await asyncio.gather(*futures, return_exceptions=True))

    def _send(
        self, channel: _Channel, items: Sequence[tuple[Mapping[str, Any], Hashable]]
    ) -> list[asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        futures = []
        numbered = []
        for event, sender in items:
            self._seq += 1
            future: asyncio.Future[None] = loop.create_future()
            channel.waiting[self._seq] = future
            futures.append(future)
            numbered.append((self._seq, event, sender))
        assert channel.transport is not None
        for start in range(0, len(numbered), MAX_GROUP):  # frames of a group's size at most
            channel.transport.write(frame(numbered[start : start + MAX_GROUP]))
        return futures

    async def _ready(self) -> _Channel | None:
        if self._failed:
            return None
        if self._channel is not None:
            return self._channel
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start())
        try:
            return await asyncio.shield(self._starting)
        finally:
            if self._starting is not None and self._starting.done():
                self._starting = None

    async def _start(self) -> _Channel | None:
        ours, theirs = socket.socketpair()
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "lineage.openlineage.writer", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        except OSError as error:
            ours.close()
            self._give_up(f"cannot start it: {error}")
            return None
        finally:
            theirs.close()
        channel: _Channel | None = None
        try:
            loop = asyncio.get_running_loop()
            _, channel = await loop.connect_accepted_socket(lambda: _Channel(self._lost), ours)
            assert channel.transport is not None
            channel.transport.write(frame((self.store_url, self.blobs_url)))
            answer = await asyncio.wait_for(asyncio.shield(channel.ready), _START_SECONDS)
        except TimeoutError:
            answer = f"not ready after {_START_SECONDS:.0f} s"
        except Exception as error:  # noqa: BLE001 - the thread writer takes the events
            answer = f"{type(error).__name__}: {error}"
        if answer != "ready":
            if channel is not None and channel.transport is not None:
                channel.transport.close()  # the child reads the end of its socket and exits
            else:
                ours.close()
            await asyncio.to_thread(_stop, child)
            self._give_up(answer)
            return None
        assert channel is not None
        self._child, self._channel = child, channel
        logger.info("OpenLineage events are written by process %d", child.pid)
        return channel

    def _give_up(self, why: str) -> None:
        self._failed = True
        logger.warning(
            "the OpenLineage writer process did not start (%s); events are written in a "
            "thread of the server",
            why,
        )

    def _lost(self, error: Exception) -> None:
        if self._channel is not None:
            logger.warning("%s", error)
        self._channel = None
        child, self._child = self._child, None
        if child is not None:  # it closed its end: it is gone, or going
            if child.poll() is None:
                child.kill()
            child.wait()

    async def aclose(self) -> None:
        """Stop the child once it has written what it holds (the server's shutdown)."""
        channel, child = self._channel, self._child
        self._channel = self._child = None
        if channel is not None and channel.transport is not None:
            channel.transport.close()  # the child reads the end, finishes its group, exits
        if child is not None:
            await asyncio.to_thread(_stop, child)
        await self.fallback.aclose()


def _stop(child: subprocess.Popen[bytes]) -> None:
    try:
        child.wait(_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


# the child ----------------------------------------------------------------------------------


def _serve(sock: socket.socket) -> None:
    """Read groups from ``sock``, write each, answer; until the server closes it."""
    from lineage.server.auth import refused_writers
    from lineage.service import Service
    from lineage.storage import open_blobs, open_graph
    from lineage.storage.staging import Staging

    buffer = bytearray()
    config = _receive(sock, buffer)
    if not config:
        return
    store, blobs = config[0]
    try:
        graph = open_graph(store)
    except Exception as error:  # noqa: BLE001 - said to the server, which writes in a thread
        sock.sendall(frame(f"cannot open {store}: {error}"))
        return
    opened: Any = None
    try:
        service = Service(graph, opened := open_blobs(blobs))
        writer = GroupWriter(service, lambda senders: refused_writers(graph, senders))
        staging = Staging.of(graph, opened)
        if staging is not None:  # the manifests' files written on the other core
            staging.use_files_process()
        sock.sendall(frame("ready"))
        pending = [item for message in config[1:] for item in message]
        while True:
            if not pending:
                messages = _receive(sock, buffer)
                if not messages:
                    return  # the server closed the socket
                pending = [item for message in messages for item in message]
            group, pending = pending[:MAX_GROUP], pending[MAX_GROUP:]
            try:
                results: list[Any] = writer.write([(event, s) for _, event, s in group])
            except Exception as error:  # noqa: BLE001 - the whole group failed: none stored
                logger.warning("a group of %d events failed: %s", len(group), error)
                results = [error] * len(group)
            refusals = [
                (seq, None if not isinstance(result, BaseException) else _error(result))
                for (seq, _, _), result in zip(group, results, strict=True)
            ]
            sock.sendall(frame(refusals))
            pending += [item for message in _receive(sock, buffer, wait=False) for item in message]
    finally:
        _retire(graph, opened)
        graph.close()


def _retire(graph: Any, blobs: Any) -> None:
    """The blobs this writer staged made durable before it ends (else the next writer, or
    a command opening the store later, recovers them)."""
    from lineage.storage.staging import Staging

    staging = Staging.of(graph, blobs)
    try:
        if staging is not None:
            staging.close()
            staging.retire()
    except Exception as error:  # noqa: BLE001 - left staged, for the next writer
        logger.warning("cannot retire the staged blobs: %s", error)


def _receive(sock: socket.socket, buffer: bytearray, *, wait: bool = True) -> list[Any]:
    """The whole messages that arrived (waiting for one when ``wait``); [] at the end."""
    sock.setblocking(wait)
    messages: list[Any] = []
    while True:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return messages
        if not data:
            return messages
        buffer += data
        messages += frames(buffer)
        if messages:
            wait = False
            sock.setblocking(False)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="lineage writer: %(message)s")
    # the server stops it by closing the socket, after the group it is writing: a Ctrl-C
    # in the server's terminal, or a TERM to its process group, does not cut a group short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with socket.socket(fileno=int(args[0])) as sock:
        _serve(sock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
