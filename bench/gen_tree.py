"""Generate the graph benchmark's fine-tuning tree, deterministically from a seed.

One base model, fine-tuned over exactly 20 generations: every model that has children has
1 to 3 of them, and generation 20 is reached (those models are the "depth-20 leaves"). Each
fine-tuning run consumes its parent model; about 30% of models also get an evaluation run
(model -> result); and every run also consumes one of only 20 shared dataset versions, so
each dataset version has thousands of consumers::

    prepare -> dataset:v0..v19              (one run, 20 versions)
    dataset:v0 -> pretrain -> model:v0      (the base model)
    model:vP + dataset:vD -> finetune -> model:vC          (``runs`` of these)
    model:vC + dataset:vD -> eval -> result:vK             (~0.3 per model)

``runs`` counts the fine-tuning runs (one per model below the base); evaluation runs come on
top (~0.3 x runs), so the base model's full downstream tree has about 2.6 x ``runs`` nodes:
~260,000 at 100,000 runs, as in the issue. Generation sizes grow geometrically so that the
20 generations hold exactly ``runs`` models.

    from gen_tree import generate
    tree = generate(10_000, seed=0)
    for step in tree.steps:          # creation order: inputs always exist before a step
        step.run, step.inputs, step.outputs, step.edges
    tree.records()                   # RunRecord, ArtifactRecord, VersionRecord, Edge, in order

``python bench/gen_tree.py 10000`` prints the shape of one tree.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from lineage.records import (
    CONSUMED_BY,
    PRODUCED,
    ArtifactRecord,
    Edge,
    RunRecord,
    VersionRecord,
    version_id,
)

__all__ = ["DATASETS", "DEPTH", "EVAL_SHARE", "Step", "Tree", "generate"]

DEPTH = 20
DATASETS = 20
EVAL_SHARE = 0.3
MAX_CHILDREN = 3
START = 1_700_000_000.0  # a fixed clock, so records are identical run to run


@dataclass(frozen=True, kw_only=True)
class Step:
    """One run as the SDK would log it: the run, what it consumed, what it produced."""

    run: RunRecord
    inputs: tuple[str, ...]
    outputs: tuple[VersionRecord, ...]

    @property
    def edges(self) -> list[Edge]:
        consumed = [Edge(source=i, target=self.run.id, kind=CONSUMED_BY) for i in self.inputs]
        produced = [Edge(source=self.run.id, target=v.id, kind=PRODUCED) for v in self.outputs]
        return consumed + produced


@dataclass(frozen=True, kw_only=True)
class Tree:
    project: str
    artifacts: tuple[ArtifactRecord, ...]
    steps: tuple[Step, ...]
    base: str  # version id of the base model
    leaves: tuple[str, ...]  # version ids of the generation-20 models
    generations: tuple[int, ...]  # models per generation, 1..DEPTH
    next_index: Mapping[str, int]  # per artifact name: the index its next version gets

    def records(self) -> Iterator[ArtifactRecord | RunRecord | VersionRecord | Edge]:
        yield from self.artifacts
        for step in self.steps:
            yield step.run
            yield from step.outputs
            yield from step.edges

    @property
    def node_count(self) -> int:
        return len(self.steps) + sum(len(s.outputs) for s in self.steps)


def generation_sizes(runs: int, depth: int = DEPTH) -> list[int]:
    """Models per generation: geometric growth, each at most 3x the one before, summing to
    ``runs``."""
    if runs < depth:
        raise ValueError(f"a tree of depth {depth} needs at least {depth} runs, not {runs}")
    if runs > sum(MAX_CHILDREN**d for d in range(1, depth + 1)):
        raise ValueError(f"{runs} runs do not fit in {depth} generations of <= 3 children")

    def sizes(ratio: float) -> list[int]:
        return [max(1, math.floor(ratio**d)) for d in range(1, depth + 1)]

    low, high = 1.0, float(MAX_CHILDREN)
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if sum(sizes(mid)) <= runs else (low, mid)
    levels = sizes(low)
    # hand out the remainder from the deepest generation up, keeping the 3x bound
    missing = runs - sum(levels)
    for d in range(depth - 1, -1, -1):
        cap = MAX_CHILDREN * (levels[d - 1] if d else 1)
        extra = min(missing, max(0, cap - levels[d]))
        levels[d] += extra
        missing -= extra
    assert missing == 0 and sum(levels) == runs, (runs, levels)
    return levels


def split_children(rng: random.Random, parents: int, children: int) -> list[int]:
    """How many children each parent gets: 0, or 1 to 3, adding up to ``children``."""
    low, high = math.ceil(children / MAX_CHILDREN), min(parents, children)
    having = min(max(round(children / 2), low), high)  # about two children each
    chosen = rng.sample(range(parents), having)
    counts = [0] * parents
    for parent in chosen:
        counts[parent] = 1
    for slot in rng.sample(range(having * (MAX_CHILDREN - 1)), children - having):
        counts[chosen[slot // (MAX_CHILDREN - 1)]] += 1
    return counts


def generate(
    runs: int,
    *,
    seed: int = 0,
    project: str = "ft",
    run_prefix: str = "r",
    depth: int = DEPTH,
    after: Tree | None = None,
) -> Tree:
    """A fine-tuning tree with ``runs`` fine-tuning runs (plus evaluations), in creation order.

    Run ids are ``run_prefix`` + a zero-padded counter, 8 characters. A second tree in the same
    store needs another prefix; with ``after``, it also continues that tree's artifacts (its
    version indexes follow ``after``'s), as a user logging more runs into the project would.
    """
    rng = random.Random(seed)
    counter = iter(range(10**7))
    steps: list[Step] = []
    next_index = dict(after.next_index) if after else {"dataset": 0, "model": 0, "result": 0}

    def run(job_type: str, config: dict[str, object]) -> RunRecord:
        n = next(counter)
        started = START + n
        return RunRecord(
            id=f"{run_prefix}{n:0{8 - len(run_prefix)}d}",
            project=project,
            name=f"{job_type}-{n}",
            job_type=job_type,
            state="finished",
            config=config,
            summary={"loss": round(rng.random(), 4)} if job_type != "prepare" else {},
            started_at=started,
            finished_at=started + 1,
        )

    def version(name: str, kind: str, run_id: str, metadata: dict[str, object]) -> VersionRecord:
        index = next_index[name]
        next_index[name] += 1
        vid = version_id(project, name, index)
        return VersionRecord(
            project=project,
            name=name,
            type=kind,
            index=index,
            digest=hashlib.blake2b(f"{seed}:{vid}".encode(), digest_size=32).hexdigest(),
            size=1 << 20,
            file_count=1,
            metadata=metadata,
            aliases=(),
            created_by=run_id,
            created_at=START,
            state="committed",
        )

    def dataset() -> str:
        return datasets[rng.randrange(DATASETS)]

    def evaluate(model: str) -> None:
        if rng.random() < EVAL_SHARE:
            r = run("eval", {"model": model})
            result = version("result", "result", r.id, {"accuracy": round(rng.random(), 4)})
            steps.append(Step(run=r, inputs=(model, dataset()), outputs=(result,)))

    prepare = run("prepare", {"shards": DATASETS})
    prepared = tuple(version("dataset", "dataset", prepare.id, {}) for _ in range(DATASETS))
    steps.append(Step(run=prepare, inputs=(), outputs=prepared))
    datasets = [v.id for v in prepared]

    pretrain = run("pretrain", {"layers": 24})
    base = version("model", "model", pretrain.id, {"generation": 0})
    steps.append(Step(run=pretrain, inputs=(datasets[0],), outputs=(base,)))
    evaluate(base.id)

    sizes = generation_sizes(runs, depth)
    generation = [base.id]
    for g, size in enumerate(sizes, start=1):
        following = []
        for parent, count in zip(
            generation, split_children(rng, len(generation), size), strict=True
        ):
            for _ in range(count):
                r = run("finetune", {"lr": 10 ** -rng.randint(3, 6), "parent": parent})
                model = version("model", "model", r.id, {"generation": g})
                steps.append(Step(run=r, inputs=(parent, dataset()), outputs=(model,)))
                following.append(model.id)
                evaluate(model.id)
        generation = following

    artifacts = tuple(
        ArtifactRecord(project=project, name=name, type=kind, created_at=START)
        for name, kind in (("dataset", "dataset"), ("model", "model"), ("result", "result"))
    )
    return Tree(
        project=project,
        artifacts=artifacts,
        steps=tuple(steps),
        base=base.id,
        leaves=tuple(generation),
        generations=tuple(sizes),
        next_index=next_index,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=int, nargs="?", default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tree = generate(args.runs, seed=args.seed)
    evals = sum(1 for s in tree.steps if s.run.job_type == "eval")
    edges = sum(len(s.inputs) + len(s.outputs) for s in tree.steps)
    consumers: dict[str, int] = {}
    for step in tree.steps:
        for i in step.inputs:
            if i.startswith(f"{tree.project}/dataset:"):
                consumers[i] = consumers.get(i, 0) + 1
    print(
        f"fine-tuning runs {args.runs:,}, evaluation runs {evals:,}, all runs {len(tree.steps):,}"
    )
    print(f"nodes {tree.node_count:,}, edges {edges:,}, depth-{DEPTH} leaves {len(tree.leaves):,}")
    print(f"models per generation {list(tree.generations)}")
    print(
        f"consumers per dataset version: {min(consumers.values()):,}..{max(consumers.values()):,}"
    )


if __name__ == "__main__":
    main()
