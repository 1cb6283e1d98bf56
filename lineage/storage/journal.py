"""A write-ahead journal of small blobs: many made durable with one ``fdatasync``.

:meth:`LocalBlobStore.put_bytes_many <lineage.storage.local.LocalBlobStore.put_bytes_many>`
appends a batch of blobs (an OpenLineage group's reference manifests: a few hundred bytes
each) to its process's journal file and syncs it once, then publishes each blob with a
``rename`` but without an ``fsync`` of its own. A blob is durable from the journal's sync on:
after a crash or a power loss, the next :class:`~lineage.storage.local.LocalBlobStore` opened
on the folder *replays* every journal whose writer is gone (a blob missing, or not holding
the bytes of its digest, is written again, durably). A journal is retired once the files it
covers are durable on their own (one ``syncfs``, in a background thread).

Layout: ``<root>/journal/<random>.log``; each record is ``MAGIC``, the 64-character digest,
the length (8 bytes, little-endian) and the bytes. A live journal is held with ``flock``, so
a replay passes it by; a record cut short, or whose bytes do not hash to its digest (the
tail of a batch whose sync never returned), ends the replay of that journal: nothing after
it was ever acknowledged.

Costs, measured in ``bench/``: one ``fdatasync`` a batch and one ``fsync`` of the folder when
a journal file is made, instead of an ``fsync`` of each blob and of its folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from lineage.hashing import hash_bytes

__all__ = ["FOLDER", "MAGIC", "Journal", "encode", "fsync_dir", "orphans", "records"]

FOLDER = "journal"
MAGIC = b"LJ1\n"
_HEADER = len(MAGIC) + 64 + 8


def encode(digest: str, data: bytes) -> bytes:
    """One record: what a replay reads back."""
    return MAGIC + digest.encode("ascii") + len(data).to_bytes(8, "little") + data


def records(content: bytes) -> Iterator[tuple[str, bytes]]:
    """The whole records of a journal's content, up to the first one cut short or damaged."""
    at = 0
    while at + _HEADER <= len(content):
        if content[at : at + len(MAGIC)] != MAGIC:
            return
        head = at + len(MAGIC)
        try:
            digest = content[head : head + 64].decode("ascii")
        except UnicodeDecodeError:
            return
        size = int.from_bytes(content[head + 64 : head + 72], "little")
        end = at + _HEADER + size
        data = content[at + _HEADER : end]
        if end > len(content) or hash_bytes(data) != digest:
            return
        yield digest, data
        at = end


@dataclass(kw_only=True)
class Journal:
    """One process's open journal file: held with ``flock`` as long as it is open."""

    path: str
    fd: int
    written: int = field(default=0)

    @classmethod
    def create(cls, folder: str, temp: str) -> Journal:
        """A new, locked, empty journal in ``folder``, its name durable. Made under ``temp``
        and renamed in, so that no replay ever sees it before it is locked."""
        name = os.urandom(8).hex() + ".log"
        staged = os.path.join(temp, name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(staged, flags, 0o644)  # data, not a program (os.open's default is 0o777)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = os.path.join(folder, name)
            os.replace(staged, path)
            fsync_dir(folder)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
            raise
        return cls(path=path, fd=fd)

    def append(self, batch: list[tuple[str, bytes]]) -> None:
        """Write the records of ``batch`` and make them durable (one ``fdatasync``)."""
        data = b"".join(encode(digest, blob) for digest, blob in batch)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            os.fdatasync(self.fd)
        except BaseException:
            # a part written (a full disk) must not stand between the records before it and
            # those after: a replay stops at the first record it cannot read
            os.ftruncate(self.fd, self.written)
            raise
        self.written += len(data)

    def retire(self) -> None:
        """Remove the journal (what it covers is durable elsewhere) and release it."""
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        finally:
            os.close(self.fd)


def orphans(folder: str) -> Iterator[tuple[str, int]]:
    """``(path, locked fd)`` of each journal in ``folder`` whose writer is gone; the caller
    replays it, removes it, then closes the fd."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # retired meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a live writer's
            continue
        yield path, fd


def fsync_dir(path: str) -> None:
    """``fsync`` a folder: the names made or removed in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
