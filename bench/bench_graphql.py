"""GraphQL execution in process: bench_server.py's documents, without HTTP.

On the same 10,000-run tree and the same random start nodes as ``bench_server.py``, each
document goes through ``schema.execute`` ``--calls`` times in a row (after 20 to warm up),
then the service call it stands for as often: min and median wall-clock ms, and median CPU
ms (this process, the traversal's worker thread included). Run it under two versions of the
code, in turn, to compare them (``PYTHONPATH`` picks the version; the script is the same)::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_graphql.py            # ~20 s
    PYTHONPATH=/path/to/before .venv/bin/python bench/bench_graphql.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_server import Query, load_tree, queries
from gen_tree import generate

import lineage
from lineage.server.graphql import Context, build_schema
from lineage.service import Service
from lineage.storage.local import LocalBlobStore
from lineage.storage.sqlite import SQLiteGraphStore


async def timed(service: Service, query: Query, calls: int) -> str:
    schema = build_schema()

    async def once(variables: dict[str, object]) -> None:
        result = await schema.execute(
            query.document, variable_values=variables, context_value=Context(service=service)
        )
        assert not result.errors, result.errors

    for variables in query.variables[:20]:
        await once(variables)
    walls, cpus = [], []
    for i in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        await once(query.variables[i % len(query.variables)])
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    floor = []
    for i in range(calls):
        wall = time.perf_counter()
        query.floor(service, query.variables[i % len(query.variables)])
        floor.append(time.perf_counter() - wall)
    return (
        f"{query.name:20} GraphQL min {1000 * min(walls):6.3f} median "
        f"{1000 * statistics.median(walls):6.3f} cpu {1000 * statistics.median(cpus):6.3f}"
        f" | call min {1000 * min(floor):6.3f} median {1000 * statistics.median(floor):6.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    tree = generate(args.runs, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="lineage-bench-graphql-") as scratch:
        db = Path(scratch) / "lineage.db"
        load_tree(tree, db)
        graph = SQLiteGraphStore(db)
        service = Service(graph, LocalBlobStore(Path(scratch) / "blobs"))
        print(f"lineage from {Path(lineage.__file__).parent}; load {os.getloadavg()[0]:.2f}")
        for query in queries(tree, args.seed):
            print(asyncio.run(timed(service, query, args.calls)))
        print(f"ms; {args.calls} calls each; load {os.getloadavg()[0]:.2f}")
        graph.close()


if __name__ == "__main__":
    main()
