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
from lineage.modelcard import derivation
from lineage.service import Service

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


async def test_a_model_trained_from_no_model_has_no_kind(
    backend: Any, server: Server, service: Service, tmp_path: Path
) -> None:
    """``train`` reads as a fine-tune only when the run made its model from a model: trained
    from scratch on a dataset, the model has no derivation kind (tree, picture, GraphQL, the
    model card's derivation); the edge from the dataset to a fine-tuned model has none either."""
    refs = history(backend, tmp_path)
    where = {"store": backend.store, "blobs": backend.blobs}
    data = tmp_path / "corpus.txt"
    data.write_text("tokens")
    with lineage.init(project="llm", job_type="prepare", **where) as run:
        corpus = lineage.Artifact("corpus", type="dataset")
        corpus.add_file(data)
        refs["corpus"] = run.log_artifact(corpus).ref
    for name, inputs in (("scratch", [refs["corpus"]]), ("again", [refs["corpus"], refs["base"]])):
        with lineage.init(project="llm", job_type="train", **where) as run:
            for ref in inputs:
                run.use_artifact(ref)
            weights = tmp_path / f"{name}.bin"
            weights.write_bytes(name.encode())
            art = lineage.Artifact(name, type="model")
            art.add_file(weights)
            refs[name] = run.log_artifact(art).ref
    with lineage.init(project="llm", job_type="eval", **where) as run:  # models are no leaves
        run.use_artifact(refs["scratch"])
        run.use_artifact(refs["again"])
        (tmp_path / "score.json").write_text("{}")
        report = lineage.Artifact("score", type="result")
        report.add_file(tmp_path / "score.json")
        refs["score"] = run.log_artifact(report).ref

    store = ["--store", backend.store, "--blobs", backend.blobs]
    text = CliRunner().invoke(cli, [*store, "tree", refs["corpus"]])
    assert text.exit_code == 0, text.output
    shown = [x for x in text.output.splitlines() if "<-" in x]
    assert len(shown) == 2 and not any("[" in x for x in shown), text.output
    from_base = CliRunner().invoke(cli, [*store, "tree", refs["base"]]).output
    assert "[finetune]" in next(x for x in from_base.splitlines() if "again:v0" in x)

    dot = tmp_path / "tree.dot"
    drawn = CliRunner().invoke(cli, [*store, "render", refs["corpus"], "--tree", "-o", str(dot)])
    assert drawn.exit_code == 0, drawn.output
    assert "finetune" not in dot.read_text()

    answer = await server.data(
        "query($ref: String!) { derivationTree(ref: $ref, depth: 10) "
        "{ edges { source target derivation } } }",
        {"ref": refs["corpus"]},
    )
    kinds = {(e["source"], e["target"]): e["derivation"] for e in answer["derivationTree"]["edges"]}
    assert {k: v for k, v in kinds.items() if k[0] == refs["corpus"]} == {
        (refs["corpus"], refs["scratch"]): None,
        (refs["corpus"], refs["again"]): None,
    }

    card = CliRunner().invoke(cli, [*store, "model-card", refs["scratch"]])
    assert card.exit_code == 0 and "base_model" not in card.output, card.output
    assert derivation(service, refs["scratch"]).kind is None
    assert derivation(service, refs["again"]).kind == "finetune"
