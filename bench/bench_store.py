"""The parts of ingest and download, one at a time, to choose their settings by numbers.

Each figure is the median of ``--runs`` rounds in this one process; rounds interleave the
variants so that a noisy neighbour hits them all alike.

- ``LocalBlobStore.put_files`` of the whole dataset: 1, 2, 3, 4 threads; read chunk 256 KiB,
  1 MiB, 4 MiB; with and without ``syncfs``; against ``cp -r`` in the same round.
- ``download()`` into an empty directory: 1 thread vs the default.
- The per-file costs of a re-log: walking the directory (``files.walk`` vs a plain
  ``os.scandir`` walk), ``stat`` of every file, the stat-cache lookup, ``missing()`` for
  10,000 digests, writing and reading a 10,000-entry manifest.

    .venv/bin/python bench/bench_store.py [--data bench/data] [--scratch bench/out] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import lineage
import lineage.download
import lineage.files
import lineage.hashing
import lineage.manifest
import lineage.storage.local
from lineage.statcache import stat_key
from lineage.storage.local import LocalBlobStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import Sample, log, no_syncfs, remove, scandir_walk, settle, timed
from gen_dataset import DEFAULT_DIR, generate

BENCH = Path(__file__).resolve().parent


@contextlib.contextmanager
def chunk(size: int) -> Iterator[None]:
    saved = lineage.hashing.CHUNK
    lineage.hashing.CHUNK = size
    try:
        yield
    finally:
        lineage.hashing.CHUNK = saved


@contextlib.contextmanager
def download_threads(n: int) -> Iterator[None]:
    saved = lineage.download.THREADS
    lineage.download.THREADS = n
    try:
        yield
    finally:
        lineage.download.THREADS = saved


def micro(fn: Callable[[], object], runs: int = 9) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--scratch", type=Path, default=BENCH / "out")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts-only", action="store_true", help="only the per-file costs")
    args = parser.parse_args(argv)
    data, scratch = args.data.resolve(), args.scratch.resolve()
    generate(data)
    scratch.mkdir(parents=True, exist_ok=True)
    subprocess.run(f"find '{data}' -type f -exec cat {{}} + >/dev/null", shell=True, check=True)
    files = [source for _, source in scandir_walk(data)]
    items: list[tuple[Path, str | None]] = [(path, None) for path in files]
    default = LocalBlobStore(scratch / "probe")._threads
    remove(scratch / "probe")

    target: list[Path] = []  # where the variant being timed writes: a new folder each time

    def fresh() -> Path:
        target.append(scratch / "work" / str(len(target)))
        target[-1].parent.mkdir(exist_ok=True)
        return target[-1]

    def put(threads: int) -> Callable[[], object]:
        return lambda: LocalBlobStore(fresh(), threads=threads).put_files(items)

    variants: dict[str, Callable[[], Sample]] = {
        "cp -r": lambda: timed(
            lambda: subprocess.run(["cp", "-r", str(data), str(fresh())], check=True)
        ),
    }
    for threads in (1, 2, 3, 4):
        variants[f"put_files, {threads} threads"] = lambda t=threads: timed(put(t))  # type: ignore[misc]
    for size in (256 << 10, 4 << 20):

        def with_chunk(size: int = size) -> Sample:
            with chunk(size):
                return timed(put(default))

        variants[f"put_files, chunk {size >> 10} KiB"] = with_chunk

    def without_syncfs() -> Sample:
        with no_syncfs():
            return timed(put(default))

    variants["put_files, no syncfs"] = without_syncfs

    # the parts of a re-log, on a store holding the dataset
    store = scratch / "dlstore"
    remove(store)
    version = log(store, data)
    client = version._client
    blobs, cache = client.blobs, client.cache
    manifest = version.manifest()
    entries = list(manifest)
    digests = list(manifest.blob_digests())
    keys = [(str(path), stat_key(os.stat(path))) for path in files]
    assert isinstance(blobs, LocalBlobStore)
    parts = {
        "walk: files.walk": lambda: lineage.files.walk(data),
        "walk: os.scandir (same result)": lambda: scandir_walk(data),
        "stat every file": lambda: [os.stat(path) for path in files],
        "stat-cache lookup, 10k": lambda: cache.lookup(keys),
        "missing(), 10k: folder listings": lambda: blobs.missing(digests),
        "missing(), 10k: a stat each": lambda: [os.path.isfile(blobs._path(d)) for d in digests],
        "write_manifest, 10k (pages present)": lambda: lineage.manifest.write_manifest(
            blobs, entries
        ),
        "read_manifest, 10k (after write)": lambda: lineage.manifest.read_manifest(
            blobs, manifest.digest or ""
        ),
    }
    assert lineage.files.walk(data) == scandir_walk(data)
    part_times = {name: micro(fn) for name, fn in parts.items()}
    lineage.manifest._written = lineage.manifest._Written(limit=0)
    part_times["read_manifest, 10k (from disk)"] = micro(
        lambda: lineage.manifest.read_manifest(blobs, manifest.digest or "")
    )
    print(f"{'per re-log, 10,000 files':36s} {'ms':>8s}")
    for name, seconds in part_times.items():
        print(f"{name:36s} {seconds * 1e3:8.1f}", flush=True)
    if args.parts_only:
        remove(store)
        return 0

    results: dict[str, list[Sample]] = {}
    # download threads, from one logged version
    downloads: dict[str, list[Sample]] = {
        "download, 1 thread": [],
        f"download, {lineage.download.THREADS} threads": [],
    }
    for _ in range(args.runs):
        for name in downloads:
            threads = 1 if "1 thread" in name else lineage.download.THREADS
            with download_threads(threads):
                downloads[name].append(timed(lambda: version.download(fresh())))
        remove(scratch / "work")
        settle(scratch)
    results.update(downloads)
    remove(store)

    results.update({name: [] for name in variants})
    remove(scratch / "work")
    settle(scratch)
    for i in range(args.runs):
        print(f"round {i + 1}/{args.runs}", file=sys.stderr, flush=True)
        order = list(variants.items())
        for name, run in order if i % 2 == 0 else order[::-1]:
            results[name].append(run())
        remove(scratch / "work")
        settle(scratch)

    print(
        f"{args.runs} rounds, median wall seconds (CPU seconds); ratio vs cp -r in the same round"
    )
    print(f"\n{'whole dataset':36s} {'wall s':>8s} {'cpu s':>7s} {'vs cp -r':>9s}")
    cp = results["cp -r"]
    for name, samples in results.items():
        wall = statistics.median(s.wall for s in samples)
        cpu = statistics.median(s.cpu for s in samples)
        if len(samples) == len(cp) and name.startswith(("put", "cp")):
            pairs = zip(samples, cp, strict=True)
            ratio = f"{statistics.median(s.wall / c.wall for s, c in pairs):8.2f}x"
        else:
            ratio = ""
        print(f"{name:36s} {wall:8.3f} {cpu:7.2f} {ratio:>9s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
