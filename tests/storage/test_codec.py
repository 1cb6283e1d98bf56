"""lineage.storage.codec: every record survives encode then decode, field for field, and each
store keeps a column (or property) for every field the codec writes."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from lineage.records import (
    ArtifactRecord,
    CodeVersion,
    Event,
    RunRecord,
    TokenRecord,
    VersionRecord,
)
from lineage.storage import codec
from lineage.storage.sqlite import SQLiteGraphStore

# every field a value of its own, none at its default: a decoder reading the wrong position fails
RUN = RunRecord(
    id="r1", project="p", name="train", job_type="finetune", state="failed",
    config={"lr": 0.1, "nan": float("inf")}, summary={"acc": 0.9}, tags=("a", "b"),
    notes="n", code=CodeVersion(commit="c0ffee", dirty=True, remote="git@host:x"),
    host="h", pid=7, started_at=1.5, finished_at=2.5, error="boom", user="ann", parent="r0",
    facets={"job": {"name": "dag.task🕷"}},
)  # fmt: skip
VERSION = VersionRecord(
    project="p", name="m", type="model", index=3, digest="d" * 64, size=11, file_count=2,
    metadata={"k": [1, 2]}, description="desc", aliases=("best", "latest"), created_by="r1",
    created_at=4.5, state="deleted", tags=("round3",), event_at=3.5,
)  # fmt: skip
EVENT = Event(
    project="p", target="p/m:v3", kind="alias", at=5.5, actor="me", old={"a": 1}, new=[2],
    seq=9, uid="u1",
)  # fmt: skip
TOKEN = TokenRecord(
    id="t1", digest="e" * 64, scope="write", created_at=6.5, description="ci", revoked=True
)
ARTIFACT = ArtifactRecord(project="p", name="m", type="model", description="d", created_at=7.5)


def _not_defaults(record: object) -> None:
    for f in dataclasses.fields(record):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING:
            assert getattr(record, f.name) != f.default, f.name


def test_records_survive_the_codec() -> None:
    for record in (RUN, VERSION, EVENT, TOKEN, ARTIFACT):
        _not_defaults(record)
    assert codec.decode_runs([codec.encode_run(RUN)]) == [RUN]
    as_sqlite = [codec.dumps(v) if isinstance(v, list) else v for v in codec.encode_run(RUN)]
    assert codec.decode_runs([as_sqlite]) == [RUN]  # tags as JSON text

    own = dict(zip(codec.VERSION_STORED, codec.encode_version(VERSION), strict=True))
    row = [own.get(f) for f in codec.VERSION_FIELDS]
    row[codec.VERSION_FIELDS.index("type")] = "model"
    for held in (["latest", "best"], '["best","latest"]'):
        row[codec.VERSION_FIELDS.index("aliases")] = held
        assert codec.decode_versions([row]) == [VERSION]
    types, aliases = {("p", "m"): "model"}, {VERSION.id: ["latest", "best"]}
    with_id = [*row, VERSION.id]
    assert codec.decode_version_map([with_id], types, aliases) == {VERSION.id: VERSION}
    assert codec.decode_version_map([with_id], {("p", "x"): "model"}, aliases) == {}

    event = codec.encode_event(EVENT)
    assert codec.decode_events([[event.get(f, EVENT.seq) for f in codec.EVENT_FIELDS]]) == [EVENT]
    assert codec.encode_event(dataclasses.replace(EVENT, uid=None))["uid"]  # one is drawn
    assert codec.decode_token(codec.encode_token(TOKEN)) == TOKEN
    assert codec.decode_artifact(codec.encode_artifact(ARTIFACT)) == ARTIFACT


def test_sqlite_has_a_column_for_every_field(tmp_path: Path) -> None:
    SQLiteGraphStore(tmp_path / "lineage.db").close()
    db = sqlite3.connect(tmp_path / "lineage.db")

    def columns(table: str) -> set[str]:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}

    assert set(codec.RUN_FIELDS) <= columns("runs")
    assert {"idx" if f == "index" else f for f in codec.VERSION_STORED} <= columns("versions")
    assert set(codec.ARTIFACT_FIELDS) <= columns("artifacts")
    assert set(codec.EVENT_FIELDS) <= columns("events")
    assert set(codec.TOKEN_FIELDS) <= columns("tokens")
    db.close()
