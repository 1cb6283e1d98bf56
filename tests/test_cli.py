"""The CLI verbs, through click's CliRunner, on every backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli


@pytest.fixture
def run_cli(backend, workdir, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    monkeypatch.setenv("LINEAGE_PROJECT", "p")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    Path("data").mkdir()
    Path("data/a.txt").write_text("alpha")
    with lineage.init(project="p", job_type="prepare") as run:
        art = lineage.Artifact("ds", type="dataset", metadata={"rows": 1})
        art.add_dir("data")
        run.log_artifact(art)
    with lineage.init(project="p", job_type="train") as run:
        run.use_artifact("ds:latest")
        Path("m.bin").write_bytes(b"model")
        art = lineage.Artifact("model", type="model")
        art.add_file("m.bin")
        run.log_artifact(art, aliases=["prod"])
    return invoke


def test_ls_show_lineage_tree(run_cli) -> None:  # type: ignore[no-untyped-def]
    listing = run_cli("ls")
    assert "p/ds" in listing and "p/model" in listing and "prod" in listing
    assert "p/model" not in run_cli("ls", "--type", "dataset")
    shown = run_cli("show", "model:prod")
    assert "p/model:v0" in shown and "m.bin" in shown and '"rows"' not in shown
    up = run_cli("lineage", "model:v0", "--up")
    assert "ds:v0" in up and "(train)" in up
    down = json.loads(run_cli("lineage", "ds:v0", "--down", "--json"))
    assert {n["id"] for n in down["nodes"]} >= {"p/ds:v0", "p/model:v0"}
    assert down["truncated"] is False
    cut = json.loads(run_cli("lineage", "model:v0", "--depth", "0", "--json"))
    assert cut["truncated"] is True and [n["id"] for n in cut["nodes"]] == ["p/model:v0"]
    tree = run_cli("tree", "ds:v0")
    assert "model:v0 [prod]" in tree and "2 versions, 1 derivations" in tree


def test_get_verify_log_gc(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "got"
    run_cli("get", "ds:v0", "-o", str(out))
    assert (out / "a.txt").read_text() == "alpha"
    assert "1 files verified" in run_cli("verify", "ds")
    run_cli("alias", "ds:v0", "golden")
    log = run_cli("log", "ds")
    assert "alias.moved" in log and "golden" in log
    assert "0 blobs checked" not in run_cli("gc", "--dry-run", "--grace", "0")


def test_errors_are_one_line_with_exit_codes(run_cli) -> None:  # type: ignore[no-untyped-def]
    out = run_cli("show", "model:v9", code=3)
    assert out.strip().count("\n") == 0 and out.startswith("error: p/model:v9 does not exist")
    assert run_cli("show", "bad name", code=2).startswith("error: invalid ref")
    assert "prod" in run_cli("delete", "model:v0", code=4)


def test_runs_and_stale(run_cli) -> None:  # type: ignore[no-untyped-def]
    out = run_cli("runs", "--stale")
    assert out.count("finished") == 2 and "marked crashed" not in out


def test_push_is_idempotent(run_cli, tmp_path, backend) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "team"
    first = run_cli("push", "--to", str(target), "--to-blobs", str(target / "blobs"))
    assert "2 runs, 2 versions, 3 edges" in first and "blobs" in first
    second = run_cli("push", "--to", str(target), "--to-blobs", str(target / "blobs"))
    assert "0 runs, 0 versions, 0 edges, 0 events new; 0 blobs" in second
    api = lineage.Api(store=str(target), blobs=str(target / "blobs"), project="p")
    moved = api.artifact_version("model:prod")
    moved.verify()
    assert [r.job_type for r in moved.logged_by()] == ["train"]
    assert {n.id for n in api.lineage("model:prod").nodes} == {
        n.id for n in lineage.Api(project="p").lineage("model:prod").nodes
    }
