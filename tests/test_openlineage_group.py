"""Group commit of OpenLineage events: concurrent POSTs to a real server (both stores) give
the graph the events describe; in one group, a refused event stores nothing and the others
all of theirs, manifests included; SQLite's nested transactions undo a failed part alone;
Neo4j's transaction is all or nothing."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import networkx as nx
import pytest
from ports import free_port
from server_process import ServerProcess

from lineage.errors import InvalidInput
from lineage.manifest import manifest_digests
from lineage.openlineage import InvalidEvent, check_event, internal_name, run_id
from lineage.openlineage.group import Transactional, ingest_group
from lineage.records import RunRecord
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.service import Service
from lineage.storage.sqlite import SQLiteGraphStore

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"


def job_events(tag: str, i: int, run: str) -> list[dict[str, Any]]:
    """START and COMPLETE of a Spark-like run: a shared table and its own part in, one out."""
    base: dict[str, Any] = {
        "producer": PRODUCER,
        "run": {"runId": run},
        "job": {"namespace": f"spark-{tag}", "name": f"etl.job_{i % 3}"},
        "inputs": [
            {"namespace": f"s3://lake-{tag}", "name": "dim/customers"},
            {"namespace": f"s3://lake-{tag}", "name": f"raw/part-{i}"},
        ],
        "outputs": [
            {
                "namespace": f"s3://lake-{tag}",
                "name": f"clean/part-{i}",
                "facets": {"schema": {"fields": [{"name": "a", "type": "STRING"}]}},
            }
        ],
    }
    return [
        {**base, "eventType": kind, "eventTime": f"2024-05-01T10:0{m}:00Z"}
        for kind, m in (("START", 0), ("COMPLETE", 1))
    ]


def artifact(tag: str, name: str) -> str:
    return f"{internal_name(f's3://lake-{tag}')}/{internal_name(name)}"


def stored_graph(service: Service, runs: list[str]) -> nx.DiGraph:
    """Runs and artifacts (not versions) and the edges between them, as stored."""
    graph = nx.DiGraph()
    for edge in service.graph.expand(runs, "up") + service.graph.expand(runs, "down"):
        source, target = (
            node if node in runs else node.rpartition(":")[0] for node in (edge.source, edge.target)
        )
        graph.add_edge(source, target)
    return graph


def expected_graph(tag: str, runs: list[str]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for i, run in enumerate(runs):
        graph.add_edge(artifact(tag, "dim/customers"), run)
        graph.add_edge(artifact(tag, f"raw/part-{i}"), run)
        graph.add_edge(run, artifact(tag, f"clean/part-{i}"))
    return graph


def test_concurrent_posts_store_what_the_events_say(backend: Any, tmp_path: Path) -> None:
    """8 clients post the START and COMPLETE of 8 runs, shuffled and each sent twice: every
    answer 201, and the store holds each run finished, one version of each output, the
    shared table once, and exactly the edges of the events (networkx)."""
    service = open_service(backend.store, backend.blobs)
    token = create_token(service, "write", "emitter")
    tag = uuid.uuid4().hex[:6]
    runs = [str(uuid.uuid4()) for _ in range(8)]
    bodies = [json.dumps(e) for i, r in enumerate(runs) for e in job_events(tag, i, r)] * 2
    random.Random(11).shuffle(bodies)
    server = ServerProcess(backend.store, backend.blobs, port=free_port(), log=tmp_path / "log")
    server.start()
    answers: list[int] = []

    def client(share: list[str]) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            for body in share:
                answers.append(
                    http.post(
                        f"{server.url}/api/v1/lineage",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    ).status_code
                )

    try:
        threads = [threading.Thread(target=client, args=(bodies[k::8],)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    try:
        assert answers == [201] * len(bodies)
        stored = service.graph.get_runs(runs)
        assert sorted(stored) == sorted(runs)
        assert {r.state for r in stored.values()} == {"finished"}
        for i in range(len(runs)):
            project, _, name = artifact(tag, f"clean/part-{i}").partition("/")
            assert len(service.versions(project, name)) == 1
        project, _, name = artifact(tag, "dim/customers").partition("/")
        assert len(service.versions(project, name)) == 1
        got, want = stored_graph(service, runs), expected_graph(tag, runs)
        assert sorted(got.edges) == sorted(want.edges)
        # every committed version's manifest is in the blob store
        for a in service.artifacts():
            for v in service.versions(a.project, a.name):
                assert not service.blobs.missing(manifest_digests(service.blobs, v.digest))
    finally:
        service.graph.close()


def test_a_refused_event_in_a_group_stores_nothing_the_others_all(backend: Any) -> None:
    service = open_service(backend.store, backend.blobs)
    try:
        tag = uuid.uuid4().hex[:6]
        runs = [str(uuid.uuid4()) for _ in range(3)]
        raw = [job_events(tag, i, runs[i])[0] for i in range(3)]
        # the middle one writes, as a dataset, what the first one makes a model of
        raw[0]["outputs"].append(
            {"namespace": f"wh-{tag}", "name": "t", "facets": {"lineage": {"type": "model"}}}
        )
        raw[1]["outputs"].append({"namespace": f"wh-{tag}", "name": "t"})
        events = [check_event(e) for e in raw]
        blobs_before = set(service.blobs.digests())
        results = ingest_group(service, events)
        assert isinstance(results[1], InvalidEvent)
        assert results[1].field == "outputs[1].name"
        assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
        assert sorted(service.graph.get_runs(runs)) == sorted([runs[0], runs[2]])
        # the outputs and the inputs first seen of the two stored, with their manifests
        made = [results[0].outputs[0], results[2].outputs[0], *results[0].inputs]
        assert {v.id for v in made} >= {artifact(tag, "clean/part-0") + ":v0"}
        for version in made:
            assert not service.blobs.missing(manifest_digests(service.blobs, version.digest))
        # and no blob of the refused one: its own input was never seen, nor written down
        project, _, name = artifact(tag, "raw/part-1").partition("/")
        assert service.versions(project, name) == []
        new = set(service.blobs.digests()) - blobs_before
        wanted = set().union(
            *(manifest_digests(service.blobs, v.digest) for v in service_versions(service, tag))
        )
        assert new == wanted
    finally:
        service.graph.close()


def service_versions(service: Service, tag: str) -> list[Any]:
    projects = [internal_name(f"s3://lake-{tag}"), internal_name(f"wh-{tag}")]
    return [v for p in projects for a in service.artifacts(p) for v in service.versions(p, a.name)]


def test_sqlite_transaction_undoes_a_failed_part_alone(tmp_path: Path) -> None:
    graph = SQLiteGraphStore(tmp_path / "store")
    try:
        assert isinstance(graph, Transactional)

        def run(name: str) -> RunRecord:
            return RunRecord(id=run_id(name), project="p", name=name, state="running",
                             started_at=1.0)  # fmt: skip

        with graph.transaction():
            graph.create_run(run("a"))
            with pytest.raises(InvalidInput), graph.transaction():
                graph.create_run(run("b"))
                raise InvalidInput("refused")
            with pytest.raises(Exception, match="UNIQUE"):
                graph.create_run(run("a"))  # a failing write, undone alone
            graph.create_run(run("c"))
            # reads on this thread see the writes not yet committed
            assert set(graph.get_runs([run_id(n) for n in "abc"])) == {run_id("a"), run_id("c")}
        assert set(graph.get_runs([run_id(n) for n in "abc"])) == {run_id("a"), run_id("c")}
        with pytest.raises(RuntimeError), graph.transaction():
            graph.create_run(run("d"))
            raise RuntimeError("the whole block fails")
        assert not graph.get_runs([run_id("d")])
    finally:
        graph.close()


def test_sqlite_atomic_undoes_its_whole_block(tmp_path: Path) -> None:
    """In atomic() a write has no savepoint of its own: a failure undoes the whole block
    (an event), and nothing else of the transaction."""
    graph = SQLiteGraphStore(tmp_path / "store")
    try:

        def run(name: str) -> RunRecord:
            return RunRecord(id=run_id(name), project="p", name=name, state="running",
                             started_at=1.0)  # fmt: skip

        with graph.transaction():
            graph.create_run(run("a"))
            with pytest.raises(Exception, match="UNIQUE"), graph.atomic():
                graph.create_run(run("b"))
                graph.update_run(run_id("a"), {"state": "failed"})
                graph.create_run(run("a"))  # fails: b and a's new state are undone with it
            with graph.atomic():
                graph.create_run(run("c"))
        stored = graph.get_runs([run_id(n) for n in "abc"])
        assert set(stored) == {run_id("a"), run_id("c")}
        assert stored[run_id("a")].state == "running"
        # insert_run: stored once, never over a stored run
        assert graph.insert_run(run("d"))
        assert not graph.insert_run(dataclasses.replace(run("d"), state="failed"))
        assert graph.get_runs([run_id("d")])[run_id("d")] == run("d")
        # and, as every inserting writer, it writes its filter leaves: none left behind
        db = graph._db()
        done, top = db.execute(
            "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'run_leaf_done'),"
            " (SELECT max(rowid) FROM runs)"
        ).fetchone()
        assert done == top
    finally:
        graph.close()


def test_neo4j_transaction_commits_everything_or_nothing(neo4j_server: Any) -> None:
    """Neo4j's transaction(): reads within see its writes, another connection sees none of
    them before the commit, a nested block joins it, and a block that raises stores nothing."""
    from lineage.storage.neo4j.store import Neo4jGraphStore

    graph, other = Neo4jGraphStore(neo4j_server.uri), Neo4jGraphStore(neo4j_server.uri)
    try:
        assert isinstance(graph, Transactional)

        def run(name: str) -> RunRecord:
            return RunRecord(id=run_id(tag + name), project="p", name=name, state="running",
                             started_at=1.0, config={"lr": 0.1})  # fmt: skip

        tag = uuid.uuid4().hex  # the server is shared: runs of this test alone
        ids = [run_id(tag + n) for n in "abc"]
        with graph.transaction():
            graph.create_run(run("a"))
            with graph.transaction():
                graph.create_run(run("b"))
            assert set(graph.get_runs(ids)) == {ids[0], ids[1]}
            assert other.get_runs(ids) == {}
        assert set(other.get_runs(ids)) == {ids[0], ids[1]}
        with pytest.raises(RuntimeError), graph.transaction():
            graph.create_run(run("c"))
            graph.update_run(ids[0], {"state": "failed"})
            raise RuntimeError("the whole block fails")
        stored = other.get_runs(ids)
        assert set(stored) == {ids[0], ids[1]}
        assert stored[ids[0]].state == "running"
    finally:
        graph.close()
        other.close()


def test_concurrent_batches_answer_each_refusal_and_store_every_neighbour(
    tmp_path: Path,
) -> None:
    """4 clients post a batch each while 4 others post single events: the batches' events
    are stored in the groups of whatever else arrives. Each batch holds one event the check
    refuses and one the mapping refuses (it writes a model's artifact as a dataset): each
    answer is 207 naming exactly those two indexes, every other event is stored, and nothing
    of a refused one is (its run, its input seen for the first time)."""
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    service = open_service(store, blobs)
    token = create_token(service, "write", "emitter")
    tag = uuid.uuid4().hex[:6]
    model = {"namespace": f"wh-{tag}", "name": "t", "facets": {"lineage": {"type": "model"}}}
    first = job_events(tag, 0, str(uuid.uuid4()))[0]
    first["outputs"].append(model)
    batches: list[list[dict[str, Any]]] = []
    kept: list[str] = []
    refused: list[str] = []
    for b in range(4):
        events: list[dict[str, Any]] = []
        for i in range(1 + 10 * b, 4 + 10 * b):
            run = str(uuid.uuid4())
            kept.append(run)
            events.extend(job_events(tag, i, run))
        bad_check = job_events(tag, 100 + b, str(uuid.uuid4()))[0]
        bad_check["eventType"] = "FINISHED"  # not an OpenLineage event type
        bad_map = job_events(tag, 200 + b, str(uuid.uuid4()))[0]
        bad_map["outputs"].append({"namespace": f"wh-{tag}", "name": "t"})
        refused += [bad_check["run"]["runId"], bad_map["run"]["runId"]]
        events[2:2] = [bad_check]
        events[5:5] = [bad_map]
        batches.append(events)
    singles = [e for i in range(50, 58) for e in job_events(tag, i, str(uuid.uuid4()))]
    kept += list(dict.fromkeys(e["run"]["runId"] for e in singles))
    server = ServerProcess(store, blobs, port=free_port(), log=tmp_path / "log")
    server.start()
    answers: dict[str, Any] = {}

    def post(name: str, path: str, body: Any) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            if isinstance(body, list) and path.endswith("batch"):
                answer = http.post(f"{server.url}{path}", json=body)
                answers[name] = (answer.status_code, answer.json())
            else:
                answers[name] = [
                    http.post(f"{server.url}{path}", json=event).status_code for event in body
                ]

    try:
        post("first", "/api/v1/lineage", [first])
        threads = [
            threading.Thread(target=post, args=(f"batch{b}", "/api/v1/lineage/batch", batch))
            for b, batch in enumerate(batches)
        ] + [
            threading.Thread(target=post, args=(f"single{k}", "/api/v1/lineage", singles[k::4]))
            for k in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    try:
        assert answers["first"] == [201]
        for k in range(4):
            assert answers[f"single{k}"] == [201] * len(singles[k::4])
        for b in range(4):
            status, body = answers[f"batch{b}"]
            assert status == 207
            assert body["stored"] == len(batches[b]) - 2
            assert [(f["index"], f["code"]) for f in body["failed"]] == [
                (2, "INVALID_EVENT"),
                (5, "INVALID_EVENT"),
            ]
            assert body["failed"][1]["field"] == "outputs[1].name"
        kept.append(first["run"]["runId"])
        stored = service.graph.get_runs(kept + refused)
        assert sorted(stored) == sorted(kept)
        assert {r.state for r in stored.values() if r.id != kept[-1]} == {"finished"}
        for b in range(4):  # the refused events' own inputs were never seen
            for i in (100 + b, 200 + b):
                project, _, name = artifact(tag, f"raw/part-{i}").partition("/")
                assert service.versions(project, name) == []
    finally:
        service.graph.close()
