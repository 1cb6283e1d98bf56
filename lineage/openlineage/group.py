"""Group commit of OpenLineage events: concurrent events stored in one store transaction.

A store that can hold several writes in one transaction (``graph.transaction()``) takes a
group of events at once; one that reads and writes a group's state set-based (SQLite's and
Neo4j's ``artifact_states``...) has the group mapped in memory and written in a few statements
(:mod:`lineage.openlineage.plan`; ``SET_BASED`` off: event by event, as below). Event by
event, SQLite (with ``atomic()``, a savepoint) stores each event in a savepoint of its own
(an event refused halfway is undone alone, the others stay), the reference manifests of the
whole group written at once, then one commit. Neo4j has no savepoints:
its group is all or nothing, and when one event fails the group's events are stored again
one by one, each as it would be alone. The manifests are
as durable as the commit that names them: over SQLite and a local blob store, staged in that
very transaction and written to their files unsynced (:mod:`lineage.storage.staging`: no
wait on the disk in a group); else durable before it (a local blob store's
``put_bytes_many``: one ``fdatasync`` of its journal for the group; another store: each
blob's own sync, 8 at once). Every event of the group is stored (committed) when
:func:`ingest_group` returns: what the server answers ``201`` to.

:class:`GroupWriter` gathers the events that reach the server while a group is being
written into the next group (no timer: a lone event is written at once), a batch's events
among them, in order.

>>> results = ingest_group(service, [check_event(a), check_event(b)])  # Ingested or errors
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, cast, runtime_checkable

from lineage.errors import LineageError
from lineage.manifest import Encoded, remember_encoded, store_encoded
from lineage.openlineage.ingest import Ingested, ingest
from lineage.openlineage.plan import ingest_planned
from lineage.service import Service
from lineage.storage.blobs import BlobStore
from lineage.storage.graph import GroupState
from lineage.storage.staging import Staging

__all__ = ["JOURNAL_MIN", "MAX_GROUP", "SET_BASED", "GroupWriter", "Transactional", "ingest_group"]

logger = logging.getLogger(__name__)

MAX_GROUP = 256  # events in one transaction
# events pending before a second group is written beside one in flight: a group's fixed cost
# (~5 ms of CPU over Neo4j, its three round trips) is worth sharing out
LANE_MIN = int(os.environ.get("LINEAGE_LANE_MIN", "4"))
# a store that reads and writes a group set-based (SQLite) takes it so (lineage.openlineage.plan)
SET_BASED = True
_FLUSH_THREADS = 8  # manifests written at once: concurrent fsyncs share the journal's commits
# blobs from which a group's manifests go through the store's journal (put_bytes_many): fewer
# (one event's: 4) are synced each on its own, 8 at once, which answered a lone event sooner
# (bench/README.md: 3.4-5.2 ms against 7.3-11.8 for a START alone, under load)
JOURNAL_MIN = 8


@runtime_checkable
class Transactional(Protocol):
    """A graph store whose writes on one thread can be grouped in one transaction."""

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...


class _Deferred:
    """A blob store whose ``put_bytes`` waits for :meth:`flush` (the group's manifests),
    while ``missing`` already counts them as stored. Everything else is the store's own.

    Where ``graph`` and the blob store can stage blobs (:mod:`lineage.storage.staging`),
    every manifest the group names is staged with it, there or not: a file already there
    may be unsynced (a group that did not commit wrote it) or damaged (a power loss)."""

    def __init__(self, blobs: BlobStore, graph: object = None) -> None:
        self.blobs = blobs
        self.url = blobs.url
        self.pending: dict[str, bytes] = {}
        self.started: list[Future[str]] = []  # start_flush's, waited for by flush
        self.staging = Staging.of(graph, blobs) if graph is not None else None
        self.writing: set[str] = set()  # staged blobs given to staging.write_soon
        if self.staging is not None:
            self.staging.recover_once()  # outside the group's transaction

    def __getattr__(self, name: str) -> Any:
        return getattr(self.blobs, name)

    def missing(self, digests: Iterable[str]) -> set[str]:
        wanted = [d for d in digests if d not in self.pending]
        if self.staging is not None:
            return set(wanted)
        return self.blobs.missing(wanted) if wanted else set()

    def committed(self) -> None:
        """The group's transaction is committed: its staged blobs are retired later."""
        if self.staging is not None:
            self.staging.committed()

    def put_encoded(self, encoded: Encoded) -> None:
        """A manifest encoded and hashed already (:func:`lineage.manifest.encode`), its
        blobs deferred as :meth:`put_bytes` defers them, without hashing them again."""
        if self.staging is None:  # put even if there: the store makes a young file durable
            store_encoded(self, encoded, every_page=True)
            return
        for digest, page in encoded.pages:
            self.pending.setdefault(digest, page)
        remember_encoded(encoded)
        self.pending.setdefault(encoded.digest, encoded.root)

    def put_bytes(self, data: bytes) -> str:
        from lineage.hashing import hash_bytes

        digest = hash_bytes(data)
        self.pending.setdefault(digest, data)
        return digest

    @contextlib.contextmanager
    def undone_on_error(self) -> Iterator[None]:
        """What the block adds is forgotten if it raises. Where blobs are staged, what it
        added is given to the staging's writer once it succeeds (an event's manifests:
        written by the writer's files process while the group goes on, where it has one)."""
        before = set(self.pending)
        try:
            yield
        except BaseException:
            for digest in set(self.pending) - before:
                del self.pending[digest]
            raise
        if self.staging is not None:
            added = [
                (d, data)
                for d, data in self.pending.items()
                if d not in before and d not in self.writing
            ]
            if added:
                try:
                    self.staging.write_soon(added)
                except Exception:  # noqa: BLE001 - left pending: flush writes them (or raises)
                    return
                self.writing.update(d for d, _ in added)

    def start_flush(self) -> None:
        """Start storing the pending blobs in the background (:meth:`flush` waits for
        them): Neo4j's group has them fsynced while its write statement runs; or, where
        they can be staged, stage them now (sent with that statement)."""
        if self.staging is not None:
            self._stage()
            return
        pending, self.pending = list(self.pending.values()), {}
        self.started += [_flush_pool().submit(self.blobs.put_bytes, data) for data in pending]

    def _stage(self) -> None:
        """Stage the pending blobs in the group's transaction, each in its file first (those
        an event's success gave the staging's writer already, and the rest)."""
        assert self.staging is not None
        writing, self.writing = self.writing, set()
        staged, self.pending = list(self.pending.items()), {}
        self.staging.write_soon([(d, data) for d, data in staged if d not in writing])
        self.staging.written()  # every file there before the commit that names it
        if staged:
            self.staging.stage(staged)

    def abandoned(self) -> None:
        """The group's transaction did not commit: the files it wrote unsynced are made
        durable (one sync), so that a blob store that finds one there later (its events
        stored alone) can rely on it."""
        if self.staging is not None:
            self.staging.blobs.sync()

    def flush(self, pool: ThreadPoolExecutor) -> None:
        """Store every pending blob durably: with one sync where the store journals small
        blobs (a local one's ``put_bytes_many``), else each as ``put_bytes`` does, at once.
        Those :meth:`start_flush` started before are waited for (or their error raised)."""
        started, self.started = self.started, []
        for future in started:
            future.result()
        if self.staging is not None:  # as durable as the commit, in its transaction
            self._stage()
            return
        pending, self.pending = list(self.pending.values()), {}
        many = getattr(self.blobs, "put_bytes_many", None)
        if many is not None and len(pending) >= JOURNAL_MIN:
            many(pending)
        elif len(pending) == 1:
            self.blobs.put_bytes(pending[0])
        elif pending:
            for _ in pool.map(self.blobs.put_bytes, pending):
                pass


_pool: ThreadPoolExecutor | None = None


def _flush_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_FLUSH_THREADS, thread_name_prefix="lineage-manifests")
    return _pool


def _set_based(graph: object) -> bool:
    """Whether a group over ``graph`` is mapped in memory and written set-based (a store
    with the optional :class:`~lineage.storage.graph.GroupState` calls)."""
    # not isinstance(graph, GroupState): a runtime protocol check costs ~0.1 ms a group
    return SET_BASED and all(callable(getattr(graph, name, None)) for name in _GROUP_STATE)


_GROUP_STATE = sorted(
    name for name, value in vars(GroupState).items() if not name.startswith("_") and callable(value)
)


def ingest_group(
    service: Service, events: Sequence[Mapping[str, Any]]
) -> list[Ingested | Exception]:
    """Store checked events in one transaction where the graph store can (else one by one);
    for each event, what it stored or the error that refused it (nothing of it stored)."""
    graph = service.graph
    # not isinstance(graph, Transactional): a runtime protocol check costs ~50 µs a call
    if not callable(getattr(graph, "transaction", None)):
        return [_one(lambda e=event: ingest(service, e)) for event in events]  # type: ignore[misc]
    store = cast(Transactional, graph)
    if not hasattr(store, "atomic"):
        return _all_or_each(service, store, events)
    blobs = _Deferred(service.blobs, graph)
    grouped = _grouped(service, blobs)
    if _set_based(graph):
        with store.transaction():
            out = ingest_planned(grouped, events, blobs)
            blobs.flush(_flush_pool())  # durable before the commit that names them (or in it)
        blobs.committed()
        return out
    # one savepoint an event (SQLite's atomic(): not one a write as well)
    unit = store.atomic
    out = []
    with store.transaction():
        for event in events:

            def one(event: Mapping[str, Any] = event) -> Ingested:
                with blobs.undone_on_error(), unit():
                    return ingest(grouped, event)

            out.append(_one(one))
        blobs.flush(_flush_pool())  # durable before the commit that names them (or in it)
    blobs.committed()
    return out


def _all_or_each(
    service: Service, graph: Transactional, events: Sequence[Mapping[str, Any]]
) -> list[Ingested | Exception]:
    """A store without savepoints (Neo4j): the whole group in one transaction; if one
    event fails, none of the group is committed and each is stored again alone, as it
    would be without a group (each store call its own transaction, retried by the driver
    when transient), so a failing event never takes its neighbours down."""
    blobs = _Deferred(service.blobs, graph)
    grouped = _grouped(service, blobs)
    try:
        with graph.transaction():
            out: list[Ingested | Exception]
            if _set_based(graph):
                # a refused event writes nothing there: the others' group goes on
                out = ingest_planned(grouped, events, blobs)
            else:
                out = [ingest(grouped, event) for event in events]
            blobs.flush(_flush_pool())  # durable before the commit that names them (or in it)
        blobs.committed()
        return out
    except Exception as error:  # noqa: BLE001 - nothing of the group is stored: each again, alone
        # an event refused fails the group by design; anything else (a deadlock, another
        # writer's version) costs a group's throughput, and an operator should hear of it
        level = logging.INFO if isinstance(error, LineageError) else logging.WARNING
        logger.log(
            level, "a group of %d events failed (%r); each is stored alone", len(events), error
        )
        blobs.abandoned()
    return [_one(lambda e=event: ingest(service, e)) for event in events]  # type: ignore[misc]


def _grouped(service: Service, blobs: _Deferred) -> Service:
    grouped = copy.copy(service)  # not Service(...): its __init__ asks the OS for the user
    grouped.blobs = blobs
    return grouped


def _one(store: Callable[[], Ingested]) -> Ingested | Exception:
    try:
        return store()
    except Exception as error:  # noqa: BLE001 - answered to that event's sender alone
        return error


class GroupWriter:
    """Events from concurrent requests, written in groups by threads of its own.

    ``await writer.store(event)`` returns once the event is committed (or raises what
    refused it). Used from one event loop. ``recheck``, when given, is called in the
    writer's thread before each group with the distinct ``sender`` of its events (the
    server's: the write token each came with) and returns those it now refuses, with their
    errors: their events get that error and store nothing; the others are written.

    Long-lived threads, not a pool's: a group is handed over through a C queue (no
    ``Condition`` in Python), and the store's per-thread connection (SQLite's, with its
    prepared statements) is always the same one; a fifth less server CPU an event than
    anyio's worker threads (bench/README.md).

    ``lanes`` groups are written at once (the graph store's ``group_lanes``, else one): over
    Neo4j, whose transactions lock only what they write, a second group is mapped while the
    first waits on the database. A group takes the events that arrived, in order, up to the
    first that :meth:`Claims.clashes` with a group in flight (the same run, or a dataset one of
    them writes); that one waits for the next group, and so does everything after it.
    """

    def __init__(
        self,
        service: Service,
        recheck: Callable[[set[Any]], Mapping[Any, Exception]] | None = None,
        lanes: int | None = None,
    ) -> None:
        self.service = service
        self.recheck = recheck
        if lanes is None:
            lanes = int(getattr(service.graph, "group_lanes", 1))
            if given := os.environ.get("LINEAGE_OPENLINEAGE_LANES", "").strip():
                lanes = int(given) if given.isdigit() else lanes
        self.lanes = max(1, lanes)
        self._thread = ThreadPoolExecutor(self.lanes, thread_name_prefix="lineage-openlineage")
        self._pending: list[tuple[Mapping[str, Any], asyncio.Future[Ingested], Hashable]] = []
        self._flying: list[Claims] = []  # what the groups being written claim
        self._tasks: set[asyncio.Task[None]] = set()

    async def store(self, event: Mapping[str, Any], sender: Hashable = None) -> Ingested:
        future: asyncio.Future[Ingested] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future, sender))
        self._start()
        return await future

    async def store_many(self, events: Sequence[Mapping[str, Any]]) -> list[Ingested | Exception]:
        """Each event stored in order, in the groups of whatever else is arriving; for each,
        what it stored or the error that refused it (a batch's answer)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Ingested]] = [loop.create_future() for _ in events]
        self._pending.extend(
            (event, future, None) for event, future in zip(events, futures, strict=True)
        )
        self._start()
        return list(await asyncio.gather(*futures, return_exceptions=True))  # type: ignore[arg-type]

    async def aclose(self) -> None:
        """Wait for the groups being written (the server's shutdown)."""
        await asyncio.to_thread(self._thread.shutdown, True)

    def _start(self) -> None:
        """Groups of what is pending set writing, while a lane is free and the first
        pending event clashes with no group in flight."""
        while self._pending and len(self._flying) < self.lanes:
            if self._flying and len(self._pending) < LANE_MIN:
                return  # too few to be worth a transaction beside the one in flight
            group, claims = self._next()
            if not group:
                return
            del self._pending[: len(group)]
            self._flying.append(claims)
            task = asyncio.get_running_loop().create_task(self._write(group, claims))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _next(self) -> tuple[list[Any], Claims]:
        claims = Claims()
        group = []
        for item in self._pending[:MAX_GROUP]:
            its = Claims.of(item[0])
            if any(its.clashes(flying) for flying in self._flying):
                break
            claims.add(its)
            group.append(item)
        return group, claims

    async def _write(self, group: list[Any], claims: Claims) -> None:
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._thread, self.write, [(e, s) for e, _, s in group]
            )
        except BaseException as error:  # the whole group failed: nothing of it stored
            for _, future, _ in group:
                if not future.done():
                    future.set_exception(
                        error if isinstance(error, Exception) else RuntimeError(str(error))
                    )
            if not isinstance(error, Exception):
                raise
            return
        finally:
            self._flying.remove(claims)
            self._start()
        for (_, future, _), result in zip(group, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def write(
        self, group: Sequence[tuple[Mapping[str, Any], Hashable]]
    ) -> list[Ingested | Exception]:
        """One group written, in the calling thread (the writer's, or the writer process's:
        :mod:`lineage.openlineage.writer`): its senders checked again, then its events stored."""
        senders = {sender for _, sender in group if sender is not None}
        refused = self.recheck(senders) if senders and self.recheck else {}
        if not refused:
            return ingest_group(self.service, [event for event, _ in group])
        kept = [event for event, sender in group if sender not in refused]
        stored = iter(ingest_group(self.service, kept) if kept else [])
        return [refused[sender] if sender in refused else next(stored) for _, sender in group]


class Claims:
    """What a group of events may write (``mine``: its runs, the datasets it outputs) and
    read (``shared``: its inputs), by the names the events give; ``whole``: anything (an
    event that is not a run's, or not read as one)."""

    __slots__ = ("mine", "shared", "whole")

    def __init__(self) -> None:
        self.mine: set[Any] = set()
        self.shared: set[Any] = set()
        self.whole = False

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Claims:
        claims = cls()
        try:
            run = event["run"]
            claims.mine.add(("run", run["runId"]))
            parent = (run.get("facets") or {}).get("parent")
            if parent:
                claims.mine.add(("run", parent["run"]["runId"]))
            for kind, into in (("outputs", claims.mine), ("inputs", claims.shared)):
                for dataset in event.get(kind) or ():
                    into.add((dataset["namespace"], dataset["name"]))
        except (KeyError, TypeError, AttributeError):
            claims.whole = True  # a DatasetEvent, a JobEvent: alone in its lane
        return claims

    def add(self, other: Claims) -> None:
        self.mine |= other.mine
        self.shared |= other.shared
        self.whole |= other.whole

    def clashes(self, other: Claims) -> bool:
        """Whether the two may touch one thing that either writes."""
        if self.whole or other.whole:
            return True
        return not (
            self.mine.isdisjoint(other.mine)
            and self.mine.isdisjoint(other.shared)
            and other.mine.isdisjoint(self.shared)
        )
