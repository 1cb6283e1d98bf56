"""BlobStore in a local directory: ``<root>/ab/cdef...`` (the digest split after two characters).

Writes copy and hash in one pass into ``<root>/tmp/``, then publish with ``rename`` once the
bytes are durable. A batch (``put_files``) pays for durability once: every temporary file is
written, one ``syncfs`` flushes them, then all are renamed and the directories synced. Where
the filesystem can clone (btrfs, XFS), a copy is a reflink and only the hash reads the bytes.
Never a hard link: a user editing the original would corrupt the store.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from lineage.errors import BlobNotFound, DigestMismatch, StoreUnavailable
from lineage.hashing import CHUNK, Hasher, check_digest

__all__ = ["LocalBlobStore"]

logger = logging.getLogger(__name__)

_FICLONE = 0x40049409
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class LocalBlobStore:
    def __init__(self, root: str | Path, *, threads: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()
        self._threads = threads or min(4, (os.cpu_count() or 1) + 1)
        self._tmp = self.root / "tmp"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create blob store at {self.root}: {exc}") from exc
        self._reflink = True

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def missing(self, digests: Iterable[str]) -> set[str]:
        return {digest for digest in set(digests) if not self.path(digest).is_file()}

    def size(self, digest: str) -> int | None:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    # writes --------------------------------------------------------------------------------

    def put_file(self, path: Path, digest: str | None = None) -> tuple[str, int]:
        return self.put_files([(path, digest)])[0]

    def put_files(
        self,
        items: Sequence[tuple[Path, str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[tuple[str, int]]:
        """Store many files durably with one flush; results in the order of ``items``.

        All-or-nothing per file: a file whose bytes do not match its expected digest raises
        DigestMismatch after the others are published; nothing is stored for it.
        """
        staged: list[tuple[Path, str, int] | BaseException] = []

        def stage(item: tuple[Path, str | None]) -> tuple[Path, str, int]:
            source, expected = item
            temp, digest, size = self._stage_file(Path(source))
            if expected is not None and digest != expected:
                temp.unlink(missing_ok=True)
                raise DigestMismatch(
                    f"{source} changed while it was being stored: expected digest "
                    f"{expected[:16]}..., read {digest[:16]}...",
                    path=str(source),
                    digest=expected,
                )
            if progress is not None:
                progress(size)
            return temp, digest, size

        if len(items) == 1:
            try:
                staged.append(stage(items[0]))
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after cleanup
                staged.append(exc)
        else:
            with ThreadPoolExecutor(self._threads) as pool:
                futures = [pool.submit(stage, item) for item in items]
                for future in futures:
                    try:
                        staged.append(future.result())
                    except BaseException as exc:  # noqa: BLE001
                        staged.append(exc)
        ok = [entry for entry in staged if not isinstance(entry, BaseException)]
        self._publish([(temp, digest) for temp, digest, _ in ok])
        for entry in staged:
            if isinstance(entry, BaseException):
                raise entry
        return [(digest, size) for _, digest, size in ok]

    def put_stream(self, stream: BinaryIO, digest: str | None = None) -> tuple[str, int]:
        hasher = Hasher()
        size = 0
        fd, name = tempfile.mkstemp(dir=self._tmp)
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            actual = hasher.hexdigest()
            if digest is not None and actual != digest:
                raise DigestMismatch(
                    f"received bytes hash to {actual}, not the claimed {digest}", digest=digest
                )
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._publish([(temp, actual)])
        return actual, size

    def put_bytes(self, data: bytes) -> str:
        digest = Hasher(data).hexdigest()
        if self.path(digest).is_file():
            return digest
        fd, name = tempfile.mkstemp(dir=self._tmp)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        self._publish([(Path(name), digest)])
        return digest

    def _stage_file(self, source: Path) -> tuple[Path, str, int]:
        fd, name = tempfile.mkstemp(dir=self._tmp)
        temp = Path(name)
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
                if self._reflink and _clone(src.fileno(), out.fileno()):
                    with open(temp, "rb") as clone:
                        hasher, size = _hash_stream(clone)
                else:
                    self._reflink = False
                    hasher, size = Hasher(), 0
                    buffer = bytearray(CHUNK)
                    view = memoryview(buffer)
                    while n := src.readinto(buffer):
                        hasher.update(view[:n])
                        out.write(view[:n])
                        size += n
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp, hasher.hexdigest(), size

    def _publish(self, staged: Sequence[tuple[Path, str]]) -> None:
        if not staged:
            return
        _syncfs(self._tmp)
        for temp, digest in staged:
            final = self.path(digest)
            if final.is_file():
                temp.unlink(missing_ok=True)
                continue
            final.parent.mkdir(exist_ok=True)
            os.chmod(temp, 0o444)
            os.replace(temp, final)
        _syncfs(self.root)

    # reads ---------------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} is not in {self.url}", digest=digest) from None

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as file:
            return file.read()

    def delete(self, digests: Iterable[str]) -> int:
        removed = 0
        for digest in digests:
            try:
                self.path(digest).unlink()
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


def _hash_stream(stream: BinaryIO) -> tuple[Hasher, int]:
    hasher, size = Hasher(), 0
    while chunk := stream.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return hasher, size


def _clone(src: int, dst: int) -> bool:
    try:
        fcntl.ioctl(dst, _FICLONE, src)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM):
            return False
        raise
    return True


def _syncfs(path: Path) -> None:
    """Flush every dirty page of the filesystem holding ``path``: one call for a whole batch."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            os.fsync(fd)
    finally:
        os.close(fd)
