"""Blobs staged in SQLite's transaction (lineage.storage.staging): a group of OpenLineage
events over SQLite and a local blob store keeps its manifests in the commit that names them,
writes their files unsynced, and syncs them a while later; a writer that dies first leaves
rows from which the next one (or any service, once they are stale) restores every manifest,
written again where a power loss damaged or lost it."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import free_port
from server_process import ServerProcess
from test_openlineage_group import job_events

from lineage.errors import DigestMismatch
from lineage.hashing import hash_bytes
from lineage.manifest import manifest_digests
from lineage.openlineage import check_event, ingest
from lineage.openlineage.group import ingest_group
from lineage.server.auth import create_token
from lineage.service import Service
from lineage.storage import open_stores, staging
from lineage.storage.local import LocalBlobStore
from lineage.storage.sqlite import SQLiteGraphStore
from lineage.storage.staging import Staging


def events(tag: str, n: int) -> list[Any]:
    return [check_event(event) for event in raw_events(tag, n)]


def raw_events(tag: str, n: int) -> list[dict[str, Any]]:
    """START and COMPLETE of ``n`` runs: a shared table and a part of their own in, one out."""
    return [event for i in range(n) for event in job_events(tag, i, str(uuid.uuid4()))]


def open_pair(tmp_path: Path) -> Service:
    return Service(
        SQLiteGraphStore(tmp_path / "store" / "lineage.db"), LocalBlobStore(tmp_path / "blobs")
    )


def version_blobs(service: Service) -> dict[str, bytes]:
    """Every blob the store's versions name (manifest roots and pages), read back."""
    wanted: set[str] = set()
    for project in service.graph.list_projects():
        for artifact in service.graph.list_artifacts(project):
            for version in service.graph.list_versions(project, artifact.name):
                wanted |= manifest_digests(service.blobs, version.digest)
    return {digest: service.blobs.get_bytes(digest) for digest in wanted}


def runs_seen_at_each_write(blobs: Any, reader: Any, runs: list[str]) -> list[dict[str, Any]]:
    """What ``reader`` (another connection) sees of ``runs`` at each unsynced write of
    ``blobs``: a list filled as the writes come."""
    seen: list[dict[str, Any]] = []
    written = blobs.put_bytes_unsynced

    def watched(items: list[tuple[str, bytes]]) -> None:
        seen.append(reader.get_runs(runs))
        written(items)

    blobs.put_bytes_unsynced = watched
    return seen


@pytest.fixture
def no_retirement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Staged blobs stay staged (the retirer sleeps for an hour): a writer that dies first."""
    monkeypatch.setattr(staging, "RETIRE_SECONDS", 3600.0)


def test_a_group_stages_every_manifest_it_names_in_its_commit(
    tmp_path: Path, no_retirement: None
) -> None:
    service = open_pair(tmp_path)
    results = ingest_group(service, events("a", 4))
    assert not [r for r in results if isinstance(r, Exception)]
    staged = {digest: data for _, digest, data in service.graph.staged_blobs()}  # type: ignore[attr-defined]
    named = version_blobs(service)
    assert named and set(named) <= set(staged)  # inputs seen before included: every one named
    for digest, data in staged.items():
        assert hash_bytes(data) == digest
        assert service.blobs.get_bytes(digest) == data  # the files are there, for readers


def test_manifests_are_written_before_the_commit_and_staged_in_it(
    tmp_path: Path, no_retirement: None
) -> None:
    """What makes a 201 durable: when the group's manifests are written to their files,
    another connection sees none of its runs yet (and readers find the files before the
    runs); once ``ingest_group`` returns it sees them all, and every manifest they name
    staged with them."""
    service = open_pair(tmp_path)
    reader = SQLiteGraphStore(tmp_path / "store" / "lineage.db")
    blobs: Any = service.blobs
    sent = events("w", 3)
    runs = sorted({event["run"]["runId"] for event in sent})
    seen = runs_seen_at_each_write(blobs, reader, runs)
    ingest_group(service, sent)
    assert seen and all(runs_seen == {} for runs_seen in seen)  # one write an event, or a group
    assert sorted(reader.get_runs(runs)) == runs
    staged = {digest: data for _, digest, data in reader.staged_blobs()}
    named = version_blobs(service)
    assert named and named.items() <= staged.items()
    reader.close()


def test_a_files_process_writes_the_files_and_one_that_dies_leaves_them_to_the_writer(
    tmp_path: Path, no_retirement: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's writer has its manifests' files written by a process of its own
    (use_files_process): the same files and staged rows as written in-thread, every file
    there before the commit. Killed, the next groups write them in-thread, saying so once."""
    service = open_pair(tmp_path)
    stage = Staging.of(service.graph, service.blobs)
    assert stage is not None
    stage.recover_once()
    stage.use_files_process()
    files = stage._files
    assert files is not None
    deadline = time.monotonic() + 60
    while not files.ready():  # until then a group writes in-thread, without waiting
        assert time.monotonic() < deadline, "the files process did not start"
        time.sleep(0.02)
    reader = SQLiteGraphStore(tmp_path / "store" / "lineage.db")
    blobs: Any = service.blobs
    sent = events("f", 3)
    runs = sorted({event["run"]["runId"] for event in sent})
    published: list[tuple[set[str], dict[str, Any]]] = []
    published_items: list[list[tuple[str, bytes]]] = []
    stage_rows = service.graph.stage_blobs  # type: ignore[attr-defined]

    def staged(items: list[tuple[str, bytes]]) -> None:  # in the transaction, at its end
        present = {d for d, data in items if blobs.path(d).read_bytes() == data}
        published.append((present, reader.get_runs(runs)))
        published_items.append(items)
        stage_rows(items)

    service.graph.stage_blobs = staged  # type: ignore[attr-defined]
    before = [*(p for p in blobs.root.rglob("*") if p.is_file())]
    assert all(isinstance(r, object) for r in ingest_group(service, sent))
    ((present, seen),) = published
    assert present == {d for d, _ in published_items[0]}
    assert seen == {}  # every file written before the commit
    named = version_blobs(service)
    assert named and set(named) <= present
    staged_rows = {digest: data for _, digest, data in reader.staged_blobs()}
    assert named.items() <= staged_rows.items()
    assert not [p for p in before if not p.exists()]

    files.process.kill()  # a files process gone: the writer writes them itself
    files.process.wait()
    results = ingest_group(service, events("g", 2))
    assert not [r for r in results if isinstance(r, Exception)]
    assert stage._files is None
    assert len(published) == 2 and published[1][0] == {d for d, _ in published_items[1]}
    assert "blob files process stopped" in caplog.text
    assert set(version_blobs(service)) > set(named)
    stage.close()
    reader.close()


def test_a_refused_event_stages_nothing(tmp_path: Path, no_retirement: None) -> None:
    service = open_pair(tmp_path)
    model = raw_events("b1", 1)[0]
    model["outputs"].append(
        {"namespace": "wh", "name": "t", "facets": {"lineage": {"type": "model"}}}
    )
    bad = raw_events("b2", 1)[0]
    bad["outputs"].append({"namespace": "wh", "name": "t"})  # a dataset of the model's name
    results = ingest_group(service, [check_event(model), *events("b", 1), check_event(bad)])
    assert isinstance(results[-1], Exception)
    staged = {digest for _, digest, _ in service.graph.staged_blobs()}  # type: ignore[attr-defined]
    assert staged == set(version_blobs(service))


def test_retirement_syncs_before_it_forgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "RETIRE_SECONDS", 0.05)
    service = open_pair(tmp_path)
    graph: Any = service.graph
    blobs: Any = service.blobs
    rows_at_sync: list[int] = []
    synced = threading.Event()
    real_sync = blobs.sync

    def sync() -> None:  # the real syncfs, and what was still staged when it ran
        rows_at_sync.append(len(graph.staged_blobs()))
        real_sync()
        synced.set()

    monkeypatch.setattr(blobs, "sync", sync)
    ingest_group(service, events("c", 2))
    assert graph.staged_blobs()
    assert synced.wait(30)
    for _ in range(600):
        if not graph.staged_blobs():
            break
        threading.Event().wait(0.05)
    assert graph.staged_blobs() == []
    assert rows_at_sync and rows_at_sync[0] > 0


def test_closing_the_store_waits_for_its_retirer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph store closed while the retirer is between its sync and its forgetting (a
    server's shutdown, a command's end a second after its last group): close waits for it,
    the staged rows are forgotten, and nothing uses a closed connection. It closed them
    under the retirer: the rows stayed, and a retirer in the middle of a statement crashed
    the process (bench_openlineage --in-process: a segmentation fault)."""
    monkeypatch.setattr(staging, "RETIRE_SECONDS", 0.02)
    service = open_pair(tmp_path)
    blobs: Any = service.blobs
    syncing, go_on = threading.Event(), threading.Event()
    real_sync = blobs.sync
    failures: list[str] = []
    monkeypatch.setattr(staging.logger, "exception", lambda *a, **k: failures.append(a[0]))

    def sync() -> None:  # the real syncfs, once the test has started to close the store
        syncing.set()
        assert go_on.wait(30)
        real_sync()

    monkeypatch.setattr(blobs, "sync", sync)
    ingest_group(service, events("closing", 3))
    assert syncing.wait(30)  # the retirer is in its retirement
    threading.Timer(0.2, go_on.set).start()  # the close below is already waiting by then
    service.graph.close()
    assert go_on.is_set()  # close returned after the retirement, not before
    assert failures == []
    reopened = SQLiteGraphStore(tmp_path / "store" / "lineage.db")
    assert reopened.staged_blobs() == []  # forgotten: durable in the blob store
    reopened.close()


def open_connections(path: Path) -> int:
    """File descriptors of this process open on the database file ``path``."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))


def test_retirers_come_and_go_and_leave_no_connection_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bursts of groups with quiet seconds between them: a retirer thread each burst, and
    none leaves its database connection behind."""
    monkeypatch.setattr(staging, "RETIRE_SECONDS", 0.02)
    service = open_pair(tmp_path)
    path = tmp_path / "store" / "lineage.db"
    found = Staging.of(service.graph, service.blobs)
    assert found is not None
    opened = []
    for burst in range(4):
        ingest_group(service, events(f"burst{burst}", 1))
        for _ in range(1000):  # until the burst's retirer is gone
            if found._retirer is None:
                break
            threading.Event().wait(0.01)
        assert found._retirer is None
        assert service.graph.staged_blobs() == []  # type: ignore[attr-defined]
        opened.append(open_connections(path))
    assert opened == [opened[0]] * 4  # a leaked one a retirer: 2, 3, 4, 5


def damage(blobs: LocalBlobStore, digests: list[str]) -> None:
    """What a power loss may leave of files written unsynced: gone, empty, or cut short."""
    for i, digest in enumerate(digests):
        path = blobs.path(digest)
        if i % 3 == 0:
            path.unlink()
            continue
        os.chmod(path, 0o644)
        data = path.read_bytes()
        path.write_bytes(b"" if i % 3 == 1 else data[: len(data) // 2])


def dead_writer(tmp_path: Path, tag: str, runs: int) -> tuple[dict[str, bytes], list[str]]:
    """A writer's groups staged, never synced, their files damaged by a power loss: every
    blob its versions name, as it was, and the digests it staged."""
    first = open_pair(tmp_path)
    ingest_group(first, events(tag, runs))
    expected = version_blobs(first)
    staged = [digest for _, digest, _ in first.graph.staged_blobs()]  # type: ignore[attr-defined]
    damage(first.blobs, staged)  # type: ignore[arg-type]
    first.graph.close()
    return expected, staged


def test_the_next_writer_restores_what_a_dead_one_staged(
    tmp_path: Path, no_retirement: None
) -> None:
    expected, staged = dead_writer(tmp_path, "d", 3)
    # a new writer (another store object: a new process's), fresh rows not yet stale
    second = open_pair(tmp_path)
    assert second.graph.staged_blobs()  # type: ignore[attr-defined]
    ingest_group(second, events("d2", 1))  # its first group recovers first
    assert {d: second.blobs.get_bytes(d) for d in expected} == expected
    restored = {digest for _, digest, _ in second.graph.staged_blobs()}  # type: ignore[attr-defined]
    assert not restored & set(staged)  # forgotten once durable: only the new group's remain


def test_any_command_restores_stale_staged_blobs(
    tmp_path: Path, no_retirement: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stores a command opens (``open_stores``) recover what a writer left staged
    before a power loss, and leave a live writer's fresh rows alone."""
    expected, _ = dead_writer(tmp_path, "e", 2)
    where = (str(tmp_path / "store"), str(tmp_path / "blobs"))
    fresh = open_stores(*where)  # fresh rows are a live writer's: left to it
    assert fresh.graph.staged_blobs()  # type: ignore[attr-defined]
    fresh.close()
    monkeypatch.setattr(staging, "STALE_SECONDS", -1.0)
    reader = open_stores(*where)  # e.g. `lineage tree` after a power loss
    assert reader.graph.staged_blobs() == []  # type: ignore[attr-defined]
    assert {d: reader.blobs.get_bytes(d) for d in expected} == expected
    reader.close()


def test_a_damaged_file_already_there_is_written_again(tmp_path: Path, no_retirement: None) -> None:
    """A file under a manifest's digest that a power loss damaged before its group
    committed: the same event sent again writes it again (a stat would call it stored)."""
    sent = events("f", 1)
    first = open_pair(tmp_path / "one")
    ingest_group(first, sent)
    expected = version_blobs(first)
    second = open_pair(tmp_path / "two")
    for digest in expected:  # leftovers of a group that never committed, damaged
        path = second.blobs.path(digest)  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    ingest_group(second, sent)
    assert {d: second.blobs.get_bytes(d) for d in expected} == expected


def test_an_event_stored_alone_makes_a_failed_groups_unsynced_manifests_durable(
    tmp_path: Path,
) -> None:
    """A group that failed leaves its manifests' files unsynced and staged nowhere; the same
    events stored one by one (``lineage import``) find them there and make them durable
    (a fsync each, lineage.storage.local) instead of trusting them."""
    sent = events("g", 2)
    scratch = open_pair(tmp_path / "scratch")
    ingest_group(scratch, sent)
    manifests = version_blobs(scratch)
    service = open_pair(tmp_path / "real")
    blobs: Any = service.blobs
    blobs.put_bytes_unsynced(list(manifests.items()))  # the failed group's leftovers
    for event in sent:
        ingest(service, event)
    assert version_blobs(service) == manifests
    assert blobs.dedup_synced >= len(manifests) and blobs.dedup_trusted == 0


def test_restore_refuses_bytes_that_are_not_their_digest(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    good = b"good"
    with pytest.raises(DigestMismatch, match="do not hash to their digest"):
        blobs.restore([(hash_bytes(good), good), (hash_bytes(b"other"), b"bad")])
    assert blobs.get_bytes(hash_bytes(good)) == good
    assert blobs.missing([hash_bytes(b"other")]) == {hash_bytes(b"other")}


def test_only_both_stores_able_stage(tmp_path: Path) -> None:
    graph = SQLiteGraphStore(tmp_path / "g.db")
    blobs = LocalBlobStore(tmp_path / "b")
    assert isinstance(Staging.of(graph, blobs), Staging)
    assert Staging.of(graph, blobs) is Staging.of(graph, blobs)
    assert Staging.of(graph, object()) is None
    assert Staging.of(object(), blobs) is None


def test_a_server_started_after_a_power_loss_answers_every_versions_files(
    tmp_path: Path, no_retirement: None
) -> None:
    """Its groups staged and never synced, the files damaged, the machine rebooted: the
    server that starts on the store answers each version's files (GraphQL ``files``), each
    read from a manifest restored under its digest."""
    first = open_pair(tmp_path)
    ingest_group(first, events("p", 3))
    versions = [
        version
        for project in first.graph.list_projects()
        for artifact in first.graph.list_artifacts(project)
        for version in first.graph.list_versions(project, artifact.name)
    ]
    expected = {v.ref: [e.uri for e in first.manifest(v)] for v in versions}
    staged = [digest for _, digest, _ in first.graph.staged_blobs()]  # type: ignore[attr-defined]
    damage(first.blobs, staged)  # type: ignore[arg-type]
    token = create_token(first, "read", "reader")
    # the reboot: the rows were staged before it
    db = first.graph._db()  # type: ignore[attr-defined]
    db.execute("UPDATE staged_blobs SET at = at - 600")
    first.graph.close()
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    server = ServerProcess(store, blobs, port=free_port(), log=tmp_path / "log")
    server.start()
    try:
        for ref, uris in expected.items():
            answer = httpx.post(
                f"{server.url}/graphql",
                json={
                    "query": "query($r: String!) { artifactVersion(ref: $r) "
                    "{ files { nodes { path uri } } } }",
                    "variables": {"r": ref},
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            ).json()
            assert "errors" not in answer, answer
            files = answer["data"]["artifactVersion"]["files"]["nodes"]
            assert [f["uri"] for f in files] == uris
    finally:
        server.stop()
    assert SQLiteGraphStore(tmp_path / "store" / "lineage.db").staged_blobs() == []
