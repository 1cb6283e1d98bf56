"""Model derivation in the Hugging Face Hub's vocabulary, and a model card's front matter.

A version's *derivation* is what its creating run did to the models it consumed: a kind
and the base models. The kind is the run's own word (``job_type``, read leniently:
``finetune``, ``sft``, ``lora``, ``merge``, ``quantize``, ...), one of the Hub's
``base_model_relation`` values (``finetune``, ``adapter``, ``merge``, ``quantized``) or one
the Hub lacks (``distillation``, ``pruning``, ``surgery``). The base models are the models
the run consumed, or those it consumed with ``role="base"`` when it marked any
(``run.use_artifact(ref, role="base")``). A kind is a relation to a base: a model made from
no model (trained from scratch on a dataset: ``job_type="train"``) has none, as a Hub card
without ``base_model`` has no ``base_model_relation``; in the derivation tree, an edge from a
dataset to the model trained on it has no kind either (:func:`edge_kind`).

The card's ``datasets`` are those the model was trained on: every dataset consumed by the
run that made it or by a run that made a model upstream of it (its bases' data too; not the
inputs of the jobs further up that made those datasets), by name as the Hub lists datasets:
an artifact's ``project/name``, a dataset from OpenLineage as it was sent
(``s3://lake/clean/orders``, :mod:`lineage.sent`).

>>> print(model_card(service, "llm/merged:v0"))
---
base_model:
- llm/a:v3
- llm/b:v1
base_model_relation: merge
datasets:
- llm/corpus
---
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lineage import sent
from lineage.protocol import LineageService
from lineage.records import RunRecord, VersionRecord

__all__ = [
    "HUB_RELATIONS",
    "KINDS",
    "Derivation",
    "derivation",
    "derivation_kind",
    "edge_kind",
    "model_card",
    "trained_on",
]

HUB_RELATIONS = ("finetune", "adapter", "merge", "quantized")
KINDS = (*HUB_RELATIONS, "distillation", "pruning", "surgery")
_WORDS = {  # a job type's words -> the kind; the first word found wins
    "merge": "merge",
    "merging": "merge",
    "adapter": "adapter",
    "lora": "adapter",
    "qlora": "adapter",
    "peft": "adapter",
    "quantized": "quantized",
    "quantize": "quantized",
    "quantization": "quantized",
    "gptq": "quantized",
    "awq": "quantized",
    "distillation": "distillation",
    "distill": "distillation",
    "pruning": "pruning",
    "prune": "pruning",
    "surgery": "surgery",
    "finetune": "finetune",
    "fine-tune": "finetune",
    "fine_tune": "finetune",
    "sft": "finetune",
    "train": "finetune",
}


@dataclass(frozen=True, kw_only=True)
class Derivation:
    """How a model version was made from others: the kind (None when unsaid) and the bases."""

    version: VersionRecord
    run: RunRecord | None
    kind: str | None
    bases: tuple[str, ...]


def derivation_kind(run: RunRecord) -> str | None:
    """The derivation kind a run's ``job_type`` (or its ``derivation`` facet) names, or None:
    the run's word alone; whether it made a model from a model is :func:`edge_kind`'s and
    :func:`derivation`'s to say."""
    said = run.facets.get("derivation")
    if isinstance(said, str) and said in KINDS:
        return said
    if not run.job_type:
        return None
    words = run.job_type.lower().replace(".", "-").split("-")
    whole = run.job_type.lower()
    if whole in _WORDS:
        return _WORDS[whole]
    for word in words:
        if word in _WORDS:
            return _WORDS[word]
    return None


def edge_kind(
    run: RunRecord, source: VersionRecord | None, target: VersionRecord | None
) -> str | None:
    """The kind of the derivation-tree edge ``source -> target`` that ``run`` made: the run's
    kind (:func:`derivation_kind`) when it made a version from one of the same type (a model
    from a model), else None (a model trained on a dataset is no fine-tune of it)."""
    if source is None or target is None or source.type != target.type:
        return None
    return derivation_kind(run)


def derivation(service: LineageService, ref: str, default_project: str | None = None) -> Derivation:
    """The derivation of one version: its creating run's kind and the models it built on."""
    version = service.resolve(ref, default_project)
    run = service.get_run(version.created_by) if version.created_by else None
    if run is None:
        return Derivation(version=version, run=None, kind=None, bases=())
    inputs, _ = service.run_io(run.id)
    models = [v.id for v in inputs if v.type == version.type and v.id != version.id]
    marked = run.facets.get("roles", {}).get("base") if isinstance(run.facets, dict) else None
    bases = tuple(marked) if marked else tuple(models)
    kind = derivation_kind(run) if models else None  # from no model: no relation to one
    return Derivation(version=version, run=run, kind=kind, bases=bases)


def trained_on(service: LineageService, version: VersionRecord) -> list[str]:
    """The names of the datasets ``version`` (a model) was trained on, sorted: those its
    creating run and the runs that made the models upstream of it consumed."""
    graph = service.lineage(version.id, "upstream", None)
    models = {
        node.id
        for node in graph.nodes
        if node.version is not None and node.version.type == version.type
    }
    makers = {e.source for e in graph.edges if e.kind == "produced" and e.target in models}
    consumed = {e.source for e in graph.edges if e.kind == "consumed_by" and e.target in makers}
    return sorted(
        {
            sent.artifact_label(v.project, v.name, v.metadata)
            for node in graph.nodes
            if node.id in consumed and (v := node.version) is not None and v.type == "dataset"
        }
    )


def model_card(service: LineageService, ref: str, default_project: str | None = None) -> str:
    """The YAML front matter of a Hugging Face model card for one version: ``base_model``
    (a list for a merge or several bases), ``base_model_relation`` (a kind the Hub lacks
    is said in a comment) and ``datasets`` (:func:`trained_on`)."""
    found = derivation(service, ref, default_project)
    lines = ["---"]
    if found.bases:
        if len(found.bases) == 1 and found.kind != "merge":
            lines.append(f"base_model: {json.dumps(found.bases[0], ensure_ascii=False)}")
        else:
            lines.append("base_model:")
            lines += [f"- {json.dumps(base, ensure_ascii=False)}" for base in found.bases]
        if found.kind in HUB_RELATIONS:
            lines.append(f"base_model_relation: {found.kind}")
        elif found.kind is not None:
            lines.append(f"# derivation: {found.kind} (not a Hub base_model_relation)")
    datasets = trained_on(service, found.version)
    if datasets:
        lines.append("datasets:")
        lines += [f"- {json.dumps(name, ensure_ascii=False)}" for name in datasets]
    lines.append("---")
    return "\n".join(lines) + "\n"
