"""``lineage demo``: a 20-stage model-surgery history, logged through the public SDK only.

In the spirit of OpenAI's Dota 2 "surgery": a small logistic-regression policy is pretrained
on a game-outcome dataset (keeping 24 checkpoints on the way: policy:v0 to v23), then
fine-tuned stage after stage. Each stage tries two or three
branches (different learning rates and seeds), evaluates every branch on a holdout split and
continues from the best; the rest are dead ends. Every fifth stage performs surgery: the
dataset gains observation features and the model's weights are widened to match, keeping
what was learned. At stage 12 a new data source with noisy labels is tried; every branch is
worse, so the history backtracks to the best earlier version. All training is real (plain
Python SGD), all files are small real bytes.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

import lineage
from lineage.records import Subgraph
from lineage.versions import ArtifactVersion

__all__ = ["DemoResult", "run_demo"]

PROJECT = "surgery"
FEATURES = 6
SURGERY_EVERY = 5
NOISY_STAGE = 12
ROWS, HOLDOUT = 600, 200
TOLERANCE = 0.03
# pretraining (3 epochs of 600 rows) keeps a checkpoint every 72 steps: 24 of them
CHECKPOINT_EVERY = 72
_MARKER = ".lineage-demo"


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    store: str
    blobs: str
    base: str
    final: str
    bad_dataset: str | None
    runs: int
    versions: int
    out: Path


def _dataset(features: int, noisy: bool) -> tuple[str, str]:
    """Train and holdout CSVs: outcomes of a hidden linear rule over 12 observations."""
    rng = random.Random(7)
    truth = [rng.uniform(-2, 2) for _ in range(12)]
    flip = random.Random(99)

    def rows(count: int, seed: int, noise: bool) -> str:
        r = random.Random(seed)
        lines = [",".join([f"x{i}" for i in range(features)] + ["win"])]
        for _ in range(count):
            x = [r.gauss(0, 1) for _ in range(12)]
            y = int(sum(w * v for w, v in zip(truth, x, strict=True)) > 0)
            if noise and flip.random() < 0.45:
                y = 1 - y
            lines.append(",".join([f"{v:.4f}" for v in x[:features]] + [str(y)]))
        return "\n".join(lines) + "\n"

    return rows(ROWS, 1, noisy), rows(HOLDOUT, 2, False)


def _load(csv: str) -> tuple[list[list[float]], list[int]]:
    lines = csv.strip().splitlines()[1:]
    xs, ys = [], []
    for line in lines:
        *x, y = line.split(",")
        xs.append([float(v) for v in x])
        ys.append(int(y))
    return xs, ys


def _train(
    weights: list[float],
    xs: list[list[float]],
    ys: list[int],
    lr: float,
    epochs: int,
    seed: int,
    checkpoints: list[tuple[int, list[float]]] | None = None,
) -> tuple[list[float], float]:
    """SGD; with ``checkpoints``, the weights every ``CHECKPOINT_EVERY`` steps (but the
    last) are appended to it as ``(step, weights)``."""
    w = list(weights)
    order = list(range(len(xs)))
    rng = random.Random(seed)
    loss = 0.0
    steps = 0
    for _ in range(epochs):
        rng.shuffle(order)
        loss = 0.0
        for i in order:
            steps += 1
            if checkpoints is not None and steps > 1 and (steps - 1) % CHECKPOINT_EVERY == 0:
                checkpoints.append((steps - 1, list(w)))
            z = w[-1] + sum(a * b for a, b in zip(w, xs[i], strict=False))
            p = 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))
            loss -= math.log(max(1e-9, p if ys[i] else 1 - p))
            g = p - ys[i]
            for j, v in enumerate(xs[i]):
                w[j] -= lr * g * v
            w[-1] -= lr * g
    return w, loss / len(xs)


def _accuracy(weights: list[float], xs: list[list[float]], ys: list[int]) -> float:
    right = 0
    for x, y in zip(xs, ys, strict=True):
        z = weights[-1] + sum(a * b for a, b in zip(weights, x, strict=False))
        right += int((z > 0) == bool(y))
    return right / len(xs)


class _Demo:
    def __init__(self, work: Path, store: str, blobs: str, echo: Callable[[str], None]) -> None:
        self.work = work
        self.store = store
        self.blobs = blobs
        self.echo = echo
        self.runs = 0
        self.counter = 0

    def init(self, job_type: str, name: str, config: Mapping[str, object]) -> lineage.Run:
        self.runs += 1
        return lineage.init(
            project=PROJECT,
            job_type=job_type,
            name=name,
            config=config,
            store=self.store,
            blobs=self.blobs,
        )

    def folder(self) -> Path:
        self.counter += 1
        path = self.work / f"files-{self.counter:04d}"
        path.mkdir(parents=True)
        return path

    def log_model(
        self, run: lineage.Run, weights: list[float], description: str, meta: dict[str, object]
    ) -> ArtifactVersion:
        folder = self.folder()
        (folder / "weights.json").write_text(json.dumps({"w": weights[:-1], "b": weights[-1]}))
        (folder / "config.json").write_text(json.dumps(dict(run.config), sort_keys=True))
        art = lineage.Artifact("policy", type="model", description=description, metadata=meta)
        art.add_dir(folder)
        return run.log_artifact(art)

    def log_dataset(self, run: lineage.Run, features: int, noisy: bool) -> ArtifactVersion:
        folder = self.folder()
        train, holdout = _dataset(features, noisy)
        (folder / "train.csv").write_text(train)
        (folder / "holdout.csv").write_text(holdout)
        what = "noisy labels from a new source" if noisy else f"{features} observation features"
        art = lineage.Artifact(
            "games",
            type="dataset",
            description=f"game outcomes, {what}",
            metadata={"features": features, "rows": ROWS, "holdout": HOLDOUT, "noisy": noisy},
        )
        art.add_dir(folder)
        return run.log_artifact(art)

    def evaluate(self, model: ArtifactVersion, data: ArtifactVersion, stage: int) -> float:
        with self.init("evaluate", f"eval-{model.version}", {"stage": stage}) as run:
            m = run.use_artifact(model)
            d = run.use_artifact(data)
            weights = _read_weights(m.download(self.folder()))
            xs, ys = _load((d.download(self.folder()) / "holdout.csv").read_text())
            acc = _accuracy(weights, xs, ys)
            folder = self.folder()
            (folder / "metrics.json").write_text(
                json.dumps({"model": m.ref, "dataset": d.ref, "accuracy": acc}, sort_keys=True)
            )
            art = lineage.Artifact("policy-eval", type="result", metadata={"accuracy": acc})
            art.add_dir(folder)
            run.log_artifact(art)
            run.log({"accuracy": acc})
        return acc


def _read_weights(folder: Path) -> list[float]:
    data = json.loads((folder / "weights.json").read_text())
    return [*data["w"], data["b"]]


def run_demo(
    out: Path,
    *,
    stages: int = 20,
    store: str | None = None,
    blobs: str | None = None,
    serve: bool = True,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    out = Path(out)
    if out.exists():
        if not (out / _MARKER).exists():
            raise lineage.InvalidInput(f"{out} exists and is not a lineage demo folder; pick --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / _MARKER).write_text("made by `lineage demo`; deleted by the next demo run\n")
    store = store or str(out / ".lineage")
    blobs = blobs or str(out / ".lineage" / "blobs")
    demo = _Demo(out / "work", store, blobs, echo)
    echo(f"logging a {stages}-stage model-surgery history into {store}")

    with demo.init("prepare", "prepare-games", {"features": FEATURES}) as run:
        data = demo.log_dataset(run, FEATURES, noisy=False)
    with demo.init("pretrain", "pretrain", {"lr": 0.1, "epochs": 3}) as run:
        d = run.use_artifact(data)
        xs, ys = _load((d.download(demo.folder()) / "train.csv").read_text())
        saved: list[tuple[int, list[float]]] = []
        weights, loss = _train([0.0] * (FEATURES + 1), xs, ys, 0.1, 3, seed=0, checkpoints=saved)
        for step, kept in saved:  # policy:v0 .. v23, then the pretrained model itself
            demo.log_model(
                run, kept, f"pretraining checkpoint at step {step}",
                {"stage": 0, "step": step, "checkpoint": True},
            )  # fmt: skip
        base = demo.log_model(run, weights, "pretrained from scratch", {"stage": 0, "loss": loss})
        run.log({"loss": loss})
    base.set_alias("base")
    best, best_acc = base, demo.evaluate(base, data, 0)
    best.set_alias("best")
    current, features, bad_dataset = base, FEATURES, None
    echo(
        f"stage  0: {base.ref} accuracy {best_acc:.3f} (pretrained, alias base; "
        f"{len(saved)} checkpoints on the way: policy:v0..v{len(saved) - 1})"
    )

    for stage in range(1, stages + 1):
        train_data = data
        if stage % SURGERY_EVERY == 0 and features < 12:
            features += 2
            with demo.init("prepare", f"prepare-games-{features}", {"features": features}) as run:
                data = train_data = demo.log_dataset(run, features, noisy=False)
            with demo.init("surgery", f"surgery-{stage}", {"add_features": 2}) as run:
                parent = run.use_artifact(current)
                run.use_artifact(data)
                old = _read_weights(parent.download(demo.folder()))
                widened = [*old[:-1], 0.0, 0.0, old[-1]]  # new inputs start with zero weight
                current = demo.log_model(
                    run,
                    widened,
                    f"surgery at stage {stage}: +2 observation features",
                    {"stage": stage, "surgery": True, "features": features},
                )
            echo(f"stage {stage:2}: surgery -> {current.ref} ({features} features)")
        if stage == NOISY_STAGE:
            with demo.init("prepare", "prepare-games-newsource", {"source": "scraped"}) as run:
                train_data = demo.log_dataset(run, features, noisy=True)
            bad_dataset = train_data.ref
        branches = 2 if stage % 3 == 0 else 3
        results = []
        for branch in range(branches):
            lr = [0.05, 0.02, 0.1][branch] / (1 + stage / 10)
            config = {
                "stage": stage,
                "branch": branch,
                "lr": lr,
                "epochs": 2,
                "seed": stage * 10 + branch,
            }
            with demo.init("finetune", f"finetune-{stage}-{'abc'[branch]}", config) as run:
                parent = run.use_artifact(current)
                d = run.use_artifact(train_data)
                xs, ys = _load((d.download(demo.folder()) / "train.csv").read_text())
                weights, loss = _train(
                    _read_weights(parent.download(demo.folder())),
                    xs,
                    ys,
                    lr,
                    2,
                    stage * 10 + branch,
                )
                model = demo.log_model(
                    run,
                    weights,
                    f"stage {stage} branch {'abc'[branch]}",
                    {"stage": stage, "branch": branch, "loss": loss},
                )
                run.log({"loss": loss})
            results.append((demo.evaluate(model, data, stage), model))
        acc, winner = max(results, key=lambda pair: pair[0])
        if acc < best_acc - TOLERANCE:
            echo(
                f"stage {stage:2}: every branch is worse ({acc:.3f} < {best_acc:.3f}); "
                f"backtracking to {best.ref}"
            )
            current = best
            continue
        current = winner
        if acc > best_acc:
            best, best_acc = winner, acc
            best.set_alias("best")
        echo(f"stage {stage:2}: {len(results)} branches, continuing from {winner.ref} ({acc:.3f})")

    best.set_alias("production")
    best.update(description=f"production policy, holdout accuracy {best_acc:.3f}")
    echo(f"production: {best.ref} (holdout accuracy {best_acc:.3f}); {demo.runs} runs logged")

    api = lineage.Api(store=store, blobs=blobs, project=PROJECT)
    from lineage.text import print_view
    from lineage.view import ask

    echo("")
    echo(f"== upstream lineage of {best.ref} ==")
    upstream_view = ask(api, best.ref, "upstream", 20)
    upstream = upstream_view.graph
    print_view(upstream_view, echo)
    echo("")
    echo(f"== derivation tree from {base.ref} ==")
    print_view(ask(api, base.ref, "tree", 40), echo)
    if bad_dataset:
        impact = api.impact(bad_dataset)
        hit = sorted(
            n.ref for n in impact.nodes if n.ref and n.version and n.version.type == "model"
        )
        echo("")
        echo(f"== impact of {bad_dataset} (the noisy new source) ==")
        echo(f"{len(hit)} models trained on it: {', '.join(hit)}")
    from lineage.render import render_ref

    pictures = out / "tree.svg", out / "lineage.svg"
    pictures[0].write_bytes(
        render_ref(api, base.ref, mode="tree", depth=40, highlight="production")
    )
    pictures[1].write_bytes(render_ref(api, best.ref, mode="up", depth=20, highlight="production"))
    echo("")
    echo(f"derivation tree drawn to {pictures[0]}")
    echo(f"upstream lineage of {best.ref} drawn to {pictures[1]}")
    if serve:
        _query_over_http(store, blobs, best.ref, upstream, echo)
    versions = sum(len(api.versions(a.name)) for a in api.artifacts())
    return DemoResult(
        store=store,
        blobs=blobs,
        base=base.ref,
        final=best.ref,
        bad_dataset=bad_dataset,
        runs=demo.runs,
        versions=versions,
        out=out,
    )


# from the package ``lineage``, not ``lineage.server.graphql``: that one imports strawberry, and
# every ``lineage`` command (this module is the ``demo`` verb) would pay ~0.6 s for it
UPSTREAM_QUERY = (
    resources.files("lineage") / "server" / "graphql" / "queries" / "upstream_lineage.graphql"
)


def _query_over_http(
    store: str, blobs: str, ref: str, expected: Subgraph, echo: Callable[[str], None]
) -> None:
    """Ask the same question through a real HTTP server, as a remote user would."""
    import httpx

    from lineage.server.serving import background

    query = UPSTREAM_QUERY.read_text()
    with background(store, blobs) as url:
        response = httpx.post(
            f"{url}/graphql",
            json={"query": query, "variables": {"ref": ref, "depth": 20}},
            timeout=60,
        )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise lineage.LineageError(f"GraphQL query failed: {body['errors'][0]['message']}")
    graph = body["data"]["lineage"]
    runs = [n["run"] for n in graph["nodes"] if n["kind"] == "RUN"]
    same = {n["id"] for n in graph["nodes"]} == expected.ids
    echo("")
    echo(f"== the same question over GraphQL: POST {url}/graphql ==")
    echo(f"query UpstreamLineage(ref: {ref!r}, depth: 20)  [{UPSTREAM_QUERY.name}]")
    echo(
        f"answer: {len(graph['nodes']) - len(runs)} versions, {len(runs)} runs, "
        f"{len(graph['edges'])} edges, truncated={graph['truncated']}; "
        + ("identical to the SDK's answer" if same else "DIFFERENT from the SDK's answer")
    )
    by_type: dict[str, int] = {}
    for run in runs:
        by_type[run["jobType"] or "run"] = by_type.get(run["jobType"] or "run", 0) + 1
    echo("runs by job type: " + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())))
    if not same:
        raise lineage.LineageError("the server and the SDK disagree on the upstream lineage")


from lineage.cli.main import Context, cli, errors, pass_ctx  # noqa: E402  (the verb)


@cli.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Where the demo keeps its store, files and pictures.",
)
@click.option("--stages", type=int, default=20, show_default=True)
@click.option("--serve/--no-serve", default=True, help="Query the demo over a real HTTP server.")
@pass_ctx
@errors
def demo(ctx: Context, out: Path, stages: int, serve: bool) -> None:
    """Log a 20-stage model-surgery history through the SDK, then query and render it."""
    run_demo(out, stages=stages, store=ctx.store, blobs=ctx.blobs, serve=serve, echo=click.echo)
