"""The dashboard index's data (``_index_data``) on a store of projects of runs alone: median
wall and process CPU of 15 calls after one warm call. Run it from two worktrees alternately
against the same store to pair old and new code.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_index.py STORE BLOBS --load 300
    PYTHONPATH=$PWD .venv/bin/python bench/bench_index.py STORE BLOBS --label new
"""

from __future__ import annotations

import argparse
import statistics
import time

from lineage.records import RunRecord
from lineage.server import dashboard
from lineage.server.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("blobs")
    parser.add_argument("--load", type=int, help="first log this many projects of 3 runs")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    app = create_app(args.store, args.blobs)
    svc = app.state.lineage.service
    try:
        if args.load:
            for p in range(args.load):
                for r in range(3):
                    run = RunRecord(
                        id=f"r{p}-{r}", project=f"jobs-{p:04d}", name=f"n{r}", started_at=1.0 + r
                    )
                    svc.graph.create_run(run)
            print(f"loaded {len(svc.projects())} projects")
            return
        dashboard._index_data(svc)
        walls, cpus = [], []
        for _ in range(15):
            wall, cpu = time.perf_counter(), time.process_time()
            data = dashboard._index_data(svc)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        wall_ms, cpu_ms = statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3
        print(
            f"{args.label} {len(data['runs_only'])} projects of runs alone: "
            f"wall {wall_ms:.2f} ms, CPU {cpu_ms:.2f} ms"
        )
    finally:
        app.state.lineage.close()


if __name__ == "__main__":
    main()
