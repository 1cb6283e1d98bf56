"""A group of OpenLineage events on Neo4j (lineage.storage.neo4j.state): one read, one write
and one commit whatever the group, counted on the wire of the real driver, and what they
store is what SQLite stores of the same groups (lineage checked with networkx)."""

from __future__ import annotations

import collections
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from neo4j._sync.io._bolt._common import Outbox

from lineage.hashing import hash_bytes
from lineage.openlineage import check_event, internal_name, run_id
from lineage.openlineage.group import ingest_group
from lineage.records import TokenRecord
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.service import Service

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
# Bolt message tags (the protocol's, in the driver's packer)
BEGIN, RUN, COMMIT = b"\x11", b"\x10", b"\x12"
RUNS = 6  # runs a group of the workload


class Wire:
    """Messages the driver sends by tag, and round trips (flushes of its outbox), from the
    thread that made it (not the staged blobs' retirer, a second later in its own)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: collections.Counter[bytes] = collections.Counter()
        self.trips = 0
        append, flush = Outbox.append_message, Outbox.flush
        mine = threading.get_ident()

        def appended(outbox: Outbox, tag: bytes, *args: Any) -> Any:
            if threading.get_ident() == mine:
                self.sent[tag] += 1
            return append(outbox, tag, *args)

        def flushed(outbox: Outbox) -> Any:
            sent = flush(outbox)
            if threading.get_ident() == mine:
                self.trips += bool(sent)
            return sent

        monkeypatch.setattr(Outbox, "append_message", appended)
        monkeypatch.setattr(Outbox, "flush", flushed)

    def reset(self) -> None:
        self.sent.clear()
        self.trips = 0


@pytest.fixture
def neo4j_service(neo4j_server: Any, tmp_path: Path) -> Iterator[Service]:
    neo4j_server.wipe()
    opened = open_service(neo4j_server.uri, str(tmp_path / "neo4j-blobs"))
    try:
        yield opened
    finally:
        opened.graph.close()


def event(kind: str, run: str, job: str, minute: int, **datasets: Any) -> dict[str, Any]:
    """A run event; ``inputs``/``outputs``: names, or ``(name, version)`` to name one."""

    def dataset(item: str | tuple[str, str], out: bool) -> dict[str, Any]:
        name, version = (item, None) if isinstance(item, str) else item
        facets: dict[str, Any] = {}
        if out:
            facets["schema"] = {"fields": [{"name": "a", "type": "STRING"}]}
        if version:
            facets["version"] = {"datasetVersion": version}
        return {"namespace": "s3://lake", "name": name, "facets": facets}

    return check_event(
        {
            "eventType": kind,
            "eventTime": f"2024-05-01T10:{minute:02d}:00Z",
            "producer": PRODUCER,
            "run": {"runId": run},
            "job": {"namespace": "spark", "name": job},
            "inputs": [dataset(d, False) for d in datasets.get("inputs", ())],
            "outputs": [dataset(d, True) for d in datasets.get("outputs", ())],
        }
    )


def workload() -> list[list[dict[str, Any]]]:
    """Groups as a server makes them: a seed run, then the START of ``RUNS`` runs, then
    their COMPLETE. Each run reads the shared table (bound to its newest version), one
    table of its own, and half of them a named version; it writes a table of its own
    (some of them one the seed run wrote: a new version of a stored artifact)."""
    seed = str(uuid.uuid4())
    # its datasets have the facets the later ones have: their flattened keys' indexes made
    made = ["dim", "out0", "out2"]
    groups = [[event("COMPLETE", seed, "seed", 0, inputs=[("old", "v1")], outputs=made)]]
    runs = [str(uuid.uuid4()) for _ in range(RUNS)]
    for kind, minute in (("START", 1), ("COMPLETE", 2)):
        group = []
        for i, run in enumerate(runs):
            inputs: list[Any] = ["dim", f"raw{i}"]
            if i % 2:
                inputs.append((f"named{i}", "v7"))
            group.append(event(kind, run, f"job{i % 3}", minute, inputs=inputs,
                               outputs=[f"out{i}"]))  # fmt: skip
        groups.append(group)
    return groups


def stored(service: Service) -> tuple[dict[str, Any], nx.DiGraph]:
    graph = service.graph
    runs = {r.id: (r.state, r.started_at, r.finished_at, r.name) for r in graph.list_runs()}
    versions = {}
    for a in service.artifacts():
        for v in graph.list_versions(a.project, a.name, include_deleted=True):
            versions[v.id] = (v.digest, v.created_by, v.aliases, v.metadata, a.type)
    lineage = nx.DiGraph()
    for edge in graph.expand([*runs, *versions], "down"):
        lineage.add_edge(edge.source, edge.target)
    return {"runs": runs, "versions": versions}, lineage


def test_a_group_is_one_read_one_write_one_commit(
    neo4j_service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = Wire(monkeypatch)
    groups = workload()
    for n, group in enumerate(groups):
        wire.reset()
        results = ingest_group(neo4j_service, group)
        assert not [r for r in results if isinstance(r, Exception)]
        if n == 0:
            continue  # the first group creates indexes, in transactions of their own
        # the read (BEGIN sent with it), the write, the commit
        assert (wire.sent[BEGIN], wire.sent[RUN], wire.sent[COMMIT]) == (1, 2, 1), group
        assert wire.trips == 3
    # what SQLite stores of the same groups
    sqlite = open_service(str(tmp_path / "store"), str(tmp_path / "blobs"))
    try:
        for group in groups:
            assert not [r for r in ingest_group(sqlite, group) if isinstance(r, Exception)]
        want, want_lineage = stored(sqlite)
    finally:
        sqlite.graph.close()
    got, got_lineage = stored(neo4j_service)
    assert got == want
    assert sorted(got_lineage.edges) == sorted(want_lineage.edges)
    assert nx.is_directed_acyclic_graph(got_lineage)
    # each run read the shared table's only version, and made the next version of its own
    dim = f"{internal_name('s3://lake')}/{internal_name('dim')}:v0"
    out2 = f"{internal_name('s3://lake')}/{internal_name('out2')}:v1"
    run = run_id(groups[1][2]["run"]["runId"])
    assert dim in got_lineage.predecessors(run)
    assert list(got_lineage.successors(run)) == [out2]
    assert len(nx.descendants(got_lineage, dim)) == 2 * RUNS  # the runs, their outputs


def test_a_group_whose_runs_are_stored_reads_them_in_the_same_statement(
    neo4j_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each event its own group (one client): a run's COMPLETE finds its START's edges and
    output version in the read, and writes nothing twice."""
    wire = Wire(monkeypatch)
    run = str(uuid.uuid4())
    last = 0
    for kind, minute in (("START", 1), ("RUNNING", 2), ("COMPLETE", 3), ("COMPLETE", 3)):
        wire.reset()
        [result] = ingest_group(
            neo4j_service, [event(kind, run, "job", minute, inputs=["in"], outputs=["out"])]
        )
        assert not isinstance(result, Exception), result
        if kind != "START":  # the first may create its flattened keys' indexes
            # a duplicate changes nothing: the read alone
            assert (wire.sent[BEGIN], wire.sent[COMMIT]) == (1, 1)
            assert wire.sent[RUN] == (1 if minute == last else 2)
            assert wire.trips == 1 + wire.sent[RUN]
        last = minute
    graph = neo4j_service.graph
    assert graph.get_runs([run_id(run)])[run_id(run)].state == "finished"
    prefix = internal_name("s3://lake")
    assert [v.index for v in graph.list_versions(prefix, internal_name("out"))] == [0]
    assert [v.index for v in graph.list_versions(prefix, internal_name("in"))] == [0]
    ups = graph.expand([run_id(run)], "up")
    assert [e.source for e in ups] == [f"{prefix}/{internal_name('in')}:v0"]


def test_a_token_is_looked_up_in_one_round_trip(
    neo4j_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = create_token(neo4j_service, "write", "probe")
    digest = hash_bytes(secret.encode())
    wire = Wire(monkeypatch)
    found = neo4j_service.graph.find_token(digest)
    assert isinstance(found, TokenRecord) and found.scope == "write" and not found.revoked
    assert wire.trips == 1
    assert neo4j_service.graph.find_token(hash_bytes(b"no such token")) is None
    assert neo4j_service.graph.revoke_token(found.id)
    revoked = neo4j_service.graph.find_token(digest)
    assert revoked is not None and revoked.revoked
