"""The BlobStore protocol: content-addressed bytes, stored once, named by their BLAKE3 digest.

The contract every backend honours, checked by ``tests/storage/test_blobs.py``:

- A blob is visible under a digest only once all its bytes are durable and hash to that
  digest. Writers go to a temporary name and publish atomically; a store never holds bytes
  under a digest they do not have (``put_*`` recomputes the digest and refuses a mismatch
  with DigestMismatch, storing nothing).
- ``put_*`` of content already present is cheap and changes nothing.
- Reads stream; nothing holds a whole blob in memory.
- ``missing`` answers for many digests in one call (the dedup question).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = ["BlobStore"]


class BlobStore(Protocol):
    url: str

    def missing(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` this store does not hold."""
        ...

    def put_file(self, path: Path, digest: str | None = None) -> tuple[str, int]:
        """Store the bytes of ``path``; return ``(digest, size)`` of what was read.

        With ``digest`` given, a file whose bytes hash otherwise is refused (DigestMismatch).
        """
        ...

    def put_files(
        self,
        items: Sequence[tuple[Path, str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[tuple[str, int]]:
        """``put_file`` for many files, as one durable batch; ``progress`` gets bytes done."""
        ...

    def put_stream(self, stream: BinaryIO, digest: str | None = None) -> tuple[str, int]: ...

    def put_bytes(self, data: bytes) -> str: ...

    def open(self, digest: str) -> BinaryIO:
        """A readable binary stream of the blob (BlobNotFound when absent)."""
        ...

    def get_bytes(self, digest: str) -> bytes: ...

    def size(self, digest: str) -> int | None: ...

    def delete(self, digests: Iterable[str]) -> int: ...

    def digests(self, older_than: float | None = None) -> Iterator[str]:
        """Every digest held; with ``older_than`` (seconds), only blobs stored before then."""
        ...
