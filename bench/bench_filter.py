"""Filter benchmark: ``find_runs`` on a 100,000-run store, SQLite and Neo4j, against a full
scan in Python (``lineage.filters.matches`` over the same records, held in memory).

The store is ``bench/gen_tree.py``'s fine-tuning tree (the one ``bench_graph.py`` measures),
ingested with ``import_records``. Fine-tuning runs have ``config.lr`` in {1e-3 .. 1e-6} and
every run but the first a ``summary.loss``. For each filter: the median and p95 of
``--repeat`` calls after one untimed warm-up (the server plans a query text once), the
answer checked against the scan's. The scan's median is measured the same way in the same
process; the ratio is scan / store.

    .venv/bin/python bench/bench_filter.py                     # 100,000 runs, Neo4j started
    .venv/bin/python bench/bench_filter.py --runs 10000 --neo4j bolt://127.0.0.1:7687  # WIPES it
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_graph import BATCH, Neo4jServer, batches
from gen_tree import generate

from lineage.filters import matches, order_key, parse, parse_order
from lineage.records import RunRecord
from lineage.storage.graph import GraphStore
from lineage.storage.sqlite import SQLiteGraphStore

# (label, filter, order, limit): a page of a broad filter, and whole answers of narrow ones
CASES = [
    ("config key, first page", "config.lr < 1e-4", "created", 50),
    ("config key, all 1e-6", "config.lr = 1e-6 and summary.loss < 0.05", "created", None),
    ("config + tag/state", "config.lr <= 1e-5 and state = finished and job_type = finetune",
     "-summary.loss", 20),
    ("no match", "config.lr > 1", "created", None),
]  # fmt: skip
GOAL_MS = 100.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    fn()  # warm-up: plan, caches
    times = []
    answer = None
    for _ in range(repeat):
        start = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - start)
    return times, answer


def scan(runs: list[RunRecord], text: str, order_by: str, limit: int | None) -> list[str]:
    where = parse(text, "runs")
    order = parse_order(order_by, "runs")
    found = [r for r in runs if matches(where, r)]
    found.sort(key=lambda r: (*order_key(order, r), r.id), reverse=order.descending)
    return [r.id for r in (found if limit is None else found[:limit])]


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.1f}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--neo4j", help="a Neo4j to use (WIPED); default: start one")
    parser.add_argument("--no-neo4j", action="store_true")
    parser.add_argument("--heap", default="1g")
    args = parser.parse_args(argv)

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load {os.getloadavg()}")
    tree = generate(args.runs, seed=0)
    parts = batches(tree, BATCH)
    runs = [r for b in parts for r in b.runs]
    print(f"{len(runs)} runs ({args.runs} fine-tuning), {sum(len(b.versions) for b in parts)} "
          "versions")  # fmt: skip

    results: list[tuple[str, str, list[float], int]] = []
    for label, text, order_by, limit in CASES:
        times, want = timed(lambda t=text, o=order_by, n=limit: scan(runs, t, o, n), args.repeat)
        results.append(("python scan", label, times, len(want)))

    with tempfile.TemporaryDirectory() as scratch:
        stores: list[tuple[str, Callable[[], GraphStore]]] = [
            ("sqlite", lambda: SQLiteGraphStore(Path(scratch) / "store" / "graph.db"))
        ]
        server = Neo4jServer(args.neo4j, args.neo4j is None, args.heap, None, Path(scratch))
        if not args.no_neo4j:
            stores.append(("neo4j", lambda: server.open(args.runs)))
        for name, open_store in stores:
            graph = open_store()
            started = time.perf_counter()
            for batch in parts:
                graph.import_records(
                    runs=batch.runs, artifacts=batch.artifacts, versions=batch.versions,
                    edges=batch.edges,
                )  # fmt: skip
            print(f"{name}: ingested in {time.perf_counter() - started:.1f} s")
            for label, text, order_by, limit in CASES:
                where, order = parse(text, "runs"), parse_order(order_by, "runs")
                times, got = timed(
                    lambda g=graph, w=where, o=order, n=limit: g.find_runs(None, w, o, limit=n),
                    args.repeat,
                )
                want = scan(runs, text, order_by, limit)
                if [r.id for r in got] != want:
                    print(f"  WRONG ANSWER for {text!r} on {name}", file=sys.stderr)
                    return 1
                results.append((name, label, times, len(got)))
            graph.close()
            server.close()

    print(f"\nload after: {os.getloadavg()}")
    print(f"{'subject':<12} {'case':<24} {'median ms':>9} {'p95 ms':>8} {'rows':>6} {'scan/x':>7}")
    scans = {label: statistics.median(t) for s, label, t, _ in results if s == "python scan"}
    for subject, label, times, rows in results:
        ratio = scans[label] / statistics.median(times)
        goal = (
            ""
            if subject == "python scan" or statistics.median(times) * 1000 < GOAL_MS
            else "  OVER"
        )
        print(
            f"{subject:<12} {label:<24} {ms(times):>9} {p95(times):8.1f} {rows:>6} "
            f"{ratio:7.1f}{goal}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
