"""Neo4j's bulk import written in two lanes at once (store ``_lanes``, bulk ``edge_lanes``):
the same records stored as SQLite stores them, lineage as networkx walks it, a failing lane
failing the call, and bad input or an open transaction keeping everything in one place."""

from __future__ import annotations

import random
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers import expected_lineage, oracle

from lineage.records import (
    CONSUMED_BY,
    PRODUCED,
    ArtifactRecord,
    Edge,
    RunRecord,
    VersionRecord,
    version_id,
)
from lineage.storage.graph import NewVersion
from lineage.storage.neo4j import Neo4jGraphStore
from lineage.storage.neo4j.bulk import edge_batches, edge_lanes, merge_edges
from lineage.storage.sqlite import SQLiteGraphStore

pytestmark = pytest.mark.neo4j


def _history(runs: int, seed: int = 3) -> dict[str, Any]:
    """Fine-tuning runs: each consumes one of five shared datasets and an earlier model and
    produces a model; a third also produce a result."""
    rng = random.Random(seed)
    artifacts = [
        ArtifactRecord(project="p", name=name, type=name, created_at=1.0)
        for name in ("dataset", "model", "result")
    ]
    run_records, versions, edges = [], [], []
    index = {"dataset": 0, "model": 0, "result": 0}

    def version(name: str, run: str) -> str:
        record = VersionRecord(
            project="p", name=name, type=name, index=index[name],
            digest=f"{name}-{index[name]:06d}".ljust(64, "0"), size=1, file_count=1,
            metadata={"n": index[name]}, aliases=(), created_by=run, created_at=2.0,
            state="committed",
        )  # fmt: skip
        index[name] += 1
        versions.append(record)
        edges.append(Edge(source=run, target=record.id, kind=PRODUCED))
        return record.id

    def run(n: int) -> str:
        record = RunRecord(
            id=f"r{n:06d}", project="p", name=f"ft-{n}", job_type="finetune",
            state="finished", config={"lr": n % 7}, started_at=3.0 + n,
        )  # fmt: skip
        run_records.append(record)
        return record.id

    prep = run(0)
    datasets = [version("dataset", prep) for _ in range(5)]
    models = [version("model", prep)]
    for n in range(1, runs):
        rid = run(n)
        for source in {rng.choice(datasets), rng.choice(models)}:
            edges.append(Edge(source=source, target=rid, kind=CONSUMED_BY))
        models.append(version("model", rid))
        if rng.random() < 0.3:
            version("result", rid)
    return {"runs": run_records, "artifacts": artifacts, "versions": versions, "edges": edges}


def test_edge_lanes_split_by_run_and_keep_every_edge_once() -> None:
    edges = _history(300)["edges"]
    lanes = edge_lanes(edges)
    assert len(lanes) == 2 and all(lanes)
    runs_of = [
        {pair[0] if kind == PRODUCED else pair[1] for kind, pairs in lane for pair in pairs}
        for lane in lanes
    ]
    assert not runs_of[0] & runs_of[1]  # a run's edges never in both lanes
    every = sorted((kind, *pair) for lane in lanes for kind, pairs in lane for pair in pairs)
    once = sorted((kind, *pair) for kind, pairs in edge_batches(edges) for pair in pairs)
    assert every == once
    sizes = [sum(len(pairs) for _, pairs in lane) for lane in lanes]
    assert abs(sizes[0] - sizes[1]) <= 8  # about half each (a run's edges stay together)
    for lane in lanes:  # shared versions are locked in one order by every lane
        assert all(pairs == sorted(pairs) for _, pairs in lane)


def test_a_big_import_in_two_lanes_stores_what_sqlite_stores(
    store: Neo4jGraphStore, tmp_path: Path
) -> None:
    records = _history(400)
    lanes_seen: set[str] = set()
    write = store._write

    def watched(work: Any) -> Any:
        lanes_seen.add(threading.current_thread().name)
        return write(work)

    store._write = watched  # type: ignore[method-assign]
    sqlite = SQLiteGraphStore(tmp_path / "lineage.db")
    try:
        counts = store.import_records(**records)
        assert len(lanes_seen) >= 2  # it did go in two lanes
        assert counts == sqlite.import_records(**records)
        assert counts["runs"] == 400 and counts["edges"] == len(records["edges"])
        ids = [r.id for r in records["runs"]]
        assert store.get_runs(ids) == sqlite.get_runs(ids)
        vids = [v.id for v in records["versions"]]
        assert store.get_versions(vids) == sqlite.get_versions(vids)
        for name in ("dataset", "model", "result"):
            assert store.get_artifact("p", name) == sqlite.get_artifact("p", name)

        graph = oracle(records["edges"])
        rng = random.Random(5)
        for start in [*rng.sample(vids, 6), *rng.sample(ids, 4)]:
            for direction in ("up", "down"):
                nodes, rows, truncated = store.walk_rows([start], direction, 2)
                want = expected_lineage(graph, start, 2, upstream=direction == "up")
                assert (nodes, {(s, t) for s, t, _ in rows}, truncated) == want

        # everything is there: again, nothing is new; the next commit numbers after it
        assert store.import_records(**records) == dict.fromkeys(counts, 0)
        top = max(v.index for v in records["versions"] if v.name == "model")
        new = NewVersion(
            project="p", name="model", type="model", digest="f" * 64, size=1, file_count=1,
            metadata={}, run_id="r000001", at=9.0,
        )  # fmt: skip
        assert store.commit_version(new)[0].id == version_id("p", "model", top + 1)
    finally:
        sqlite.close()


def test_a_failing_lane_fails_the_import(
    store: Neo4jGraphStore,
) -> None:
    records = _history(400)
    write = store._write

    def broken(work: Any) -> Any:
        edges = isinstance(work, partial) and work.func is merge_edges
        if edges and threading.current_thread() is not threading.main_thread():
            raise RuntimeError("lane broke")
        return write(work)

    store._write = broken  # type: ignore[method-assign]
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="lane broke"):
        store.import_records(**records)
    assert threading.active_count() == before  # no lane left behind
    # what did go in is whole: the runs and versions (written before the edges) are there
    assert len(store.get_runs([r.id for r in records["runs"]])) == 400


def test_a_bad_edge_is_refused_before_anything_is_written(store: Neo4jGraphStore) -> None:
    records = _history(50)
    bad = Edge(source="r000001", target="r000002", kind=CONSUMED_BY)
    with pytest.raises(ValueError, match="joins a run and a version"):
        store.import_records(**{**records, "edges": [*records["edges"], bad]})
    assert store.list_runs() == [] and store.get_artifact("p", "model") is None


def test_in_an_open_transaction_the_lanes_are_one_and_roll_back_together(
    store: Neo4jGraphStore,
) -> None:
    records = _history(120)
    with pytest.raises(KeyError), store.transaction():
        store.import_records(**records)
        assert len(store.get_runs([r.id for r in records["runs"]])) == 120  # seen inside
        raise KeyError("undo")
    assert store.list_runs() == [] and store.expand(["p/dataset:v0"], "down") == []
