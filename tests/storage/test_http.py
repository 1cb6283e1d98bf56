"""HttpBlobStore against a real lineage server on loopback (in a thread of this process)."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from lineage.errors import DigestMismatch
from lineage.hashing import Hasher
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.server.serving import background
from lineage.storage.http import HttpBlobStore
from lineage.storage.local import LocalBlobStore

MiB = 1 << 20
BIG = 64 * MiB


@pytest.fixture
def http_blobs(tmp_path: Path) -> Iterator[tuple[HttpBlobStore, LocalBlobStore]]:
    """A client store, and the server's own blob store behind it."""
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    service = open_service(store, blobs)
    token = create_token(service, "write", "test")
    service.graph.close()
    with background(store, blobs) as url:
        client = HttpBlobStore(url, token=token)
        try:
            yield client, LocalBlobStore(blobs)
        finally:
            client.close()


class Generated(io.RawIOBase):
    """``size`` bytes made up as they are read: a stream that is neither a file nor seekable,
    as a download from another store is."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._at = 0
        self._block = bytes(i % 251 for i in range(MiB))  # byte k is (k mod 2**20) mod 251

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        target = memoryview(cast(bytearray, buffer)).cast("B")
        offset = self._at % MiB
        n = min(len(target), self._left, MiB - offset)
        target[:n] = self._block[offset : offset + n]
        self._left -= n
        self._at += n
        return n


def digest_of(stream: BinaryIO) -> str:
    hasher = Hasher()
    while chunk := stream.read(MiB):
        hasher.update(chunk)
    result: str = hasher.hexdigest()
    return result


def source(kind: str, tmp_path: Path) -> BinaryIO:
    if kind == "pipe":
        return cast(BinaryIO, io.BufferedReader(Generated(BIG)))
    path = tmp_path / "big.bin"
    if not path.exists():
        with path.open("wb") as out, io.BufferedReader(Generated(BIG)) as data:
            while chunk := data.read(MiB):
                out.write(chunk)
    return path.open("rb")


@pytest.mark.parametrize("kind", ["pipe", "file"])
@pytest.mark.parametrize("claimed", [False, True])
def test_put_stream_never_holds_the_blob(
    http_blobs: tuple[HttpBlobStore, LocalBlobStore], tmp_path: Path, kind: str, claimed: bool
) -> None:
    client, server = http_blobs
    with io.BufferedReader(Generated(BIG)) as data:
        expected = digest_of(cast(BinaryIO, data))
    tracemalloc.start()
    try:
        with source(kind, tmp_path) as stream:
            result = client.put_stream(stream, expected if claimed else None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == (expected, BIG)
    # client and server (same process) together: a few buffers, never the 64 MiB blob
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert client.bytes_sent == BIG  # sent once, whole
    with server.open(expected) as stored:
        assert digest_of(cast(BinaryIO, stored)) == expected
    with source(kind, tmp_path) as stream:  # again: the server has it, nothing travels
        assert client.put_stream(stream, expected if claimed else None) == (expected, BIG)
    assert client.bytes_sent == BIG


@pytest.mark.parametrize("kind", ["pipe", "file"])
def test_put_stream_with_a_wrong_claim_sends_and_stores_nothing(
    http_blobs: tuple[HttpBlobStore, LocalBlobStore], tmp_path: Path, kind: str
) -> None:
    client, server = http_blobs
    wrong = "ab" * 32
    with source(kind, tmp_path) as stream, pytest.raises(DigestMismatch, match=wrong[:16]):
        client.put_stream(stream, wrong)
    assert list(server.digests()) == []
    assert client.bytes_sent == 0


def test_small_stream_roundtrip(http_blobs: tuple[HttpBlobStore, LocalBlobStore]) -> None:
    client, server = http_blobs
    digest, size = client.put_stream(io.BytesIO(b"small"))
    assert size == 5 and server.get_bytes(digest) == b"small"
    assert client.get_bytes(digest) == b"small"
    empty, zero = client.put_stream(io.BytesIO(b""))
    assert zero == 0 and server.get_bytes(empty) == b""
