"""The SQLite derivation tree, this package against another ``lineage/storage/sqlite.py``, in
one process: the whole tree of the base of a 100,000-run store (``bench/gen_tree.py``, the
store ``bench_graph.py`` measures, with its 40,000-run warm-up project), ``tree_rows`` and
the answer (``lineage.traversal.derived_answer``) as ``Service.tree`` builds them, the two
stores' calls alternated, CPU seconds of this process (medians). Both answers are checked
equal first (whole tree, and cut at a few depths).

    PYTHONPATH=$PWD .venv/bin/python bench/bench_tree_ab.py --against /work/main
    PYTHONPATH=$PWD .venv/bin/python bench/bench_tree_ab.py --store /tmp/t.db --keep  # reuse
    PYTHONPATH=$PWD .venv/bin/python bench/bench_tree_ab.py --whole --against ../base

The other ``sqlite.py`` and ``sqltree.py`` are loaded under other module names and run on this
package's other modules (records, codec, traversal): what differs is the store's own code.
With ``--whole``, each checkout's whole package answers instead, ``Service.tree``'s way
(``Traversal.tree``), in child processes of its own (``PYTHONPATH`` the checkout), the two
alternated (order swapped every round), each process a warm-up tree then ``--trees`` timed
ones; the medians are of the processes' medians. The answers are not compared then.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gen_tree import generate

from lineage.storage.sqlite import SQLiteGraphStore
from lineage.traversal import derived_answer, paused_gc

BATCH = 5000


def build(path: Path, runs: int) -> str:
    """The store bench_graph.py measures: the warm-up tree, then ``runs``; the base's id."""
    warm = generate(40_000, seed=2, project="warm", run_prefix="w")
    tree = generate(runs, seed=0)
    gc.freeze()
    graph = SQLiteGraphStore(path)
    for t in (warm, tree):
        for start in range(0, len(t.steps), BATCH):
            steps = t.steps[start : start + BATCH]
            graph.import_records(
                runs=[s.run for s in steps],
                artifacts=t.artifacts if start == 0 else (),
                versions=[v for s in steps for v in s.outputs],
                edges=[e for s in steps for e in s.edges],
            )
    graph.close()
    gc.unfreeze()
    return tree.base


def other_module(root: Path, name: str) -> Any:
    """``lineage/storage/NAME.py`` of another checkout, as a module of its own."""
    spec = importlib.util.spec_from_file_location(
        f"other_{name}", root / "lineage" / "storage" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def other_store(root: Path) -> Any:
    """The other checkout's store, walking its tree with its own ``sqltree``."""
    module = other_module(root, "sqlite")
    module.sqltree = other_module(root, "sqltree")
    return module.SQLiteGraphStore


def child(path: Path, base: str, trees: int) -> None:
    """In a child process: this package's whole tree of ``base``, ``trees`` times, after one
    untimed; prints the CPU seconds and the page faults of each as JSON."""
    from lineage.traversal import Traversal

    walk = Traversal(SQLiteGraphStore(path))
    walk.tree(base, None)  # untimed: the first one
    cpu, faults = [], []
    for _ in range(trees):
        began, faulted = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        answer = walk.tree(base, None)
        cpu.append(time.process_time() - began)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faulted)
        del answer
    print(json.dumps({"cpu": cpu, "faults": faults, "load": os.getloadavg()[0]}))


def whole(path: Path, base: str, checkouts: dict[str, Path], rounds: int, trees: int) -> None:
    """Each checkout's whole package in child processes, alternated: CPU s medians."""
    cpu: dict[str, list[float]] = {name: [] for name in checkouts}
    faults: dict[str, list[float]] = {name: [] for name in checkouts}
    names = list(checkouts)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            env = {**os.environ, "PYTHONPATH": str(checkouts[name])}
            command = [sys.executable, __file__, "--child", str(path), base, str(trees)]
            ran = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            done = json.loads(ran.stdout)
            cpu[name].append(statistics.median(done["cpu"]))
            faults[name].append(statistics.median(done["faults"]))
            print(
                f"round {round_ + 1} {name}: CPU s {cpu[name][-1]:.3f}, "
                f"page faults {faults[name][-1]:,.0f}, load {done['load']:.1f}",
                flush=True,
            )
    other, this = (statistics.median(cpu[name]) for name in names)
    print(f"tree CPU s, median of {rounds} processes' medians of {trees} trees:", end=" ")
    print(f"other {other:.3f}, this {this:.3f}")
    print(f"page faults a tree: {statistics.median(faults[names[0]]):,.0f} other,", end=" ")
    print(f"{statistics.median(faults[names[1]]):,.0f} this")
    print(f"ratio this / other: {this / other:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, default=Path("/work/main"), help="a checkout")
    parser.add_argument("--store", type=Path, help="the store's file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="reuse --store if it exists")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--whole", action="store_true", help="whole packages, in processes")
    parser.add_argument("--trees", type=int, default=5, help="with --whole: trees a process")
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp()) / "tree.db"
    start = time.perf_counter()
    base = "ft/model:v0"
    if not (args.keep and path.exists()):
        base = build(path, args.runs)
    print(f"store {path} ({time.perf_counter() - start:.0f} s)", flush=True)
    if args.whole:
        here = Path(__file__).resolve().parent.parent
        whole(path, base, {"other": args.against, "this": here}, args.rounds, args.trees)
        if args.store is None:
            shutil.rmtree(path.parent)
        return
    stores = {"other": other_store(args.against)(path), "this": SQLiteGraphStore(path)}
    for depth in (0, 1, 5, 20, None):
        (a, at, acut), (b, bt, bcut) = (s.tree_rows(base, depth) for s in stores.values())
        assert a == b and sorted(at) == sorted(bt) and acut == bcut, depth
    print(f"same answers (the whole tree: {len(a):,} versions)", flush=True)
    cpu: dict[str, list[float]] = {name: [] for name in stores}
    for _ in range(args.rounds):
        for name, graph in stores.items():
            began = time.process_time()
            with paused_gc():
                versions, triples, cut = graph.tree_rows(base, None)
                answer = derived_answer(versions, triples, truncated=cut, root=base)
            cpu[name].append(time.process_time() - began)
            del answer, versions, triples
    other, this = (statistics.median(cpu[name]) for name in ("other", "this"))
    print(f"tree CPU s, median of {args.rounds}: {args.against} {other:.3f}, this {this:.3f}")
    print(f"ratio this / other: {this / other:.3f}")
    for graph in stores.values():
        graph.close()
    if args.store is None:
        shutil.rmtree(path.parent)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        main()
