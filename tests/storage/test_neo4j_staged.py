"""Blobs staged in Neo4j's transaction (lineage.storage.neo4j.staged): a group of OpenLineage
events over Neo4j and a local blob store keeps its manifests in the commit that names them
(sent with its write statement), writes their files unsynced and syncs them a while later; a
writer that dies first leaves nodes from which the next one, or any command once they are
stale, restores every manifest. Each blob store's nodes are its own: Neo4j is shared by
writers whose blob stores another's sync does not cover."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import neo4j
import pytest
from test_staging import damage, events, runs_seen_at_each_write, version_blobs

from lineage.hashing import hash_bytes
from lineage.openlineage.group import ingest_group
from lineage.server.app import open_service
from lineage.service import Service
from lineage.storage import open_stores, staging
from lineage.storage.local import LocalBlobStore
from lineage.storage.neo4j import Neo4jGraphStore
from lineage.storage.staging import Staging


@pytest.fixture
def uri(neo4j_server: Any) -> str:
    neo4j_server.wipe()
    return str(neo4j_server.uri)


@pytest.fixture
def no_retirement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Staged blobs stay staged (the retirer sleeps for an hour): a writer that dies first."""
    monkeypatch.setattr(staging, "RETIRE_SECONDS", 3600.0)


def open_pair(uri: str, blobs: Path) -> Service:
    return Service(Neo4jGraphStore(uri), LocalBlobStore(blobs))


def staged(service: Service) -> dict[str, bytes]:
    """The blobs staged for ``service``'s blob store, by digest."""
    side = service.graph.staging_for(service.blobs.url)  # type: ignore[attr-defined]
    return {digest: data for _, digest, data in side.staged_blobs()}


def test_a_group_stages_every_manifest_it_names_in_its_commit(
    uri: str, tmp_path: Path, no_retirement: None
) -> None:
    service = open_pair(uri, tmp_path / "blobs")
    results = ingest_group(service, events("a", 4))
    assert not [r for r in results if isinstance(r, Exception)]
    found = staged(service)
    named = version_blobs(service)
    assert named and set(named) <= set(found)
    for digest, data in found.items():
        assert hash_bytes(data) == digest
        assert service.blobs.get_bytes(digest) == data  # the files are there, for readers
    service.graph.close()


def test_manifests_are_written_before_the_commit_and_staged_in_it(
    uri: str, tmp_path: Path, no_retirement: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the group's manifests are written to their files, another connection sees none
    of its runs; once ``ingest_group`` returns it sees them all, and every manifest they
    name staged with them. No blob of the group waits for an fsync of its own."""
    service = open_pair(uri, tmp_path / "blobs")
    reader = Neo4jGraphStore(uri)
    blobs: Any = service.blobs
    sent = events("w", 3)
    runs = sorted({event["run"]["runId"] for event in sent})
    seen = runs_seen_at_each_write(blobs, reader, runs)

    def synced(data: bytes) -> str:
        raise AssertionError("a manifest of the group was stored durably on its own")

    monkeypatch.setattr(blobs, "put_bytes", synced)
    ingest_group(service, sent)
    assert seen and all(s == {} for s in seen)
    assert sorted(reader.get_runs(runs)) == runs
    named = version_blobs(service)
    assert named and named.items() <= staged(service).items()
    reader.close()
    service.graph.close()


def test_retirement_syncs_before_it_forgets(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "RETIRE_SECONDS", 0.05)
    service = open_pair(uri, tmp_path / "blobs")
    blobs: Any = service.blobs
    rows_at_sync: list[int] = []
    synced = threading.Event()
    real_sync = blobs.sync

    def sync() -> None:  # the real syncfs, and what was still staged when it ran
        rows_at_sync.append(len(staged(service)))
        real_sync()
        synced.set()

    monkeypatch.setattr(blobs, "sync", sync)
    ingest_group(service, events("c", 2))
    assert synced.wait(30)
    for _ in range(600):
        if not staged(service):
            break
        threading.Event().wait(0.05)
    assert staged(service) == {}
    assert rows_at_sync and rows_at_sync[0] > 0
    service.graph.close()


def test_closing_the_store_waits_for_its_retirer(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store closed while its retirer is in a retirement: close waits for it, and the
    staged nodes are forgotten (it closed the driver under the retirer, which logged a
    DriverError and left them for a recovery)."""
    monkeypatch.setattr(staging, "RETIRE_SECONDS", 0.02)
    service = open_pair(uri, tmp_path / "blobs")
    blobs: Any = service.blobs
    syncing, go_on = threading.Event(), threading.Event()
    real_sync = blobs.sync
    failures: list[str] = []
    monkeypatch.setattr(staging.logger, "exception", lambda *a, **k: failures.append(a[0]))

    def sync() -> None:
        syncing.set()
        assert go_on.wait(30)
        real_sync()

    monkeypatch.setattr(blobs, "sync", sync)
    ingest_group(service, events("closing", 3))
    assert syncing.wait(30)
    threading.Timer(0.2, go_on.set).start()
    service.graph.close()
    assert go_on.is_set() and failures == []
    again = open_pair(uri, tmp_path / "blobs")
    assert staged(again) == {}
    again.graph.close()


def test_a_dead_writers_blobs_are_restored_and_no_other_store_loses_its_own(
    uri: str, tmp_path: Path, no_retirement: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers on one Neo4j, each its own blob store (two machines): the first dies
    before syncing and a power loss damages its files; a command opening its stores
    restores them and forgets its nodes, and the other writer's nodes stay staged (its
    files were never synced by that recovery)."""
    first = open_pair(uri, tmp_path / "one")
    other = open_pair(uri, tmp_path / "two")
    ingest_group(first, events("d", 3))
    expected = version_blobs(first)  # the store holds first's versions alone so far
    ingest_group(other, events("o", 2))
    theirs = staged(other)
    assert theirs and staged(first)
    damage(first.blobs, list(staged(first)))  # type: ignore[arg-type]
    first.graph.close()
    monkeypatch.setattr(staging, "STALE_SECONDS", -1.0)
    reader = open_stores(uri, str(tmp_path / "one"))  # e.g. `lineage tree` after a reboot
    assert {d: reader.blobs.get_bytes(d) for d in expected} == expected
    assert staged(Service(reader.graph, reader.blobs)) == {}
    assert staged(other) == theirs
    reader.close()
    other.graph.close()


def test_a_recovery_neo4j_refuses_is_a_warning_and_the_stores_open(
    uri: str,
    tmp_path: Path,
    no_retirement: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neo4j refuses to forget a dead writer's staged blobs (something else linked their
    nodes, and a DELETE of a node with relationships is refused: a ClientError of the
    server's own): the command opening the stores warns, as over SQLite, and reads on,
    its manifests restored all the same."""
    first = open_pair(uri, tmp_path / "blobs")
    ingest_group(first, events("r", 2))
    expected = version_blobs(first)
    assert staged(first)
    damage(first.blobs, list(staged(first)))  # type: ignore[arg-type]
    first.graph.close()
    with neo4j.GraphDatabase.driver(uri) as driver:
        driver.execute_query("MATCH (s:StagedBlob) CREATE (s)-[:SEEN_BY]->(:Audit)")
    monkeypatch.setattr(staging, "STALE_SECONDS", -1.0)
    with caplog.at_level(logging.WARNING, logger="lineage.storage.staging"):
        reader = open_stores(uri, str(tmp_path / "blobs"))
    [warning] = [r for r in caplog.records if r.name == "lineage.storage.staging"]
    assert "cannot recover the staged blobs" in warning.getMessage()
    assert "ConstraintValidationFailed" in warning.getMessage()
    assert {d: reader.blobs.get_bytes(d) for d in expected} == expected
    assert set(staged(Service(reader.graph, reader.blobs))) >= set(expected)  # still staged
    reader.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lineage.storage.staging"):
        server = open_service(uri, str(tmp_path / "blobs"))  # a server starting on them
    [warning] = [r for r in caplog.records if r.name == "lineage.storage.staging"]
    assert "ConstraintValidationFailed" in warning.getMessage()
    assert version_blobs(server) == expected
    server.graph.close()


def test_a_group_that_fails_makes_its_files_durable_before_its_events_go_alone(
    uri: str, tmp_path: Path, no_retirement: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's write fails after its manifests were written unsynced and staged (its
    transaction rolled back, the nodes with it): the files are synced before its events
    are stored one by one, whose blob store takes a file already there as stored."""
    service = open_pair(uri, tmp_path / "blobs")
    graph: Any = service.graph
    blobs: Any = service.blobs
    order: list[str] = []
    sync, put = blobs.sync, blobs.put_bytes

    def failing(**parts: Any) -> Any:
        order.append("write")
        raise RuntimeError("the group's write failed")

    def synced() -> None:
        order.append("sync")
        sync()

    def stored(data: bytes) -> str:
        order.append("put")
        return str(put(data))

    monkeypatch.setattr(graph, "write_planned", failing)
    monkeypatch.setattr(blobs, "sync", synced)
    monkeypatch.setattr(blobs, "put_bytes", stored)
    results = ingest_group(service, events("x", 2))
    assert not [r for r in results if isinstance(r, Exception)]
    assert order[:2] == ["write", "sync"]
    assert "write" not in order[1:]  # each event alone: not set-based
    named = version_blobs(service)
    assert named and {d: blobs.get_bytes(d) for d in named} == named
    assert staged(service) == {}  # rolled back with the group
    service.graph.close()


def test_each_blob_store_has_its_own_staging(uri: str, tmp_path: Path) -> None:
    graph = Neo4jGraphStore(uri)
    one, two = LocalBlobStore(tmp_path / "one"), LocalBlobStore(tmp_path / "two")
    first, second = Staging.of(graph, one), Staging.of(graph, two)
    assert first is not None and second is not None
    assert first.graph.scope != second.graph.scope  # type: ignore[attr-defined]
    assert Staging.of(graph, object()) is None
    graph.close()
