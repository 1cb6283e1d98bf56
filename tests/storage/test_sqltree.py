"""SQLite's derivation tree (``lineage.storage.sqltree``): its rows leave out what the row's
neighbours say (the root's project and name, ``committed``, a ``created_by`` that is the
row's run) and fill it back in. Every field of every record it builds equals the stored
record (``get_versions``), whichever of those shortcuts a version takes or not."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from pathlib import Path

import pytest

from lineage.records import ArtifactRecord, Edge, Event, RunRecord, VersionRecord
from lineage.storage.sqlite import SQLiteGraphStore
from lineage.storage.sqltree import RowSink, _json_ids, tree_rows


def version(project: str, name: str, index: int, **fields: object) -> VersionRecord:
    values: dict[str, object] = {
        "type": "model",
        "digest": f"{project}{name}{index}".ljust(64, "0"),
        "size": 10 + index,
        "file_count": 2,
        "created_at": 1.7e9 + index / 3,
    }
    values.update(fields)
    return VersionRecord(project=project, name=name, index=index, **values)  # type: ignore[arg-type]


# a field each, set where a tree row's shortcut assumes its usual value (sqltree's ``odd``)
ONE_OFF: list[dict[str, object]] = [
    {"description": "a description alone"},
    {"state": "deleted"},
    {"tags": ("t",)},
    {"event_at": 1.6e9 + 0.3},
    {"aliases": ("prod",)},
    {"metadata": {"k": 1}},
]


def edges(source: str, run: str, *targets: str) -> list[Edge]:
    return [Edge(source=source, target=run, kind="consumed_by")] + [
        Edge(source=run, target=t, kind="produced") for t in targets
    ]


def test_every_field_of_the_tree_records_is_the_stored_one(tmp_path: Path) -> None:
    graph = SQLiteGraphStore(tmp_path / "graph.db")
    everything = version(
        "p", "m", 1, type="model", metadata={"loss": 0.125, "nested": {"k": [1, "x", None]}},
        description="every field set", aliases=("alpha", "best"), created_by="r1",
        created_at=1.7e9 + 0.1, state="deleted", tags=("a", "b"), event_at=1.6e9 + 0.7,
    )  # fmt: skip
    # each field set to something else than its default: a field added to VersionRecord
    # fails here until it is set above (and sqltree reads it)
    for field in dataclasses.fields(VersionRecord):
        default = (
            field.default
            if field.default is not dataclasses.MISSING
            else field.default_factory()  # type: ignore[misc]
            if field.default_factory is not dataclasses.MISSING
            else object()
        )
        assert getattr(everything, field.name) != default, field.name
    root = version("p", "m", 0, created_by="r0")
    versions = [
        root,
        everything,
        version("p", "m", 2, created_by="r2"),  # the root's artifact, made by its row's run
        version("q", "m", 0, created_by="r2"),  # another project, the root's name
        version("p", "eval", 0, type="result", created_by="r2"),  # the root's project
        version("q", "other", 0, type="data", created_by=None),  # no creating run
        version("p", "m", 3, created_by="r1"),  # made by r1, reached through r3 only
        version("p", "gone", 0, created_by="r3"),  # its artifact has no row: no record
        # the root's artifact, made by its row's run, one field each off its usual value
        *(version("p", "m", 4 + i, created_by="r2", **one) for i, one in enumerate(ONE_OFF)),
    ]
    graph.import_records(
        runs=[RunRecord(id=f"r{i}", project="p", name=f"run{i}") for i in range(5)],
        artifacts=[
            ArtifactRecord(project=p, name=n, type=t)
            for p, n, t in [
                ("p", "m", "model"),
                ("q", "m", "model"),
                ("p", "eval", "result"),
                ("q", "other", "data"),
            ]
        ],
        versions=versions,
        edges=[
            *edges(root.id, "r1", everything.id),
            *edges(
                everything.id,
                "r2",
                "p/m:v2",
                "q/m:v0",
                "p/eval:v0",
                "q/other:v0",
                *(f"p/m:v{4 + i}" for i in range(len(ONE_OFF))),
            ),
            # a reproduction: r3 produced p/m:v1 again, its record still says r1
            *edges(root.id, "r3", everything.id, "p/m:v3", "p/gone:v0"),
            *edges("q/other:v0", "r4"),  # a run without outputs
        ],
    )
    with graph._write() as db:  # a version whose artifact was removed under it
        db.execute("DELETE FROM artifacts WHERE name = 'gone'")
    graph.append_events([Event(project="p", target=everything.id, kind="x", at=1.0)])
    stored = graph.get_versions([v.id for v in versions])
    assert "p/gone:v0" not in stored and len(stored) == len(versions) - 1
    assert stored[everything.id] == everything  # what was written comes back

    records, triples, truncated = graph.tree_rows(root.id, None)
    assert records == stored and not truncated
    for ref, record in records.items():
        for field in dataclasses.fields(VersionRecord):
            assert getattr(record, field.name) == getattr(stored[ref], field.name), (ref, field)
            assert type(getattr(record, field.name)) is type(getattr(stored[ref], field.name))
    assert sorted(triples) == sorted(
        [
            (root.id, everything.id, "r1"),
            (root.id, everything.id, "r3"),
            (root.id, "p/m:v3", "r3"),
            (root.id, "p/gone:v0", "r3"),
            *((everything.id, v, "r2") for v in ("p/m:v2", "q/m:v0", "p/eval:v0", "q/other:v0")),
            *((everything.id, f"p/m:v{4 + i}", "r2") for i in range(len(ONE_OFF))),
        ]
    )
    # one generation: the first ring of records, the rest cut
    records, triples, truncated = graph.tree_rows(root.id, 1)
    assert records == {ref: stored[ref] for ref in (root.id, everything.id, "p/m:v3")}
    assert truncated and len(triples) == 4


def test_a_root_without_a_record_still_has_its_tree(tmp_path: Path) -> None:
    """The root's project and name stand in for the rows' only when the root has a record;
    without one, every row says its own."""
    graph = SQLiteGraphStore(tmp_path / "graph.db")
    made = [
        version("p", "m", 1, created_by="r1"),
        version("q", "n", 0, type="data", created_by="r1"),
    ]
    graph.import_records(
        runs=[RunRecord(id="r1", project="p", name="run")],
        artifacts=[
            ArtifactRecord(project="p", name="m", type="model"),
            ArtifactRecord(project="q", name="n", type="data"),
        ],
        versions=made,
        edges=edges("p/m:v0", "r1", *(v.id for v in made)),
    )
    records, triples, truncated = graph.tree_rows("p/m:v0", None)
    assert records == {v.id: v for v in made} and not truncated
    assert sorted(triples) == [("p/m:v0", "p/m:v1", "r1"), ("p/m:v0", "q/n:v0", "r1")]


def test_ids_go_to_sqlite_as_json_whatever_they_hold() -> None:
    """The frontier is joined into a JSON array by hand when no id needs escaping."""
    plain = ["p/m:v0", "p/m-1.x_y:v12", "é/ü:v3"]
    assert _json_ids(plain) == '["p/m:v0","p/m-1.x_y:v12","é/ü:v3"]'
    for odd in ['p/"m":v0', "p/m\\n:v1", "p/m\n:v2", "p/m\x00:v3", "p/m\u2028:v4"]:
        assert json.loads(_json_ids([*plain, odd])) == [*plain, odd], odd


def test_ids_that_need_escaping_walk_the_same_tree(tmp_path: Path) -> None:
    graph = SQLiteGraphStore(tmp_path / "graph.db")
    made = [version("p", 'm"x\\', 1, created_by="r1"), version("p", "m\tx", 0, created_by="r1")]
    graph.import_records(
        runs=[RunRecord(id="r1", project="p", name="run")],
        artifacts=[ArtifactRecord(project="p", name=v.name, type="model") for v in made],
        versions=[version("p", 'm"x\\', 0), *made],
        edges=edges('p/m"x\\:v0', "r1", *(v.id for v in made)),
    )
    records, triples, _ = graph.tree_rows('p/m"x\\:v0', None)
    assert {v.id: v for v in made}.items() <= records.items() and len(records) == 3
    assert sorted(triples) == sorted(('p/m"x\\:v0', v.id, "r1") for v in made)


def one_run(tmp_path: Path) -> SQLiteGraphStore:
    """A store where run r1 made p/m:v1 from p/m:v0."""
    graph = SQLiteGraphStore(tmp_path / "graph.db")
    graph.import_records(
        runs=[RunRecord(id="r1", project="p", name="run")],
        artifacts=[ArtifactRecord(project="p", name="m", type="model")],
        versions=[version("p", "m", 0), version("p", "m", 1, created_by="r1")],
        edges=edges("p/m:v0", "r1", "p/m:v1"),
    )
    return graph


def test_a_tree_is_walked_beside_a_cursor_read_halfway(tmp_path: Path) -> None:
    """SQLite hands the rows to a function registered once a connection: redefining it for
    each walk would fail while a statement of the connection is running."""
    graph = one_run(tmp_path)
    halfway = graph._db().execute("SELECT id FROM versions ORDER BY id")
    assert halfway.fetchone() == ("p/m:v0",)
    for _ in range(2):
        records, triples, _ = graph.tree_rows("p/m:v0", None)
        assert set(records) == {"p/m:v0", "p/m:v1"}
        assert triples == [("p/m:v0", "p/m:v1", "r1")]
    assert halfway.fetchone() == ("p/m:v1",)


def test_the_row_sink_lets_go_of_the_walk(tmp_path: Path) -> None:
    """The connection's sink holds a walk while it walks, and nothing after it, even after
    a walk that fails."""
    graph = one_run(tmp_path)
    db = graph._db()
    sink: RowSink = graph._local.rows

    def empty() -> bool:
        return not (sink.seen - {""}) and not sink.parents and sink.note is None

    records, _, _ = graph.tree_rows("p/m:v0", 5)
    assert set(records) == {"p/m:v0", "p/m:v1"}
    assert empty()

    def failing(ids: Collection[str]) -> dict[str, VersionRecord]:
        assert sink.seen == {"p/m:v0"}  # pointed at this walk
        raise RuntimeError("the root's read failed")

    with pytest.raises(RuntimeError, match="root's read failed"):
        tree_rows(db, "p/m:v0", None, failing, sink)
    assert empty()
    assert not db.in_transaction  # and its read snapshot is over
    assert set(graph.tree_rows("p/m:v0", None)[0]) == {"p/m:v0", "p/m:v1"}
