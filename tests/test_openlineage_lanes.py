"""Two OpenLineage groups written at once over Neo4j (``GroupWriter`` lanes): a group's
transaction locks only what it writes, so a second one goes on beside it; groups in flight
never share a run or a dataset one of them writes; the graph is the one the events make
written one group at a time, in order; and two groups that both make one version of an
input keep one of them."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import pytest

from lineage.openlineage import check_event, internal_name, run_id
from lineage.openlineage.export import VERSION_FACET
from lineage.openlineage.group import Claims, GroupWriter, ingest_group
from lineage.server.app import open_service
from lineage.service import Service

pytestmark = pytest.mark.neo4j

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"


def event(
    tag: str, run: str, kind: str, minute: int, inputs: Sequence[str], outputs: Sequence[str]
) -> dict[str, Any]:
    def dataset(name: str) -> dict[str, str]:
        return {"namespace": f"s3://lake-{tag}", "name": name}

    return {
        "producer": PRODUCER,
        "eventType": kind,
        "eventTime": f"2024-05-01T10:{minute:02d}:00Z",
        "run": {"runId": run},
        "job": {"namespace": f"spark-{tag}", "name": "etl.step"},
        "inputs": [dataset(name) for name in inputs],
        "outputs": [dataset(name) for name in outputs],
    }


CLIENTS, STEPS = 8, 6


def pipelines(tag: str) -> list[list[dict[str, Any]]]:
    """A chain of jobs a client (step k reads what step k-1 wrote, and a table all of them
    share), each run's START and COMPLETE, in the order that client sends them."""
    clients = []
    for c in range(CLIENTS):
        events = []
        for k in range(STEPS):
            run = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/{c}/{k}"))
            ins = ["dim/customers"] + ([f"chain-{c}/{k - 1}"] if k else [])
            events.append(event(tag, run, "START", 2 * k, ins, []))
            events.append(event(tag, run, "COMPLETE", 2 * k + 1, ins, [f"chain-{c}/{k}"]))
        clients.append(events)
    return clients


def runs_of(tag: str) -> dict[str, str]:
    return {
        run_id(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/{c}/{k}"))): f"{c}/{k}"
        for c in range(CLIENTS)
        for k in range(STEPS)
    }


def version_graph(service: Service, tag: str) -> nx.DiGraph:
    """Every run and version of the tag's project, and the edges between them, named
    without the tag (runs by their place in :func:`pipelines`): two histories compare."""
    project = internal_name(f"s3://lake-{tag}")
    names = runs_of(tag)

    def named(node: str) -> str:
        return names.get(node) or node.replace(project, "P")

    graph = nx.DiGraph()
    for artifact in service.artifacts(project):
        for version in service.versions(artifact.project, artifact.name):
            graph.add_node(named(version.id))
    runs = sorted(names)
    graph.add_nodes_from(named(run) for run in service.graph.get_runs(runs))
    for edge in service.graph.expand(runs, "up") + service.graph.expand(runs, "down"):
        graph.add_edge(named(edge.source), named(edge.target))
    return graph


class Recording(GroupWriter):
    """A GroupWriter that notes when each group was written, and what it claimed."""

    def __init__(self, service: Service, lanes: int) -> None:
        super().__init__(service, lanes=lanes)
        self.spans: list[tuple[float, float, Claims, list[str]]] = []
        self._noted = threading.Lock()

    def write(self, group: Sequence[tuple[Mapping[str, Any], Any]]) -> list[Any]:
        start = time.perf_counter()
        try:
            return super().write(group)
        finally:
            claims = Claims()
            for e, _ in group:
                claims.add(Claims.of(e))
            ids = [str(e["run"]["runId"]) + ":" + str(e["eventType"]) for e, _ in group]
            with self._noted:
                self.spans.append((start, time.perf_counter(), claims, ids))


def written(service: Service, clients: list[list[dict[str, Any]]], lanes: int) -> Recording:
    """Each client's events sent one after the other (the next once the last is answered),
    the clients at once, through a writer of ``lanes`` lanes; every one stored."""
    writer = Recording(service, lanes)

    async def client(events: list[dict[str, Any]]) -> None:
        for e in events:
            await writer.store(check_event(e))

    async def run() -> None:
        try:
            await asyncio.gather(*(client(events) for events in clients))
        finally:
            await writer.aclose()

    asyncio.run(run())
    return writer


def test_two_lanes_write_the_graph_one_lane_writes(neo4j_server: Any, tmp_path: Any) -> None:
    """8 clients each send a chain of 6 runs' events, at once, through two lanes and, under
    another tag, one event at a time: the same runs, versions and edges (networkx). Groups
    were in flight together, and no two of them at once claimed one run or one dataset
    that either writes."""
    neo4j_server.wipe()
    service = open_service(neo4j_server.uri, str(tmp_path / "blobs"))
    try:
        one, two = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
        for events in pipelines(one):
            for e in events:
                assert not isinstance(ingest_group(service, [check_event(e)])[0], Exception)
        writer = written(service, pipelines(two), lanes=2)
        overlapping = [
            (a, b)
            for i, a in enumerate(writer.spans)
            for b in writer.spans[i + 1 :]
            if a[0] < b[1] and b[0] < a[1]
        ]
        assert overlapping, "no two groups were written at once"
        for a, b in overlapping:
            assert not a[2].clashes(b[2]), (a[3], b[3])
        want, got = version_graph(service, one), version_graph(service, two)
        # runs; each step's output and the shared table; consumed: the table and the last
        # step's output; produced
        assert want.number_of_nodes() == CLIENTS * STEPS * 2 + 1
        assert want.number_of_edges() == CLIENTS * (STEPS + STEPS - 1 + STEPS)
        assert sorted(got.nodes) == sorted(want.nodes)
        assert sorted(got.edges) == sorted(want.edges)
        states = {r.state for r in service.graph.get_runs(sorted(runs_of(two))).values()}
        assert states == {"finished"}
    finally:
        service.graph.close()


def test_claims_keep_a_run_and_a_written_dataset_to_one_lane() -> None:
    """Two events clash when they share a run, or one writes a dataset the other reads or
    writes; reading one dataset together is no clash; an event that is not a run's clashes
    with everything."""
    tag = "t"
    a = event(tag, "r1", "START", 0, ["dim"], ["out/1"])
    same_run = event(tag, "r1", "COMPLETE", 1, [], [])
    reads_out = event(tag, "r2", "START", 0, ["out/1"], [])
    shares_input = event(tag, "r3", "START", 0, ["dim"], ["out/3"])
    dataset_event = {"eventType": None, "dataset": {"namespace": "n", "name": "d"}}
    child = event(tag, "r4", "START", 0, [], [])
    child["run"]["facets"] = {"parent": {"run": {"runId": "r1"}, "job": {}}}
    of = Claims.of
    assert of(a).clashes(of(same_run))
    assert of(a).clashes(of(reads_out)) and of(reads_out).clashes(of(a))
    assert not of(a).clashes(of(shares_input))
    assert of(a).clashes(of(dataset_event))
    assert of(a).clashes(of(child))


def test_a_group_locks_what_it_writes_not_what_it_reads(neo4j_server: Any, tmp_path: Any) -> None:
    """While one group's transaction is open after its read (input ``dim``, output
    ``out``), another writer commits a version of ``dim`` at once; a version of ``out``
    waits until that transaction ends."""
    neo4j_server.wipe()
    service = open_service(neo4j_server.uri, str(tmp_path / "blobs"))
    other = open_service(neo4j_server.uri, str(tmp_path / "blobs"))
    tag = uuid.uuid4().hex[:8]
    project = internal_name(f"s3://lake-{tag}")
    first = str(uuid.uuid4())
    for e in (event(tag, first, "COMPLETE", 0, [], ["dim", "out"]),):
        assert not isinstance(ingest_group(service, [check_event(e)])[0], Exception)
    graph: Any = service.graph
    read, release = threading.Event(), threading.Event()

    def hold() -> None:
        with graph.transaction():
            graph.group_state(
                [], [(project, "dim"), (project, "out")], [str(uuid.uuid4())],
                writes=[(project, "out")],
            )  # fmt: skip
            read.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert read.wait(30)
        done: dict[str, float] = {}

        def commit(name: str) -> None:
            run = str(uuid.uuid4())
            start = time.perf_counter()
            result = ingest_group(other, [check_event(event(tag, run, "COMPLETE", 5, [], [name]))])
            assert not isinstance(result[0], Exception), result
            done[name] = time.perf_counter() - start

        reader = threading.Thread(target=commit, args=("dim",))
        reader.start()
        reader.join(20)
        assert "dim" in done, "a version of the group's input waited for its transaction"
        writer = threading.Thread(target=commit, args=("out",))
        writer.start()
        writer.join(2)
        assert "out" not in done, "a version of the group's output did not wait for it"
    finally:
        release.set()
        holder.join(30)
    writer.join(30)
    assert "out" in done
    try:
        assert [v.index for v in other.versions(project, "dim")] == [0, 1]
        assert [v.index for v in other.versions(project, "out")] == [0, 1]
    finally:
        service.graph.close()
        other.graph.close()


def _version_facet(dataset: dict[str, Any], version: str) -> None:
    dataset["facets"] = {
        "version": {
            "_producer": PRODUCER,
            "_schemaURL": VERSION_FACET,
            "datasetVersion": version,
        }
    }


def _two_groups(
    service: Service, tag: str, version: str | None, before: Any = None
) -> tuple[list[str], Any]:
    """Two runs, each a group of one COMPLETE reading ``fresh/input`` (at ``version``, if
    given) and writing ``out/k``, stored from two threads; ``before(k)`` runs in thread k
    first. Neither group fails; returns the run ids and the input's versions."""
    runs = [str(uuid.uuid4()) for _ in range(2)]
    results: dict[int, Any] = {}

    def one(k: int) -> None:
        if before is not None:
            before(k)
        e = event(tag, runs[k], "COMPLETE", 1, ["fresh/input"], [f"out/{k}"])
        if version is not None:
            _version_facet(e["inputs"][0], version)
        results[k] = ingest_group(service, [check_event(e)])[0]

    threads = [threading.Thread(target=one, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [isinstance(results.get(k), Exception) for k in range(2)] == [False, False], results
    project = internal_name(f"s3://lake-{tag}")
    for k in range(2):
        assert len(service.versions(project, internal_name(f"out/{k}"))) == 1
    return runs, service.versions(project, internal_name("fresh/input"))


def test_two_groups_making_one_inputs_next_version_keep_one(
    neo4j_server: Any, tmp_path: Any, caplog: Any
) -> None:
    """Two groups read an input they both name at a version no one has stored (its artifact
    exists: the reads take no lock on it) and both plan that version; the second to write
    finds the first's version (its group's state was stale) and its event is stored again
    alone: two versions of the input, both runs consume the second, both outputs are
    there. Both groups pass the barrier before either writes, and the log names the stale
    group: this is the path the test is about, not a fallback after a failure."""
    neo4j_server.wipe()
    service = open_service(neo4j_server.uri, str(tmp_path / "blobs"))
    graph: Any = service.graph
    tag = uuid.uuid4().hex[:8]
    first = event(tag, str(uuid.uuid4()), "COMPLETE", 0, [], ["fresh/input"])
    _version_facet(first["outputs"][0], "1")
    assert not isinstance(ingest_group(service, [check_event(first)])[0], Exception)
    both = threading.Barrier(2, timeout=30)
    passed: list[int] = []
    planned = graph.write_planned

    def write_planned(**kwargs: Any) -> Any:
        if len(passed) < 2:  # the two groups; the stale one's event stored alone after them
            both.wait()  # both groups have read and planned before either writes
            passed.append(1)
        return planned(**kwargs)

    graph.write_planned = write_planned
    try:
        with caplog.at_level("INFO", logger="lineage.openlineage.group"):
            runs, inputs = _two_groups(service, tag, "2")
        assert len(passed) == 2  # neither barrier broke
        assert [r.getMessage() for r in caplog.records if "_Stale" in r.getMessage()], [
            r.getMessage() for r in caplog.records
        ]
        assert [v.index for v in inputs] == [0, 1]
        assert set(runs) <= {e.target for e in graph.expand([inputs[1].id], "down")}
    finally:
        del graph.write_planned
        service.graph.close()


def test_two_groups_making_one_inputs_first_version_keep_one(
    neo4j_server: Any, tmp_path: Any
) -> None:
    """Two groups read an input no one has written yet and each would make its first
    version. Neo4j does not let both plan it: the first group's read holds the input's
    index entry (a locking seek, the READ being a statement that writes) until it commits,
    and the second reads after that, finding the first's version. Whatever the order, one
    version of the input, both runs consume it, both outputs are there, and neither group
    fails."""
    neo4j_server.wipe()
    service = open_service(neo4j_server.uri, str(tmp_path / "blobs"))
    graph: Any = service.graph
    writing = threading.Event()
    planned = graph.write_planned

    def write_planned(**kwargs: Any) -> Any:
        if not writing.is_set():  # the first group to write waits while the second reads
            writing.set()
            time.sleep(1)
        return planned(**kwargs)

    graph.write_planned = write_planned
    try:
        # the second thread starts its group once the first is in its write
        runs, inputs = _two_groups(
            service, uuid.uuid4().hex[:8], None, lambda k: writing.wait(30) if k else None
        )
        assert [v.index for v in inputs] == [0]
        assert set(runs) <= {e.target for e in graph.expand([inputs[0].id], "down")}
    finally:
        del graph.write_planned
        service.graph.close()


def test_a_writer_plans_its_statements_again_at_the_powers_of_four() -> None:
    """``replanning``: groups 1, 4, 16, 64, ... plan READ and WRITE again (a plan kept from
    a nearly empty store scans indexes it should seek), and no other group does."""
    from lineage.storage.neo4j.state import READ, forced, replanning

    assert [n for n in range(1, 5000) if replanning(n)] == [1, 4, 16, 64, 256, 1024, 4096]
    assert forced(READ).startswith("CYPHER replan=force ")
    assert forced(READ).removeprefix("CYPHER replan=force ") == READ.removeprefix(
        "CYPHER replan=skip "
    )


def test_the_kept_statements_seek_every_index_they_name(neo4j_server: Any, tmp_path: Any) -> None:
    """READ and WRITE are planned rarely and kept (``replan=skip``): each index they name is
    hinted as a seek, and their plans seek it. ``USING INDEX`` alone pins the index and lets
    the planner scan it (a plan made on a store of ~9,000 versions scanned the whole
    ArtifactVersion(digest) and Run(id) indexes once a row: 1.8 million rows read for a
    group of 128 runs, batches at 250 events/s where seeks give 1,000)."""
    import re

    from lineage.storage.neo4j.state import READ, READ_UNLOCKED, WRITE

    neo4j_server.wipe()
    open_service(neo4j_server.uri, str(tmp_path / "blobs")).graph.close()  # its indexes
    scans = {"NodeIndexScan", "NodeByLabelScan", "AllNodesScan", "NodeUniqueIndexScan"}
    for name, statement in (("READ", READ), ("READ_UNLOCKED", READ_UNLOCKED), ("WRITE", WRITE)):
        hints = re.findall(r"USING INDEX (\w+)", statement)
        assert hints and set(hints) == {"SEEK"}, f"{name}: hints {hints}"
        explain = statement.replace("CYPHER replan=skip ", "CYPHER replan=force EXPLAIN ", 1)
        with neo4j_server.driver.session() as session:
            plans = [session.run(explain, {}).consume().plan]
        operators: list[str] = []
        while plans:
            plan = plans.pop()
            operators.append(plan["operatorType"].split("@")[0])
            plans.extend(plan.get("children", []))
        assert not scans & set(operators), f"{name} scans: {sorted(scans & set(operators))}"
        assert sum("Seek" in op for op in operators) >= len(hints), f"{name}: {operators}"
