"""Model derivation kinds and ``lineage model-card REF``, on both stores."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.modelcard import derivation_kind
from lineage.records import RunRecord


def test_kinds_from_job_types() -> None:
    def kind(job_type: str | None) -> str | None:
        return derivation_kind(RunRecord(id="r", project="p", name="n", job_type=job_type))

    assert [kind(t) for t in ("sft", "lora-finetune", "merge", "quantize", "distill")] == [
        "finetune", "adapter", "merge", "quantized", "distillation",
    ]  # fmt: skip
    assert [kind(t) for t in ("prune", "surgery", "eval", None)] == [
        "pruning", "surgery", None, None,
    ]  # fmt: skip


def test_model_card(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def model(run: lineage.Run, name: str) -> str:
        weights = tmp_path / f"{name}.bin"
        weights.write_bytes(name.encode())
        art = lineage.Artifact(name, type="model")
        art.add_file(weights)
        return run.log_artifact(art).ref

    where = {"store": backend.store, "blobs": backend.blobs}
    with lineage.init(project="llm", job_type="pretrain", **where) as run:
        a, b, c = model(run, "a"), model(run, "b"), model(run, "c")
    with lineage.init(project="llm", job_type="merge", **where) as run:
        run.use_artifact(a, role="base")
        run.use_artifact(b, role="base")
        run.use_artifact(c)  # consumed, not a base (a tokenizer donor, say)
        merged = model(run, "merged")
    with lineage.init(project="llm", job_type="sft", **where) as run:
        run.use_artifact(merged)
        tuned = model(run, "tuned")
    with lineage.init(project="llm", job_type="distill", **where) as run:
        run.use_artifact(tuned)
        small = model(run, "small")

    def card(ref: str) -> tuple[dict[str, object], str]:
        answer = CliRunner().invoke(
            cli, ["--store", backend.store, "--blobs", backend.blobs, "model-card", ref]
        )
        assert answer.exit_code == 0, answer.output
        text = answer.output
        assert text.startswith("---\n") and text.endswith("---\n")
        return yaml.safe_load(text.strip("-\n")) or {}, text

    assert card(merged)[0] == {"base_model": [a, b], "base_model_relation": "merge"}
    assert card(tuned)[0] == {"base_model": merged, "base_model_relation": "finetune"}
    front, text = card(small)
    assert front == {"base_model": tuned} and "# derivation: distillation" in text
    assert card(a)[0] == {}  # made from nothing: no base


def test_model_card_datasets(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``datasets``: what the run that made the model and the runs that made the models
    upstream of it consumed, by name (no version), once each; not what a dataset was made
    from, nor a model that is not a dataset."""
    where = {"store": backend.store, "blobs": backend.blobs}

    def log(run: lineage.Run, name: str, type: str) -> str:
        path = tmp_path / f"{name}.bin"
        path.write_bytes(name.encode())
        art = lineage.Artifact(name, type=type)
        art.add_file(path)
        return run.log_artifact(art).ref

    with lineage.init(project="llm", job_type="crawl", **where) as run:
        raw = log(run, "raw", "dataset")
    with lineage.init(project="llm", job_type="clean", **where) as run:
        run.use_artifact(raw)
        corpus = log(run, "corpus", "dataset")
    with lineage.init(project="llm", job_type="pretrain", **where) as run:
        run.use_artifact(corpus)
        base = log(run, "base", "model")
    with lineage.init(project="llm", job_type="clean", **where) as run:
        chats = log(run, "chats", "dataset")
        (tmp_path / "chats.bin").write_bytes(b"chats v1")
        art = lineage.Artifact("chats", type="dataset")
        art.add_file(tmp_path / "chats.bin")
        chats_v1 = run.log_artifact(art).ref
    with lineage.init(project="other", job_type="sft", **where) as run:
        run.use_artifact(base)
        run.use_artifact(chats)
        run.use_artifact(chats_v1)
        tuned = log(run, "tuned", "model")
    answer = CliRunner().invoke(
        cli, ["--store", backend.store, "--blobs", backend.blobs, "model-card", tuned]
    )
    assert answer.exit_code == 0, answer.output
    assert yaml.safe_load(answer.output.strip("-\n")) == {
        "base_model": base,
        "base_model_relation": "finetune",
        "datasets": ["llm/chats", "llm/corpus"],
    }
