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
        for table, records in (("run_leaf", "runs"), ("version_leaf", "versions")):
            rows = db.execute(
                f"SELECT r.id, l.key, l.value FROM {table} l JOIN {records} r ON r.rowid = l.rid"
            ).fetchall()
            # every leaf belongs to a record
            assert len(rows) == db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            tables.append(
                {(i, k, {b"\x00": False, b"\x01": True}[v] if isinstance(v, bytes) else v)
                 for i, k, v in rows}
            )  # fmt: skip
            assert len(rows) == len(tables[-1])  # no leaf twice
        return tables[0], tables[1]
    finally:
        db.close()


def check(store: SQLiteGraphStore) -> None:
    assert stored(store.path) == expected(store)
    # a filter (expected's) ran: the copies by value hold every leaf, and nothing else
    assert by_value(store.path) == (set(), set())


def by_value(path: Path) -> tuple[set[tuple[int, str, Any]], set[tuple[int, str, Any]]]:
    """The leaves (rid, key, value) each side table and its copy by value do not share."""
    db = sqlite3.connect(path)
    try:
        found = []
        for leaves in ("run_leaf", "version_leaf"):
            mine = set(db.execute(f"SELECT rid, key, value FROM {leaves}"))
            copy = set(db.execute(f"SELECT rid, key, value FROM {leaves}_by_value"))
            found.append(mine ^ copy)
        return found[0], found[1]
    finally:
        db.close()


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


def test_the_side_table_follows_every_write(tmp_path: Path) -> None:
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
    # a run twice in one batch (the first one kept), a new run beside a known one
    counts = store.import_records(
        runs=[run(5, config={"lr": 5e-5}, tags=("t",)), run(5, config={"lr": 9.0}),
              run(1, config={"ignored": 1}), run(6, summary={"loss": 0.5})],
        versions=[version(2, metadata={"epochs": 6}), version(2, metadata={"epochs": 7})],
    )  # fmt: skip
    check(store)
    # what it says it imported counts records, not the leaves written beside them
    assert (counts["runs"], counts["versions"]) == (2, 1)
    store.create_run(run(7, config={"lr": 7e-7}, tags=("after",)))
    check(store)
    assert {r[0] for r in sqlite3.connect(store.path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")} == {
        f"{leaves}_{kind}" for leaves in ("run_leaf", "version_leaf")
        for kind in ("update", "delete")
    }  # fmt: skip  # new rows get theirs from the writer's catch-up, not from a trigger

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
    for leaves in ("run_leaf", "version_leaf"):
        for trigger in ("update", "delete"):
            db.execute(f"DROP TRIGGER {leaves}_{trigger}")
        db.execute(f"DROP TABLE {leaves}")
        db.execute(f"DELETE FROM meta WHERE key = '{leaves}_done'")
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


def test_a_store_with_the_first_side_tables_moves_to_the_new_ones(tmp_path: Path) -> None:
    """A store made before issue 15 keyed its leaves by text id in ``run_leaves`` and
    ``version_leaves`` (three indexes, three triggers each): it opens with those gone and the
    new tables filled, and its filters answer as before."""
    path = tmp_path / "old.db"
    store = SQLiteGraphStore(path)
    runs = [
        run(i, config={"lr": 10.0**-i, "on": i % 2 == 0}, tags=(f"t{i % 3}",),
            summary={"loss": 1 / (i + 1), "name": f"s{i % 4}"})
        for i in range(40)
    ]  # fmt: skip
    store.import_records(runs=runs, versions=[version(0, metadata={"epochs": 7}, tags=("x",))])
    store.close()
    db = sqlite3.connect(path)
    for new, old, table in (("run_leaf", "run_leaves", "runs"),
                            ("version_leaf", "version_leaves", "versions")):  # fmt: skip
        for trigger in ("update", "delete"):
            db.execute(f"DROP TRIGGER {new}_{trigger}")
        db.execute(f"DROP TABLE {new}")
        db.execute(f"DELETE FROM meta WHERE key = '{new}_done'")
        # the first side table, as main made it (the triggers' bodies shortened)
        db.execute(f"CREATE TABLE {old} (id TEXT NOT NULL, key TEXT NOT NULL, num, str TEXT, "
                   "flag INTEGER)")  # fmt: skip
        for index in ("id, key, num, str, flag", "key, num, id", "key, str, id"):
            db.execute(f"CREATE INDEX {old}_{index.split(',')[1].strip()} ON {old} ({index})")
        db.execute(f"CREATE TRIGGER {old}_insert AFTER INSERT ON {table} BEGIN "
                   f"INSERT INTO {old} (id, key) VALUES (new.id, 'k'); END")  # fmt: skip
        db.execute(f"CREATE TRIGGER {old}_update AFTER UPDATE OF tags ON {table} BEGIN "
                   f"DELETE FROM {old} WHERE id = old.id; END")  # fmt: skip
        db.execute(f"CREATE TRIGGER {old}_delete AFTER DELETE ON {table} BEGIN "
                   f"DELETE FROM {old} WHERE id = old.id; END")  # fmt: skip
    db.commit()
    db.close()

    reopened = SQLiteGraphStore(path)
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert not {n for n in names if n.startswith(("run_leaves", "version_leaves"))}
    assert {"run_leaf", "version_leaf", "run_leaf_update", "version_leaf_delete"} <= names
    check(reopened)
    where = parse("config.lr < 1e-3 and config.on = true and tag != t2", "runs")
    expect = [
        r for r in runs
        if r.config["lr"] < 1e-3 and r.config["on"] is True and "t2" not in r.tags
    ]  # fmt: skip
    order = parse_order("summary.name", "runs")
    answer = reopened.find_runs(None, where, order)
    assert [r.id for r in answer] == [
        r.id for r in sorted(expect, key=lambda r: (r.summary["name"], r.id))
    ] and len(answer) > 5
    # a first page walks the order's index; the next page starts after its last row
    first = reopened.find_runs(None, where, order, limit=4)
    key = (1, first[-1].summary["name"], first[-1].id)
    rest = reopened.find_runs(None, where, order, limit=100, after=key)
    assert [r.id for r in [*first, *rest]] == [r.id for r in answer]
    assert reopened.count_found_versions(None, parse("metadata.epochs = 7", "versions")) == 1
    reopened.create_run(run(99, config={"lr": 1e-9}, tags=("t0",)))  # no old trigger fires
    reopened.update_run("r1", {"tags": ["t9"]})
    check(reopened)
    reopened.close()


def test_rows_another_program_inserted_get_their_leaves_before_a_filter(tmp_path: Path) -> None:
    """An older lineage (or any tool) inserts rows without catching up: the next filter does,
    and the next writer too, whichever comes first."""
    store = SQLiteGraphStore(tmp_path / "graph.db")
    store.create_run(run(1, config={"lr": 0.1}))
    db = sqlite3.connect(store.path)
    columns = "id, project, name, state, config, summary, tags, started_at"
    db.execute(
        f"INSERT INTO runs ({columns}) VALUES ('r2', 'p', 'n2', 'finished', "
        """'{"lr": 0.01}', '{"loss": 0.5}', '["x"]', 1.7e9)"""
    )
    db.commit()
    where = parse("config.lr < 0.05 and tag = x", "runs")
    assert [r.id for r in store.find_runs(None, where, parse_order("created", "runs"))] == ["r2"]
    check(store)
    db.execute(
        f"INSERT INTO runs ({columns}) VALUES ('r3', 'p', 'n3', 'finished', "
        """'{"lr": 0.02}', '{}', '[]', 1.8e9)"""
    )
    db.commit()
    db.close()
    store.update_run("r1", {"summary": {"loss": 0.25}})  # a writer that inserts nothing
    store.create_run(run(4, config={"lr": 0.3}))  # a writer that does: r3 comes along
    check(store)
    assert store.count_found_runs(None, parse("config.lr < 0.05", "runs")) == 2
    store.close()


def bulk_run(i: int) -> RunRecord:
    return run(
        i, state="finished", tags=(f"t{i % 3}",), summary={"loss": (i * 7919 % 10007) / 10007},
        config={"lr": 10.0 ** -(i % 4 + 3), "parent": f"p/model:v{i * 7919 % 3001}"},
    )  # fmt: skip


def bulk_version(i: int) -> VersionRecord:
    return version(
        i, metadata={"accuracy": (i * 104729 % 10007) / 10007}, tags=("x",) if i % 2 else ()
    )


def test_a_bulk_import_gets_every_documents_and_tags_leaves_in_one_pass(tmp_path: Path) -> None:
    """A batch's config, summary and tag leaves (metadata and tags of versions) are caught
    up by one sorted statement a table: each kind is there, for every row past the mark."""
    store = SQLiteGraphStore(tmp_path / "graph.db")
    for start in range(0, 3_000, 1_000):
        store.import_records(
            runs=[bulk_run(i) for i in range(start, start + 1_000)],
            versions=[bulk_version(i) for i in range(start, start + 1_000)],
        )
        check(store)  # the leaves are exactly what the records say, after each batch
    db = sqlite3.connect(store.path)
    kinds = dict(db.execute("SELECT substr(key, 1, 3), count(*) FROM run_leaf GROUP BY 1"))
    assert kinds == {"con": 6_000, "sum": 3_000, "tag": 3_000}
    kinds = dict(db.execute("SELECT substr(key, 1, 3), count(*) FROM version_leaf GROUP BY 1"))
    assert kinds == {"met": 3_000, "tag": 1_500}
    db.close()
    store.close()


def test_the_copies_by_value_wait_for_a_merge_and_filters_never_see_them_behind(
    tmp_path: Path,
) -> None:
    """New rows' leaves go into the copies by value (what a filter's ranges and first pages
    read) only every ``_MERGE`` rows, or when a filter comes: updates and deletes keep the
    merged rows' copies at once, and a filter after any of it answers from every row."""
    store = SQLiteGraphStore(tmp_path / "graph.db")
    store.import_records(runs=[bulk_run(i) for i in range(200)],
                         versions=[bulk_version(i) for i in range(50)])  # fmt: skip
    db = sqlite3.connect(store.path)

    def copied(leaves: str = "run_leaf") -> int:
        count: int = db.execute(f"SELECT count(*) FROM {leaves}_by_value").fetchone()[0]
        return count

    assert copied() == copied("version_leaf") == 0  # waiting: 200 rows, not 50,000
    low = parse("summary.loss < 0.2", "runs")
    order = parse_order("summary.loss", "runs")
    runs = [bulk_run(i) for i in range(200)]

    def lowest() -> list[str]:
        return [r.id for r in sorted(runs, key=lambda r: (r.summary["loss"], r.id))
                if r.summary["loss"] < 0.2]  # fmt: skip

    assert [r.id for r in store.find_runs(None, low, order, limit=5)] == lowest()[:5]
    assert copied() == 4 * 200  # the filter merged them: lr, parent, loss and the tag
    assert by_value(store.path) == (set(), set())

    # a merged row's update and a raw delete keep its copy at once (no filter since)
    store.update_run("r3", {"summary": {"loss": 0.001}})
    runs[3] = RunRecord(**{**runs[3].__dict__, "summary": {"loss": 0.001}})
    db.execute("DELETE FROM runs WHERE id = 'r5'")
    db.commit()
    runs = [r for r in runs if r.id != "r5"]
    assert by_value(store.path) == (set(), set())
    # rows past the merge: updated before any merge, then found by a filter
    store.import_records(runs=[bulk_run(i) for i in range(200, 300)])
    runs += [bulk_run(i) for i in range(200, 300)]
    store.update_run("r250", {"summary": {"loss": 0.0001}})
    runs[-50] = RunRecord(**{**runs[-50].__dict__, "summary": {"loss": 0.0001}})
    assert by_value(store.path)[0]  # the new rows wait
    assert [r.id for r in store.find_runs(None, low, order)] == lowest()
    assert store.count_found_runs(None, low) == len(lowest())
    check(store)
    db.close()
    store.close()


def test_a_store_with_the_value_index_moves_to_the_copies_by_value(tmp_path: Path) -> None:
    """A store made before the copies by value has the index ``(key, value, rid)`` on each
    side table and triggers that know nothing of a copy: it opens with the index gone, the
    triggers replaced, and answers as before (the copies filled by the first filter)."""
    path = tmp_path / "old.db"
    store = SQLiteGraphStore(path)
    runs = [bulk_run(i) for i in range(300)]
    store.import_records(runs=runs, versions=[bulk_version(i) for i in range(100)])
    store.close()
    db = sqlite3.connect(path)
    for leaves, table in (("run_leaf", "runs"), ("version_leaf", "versions")):
        db.execute(f"DROP TABLE {leaves}_by_value")
        db.execute(f"DELETE FROM meta WHERE key = '{leaves}_by_value_done'")
        db.execute(f"CREATE INDEX {leaves}_value ON {leaves} (key, value, rid)")
        for trigger in ("update", "delete"):  # as before, the bodies shortened
            db.execute(f"DROP TRIGGER {leaves}_{trigger}")
            db.execute(f"CREATE TRIGGER {leaves}_{trigger} AFTER {trigger.upper()} ON {table} "
                       f"BEGIN DELETE FROM {leaves} WHERE rid = old.rowid; END")  # fmt: skip
    db.commit()
    db.close()

    reopened = SQLiteGraphStore(path)
    db = sqlite3.connect(path)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert not names & {"run_leaf_value", "version_leaf_value"}
    assert {"run_leaf_by_value", "version_leaf_by_value"} <= names
    bodies = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    assert all(f"{name.rsplit('_', 1)[0]}_by_value" in sql for name, sql in bodies.items())
    db.close()
    where = parse("summary.loss >= 0.5 and tag = t1", "runs")
    expect = sorted((r for r in runs if r.summary["loss"] >= 0.5 and "t1" in r.tags),
                    key=lambda r: (-r.summary["loss"], r.id))  # fmt: skip
    found = reopened.find_runs(None, where, parse_order("-summary.loss", "runs"))
    assert [r.id for r in found] == [r.id for r in expect] and len(found) > 20
    reopened.update_run("r1", {"tags": ["t9"], "summary": {"loss": 2.0}})  # the new triggers
    check(reopened)
    reopened.close()


# documents whose leaves an import reads from the records (sqlfilter.leaf_rows), and those
# it leaves to the catch-up's SQL (None)
READ = [
    {"lr": 0.001, "parent": "p/model:v2", "layers": 24},
    {"learning_rate": 3e-4, "batch-size": 64, "_private": True, "off": False},
    {"opt": {"name": "adam", "betas": [0.9, 0.999], "eps": {"v": 1e-8}}, "none": None},
    {"big": 2**63 - 1, "small": -(2**63), "zero": -0.0, "tiny": 5e-324, "huge": 1.7e308},
    {"text": 'a "quoted"\\ line\nnext\ttab\x01', "empty": "", "slash": "a/b"},
    {"1st": 1, "with space": 2, "a[0]": 3, "ünï": 4, "-dash": 5, "ok": [{"in": 1}]},
    {"t": (1, 2), "deep": {"a": {"b": {"c": "d"}}}},
    # an empty key, and anything under it, gets no leaf (the catch-up's path for it, '$.',
    # was an error: such a record could not be stored)
    {"": 1, "a": {"": 2, "b": 3}, "e": {"": {"f": 4}}, "g": 5},
]
LEFT = [
    {"a.b": 1},
    {"a$b": 1},
    {"loss": float("nan")},
    {"loss": float("inf")},
    {"n": 2**63},
    {"name": "café"},
    {"name": "a\x00b"},
    {"nested": {"x.y": 1}},
]


def test_leaves_read_from_the_records_are_exactly_the_catch_ups(tmp_path: Path) -> None:
    """What a bulk import reads from its records is what the catch-up's ``json_tree`` gives
    for the same rows, to the value's type (an int stays an int, a float a float, a boolean
    a blob); whatever the catch-up reads in a way of its own is left to it. The oracle: the
    same records written one at a time (``create_run``, ``commit_version``: the catch-up's
    SQL) into another store."""
    from lineage.storage.sqlfilter import leaf_rows

    for document in READ:
        assert leaf_rows("runs", [run(0, config=document)], 1) is not None, document
    for document in LEFT:
        assert leaf_rows("runs", [run(0, config=document)], 1) is None, document
    runs = [run(i, config=d, summary={"loss": 0.5}, tags=("a", "b-c")) for i, d in
            enumerate(READ + READ + LEFT[:1] + READ)]  # fmt: skip
    versions = [version(i, metadata=d, tags=("v",)) for i, d in enumerate(READ + LEFT + READ)]
    one, bulk = SQLiteGraphStore(tmp_path / "one.db"), SQLiteGraphStore(tmp_path / "bulk.db")
    for r in runs:
        one.create_run(r)
    one.import_records(versions=versions[:1])  # (commit_version would number them)
    for v in versions[1:]:
        one.import_records(versions=[v])
    # batches: the first read from the records, the second has one left to SQL, the third
    # follows rows whose leaves the catch-up wrote
    for start, stop in ((0, len(READ)), (len(READ), 2 * len(READ) + 1), (2 * len(READ) + 1, None)):
        bulk.import_records(runs=runs[start:stop])
    bulk.import_records(versions=versions[: len(READ)])
    bulk.import_records(versions=versions[len(READ) :])
    dbs = [sqlite3.connect(store.path) for store in (one, bulk)]
    for table, records in (("run_leaf", "runs"), ("version_leaf", "versions")):
        leaves = [
            sorted(db.execute(f"SELECT r.id, l.key, typeof(l.value), l.value FROM {table} l "
                              f"JOIN {records} r ON r.rowid = l.rid"))
            for db in dbs
        ]  # fmt: skip
        assert leaves[0] == leaves[1]
        assert len(leaves[0]) > 5 * len(READ)
    for db in dbs:
        db.close()
    one.close()
    bulk.close()


def test_an_import_reads_leaves_from_its_records_only_when_no_row_waits(tmp_path: Path) -> None:
    """The rowids an import's leaves are written for are the ones its rows took: a row
    another program inserted without leaves (so waiting) sends the batch to the catch-up,
    as does a batch with a run already stored; otherwise the mark moves past the batch
    in the import's own transaction."""
    store = SQLiteGraphStore(tmp_path / "graph.db")
    store.import_records(runs=[bulk_run(i) for i in range(1_000)],
                         versions=[bulk_version(i) for i in range(300)])  # fmt: skip
    db = sqlite3.connect(store.path)
    marks = dict(db.execute("SELECT key, CAST(value AS INTEGER) FROM meta"))
    assert (marks["run_leaf_done"], marks["version_leaf_done"]) == (1_000, 300)
    db.execute(
        "INSERT INTO runs (id, project, name, state, config, summary, tags, started_at) "
        """VALUES ('x1', 'p', 'x', 'finished', '{"lr": 0.5}', '{}', '[]', 1.7e9)"""
    )
    db.commit()
    store.import_records(runs=[bulk_run(i) for i in range(1_000, 1_500)])
    store.import_records(runs=[bulk_run(1_499), *(bulk_run(i) for i in range(1_500, 1_600))])
    check(store)
    assert store.count_found_runs(None, parse("config.lr = 0.5", "runs")) == 1
    db.close()
    store.close()


def test_bulk_imports_merge_the_copies_by_value_every_so_many_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leaves read from the records leave no row waiting for the catch-up, and the merge by
    value still comes with the import that crosses ``_MERGE`` waiting rows, not only with
    the next filter."""
    import lineage.storage.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "_MERGE", 500)
    store = SQLiteGraphStore(tmp_path / "graph.db")
    db = sqlite3.connect(store.path)
    merged = "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'run_leaf_by_value_done'"
    store.import_records(runs=[bulk_run(i) for i in range(400)])
    assert (db.execute(merged).fetchone() or (0,))[0] == 0
    store.import_records(runs=[bulk_run(i) for i in range(400, 800)])
    assert db.execute(merged).fetchone()[0] == 800  # merged by the import, no filter ran
    assert by_value(store.path)[0] == set()
    db.close()
    store.close()
