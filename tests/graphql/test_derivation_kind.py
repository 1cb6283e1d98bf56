"""The derivation tree shows each derivation's kind: `lineage tree`, `lineage render --tree`
(its DOT text) and GraphQL's derivationTree (edge.derivation), on both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from serving import Server

import lineage
from lineage.cli import cli

pytestmark = pytest.mark.anyio


def history(backend: Any, tmp_path: Path) -> dict[str, str]:
    """base -(sft)-> tuned -(merge, with other)-> merged -(quantize)-> small -(eval)-> scored."""
    where = {"store": backend.store, "blobs": backend.blobs}

    def model(run: lineage.Run, name: str) -> str:
        weights = tmp_path / f"{name}.bin"
        weights.write_bytes(name.encode())
        art = lineage.Artifact(name, type="model")
        art.add_file(weights)
        return run.log_artifact(art).ref

    refs: dict[str, str] = {}
    with lineage.init(project="llm", job_type="pretrain", **where) as run:
        refs["base"], refs["other"] = model(run, "base"), model(run, "other")
    with lineage.init(project="llm", job_type="sft", **where) as run:
        run.use_artifact(refs["base"])
        refs["tuned"] = model(run, "tuned")
    with lineage.init(project="llm", job_type="merge", **where) as run:
        run.use_artifact(refs["tuned"], role="base")
        run.use_artifact(refs["other"], role="base")
        refs["merged"] = model(run, "merged")
    with lineage.init(project="llm", job_type="quantize", **where) as run:
        run.use_artifact(refs["merged"])
        refs["small"] = model(run, "small")
    with lineage.init(project="llm", job_type="eval", **where) as run:
        run.use_artifact(refs["small"])
        refs["scored"] = model(run, "scored")
    return refs


async def test_the_tree_shows_the_kind(backend: Any, server: Server, tmp_path: Path) -> None:
    refs = history(backend, tmp_path)
    store = ["--store", backend.store, "--blobs", backend.blobs]
    text = CliRunner().invoke(cli, [*store, "tree", refs["base"]])
    assert text.exit_code == 0, text.output
    shown = text.output.splitlines()
    line = {name: next((x for x in shown if f"{name}:v0" in x), "") for name in refs}
    assert line["tuned"].endswith("[finetune]"), text.output
    assert line["merged"].endswith("[merge]")
    assert line["small"].endswith("[quantized]")
    assert "[" not in line["scored"] and "[" not in line["base"]  # eval: no kind

    dot = tmp_path / "tree.dot"
    drawn = CliRunner().invoke(cli, [*store, "render", refs["base"], "--tree", "-o", str(dot)])
    assert drawn.exit_code == 0, drawn.output
    picture = dot.read_text()
    assert "sft · finetune" in picture and "quantize · quantized" in picture
    assert "merge · merge" not in picture  # a job type that is its kind says it once

    answer = await server.data(
        "query($ref: String!) { derivationTree(ref: $ref, depth: 10) "
        "{ edges { source target kind derivation run { jobType } } } }",
        {"ref": refs["base"]},
    )
    kinds = {(e["source"], e["target"]): e["derivation"] for e in answer["derivationTree"]["edges"]}
    assert kinds == {
        (refs["base"], refs["tuned"]): "finetune",
        (refs["tuned"], refs["merged"]): "merge",
        (refs["merged"], refs["small"]): "quantized",
        (refs["small"], refs["scored"]): None,
    }
