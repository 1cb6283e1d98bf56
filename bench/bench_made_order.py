"""Versions ordered by when they were made (``created``) against by when they were stored
(``stored``): the first page of ``find_versions`` on one SQLite store, in one process.

``created`` is ``COALESCE(event_at, created_at)`` (lineage/made.py), walked by the
expression index ``versions_made``; ``stored`` is ``created_at``, walked by
``versions_created``. Half the versions carry an OpenLineage event time. The figure is the
ratio of the two medians (made / stored): about 1. ``--drop-made-index`` drops the index
first (before the import, whose time is printed): then a first page of a broad filter sorts
every matching row (what lineage did before the index), and the import shows what the index
costs the writes.

    .venv/bin/python bench/bench_made_order.py                 # 100,000 versions
    .venv/bin/python bench/bench_made_order.py --versions 1000000
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from lineage.filters import Filter, parse, parse_order
from lineage.records import VersionRecord
from lineage.storage.sqlite import SQLiteGraphStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--drop-made-index",
        action="store_true",
        help="Drop the index on the made time first (the store without it).",
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}; {args.versions:,} versions, 1,000 artifacts")
    store = SQLiteGraphStore(Path(tempfile.mkdtemp()) / "graph.db")
    versions = [
        VersionRecord(
            project="p",
            name=f"a{i % 1000}",
            type="dataset",
            index=i // 1000,
            digest=f"{i:064x}",
            size=1,
            file_count=1,
            created_at=1.7e9 + i,
            event_at=1.6e9 + i if i % 2 else None,
        )
        for i in range(args.versions)
    ]
    if args.drop_made_index:  # before the import: what each write saves is in its time
        store._db().execute("DROP INDEX versions_made")
    began = time.perf_counter()
    for start in range(0, len(versions), 20_000):
        store.import_records(versions=versions[start : start + 20_000])
    print(f"import of {len(versions):,} versions: {time.perf_counter() - began:.2f} s")
    filters: dict[str, Filter | None] = {"none": None, "type": parse("type = dataset", "versions")}
    for label, where in filters.items():
        medians = {}
        for order in ("created", "-created", "stored", "-stored"):
            parsed = parse_order(order, "versions")
            store.find_versions(None, where, parsed, limit=50)  # warm-up
            times = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                store.find_versions(None, where, parsed, limit=50)
                times.append(time.perf_counter() - began)
            medians[order] = statistics.median(times) * 1000
            print(f"filter {label:5} order {order:9} first 50: median {medians[order]:8.2f} ms")
        for way in ("", "-"):
            ratio = medians[way + "created"] / medians[way + "stored"]
            print(f"filter {label:5} {way or '+'}created / {way or '+'}stored: x{ratio:,.0f}")
    store.close()


if __name__ == "__main__":
    main()
