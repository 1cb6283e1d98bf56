"""SQLite's side table of filterable leaves (lineage.storage.sqlfilter) stays exactly what
the records say, whatever writes them: creation, imports, summary and config updates, tag
edits, version updates and deletions; and a store made before the side table gets it filled
when it opens. The oracle is computed in Python from the records the store returns."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lineage.filters import parse, parse_order
from lineage.records import Event, RunRecord, VersionRecord
from lineage.storage import sqlite as sqlite_store
from lineage.storage.neo4j.filter import flat_props
from lineage.storage.sqlite import SQLiteGraphStore

Leaf = tuple[str, str, Any]


def expected(store: SQLiteGraphStore) -> tuple[set[Leaf], set[Leaf]]:
    """(run leaves, version leaves) as (id, key, value) from the records themselves."""
    runs = store.find_runs(None, None, parse_order("created", "runs"))
    versions = store.find_versions(None, None, parse_order("created", "versions"))
    documents = {r.id: {"config": r.config, "summary": r.summary} for r in runs}
    return (
        {leaf for r in runs for leaf in _leaves(r.id, documents[r.id], r.tags)},
        {leaf for v in versions for leaf in _leaves(v.id, {"metadata": v.metadata}, v.tags)},
    )


def _leaves(owner: str, documents: dict[str, Any], tags: tuple[str, ...]) -> set[Leaf]:
    found = {(owner, "tag", tag) for tag in tags}
    for name, document in documents.items():
        found |= {(owner, key, value) for key, value in flat_props(name, document).items()}
    return found


def stored(path: Path) -> tuple[set[Leaf], set[Leaf]]:
    db = sqlite3.connect(path)
    try:
        tables = []
        for table in ("run_leaves", "version_leaves"):
            rows = db.execute(f"SELECT id, key, num, str, flag FROM {table}").fetchall()
            tables.append(
                {(i, k, bool(f) if f is not None else n if n is not None else s)
                 for i, k, n, s, f in rows}
            )  # fmt: skip
            assert len(rows) == len(tables[-1])  # no leaf twice
        return tables[0], tables[1]
    finally:
        db.close()


def check(store: SQLiteGraphStore) -> None:
    assert stored(store.path) == expected(store)


def run(i: int, **fields: Any) -> RunRecord:
    base: dict[str, Any] = dict(
        id=f"r{i}", project="p", name=f"n{i}", state="running", started_at=1.7e9 + i
    )
    return RunRecord(**{**base, **fields})


def version(i: int, **fields: Any) -> VersionRecord:
    base: dict[str, Any] = dict(
        project="p", name="model", type="model", index=i, digest=f"{i:064x}", size=1,
        file_count=1, metadata={}, description=None, created_by=None,
        created_at=1.7e9 + i,
    )  # fmt: skip
    return VersionRecord(**{**base, **fields})


def event(target: str) -> Event:
    return Event(project="p", target=target, kind="test", at=1.8e9, old=None, new=None)


@pytest.mark.parametrize("bulk", [0, 10**9], ids=["set-based", "per-row"])
def test_the_side_table_follows_every_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk: int
) -> None:
    """Both ways an import fills leaves: set-based (a big import), by the trigger (small)."""
    monkeypatch.setattr(sqlite_store, "_BULK_LEAVES", bulk)
    store = SQLiteGraphStore(tmp_path / "graph.db")
    store.create_run(
        run(1, config={"lr": 1e-4, "opt": "adam", "nested": {"depth": 3, "on": True}},
            summary={"loss": math.nan, "best": math.inf, "steps": [1, 2]}, tags=("a", "b"))
    )  # fmt: skip
    store.create_run(run(2, config={"lr": -0.0, "bad key": 1, "a-b": {"c_d": "x"}}))
    store.import_records(
        runs=[run(3, config={"lr": 3e-5}, summary={}), run(4, config={"big": 2**40})],
        versions=[version(0, metadata={"epochs": 3, "name": "v"}, tags=("x",)),
                  version(1, metadata={"epochs": 4})],
    )  # fmt: skip
    check(store)

    # summary and config updates replace the document's leaves, tag edits the tags
    store.update_run("r1", {"summary": {"loss": 0.25}})
    store.update_run("r2", {"tags": ["best"], "config": {"lr": 2e-4}})
    store.update_run("r3", {"state": "finished"})  # no leaf changes
    check(store)
    # an import of a run that finished since: its newer summary
    store.import_records(runs=[run(3, config={"lr": 3e-5}, summary={"acc": 0.9}, state="finished")])
    check(store)
    # a bulk import fills the leaves of its new rows in one pass, without the per-row
    # trigger: a run twice in one batch (the first one kept), a new run beside a known one
    counts = store.import_records(
        runs=[run(5, config={"lr": 5e-5}, tags=("t",)), run(5, config={"lr": 9.0}),
              run(1, config={"ignored": 1}), run(6, summary={"loss": 0.5})],
        versions=[version(2, metadata={"epochs": 6}), version(2, metadata={"epochs": 7})],
    )  # fmt: skip
    check(store)
    # what it says it imported counts records, not the leaves written beside them
    assert (counts["runs"], counts["versions"]) == (2, 1)
    # ... and puts the per-row trigger back: a run created after it gets its leaves
    store.create_run(run(7, config={"lr": 7e-7}, tags=("after",)))
    check(store)
    assert {r[0] for r in sqlite3.connect(store.path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")} == {
        f"{leaves}_{kind}" for leaves in ("run_leaves", "version_leaves")
        for kind in ("insert", "update", "delete")
    }  # fmt: skip

    # versions: metadata and tags updated, one deleted (found still: deleted versions are)
    vid = version(0).id
    store.update_version(vid, {"metadata": {"epochs": 5}, "tags": ["y", "z"]}, [event(vid)])
    store.delete_version(version(1).id, event(version(1).id))
    check(store)

    where = parse("config.lr < 1e-3 and tag = best", "runs")
    assert [r.id for r in store.find_runs(None, where, parse_order("created", "runs"))] == ["r2"]
    gone = parse("metadata.epochs = 4 and state = deleted", "versions")
    assert store.count_found_versions(None, gone) == 1
    assert store.count_found_versions(None, parse("tag = x", "versions")) == 0
    store.close()


def test_a_store_from_before_the_side_table_is_filled_when_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SQLiteGraphStore(path)
    runs = [
        run(i, config={"lr": 10.0**-i, "opt": ["adam", "sgd"][i % 2]}, tags=(f"t{i % 3}",),
            summary={"loss": 1 / (i + 1)} if i % 4 else {})
        for i in range(30)
    ]  # fmt: skip
    store.import_records(runs=runs, versions=[version(0, metadata={"epochs": 7}, tags=("x",))])
    store.close()
    db = sqlite3.connect(path)  # what an older lineage left: no side tables, no triggers
    for leaves in ("run_leaves", "version_leaves"):
        for trigger in ("insert", "update", "delete"):
            db.execute(f"DROP TRIGGER {leaves}_{trigger}")
        db.execute(f"DROP TABLE {leaves}")
    db.commit()
    db.close()

    reopened = SQLiteGraphStore(path)
    check(reopened)
    answer = reopened.find_runs(
        None, parse("tag = t1", "runs"), parse_order("-summary.loss", "runs")
    )
    with_loss = [r for r in runs if "t1" in r.tags and "loss" in r.summary]
    without = [r for r in runs if "t1" in r.tags and "loss" not in r.summary]
    assert [r.id for r in answer] == [
        *(r.id for r in sorted(with_loss, key=lambda r: (r.summary["loss"], r.id), reverse=True)),
        *sorted((r.id for r in without), reverse=True),  # missing last, descending too
    ]
    small = sum(1 for r in runs if r.config["lr"] < 1e-3)
    assert reopened.count_found_runs(None, parse("config.lr < 1e-3", "runs")) == small > 20
    reopened.create_run(run(99, config={"lr": 1e-9}))  # and the triggers keep it from now on
    check(reopened)
    reopened.close()
