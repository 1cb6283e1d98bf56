"""commit_version into a fresh SQLite store: per-commit process CPU and wall time.

Each version carries an event time (an OpenLineage version), so every commit also keeps the
artifact's created_at (its earliest version's made time). Run it from two worktrees in turn
to pair old and new code::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_commit_created.py 3000
"""

from __future__ import annotations

import sys
import tempfile
import time

from lineage.records import RunRecord
from lineage.storage import open_graph
from lineage.storage.graph import NewVersion


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        graph = open_graph(directory)
        graph.create_run(RunRecord(id="r", project="p", name="n", started_at=1.0))
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(n):
            graph.commit_version(
                NewVersion(
                    project="p", name=f"a{i % 10}", type="dataset", digest=f"{i:064x}",
                    size=1, file_count=1, run_id="r", at=time.time(), event_at=1.7e9 - i,
                )
            )  # fmt: skip
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"cpu {cpu * 1000 / n:.3f} ms/commit  wall {wall * 1000 / n:.3f} ms/commit")
        graph.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
