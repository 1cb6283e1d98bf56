"""Hash throughput: BLAKE3 (one thread, all threads) vs SHA-256 vs MD5, vs ``cat`` as the floor.

Three views, each the median of ``--runs`` runs, all in this one process/command:

1. in memory: one 256 MiB buffer, the pure cost of the hash;
2. the dataset's files, page cache warm, read in ``--chunk`` pieces and hashed (what ingest does);
3. command-line tools over the same files: ``cat >/dev/null`` (the read floor), ``sha256sum``,
   ``md5sum``, ``b3sum`` (each when installed).

    .venv/bin/python bench/gen_dataset.py
    .venv/bin/python bench/bench_hashing.py [--data bench/data] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import blake3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_dataset import DEFAULT_DIR

MIB = 1 << 20


def files_of(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hashers(chunk_threads: int) -> dict[str, Callable[[], object]]:
    return {
        "blake3 (1 thread)": lambda: blake3.blake3(),
        f"blake3 (max_threads={chunk_threads})": lambda: blake3.blake3(
            max_threads=blake3.blake3.AUTO
        ),
        "sha256 (hashlib)": hashlib.sha256,
        "md5 (hashlib)": hashlib.md5,
    }


def hash_files(paths: list[str], factory: Callable[[], object], chunk: int) -> int:
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    total = 0
    for path in paths:
        hasher = factory()
        with open(path, "rb", buffering=0) as file:
            while n := file.readinto(buffer):
                hasher.update(view[:n])  # type: ignore[attr-defined]
                total += n
        hasher.hexdigest()  # type: ignore[attr-defined]
    return total


def read_files(paths: list[str], chunk: int) -> int:
    buffer = bytearray(chunk)
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as file:
            while n := file.readinto(buffer):
                total += n
    return total


def tool(argv: list[str], paths: list[str]) -> Callable[[], object]:
    def run() -> None:
        # xargs-style batches keep the command line short and the process count low
        for start in range(0, len(paths), 2000):
            subprocess.run(
                [*argv, *paths[start : start + 2000]], check=True, stdout=subprocess.DEVNULL
            )

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=MIB, help="read size in bytes")
    args = parser.parse_args(argv)
    threads = os.cpu_count() or 1

    rows: list[tuple[str, str, float, float]] = []  # (group, name, seconds, bytes)

    buffer = os.urandom(256 * MIB)
    for name, factory in hashers(threads).items():

        def in_memory(make: Callable[[], object] = factory, data: bytes = buffer) -> None:
            make().update(data)  # type: ignore[attr-defined]

        rows.append(("memory, 256 MiB", name, median_time(in_memory, args.runs), len(buffer)))
    del buffer

    paths = files_of(args.data)
    if not paths:
        print(f"no files in {args.data}: run bench/gen_dataset.py first", file=sys.stderr)
        return 2
    size = read_files(paths, args.chunk)  # warm the page cache
    group = f"files, {len(paths)} ({size / 2**30:.2f} GiB, warm)"
    rows.append(
        (
            group,
            "read only (python)",
            median_time(lambda: read_files(paths, args.chunk), args.runs),
            size,
        )
    )
    for name, factory in hashers(threads).items():
        seconds = median_time(lambda f=factory: hash_files(paths, f, args.chunk), args.runs)  # type: ignore[misc]
        rows.append((group, name, seconds, size))

    group = "command-line tools, same files"
    for name, command in [
        ("cat >/dev/null", ["cat"]),
        ("b3sum", ["b3sum"]),
        ("b3sum --num-threads=1", ["b3sum", "--num-threads=1"]),
        ("sha256sum", ["sha256sum"]),
        ("md5sum", ["md5sum"]),
    ]:
        if shutil.which(command[0]) is None:
            rows.append((group, f"{name} (not installed)", float("nan"), size))
            continue
        rows.append((group, name, median_time(tool(command, paths), args.runs), size))

    cat = next(s for g, n, s, _ in rows if n == "cat >/dev/null")
    print(f"median of {args.runs} runs; ratio = time / time of `cat >/dev/null` on the same files")
    current = ""
    for group, name, seconds, nbytes in rows:
        if group != current:
            print(f"\n{group}")
            print(f"  {'':38s} {'seconds':>8s} {'GB/s':>7s} {'vs cat':>7s}")
            current = group
        rate = nbytes / seconds / 1e9 if seconds == seconds else float("nan")
        print(f"  {name:38s} {seconds:8.3f} {rate:7.2f} {seconds / cat:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
