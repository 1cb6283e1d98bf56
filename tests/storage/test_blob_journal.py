"""The local blob store's journal of small blobs (``put_bytes_many``): durable with one sync,
replayed after a crash (a blob lost or damaged, as a power loss may leave an unsynced file,
comes back), a live writer's journal left alone, a torn or damaged record ending the replay,
and, for an OpenLineage group, its manifests journalled before the commit that names them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from lineage.hashing import hash_bytes
from lineage.openlineage import check_event
from lineage.openlineage.group import ingest_group
from lineage.service import Service
from lineage.storage import journal, local
from lineage.storage.local import LocalBlobStore
from lineage.storage.sqlite import SQLiteGraphStore


def blob_path(root: Path, digest: str) -> Path:
    return root / digest[:2] / digest[2:]


@pytest.fixture(autouse=True)
def _no_early_retirement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Journals are retired when a test says, not by the background thread of a slow run."""
    monkeypatch.setattr(local, "JOURNAL_SECONDS", 3600.0)


def journals(root: Path) -> list[str]:
    folder = root / journal.FOLDER
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_put_bytes_many_stores_each_blob_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    old = store.put_bytes(b"stored before")
    written_back(tmp_path, old)  # long ago: trusted (a young one would be journalled too)
    blobs = [b"one", b"two", b"one", b"stored before"]
    digests = store.put_bytes_many(blobs)
    assert digests == [hash_bytes(b) for b in blobs]
    assert digests[3] == old
    assert [store.get_bytes(d) for d in digests] == blobs
    assert not store.missing(digests)
    assert oct(blob_path(tmp_path, digests[0]).stat().st_mode & 0o777) == "0o444"
    # the journal holds the two new blobs, once each, until it is retired
    (name,) = journals(tmp_path)
    content = (tmp_path / journal.FOLDER / name).read_bytes()
    assert (tmp_path / journal.FOLDER / name).stat().st_mode & 0o111 == 0  # not executable
    assert [d for d, _ in journal.records(content)] == digests[:2]
    assert store.retire_journal()
    assert journals(tmp_path) == []
    assert [store.get_bytes(d) for d in digests] == blobs
    written_back(tmp_path, digests[0])
    assert store.put_bytes_many([b"one"]) == [digests[0]]  # nothing new: no journal made
    assert journals(tmp_path) == []


def written_back(root: Path, digest: str) -> None:
    """The blob's file as the kernel's writeback has long made it durable: an hour old."""
    at = time.time() - 3600
    os.utime(blob_path(root, digest), (at, at))


def test_a_dead_writers_journal_brings_back_lost_and_damaged_blobs(tmp_path: Path) -> None:
    """A writer killed right after ``put_bytes_many`` (its journal not retired); then what a
    power loss may do to files never synced: one gone, one empty, one half written. The next
    store opened replays the journal: all three hold their bytes again, and it is removed."""
    blobs = [f"manifest {i} ".encode() * 40 for i in range(4)]
    code = (
        "import os, sys; from lineage.storage.local import LocalBlobStore; "
        "s = LocalBlobStore(sys.argv[1]); s.put_bytes_many([bytes.fromhex(h) for h in "
        "sys.argv[2:]]); os._exit(0)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), *(b.hex() for b in blobs)],
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert len(journals(tmp_path)) == 1
    digests = [hash_bytes(b) for b in blobs]
    blob_path(tmp_path, digests[0]).unlink()
    for digest, size in ((digests[1], 0), (digests[2], 7)):
        path = blob_path(tmp_path, digest)
        path.chmod(0o644)
        os.truncate(path, size)
    store = LocalBlobStore(tmp_path)
    assert [store.get_bytes(d) for d in digests] == blobs
    assert journals(tmp_path) == []
    assert LocalBlobStore(tmp_path).replay() == 0


def test_a_live_writers_journal_is_left_alone(tmp_path: Path) -> None:
    writer = LocalBlobStore(tmp_path)
    (digest,) = writer.put_bytes_many([b"in flight"])
    (name,) = journals(tmp_path)
    other = LocalBlobStore(tmp_path)  # replays on open: not a journal still held
    assert other.replay() == 0
    assert journals(tmp_path) == [name]
    assert other.get_bytes(digest) == b"in flight"
    assert writer.retire_journal()
    assert journals(tmp_path) == []
    assert not writer.retire_journal()  # nothing left to retire


def test_a_torn_or_damaged_record_ends_the_replay(tmp_path: Path) -> None:
    """Records after one cut short or not hashing to its digest were never acknowledged:
    the replay restores what comes before and nothing from there on."""
    good, torn, after = b"acknowledged", b"cut short by the crash", b"never reached"
    damaged = journal.encode(hash_bytes(b"what was meant"), b"what landed")
    cases = {
        "torn": journal.encode(hash_bytes(good), good)
        + journal.encode(hash_bytes(torn), torn)[:-5],
        "damaged": journal.encode(hash_bytes(good), good)
        + damaged
        + journal.encode(hash_bytes(after), after),
    }
    for case, content in cases.items():
        root = tmp_path / case
        (root / journal.FOLDER).mkdir(parents=True)
        (root / journal.FOLDER / "dead.log").write_bytes(content)
        store = LocalBlobStore(root)
        assert store.get_bytes(hash_bytes(good)) == good
        assert store.missing([hash_bytes(torn), hash_bytes(after), hash_bytes(b"what landed")]) == {
            hash_bytes(torn),
            hash_bytes(after),
            hash_bytes(b"what landed"),
        }
        assert journals(root) == []


class NoStaging(SQLiteGraphStore):
    """A graph store that cannot keep blobs in its transactions (as Neo4j): its groups'
    manifests go through the blob store's journal (SQLite's are staged in the commit:
    tests/storage/test_staging.py)."""

    stage_blobs = None  # type: ignore[assignment]


def test_a_groups_manifests_are_journalled_before_its_commit(tmp_path: Path) -> None:
    """What makes a 201 durable: when the group's manifests are synced (the journal written),
    another connection sees none of the group's runs yet; once ``ingest_group`` returns it
    sees them all, and every manifest they name is in the journal or synced since."""
    graph = NoStaging(tmp_path / "store.db")
    blobs = LocalBlobStore(tmp_path / "blobs")
    reader = SQLiteGraphStore(tmp_path / "store.db")
    service = Service(graph, blobs)
    tag = uuid.uuid4().hex[:6]
    runs = [str(uuid.uuid4()) for _ in range(3)]
    events = [check_event(event(tag, i, run)) for i, run in enumerate(runs)]
    seen: list[dict[str, Any]] = []
    journalled: list[str] = []
    put_many = blobs.put_bytes_many

    def watched(data: list[bytes]) -> list[str]:
        seen.append(reader.get_runs(runs))
        digests = put_many(data)
        journalled.extend(digests)
        return digests

    blobs.put_bytes_many = watched  # type: ignore[method-assign]
    try:
        results = ingest_group(service, events)
        assert not [r for r in results if isinstance(r, Exception)]
        assert seen == [{}]
        assert sorted(reader.get_runs(runs)) == sorted(runs)
        (name,) = journals(tmp_path / "blobs")
        content = (tmp_path / "blobs" / journal.FOLDER / name).read_bytes()
        assert {d for d, _ in journal.records(content)} == set(journalled)
        for result in results:
            for version in (*result.outputs, *result.inputs):  # type: ignore[union-attr]
                assert version.digest in journalled
    finally:
        graph.close()
        reader.close()


def event(tag: str, i: int, run: str) -> dict[str, Any]:
    return {
        "eventType": "START",
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": "https://example.org/emitter",
        "run": {"runId": run},
        "job": {"namespace": f"ns-{tag}", "name": f"job_{i}"},
        "inputs": [{"namespace": f"s3://lake-{tag}", "name": f"raw/{i}"}],
        "outputs": [{"namespace": f"s3://lake-{tag}", "name": f"clean/{i}"}],
    }
