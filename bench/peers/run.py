"""The peers side by side (issue 15): lineage, DVC, MLflow, W&B offline and ML Metadata.

Each tool runs in a venv of its own under ``bench/out/peers/`` (made from
``bench/peers/requirements/<tool>.txt`` the first time, remade when that file changes) as a
child of this process, one script a tool (``peer_<tool>.py``, protocol in ``common.py``).

- data part, on the 1 GiB / 10,000-file dataset of ``bench/gen_dataset.py``, ``--rounds``
  rounds, the tools in a rotated order each round (each goes first once in five rounds):
  first snapshot, re-snapshot unchanged, re-snapshot after one 50 KiB file is rewritten (the
  same file and bytes for every tool of a round), restore into an empty folder; seconds and
  bytes added to the tool's store. Stores are deleted only when the round is over and the
  disk has settled, as in ``bench_ingest.py``.
- graph part, on the ``bench/gen_tree.py`` tree of ``--runs`` fine-tuning runs, ML Metadata
  and lineage's SQLite store: ingest, upstream of 50 depth-20 models (median), the whole
  downstream of the base (median of 3); ``--graph-rounds`` times.

    make bench-peers                       # installs, generates the dataset if missing, runs
    .venv/bin/python bench/peers/run.py --data bench/data --rounds 3 [--tools lineage dvc]

The table (markdown, ratios lineage/peer: below 1, lineage is faster or smaller) goes to
stdout, every figure to ``bench/out/peers.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(BENCH))

from bench_ingest import settle  # noqa: E402
from gen_dataset import DEFAULT_DIR, SMALL, generate  # noqa: E402

TOOLS = ("lineage", "dvc", "mlflow", "wandb", "mlmd")
GRAPH_TOOLS = ("lineage", "mlmd", "neo4j")  # neo4j: lineage on a Neo4j store, with --neo4j
NAMES = {"lineage": "lineage", "dvc": "DVC", "mlflow": "MLflow", "wandb": "W&B offline",
         "mlmd": "ML Metadata", "neo4j": "lineage"}  # fmt: skip
DATA_STEPS = ("snapshot", "re-snapshot unchanged", "re-snapshot one changed", "restore")
GRAPH_STEPS = ("ingest", "upstream depth 20", "downstream of base")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# venvs ---------------------------------------------------------------------------------------


def python(tool: str, scratch: Path) -> Path:
    """The interpreter of ``tool``'s venv, made or remade from its pinned requirements."""
    if tool in ("lineage", "neo4j"):
        return Path(sys.executable)
    requirements = HERE / "requirements" / f"{tool}.txt"
    venv = scratch / f"{tool}-venv"
    stamp = venv / ".requirements-sha256"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want:
        return venv / "bin" / "python"
    log(f"installing {tool} into {venv} (pinned in {requirements.relative_to(BENCH.parent)})")
    shutil.rmtree(venv, ignore_errors=True)
    base = os.environ.get("PEERS_PYTHON", sys.executable)  # the pins are for CPython 3.11
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "-r", str(requirements)], check=True)
    stamp.write_text(want)
    return venv / "bin" / "python"


def run_script(tool: str, exe: Path, args: list[str]) -> dict[str, Any]:
    """Run ``peer_<tool>.py``; its JSON lines by step, ``version``, and ``check``s."""
    ours = tool in ("lineage", "neo4j")
    script = "lineage" if ours else tool
    command = [str(exe), str(HERE / f"peer_{script}.py"), *args, *(["--neo4j"] * (tool == "neo4j"))]
    env = dict(os.environ, PYTHONPATH=str(BENCH.parent) if ours else "")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=HERE)
    assert proc.stdout is not None
    out: dict[str, Any] = {"steps": {}, "checks": []}
    for line in proc.stdout:
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            print(line, end="", file=sys.stderr)  # a tool's own chatter
            continue
        if "version" in item:
            out["version"] = item["version"]
        elif "check" in item:
            out["checks"].append(item)
        else:
            out["steps"][item["step"]] = item
    if proc.wait() != 0:
        raise SystemExit(f"{tool}: {' '.join(command)} failed (exit {proc.returncode})")
    return out


# parts ---------------------------------------------------------------------------------------


def data_rounds(args: argparse.Namespace, exes: dict[str, Path]) -> list[dict[str, Any]]:
    data, scratch = args.data, args.scratch
    small = sorted(
        str(p.relative_to(data))
        for p in data.rglob("*")
        if p.is_file() and p.stat().st_size == SMALL
    )
    tools = args.tools
    rounds = []
    for i in range(args.rounds):
        order = tools[i % len(tools) :] + tools[: i % len(tools)]
        change = small[(i * 1409 + 17) % len(small)]
        here = scratch / f"round{i}"
        shutil.rmtree(here, ignore_errors=True)
        here.mkdir(parents=True)
        log(f"data round {i + 1}/{args.rounds}: {' '.join(order)}; changed file {change}")
        got: dict[str, Any] = {"round": i, "order": order, "changed": change, "tools": {}}
        got["load_start"] = os.getloadavg()
        for tool in order:
            started = time.perf_counter()
            argv = ["data", "--data", str(data), "--store", str(here / tool)]
            got["tools"][tool] = run_script(
                tool, exes[tool], [*argv, "--change", change, "--salt", str(i + 1)]
            )
            log(f"  {tool}: {time.perf_counter() - started:.0f} s")
        got["load_end"] = os.getloadavg()
        rounds.append(got)
        shutil.rmtree(here, ignore_errors=True)
        os.sync()
        settle(scratch)
    return rounds


def export_tree(runs: int, seed: int, path: Path) -> None:
    """The tree of ``bench/gen_tree.py`` as JSON, for tools that cannot import lineage."""
    from gen_tree import generate as generate_tree

    tree = generate_tree(runs, seed=seed)
    steps = [
        [
            s.run.id, s.run.job_type, json.dumps(s.run.config), json.dumps(s.run.summary),
            s.run.started_at, s.run.finished_at, list(s.inputs),
            [[v.id, v.type, v.digest, v.size, json.dumps(v.metadata)] for v in s.outputs],
        ]
        for s in tree.steps
    ]  # fmt: skip
    queries = random.Random(seed).sample(tree.leaves, min(50, len(tree.leaves)))
    spec = {"runs": runs, "seed": seed, "batch": 5000, "base": tree.base, "queries": queries}
    path.write_text(json.dumps(spec | {"steps": steps}))


def graph_rounds(args: argparse.Namespace, exes: dict[str, Path]) -> list[dict[str, Any]]:
    tree = args.scratch / f"tree-{args.runs}.json"
    if not tree.is_file():
        log(f"exporting the tree of {args.runs:,} runs to {tree}")
        export_tree(args.runs, 0, tree)
    tools = [t for t in args.tools if t in GRAPH_TOOLS] + ["neo4j"] * args.neo4j
    rounds = []
    for i in range(args.graph_rounds):
        order = tools[i % len(tools) :] + tools[: i % len(tools)]
        here = args.scratch / f"graph{i}"
        shutil.rmtree(here, ignore_errors=True)
        got: dict[str, Any] = {"round": i, "order": order, "tools": {}}
        got["load_start"] = os.getloadavg()
        for tool in order:
            started = time.perf_counter()
            log(f"graph round {i + 1}/{args.graph_rounds}: {tool}, {args.runs:,} runs")
            argv = ["graph", "--tree", str(tree), "--store", str(here / tool)]
            got["tools"][tool] = run_script(tool, exes.get(tool, Path(sys.executable)), argv)
            log(f"  {tool}: {time.perf_counter() - started:.0f} s")
        got["load_end"] = os.getloadavg()
        rounds.append(got)
        shutil.rmtree(here, ignore_errors=True)
    return rounds


# report --------------------------------------------------------------------------------------


def figures(rounds: list[dict[str, Any]], tool: str, step: str) -> dict[str, Any] | None:
    """Per-round figures of one tool's step: wall, cpu, bytes added; or why it cannot."""
    seen = [r["tools"][tool] for r in rounds if tool in r["tools"]]
    if not seen or step not in seen[0]["steps"]:
        return None
    if "unsupported" in seen[0]["steps"][step]:
        return {"unsupported": seen[0]["steps"][step]["unsupported"]}
    steps = list(seen[0]["steps"])
    previous = steps[steps.index(step) - 1] if steps.index(step) else None  # else: from empty
    out: dict[str, Any] = {"wall": [], "cpu": [], "added": [], "extra": seen[0]["steps"][step]}
    for r in seen:
        item = r["steps"][step]
        out["wall"].append(item["wall"])
        out["cpu"].append(item["cpu"])
        if "bytes" in item:
            before = r["steps"][previous].get("bytes", 0) if previous else 0
            out["added"].append(item["bytes"] - before)
    return out


def cell(value: float, kind: str) -> str:
    if kind == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if kind == "ms":
        return f"{value * 1000:.2f} ms"
    if kind == "bytes":
        return f"{value / 2**20:,.1f} MiB" if value >= 2**20 else f"{value / 1000:,.1f} KB"
    return f"{value:,.0f}"


def ratio(value: float, kind: str) -> str:
    """lineage/peer: 2 decimals, 3 for sizes (a store is the data plus a little) and small ones."""
    return f"{value:.3f}" if kind == "bytes" or value < 0.1 else f"{value:.2f}"


def table(result: dict[str, Any]) -> str:
    rows: list[tuple[str, list[dict[str, Any]], str, str, str]] = []
    for step in DATA_STEPS:
        rows.append((f"{step}, s", result["data"], step, "wall", "s"))
        if step != "restore":
            rows.append((f"{step}, bytes added", result["data"], step, "added", "bytes"))
    rows.append(("ingest of the tree, s", result["graph"], "ingest", "wall", "s"))
    rows.append(("ingest of the tree, store size", result["graph"], "ingest", "added", "bytes"))
    rows.append(("upstream of a depth-20 model, median", result["graph"], "upstream depth 20",
                 "wall", "ms"))  # fmt: skip
    rows.append(("downstream of the base, median", result["graph"], "downstream of base", "wall",
                 "s"))  # fmt: skip
    tools = [t for t in ("lineage", "neo4j", *TOOLS[1:]) if t in result["versions"]]
    header = ["", *(f"{NAMES[t]} {result['versions'][t]}" for t in tools)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: dict[str, int] = {}
    for label, rounds, step, field, kind in rows:
        base = figures(rounds, "lineage", step)
        cells = [label]
        for tool in tools:
            got = figures(rounds, tool, step)
            if got is None:
                cells.append("-")
                continue
            if "unsupported" in got:
                number = notes.setdefault(got["unsupported"], len(notes) + 1)
                cells.append(f"cannot ({number})")
                continue
            value = statistics.median(got[field])
            text = cell(value, kind)
            # lineage/peer; lineage's Neo4j column: lineage on Neo4j / ML Metadata
            mlmd = figures(rounds, "mlmd", step) if tool == "neo4j" else None
            num, den = (got, mlmd) if tool == "neo4j" else (base, got)
            if tool != "lineage" and num and den and "unsupported" not in den and num[field]:
                pairs = [a / b for a, b in zip(num[field], den[field], strict=False) if b]
                if pairs:
                    mark = " of MLMD" if tool == "neo4j" else ""
                    text += f" (x{ratio(statistics.median(pairs), kind)}{mark})"
            why = got["extra"].get("no_dedup")
            if why and field == "wall":
                text += f" ({notes.setdefault(why, len(notes) + 1)})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"({n}) {why}" for why, n in notes.items()]
    return "\n".join(lines)


def header(result: dict[str, Any]) -> str:
    m, a = result["machine"], result["args"]
    load = [" ".join(f"{x:.2f}" for x in result[k]) for k in ("load_start", "load_end")]
    return (
        f"{m['cpu']}, {m['nproc']} CPUs, Python {m['python']}; load average at start {load[0]}, "
        f"at end {load[1]}; {len(result['data'])} data rounds (medians; ratios: median over "
        f"rounds of lineage/peer), {len(result['graph'])} graph round(s) of {a['runs']:,} runs; "
        f"{result['seconds'] / 60:.1f} min\n"
    )


def machine() -> dict[str, Any]:
    model = ""
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name"):
            model = line.split(":", 1)[1].strip()
    return {"cpu": model, "nproc": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR, help="the 1 GiB dataset")
    parser.add_argument("--scratch", type=Path, default=BENCH / "out" / "peers")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the data part")
    parser.add_argument("--graph-rounds", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100_000, help="fine-tuning runs of the tree")
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--parts", nargs="+", choices=["data", "graph"], default=["data", "graph"])
    parser.add_argument("--json", type=Path, default=BENCH / "out" / "peers.json")
    parser.add_argument("--neo4j", action="store_true", help="graph part on Neo4j too")
    parser.add_argument("--report", type=Path, metavar="JSON", help="print an earlier run's table")
    parser.add_argument("--install-only", action="store_true", help="make the venvs, stop")
    args = parser.parse_args(argv)
    if args.report:
        result = json.loads(args.report.read_text())
        print(header(result))
        print(table(result))
        return 0
    if "lineage" not in args.tools:
        parser.error("--tools: lineage is the subject, keep it")
    args.data, args.scratch = args.data.resolve(), args.scratch.resolve()
    args.scratch.mkdir(parents=True, exist_ok=True)
    exes = {tool: python(tool, args.scratch) for tool in args.tools}
    if args.install_only:
        return 0
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": machine(), "load_start": os.getloadavg(), "args": {
        "rounds": args.rounds, "graph_rounds": args.graph_rounds, "runs": args.runs,
        "data": str(args.data), "tools": args.tools}, "data": [], "graph": []}  # fmt: skip
    if "data" in args.parts:
        if not args.data.exists():
            count, total = generate(args.data)
            os.sync()
            log(f"dataset: {count} files, {total / 2**30:.2f} GiB written to {args.data}")
        subprocess.run(["sh", "-c", f"find '{args.data}' -type f -exec cat {{}} + >/dev/null"])
        settle(args.scratch)
        result["data"] = data_rounds(args, exes)
    if "graph" in args.parts:
        result["graph"] = graph_rounds(args, exes)
    result["load_end"] = os.getloadavg()
    result["seconds"] = time.perf_counter() - started
    result["versions"] = {
        tool: r["tools"][tool]["version"]
        for r in result["data"] + result["graph"]
        for tool in r["tools"]
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(header(result))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
