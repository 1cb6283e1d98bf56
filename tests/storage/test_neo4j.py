"""Neo4j-only behaviour: numbering across processes, a server that dies mid-run, an unreachable
server, the schema, and the query plan ``expand`` relies on. The shared conformance suite
(test_graph.py) covers everything both backends must do alike."""

from __future__ import annotations

import logging
import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
import networkx as nx
import pytest
from ports import free_port

import lineage
from lineage.errors import StoreUnavailable
from lineage.records import Edge, Event, RunRecord
from lineage.storage import open_graph
from lineage.storage.graph import NewVersion
from lineage.storage.neo4j import Neo4jGraphStore

pytestmark = pytest.mark.neo4j


@pytest.fixture
def server(neo4j_server: Any) -> Any:
    neo4j_server.wipe()
    return neo4j_server


@pytest.fixture
def store(server: Any) -> Iterator[Neo4jGraphStore]:
    graph = Neo4jGraphStore(server.uri, user=server.user, password=server.password)
    yield graph
    graph.close()


def _auth(server: Any) -> tuple[str, str] | None:
    return (server.user, server.password) if server.user and server.password else None


def _query(uri: str, cypher: str, auth: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    with neo4j.GraphDatabase.driver(uri, auth=auth) as driver:
        records, _, _ = driver.execute_query(cypher)
    return [record.data() for record in records]


# numbering across processes --------------------------------------------------------------------


def _writer(url: str, worker: int, each: int, shared: int) -> None:
    store = open_graph(url)
    store.create_run(RunRecord(id=f"w{worker}", project="c", name=f"w{worker}", started_at=1.0))
    for i in range(each):
        # every worker also commits the same `shared` digests: exactly one version each
        for digest in (f"{worker:02d}{i:062x}", f"ff{i % shared:062x}"):
            store.commit_version(
                NewVersion(
                    project="c", name="m", type="model", digest=digest, size=1, file_count=1,
                    run_id=f"w{worker}", at=time.time(),
                )
            )  # fmt: skip
        store.append_events(
            [Event(project="c", target="c/m:v0", kind="note", at=time.time(), actor=f"w{worker}")]
        )
    store.close()


def test_four_processes_number_versions_and_events_without_gaps(server: Any) -> None:
    workers, each, shared = 4, 15, 5
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(server.uri, w, each, shared)) for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(240)
        assert proc.exitcode == 0
    store = Neo4jGraphStore(server.uri, user=server.user, password=server.password)
    try:
        versions = store.list_versions("c", "m")
        assert [v.index for v in versions] == list(range(workers * each + shared))
        assert len({v.digest for v in versions}) == len(versions)  # the dedup held under races
        assert store.find_alias("c", "m", "latest").index == len(versions) - 1  # type: ignore[union-attr]
        assert [e.seq for e in store.events("c")] == list(range(1, workers * each + 1))
    finally:
        store.close()


# a server that stops in the middle of a logging run ---------------------------------------------


def _log(run: lineage.Run, folder: Path, count: int, logged: list[str] | None = None) -> list[str]:
    """The logging code a user re-runs after a failure: ``count`` versions of one dataset."""
    logged = [] if logged is None else logged
    for i in range(count):
        path = folder / f"part-{i}.txt"
        path.write_text(f"rows of part {i}\n" * (i + 1))
        artifact = lineage.Artifact("shards", type="dataset")
        artifact.add_file(path)
        logged.append(run.log_artifact(artifact).ref)
    return logged


def test_server_stopped_mid_run_then_restarted(server: Any, workdir: Path, tmp_path: Path) -> None:
    process = server.process
    if process is None:  # an external server (NEO4J_URI): fault-inject a private one instead
        from neo4j_process import Neo4jProcess

        process = Neo4jProcess()
        process.start(tmp_path / "neo4j")
    data_dir, port = process.data_dir, process.port
    try:
        _stop_mid_run(process, workdir, str(tmp_path / "blobs"))
    finally:
        if not process.running:
            process.start(data_dir, port)  # leave the shared server up for other tests
        if process is not server.process:
            process.stop()


def _stop_mid_run(process: Any, workdir: Path, blobs: str) -> None:
    uri, data_dir, port = process.uri, process.data_dir, process.port
    count = 40
    first = lineage.init(project="fault", job_type="prep", store=uri, blobs=blobs)
    logged: list[str] = []
    stopper = threading.Thread(target=_stop_when, args=(process, logged, 5))
    stopper.start()
    with pytest.raises(StoreUnavailable) as failure:  # not a hang: the driver's retries end
        _log(first, workdir, count, logged)  # the server stops while this runs, mid-call
    assert uri in str(failure.value) and "\n" not in str(failure.value)
    stopper.join(60)
    assert 5 <= len(logged) < count

    # still down, and back while the driver retries: the call succeeds (or, if the start
    # outlasts the retry window on a slow machine, fails as clearly as above)
    restarting = threading.Thread(target=_start_after, args=(process, data_dir, port, 1.0))
    restarting.start()
    try:
        consumer = lineage.init(project="fault", job_type="train", store=uri, blobs=blobs)
    except StoreUnavailable as exc:
        assert uri in str(exc)
        restarting.join(120)
        consumer = lineage.init(project="fault", job_type="train", store=uri, blobs=blobs)
    restarting.join(120)
    consumer.use_artifact("shards:v1")
    consumer.finish()

    # the consumer's init finished `first` (a new init ends the thread's previous run)
    assert lineage.Api(store=uri, blobs=blobs).run(first.id).state == "finished"
    # re-running the same logging code completes the graph
    again = lineage.init(project="fault", job_type="prep", store=uri, blobs=blobs)
    assert _log(again, workdir, count) == [f"fault/shards:v{i}" for i in range(count)]
    again.finish()

    graph = Neo4jGraphStore(uri)
    try:
        versions = graph.list_versions("fault", "shards", include_deleted=True)
        assert [v.index for v in versions] == list(range(count))  # no gap, no duplicate
        assert len({v.digest for v in versions}) == count
        assert graph.find_alias("fault", "shards", "latest").index == count - 1  # type: ignore[union-attr]
        runs = {run.id: run for run in graph.list_runs("fault")}
        assert {first.id, again.id, consumer.id} <= runs.keys()
        for version in versions:
            # produced by its creating run (the first, if its commit landed before the
            # stop) and by the re-run
            producers = {e.source for e in graph.expand([version.id], "up")}
            assert version.created_by in (first.id, again.id)
            assert producers == {version.created_by, again.id}
            assert version.index >= len(logged) or version.created_by == first.id
        assert [e.source for e in graph.expand([consumer.id], "up")] == ["fault/shards:v1"]
    finally:
        graph.close()
    _assert_no_orphans(uri)


def _stop_when(process: Any, logged: list[str], versions: int) -> None:
    deadline = time.monotonic() + 60
    while len(logged) < versions and time.monotonic() < deadline:
        time.sleep(0.005)
    process.stop()


def _start_after(process: Any, data_dir: Path, port: int, delay: float) -> None:
    time.sleep(delay)
    process.start(data_dir, port)


def _assert_no_orphans(uri: str) -> None:
    # an edge's endpoints are real records (a stub has no project), and nothing is doubled
    stubs = "MATCH (a)-[:PRODUCED|CONSUMED_BY]->(b) WHERE a.project IS NULL OR b.project IS NULL"
    assert _query(uri, stubs + " RETURN a.id, b.id") == []
    doubled = "MATCH (a)-[r:PRODUCED|CONSUMED_BY]->(b) WITH a, b, count(r) AS n WHERE n > 1"
    assert _query(uri, doubled + " RETURN a.id, b.id") == []
    ids = _query(uri, "MATCH (n) WHERE n.id IS NOT NULL RETURN n.id AS id")
    assert [i for i, n in Counter(row["id"] for row in ids).items() if n > 1] == []


# an unreachable server ----------------------------------------------------------------------


def test_unreachable_server_fails_fast_naming_the_uri(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"  # closed: nothing listens there now
    caplog.set_level(logging.DEBUG, logger="neo4j.io")
    with pytest.raises(StoreUnavailable) as failure:
        lineage.init(project="p", store=uri, blobs=str(workdir / "blobs"))
    opened = [r for r in caplog.records if "C: <OPEN>" in r.getMessage()]
    assert len(opened) == 1, opened  # one refused connection, then the error: no retry loop
    assert uri in str(failure.value)
    assert failure.value.exit_code == 6


# the schema and the plan expand relies on ----------------------------------------------------


def test_constraints_are_created_once_and_enforced(server: Any, store: Neo4jGraphStore) -> None:
    Neo4jGraphStore(server.uri, user=server.user, password=server.password).close()  # idempotent
    unique = {
        (row["labels"][0], row["properties"][0])
        for row in _query(
            server.uri, "SHOW CONSTRAINTS YIELD labelsOrTypes AS labels, properties", _auth(server)
        )
    }
    assert {
        ("Run", "id"),
        ("ArtifactVersion", "id"),
        ("Artifact", "key"),
        ("Alias", "key"),
        ("Event", "uid"),
        ("Token", "id"),
        ("Token", "digest"),
    } <= unique
    with pytest.raises(neo4j.exceptions.ConstraintError):
        _query(server.uri, "CREATE (:Run {id: 'x'}), (:Run {id: 'x'})", _auth(server))


def test_plans_are_index_seeks_then_expands(server: Any, store: Neo4jGraphStore) -> None:
    from lineage.storage.neo4j.cypher import EXPAND, walk_query

    def operators(query: str) -> list[str]:
        with neo4j.GraphDatabase.driver(server.uri, auth=_auth(server)) as driver:
            plan = driver.execute_query(
                "EXPLAIN " + query, runs=["r"], versions=["p/a:v0"]
            ).summary.plan
        return _operators(plan)

    for direction in ("down", "up"):
        ops = operators(EXPAND[direction])  # one level: seek each id, expand its edges
        assert ops.count("NodeUniqueIndexSeek") == 2 and ops.count("Expand(All)") == 2
        assert not [op for op in ops if "VarLength" in op or "Scan" in op]
        for hops in (40, None):  # a whole walk: a BFS that visits each node once
            ops = operators(walk_query(direction, hops))
            assert ops.count("NodeUniqueIndexSeek") == 2
            assert [op for op in ops if op.startswith("VarLengthExpand")] == [
                "VarLengthExpand(Pruning,BFS,All)"
            ]
            assert not [op for op in ops if "Scan" in op]


def _operators(plan: Any) -> list[str]:
    ops = [plan["operatorType"].split("@")[0]]
    for child in plan.get("children", []):
        ops += _operators(child)
    return ops


def test_edge_before_its_endpoint_leaves_a_stub_that_import_fills(store: Neo4jGraphStore) -> None:
    edge = Edge(source="p/d:v0", target="r1", kind="consumed_by")
    assert store.import_records(edges=[edge]) == {
        "runs": 0, "artifacts": 0, "versions": 0, "edges": 1, "events": 0,
    }  # fmt: skip
    assert store.expand(["r1"], "up") == [edge]  # kept, as SQLite keeps it
    assert store.get_runs(["r1"]) == {} and store.list_runs() == []  # the stub is no record
    run = RunRecord(id="r1", project="p", name="train", started_at=2.5)
    assert store.import_records(runs=[run])["runs"] == 1
    assert store.get_runs(["r1"]) == {"r1": run}
    assert store.import_records(runs=[run], edges=[edge]) == {
        "runs": 0, "artifacts": 0, "versions": 0, "edges": 0, "events": 0,
    }  # fmt: skip


# the one-round-trip walk ---------------------------------------------------------------------


def test_walk_rows_and_reaches_match_networkx(store: Neo4jGraphStore) -> None:
    from helpers import expected_lineage, oracle

    rng = random.Random(7)
    datasets = [f"p/ds{i}:v0" for i in range(3)]  # shared inputs: many consumers each
    versions, edges = list(datasets), []
    for r in range(60):
        run = f"r{r:03d}"
        for source in {rng.choice(datasets), *rng.sample(versions, min(len(versions), 2))}:
            edges.append(Edge(source=source, target=run, kind="consumed_by"))
        for _ in range(rng.choice((0, 1, 2))):  # some runs are dead ends
            version = f"p/m{len(versions)}:v0"
            versions.append(version)
            edges.append(Edge(source=run, target=version, kind="produced"))
    store.import_records(edges=edges)
    graph = oracle(edges)

    for start in [*rng.sample(versions, 8), "r000", "r031", "p/none:v0"]:
        for direction in ("down", "up"):
            for hops in (0, 1, 2, 3, 5, None):
                nodes, rows, truncated = store.walk_rows([start], direction, hops)
                want_nodes, want_edges, want_truncated = expected_lineage(
                    graph, start, hops, upstream=direction == "up"
                )
                assert nodes == want_nodes
                assert {(s, t) for s, t, _ in rows} == want_edges
                assert truncated == want_truncated
                assert all(
                    kind == ("produced" if ":" in t else "consumed_by") for _, t, kind in rows
                )
            # from a run, depth 0 is -1 hops (lineage.traversal): it walks like 0
            assert store.walk_rows([start], direction, -1) == store.walk_rows([start], direction, 0)
            for target in rng.sample(versions, 3):
                reachable = (
                    start in graph
                    and target in graph
                    and target != start
                    and (
                        nx.has_path(graph, start, target)
                        if direction == "down"
                        else nx.has_path(graph, target, start)
                    )
                )
                assert store.reaches(start, target, direction) == reachable


def test_running_runs_are_listed_from_the_state_index(store: Neo4jGraphStore) -> None:
    """list_runs(state="running") (lineage.init's reap_stale) seeks the state index instead
    of scanning every run; the answer is the same: running runs of every project or one, in
    start order, stubs left out."""
    states = ["finished", "running", "failed", "running", "crashed", "running"]
    for i, state in enumerate(states):
        store.create_run(
            RunRecord(
                id=f"r{i}", project="a" if i % 2 else "b", name=f"r{i}", state=state,
                started_at=100.0 - i,
            )
        )  # fmt: skip
    store.add_edges([Edge(source="a/x:v0", target="stub", kind="consumed_by")])
    assert [r.id for r in store.list_runs(state="running")] == ["r5", "r3", "r1"]
    assert [r.id for r in store.list_runs("a", state="running")] == ["r5", "r3", "r1"]
    assert store.list_runs("b", state="running") == []
    assert [r.id for r in store.list_runs(state="running", newest_first=True, limit=2)] == [
        "r1",
        "r3",
    ]
    assert [r.id for r in store.list_runs(state="finished")] == ["r0"]
