"""The GraphStore conformance suite: every backend in tests/conftest.py BACKENDS runs it."""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import random
import time
from collections.abc import Iterator

import pytest

from lineage.errors import TypeMismatch
from lineage.records import CodeVersion, Edge, Event, RunRecord, TokenRecord
from lineage.storage import open_graph
from lineage.storage.graph import GraphStore, NewVersion, write_run

D = [f"{i:064x}" for i in range(1, 50)]  # well-formed digests


@pytest.fixture
def graph(backend) -> Iterator[GraphStore]:  # type: ignore[no-untyped-def]
    store = open_graph(backend.store)
    yield store
    store.close()


def run(run_id: str, project: str = "p", **kw: object) -> RunRecord:
    return RunRecord(id=run_id, project=project, name=f"n-{run_id}", started_at=1.5, **kw)  # type: ignore[arg-type]


def new(name: str, digest: str, run_id: str, type: str = "model", **kw: object) -> NewVersion:
    return NewVersion(
        project="p", name=name, type=type, digest=digest, size=10, file_count=1,
        run_id=run_id, at=time.time(), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_run_round_trip(graph: GraphStore) -> None:
    record = run(
        "r1",
        job_type="train",
        config={"lr": 0.1, "layers": [1, 2]},
        tags=("a", "b"),
        notes="hi",
        code=CodeVersion(commit="abc", dirty=True, remote=None),
        host="h",
        pid=42,
    )
    graph.create_run(record)
    assert graph.get_runs(["r1"]) == {"r1": record}
    assert graph.get_runs(["nope"]) == {}
    updated = graph.update_run(
        "r1", {"state": "finished", "summary": {"acc": 0.5}, "finished_at": 2.5}
    )
    assert updated is not None
    assert (updated.state, updated.summary, updated.finished_at) == ("finished", {"acc": 0.5}, 2.5)
    assert graph.get_runs(["r1"])["r1"] == updated


def test_list_runs_filters_and_pages(graph: GraphStore) -> None:
    for i in range(5):
        graph.create_run(
            RunRecord(id=f"r{i}", project="p" if i < 4 else "q", name=f"n{i}",
                      job_type="eval" if i % 2 else "train", started_at=float(i))
        )  # fmt: skip
    assert [r.id for r in graph.list_runs("p")] == ["r0", "r1", "r2", "r3"]
    assert [r.id for r in graph.list_runs("p", job_type="eval")] == ["r1", "r3"]
    assert [r.id for r in graph.list_runs(limit=2)] == ["r0", "r1"]
    assert sorted(graph.list_projects()) == ["p", "q"]


def test_list_runs_pages_by_time_then_id(graph: GraphStore) -> None:
    """``after`` is the (started_at, id) of the last run seen: numbers compare as numbers
    (9.5 before 10.0, which text would put after), ties on started_at go by id."""
    times = {"a": 9.5, "b": 10.0, "c": 10.0, "d": 100.25, "e": 1e10}
    for run_id, at in reversed(times.items()):
        graph.create_run(RunRecord(id=run_id, project="t", name=run_id, started_at=at))
    assert [r.id for r in graph.list_runs("t")] == ["a", "b", "c", "d", "e"]
    pages, after = [], None
    while page := graph.list_runs("t", limit=2, after=after):
        pages.append([r.id for r in page])
        after = (page[-1].started_at, page[-1].id)
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert [r.id for r in graph.list_runs("t", after=(9.5, "a"))] == ["b", "c", "d", "e"]
    assert [r.id for r in graph.list_runs("t", after=(10.0, "b"))] == ["c", "d", "e"]


def test_list_runs_pages_newest_first(graph: GraphStore) -> None:
    """``newest_first``: the same keyset, descending; ``after`` the last run seen."""
    times = {"a": 9.5, "b": 10.0, "c": 10.0, "d": 100.25, "e": 1e10}
    for run_id, at in times.items():
        graph.create_run(RunRecord(id=run_id, project="t", name=run_id, started_at=at))
    assert [r.id for r in graph.list_runs("t", newest_first=True)] == ["e", "d", "c", "b", "a"]
    pages, after = [], None
    while page := graph.list_runs("t", limit=2, after=after, newest_first=True):
        pages.append([r.id for r in page])
        after = (page[-1].started_at, page[-1].id)
    assert pages == [["e", "d"], ["c", "b"], ["a"]]
    assert [r.id for r in graph.list_runs("t", after=(10.0, "c"), newest_first=True)] == [
        "b",
        "a",
    ]


def test_versions_are_numbered_in_commit_order(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    first, created = graph.commit_version(new("m", D[0], "r1", metadata={"k": 1}))
    assert created and first.index == 0 and first.id == "p/m:v0"
    second, created = graph.commit_version(new("m", D[1], "r1"))
    assert created and second.index == 1
    assert graph.find_alias("p", "m", "latest") == second
    assert first.metadata == {"k": 1}
    assert [v.index for v in graph.list_versions("p", "m")] == [0, 1]
    assert graph.expand(["r1"], "down") == [
        Edge(source="r1", target="p/m:v0", kind="produced"),
        Edge(source="r1", target="p/m:v1", kind="produced"),
    ] or sorted(e.target for e in graph.expand(["r1"], "down")) == ["p/m:v0", "p/m:v1"]


def test_project_samples_name_a_run_else_a_version_of_each_project(graph: GraphStore) -> None:
    for run_id, project in (("r3", "p"), ("r1", "p"), ("r2", "q")):
        graph.create_run(run(run_id, project))
    graph.commit_version(new("m", D[0], "r1"))  # p has runs: one of them is its sample
    for name, digest in (("b", D[1]), ("b", D[2]), ("a", D[3]), ("a", D[4])):
        graph.commit_version(dataclasses.replace(new(name, digest, "r1"), project="d"))
    samples = graph.project_samples(["p", "q", "d", "none", "p"])
    assert {p: (type(r).__name__, r.id) for p, r in samples.items()} == {
        "p": ("RunRecord", "r1"),  # the smallest id
        "q": ("RunRecord", "r2"),
        "d": ("VersionRecord", "d/a:v1"),  # the first artifact by name, its latest version
    }
    assert graph.project_samples([]) == {}


def test_count_project_runs_counts_each_project_at_once(graph: GraphStore) -> None:
    for i, project in enumerate(("p", "p", "p", "q", "r")):
        graph.create_run(run(f"r{i}", project, job_type="eval" if i % 2 else "train"))
    graph.update_run("r0", {"state": "finished"})
    assert graph.count_project_runs(["p", "q", "none", "p"]) == {"p": 3, "q": 1, "none": 0}
    assert graph.count_project_runs(["p", "q"], job_type="eval") == {"p": 1, "q": 1}
    assert graph.count_project_runs(["p", "r"], state="finished") == {"p": 1, "r": 0}
    assert graph.count_project_runs(["p"], job_type="train", state="running") == {"p": 1}
    assert graph.count_project_runs([]) == {}
    for project in ("p", "q", "r"):  # the same counts as one project at a time
        assert graph.count_project_runs([project])[project] == graph.count_runs(project)


def test_identical_digest_returns_existing_and_writes_nothing(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    graph.create_run(run("r2"))
    v0, _ = graph.commit_version(new("m", D[0], "r1"))
    again, created = graph.commit_version(new("m", D[0], "r2"))
    assert not created and again == v0
    assert len(graph.list_versions("p", "m")) == 1
    assert graph.expand(["r2"], "down") == []


def test_type_mismatch_is_refused(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    graph.commit_version(new("m", D[0], "r1"))
    with pytest.raises(TypeMismatch, match="type 'model'"):
        graph.commit_version(new("m", D[1], "r1", type="dataset"))
    assert len(graph.list_versions("p", "m")) == 1


def test_aliases_are_unique_and_move(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    graph.commit_version(new("m", D[0], "r1"))
    graph.commit_version(new("m", D[1], "r1"))
    ev = Event(project="p", target="p/m:v0", kind="alias.moved", at=1.0, new={"alias": "best"})
    graph.set_alias("p", "m", "best", 0, ev)
    assert graph.find_alias("p", "m", "best").index == 0  # type: ignore[union-attr]
    graph.set_alias("p", "m", "best", 1, None)
    found = graph.find_alias("p", "m", "best")
    assert found is not None and found.index == 1 and found.aliases == ("best", "latest")
    assert graph.get_versions(["p/m:v0"])["p/m:v0"].aliases == ()
    graph.set_alias("p", "m", "best", None, None)
    assert graph.find_alias("p", "m", "best") is None
    assert [e.kind for e in graph.events("p")] == ["alias.moved"]


def test_versions_page_by_index(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    for i in range(12):  # v10 and v11: an index compares as a number, not as text
        graph.commit_version(new("m", D[i], "r1"))
    graph.delete_version(
        "p/m:v2", Event(project="p", target="p/m:v2", kind="version.deleted", at=2.0)
    )

    def indexes(**kw: object) -> list[int]:
        return [v.index for v in graph.list_versions("p", "m", **kw)]  # type: ignore[arg-type]

    assert indexes() == [0, 1, *range(3, 12)]
    assert indexes(limit=2) == [0, 1] and indexes(limit=2, after=1) == [3, 4]
    assert indexes(after=9) == [10, 11] and indexes(after=11) == []
    assert indexes(include_deleted=True, after=1, limit=2) == [2, 3]
    assert indexes(newest_first=True, limit=3) == [11, 10, 9]
    assert indexes(newest_first=True, after=4) == [3, 1, 0]
    assert indexes(newest_first=True, after=4, include_deleted=True, limit=2) == [3, 2]
    assert graph.count_versions("p", "m") == 11
    assert graph.count_versions("p", "m", include_deleted=True) == 12
    assert graph.count_versions("p", "none") == 0
    page = graph.list_versions("p", "m", limit=1, after=3)[0]
    assert page == graph.get_versions(["p/m:v4"])["p/m:v4"]  # whole records, aliases too


def test_list_aliases(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    for i in range(3):
        graph.commit_version(new("m", D[i], "r1"))
        graph.commit_version(new("mm", D[10 + i], "r1"))  # "p/mm/..." must not match "p/m/"
    graph.set_alias("p", "m", "prod", 0, None)
    graph.set_alias("p", "m", "best", 1, None)
    held = graph.list_aliases("p", "m")
    assert [(alias, v.id) for alias, v in held] == [
        ("best", "p/m:v1"), ("latest", "p/m:v2"), ("prod", "p/m:v0"),
    ]  # fmt: skip
    assert held[0][1] == graph.get_versions(["p/m:v1"])["p/m:v1"]
    assert graph.list_aliases("p", "none") == []


def test_artifact_summaries_are_counts_and_aliases_of_many(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    for i in range(3):
        graph.commit_version(new("m", D[i], "r1"))
        graph.commit_version(new("mm", D[10 + i], "r1"))  # "p/mm/..." must not match "p/m/"
    graph.commit_version(new("other", D[20], "r1"))
    graph.set_alias("p", "m", "prod", 0, None)
    deleted = Event(project="p", target="p/mm:v2", kind="version.deleted", at=2.0)
    graph.delete_version("p/mm:v2", deleted)
    keys = [("p", "m"), ("p", "mm"), ("p", "none"), ("q", "m")]
    summaries = graph.artifact_summaries(keys)
    for key in keys:
        want = (graph.count_versions(*key), graph.list_aliases(*key))
        assert summaries.get(key, (0, [])) == want, key
    assert summaries[("p", "mm")][0] == 2 and "other" not in {n for _, n in summaries}
    assert graph.artifact_summaries([]) == {}


def test_delete_is_a_tombstone(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    graph.commit_version(new("m", D[0], "r1"))
    graph.commit_version(new("m", D[1], "r1"))
    graph.set_alias("p", "m", "prod", 1, None)
    graph.delete_version(
        "p/m:v1", Event(project="p", target="p/m:v1", kind="version.deleted", at=2.0)
    )
    gone = graph.get_versions(["p/m:v1"])["p/m:v1"]
    assert gone.state == "deleted" and gone.aliases == ()
    assert graph.find_alias("p", "m", "latest").index == 0  # type: ignore[union-attr]
    assert graph.find_alias("p", "m", "prod") is None
    assert [v.index for v in graph.list_versions("p", "m")] == [0]
    assert graph.manifest_digests() == {D[0]}
    assert {e.target for e in graph.expand(["r1"], "down")} == {"p/m:v0", "p/m:v1"}
    # the same bytes again make a new version: the deleted one is not resurrected
    again, created = graph.commit_version(new("m", D[1], "r1"))
    assert created and again.index == 2


def test_edges_are_idempotent_and_expand_both_ways(graph: GraphStore) -> None:
    graph.create_run(run("r1"))
    graph.create_run(run("r2"))
    graph.commit_version(new("d", D[0], "r1", type="dataset"))
    edge = Edge(source="p/d:v0", target="r2", kind="consumed_by")
    graph.add_edges([edge, edge])
    graph.add_edges([edge])
    assert graph.expand(["p/d:v0"], "down") == [edge]
    assert graph.expand(["r2"], "up") == [edge]
    assert graph.expand(["p/d:v0"], "up") == [Edge(source="r1", target="p/d:v0", kind="produced")]
    assert graph.expand([], "down") == []


def test_events_are_ordered_filtered_and_deduplicated(graph: GraphStore) -> None:
    events = [
        Event(project="p", target=f"p/{name}:v0", kind="k", at=float(i), actor="a",
              old={"x": i}, new=[i], uid=f"u{i}")
        for i, name in enumerate(["a", "b", "a", "ab"])
    ]  # fmt: skip
    graph.append_events(events)
    graph.append_events(events[:2])  # same uids: nothing new
    got = graph.events("p")
    assert [e.uid for e in got] == ["u0", "u1", "u2", "u3"]
    seqs = [e.seq for e in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert [e.uid for e in graph.events("p", target_prefix="p/a:")] == ["u0", "u2"]
    assert [e.uid for e in graph.events("p", after=seqs[1])] == ["u2", "u3"]
    assert got[0].old == {"x": 0} and got[0].new == [0]
    assert graph.events("other") == []


def test_import_records_is_idempotent_and_keeps_identity(graph: GraphStore) -> None:
    from lineage.records import ArtifactRecord, VersionRecord

    runs = [run("r1"), run("r2")]
    art = ArtifactRecord(project="p", name="m", type="model", description="d", created_at=1.0)
    versions = [
        VersionRecord(project="p", name="m", type="model", index=3, digest=D[3], size=5,
                      file_count=1, aliases=("latest", "prod"), created_by="r1", created_at=1.0),
        VersionRecord(project="p", name="m", type="model", index=1, digest=D[1], size=5,
                      file_count=1, created_by="r1", created_at=1.0),
    ]  # fmt: skip
    edges = [
        Edge(source="r1", target="p/m:v3", kind="produced"),
        Edge(source="p/m:v3", target="r2", kind="consumed_by"),
    ]
    events = [Event(project="p", target="p/m:v3", kind="alias.moved", at=1.0, uid="e1")]
    first = graph.import_records(
        runs=runs, artifacts=[art], versions=versions, edges=edges, events=events
    )
    assert first == {"runs": 2, "artifacts": 1, "versions": 2, "edges": 2, "events": 1}
    second = graph.import_records(
        runs=runs, artifacts=[art], versions=versions, edges=edges, events=events
    )
    assert second == {"runs": 0, "artifacts": 0, "versions": 0, "edges": 0, "events": 0}
    assert graph.find_alias("p", "m", "prod").index == 3  # type: ignore[union-attr]
    graph.create_run(run("r3"))
    nxt, created = graph.commit_version(new("m", D[9], "r3"))
    assert created and nxt.index == 4  # numbering continues above imported versions


def test_tokens(graph: GraphStore) -> None:
    token = TokenRecord(id="t1", digest=D[5], scope="write", created_at=1.0, description="ci")
    graph.create_token(token)
    assert graph.find_token(D[5]) == token
    assert graph.find_token(D[6]) is None
    assert graph.revoke_token("t1") is True
    assert graph.find_token(D[5]).revoked  # type: ignore[union-attr]
    assert graph.revoke_token("nope") is False


def _commit_many(url: str, worker: int, count: int) -> None:
    store = open_graph(url)
    store.create_run(run(f"w{worker}"))
    for i in range(count):
        store.commit_version(new("m", f"{worker * 1000 + i + 1:064x}", f"w{worker}"))
    store.close()


def _commit_late(url: str, worker: int, count: int) -> None:
    """Commits whose time was read before the lock: up to half a second before (uploading,
    waiting for the lock), as a writer sees it."""
    rng = random.Random(worker)
    store = open_graph(url)
    store.create_run(run(f"w{worker}"))
    for i in range(count):
        late = new("m", f"{worker * 1000 + i + 1:064x}", f"w{worker}")
        late = dataclasses.replace(late, at=late.at - rng.uniform(0, 0.5))
        store.commit_version(late)
    store.close()


def test_created_at_follows_the_index_under_concurrent_writers(backend) -> None:  # type: ignore[no-untyped-def]
    workers, each = 4, 6
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_commit_late, args=(backend.store, w, each)) for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    store = open_graph(backend.store)
    versions = sorted(store.list_versions("p", "m"), key=lambda v: v.index)
    store.close()
    assert [v.index for v in versions] == list(range(workers * each))
    times = [v.created_at for v in versions]
    assert times == sorted(times)


def test_created_at_is_read_under_the_lock(graph: GraphStore) -> None:
    """A writer that read the clock early, or whose clock runs ahead, cannot put a version
    before its predecessor in time."""
    graph.create_run(run("r1"))
    ahead = dataclasses.replace(new("m", D[0], "r1"), at=time.time() + 100)
    v0, _ = graph.commit_version(ahead)
    v1, _ = graph.commit_version(dataclasses.replace(new("m", D[1], "r1"), at=1.0))
    v2, _ = graph.commit_version(new("m", D[2], "r1"))
    assert v0.created_at <= v1.created_at <= v2.created_at
    stored = graph.list_versions("p", "m")
    assert sorted(v.created_at for v in stored) == [v.created_at for v in (v0, v1, v2)]
    graph.create_run(run("r2"))
    early = dataclasses.replace(new("n", D[3], "r2"), at=1.0)
    assert graph.commit_version(early)[0].created_at >= time.time() - 60


def test_concurrent_writers_get_consecutive_versions(backend) -> None:  # type: ignore[no-untyped-def]
    workers, each = 4, 8
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_commit_many, args=(backend.store, w, each)) for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    store = open_graph(backend.store)
    indexes = [v.index for v in store.list_versions("p", "m")]
    store.close()
    assert indexes == list(range(workers * each))


# what ML code logs: NaN, infinities, float32 values, big ints, -0.0 ---------------------------

ML_VALUES = {
    "loss": float("nan"),
    "best": float("inf"),
    "worst": float("-inf"),
    "lr": 0.10000000149011612,  # float32(0.1), as check_json makes it
    "step": 2**53 + 1,
    "zero": -0.0,
    "curve": [1.5, float("nan"), float("inf")],
    "nested": {"x": float("-inf")},
}


def same(got: object, want: object) -> bool:
    """Equal, NaN included (NaN != NaN): the same JSON text, and the same kinds of numbers."""
    import json

    return json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True) and _kinds(
        got
    ) == _kinds(want)


def _kinds(value: object) -> object:
    if isinstance(value, dict):
        return {key: _kinds(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_kinds(item) for item in value]
    return type(value).__name__


def test_nan_inf_and_exact_floats_round_trip(graph: GraphStore) -> None:
    graph.create_run(run("r1", config=ML_VALUES, summary=ML_VALUES))
    got = graph.get_runs(["r1"])["r1"]
    assert same(got.config, ML_VALUES) and same(got.summary, ML_VALUES)
    updated = graph.update_run("r1", {"summary": {"loss": float("nan"), "acc": float("inf")}})
    assert updated is not None and same(
        updated.summary, {"acc": float("inf"), "loss": float("nan")}
    )
    assert same(graph.list_runs("p")[0].summary, updated.summary)

    graph.create_run(run("r0"))
    root, _ = graph.commit_version(new("data", D[0], "r0", type="dataset"))
    graph.add_edges([Edge(source=root.id, target="r1", kind="consumed_by")])
    made, created = graph.commit_version(new("m", D[1], "r1", metadata=ML_VALUES))
    assert created and same(made.metadata, ML_VALUES)
    for version in (
        graph.get_versions([made.id])[made.id],
        graph.list_versions("p", "m")[0],
        graph.find_alias("p", "m", "latest"),
    ):
        assert version is not None and same(version.metadata, ML_VALUES)
    # the traversal fast paths decode the same way
    for generations in (None, 1):
        versions, _, _ = graph.tree_rows(root.id, generations)  # type: ignore[attr-defined]
        assert same(versions[made.id].metadata, ML_VALUES)

    event = Event(project="p", target=made.id, kind="metadata", at=3.0, old=ML_VALUES, new={})
    edited = graph.update_version(made.id, {"metadata": {"loss": float("-inf")}}, [event])
    assert same(edited.metadata, {"loss": float("-inf")})
    (logged,) = graph.events("p", target_prefix=made.id)
    assert same(logged.old, ML_VALUES) and logged.new == {}

    # copied between stores as they are
    again = graph.import_records(
        runs=[got], versions=[edited], events=[logged], artifacts=[], edges=[]
    )
    assert again["runs"] == again["versions"] == again["events"] == 0
    assert same(graph.get_runs(["r1"])["r1"].config, ML_VALUES)


def test_group_state_answers_what_the_single_calls_answer(graph: GraphStore) -> None:
    """artifact_states, versions_with_digests and update_runs (lineage.openlineage.plan's)
    against get_artifact, list_versions, commit_version's dedup and update_run."""
    from lineage.storage.graph import GroupState

    assert isinstance(graph, GroupState)
    graph.create_run(run("g1"))
    graph.create_run(run("g2"))
    first, _ = graph.commit_version(new("ga", D[0], "g1"))
    second, _ = graph.commit_version(new("ga", D[1], "g2"))
    graph.commit_version(new("gb", D[2], "g1", type="dataset"))
    graph.delete_version(second.id, Event(project="p", target=second.id, kind="delete", at=2.0))
    states = graph.artifact_states([("p", "ga"), ("p", "gb"), ("p", "none"), ("p", "ga")])
    newest = graph.list_versions("p", "ga", include_deleted=True, newest_first=True)[0]
    assert states == {
        ("p", "ga"): ("model", 2, 1, newest.created_at),
        ("p", "gb"): ("dataset", 1, 0, graph.list_versions("p", "gb")[0].created_at),
    }
    # a digest of a deleted version is no version; of a live one, its lowest index
    again, created = graph.commit_version(new("ga", D[0], "g2"))
    assert not created
    found = graph.versions_with_digests([("p", "ga", D[0]), ("p", "ga", D[3])])
    assert list(found) == [("p", "ga", D[0])]
    assert found[("p", "ga", D[0])] == again == graph.get_versions([first.id])[first.id]
    # a deleted version's digest: committed anew, it is a new version; then found as that
    third, created = graph.commit_version(new("ga", D[1], "g2"))
    assert created and third.index == 2
    assert graph.versions_with_digests([("p", "ga", D[1])])[("p", "ga", D[1])].id == third.id
    graph.update_runs(
        {
            "g1": {"state": "finished", "finished_at": 9.0, "facets": {"k": [1, "x"]}},
            "g2": {"state": "failed", "finished_at": 8.0, "error": "boom"},
            "gone": {"state": "failed"},
        }
    )
    got = graph.get_runs(["g1", "g2", "gone"])
    assert set(got) == {"g1", "g2"}
    assert (got["g1"].state, got["g1"].finished_at, got["g1"].facets) == (
        "finished", 9.0, {"k": [1, "x"]},
    )  # fmt: skip
    assert (got["g2"].state, got["g2"].error) == ("failed", "boom")


def test_traversals_know_each_artifact_whatever_its_name_holds(graph: GraphStore) -> None:
    """The traversals' fast paths find each version's artifact (its type, its aliases) from
    the version's id: names holding ':v', '/', digits and emoji keep theirs apart."""
    names = ["data", "m:v1", "m:v1:v2", "m", "m:v", "🕷:v3/x", "x/y:vv"]
    graph.create_run(run("r0"))
    root, _ = graph.commit_version(new(names[0], D[0], "r0", type="dataset"))
    made = [root]
    for i, name in enumerate(names[1:], start=1):
        graph.create_run(run(f"r{i}"))
        graph.add_edges([Edge(source=made[-1].id, target=f"r{i}", kind="consumed_by")])
        kind = "model" if i % 2 else f"kind{i}"
        version, _ = graph.commit_version(new(name, D[i], f"r{i}", type=kind))
        graph.set_alias("p", name, f"best{i}", version.index, None)
        made.append(version)
    want = graph.get_versions([v.id for v in made])
    assert len(want) == len(names) and {v.name for v in want.values()} == set(names)
    for generations in (None, len(names)):
        versions, triples, _ = graph.tree_rows(root.id, generations)  # type: ignore[attr-defined]
        assert versions == want
        assert sorted(triples) == sorted(
            (a.id, b.id, f"r{i}") for i, (a, b) in enumerate(itertools.pairwise(made), start=1)
        )
    walk = getattr(graph, "walk_records", None)  # Neo4j's one-round-trip walk
    if walk is not None:
        _, _, _, walked, _ = walk([made[-1].id], "up", 2 * len(names), runs=False)
        assert walked == want
        # in an open transaction, Neo4j's tree is the transaction's one query, not two halves
        whole = graph.tree_rows(root.id, None)  # type: ignore[attr-defined]
        with graph.transaction():
            assert graph.tree_rows(root.id, None) == whole  # type: ignore[attr-defined]


def test_an_artifact_was_created_when_its_first_version_was_made(graph: GraphStore) -> None:
    """lineage.made's rule, kept by the record itself on every store: an artifact's
    created_at is the made time of its earliest version (an OpenLineage event's time, else
    when the version was stored), whichever way the version came (a commit, a late event
    naming an earlier time, a write_run, an import of versions alone)."""
    made = 1.7e9  # an event's time, long before it arrives
    graph.create_run(run("r1"))
    graph.commit_version(new("orders", D[1], "r1", type="dataset", event_at=made))
    assert graph.get_artifact("p", "orders").created_at == made  # type: ignore[union-attr]
    graph.commit_version(new("orders", D[2], "r1", type="dataset", event_at=made - 3600))
    assert graph.get_artifact("p", "orders").created_at == made - 3600  # type: ignore[union-attr]
    graph.commit_version(new("orders", D[3], "r1", type="dataset", event_at=made + 3600))
    assert graph.get_artifact("p", "orders").created_at == made - 3600  # type: ignore[union-attr]

    sdk, _ = graph.commit_version(new("model", D[4], "r1"))  # made when stored
    assert graph.get_artifact("p", "model").created_at == sdk.created_at  # type: ignore[union-attr]
    graph.commit_version(new("model", D[5], "r1"))
    assert graph.get_artifact("p", "model").created_at == sdk.created_at  # type: ignore[union-attr]

    [(written, _)] = write_run(
        graph, run("r2"), [], [new("table", D[6], "r2", type="dataset", event_at=made + 7)]
    )
    assert graph.get_artifact("p", "table").created_at == written.made_at == made + 7  # type: ignore[union-attr]

    from lineage.records import VersionRecord

    graph.import_records(
        versions=[
            VersionRecord(project="p", name="seen", type="dataset", index=i, digest=D[10 + i],
                          size=0, file_count=1, created_at=made + 99, event_at=made + 10 - i)
            for i in range(2)
        ]
    )  # fmt: skip
    assert graph.get_artifact("p", "seen").created_at == made + 9  # type: ignore[union-attr]
