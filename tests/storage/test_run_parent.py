"""Run parents and facets (what OpenLineage's ParentRunFacet and facets become), in both
stores; an SQLite store made before runs had them opens and gains the columns."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from lineage.records import RunRecord
from lineage.storage import open_graph
from lineage.storage.graph import GraphStore
from lineage.storage.sqlite import SQLiteGraphStore


@pytest.fixture
def graph(backend) -> Iterator[GraphStore]:  # type: ignore[no-untyped-def]
    store = open_graph(backend.store)
    try:
        yield store
    finally:
        store.close()


def test_children_and_facets(graph: GraphStore) -> None:
    facets = {"job": {"namespace": "s3://b", "name": "dag.task🕷"}, "run": {"n": [1, 2]}}
    graph.create_run(RunRecord(id="dag", project="p", name="dag", started_at=1.0))
    for i, at in ((2, 3.0), (1, 2.0)):
        graph.create_run(
            RunRecord(
                id=f"t{i}", project="p", name=f"t{i}", started_at=at, parent="dag", facets=facets
            )
        )
    graph.create_run(RunRecord(id="other", project="p", name="o", started_at=1.5, parent="x"))
    assert [r.id for r in graph.child_runs("dag")] == ["t1", "t2"]
    assert graph.child_runs("t1") == []
    got = graph.get_runs(["t1", "dag"])
    assert got["t1"].facets == facets and got["t1"].parent == "dag"
    assert got["dag"].facets == {} and got["dag"].parent is None
    updated = graph.update_run("dag", {"parent": "root", "facets": {"a": 1}, "started_at": 0.5})
    assert updated is not None
    assert (updated.parent, dict(updated.facets), updated.started_at) == ("root", {"a": 1}, 0.5)
    assert [r.id for r in graph.child_runs("root")] == ["dag"]


def test_an_older_sqlite_store_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    # the runs table as stores made before parents and facets have it
    db.execute(
        "CREATE TABLE runs (id TEXT PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL, "
        "job_type TEXT, state TEXT NOT NULL, config TEXT NOT NULL, summary TEXT NOT NULL, "
        "tags TEXT NOT NULL, notes TEXT, code TEXT, host TEXT, pid INTEGER, "
        "started_at REAL NOT NULL, finished_at REAL, error TEXT)"
    )
    db.execute(
        "INSERT INTO runs VALUES ('r1', 'p', 'old', NULL, 'finished', '{}', '{}', '[]', NULL, "
        "NULL, NULL, NULL, 1.0, 2.0, NULL)"
    )
    db.commit()
    db.close()
    store = SQLiteGraphStore(path)
    try:
        old = store.get_runs(["r1"])["r1"]
        assert (old.name, old.parent, dict(old.facets)) == ("old", None, {})
        store.create_run(RunRecord(id="r2", project="p", name="new", parent="r1", facets={"x": 1}))
        assert [(r.id, dict(r.facets)) for r in store.child_runs("r1")] == [("r2", {"x": 1})]
    finally:
        store.close()
    again = SQLiteGraphStore(path)  # and opens again, the columns already there
    try:
        assert again.get_runs(["r2"])["r2"].parent == "r1"
    finally:
        again.close()
