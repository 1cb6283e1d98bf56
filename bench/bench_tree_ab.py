"""The SQLite derivation tree, this package against another ``lineage/storage/sqlite.py``, in
one process: the whole tree of the base of a 100,000-run store (``bench/gen_tree.py``, the
store ``bench_graph.py`` measures, with its 40,000-run warm-up project), ``tree_rows`` and
the answer (``lineage.traversal.derived_answer``) as ``Service.tree`` builds them, the two
stores' calls alternated, CPU seconds of this process (medians). Both answers are checked
equal first (whole tree, and cut at a few depths).

    PYTHONPATH=$PWD .venv/bin/python bench/bench_tree_ab.py --against /work/main
    PYTHONPATH=$PWD .venv/bin/python bench/bench_tree_ab.py --store /tmp/t.db --keep  # reuse

The other ``sqlite.py`` and ``sqltree.py`` are loaded under other module names and run on this
package's other modules (records, codec, traversal): what differs is the store's own code.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import shutil
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, default=Path("/work/main"), help="a checkout")
    parser.add_argument("--store", type=Path, help="the store's file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="reuse --store if it exists")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp()) / "tree.db"
    start = time.perf_counter()
    base = "ft/model:v0"
    if not (args.keep and path.exists()):
        base = build(path, args.runs)
    print(f"store {path} ({time.perf_counter() - start:.0f} s)", flush=True)
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
    sys.exit(main())
