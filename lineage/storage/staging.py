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
>>> staging.write_soon([(digest, data)])  # its file, unsynced (or by the files process)
>>> with graph.transaction():
...     staging.written()                # every file there before the commit
...     staging.stage([(digest, data)])
>>> staging.committed()                  # retired about a second later
"""

from __future__ import annotations

import contextlib
import logging
import select
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from lineage.errors import LineageError
from lineage.framing import frame, read_frame

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
        self._stopping = threading.Event()
        self._dirty = False
        self._recovered = False
        self._files: _FilesProcess | None = None

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
                closing = getattr(graph, "before_close", None)
                if callable(closing):  # its retirer done before the store's connections go
                    closing(found.stop)
            return found

    def write_soon(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Have ``(digest, data)`` blobs stored unsynced by the time :meth:`written`
        returns: by the files process where there is one (:meth:`use_files_process`), else
        at once, in the calling thread."""
        if not self._recovered:
            raise RuntimeError("Staging before recover_once(): call it outside a transaction")
        if not blobs:
            return
        files = self._files
        if files is not None:
            try:
                if files.ready():  # until it has started: in-thread
                    files.send(blobs)
                    return
            except (OSError, ValueError) as error:  # gone (or its pipe closed)
                self._files_lost(error)
        self.blobs.put_bytes_unsynced(blobs)

    def written(self) -> None:
        """Wait until every blob given to :meth:`write_soon` is in its file; raise what
        refused one (then none of them is to be staged: the caller's transaction fails)."""
        files = self._files
        if files is not None:
            try:
                files.wait()
            except _Gone as error:
                self._files_lost(error)
                raise

    def stage(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Stage ``(digest, data)`` blobs, :meth:`written` already, in the caller's
        transaction; call :meth:`committed` once it is committed."""
        if not self._recovered:
            raise RuntimeError("Staging before recover_once(): call it outside a transaction")
        self.graph.stage_blobs(blobs)

    def use_files_process(self) -> None:
        """Have the blobs' files written by a process of its own from now on (the server's
        OpenLineage writer: creating a file costs the kernel 50-200 us here, two an event,
        which that process spends on the other core while the group goes on); if it cannot
        start, or dies, they are written in the calling thread, as before."""
        root = getattr(self.blobs, "root", None)
        if self._files is None and root is not None:
            try:
                self._files = _FilesProcess(str(root))
            except OSError as error:
                logger.warning(
                    "the blob files process did not start (%s): writing in-thread", error
                )

    def close(self) -> None:
        """Stop the files process, if any (after the blobs it was given)."""
        files, self._files = self._files, None
        if files is not None:
            files.close()

    def _files_lost(self, error: Exception) -> None:
        logger.warning("the blob files process stopped (%s): writing in-thread", error)
        files, self._files = self._files, None
        if files is not None:
            files.kill()

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

    def stop(self) -> None:
        """End the retirer, waiting for a retirement under way (the graph store is closing:
        a retirer left running would use a connection closed under it, which for SQLite is
        a crash of the process, not an error). What is staged and not yet retired stays
        staged, for the next writer or command to recover, as a crash leaves it. The files
        process stops too."""
        self._stopping.set()
        with self._lock:
            retirer = self._retirer
        if retirer is not None and retirer is not threading.current_thread():
            retirer.join()
        self.close()

    def _retire_later(self) -> None:
        try:
            while True:
                if self._stopping.wait(RETIRE_SECONDS):  # stop(): no retirement begins
                    with self._lock:
                        self._retirer = None
                    return
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
    store that cannot be written (a read-only file or folder, a Neo4j that refuses the
    write: its staging raises a LineageError) is read as it is, with a warning."""
    staging = Staging.of(graph, blobs)
    if staging is None:
        return
    try:
        staging.recover(before=time.time() - STALE_SECONDS)
    except (LineageError, OSError, sqlite3.Error) as error:
        url = getattr(blobs, "url", blobs)
        logger.warning("cannot recover the staged blobs of %s: %s", url, error)


class _Gone(OSError):
    """The files process is gone."""


class _FilesProcess:
    """``python -m lineage.storage.filewriter ROOT``: writes the lists of ``(digest, data)``
    it reads on its stdin into the local blob store at ROOT, unsynced, each answered on its
    stdout (None, or what refused it), in :mod:`lineage.framing`'s frames. It ends when its
    stdin does (the writer ended, or died)."""

    def __init__(self, root: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lineage.storage.filewriter", root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.sent = 0
        self.opened = False  # its first answer: the store opened (or why not)

    def ready(self) -> bool:
        """Whether it has opened the store (False while it starts: no wait)."""
        if not self.opened:
            stdout = self.process.stdout
            assert stdout is not None
            if not select.select([stdout], [], [], 0)[0]:
                return False
            refused = self._answer()
            if refused is not None:
                raise _Gone(refused)
            self.opened = True
        return True

    def send(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(frame(list(blobs)))
        stdin.flush()
        self.sent += 1

    def wait(self) -> None:
        """Read the answers of everything sent; raise the first refusal among them."""
        refused = None
        while self.sent:
            answer = self._answer()
            self.sent -= 1
            refused = refused or answer
        if refused is not None:
            raise OSError(refused)

    def _answer(self) -> str | None:
        assert self.process.stdout is not None
        try:
            answer: str | None = read_frame(self.process.stdout)
        except EOFError:
            raise _Gone(f"the blob files process ended (exit {self.process.poll()})") from None
        return answer

    def close(self) -> None:
        """Stop it once it has written what it was given (it reads the end of its stdin)."""
        self._close_pipes()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
