"""The local blob store's dedup hits (lineage.storage.local): a put that finds its blob's file
there trusts it only once the kernel's writeback has had time to make it durable; a younger
file (one written unsynced by a staged group that never committed, say) is made durable
first: fsynced with its folder (``put_bytes``, ``put_stream``), or journalled
(``put_bytes_many``); written again if a power loss damaged it (compared with the bytes the
put holds, in memory or in its own fsynced copy).
The store counts both kinds of hits."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from lineage.hashing import hash_bytes
from lineage.storage import journal, local
from lineage.storage.local import LocalBlobStore, writeback_seconds


@pytest.fixture(autouse=True)
def _no_early_retirement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Journals stay until a test looks at them (no retirement by the background thread)."""
    monkeypatch.setattr(local, "JOURNAL_SECONDS", 3600.0)


def unsynced(store: LocalBlobStore, data: bytes) -> str:
    """A blob's file as a staged group leaves it when its transaction fails: written, never
    synced, named by no staged row."""
    digest = hash_bytes(data)
    store.put_bytes_unsynced([(digest, data)])
    return digest


def written_back(store: LocalBlobStore, digest: str) -> None:
    """The file as the kernel's writeback has long made it durable: an hour old."""
    at = time.time() - 3600
    os.utime(store.path(digest), (at, at))


def hits(store: LocalBlobStore) -> tuple[int, int]:
    return store.dedup_synced, store.dedup_trusted


def test_put_bytes_makes_a_young_hit_durable_and_trusts_an_old_one(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = unsynced(store, b"a manifest")
    assert store.put_bytes(b"a manifest") == digest
    assert hits(store) == (1, 0)
    written_back(store, digest)
    assert store.put_bytes(b"a manifest") == digest
    assert hits(store) == (1, 1)
    assert store.put_bytes(b"new bytes") == hash_bytes(b"new bytes")  # a miss: written
    assert hits(store) == (1, 1)
    assert store.get_bytes(digest) == b"a manifest"


def test_put_stream_makes_a_young_hit_durable_and_trusts_an_old_one(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    data = os.urandom(100_000)
    digest = unsynced(store, data)
    stamp = store.path(digest).stat()
    assert store.put_stream(io.BytesIO(data)) == (digest, len(data))
    assert hits(store) == (1, 0)
    written_back(store, digest)
    assert store.put_stream(io.BytesIO(data), digest) == (digest, len(data))
    assert hits(store) == (1, 1)
    assert store.path(digest).stat().st_ino == stamp.st_ino  # the file there is kept
    assert store.get_bytes(digest) == data
    assert os.listdir(tmp_path / "blobs" / "tmp") == []  # the second copies are gone


def test_put_bytes_many_journals_a_young_hit_and_trusts_an_old_one(tmp_path: Path) -> None:
    """A young hit goes into the batch's journal (durable with its one fdatasync, replayed
    after a crash, synced by its retirement) without its file being written again."""
    store = LocalBlobStore(tmp_path / "blobs")
    young = unsynced(store, b"young")
    old = unsynced(store, b"old")
    written_back(store, old)
    inode = store.path(young).stat().st_ino
    digests = store.put_bytes_many([b"young", b"old", b"new"])
    assert digests == [young, old, hash_bytes(b"new")]
    assert hits(store) == (1, 1)
    (name,) = os.listdir(tmp_path / "blobs" / journal.FOLDER)
    content = (tmp_path / "blobs" / journal.FOLDER / name).read_bytes()
    assert sorted(d for d, _ in journal.records(content)) == sorted([young, digests[2]])
    assert store.path(young).stat().st_ino == inode  # the file there is kept
    assert store.retire_journal()
    written_back(store, young)
    written_back(store, digests[2])
    assert store.put_bytes_many([b"young", b"new"]) == [young, digests[2]]
    assert hits(store) == (1, 3)
    assert os.listdir(tmp_path / "blobs" / journal.FOLDER) == []  # all old: no journal


def test_a_young_file_a_power_loss_damaged_is_written_again(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    one, many = unsynced(store, b"one manifest"), unsynced(store, b"a group's manifest")
    streamed = unsynced(store, b"an upload")
    for digest in (one, many, streamed):  # cut short, as a power loss may leave an unsynced file
        path = store.path(digest)
        os.chmod(path, 0o644)
        path.write_bytes(path.read_bytes()[:3])
    assert store.put_bytes(b"one manifest") == one
    assert store.put_bytes_many([b"a group's manifest"]) == [many]
    assert hits(store) == (0, 0)  # misses: written
    assert store.put_stream(io.BytesIO(b"an upload")) == (streamed, 9)
    assert hits(store) == (0, 0)  # not a hit: the damaged file replaced by the put's copy
    assert store.get_bytes(one) == b"one manifest"
    assert store.get_bytes(many) == b"a group's manifest"
    assert store.get_bytes(streamed) == b"an upload"


def test_the_writeback_window_is_the_kernels(tmp_path: Path) -> None:
    vm = tmp_path / "vm"
    vm.mkdir()
    assert writeback_seconds(str(vm)) == 70.0  # unreadable: Linux's defaults (30 s + 5 s), x2
    (vm / "dirty_expire_centisecs").write_text("1500\n")
    (vm / "dirty_writeback_centisecs").write_text("250\n")
    assert writeback_seconds(str(vm)) == 35.0
    (vm / "dirty_writeback_centisecs").write_text("0\n")  # periodic writeback off
    assert writeback_seconds(str(vm)) == float("inf")
