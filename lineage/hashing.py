"""Content digests: BLAKE3, 256 bits, as 64 lowercase hex characters.

BLAKE3 is the identity of every blob and manifest. Measured by ``bench/bench_hashing.py``
(2 vCPUs of an AMD EPYC with AVX-512 and SHA-NI; ``bench/README.md``), GB/s:

    one thread                  BLAKE3   SHA-256   MD5     cat >/dev/null
    in memory, 256 MiB           7.5      2.1      0.9
    10,000 files, warm cache     3.5      1.5      0.76    2.2

so hashing costs less than reading the bytes, and logging costs about one read of them.
BLAKE3's own threads (``max_threads``) double the in-memory rate but lose on the dataset's
50 KiB files (1.9 GB/s), so each file is hashed on one thread and several files at a time.
MD5 is slower than both and never used for identity.

Reads go through one reused buffer per thread (``CHUNK``, 1 MiB; 256 KiB and 4 MiB measured
no better): no allocation, so no page faults, per chunk or per file.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

import blake3

from lineage.errors import InvalidInput

__all__ = [
    "CHUNK",
    "Hasher",
    "check_digest",
    "copy_and_hash",
    "hash_bytes",
    "hash_fd",
    "hash_file",
    "read_chunks",
]

CHUNK = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")
_local = threading.local()

Hasher = blake3.blake3


def check_digest(value: object) -> str:
    """Return ``value`` if it is a well-formed digest, else raise InvalidInput."""
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise InvalidInput(
            f"invalid digest {value!r:.80}: expected 64 lowercase hex characters (BLAKE3)",
            digest=value,
        )
    return value


def hash_bytes(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def hash_file(path: str | Path) -> tuple[str, int]:
    """Digest and size of one file, read once in ``CHUNK`` pieces (the GIL is released)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return hash_fd(fd)
    finally:
        os.close(fd)


def hash_fd(fd: int, offset: int = 0) -> tuple[str, int]:
    """Digest and size of what an open file holds from ``offset`` to its end."""
    hasher, buffer = Hasher(), _buffer()
    view, size = memoryview(buffer), 0
    while n := os.preadv(fd, [buffer], offset + size):
        hasher.update(view[:n])
        size += n
    return hasher.hexdigest(), size


def copy_and_hash(src: int, dst: int) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (file descriptors, from their offsets) and hash the same bytes.

    One pass: what is hashed is exactly what is written, whatever happens to ``src`` meanwhile.
    """
    hasher, buffer = Hasher(), _buffer()
    view, size = memoryview(buffer), 0
    while n := os.readv(src, [buffer]):
        chunk = view[:n]
        hasher.update(chunk)
        while chunk:
            chunk = chunk[os.write(dst, chunk) :]
        size += n
    return hasher.hexdigest(), size


def hash_stream(stream: IO[bytes], copy: IO[bytes] | None = None) -> tuple[str, int]:
    """Digest and size of what ``stream`` yields to its end, read in ``CHUNK`` pieces; each
    piece is also written to ``copy`` when given, so what is hashed is what is written."""
    hasher, size = Hasher(), 0
    while chunk := stream.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
        if copy is not None:
            copy.write(chunk)
    digest: str = hasher.hexdigest()
    return digest, size


def read_chunks(file: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    while chunk := file.read(size):
        yield chunk


def _buffer() -> bytearray:
    """This thread's read buffer: allocated once, so no page faults per file."""
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) != CHUNK:
        buffer = _local.buffer = bytearray(CHUNK)
    return buffer
