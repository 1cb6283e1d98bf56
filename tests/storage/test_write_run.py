"""``write_run`` (lineage.storage.graph): a run, its edges and its commits as one write, all
or nothing. On Neo4j, concurrent callers' runs share one transaction (group.py); on SQLite,
the three calls in one ``transaction()``. Answers checked against SQLite and networkx."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from lineage.errors import TypeMismatch
from lineage.records import CONSUMED_BY, Edge, RunRecord, VersionRecord
from lineage.storage.graph import GraphStore, NewVersion, WriteRun, write_run
from lineage.storage.neo4j import Neo4jGraphStore
from lineage.storage.neo4j.group import GroupCommit
from lineage.storage.sqlite import SQLiteGraphStore

pytestmark = pytest.mark.neo4j


def _new(name: str, digest: int, run: str, type_: str = "model") -> NewVersion:
    return NewVersion(
        project="g", name=name, type=type_, digest=f"{digest:064x}", size=digest,
        file_count=1, metadata={"digest": digest}, run_id=run, at=100.0 + digest,
    )  # fmt: skip


def _run(run: str) -> RunRecord:
    return RunRecord(id=run, project="g", name=run, state="finished", config={"lr": 0.1})


def _inputs(run: str) -> list[Edge]:
    return [
        Edge(source="g/data:v0", target=run, kind=CONSUMED_BY),
        Edge(source="g/base:v0", target=run, kind=CONSUMED_BY),
    ]


# a run with two outputs, one of them bytes already stored (base:v0): found, not new
TWO = [_new("x", 20, "two"), _new("base", 2, "two")]
# base is a model: the second commit is refused, so nothing of run "bad" may stay
BAD = [_new("y", 30, "bad"), _new("base", 31, "bad", "dataset")]


def _seed(graph: GraphStore) -> None:
    graph.create_run(RunRecord(id="prep", project="g", name="prep"))
    graph.commit_version(_new("data", 1, "prep", "dataset"))
    graph.commit_version(_new("base", 2, "prep"))


class _Counted:
    """The store's writer, counting its transactions; shut on its first call until ``open``
    (while the first group is written, every other caller queues: the next group is all)."""

    def __init__(self, write: Callable[..., Any], hold: bool) -> None:
        self.write = write
        self.calls = 0
        self.opened = threading.Event()
        if not hold:
            self.opened.set()

    def __call__(self, *statement: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            assert self.opened.wait(30)
        return self.write(*statement)


def _count(store: Neo4jGraphStore, hold: bool = False) -> tuple[_Counted, GroupCommit]:
    counted = _Counted(store._execute, hold)
    store._group = GroupCommit(counted)
    return counted, store._group


def _held(store: Neo4jGraphStore, *calls: Callable[[], Any]) -> tuple[_Counted, list[Any]]:
    """A lone write held in flight, ``calls`` queued meanwhile (one thread each), then let go:
    the transactions taken and what each call returned or raised."""
    counted, group = _count(store, hold=True)
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            outcomes[i] = call()
        except Exception as exc:
            outcomes[i] = exc

    lead = threading.Thread(target=lambda: store.create_run(_run("lead")))
    lead.start()
    while not counted.calls:
        time.sleep(0.01)
    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(group._queue) < len(calls):
        assert time.monotonic() < deadline, "callers never queued"
        time.sleep(0.01)
    counted.opened.set()
    for thread in [lead, *threads]:
        thread.join()
    return counted, outcomes


def _same(a: VersionRecord, b: VersionRecord) -> bool:
    # created_at: each store's own clock, never before its predecessor
    return dataclasses.replace(a, created_at=0.0) == dataclasses.replace(b, created_at=0.0)


def test_the_neo4j_store_has_the_fast_path_and_sqlite_the_fallback(tmp_path: Path) -> None:
    sqlite = SQLiteGraphStore(tmp_path / "lineage.db")
    try:
        assert not isinstance(sqlite, WriteRun)
    finally:
        sqlite.close()
    assert issubclass(Neo4jGraphStore, WriteRun)


def test_concurrent_runs_commit_in_one_transaction_each_with_its_own_answer(
    store: Neo4jGraphStore, tmp_path: Path
) -> None:
    _seed(store)
    counted, outcomes = _held(
        store,
        *(
            lambda w=w: write_run(
                store, _run(f"w{w}"), _inputs(f"w{w}"), [_new(f"m{w}", 10 + w, f"w{w}")]
            )
            for w in range(6)
        ),
        lambda: write_run(store, _run("two"), _inputs("two"), TWO),
    )
    assert counted.calls == 2  # the lead's write, then all seven runs in one transaction
    sqlite = SQLiteGraphStore(tmp_path / "lineage.db")
    try:
        _seed(sqlite)
        expected = nx.DiGraph([("prep", "g/data:v0"), ("prep", "g/base:v0")])
        for w in range(6):
            [(made, fresh)] = outcomes[w]
            [(theirs, their_fresh)] = write_run(
                sqlite, _run(f"w{w}"), _inputs(f"w{w}"), [_new(f"m{w}", 10 + w, f"w{w}")]
            )
            assert fresh and their_fresh and made.id == f"g/m{w}:v0" and _same(made, theirs)
            assert made.created_by == f"w{w}" and made.aliases == ("latest",)
            assert _same(made, store.get_versions([made.id])[made.id])
            expected.add_edges_from(
                [("g/data:v0", f"w{w}"), ("g/base:v0", f"w{w}"), (f"w{w}", made.id)]
            )
        (x, x_fresh), (base, base_fresh) = outcomes[6]
        theirs = write_run(sqlite, _run("two"), _inputs("two"), TWO)
        assert (x_fresh, base_fresh) == (True, False) == (theirs[0][1], theirs[1][1])
        assert _same(x, theirs[0][0]) and _same(base, theirs[1][0]) and base.id == "g/base:v0"
        expected.add_edges_from([("g/data:v0", "two"), ("g/base:v0", "two"), ("two", x.id)])
        for graph in (store, sqlite):
            nodes, edges, _ = _walk(graph)
            assert nodes == set(expected.nodes)
            assert {(s, t) for s, t, _ in edges} == set(expected.edges)
            runs = graph.get_runs([f"w{w}" for w in range(6)] + ["two"])
            assert {r.state for r in runs.values()} == {"finished"} and len(runs) == 7
        assert store.get_runs(["w3"])["w3"] == sqlite.get_runs(["w3"])["w3"]
    finally:
        sqlite.close()


def _walk(graph: GraphStore) -> tuple[set[str], set[tuple[str, str, str]], bool]:
    """Everything downstream of ``prep`` by ``expand``, level by level."""
    nodes, edges, frontier = {"prep"}, set(), ["prep"]
    while frontier:
        found = graph.expand(frontier, "down")
        edges |= {(e.source, e.target, e.kind) for e in found}
        frontier = [e.target for e in found if e.target not in nodes]
        nodes |= set(frontier)
    return nodes, edges, False


def test_a_run_refused_in_part_stores_nothing_and_its_group_commits(
    store: Neo4jGraphStore, tmp_path: Path
) -> None:
    _seed(store)
    counted, outcomes = _held(
        store,
        lambda: write_run(store, _run("bad"), _inputs("bad"), BAD),
        lambda: write_run(store, _run("good"), _inputs("good"), [_new("m", 32, "good")]),
        lambda: store.commit_version(_new("other", 33, "prep")),
        lambda: store.create_run(_run("alone")),
    )
    # the lead's; the group's, rolled back before its commit; the group again without "bad"
    assert counted.calls == 3
    assert isinstance(outcomes[0], TypeMismatch) and "g/base" in str(outcomes[0])
    [(good, fresh)] = outcomes[1]
    assert fresh and good.id == "g/m:v0"
    assert outcomes[2][0].id == "g/other:v0" and outcomes[3] is None
    assert set(store.get_runs(["bad", "good", "alone", "lead"])) == {"good", "alone", "lead"}
    assert store.list_versions("g", "y") == [] and store.get_artifact("g", "y") is None
    assert [v.index for v in store.list_versions("g", "base")] == [0]
    nodes, _, _ = store.walk_rows(["g/data:v0"], "down", None)
    assert nodes == {"g/data:v0", "good", "g/m:v0"}
    # SQLite's fallback: the same call refused, nothing of it stored either
    sqlite = SQLiteGraphStore(tmp_path / "lineage.db")
    try:
        _seed(sqlite)
        with pytest.raises(TypeMismatch):
            write_run(sqlite, _run("bad"), _inputs("bad"), BAD)
        assert sqlite.get_runs(["bad"]) == {} and sqlite.get_artifact("g", "y") is None
        assert sqlite.expand(["g/data:v0"], "down") == []
    finally:
        sqlite.close()


@pytest.mark.parametrize(
    ("edges", "commits", "wrong"),
    [
        ([Edge(source="g/data:v0", target="other", kind=CONSUMED_BY)], [], "its own edges"),
        ([], [_new("m", 1, "other")], "a commit by run 'other'"),
        ([], [_new("m", 1, "r"), _new("m", 2, "r")], "one version an artifact"),
        ([Edge(source="r", target="s", kind=CONSUMED_BY)], [], "joins a run and a version"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    store: Neo4jGraphStore, edges: list[Edge], commits: list[NewVersion], wrong: str
) -> None:
    _seed(store)
    counted, _ = _count(store)
    with pytest.raises(ValueError, match=wrong):
        store.write_run(_run("r"), edges, commits)
    assert counted.calls == 0 and store.get_runs(["r"]) == {}


def test_eight_writers_log_the_graph_networkx_expects_in_fewer_transactions(
    store: Neo4jGraphStore,
) -> None:
    _seed(store)
    counted, _ = _count(store)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for k in range(10):
                run = f"t{w}-{k}"
                # half the writers share one artifact: its lock and numbering are contended
                name = "shared" if w % 2 else f"own{w}"
                new = _new(name, 100 * w + k + 50, run)
                [(_, fresh)] = write_run(store, _run(run), _inputs(run), [new])
                assert fresh
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert counted.calls < 80  # a transaction a run would be 80
    shared = store.list_versions("g", "shared")
    assert sorted(v.index for v in shared) == list(range(40))  # no gap, no duplicate
    expected = nx.DiGraph([("prep", "g/data:v0"), ("prep", "g/base:v0")])
    for v in [*shared, *(x for w in range(0, 8, 2) for x in store.list_versions("g", f"own{w}"))]:
        assert v.created_by is not None
        expected.add_edges_from(
            [("g/data:v0", v.created_by), ("g/base:v0", v.created_by), (v.created_by, v.id)]
        )
    nodes, edges, _ = store.walk_rows(["prep"], "down", None)
    assert nodes == set(expected.nodes)
    assert {(s, t) for s, t, _ in edges} == set(expected.edges)
    assert len(expected.edges) == 2 + 80 * 3
