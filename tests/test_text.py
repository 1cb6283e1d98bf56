"""The text views (``lineage lineage``, ``lineage tree``) say what the view decided."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli


def _log(project: str, job: str, store: Any, inputs: list[str], outputs: list[tuple[str, str]],
         workdir: Path, aliases: list[str] | None = None) -> list[str]:  # fmt: skip
    refs = []
    with lineage.init(project=project, job_type=job, store=store.store, blobs=store.blobs) as run:
        for ref in inputs:
            run.use_artifact(ref)
        for name, type_ in outputs:
            path = workdir / f"{project}-{name}-{len(list(workdir.iterdir()))}.bin"
            path.write_bytes(path.name.encode())
            art = lineage.Artifact(name, type=type_)
            art.add_file(path)
            refs.append(run.log_artifact(art, aliases=aliases or []).ref)
    return refs


def _cli(backend: Any, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["--store", backend.store, "--blobs", backend.blobs, *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def history(backend: Any, workdir: Path) -> dict[str, str]:
    """features:v0 -> model:v0 -> model:v1 -> model:v2, each model evaluated (a result);
    model:v0 also feeds a second project's run."""
    (workdir / "files").mkdir()
    files = workdir / "files"
    (features,) = _log("churn", "prep", backend, [], [("features", "dataset")], files)
    (m0,) = _log("churn", "train", backend, [features], [("classifier", "model")], files,
                 aliases=["production"])  # fmt: skip
    (m1,) = _log("churn", "finetune", backend, [m0, features], [("classifier", "model")], files)
    (m2,) = _log("churn", "finetune", backend, [m1], [("classifier", "model")], files)
    evals = [
        _log("churn", "evaluate", backend, [m], [("scores", "result")], files)[0]
        for m in (m0, m1, m2)
    ]
    (vision,) = _log("vision", "transfer", backend, ["churn/classifier:production"],
                     [("classifier", "model")], files)  # fmt: skip
    return {"features": features, "m0": m0, "m1": m1, "m2": m2, "vision": vision,
            "eval2": evals[2]}  # fmt: skip


def test_both_prints_the_upstream_and_the_downstream_half(
    backend: Any, history: dict[str, str]
) -> None:
    out = _cli(backend, "lineage", history["m1"], "--both", "--depth", "5")
    up, _, down = out.partition("  downstream")
    assert "  upstream" in up and "(train)" in up  # made by train from classifier:v0
    assert "(finetune)" in down and "classifier:v2" in down  # what it fed
    assert "(evaluate)" in down and "scores:v1" in down


def test_a_side_with_no_run_says_nothing_is_there(backend: Any, history: dict[str, str]) -> None:
    """A dead end's downstream printed a heading over nothing (or nothing at all)."""
    out = _cli(backend, "-p", "churn", "lineage", history["eval2"], "--both", "--depth", "1")
    assert out.splitlines()[3:5] == ["  downstream", "    nothing"], out
    out = _cli(backend, "-p", "churn", "lineage", history["eval2"], "--down")
    assert out.splitlines()[:2] == ["scores:v2  (dead end)", "  nothing downstream"], out
    # a walk that depth stopped at the root says "truncated", not "nothing"
    out = _cli(backend, "-p", "churn", "lineage", history["m1"], "--depth", "0")
    assert "nothing" not in out and "(truncated)" in out.splitlines()[0]


def test_a_depth_cut_leaf_is_truncated_never_a_dead_end(
    backend: Any, history: dict[str, str]
) -> None:
    out = _cli(backend, "tree", history["m0"], "--depth", "1")
    line = next(line for line in out.splitlines() if "classifier:v1" in line)
    assert "(truncated)" in line and "(dead end)" not in line
    assert "1 truncated" in out.splitlines()[-1]
    # with room enough, the same version is a plain node and nothing is truncated
    out = _cli(backend, "tree", history["m0"], "--depth", "5")
    line = next(line for line in out.splitlines() if "classifier:v1" in line)
    assert "(truncated)" not in line and "0 truncated" in out.splitlines()[-1]


def test_nodes_of_another_project_show_their_project(backend: Any, history: dict[str, str]) -> None:
    out = _cli(backend, "lineage", history["vision"], "--up", "--depth", "1")
    # the input is churn's classifier, not a cycle back to the vision classifier itself
    assert "<- churn/classifier:v0" in out
    assert "<- classifier:v0" not in out
    down = _cli(backend, "lineage", history["m0"], "--down", "--depth", "1", "--json")
    labels = {n["id"]: n["label"] for n in json.loads(down)["nodes"]}
    assert labels[history["vision"]] == "vision/classifier:v0"
    assert labels[history["m1"]] == "classifier:v1"


def test_a_tree_rooted_at_a_dataset(backend: Any, history: dict[str, str]) -> None:
    out = _cli(backend, "tree", history["features"], "--depth", "10")
    lines = out.splitlines()
    assert "(dead end)" not in lines[0]  # every model derives from it
    # models are nodes of the tree, not folded away like evaluation results
    assert any(line.lstrip("|` -").startswith("classifier:v0") for line in lines[1:])
    assert any("=> scores:v" in line for line in lines)
    assert not any("=> classifier" in line for line in lines)
    views = json.loads(_cli(backend, "tree", history["features"], "--depth", "10", "--json"))
    states = {n["id"]: n["state"] for n in views["nodes"]}
    assert states[history["features"]] == "alive"
    assert states[history["eval2"]] == "dead_end"  # nothing read the last evaluation
    assert states[history["vision"]] == "dead_end"


def test_a_deleted_version_is_deleted_on_the_text_views(
    backend: Any, history: dict[str, str]
) -> None:
    lineage.Api(store=backend.store, blobs=backend.blobs).delete(history["m2"])
    out = _cli(backend, "tree", history["m0"], "--depth", "5")
    line = next(line for line in out.splitlines() if "classifier:v2" in line)
    assert "(deleted)" in line and "(dead end)" not in line
    assert "1 deleted" in out.splitlines()[-1]
