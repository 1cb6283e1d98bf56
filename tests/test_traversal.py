"""Traversals checked against networkx on the same edges, on random DAGs (hypothesis)."""

from __future__ import annotations

import inspect
import itertools
import typing
from collections.abc import Iterator

import pytest
from helpers import expected_lineage, oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage.traversal as traversal_module
from lineage.errors import InvalidInput
from lineage.records import ArtifactRecord, Edge, Event, RunRecord, VersionRecord
from lineage.service import Service
from lineage.storage import open_stores
from lineage.storage.graph import (
    ExpandRows,
    GraphStore,
    Reaches,
    TreeRows,
    WalkRecords,
    WalkRows,
)
from lineage.storage.neo4j import Neo4jGraphStore
from lineage.storage.sqlite import SQLiteGraphStore
from lineage.traversal import Traversal

_projects = itertools.count()


@pytest.fixture
def service(backend) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    stores = open_stores(backend.store, backend.blobs)
    yield Service(stores.graph, stores.blobs)
    stores.close()


@st.composite
def dags(draw: st.DrawFn) -> list[tuple[list[int], list[int]]]:
    """Runs in creation order: each consumes earlier versions and produces new ones (or none:
    an evaluation that logged nothing, a run still going)."""
    runs: list[tuple[list[int], list[int]]] = []
    versions = 0
    for _ in range(draw(st.integers(1, 14))):
        inputs = draw(st.lists(st.integers(0, max(versions - 1, 0)), max_size=3, unique=True))
        inputs = inputs if versions else []
        outputs = list(range(versions, versions + draw(st.integers(0 if versions else 1, 3))))
        versions += len(outputs)
        runs.append((inputs, outputs))
    return runs


def load(service: Service, runs: list[tuple[list[int], list[int]]]) -> tuple[str, list[Edge]]:
    project = f"t{next(_projects)}"
    digest = "0" * 64
    run_records, versions, edges = [], [], []
    for r, (inputs, outputs) in enumerate(runs):
        run_id = f"{project}r{r}"
        run_records.append(RunRecord(id=run_id, project=project, name=run_id, started_at=float(r)))
        for i in inputs:
            edges.append(Edge(source=f"{project}/v:v{i}", target=run_id, kind="consumed_by"))
        for o in outputs:
            versions.append(  # some with a description, some with no creator (imported)
                VersionRecord(project=project, name="v", type="model", index=o, digest=digest,
                              size=o, file_count=0, created_by=run_id if o % 3 else None,
                              description=f"v{o}\tdesc" if o % 2 else None,
                              metadata={"o": o} if o % 2 else {}, created_at=float(o))
            )  # fmt: skip
            edges.append(Edge(source=run_id, target=f"{project}/v:v{o}", kind="produced"))
    service.graph.import_records(
        runs=run_records,
        artifacts=[ArtifactRecord(project=project, name="v", type="model")],
        versions=versions,
        edges=edges,
    )
    return project, edges


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=dags(), data=st.data())
def test_lineage_matches_networkx(service: Service, runs, data) -> None:  # type: ignore[no-untyped-def]
    project, edges = load(service, runs)
    graph = oracle(edges)
    nodes = sorted(graph.nodes)
    start = data.draw(st.sampled_from(nodes))
    depth = data.draw(st.one_of(st.none(), st.integers(0, 6)))
    direction = data.draw(st.sampled_from(["upstream", "downstream"]))
    got = service.lineage(start, direction, depth, default_project=project)
    hops = None if depth is None else 2 * depth - (0 if ":" in start else 1)
    if hops is not None and hops < 0:
        hops = 0
    want_nodes, want_edges, want_truncated = expected_lineage(
        graph, start, hops, direction == "upstream"
    )
    assert got.ids == want_nodes
    assert {(e.source, e.target) for e in got.edges} == want_edges
    assert got.truncated == want_truncated
    assert {n.kind for n in got.nodes if n.id == start} == {
        "run" if ":" not in start else "artifact_version"
    }
    # the records are the store's own, whichever way the store fetched them
    assert {n.id: n.version for n in got.nodes if n.version} == service.graph.get_versions(
        [i for i in got.ids if ":" in i]
    )
    assert {n.id: n.run for n in got.nodes if n.run} == service.graph.get_runs(
        [i for i in got.ids if ":" not in i]
    )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=dags(), data=st.data())
def test_tree_path_and_impact_match_networkx(service: Service, runs, data) -> None:  # type: ignore[no-untyped-def]
    import networkx as nx

    _, edges = load(service, runs)
    graph = oracle(edges)
    versions = sorted(n for n in graph.nodes if ":" in n)
    root = data.draw(st.sampled_from(versions))

    # derivation tree: version -> version through one run, within the reachable set
    tree = service.tree(root, None)
    reach = nx.descendants(graph, root) | {root}
    want = {
        (a, b, r)
        for r in reach
        if ":" not in r
        for a in graph.predecessors(r)
        if a in reach
        for b in graph.successors(r)
    }
    assert {(e.source, e.target, e.run) for e in tree.edges} == want
    assert tree.ids == {n for n in reach if ":" in n}
    assert all(e.kind == "derived" for e in tree.edges)

    # impact: every descendant
    impact = service.impact(root)
    assert impact.ids == reach

    # path between two versions, either way round
    other = data.draw(st.sampled_from(versions))
    path = service.path(root, other)
    if other in reach:
        on_path = (nx.descendants(graph, root) | {root}) & (nx.ancestors(graph, other) | {other})
        assert path is not None and path.ids == on_path
    elif root in nx.descendants(graph, other):
        on_path = (nx.descendants(graph, other) | {other}) & (nx.ancestors(graph, root) | {root})
        assert path is not None and path.ids == on_path
    else:
        assert path is None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=dags(), data=st.data())
def test_tree_with_depth_matches_networkx(service: Service, runs, data) -> None:  # type: ignore[no-untyped-def]
    """The derivation tree ``depth`` generations deep: the versions within ``2 * depth`` hops,
    a derived edge for every consumed -> run -> produced pair among them, truncated when an
    edge leaves them; the records are the store's own (types, aliases)."""
    project, edges = load(service, runs)
    graph = oracle(edges)
    versions = sorted(n for n in graph.nodes if ":" in n)
    root = data.draw(st.sampled_from(versions))
    depth = data.draw(st.one_of(st.none(), st.integers(0, 5)))
    deleted = data.draw(st.sampled_from(versions))  # a tombstone stays in the tree
    service.graph.delete_version(
        deleted, Event(project=project, target=deleted, kind="version.deleted", at=1.0)
    )
    alias = data.draw(st.sampled_from(versions))
    service.graph.set_alias(project, "v", "best", int(alias.rsplit(":v", 1)[1]), None)

    tree = service.tree(root, depth)
    nodes, within, truncated = expected_lineage(
        graph, root, None if depth is None else 2 * depth, upstream=False
    )
    want = {
        (a, b, r) for a, r in within if ":" in a for b in graph.successors(r) if (r, b) in within
    }
    assert {(e.source, e.target, e.run) for e in tree.edges} == want
    assert [e.source for e in tree.edges] == sorted(e.source for e in tree.edges)
    assert tree.ids == {n for n in nodes if ":" in n}
    assert [n.id for n in tree.nodes] == sorted(tree.ids)
    assert tree.truncated == truncated
    assert {n.id: n.version for n in tree.nodes} == service.graph.get_versions(tree.ids)
    assert any("best" in n.version.aliases for n in tree.nodes if n.version) == (alias in tree.ids)
    assert {n.id for n in tree.nodes if n.version and n.version.state == "deleted"} == (
        {deleted} & tree.ids
    )


def test_tree_depth_limit_cases(service: Service) -> None:
    """At the depth limit a version consumed by a run already in the tree keeps its derived
    edges (the run and its outputs are inside); a run not yet reached marks it truncated,
    even one with no outputs."""
    # v0 -> r1 -> v1; (v0, v1) -> r2 -> v2; v1 -> r3 (nothing logged)
    project, _ = load(service, [([], [0]), ([0], [1]), ([0, 1], [2]), ([1], [])])
    v0, v1, v2 = (f"{project}/v:v{i}" for i in range(3))
    r1, r2 = f"{project}r1", f"{project}r2"
    tree = service.tree(v0, 1)
    assert {(e.source, e.target, e.run) for e in tree.edges} == {
        (v0, v1, r1), (v0, v2, r2), (v1, v2, r2),
    }  # fmt: skip
    assert tree.truncated  # r3, beyond the limit, consumed v1
    whole = service.tree(v0, None)
    assert whole.ids == tree.ids and not whole.truncated
    assert service.tree(v0, 0).ids == {v0} and service.tree(v0, 0).truncated


def test_shared_inputs_cost_about_the_answer(service: Service) -> None:
    """A dataset consumed by 2,000 runs: upstream of one output reads one level per hop."""
    runs = [([], [0])] + [([0], [i + 1]) for i in range(2000)]
    calls = []
    original = service.graph.expand

    def counting(ids, direction):  # type: ignore[no-untyped-def]
        found = original(ids, direction)
        calls.append(len(found))
        return found

    project, _ = load(service, runs)
    service.graph.expand = counting  # type: ignore[method-assign]
    got = service.lineage(f"{project}/v:v7", "upstream", 20)
    assert len(got.nodes) == 4  # v7 <- run <- v0 <- run
    assert sum(calls) <= 10  # never reads the 2,000 sibling edges of v0's consumers
    assert len(calls) <= 5


def test_depth_is_validated(service: Service) -> None:
    with pytest.raises(InvalidInput, match="depth"):
        service.lineage("x/y:v0", "upstream", -1)
    with pytest.raises(InvalidInput, match="direction"):
        service.lineage("x/y:v0", "sideways", 1)


# the fast paths and their fallback -------------------------------------------------------------

FAST_PATHS = {
    "expand_rows": ExpandRows,
    "walk_rows": WalkRows,
    "walk_records": WalkRecords,
    "tree_rows": TreeRows,
    "reaches": Reaches,
}


class Plain:
    """A store seen through the GraphStore protocol alone: none of the optional fast paths."""

    def __init__(self, inner: GraphStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name in FAST_PATHS:
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.mark.parametrize(
    "store,fast",
    [
        (SQLiteGraphStore, {"expand_rows", "tree_rows"}),
        (Neo4jGraphStore, set(FAST_PATHS)),
    ],
)
def test_stores_declare_their_fast_paths_as_the_protocols_say(store: type, fast: set[str]) -> None:
    for name, protocol in FAST_PATHS.items():
        assert issubclass(store, protocol) == (name in fast), name
        if name in fast:  # the same parameters, the same types (each module's names resolved)
            got, want = getattr(store, name), getattr(protocol, name)
            assert _same_parameters(got, want), name
            assert typing.get_type_hints(got) == typing.get_type_hints(want), name


def _same_parameters(got: object, want: object) -> bool:
    def shape(function: object) -> list[tuple[str, object, object]]:
        parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        return [(p.name, p.kind, p.default) for p in parameters]

    return shape(got) == shape(want)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=dags(), data=st.data())
def test_the_fallback_answers_as_the_fast_paths(service: Service, runs, data) -> None:  # type: ignore[no-untyped-def]
    """Traversal by node ids: the store's own fast paths and the generic walk over
    ``expand`` give the same answers."""
    _, edges = load(service, runs)
    nodes = sorted({e.source for e in edges} | {e.target for e in edges})
    fast, plain = Traversal(service.graph), Traversal(Plain(service.graph))  # type: ignore[arg-type]
    assert not any(isinstance(plain.graph, protocol) for protocol in FAST_PATHS.values())
    node, other = data.draw(st.sampled_from(nodes)), data.draw(st.sampled_from(nodes))
    depth = data.draw(st.one_of(st.none(), st.integers(0, 4)))
    for direction in ("upstream", "downstream", "both"):
        assert fast.lineage(node, direction, depth) == plain.lineage(node, direction, depth)
    assert fast.impact(node) == plain.impact(node)
    assert fast.path(node, other) == plain.path(node, other)
    for way in ("up", "down"):
        assert fast.reaches(node, other, way) == plain.reaches(node, other, way)  # type: ignore[arg-type]
    if ":" in node:
        assert fast.tree(node, depth) == plain.tree(node, depth)
    else:
        with pytest.raises(InvalidInput, match="starts at a version"):
            plain.tree(node, depth)


def test_service_holds_a_traversal_and_is_none() -> None:
    assert not issubclass(Service, Traversal)
    source = inspect.getsource(traversal_module)
    assert "import lineage.service" not in source and "from lineage.service" not in source


def test_paused_gc_after_big_and_small_answers() -> None:
    """The collector is off inside, back on after; a big answer moves to the oldest
    generation (the next young collection does not re-scan it); objects the process froze
    itself stay frozen."""
    import gc

    from lineage.traversal import paused_gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        big = [[i] for i in range(200_000)]
    assert gc.isenabled()
    assert gc.get_count()[0] < 1000  # moved, not waiting for a young collection
    kept = [[i] for i in range(1000)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused_gc():
            small = [[i] for i in range(10)]
        with paused_gc():
            big2 = [[i] for i in range(200_000)]
        assert gc.get_freeze_count() >= frozen  # never unfrozen by paused_gc
        assert gc.isenabled()
    finally:
        gc.unfreeze()
    del big, kept, small, big2
