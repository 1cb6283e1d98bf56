"""SQLite's bulk import path: what a big ``import_records`` does beside the rows (the WAL's
checkpoint interval while it runs, the artifacts it learns from versions), checked on the
file itself. Its leaves: tests/storage/test_filter_leaves.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lineage.records import RunRecord, VersionRecord
from lineage.storage.sqlite import SQLiteGraphStore


def run(i: int, **fields: Any) -> RunRecord:
    base: dict[str, Any] = dict(
        id=f"r{i:05d}", project="p", name=f"n{i}", state="finished", started_at=1.7e9 + i,
        config={"lr": 10.0 ** -(i % 4 + 3), "parent": f"p/model:v{i * 7919 % 3001}"},
        summary={"loss": (i * 7919 % 10007) / 10007}, tags=(f"t{i % 3}",),
    )  # fmt: skip
    return RunRecord(**{**base, **fields})


def version(i: int, **fields: Any) -> VersionRecord:
    base: dict[str, Any] = dict(
        project="p", name="model", type="model", index=i, digest=f"{i * 7919:064x}", size=1,
        file_count=1, metadata={"accuracy": (i * 104729 % 10007) / 10007}, created_by=f"r{i:05d}",
        created_at=1.7e9 + i, tags=("x",) if i % 2 else (),
    )  # fmt: skip
    return VersionRecord(**{**base, **fields})


def checkpoint_interval(store: SQLiteGraphStore) -> int:
    value: int = store._db().execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    return value


def test_a_big_import_checkpoints_less_often_then_restores_the_interval(tmp_path: Path) -> None:
    store = SQLiteGraphStore(tmp_path / "graph.db")
    assert checkpoint_interval(store) == 10_000
    seen = []
    real = store._import

    def spy(*args: Any) -> dict[str, int]:
        seen.append(checkpoint_interval(store))
        return real(*args)

    store._import = spy  # type: ignore[method-assign]
    store.import_records(runs=[run(i) for i in range(1_000)])
    store.import_records(runs=[run(1_000)])  # small: the usual interval
    assert seen == [40_000, 10_000]
    assert checkpoint_interval(store) == 10_000
    # an import that fails half-way (a version whose metadata is no JSON, met after the
    # runs went in) restores it too, and writes nothing
    bad = version(0, metadata={"x": object()})
    with pytest.raises(TypeError):
        store.import_records(runs=[run(i) for i in range(2_000, 3_000)], versions=[bad])
    assert checkpoint_interval(store) == 10_000
    assert store.count_runs("p") == 1_001
    store.close()


def test_an_artifact_known_only_from_versions_takes_its_first_version(tmp_path: Path) -> None:
    """Created when its earliest version was made (lineage.made), whatever their order."""
    store = SQLiteGraphStore(tmp_path / "graph.db")
    store.import_records(
        versions=[version(0, created_at=5.0), version(1, created_at=3.0),
                  version(0, name="data", type="dataset", created_at=7.0),
                  version(1, name="data", type="dataset", created_at=1.0)],
    )  # fmt: skip
    found = {(a.name, a.type, a.created_at) for a in store.list_artifacts("p")}
    assert found == {("model", "model", 3.0), ("data", "dataset", 1.0)}
    # a second import does not move what the first one set
    assert store.import_records(versions=[version(2, created_at=0.5)])["artifacts"] == 0
    assert store.get_artifact("p", "model").created_at == 3.0  # type: ignore[union-attr]
    store.close()


def test_many_rows_a_statement_insert_what_one_a_statement_did(tmp_path: Path) -> None:
    """A bulk import inserts runs, edges and leaves many rows a statement (55 runs, 333
    edges): the same rows, in the same rowid order, the same counts, with a row already
    stored and a row twice in one batch on either side of a statement's boundary."""
    from lineage.records import Edge

    store = SQLiteGraphStore(tmp_path / "graph.db")
    store.import_records(runs=[run(i) for i in range(0, 200, 7)])  # some stored already
    runs = [run(i) for i in range(200)]
    runs[54:56] = [run(54), run(54, config={"lr": 9.0})]  # twice, across 55 runs a statement
    edges = [Edge(source=f"p/model:v{i}", target=f"r{i:05d}", kind="consumed_by")
             for i in range(400)]  # fmt: skip
    edges[332:334] = [edges[332], edges[332]]
    counts = store.import_records(runs=runs, edges=edges)
    assert counts["runs"] == len({r.id for r in runs}) - len(range(0, 200, 7))
    assert counts["edges"] == len(set(edges))
    db = store._db()
    ids = [row[0] for row in db.execute("SELECT id FROM runs ORDER BY rowid")]
    stored = [f"r{i:05d}" for i in range(0, 200, 7)]
    assert ids == stored + [r for r in dict.fromkeys(r.id for r in runs) if r not in stored]
    assert store.get_runs(["r00054"])["r00054"].config == run(54).config  # the first one
    assert db.execute("SELECT count(*) FROM edges").fetchone()[0] == len(set(edges))
    store.close()
