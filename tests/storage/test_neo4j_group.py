"""Group commit of the Neo4j store's single writes (lineage.storage.neo4j.group): concurrent
callers share a transaction, and each still gets its own outcome, durably."""

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
from lineage.records import CONSUMED_BY, PRODUCED, Edge, RunRecord
from lineage.storage.graph import NewVersion
from lineage.storage.neo4j import Neo4jGraphStore
from lineage.storage.neo4j.group import GroupCommit, Write
from lineage.storage.sqlite import SQLiteGraphStore

pytestmark = pytest.mark.neo4j


def _new(name: str, digest: int, run: str, type_: str = "model") -> NewVersion:
    return NewVersion(
        project="g", name=name, type=type_, digest=f"{digest:064x}", size=1, file_count=1,
        run_id=run, at=time.time(),
    )  # fmt: skip


def _log(store: Neo4jGraphStore, run: str, name: str, digest: int) -> tuple[Any, bool]:
    """A run logged as the SDK logs it: the run, its input g/data:v0, its output ``name``."""
    store.create_run(RunRecord(id=run, project="g", name=run))
    store.add_edges([Edge(source="g/data:v0", target=run, kind=CONSUMED_BY)])
    return store.commit_version(_new(name, digest, run))


class _Gate:
    """The store's writer, held shut on its first call until ``open``: while the first group
    is being written, every other caller queues, so the second group is all of them."""

    def __init__(self, write: Callable[..., Any]) -> None:
        self.write = write
        self.calls: list[int] = []  # writes per transaction body, in call order
        self.opened = threading.Event()

    def __call__(self, *statement: Any) -> Any:
        first = not self.calls
        self.calls.append(1)
        if first:
            assert self.opened.wait(30)
        return self.write(*statement)


def _hold(store: Neo4jGraphStore) -> tuple[_Gate, GroupCommit]:
    gate = _Gate(store._execute)
    group = GroupCommit(gate)
    store._group = group
    return gate, group


def _queued(group: GroupCommit, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(group._queue) < n:
        assert time.monotonic() < deadline, "callers never queued"
        time.sleep(0.01)


def _in_threads(*calls: Callable[[], Any]) -> tuple[list[threading.Thread], list[Any]]:
    """Each call in a thread of its own; what each returned or raised."""
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            outcomes[i] = call()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_queued_writes_of_many_callers_commit_in_one_transaction(store: Neo4jGraphStore) -> None:
    store.create_run(RunRecord(id="r0", project="g", name="r0", started_at=1.0))
    store.commit_version(_new("data", 1, "r0", "dataset"))
    gate, group = _hold(store)
    first, done = _in_threads(lambda: store.create_run(RunRecord(id="lead", project="g", name="x")))
    while not gate.calls:
        time.sleep(0.01)
    calls: list[Callable[[], Any]] = []
    for w in range(6):
        run = f"w{w}"
        calls.append(lambda run=run: store.create_run(RunRecord(id=run, project="g", name=run)))
        calls.append(
            lambda run=run: store.add_edges(
                [Edge(source="g/data:v0", target=run, kind=CONSUMED_BY)]
            )
        )
        calls.append(lambda w=w, run=run: store.commit_version(_new(f"m{w}", w, run)))
    threads, outcomes = _in_threads(*calls)
    _queued(group, len(calls))
    gate.opened.set()
    for thread in [*first, *threads]:
        thread.join()
    assert done == [None]
    # the leader's group, then all 18 queued writes in one transaction
    assert len(gate.calls) == 2
    for w in range(6):
        version, fresh = outcomes[3 * w + 2]
        assert fresh and version.id == f"g/m{w}:v0" and version.aliases == ("latest",)
        assert version.created_by == f"w{w}"
    expected = nx.DiGraph()
    expected.add_edge("r0", "g/data:v0")
    for w in range(6):
        expected.add_edge("g/data:v0", f"w{w}")
        expected.add_edge(f"w{w}", f"g/m{w}:v0")
    nodes, edges, _ = store.walk_rows(["r0"], "down", None)
    assert nodes == set(expected.nodes)
    assert {(s, t) for s, t, _ in edges} == set(expected.edges)
    assert {k for _, _, k in edges} == {PRODUCED, CONSUMED_BY}
    assert set(store.get_runs([f"w{w}" for w in range(6)])) == {f"w{w}" for w in range(6)}


def test_a_refused_commit_is_refused_alone_and_its_group_commits(store: Neo4jGraphStore) -> None:
    store.create_run(RunRecord(id="r", project="g", name="r"))
    store.commit_version(_new("m", 1, "r"))
    gate, group = _hold(store)
    first, _ = _in_threads(lambda: store.create_run(RunRecord(id="lead", project="g", name="x")))
    while not gate.calls:
        time.sleep(0.01)
    threads, outcomes = _in_threads(
        lambda: store.commit_version(_new("m", 2, "r", type_="dataset")),  # m is a model
        lambda: store.commit_version(_new("other", 3, "r")),
        lambda: store.create_run(RunRecord(id="s", project="g", name="s")),
    )
    _queued(group, 3)
    gate.opened.set()
    for thread in [*first, *threads]:
        thread.join()
    assert len(gate.calls) == 2
    assert isinstance(outcomes[0], TypeMismatch)
    assert outcomes[1][0].id == "g/other:v0" and outcomes[1][1]
    assert outcomes[2] is None and "s" in store.get_runs(["s"])
    assert [v.index for v in store.list_versions("g", "m")] == [0]  # nothing written for it


def test_a_write_that_spoils_its_group_fails_alone(store: Neo4jGraphStore) -> None:
    gate, group = _hold(store)
    first, _ = _in_threads(lambda: store.create_run(RunRecord(id="lead", project="g", name="x")))
    while not gate.calls:
        time.sleep(0.01)
    # a property Neo4j cannot store (a map): the server refuses the group's transaction
    threads, outcomes = _in_threads(
        lambda: group.submit(Write(runs=[{"id": "bad", "project": "g", "x": {"a": 1}}])),
        lambda: store.create_run(RunRecord(id="good", project="g", name="good")),
        lambda: store.commit_version(_new("m", 1, "good")),
    )
    _queued(group, 3)
    gate.opened.set()
    for thread in [*first, *threads]:
        thread.join()
    assert isinstance(outcomes[0], Exception) and not isinstance(outcomes[0], TypeMismatch)
    assert outcomes[1] is None
    assert outcomes[2][0].id == "g/m:v0"
    assert set(store.get_runs(["good", "bad", "lead"])) == {"good", "lead"}


def test_commits_to_one_artifact_wait_for_the_next_group(store: Neo4jGraphStore) -> None:
    store.create_run(RunRecord(id="r", project="g", name="r"))
    gate, group = _hold(store)
    first, _ = _in_threads(lambda: store.create_run(RunRecord(id="lead", project="g", name="x")))
    while not gate.calls:
        time.sleep(0.01)
    threads, outcomes = _in_threads(
        *(lambda i=i: store.commit_version(_new("m", i, "r")) for i in range(4))
    )
    _queued(group, 4)
    gate.opened.set()
    for thread in [*first, *threads]:
        thread.join()
    assert len(gate.calls) == 1 + 4  # one commit of "m" per group
    assert sorted(v.id for v, fresh in outcomes if fresh) == [f"g/m:v{i}" for i in range(4)]
    versions = store.list_versions("g", "m")
    assert [v.index for v in versions] == [0, 1, 2, 3]
    created = [v.created_at for v in sorted(versions, key=lambda v: v.index)]
    assert created == sorted(created)
    latest = store.find_alias("g", "m", "latest")
    assert latest is not None and latest.index == 3


def test_eight_writer_threads_log_the_graph_networkx_expects(store: Neo4jGraphStore) -> None:
    store.create_run(RunRecord(id="prep", project="g", name="prep"))
    store.commit_version(_new("data", 99, "prep", "dataset"))
    expected = nx.DiGraph()
    expected.add_edge("prep", "g/data:v0")
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for k in range(10):
                run = f"t{w}-{k}"
                # half the writers share one artifact: its lock and numbering are contended
                _, fresh = _log(store, run, "shared" if w % 2 else f"own{w}", 1000 * w + k)
                assert fresh
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    shared = store.list_versions("g", "shared")
    assert sorted(v.index for v in shared) == list(range(4 * 10))  # no gap, no duplicate
    for v in [*shared, *(x for w in range(0, 8, 2) for x in store.list_versions("g", f"own{w}"))]:
        assert v.created_by is not None
        expected.add_edge("g/data:v0", v.created_by)
        expected.add_edge(v.created_by, v.id)
    nodes, edges, _ = store.walk_rows(["prep"], "down", None)
    assert nodes == set(expected.nodes)
    assert {(s, t) for s, t, _ in edges} == set(expected.edges)
    assert len(expected.edges) == 1 + 8 * 10 * 2


def test_writes_in_an_open_transaction_never_join_a_group(store: Neo4jGraphStore) -> None:
    """A thread within transaction() (the OpenLineage endpoint's group of events) writes in
    its own transaction at once: it neither waits for a group being written nor, leading the
    next one, carries another caller's write in a transaction it may still roll back."""
    gate, group = _hold(store)
    first, _ = _in_threads(lambda: store.create_run(RunRecord(id="lead", project="g", name="x")))
    while not gate.calls:
        time.sleep(0.01)
    queued, outcomes = _in_threads(
        lambda: store.create_run(RunRecord(id="b", project="g", name="b"))
    )
    _queued(group, 1)
    wrote = threading.Event()

    def within() -> None:
        with store.transaction():
            store.create_run(RunRecord(id="a", project="g", name="a"))
            wrote.set()  # while the group is held: it never queued
            raise RuntimeError("rolled back")

    mine, raised = _in_threads(within)
    assert wrote.wait(30), "a write in an open transaction waited for the group"
    for thread in mine:
        thread.join()
    assert isinstance(raised[0], RuntimeError)
    assert len(group._queue) == 1  # only b's
    gate.opened.set()
    for thread in [*first, *queued]:
        thread.join()
    assert outcomes == [None]
    assert set(store.get_runs(["lead", "a", "b"])) == {"lead", "b"}


def _counted(store: Neo4jGraphStore, gather: float) -> list[int]:
    """The store's group commit with ``gather``, counting its transactions."""
    counted: list[int] = []

    def execute(*statement: Any) -> Any:
        counted.append(1)
        return store._execute(*statement)

    store._group = GroupCommit(execute, gather=gather)
    return counted


def test_a_lone_writer_never_waits_to_gather(store: Neo4jGraphStore) -> None:
    # gathering for a minute: a lone caller that waited for anyone would take minutes
    transactions = _counted(store, gather=60)
    done = threading.Event()

    def lone() -> None:
        store.create_run(RunRecord(id="prep", project="g", name="prep"))
        store.commit_version(_new("data", 99, "prep", "dataset"))
        for k in range(5):
            run = f"lone{k}"
            _log(store, run, "m", k)
        done.set()

    threading.Thread(target=lone, daemon=True).start()
    assert done.wait(30), "a lone writer waited for callers that never came"
    assert len(transactions) == 2 + 5 * 3
    assert [v.index for v in store.list_versions("g", "m")] == list(range(5))


def test_a_lone_caller_from_a_pool_of_threads_never_waits_to_gather(
    store: Neo4jGraphStore,
) -> None:
    """A server's requests come from a pool: one client's writes, one after the other, each
    from another thread. Gathering by thread would wait for the thread that wrote last, which
    never comes back (here: a minute, every write)."""
    transactions = _counted(store, gather=60)
    writes: list[Callable[[], Any]] = [
        lambda: store.create_run(RunRecord(id="prep", project="g", name="prep")),
        lambda: store.commit_version(_new("data", 99, "prep", "dataset")),
    ]
    for k in range(3):
        run = f"pooled{k}"
        writes += [
            lambda run=run: store.create_run(RunRecord(id=run, project="g", name=run)),
            lambda run=run: store.add_edges(
                [Edge(source="g/data:v0", target=run, kind=CONSUMED_BY)]
            ),
            lambda k=k, run=run: store.commit_version(_new("m", k, run)),
        ]
    done = threading.Event()

    def client() -> None:
        for write in writes:  # each in a thread of its own, one after the other
            thread = threading.Thread(target=write)
            thread.start()
            thread.join()
        done.set()

    threading.Thread(target=client, daemon=True).start()
    assert done.wait(30), "a lone caller waited for a thread that never came back"
    assert len(transactions) == 2 + 3 * 3
    assert [v.index for v in store.list_versions("g", "m")] == list(range(3))


def test_writers_answered_by_a_group_are_gathered_into_the_next(store: Neo4jGraphStore) -> None:
    """Four writers logging runs in lockstep: once all four have been in one group, every
    group waits for all four, so a run's three writes take three transactions
    for the four of them (without gathering, about twice as many: the callers a group has
    just answered miss the next one)."""
    store.create_run(RunRecord(id="prep", project="g", name="prep"))
    store.commit_version(_new("data", 99, "prep", "dataset"))
    transactions = _counted(store, gather=3)
    expected = nx.DiGraph()
    expected.add_edge("prep", "g/data:v0")
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for k in range(5):
                run = f"t{w}-{k}"
                version, fresh = _log(store, run, f"own{w}", k)
                assert fresh and version.id == f"g/own{w}:v{k}" and version.created_by == run
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    # the first groups form before every writer has been seen: a few more
    assert 15 <= len(transactions) <= 15 + 4, len(transactions)
    for w in range(4):
        for k in range(5):
            expected.add_edge("g/data:v0", f"t{w}-{k}")
            expected.add_edge(f"t{w}-{k}", f"g/own{w}:v{k}")
    nodes, edges, _ = store.walk_rows(["prep"], "down", None)
    assert nodes == set(expected.nodes)
    assert {(s, t) for s, t, _ in edges} == set(expected.edges)


def test_one_statement_commits_dedup_and_refusals_in_one_group(store: Neo4jGraphStore) -> None:
    """A group's commits in its one statement: a new version numbered after the last, the
    same bytes answered with the existing version (nothing written), another type refused
    (nothing written), an artifact's first version; each against what a lone commit gives."""
    store.create_run(RunRecord(id="r", project="g", name="r"))
    first, _ = store.commit_version(_new("m", 1, "r"))
    second, _ = store.commit_version(_new("m", 2, "r"))
    store.commit_version(_new("d", 3, "r", "dataset"))
    gate, group = _hold(store)
    lead, _ = _in_threads(lambda: store.create_run(RunRecord(id="lead", project="g", name="x")))
    while not gate.calls:
        time.sleep(0.01)
    threads, outcomes = _in_threads(
        lambda: store.commit_version(_new("m", 1, "s")),  # m:v0's bytes
        lambda: store.commit_version(_new("d", 4, "s", "model")),  # d is a dataset
        lambda: store.commit_version(_new("fresh", 5, "s")),
        lambda: store.create_run(RunRecord(id="s", project="g", name="s")),
        lambda: store.add_edges([Edge(source="g/m:v1", target="s", kind=CONSUMED_BY)]),
    )
    _queued(group, 5)
    gate.opened.set()
    for thread in [*lead, *threads]:
        thread.join()
    assert len(gate.calls) == 2  # the leader's, then the five in one
    again, fresh = outcomes[0]
    assert not fresh and again == store.get_versions([first.id])[first.id]
    assert isinstance(outcomes[1], TypeMismatch) and outcomes[1].artifact == "g/d"
    made, fresh = outcomes[2]
    assert fresh and made.id == "g/fresh:v0" and made.type == "model"
    assert made.aliases == ("latest",) and made.created_by == "s"
    assert [v.index for v in store.list_versions("g", "m")] == [0, 1]
    assert [v.index for v in store.list_versions("g", "d")] == [0]
    latest = store.find_alias("g", "m", "latest")
    assert latest is not None and latest.id == second.id
    _, edges, _ = store.walk_rows(["s"], "down", None)
    assert {(s, t) for s, t, _ in edges} == {("s", "g/fresh:v0")}
    _, edges, _ = store.walk_rows(["s"], "up", None)
    assert ("g/m:v1", "s") in {(s, t) for s, t, _ in edges}


def test_a_new_version_answered_without_a_read_is_what_a_read_and_sqlite_give(
    store: Neo4jGraphStore, tmp_path: Path
) -> None:
    """A commit's new version is built from what the commit wrote (not read back): it must
    be the record a read gives, field for field, and SQLite's for the same commits."""
    sqlite = SQLiteGraphStore(tmp_path / "lineage.db")
    metadata: list[dict[str, Any]] = [
        {},
        {"lr": 1e-4, "layers": [1, 2, 3], "nested": {"ü": "☃", "none": None, "ok": True}},
        {"big": 2**53 + 1, "tiny": 5e-324, "text": "a\nb"},
    ]
    try:
        for graph in (store, sqlite):
            graph.create_run(RunRecord(id="r", project="g", name="r"))
        for i, meta in enumerate(metadata * 2):
            new = NewVersion(
                project="g", name="m", type="model", digest=f"{i:064x}", size=i, file_count=1,
                metadata=meta, description=None if i % 2 else f"number {i}", run_id="r",
                at=100.0 + i,
            )  # fmt: skip
            made, fresh = store.commit_version(new)
            assert fresh and made == store.get_versions([made.id])[made.id]
            theirs, _ = sqlite.commit_version(new)
            assert dataclasses.replace(made, created_at=0.0) == dataclasses.replace(
                theirs, created_at=0.0
            )  # created_at: each store's own clock, never before its predecessor
        newest = store.get_versions(["g/m:v4", "g/m:v5"])
        assert newest["g/m:v4"].aliases == () and newest["g/m:v5"].aliases == ("latest",)
    finally:
        sqlite.close()


def test_groups_of_several_stores_race_on_one_artifact_without_gaps(neo4j_server: Any) -> None:
    """Four store objects (four connection pools, as four processes would have), two writer
    threads each, all committing to one artifact: their groups are concurrent transactions,
    and the one statement's lock must still number without gap or duplicate, dedup the same
    bytes committed by everyone to one version, and end with `latest` on the last."""
    neo4j_server.wipe()
    stores = [
        Neo4jGraphStore(neo4j_server.uri, user=neo4j_server.user, password=neo4j_server.password)
        for _ in range(4)
    ]
    errors: list[BaseException] = []
    answers: list[tuple[str, str, bool]] = []  # (digest, version id, fresh)

    def writer(store: Neo4jGraphStore, w: int) -> None:
        try:
            run = f"x{w}"
            store.create_run(RunRecord(id=run, project="g", name=run))
            for k in range(3):
                for digest in (100 * (w + 1) + k, k % 2):  # its own bytes, then shared bytes
                    version, fresh = store.commit_version(_new("hot", digest, run))
                    answers.append((f"{digest:064x}", version.id, fresh))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(stores[w % 4], w)) for w in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        versions = stores[0].list_versions("g", "hot")
        assert [v.index for v in versions] == list(range(8 * 3 + 2))  # no gap, no duplicate
        by_digest = {v.digest: v.id for v in versions}
        assert len(by_digest) == len(versions)  # each bytes once
        assert all(by_digest[digest] == vid for digest, vid, _ in answers)
        assert sum(fresh for _, _, fresh in answers) == len(versions)
        latest = stores[0].find_alias("g", "hot", "latest")
        assert latest is not None and latest.index == len(versions) - 1
        expected = nx.DiGraph()
        for v in versions:
            assert v.created_by is not None
            expected.add_edge(v.created_by, v.id)
        produced = {
            (s, t)
            for s, t, k in stores[0].walk_rows([f"x{w}" for w in range(8)], "down", None)[1]
            if k == PRODUCED
        }
        # each version's first committer produced it; a later committer of the same bytes
        # did not (commit_version adds no edge to an existing version: the service does)
        assert produced == set(expected.edges)
    finally:
        for store in stores:
            store.close()
