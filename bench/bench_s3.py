"""S3 client cost: boto3 as lineage uses it, plain boto3, and obstore, against one moto server.

Issue 5 asked for "boto3, or obstore for speed: measure". This measures, in one process, with
the same files and the same loopback S3 server (the tests' moto standalone server from
``tests/s3_server.py``, a separate process on 127.0.0.1):

- **put small**: ``--blobs`` files of 50 KiB (the first ones of ``bench/data``, see
  ``bench/gen_dataset.py``; random bytes if it is absent), ``--threads`` at a time;
- **get small**: the same objects read back whole, ``--threads`` at a time;
- **put large**: one ``--large-mib`` file, multipart in 8 MiB parts, ``--threads`` parts at
  a time.

Three clients do each step, each into a fresh bucket of its own:

- ``lineage``: ``S3BlobStore.put_files`` / ``get_bytes`` / ``put_files`` as lineage calls
  them. It hashes every file with BLAKE3 to name its key (twice for the large file: once to
  learn the digest, once as the bytes are sent) and asks which digests are missing (LIST)
  before it uploads;
- ``boto3``: the same botocore client (``store.client``, same config) with no hashing:
  ``put_object`` / ``get_object`` in a ``ThreadPoolExecutor`` of ``--threads``, and
  ``upload_file`` with the same TransferConfig (threshold 64 MiB, 8 MiB parts,
  ``--threads`` at a time) for the large file;
- ``obstore``: ``obstore.put`` / ``obstore.get(...).bytes()`` (the *sync* API) called from the
  same ``ThreadPoolExecutor``; the large file is ``obstore.put(store, key, Path,
  chunk_size=8 MiB, max_concurrency=--threads)``.

The small files are read in Python by each worker (``Path.read_bytes``) for all three. moto is
slow Python and does most of the work, so wall time mostly measures moto: the figure that
tells the clients apart is the *client process's* CPU time (``time.process_time``: all of
this process's threads, obstore's Rust runtime included; moto's process is not). Client order
rotates from round to round; medians over ``--rounds``; ratios are taken within a round.

obstore is not a lineage dependency. Install it into the venv for this benchmark only:

    .venv/bin/pip install obstore
    .venv/bin/python bench/bench_s3.py                     # 2,000 x 50 KiB, 256 MiB, 3 rounds
    .venv/bin/python bench/bench_s3.py --blobs 500 --large-mib 64 --rounds 1   # quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
KiB = 1 << 10
MiB = 1 << 20
PART = 8 * MiB
SMALL = 50 * KiB
CLIENTS = ("lineage", "boto3", "obstore")
STEPS = ("put small", "get small", "put large")

try:
    import obstore
    from obstore.store import S3Store
except ImportError:
    sys.exit(
        "bench_s3.py needs obstore, which is not a lineage dependency. Install it into the "
        "venv for this benchmark only:\n    .venv/bin/pip install obstore"
    )

sys.path.insert(0, str(REPO / "tests"))
from boto3.s3.transfer import TransferConfig  # noqa: E402
from s3_server import ENV, REGION, UNSET, S3Server  # noqa: E402

from lineage.storage.s3 import S3BlobStore  # noqa: E402


def small_files(count: int, scratch: Path) -> tuple[list[Path], str]:
    """``count`` 50 KiB files: bench/data's first ones by name, else random bytes."""
    found = (
        sorted(p for p in DATA.rglob("*.bin") if p.stat().st_size == SMALL) if DATA.is_dir() else []
    )
    if len(found) >= count:
        return found[:count], f"bench/data ({count} of its {SMALL // KiB} KiB files)"
    folder = scratch / "small"
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"{i:05d}.bin"
        path.write_bytes(os.urandom(SMALL))
        paths.append(path)
    return paths, f"random bytes ({count} files; bench/data has {len(found)})"


def large_file(mib: int, scratch: Path, name: str) -> Path:
    path = scratch / name
    with open(path, "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(MiB))
    return path


def measure(job: Callable[[], Any]) -> tuple[float, float, Any]:
    """(client CPU s, wall s, result) of ``job``."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = job()
    return time.process_time() - cpu, time.perf_counter() - wall, result


class Lineage:
    """S3BlobStore as lineage uses it: hash, ask what is missing, upload, check on the way."""

    def __init__(self, server: S3Server, bucket: str, threads: int) -> None:
        self.store = S3BlobStore(
            bucket, endpoint_url=server.endpoint_url, region=REGION, threads=threads
        )
        self.threads = threads

    def put_small(self, paths: list[Path]) -> list[str]:
        return [digest for digest, _ in self.store.put_files([(p, None) for p in paths])]

    def get_small(self, keys: list[str]) -> list[int]:
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(lambda d: len(self.store.get_bytes(d)), keys))

    def put_large(self, path: Path) -> tuple[int, str]:
        digest, size = self.store.put_files([(path, None)])[0]
        head = self.store.client.head_object(Bucket=self.store.bucket, Key=self.store.key(digest))
        return size, head["ETag"]


class Boto3:
    """The same botocore client, no hashing, no existence check."""

    def __init__(self, server: S3Server, bucket: str, threads: int) -> None:
        self.client = S3BlobStore(
            bucket, endpoint_url=server.endpoint_url, region=REGION, threads=threads
        ).client
        self.bucket, self.threads = bucket, threads
        self.transfer = TransferConfig(
            multipart_threshold=64 * MiB, multipart_chunksize=PART, max_concurrency=threads
        )

    def put_small(self, paths: list[Path]) -> list[str]:
        def put(path: Path) -> str:
            key = f"small/{path.parent.name}/{path.name}"
            self.client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
            return key

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(put, paths))

    def get_small(self, keys: list[str]) -> list[int]:
        def get(key: str) -> int:
            return len(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(get, keys))

    def put_large(self, path: Path) -> tuple[int, str]:
        self.client.upload_file(str(path), self.bucket, "large", Config=self.transfer)
        head = self.client.head_object(Bucket=self.bucket, Key="large")
        return head["ContentLength"], head["ETag"]


class Obstore:
    """obstore's sync API from the same thread pool."""

    def __init__(self, server: S3Server, bucket: str, threads: int) -> None:
        self.store = S3Store(
            bucket,
            endpoint=server.endpoint_url,
            region=REGION,
            access_key_id=ENV["AWS_ACCESS_KEY_ID"],
            secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"],
            session_token=ENV["AWS_SESSION_TOKEN"],
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )
        self.threads = threads

    def put_small(self, paths: list[Path]) -> list[str]:
        def put(path: Path) -> str:
            key = f"small/{path.parent.name}/{path.name}"
            obstore.put(self.store, key, path.read_bytes())
            return key

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(put, paths))

    def get_small(self, keys: list[str]) -> list[int]:
        def get(key: str) -> int:
            return len(bytes(obstore.get(self.store, key).bytes()))

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(get, keys))

    def put_large(self, path: Path) -> tuple[int, str]:
        obstore.put(self.store, "large", path, chunk_size=PART, max_concurrency=self.threads)
        head = obstore.head(self.store, "large")
        return head["size"], str(head["e_tag"])


KINDS: dict[str, Any] = {"lineage": Lineage, "boto3": Boto3, "obstore": Obstore}


def reset(server: S3Server) -> None:
    """Drop every bucket and object moto holds (it keeps them in memory)."""
    request = urllib.request.Request(f"{server.endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=60):
        pass


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def one_round(
    server: S3Server, label: str, order: list[str], small: list[Path], large: Path, threads: int
) -> dict[tuple[str, str], tuple[float, float]]:
    """{(step, client): (cpu s, wall s)} for one round, clients in ``order`` within each step."""
    result: dict[tuple[str, str], tuple[float, float]] = {}
    clients = {}
    for kind in order:
        bucket = server.create_bucket(f"bench-{kind}-{label}")
        clients[kind] = KINDS[kind](server, bucket, threads)
    keys: dict[str, list[str]] = {}
    for kind in order:
        cpu, wall, keys[kind] = measure(lambda c=clients[kind]: c.put_small(small))
        assert len(set(keys[kind])) == len(small), f"{kind}: {len(set(keys[kind]))} distinct keys"
        result["put small", kind] = cpu, wall
    for kind in order:
        cpu, wall, sizes = measure(lambda c=clients[kind], k=keys[kind]: c.get_small(k))
        assert sizes == [SMALL] * len(small), f"{kind}: wrong sizes read back"
        result["get small", kind] = cpu, wall
    for kind in order:
        cpu, wall, (size, etag) = measure(lambda c=clients[kind]: c.put_large(large))
        assert size == large.stat().st_size, f"{kind}: large object is {size} bytes"
        parts = -(-size // PART)  # a multipart ETag ends in -<number of parts>
        assert size < 64 * MiB or etag.strip('"').endswith(f"-{parts}"), f"{kind}: ETag {etag}"
        result["put large", kind] = cpu, wall
    reset(server)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blobs", type=int, default=2000, help="small files (50 KiB each)")
    parser.add_argument("--large-mib", type=int, default=256, help="size of the large file")
    parser.add_argument("--threads", type=int, default=8, help="concurrent requests, all clients")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    for key in UNSET:
        os.environ.pop(key, None)
    os.environ.update(ENV)
    start_load = uptime()
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp, S3Server() as server:
        scratch = Path(tmp)
        small, source = small_files(args.blobs, scratch)
        large = large_file(args.large_mib, scratch, "large.bin")
        for path in small:
            path.read_bytes()  # page cache warm for all three
        print(
            f"small: {source}; large: {large.stat().st_size:,} bytes random; threads {args.threads}"
        )
        print(f"moto {server.endpoint_url} (pid separate from this one, {os.getpid()})")
        print(f"start: {start_load}")
        # warm-up, untimed: imports, first connections, botocore's model loading
        one_round(
            server,
            "warm",
            list(CLIENTS),
            small[:50],
            large_file(16, scratch, "warm.bin"),
            args.threads,
        )
        rounds = []
        for n in range(args.rounds):
            order = list(CLIENTS[n % 3 :] + CLIENTS[: n % 3])
            rounds.append(one_round(server, str(n), order, small, large, args.threads))
            line = "  ".join(
                f"{step}: "
                + " ".join(f"{kind} {rounds[-1][step, kind][0]:.2f}" for kind in CLIENTS)
                for step in STEPS
            )
            print(f"round {n + 1} (order {', '.join(order)}) CPU s  {line}", flush=True)
    end_load = uptime()

    def med(step: str, kind: str, i: int) -> float:
        return statistics.median(r[step, kind][i] for r in rounds)

    def ratio(step: str, kind: str) -> float:
        return statistics.median(r[step, kind][0] / r[step, "boto3"][0] for r in rounds)

    print(f"\nend:   {end_load}")
    print(f"medians of {args.rounds} round(s); CPU = this process (client) only, moto excluded")
    print(
        f"{'step':<11}{'lineage CPU':>12}{'boto3 CPU':>10}{'obstore CPU':>12}"
        f"{'lineage wall':>13}{'boto3 wall':>11}{'obstore wall':>13}"
        f"{'lineage/boto3':>14}{'obstore/boto3':>14}"
    )
    for step in STEPS:
        print(
            f"{step:<11}{med(step, 'lineage', 0):>12.2f}{med(step, 'boto3', 0):>10.2f}"
            f"{med(step, 'obstore', 0):>12.2f}{med(step, 'lineage', 1):>13.2f}"
            f"{med(step, 'boto3', 1):>11.2f}{med(step, 'obstore', 1):>13.2f}"
            f"{ratio(step, 'lineage'):>13.2f}x{ratio(step, 'obstore'):>13.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
