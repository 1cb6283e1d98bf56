"""Set-based storing of a group of OpenLineage events (lineage.openlineage.plan, SQLite):
within one group an event sees what the earlier ones stored, a refused event leaves no
trace for the later ones, and any history split into any groups stores exactly what the
events stored one by one store (the per-event path, SET_BASED off), lineage checked
against networkx."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from lineage.errors import InvalidInput
from lineage.manifest import manifest_digests
from lineage.openlineage import InvalidEvent, check_event, internal_name, run_id
from lineage.openlineage import group as grouping
from lineage.openlineage.group import ingest_group
from lineage.server.app import open_service
from lineage.service import Service

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"


@pytest.fixture
def service(backend: Any) -> Iterator[Service]:
    opened = open_service(backend.store, backend.blobs)
    try:
        yield opened
    finally:
        opened.graph.close()


def ev(
    kind: str,
    run: str,
    job: str,
    minute: int,
    *,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    parent: str | None = None,
    version: dict[str, str] | None = None,
    columns: tuple[str, ...] = ("a",),
) -> dict[str, Any]:
    """A run event of job ``job`` in namespace ``spark``, datasets in ``s3://lake``."""
    facets: dict[str, Any] = {}
    if parent:
        facets["parent"] = {
            "run": {"runId": parent},
            "job": {"namespace": "airflow", "name": "dag"},
        }

    def dataset(name: str, out: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"namespace": "s3://lake", "name": name}
        found: dict[str, Any] = {}
        if out:
            found["schema"] = {"fields": [{"name": c, "type": "STRING"} for c in columns]}
        if version and name in version:
            found["version"] = {"datasetVersion": version[name]}
        if found:
            item["facets"] = found
        return item

    return check_event(
        {
            "eventType": kind,
            "eventTime": f"2024-05-01T10:{minute:02d}:00Z",
            "producer": PRODUCER,
            "run": {"runId": run, "facets": facets},
            "job": {"namespace": "spark", "name": job},
            "inputs": [dataset(n, False) for n in inputs],
            "outputs": [dataset(n, True) for n in outputs],
        }
    )


def key(name: str) -> str:
    return f"{internal_name('s3://lake')}/{internal_name(name)}"


def lineage_graph(service: Service) -> nx.DiGraph:
    """Every edge stored, between runs and versions."""
    graph = nx.DiGraph()
    runs = [r.id for r in service.graph.list_runs()]
    versions = [v.id for a in service.artifacts() for v in service.versions(a.project, a.name)]
    for edge in service.graph.expand(runs + versions, "down"):
        graph.add_edge(edge.source, edge.target)
    return graph


def snapshot(service: Service) -> dict[str, Any]:
    """What is stored, but for the times a store reads from its clock."""
    graph = service.graph
    runs = {r.id: r for r in graph.list_runs()}
    versions = {}
    for a in service.artifacts():
        for v in graph.list_versions(a.project, a.name, include_deleted=True):
            at = None if v.created_by else v.created_at  # a produced version: the clock's
            versions[v.id] = (v.digest, v.metadata, v.created_by, at, v.state, a.type, v.event_at)
    aliases = {
        (a.project, a.name): [(n, v.id) for n, v in graph.list_aliases(a.project, a.name)]
        for a in service.artifacts()
    }
    uris = [f"s3://lake/{n}" for n in ("t", "u", "w", "x", "y", "z")]
    return {
        "runs": runs,
        "versions": versions,
        "aliases": aliases,
        "edges": sorted(lineage_graph(service).edges),
        "locations": graph.find_locations(uris),
    }


def stored_ok(results: list[Any]) -> None:
    for result in results:
        assert not isinstance(result, Exception), result


def test_an_event_consumes_what_an_earlier_event_of_its_group_produced(
    service: Service,
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    group = [
        ev("START", a, "make_t", 0, inputs=("x",), outputs=("t",)),
        ev("START", b, "use_t", 1, inputs=("t",), outputs=("u",)),
        ev("COMPLETE", a, "make_t", 2, inputs=("x",), outputs=("t",)),
        ev("COMPLETE", b, "use_t", 3, inputs=("t",), outputs=("u",)),
    ]
    results = ingest_group(service, group)
    stored_ok(results)
    t0, x0, u0 = key("t") + ":v0", key("x") + ":v0", key("u") + ":v0"
    # b's input is the version a produced in the same group, not a new observed one
    assert [v.id for v in results[1].inputs] == [t0]
    assert len(service.versions(*key("t").split("/"))) == 1
    want = nx.DiGraph([(x0, run_id(a)), (run_id(a), t0), (t0, run_id(b)), (run_id(b), u0)])
    got = lineage_graph(service)
    assert sorted(got.edges) == sorted(want.edges)
    assert nx.ancestors(got, u0) == nx.ancestors(want, u0) == {x0, run_id(a), t0, run_id(b)}
    runs = service.graph.get_runs([run_id(a), run_id(b)])
    assert {r.state for r in runs.values()} == {"finished"}
    # next group: c reads t (v0), a2 makes t v1, d reads t: v1, the newest at its time
    c, a2, d = (str(uuid.uuid4()) for _ in range(3))
    results = ingest_group(
        service,
        [
            ev("START", c, "use_t", 4, inputs=("t",), outputs=("w",)),
            ev("START", a2, "make_t", 5, inputs=("x",), outputs=("t",), columns=("a", "b")),
            ev("START", d, "use_t", 6, inputs=("t",), outputs=("y",)),
        ],
    )
    stored_ok(results)
    assert [v.id for v in results[0].inputs] == [t0]
    assert [v.id for v in results[2].inputs] == [key("t") + ":v1"]
    assert service.graph.find_alias(*key("t").split("/"), "latest").id == key("t") + ":v1"


def test_duplicates_and_disorder_within_one_group(service: Service) -> None:
    """START and COMPLETE each twice, COMPLETE first, a late RUNNING: all in one group."""
    a = str(uuid.uuid4())
    start = ev("START", a, "job", 0, inputs=("x",), outputs=("t",))
    done = ev("COMPLETE", a, "job", 5, inputs=("x",), outputs=("t",))
    late = ev("RUNNING", a, "job", 3, inputs=("x",), outputs=("t",))
    stored_ok(ingest_group(service, [done, start, done, late, start]))
    run = service.graph.get_runs([run_id(a)])[run_id(a)]
    assert run.state == "finished"  # never undone by the late RUNNING
    assert run.started_at < run.finished_at  # START's time, though it came second
    assert len(service.versions(*key("t").split("/"))) == 1
    assert len(service.versions(*key("x").split("/"))) == 1
    before = snapshot(service)
    stored_ok(ingest_group(service, [start, done, late]))  # again: nothing changes
    assert snapshot(service) == before


def test_a_refused_event_in_the_middle_leaves_no_trace_for_the_next(service: Service) -> None:
    """The middle event makes a new artifact ``t`` and is then refused (one of its outputs
    is a model already): the third event, reading ``t``, observes it afresh instead of
    binding to the refused event's version; the first and third are stored whole."""
    a, b, c, m = (str(uuid.uuid4()) for _ in range(4))
    model = ev("START", m, "train", 0)
    # a namespace that is no storage location: the artifact goes by its name alone
    model["outputs"] = [{"namespace": "wh", "name": "w", "facets": {"lineage": {"type": "model"}}}]
    stored_ok(ingest_group(service, [model]))
    bad = ev("START", b, "bad", 2, inputs=("x",), outputs=("t",))
    bad["outputs"].append({"namespace": "wh", "name": "w"})
    group = [
        ev("START", a, "first", 1, inputs=("x",), outputs=("u",)),
        bad,
        ev("START", c, "third", 3, inputs=("t",), outputs=("y",)),
    ]
    results = ingest_group(service, group)
    assert isinstance(results[1], InvalidEvent) and results[1].field == "outputs[1].name"
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert set(service.graph.get_runs([run_id(x) for x in (a, b, c)])) == {run_id(a), run_id(c)}
    (t,) = service.versions(*key("t").split("/"))
    assert t.created_by is None  # observed by c, not made by the refused b
    assert [v.id for v in results[2].inputs] == [t.id]
    assert service.graph.find_locations(["s3://lake/t"]) == {
        "s3://lake/t": tuple(key("t").split("/"))
    }
    got = lineage_graph(service)
    assert run_id(b) not in got
    assert sorted(got.predecessors(run_id(c))) == [t.id]
    for version in (t, *results[0].outputs, *results[2].outputs):
        assert not service.blobs.missing(manifest_digests(service.blobs, version.digest))


def test_events_the_plan_leaves_to_ingest_keep_their_order(service: Service) -> None:
    """A run's second event naming a new input (its edge needs the cycle check's walk) and
    a dataset event, between events the plan stores: each sees the others."""
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    stored_ok(ingest_group(service, [ev("START", a, "job", 0, inputs=("x",), outputs=("t",))]))
    dataset_event = check_event(
        {
            "eventTime": "2024-05-01T10:01:30Z",
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {"namespace": "s3://lake", "name": "z"},
        }
    )
    group = [
        ev("RUNNING", a, "job", 1, inputs=("x", "y"), outputs=("t",)),  # y: new, by ingest
        dataset_event,
        ev("START", b, "next", 2, inputs=("t", "y", "z"), outputs=("u",)),
        ev("COMPLETE", a, "job", 3, inputs=("x", "y"), outputs=("t",)),
    ]
    results = ingest_group(service, group)
    stored_ok(results)
    t0, y0, z0 = (key(n) + ":v0" for n in "tyz")
    assert {v.id for v in results[0].inputs} == {y0}
    assert [v.id for v in results[2].inputs] == [t0, y0, z0]
    got = lineage_graph(service)
    assert sorted(got.predecessors(run_id(a))) == sorted([key("x") + ":v0", y0])
    assert sorted(got.predecessors(run_id(b))) == sorted([t0, y0, z0])
    assert service.graph.get_runs([run_id(a)])[run_id(a)].state == "finished"


def test_a_failing_group_write_stores_each_event_alone(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    graph = service.graph
    # the group's runs, versions and edges go in with one call: Neo4j's one statement
    writer = "write_planned" if hasattr(graph, "write_planned") else "import_records"
    real = getattr(graph, writer)
    calls = []

    def failing_once(**records: Any) -> dict[str, int]:
        calls.append(records)
        if len(calls) == 1:
            raise InvalidInput("a write fails")
        return real(**records)

    monkeypatch.setattr(graph, writer, failing_once)
    group = [
        ev("START", a, "make_t", 0, inputs=("x",), outputs=("t",)),
        ev("START", b, "use_t", 1, inputs=("t",), outputs=("u",)),
    ]
    results = ingest_group(service, group)
    stored_ok(results)
    assert len(calls[0]["runs"]) == 2  # the group's write, then each event alone
    assert set(graph.get_runs([run_id(a), run_id(b)])) == {run_id(a), run_id(b)}
    assert [v.id for v in results[1].inputs] == [key("t") + ":v0"]
    assert len(service.versions(*key("t").split("/"))) == 1


def history(rng: random.Random) -> list[dict[str, Any]]:
    """Runs of a few jobs over datasets t..z: START, RUNNING, COMPLETE/FAIL/ABORT, some with
    a named version, a parent, a second schema; each event sent once or twice."""
    events = []
    names = ["t", "u", "w", "x", "y", "z"]
    parent = str(uuid.uuid4())
    for i in range(12):
        run = str(uuid.uuid4())
        ins = tuple(rng.sample(names, rng.randint(0, 2)))
        outs = tuple(n for n in rng.sample(names, rng.randint(0, 2)) if n not in ins)
        extra: dict[str, Any] = {}
        if rng.random() < 0.3:
            extra["version"] = {n: f"v{rng.randint(1, 2)}" for n in (*ins, *outs)}
        if rng.random() < 0.3:
            extra["parent"] = parent
        if rng.random() < 0.3:
            extra["columns"] = ("a", "b")
        end = rng.choice(["COMPLETE", "COMPLETE", "FAIL", "ABORT"])
        minute = 2 * i
        # some runs' last event names one input more (what the plan leaves to ingest)
        more = (*ins, rng.choice(names)) if rng.random() < 0.3 else ins
        more = tuple(dict.fromkeys(n for n in more if n not in outs))
        for kind, m in (("START", 0), ("RUNNING", 1), (end, 1)):
            if kind == "RUNNING" and rng.random() < 0.5:
                continue
            e = ev(kind, run, f"job_{i % 4}", minute + m, inputs=more if kind == end else ins,
                   outputs=outs, **extra)  # fmt: skip
            events.extend([e] * rng.choice([1, 1, 2]))
    # mostly in order, some swapped with a neighbour (late delivery)
    for k in range(len(events) - 1):
        if rng.random() < 0.2:
            events[k], events[k + 1] = events[k + 1], events[k]
    return events


@pytest.mark.parametrize("seed", range(4))
def test_any_grouping_stores_what_one_by_one_stores(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Stored event by event into SQLite, and in groups into each store: the same."""
    rng = random.Random(seed)
    events = history(rng)
    cuts = sorted(rng.sample(range(1, len(events)), min(6, len(events) - 1)))
    groups = [events[i:j] for i, j in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    stores = {}
    for name, set_based in (("alone", False), ("grouped", True)):
        monkeypatch.setattr(grouping, "SET_BASED", set_based)
        where = backend.store if set_based else str(tmp_path / name / "store")
        opened = open_service(where, str(tmp_path / name / "blobs"))
        try:
            for part in groups if set_based else [[e] for e in events]:
                stored_ok(ingest_group(opened, part))
            stores[name] = (snapshot(opened), lineage_graph(opened))
            digests = set(opened.blobs.digests())
            for a in opened.artifacts():
                for v in opened.versions(a.project, a.name):
                    assert manifest_digests(opened.blobs, v.digest) <= digests
        finally:
            opened.graph.close()
    alone, grouped = stores["alone"], stores["grouped"]
    assert grouped[0] == alone[0]
    assert nx.is_directed_acyclic_graph(grouped[1])
    assert sorted(grouped[1].edges) == sorted(alone[1].edges)
    for node in alone[1]:
        assert nx.ancestors(grouped[1], node) == nx.ancestors(alone[1], node)
