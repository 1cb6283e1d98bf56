"""BlobStore in a local directory: ``<root>/ab/cdef...`` (the digest split after two characters).

Writes copy and hash in one pass into ``<root>/tmp/``, then publish with ``rename`` once the
bytes are durable. A batch (``put_files``) pays for durability once: every temporary file is
written, one ``syncfs`` flushes them, then all are renamed and one more ``syncfs`` makes the
renames durable. A single blob (``put_stream``, ``put_bytes``: each upload to the server)
flushes only itself: ``fsync`` of its file, ``rename``, ``fsync`` of its folder, so that it
does not wait on what other processes write to the same filesystem (bench/README.md).
Many small blobs at once (``put_bytes_many``: an OpenLineage group's manifests) go through a
journal (:mod:`lineage.storage.journal`): one ``fdatasync`` for the batch, each blob renamed
into place unsynced, the journal replayed by the next store opened after a crash and retired
by a background ``syncfs`` once the blobs are durable on their own.
Where the filesystem can clone (btrfs, XFS), a copy is a reflink and only the hash reads the
bytes. Never a hard link: a user editing the original would corrupt the store.

A blob already stored is not written again (dedup), but its file may not be durable yet: one
written unsynced (``put_bytes_unsynced``, a staged group's manifest) whose transaction then
failed, or whose writer died before its sync, is seen by every reader and lost by a power
loss, and nothing else will sync it. So a put that finds its blob's file there trusts it only
when it is older than the kernel's writeback window (:func:`writeback_seconds`: by then the
kernel wrote it back by itself). A younger one is made durable: ``put_bytes`` fsyncs it
and its folder, ``put_bytes_many`` adds it to the batch's journal; a young file of either
that holds other bytes (a power loss's damage: they hold the bytes, a compare is cheap) is
written again. ``put_stream`` compares a young file with its own copy, fsynced already (read
back from the page cache: young hits are few), and replaces it where they differ.
``put_files`` needs none of it: its ``syncfs`` covers every file.
The store counts both kinds of hits (``dedup_synced``, ``dedup_trusted``).

A file costs two opens, its reads and writes, a ``fchmod``, a ``stat`` and a ``rename``; a
batch two ``syncfs`` calls. Files are staged by a few threads (hashing and I/O release the
GIL), each with its own reused 1 MiB buffer. Measured in ``bench/`` on 10,000 files / 1 GiB:
a first log runs at about the speed of ``cp -r`` (and of ``cp -r && sync``), and neither the
hash nor the two flushes are what it waits on: the kernel's writing of new files is.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import filecmp
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from lineage.errors import BlobNotFound, DigestMismatch, StoreUnavailable, from_os_error
from lineage.hashing import check_digest, copy_and_hash, hash_bytes, hash_fd, hash_stream
from lineage.storage import journal

__all__ = ["TEMP_MIN_AGE", "LocalBlobStore", "writeback_seconds"]

logger = logging.getLogger(__name__)

_FICLONE = 0x40049409
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
# list a folder instead of a stat a digest when it holds at most 16 names a digest asked
# (a directory entry for a 62-character name takes 72 bytes; a stat costs ~16 listed names)
_LIST_MIN = 4
_LIST_BYTES = 16 * 72
# gc leaves a temporary file alone while its last write is younger than this, whatever its
# grace period: a writer may still be filling it
TEMP_MIN_AGE = 60.0
# a journal is retired (its blobs synced by one syncfs) this long after its first batch
JOURNAL_SECONDS = 1.0
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_VM = "/proc/sys/vm"


def writeback_seconds(vm: str = _VM) -> float:
    """How long after its last write a file's pages may still be only in memory: the age at
    which the kernel writes dirty pages back (``dirty_expire_centisecs``) plus the interval
    of its flusher's wake-ups (``dirty_writeback_centisecs``), doubled for a busy disk's
    backlog; Linux's defaults (30 s and 5 s) when they cannot be read. Infinite when the
    periodic writeback is off (an interval of 0): then no age makes a file durable."""
    try:
        with open(f"{vm}/dirty_expire_centisecs") as file:
            expire = int(file.read()) / 100
        with open(f"{vm}/dirty_writeback_centisecs") as file:
            interval = int(file.read()) / 100
    except (OSError, ValueError):
        expire, interval = 30.0, 5.0
    if interval <= 0:
        return float("inf")
    return 2 * (max(expire, 0.0) + interval)


_WRITEBACK = writeback_seconds()


class LocalBlobStore:
    def __init__(self, root: str | Path, *, threads: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()
        self._threads = threads or min(4, (os.cpu_count() or 1) + 1)
        self._tmp = self.root / "tmp"
        self._prefix = f"{self.root}{os.sep}"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create blob store at {self.root}: {exc}") from exc
        self._reflink = True
        self._journals = os.path.join(self.root, journal.FOLDER)
        self._journal: journal.Journal | None = None
        self._journal_lock = threading.Lock()
        self._retirer: threading.Thread | None = None
        # dedup hits: files made durable first (young: maybe unsynced), and files trusted
        self.dedup_synced = 0
        self.dedup_trusted = 0
        self.writeback = _WRITEBACK  # a file older than this is durable (writeback_seconds)
        try:
            self.replay()
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot replay the blob journals of {self.root}: {exc}"
            ) from exc

    def path(self, digest: str) -> Path:
        return Path(self._path(check_digest(digest)))

    def _path(self, digest: str) -> str:
        return f"{self._prefix}{digest[:2]}{os.sep}{digest[2:]}"

    def missing(self, digests: Iterable[str]) -> set[str]:
        """A ``stat`` a digest, or one listing of a folder when it holds few more names.

        Every re-log asks this for all its files (10,000 in ``bench/``): listing the
        256 folders of a small store answers in a fraction of the time of 10,000 stats,
        while a large store, where a listing would read far more names than asked, is
        asked one digest at a time.
        """
        if isinstance(digests, list | tuple) and len(digests) == 1:  # the common question
            digest = check_digest(digests[0])
            return set() if os.path.isfile(self._path(digest)) else {digest}
        by_folder: dict[str, list[str]] = {}
        for digest in set(digests):
            by_folder.setdefault(check_digest(digest)[:2], []).append(digest)
        absent: set[str] = set()
        for prefix, group in by_folder.items():
            folder = self._prefix + prefix
            if len(group) >= _LIST_MIN:
                try:
                    listable = os.stat(folder).st_size <= len(group) * _LIST_BYTES
                    names = set(os.listdir(folder)) if listable else None
                except (FileNotFoundError, NotADirectoryError):
                    absent.update(group)
                    continue
                if names is not None:
                    absent.update(d for d in group if d[2:] not in names)
                    continue
            absent.update(d for d in group if not os.path.isfile(self._path(d)))
        return absent

    def size(self, digest: str) -> int | None:
        try:
            return os.stat(self._path(check_digest(digest))).st_size
        except FileNotFoundError:
            return None

    # writes --------------------------------------------------------------------------------

    def put_file(self, path: Path, digest: str | None = None) -> tuple[str, int]:
        return self.put_files([(path, digest)])[0]

    @contextlib.contextmanager
    def _os_errors(self) -> Iterator[None]:
        """An OSError of a write (a full disk, a read-only store, a file gone) as the
        LineageError of its kind, naming its path, or this store when the OS names none."""
        try:
            yield
        except OSError as exc:
            raise from_os_error(exc, self.root) from exc

    def put_files(
        self,
        items: Sequence[tuple[Path, str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[tuple[str, int]]:
        """Store many files durably with one flush; results in the order of ``items``.

        All-or-nothing per file: a file whose bytes do not match its expected digest raises
        DigestMismatch after the others are published; nothing is stored for it.
        """
        with self._os_errors():
            return self._put_files(items, progress)

    def _put_files(
        self,
        items: Sequence[tuple[Path, str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[tuple[str, int]]:
        staged: list[tuple[str, str, int] | BaseException | None] = [None] * len(items)

        def stage(index: int) -> None:
            source, expected = items[index]
            try:
                temp, digest, size = self._stage_file(source)
                if expected is not None and digest != expected:
                    _unlink(temp)
                    raise DigestMismatch(
                        f"{source} changed while it was being stored: expected digest "
                        f"{expected[:16]}..., read {digest[:16]}...",
                        path=str(source),
                        digest=expected,
                    )
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after publishing
                staged[index] = exc
                return
            staged[index] = (temp, digest, size)
            if progress is not None:
                progress(size)

        threads = min(self._threads, len(items))
        if threads <= 1:
            for index in range(len(items)):
                stage(index)
        else:
            # a few long-lived workers pulling indexes: no future per file
            todo = iter(range(len(items)))
            lock = threading.Lock()

            def work() -> None:
                while True:
                    with lock:
                        index = next(todo, None)
                    if index is None:
                        return
                    stage(index)

            with ThreadPoolExecutor(threads) as pool:
                for future in [pool.submit(work) for _ in range(threads)]:
                    future.result()
        ok = [entry for entry in staged if isinstance(entry, tuple)]
        self._publish([(temp, digest) for temp, digest, _ in ok])
        for entry in staged:
            if isinstance(entry, BaseException):
                raise entry
        return [(digest, size) for _, digest, size in ok]

    def put_stream(self, stream: BinaryIO, digest: str | None = None) -> tuple[str, int]:
        with self._os_errors():
            return self._put_stream(stream, digest)

    def _put_stream(self, stream: BinaryIO, digest: str | None) -> tuple[str, int]:
        with self._durable_temp() as (out, temp):
            actual, size = hash_stream(stream, out)
            if digest is not None and actual != digest:
                raise DigestMismatch(
                    f"received bytes hash to {actual}, not the claimed {digest}", digest=digest
                )
        self._publish_one(temp, actual)
        return actual, size

    def put_bytes(self, data: bytes) -> str:
        with self._os_errors():
            return self._put_bytes(data)

    def _put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        path = self._path(digest)
        young = self._young(path)
        if young is False:
            self.dedup_trusted += 1
            return digest
        if young and self._holds(digest, data):
            _fsync(path)
            journal.fsync_dir(os.path.dirname(path))
            self.dedup_synced += 1
            return digest
        # missing, or young and damaged (a power loss's): written, durably
        with self._durable_temp() as (out, temp):
            out.write(data)
        self._rename_durably(temp, path)
        return digest

    def put_bytes_many(self, blobs: Sequence[bytes]) -> list[str]:
        """Store small blobs durably with one ``fdatasync`` (the journal's); their digests.

        Each blob is durable when this returns: in its own file, or in the journal that the
        next store opened on this folder replays after a crash. Meant for many blobs of a few
        KiB (the journal holds them whole); the rest of the store sees them at once.
        """
        with self._os_errors():
            return self._put_bytes_many(blobs)

    def _put_bytes_many(self, blobs: Sequence[bytes]) -> list[str]:
        digests = [hash_bytes(data) for data in blobs]
        todo = {d: data for d, data in zip(digests, blobs, strict=True)}
        young: dict[str, bytes] = {}  # there, maybe unsynced: journalled, not written again
        for digest, data in list(todo.items()):
            found = self._young(self._path(digest))
            if found is None or (found and not self._holds(digest, data)):
                continue  # missing, or young and damaged (a power loss's): written
            if found:
                young[digest] = data
            else:
                self.dedup_trusted += 1
            del todo[digest]
        if not todo and not young:
            return digests
        with self._journal_lock:
            if self._journal is None:
                os.makedirs(self._journals, exist_ok=True)
                self._journal = journal.Journal.create(self._journals, str(self._tmp))
            try:
                self._journal.append([*todo.items(), *young.items()])
            except OSError:
                try:  # cut back to its last whole record, it goes on
                    whole = self._journal.written == os.fstat(self._journal.fd).st_size
                except OSError:
                    whole = False
                if not whole:  # left as it is, unlocked, for the next replay
                    with contextlib.suppress(OSError):
                        os.close(self._journal.fd)
                    self._journal = None
                raise
            self.dedup_synced += len(young)  # durable in the journal, then by its syncfs
            # published under the lock: a retirement's syncfs starts after the last of them
            for digest, data in todo.items():
                self._publish_unsynced(digest, data)
            if self._retirer is None:
                self._retirer = threading.Thread(
                    target=self._retire_later, name="lineage-blob-journal", daemon=True
                )
                self._retirer.start()
        return digests

    def _publish_unsynced(self, digest: str, data: bytes) -> None:
        fd, temp = self._create_temp(0o444)  # read-only from the start: no fchmod
        try:
            try:  # os calls, no file object: half the CPU of a few hundred bytes' publication
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            final = self._path(digest)
            try:
                os.replace(temp, final)
            except FileNotFoundError:  # the first blob under this prefix
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(temp, final)
        except BaseException:
            _unlink(temp)
            raise

    def _retire_later(self) -> None:
        """Retire the current journal a while after it was opened, until none is left."""
        while True:
            time.sleep(JOURNAL_SECONDS)
            if not self.retire_journal():
                return

    def retire_journal(self) -> bool:
        """Make every blob journalled so far durable in its own file (one ``syncfs``), then
        remove its journal; False when there was none (the retiring thread then stops)."""
        with self._journal_lock:
            current, self._journal = self._journal, None
            if current is None:
                self._retirer = None
                return False
        try:
            _syncfs(self.root)  # the files and their names, written before this call
            current.retire()
        except OSError:
            logger.exception(
                "cannot retire blob journal %s; the next open replays it", current.path
            )
            with contextlib.suppress(OSError):
                os.close(current.fd)
        return True

    def replay(self) -> int:
        """Replay the journals left by writers that are gone (a crash, a power loss): every
        blob they hold that is missing or damaged is written again, durably, then the
        journal is removed. The number of blobs written again."""
        rewritten = 0
        for path, fd in journal.orphans(self._journals):
            try:
                with os.fdopen(os.dup(fd), "rb") as file:
                    content = file.read()
                for digest, data in journal.records(content):
                    if not self._holds(digest, data):
                        self._rewrite(digest, data)
                        rewritten += 1
                _syncfs(self.root)  # what was there already (unsynced), and the new names
                _unlink(path)
            finally:
                os.close(fd)
        if rewritten:
            logger.warning("replayed %d blobs from a journal of %s", rewritten, self.root)
        return rewritten

    def put_bytes_unsynced(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Store small ``(digest, data)`` blobs without waiting for the disk: each one
        missing, or whose file holds other bytes (a power loss's damage), is written.

        Each is in its own file when this returns, seen by every reader, and durable only
        after the next :meth:`sync`: for a caller that keeps the bytes durable elsewhere
        until then (a graph store's staged blobs, :mod:`lineage.storage.staging`). The
        digests are the caller's: it hashed ``data`` itself.
        """
        with self._os_errors():
            for digest, data in blobs:
                if not self._holds(digest, data):
                    self._publish_unsynced(digest, data)

    def sync(self) -> None:
        """Make every blob stored so far durable: one ``syncfs`` of the store's file system."""
        with self._os_errors():
            _syncfs(self.root)

    def restore(self, blobs: Iterable[tuple[str, bytes]]) -> int:
        """Make ``(digest, data)`` blobs durable, each written again if missing or damaged
        (after a power loss); the number written again. A blob whose bytes do not hash to
        its digest is refused (DigestMismatch), and nothing of the call is left unsynced."""
        rewritten = 0
        with self._os_errors():
            try:
                for digest, data in blobs:
                    if hash_bytes(data) != digest:
                        raise DigestMismatch(f"staged bytes do not hash to their digest {digest}")
                    if not self._holds(digest, data):
                        self._rewrite(digest, data)
                        rewritten += 1
            finally:
                _syncfs(self.root)  # what was there already (unsynced), and the new names
        return rewritten

    def _rewrite(self, digest: str, data: bytes) -> None:
        """Write ``data`` durably under ``digest``, over a damaged file too (its folder's
        name is made durable by the caller's ``syncfs``)."""
        with self._durable_temp() as (out, temp):
            out.write(data)
        final = self._path(digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(temp, final)

    def _holds(self, digest: str, data: bytes) -> bool:
        """Whether the file of ``digest`` holds exactly ``data``."""
        try:
            fd = os.open(self._path(digest), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:  # os calls, no file object: these are a few hundred bytes
            held = os.read(fd, len(data) + 1)
            while len(held) <= len(data):
                more = os.read(fd, len(data) + 1 - len(held))
                if not more:
                    break
                held += more
            return held == data
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _durable_temp(self) -> Iterator[tuple[BinaryIO, str]]:
        """A new temporary file to fill: read-only and fsynced once filled, removed if
        filling it fails."""
        fd, temp = self._create_temp()
        try:
            with os.fdopen(fd, "wb") as out:
                yield out, temp
                os.fchmod(out.fileno(), 0o444)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            _unlink(temp)
            raise

    def _create_temp(self, mode: int = 0o600) -> tuple[int, str]:
        """A new temporary file, open for writing (whatever ``mode`` its name will have)."""
        while True:
            name = f"{self._tmp}{os.sep}{os.urandom(8).hex()}"
            try:
                return os.open(name, _CREATE, mode), name
            except FileExistsError:  # pragma: no cover - 64 random bits
                continue

    def _stage_file(self, source: Path) -> tuple[str, str, int]:
        """Copy ``source`` into a new temporary file, hashing exactly the bytes written."""
        fd, temp = self._create_temp()
        try:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if self._reflink and _clone(src, fd):
                    digest, size = hash_fd(fd)  # the clone is ours alone: hash what it holds
                else:
                    self._reflink = False
                    digest, size = copy_and_hash(src, fd)
            finally:
                os.close(src)
            os.fchmod(fd, 0o444)
        except BaseException:
            os.close(fd)
            _unlink(temp)
            raise
        os.close(fd)
        return temp, digest, size

    def _publish(self, staged: Sequence[tuple[str, str]]) -> None:
        if not staged:
            return
        _syncfs(self._tmp)
        for temp, digest in staged:
            final = self._path(digest)
            if os.path.isfile(final):  # already stored (or twice in this batch): keep the first
                _unlink(temp)
                continue
            try:
                os.replace(temp, final)
            except FileNotFoundError:  # the first blob under this prefix
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(temp, final)
        _syncfs(self.root)

    def _publish_one(self, temp: str, digest: str) -> None:
        """Publish one blob whose bytes are already fsynced: rename it into place, then
        fsync the folder that now names it. Only this blob's own data and one directory are
        flushed, where ``_publish`` waits for every dirty page of the filesystem, twice."""
        final = self._path(digest)
        young = self._young(final)
        if young is None:
            self._rename_durably(temp, final)
            return
        if young and not _same_bytes(temp, final):
            # damaged by a power loss: replaced by this put's copy, durable, the right bytes
            self._rename_durably(temp, final)
            return
        _unlink(temp)  # already stored: left as it is (a second put changes nothing)
        if young:  # maybe not durable yet
            _fsync(final)
            self.dedup_synced += 1
        else:
            self.dedup_trusted += 1
        # also when it was old: its writer may not have synced the name
        journal.fsync_dir(os.path.dirname(final))

    def _rename_durably(self, temp: str, final: str) -> None:
        """Rename a fsynced temporary file to ``final`` and fsync the folder naming it."""
        folder = os.path.dirname(final)
        try:
            os.replace(temp, final)
        except FileNotFoundError:  # the first blob under this prefix
            os.makedirs(folder, exist_ok=True)
            journal.fsync_dir(str(self.root))  # the new folder's own name
            os.replace(temp, final)
        journal.fsync_dir(folder)

    def _young(self, path: str) -> bool | None:
        """None when no blob's file is at ``path``; else whether it was last written within
        the kernel's writeback window (:attr:`writeback`): maybe not durable yet."""
        try:
            found = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        return time.time() - found.st_mtime < self.writeback

    # reads ---------------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self._path(check_digest(digest)), "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} is not in {self.url}", digest=digest) from None

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as file:
            return file.read()

    def delete(self, digests: Iterable[str]) -> int:
        removed = 0
        for digest in digests:
            try:
                os.unlink(self._path(check_digest(digest)))
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def digests(self, older_than: float | None = None) -> Iterator[str]:
        horizon = None if older_than is None else time.time() - older_than
        for folder in sorted(self.root.iterdir()):
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if horizon is None or entry.stat().st_mtime < horizon:
                    yield folder.name + entry.name

    def temporaries(self, older_than: float, *, remove: bool = False) -> tuple[int, int]:
        """``(count, bytes)`` of the temporary files in ``<root>/tmp/`` last written more than
        ``older_than`` seconds ago (and never less than ``TEMP_MIN_AGE``): what killed writers
        left behind. With ``remove``, they are deleted and what was deleted is counted.

        A live writer's file is young: every write moves its mtime, and a batch renames its
        files within the grace period of their last write.
        """
        horizon = time.time() - max(older_than, TEMP_MIN_AGE)
        count = size = 0
        try:
            listing = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return 0, 0
        for entry in listing:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # published or removed meanwhile
            if not entry.is_file(follow_symlinks=False) or st.st_mtime >= horizon:
                continue
            if remove:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
            count += 1
            size += st.st_size
        return count, size


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _clone(src: int, dst: int) -> bool:
    try:
        fcntl.ioctl(dst, _FICLONE, src)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM):
            return False
        raise
    return True


def _same_bytes(one: str, other: str) -> bool:
    try:
        return filecmp.cmp(one, other, shallow=False)
    except FileNotFoundError:  # deleted meanwhile: written again
        return False


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(path: Path) -> None:
    """Flush every dirty page of the filesystem holding ``path``: one call for a whole batch."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            os.fsync(fd)
    finally:
        os.close(fd)
