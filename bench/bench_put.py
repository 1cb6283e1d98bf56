"""What one durable blob costs the server: ``LocalBlobStore.put_stream`` made durable by
``fsync`` of its file and folder (now), against two ``syncfs`` of the whole filesystem (before).

Each server PUT is one ``put_stream``. This stores ``--blobs`` distinct 50 KiB blobs from
``--threads`` threads (the server's worker threads, one a concurrent upload) into a fresh
store, with each scheme in turn, alternating for ``--runs`` rounds; then the same while
another process writes a file as fast as it can without syncing it (another tenant of the
disk, ``--tenant`` MiB/s: its dirty pages are what ``syncfs`` must also wait for). Medians.

    .venv/bin/python bench/bench_put.py [--blobs 2000] [--threads 8] [--runs 5] [--tenant 32]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from lineage.hashing import Hasher
from lineage.storage.local import LocalBlobStore

SIZE = 50 * 1024
# another tenant: writes MiB/s in 8 blocks a second to one file, never syncing, rewinding at
# 512 MiB: a job writing checkpoints or logs beside the server
WRITER = """
import os, sys, time
block = os.urandom(int(sys.argv[2]) << 17)
with open(sys.argv[1], "wb", buffering=0) as out:
    while True:
        for _ in range(512 * 8 // int(sys.argv[2])):
            out.write(block)
            time.sleep(0.125)
        out.seek(0)
"""


def put_with_syncfs(store: LocalBlobStore, data: bytes) -> None:
    """put_stream as it was: the temporary file unsynced, then ``_publish`` (two syncfs)."""
    digest = Hasher(data).hexdigest()
    fd, temp = store._create_temp()
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        os.fchmod(out.fileno(), 0o444)
    store._publish([(temp, digest)])


def put_with_fsync(store: LocalBlobStore, data: bytes) -> None:
    store.put_stream(io.BytesIO(data))


SCHEMES: dict[str, Callable[[LocalBlobStore, bytes], None]] = {
    "two syncfs (before)": put_with_syncfs,
    "fsync file + folder (now)": put_with_fsync,
}


def blobs(count: int, salt: int) -> list[bytes]:
    base = os.urandom(SIZE)
    return [f"{salt}:{i}:".encode() + base[: SIZE - 16] for i in range(count)]


def one(
    scheme: Callable[[LocalBlobStore, bytes], None], root: Path, items: list[bytes], threads: int
) -> float:
    store = LocalBlobStore(root)
    os.sync()
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda data: scheme(store, data), items))
    wall = time.perf_counter() - start
    shutil.rmtree(root)
    return wall


@contextmanager
def tenant(scratch: Path, rate: int) -> Iterator[None]:
    if not rate:
        yield
        return
    command = [sys.executable, "-c", WRITER, str(scratch / "tenant.bin"), str(rate)]
    process = subprocess.Popen(command)
    time.sleep(1)  # let it build up dirty pages
    try:
        yield
    finally:
        process.kill()
        process.wait()
        (scratch / "tenant.bin").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blobs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tenant", type=int, default=32, help="the other writer's MiB/s")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="lineage-bench-put-"))
    loads = [os.getloadavg()[0]]
    print(
        f"{args.blobs} blobs of {SIZE // 1024} KiB, {args.threads} threads, {args.runs} rounds"
        f" (median), in {scratch}"
    )
    try:
        for busy in (0, args.tenant):
            walls: dict[str, list[float]] = {name: [] for name in SCHEMES}
            with tenant(scratch, busy):
                for i in range(args.runs):
                    for name, scheme in SCHEMES.items():
                        items = blobs(args.blobs, i)
                        walls[name].append(one(scheme, scratch / "store", items, args.threads))
            loads.append(os.getloadavg()[0])
            label = f"another writing {busy} MiB/s" if busy else "quiet disk"
            for name, values in walls.items():
                median = statistics.median(values)
                print(f"{label:24s} {name:26s} {median:7.2f} s  {args.blobs / median:7.0f} blobs/s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average {min(loads):.1f}..{max(loads):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
