"""Tags on runs and versions through the SDK and ``lineage tag``/``lineage find``, on both
stores: every change logged with who made it (the OS user locally), runs recording their
user, filters seeing the tags; and an SQLite store made before these columns opens."""

from __future__ import annotations

import getpass
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.filters import parse, parse_order
from lineage.records import RunRecord
from lineage.storage.sqlite import SQLiteGraphStore

ORDER = parse_order("created", "runs")


@pytest.fixture
def history(backend, workdir, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    monkeypatch.setenv("LINEAGE_PROJECT", "p")
    ids = []
    for i, lr in enumerate([1e-5, 1e-3, 3e-5]):
        with lineage.init(project="p", job_type="train", config={"lr": lr}) as run:
            run.log({"acc": 0.5 + i / 10})
            Path("w.bin").write_bytes(bytes([i]))
            art = lineage.Artifact("model", type="model", metadata={"epochs": 3 + i})
            art.add_file("w.bin")
            run.log_artifact(art)
            ids.append(run.id)
    return ids


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.mark.neo4j
def test_tags_are_logged_with_who_and_found_by_filters(history) -> None:  # type: ignore[no-untyped-def]
    me = getpass.getuser()
    api = lineage.Api()
    assert {r.user for r in api.runs()} == {me}
    tagged = api.tag(history[0], add=["round3", "best"])
    assert isinstance(tagged, RunRecord) and tagged.tags == ("round3", "best")
    api.tag(history[0], remove=["best"])
    version = api.tag("model:v2", add=["round3"])
    assert not isinstance(version, RunRecord) and version.tags == ("round3",)
    assert [r.id for r in api.runs(filter="tag = round3")] == [history[0]]
    assert [v.ref for v in api.versions(filter="tag = round3 and metadata.epochs = 5")] == [
        "p/model:v2"
    ]
    ordered = api.runs(filter="config.lr < 1e-4", order_by="-summary.acc")
    assert [r.id for r in ordered] == [history[2], history[0]]
    events = [e for e in api.service.graph.events("p") if e.kind == "tags.changed"]
    assert [(e.target, e.actor, e.old, e.new) for e in events] == [
        (history[0], me, [], ["round3", "best"]),
        (history[0], me, ["round3", "best"], ["round3"]),
        ("p/model:v2", me, [], ["round3"]),
    ]
    # the CLI: tag, find, runs --filter, and a bad filter refused (exit 2, nothing changed)
    assert "p/model:v0: tags gold" in _cli("tag", "model:v0", "gold")
    # shown as the SDK and --json give them (the text view left them out)
    assert "\n  tags         gold\n" in _cli("show", "model:v0")
    assert json.loads(_cli("show", "model:v0", "--json"))["version"]["tags"] == ["gold"]
    assert "  tags  " not in _cli("show", "model:v1")
    assert _cli("find", "--versions", "tag", "=", "gold").startswith("p/model:v0 ")
    found = json.loads(_cli("find", "config.lr < 1e-4 and tag = round3", "--json"))
    assert [r["id"] for r in found] == [history[0]] and found[0]["user"] == me
    listed = _cli("runs", "--filter", "summary.acc >= 0.6", "--order-by", "-summary.acc")
    assert [line.split()[0] for line in listed.splitlines()] == [history[2], history[1]]
    refused = CliRunner().invoke(cli, ["find", "config.lr <"])
    assert refused.exit_code == 2
    assert "filter: at 12: expected a value after '<', not the end" in refused.output
    assert "no runs pass" in _cli("find", "tag = nothing")
    assert _cli("tag", "model:v0", "bad tag!", code=2)


def _error(*args: str, code: int) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.output
    return result.stderr


@pytest.mark.neo4j
def test_a_target_that_is_nothing_says_what_was_looked_for(history) -> None:  # type: ignore[no-untyped-def]
    """A bare word is a run id or an artifact's latest version: missing as both, the error
    says both and where to find valid targets; a ref (with ':' or '/') is a version only,
    and its miss says how to find versions, and that runs go by id."""
    bare = _error("tag", "nosuchrun", "x", code=3)
    assert bare == (
        "error: no run has the id 'nosuchrun', and as a version's ref (name:latest): no "
        "artifact 'nosuchrun' in project 'p'; `lineage runs` lists the runs (a run is "
        "tagged by its id), `lineage ls` the artifacts (a version by its ref, name:vN)\n"
    )
    ref = _error("tag", "model:v9", "x", code=3)
    assert ref.startswith("error: p/model:v9 does not exist; nearest versions of p/model: ")
    assert ref.endswith(
        "; `lineage runs` lists the runs (a run is tagged by its id), `lineage ls` the "
        "artifacts (a version by its ref, name:vN)\n"
    )
    other = _error("tag", "q/model:v0", "x", code=3)
    assert other.startswith("error: no artifact 'model' in project 'q'; `lineage runs`")
    assert "no run" not in ref + other  # a ref is never a run's id
    api = lineage.Api()  # the SDK (and GraphQL) say both misses too, without the CLI's hints
    with pytest.raises(lineage.NotFound, match=r"^no run has the id 'nosuchrun', and as[^`]*$"):
        api.tag("nosuchrun", add=["x"])
    assert history[0] in _cli("tag", history[0], "x")  # the same word, a run's id: tagged


def test_a_store_from_before_tags_and_users_opens(tmp_path: Path) -> None:
    """The additive schema change: the columns are added to an existing SQLite store."""
    path = tmp_path / "old.db"
    store = SQLiteGraphStore(path)
    store.create_run(RunRecord(id="r1", project="p", name="n", tags=("a",), started_at=1.0))
    store.close()
    db = sqlite3.connect(path)
    for leaves in ("run_leaf", "version_leaf"):  # a store that old had no side tables
        for trigger in ("update", "delete"):
            db.execute(f"DROP TRIGGER {leaves}_{trigger}")
        db.execute(f"DROP TABLE {leaves}")
        db.execute(f"DELETE FROM meta WHERE key = '{leaves}_done'")
    db.execute("ALTER TABLE runs DROP COLUMN user")
    db.execute("ALTER TABLE versions DROP COLUMN tags")
    db.commit()
    db.close()
    reopened = SQLiteGraphStore(path)
    assert reopened.get_runs(["r1"])["r1"].tags == ("a",)
    assert reopened.get_runs(["r1"])["r1"].user is None
    reopened.update_run("r1", {"tags": ["a", "b"]})
    assert reopened.get_runs(["r1"])["r1"].tags == ("a", "b")
    assert [r.id for r in reopened.find_runs(None, parse("tag = b", "runs"), ORDER)] == ["r1"]
    reopened.close()
