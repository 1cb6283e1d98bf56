"""Small blobs kept in a graph store's transaction until the blob store holds them durably.

A group of OpenLineage events names a few reference manifests an event, a few hundred bytes
each. Made durable in a local blob store before the commit that names them, they cost every
group a wait on the disk (a journal's ``fdatasync``, or each file's ``fsync`` and its
folder's): a quarter of a group's time over SQLite, whose own commit does not wait on the
disk (``synchronous=NORMAL``; bench/README.md). Where the graph store can stage blobs
(:class:`StagesBlobs`: SQLite) and the blob store can store them unsynced
(:class:`StoresUnsynced`: a local folder), a group instead

1. writes its manifests to their files, unsynced (every reader sees them at once; a file
   that holds other bytes, a power loss's damage, is written again),
2. stages the same bytes in the graph store, in the transaction that names them: they are
   exactly as durable as that commit, neither more nor less,
3. commits.

A thread syncs the blob store a second later (one ``syncfs``), then forgets the blobs staged
before the sync. After a crash or a power loss, :meth:`Staging.recover` writes every staged
blob that is missing or damaged again, durably, then forgets them: the first group of a
writer does it, and so does every command or server that opens the pair
(:func:`recover_stale`) for blobs staged more than :data:`STALE_SECONDS` ago (their writer is
gone). So a committed version never names a
manifest that is neither in its own database nor durable in its file.

>>> staging = Staging.of(graph, blobs)   # None unless both stores can
>>> with graph.transaction():
...     staging.put([(digest, data)])
>>> staging.committed()                  # retired about a second later
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from lineage.errors import LineageError

__all__ = [
    "RETIRE_SECONDS",
    "STALE_SECONDS",
    "StagesBlobs",
    "Staging",
    "StoresUnsynced",
    "recover_stale",
]

logger = logging.getLogger(__name__)

# staged blobs are retired (the blob store synced, the rows forgotten) this long after a
# commit staged them
RETIRE_SECONDS = 1.0
# staged blobs older than this are a gone writer's (a live one retires them within about a
# second): any service opening the pair recovers them. A power loss, the one thing that can
# damage a file written unsynced, is followed by a reboot that takes longer than this.
STALE_SECONDS = 5.0


@runtime_checkable
class StagesBlobs(Protocol):
    """A graph store that keeps blobs in its transactions (SQLite's ``staged_blobs``)."""

    def stage_blobs(self, blobs: Sequence[tuple[str, bytes]]) -> None: ...
    def staged_blobs(self, *, before: float | None = None) -> list[tuple[int, str, bytes]]: ...
    def last_staged(self) -> int: ...
    def unstage_blobs(self, upto: int) -> None: ...
    def close_thread(self) -> None: ...


@runtime_checkable
class StoresUnsynced(Protocol):
    """A blob store that stores small blobs without waiting for the disk (a local folder)."""

    url: str

    def put_bytes_unsynced(self, blobs: Sequence[tuple[str, bytes]]) -> None: ...
    def sync(self) -> None: ...
    def restore(self, blobs: Iterable[tuple[str, bytes]]) -> int: ...


_instances: weakref.WeakKeyDictionary[object, Staging] = weakref.WeakKeyDictionary()
_instances_lock = threading.Lock()


class Staging:
    """Blobs staged in ``graph``'s transactions for ``blobs`` (one instance a graph store)."""

    def __init__(self, graph: StagesBlobs, blobs: StoresUnsynced) -> None:
        self.graph = graph
        self.blobs = blobs
        self._lock = threading.Lock()
        self._retirer: threading.Thread | None = None
        self._dirty = False
        self._recovered = False

    @classmethod
    def of(cls, graph: object, blobs: object) -> Staging | None:
        """The staging of ``graph`` for ``blobs``; None unless both stores can stage. A
        graph store shared by many blob stores (Neo4j: a server) stages each one's blobs
        apart: its ``staging_for(url)`` is the graph side for the blob store at ``url``."""
        # not isinstance(..., Protocol): a runtime protocol check costs ~50 us a call
        if not all(callable(getattr(blobs, name, None)) for name in _BLOB_CALLS):
            return None
        scoped = getattr(graph, "staging_for", None)
        if not callable(scoped) and not all(
            callable(getattr(graph, name, None)) for name in _GRAPH_CALLS
        ):
            return None
        with _instances_lock:
            found = _instances.get(graph)
            if found is None or found.blobs is not blobs:
                stages = scoped(blobs.url) if callable(scoped) else graph  # type: ignore[attr-defined]
                found = _instances[graph] = cls(stages, blobs)  # type: ignore[arg-type]
            return found

    def put(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Store ``(digest, data)`` blobs unsynced and stage them in the caller's
        transaction; call :meth:`committed` once it is committed."""
        if not self._recovered:
            raise RuntimeError("Staging.put before recover_once(): call it outside a transaction")
        self.blobs.put_bytes_unsynced(blobs)
        self.graph.stage_blobs(blobs)

    def recover_once(self) -> None:
        """Recover every blob staged so far, once in this process's life of the pair (the
        first group of a writer: a writer before it may have crashed). Outside a
        transaction."""
        if self._recovered:
            return
        with self._lock:
            if not self._recovered:
                self.recover()
                self._recovered = True

    def committed(self) -> None:
        """Have the staged blobs retired a while from now (a thread, started if none runs)."""
        with self._lock:
            self._dirty = True
            if self._retirer is None:
                self._retirer = threading.Thread(
                    target=self._retire_later, name="lineage-staged-blobs", daemon=True
                )
                self._retirer.start()

    def _retire_later(self) -> None:
        try:
            while True:
                time.sleep(RETIRE_SECONDS)
                with self._lock:
                    if not self._dirty:
                        self._retirer = None
                        return
                    self._dirty = False
                try:
                    self.retire()
                except Exception:  # the rows stay: the next retirement or recovery has them
                    logger.exception("cannot retire the staged blobs of %s", self.blobs.url)
        finally:
            self.graph.close_thread()  # the next retirer is another thread

    def retire(self) -> bool:
        """Sync the blob store, then forget the blobs staged (and committed) before the
        sync; False when none was staged."""
        last = self.graph.last_staged()
        if not last:
            return False
        self.blobs.sync()
        self.graph.unstage_blobs(last)
        return True

    def recover(self, *, before: float | None = None) -> int:
        """Make every staged blob (``before``: staged before that time) durable in the blob
        store, written again where missing or damaged, then forget them; the number
        written again."""
        rows = self.graph.staged_blobs(before=before)
        if not rows:
            return 0
        rewritten = self.blobs.restore((digest, data) for _, digest, data in rows)
        self.graph.unstage_blobs(rows[-1][0])
        if rewritten:
            logger.warning(
                "restored %d staged blobs of %d into %s (a writer stopped before syncing them)",
                rewritten,
                len(rows),
                self.blobs.url,
            )
        return rewritten


_GRAPH_CALLS = ("stage_blobs", "staged_blobs", "last_staged", "unstage_blobs", "close_thread")
_BLOB_CALLS = ("put_bytes_unsynced", "sync", "restore")


def recover_stale(graph: object, blobs: object) -> None:
    """Blobs a writer staged and did not live to sync made durable in the blob store (a
    crash's or a power loss's leftovers), by whoever opens the pair next (``open_stores``,
    the server's ``open_service``): those staged more than :data:`STALE_SECONDS` ago. A
    store that cannot be written (read-only) is read as it is, with a warning."""
    staging = Staging.of(graph, blobs)
    if staging is None:
        return
    try:
        staging.recover(before=time.time() - STALE_SECONDS)
    except (LineageError, OSError, sqlite3.Error) as error:
        logger.warning("cannot recover the staged blobs of %s: %s", blobs, error)
