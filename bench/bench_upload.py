"""Upload benchmark: the 1 GiB / 10,000-file dataset to a lineage server on loopback, against
logging it into the local blob store (the floor on this machine).

Both sides run the same SDK code (``lineage.init`` + ``Artifact.add_dir`` + ``log_artifact``);
only ``store`` differs: a fresh local directory, or ``http://127.0.0.1:PORT`` with a write
token, served by ``lineage server`` as a separate process whose blob store is a local
directory on the same disk. Each round, on a private copy of ``bench/data`` (so that the
one-file edits never touch the shared dataset):

1. first log into an empty store: local, then remote (the client's stat cache cold, as on a
   machine that never saw the files);
2. remote re-upload of the unchanged directory (stat cache warm);
3. one 50 KiB file rewritten, then re-logged: local, and remote from the same client (stat
   cache warm: one file hashed); then another file rewritten and uploaded by a second
   client whose stat cache is cold (every file hashed, one sent), as from another machine.

Bytes sent are ``HttpBlobStore.bytes_sent`` (file and manifest bytes the client PUT).
``os.sync()`` (untimed) before each step, so no step pays for another's writeback; the page
cache is warm. Figures are medians over ``--runs`` rounds; ratios are per round, then median.

    .venv/bin/python bench/gen_dataset.py
    .venv/bin/python bench/bench_upload.py [--data bench/data] [--runs 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import lineage
from lineage.client import Client
from lineage.server.app import open_service
from lineage.server.auth import create_token

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import free_port, process_server
from gen_dataset import DEFAULT_DIR, content, generate, layout

REPO = Path(__file__).resolve().parent.parent
LINEAGE = REPO / ".venv" / "bin" / "lineage"
# --diagnose: the same server with its blob store's flushes switched off, to show what making
# every PUT durable on its own costs (an fsync of the file and of its folder); one process
# only (--workers 1)
NO_SYNCFS = """
import os, sys
import lineage.storage.local
from lineage.server.serving import serve
lineage.storage.local._syncfs = lambda path: None
lineage.storage.local._fsync_dir = lambda path: None
os.fsync = lambda fd: None
serve(sys.argv[1], sys.argv[2], port=int(sys.argv[3]), workers=1)
"""


@dataclass
class Sample:
    wall: float
    cpu: float  # this process (the client, or the whole local log)
    server_cpu: float = 0.0
    sent: int = 0  # bytes the remote client PUT


@dataclass
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, key: str, sample: Sample) -> None:
        self.samples.setdefault(key, []).append(sample)

    def median(self, key: str, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples[key])

    def ratio(self, key: str, base: str) -> float:
        pairs = zip(self.samples[key], self.samples[base], strict=True)
        return statistics.median(a.wall / b.wall for a, b in pairs)


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_tree(pid: int | None) -> float:
    """User + system CPU seconds of a process and its live descendants (0 without one)."""
    if pid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def sent(url: str | None, token: str | None) -> int:
    if url is None:
        return 0
    total: int = Client.shared(url, token=token).blobs.bytes_sent  # type: ignore[attr-defined]
    return total


def timed(
    step: Callable[[], object],
    *,
    pid: int | None = None,
    url: str | None = None,
    token: str | None = None,
) -> Sample:
    os.sync()  # nobody's writeback in our time
    before = sent(url, token)  # opens the client here (in this directory), untimed
    server, cpu, start = cpu_tree(pid), cpu_self(), time.perf_counter()
    step()
    wall = time.perf_counter() - start
    return Sample(
        wall,
        cpu_self() - cpu,
        server_cpu=cpu_tree(pid) - server,
        sent=sent(url, token) - before,
    )


def log(store: str, data: Path, token: str | None = None) -> lineage.ArtifactVersion:
    """What a user writes: one run that logs the directory as an artifact."""
    with lineage.init(project="bench", job_type="upload", store=store, token=token) as run:
        artifact = lineage.Artifact("dataset", type="dataset")
        artifact.add_dir(data)
        return run.log_artifact(artifact)


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    """The remote client keeps its stat cache in ./.lineage: one directory a client."""
    path.mkdir(parents=True, exist_ok=True)
    saved = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(saved)


@contextmanager
def server(root: Path, workers: int, syncfs: bool = True) -> Iterator[tuple[str, int, list[str]]]:
    """``lineage server`` on fresh stores, as its own process; yield URL, pid, write tokens."""
    store, blobs = root / "store", root / "blobs"
    service = open_service(str(store), str(blobs))
    tokens = [create_token(service, "write", f"bench client {i}") for i in range(2)]
    service.graph.close()
    port = free_port()
    if syncfs:
        command = [str(LINEAGE), "--store", str(store), "--blobs", str(blobs), "server"]
        command += ["--port", str(port), "--workers", str(workers)]
    else:
        command = [sys.executable, "-c", NO_SYNCFS, str(store), str(blobs), str(port)]
    with process_server(command, root, port, root / "server.log") as (url, pid):
        yield url, pid, tokens


def edit(data: Path, rel: str, size: int, salt: int) -> None:
    """Rewrite one file with new bytes, as a user editing the dataset would (a second ago,
    so that the stat cache does not take it for a racy write)."""
    target = data / rel
    target.write_bytes(content(rel, size, salt=salt))
    os.utime(target, ns=(time.time_ns() - 10**9,) * 2)


def one_round(
    i: int, data: Path, scratch: Path, workers: int, res: Results, diagnose: bool
) -> None:
    small = [(rel, size) for rel, size in layout() if size < 1 << 20]
    (a, a_size), (b, b_size) = small[i], small[len(small) // 2 + i]
    root = scratch / f"round{i}"

    with chdir(root / "local"):
        store = str(root / "local" / "store")
        res.add("local: first log", timed(lambda: log(store, data)))
        edit(data, a, a_size, salt=i + 1)
        res.add("local: re-log, one file changed", timed(lambda: log(store, data)))
    for rel, size in ((a, a_size), (b, b_size)):
        edit(data, rel, size, salt=0)  # back to the generated bytes

    with server(root / "server", workers) as (url, pid, (token, other)):
        steps: list[tuple[str, str, Callable[[], object]]] = [
            ("remote: first upload", token, lambda: log(url, data, token)),
            ("remote: re-upload unchanged", token, lambda: log(url, data, token)),
            ("remote: one file changed", token, lambda: log(url, data, token)),
            ("remote: one file changed, cold cache", other, lambda: log(url, data, other)),
        ]
        for key, who, step in steps:
            if key == "remote: one file changed":
                edit(data, a, a_size, salt=i + 1)
            if key.endswith("cold cache"):
                edit(data, b, b_size, salt=i + 1)
            with chdir(root / f"client-{who[4:12]}"):
                res.add(key, timed(step, pid=pid, url=url, token=who))
    for rel, size in ((a, a_size), (b, b_size)):
        edit(data, rel, size, salt=0)
    if diagnose:
        nosync = server(root / "server-nosync", 1, syncfs=False)
        with nosync as (url, pid, (token, _)), chdir(root / "client-nosync"):
            step = lambda: log(url, data, token)  # noqa: E731
            res.add(
                "diagnose: first upload, no flushes", timed(step, pid=pid, url=url, token=token)
            )
    shutil.rmtree(root, ignore_errors=True)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    fs = subprocess.run(
        ["df", "--output=fstype", tempfile.gettempdir()], capture_output=True, text=True
    ).stdout.split()[-1]
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()} ({fs}), Python "
        f"{platform.python_version()}"
    )


def report(res: Results, args: argparse.Namespace, loads: list[float]) -> str:
    lines = [
        f"machine: {machine()}",
        f"{args.runs} rounds; server: `lineage server --workers {args.workers}` (SQLite + local "
        f"blobs), client in this process; load average {min(loads):.1f}..{max(loads):.1f}",
        "median wall s, CPU s of this process (client / local log) and of the server, bytes "
        "the client PUT; ratio = median over rounds of step / local first log",
        "",
        f"{'step':38s} {'wall s':>8s} {'cpu s':>7s} {'server s':>8s} {'sent':>12s} {'ratio':>7s}",
    ]
    for key in res.samples:
        wall, cpu = res.median(key, "wall"), res.median(key, "cpu")
        server, sent_bytes = res.median(key, "server_cpu"), res.median(key, "sent")
        ratio = res.ratio(key, "local: first log")
        lines.append(
            f"{key:38s} {wall:8.2f} {cpu:7.2f} {server:8.2f} {sent_bytes:12,.0f} {ratio:6.2f}x"
        )
    first = res.median("remote: first upload", "wall")
    lines += [
        "",
        f"remote first upload: {2**30 / first / 2**20:.0f} MiB/s, "
        f"{10_000 / first:,.0f} files/s; remote / local first log "
        f"{res.ratio('remote: first upload', 'local: first log'):.2f}x",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="also upload to a server whose blob store skips its flushes (one worker)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be positive")
    generate(args.data)
    scratch = Path(tempfile.mkdtemp(prefix="lineage-bench-upload-"))
    loads: list[float] = []
    try:
        data = scratch / "data"
        subprocess.run(["cp", "-r", str(args.data), str(data)], check=True)
        subprocess.run(f"find '{data}' -type f -exec cat {{}} + >/dev/null", shell=True, check=True)
        res = Results()
        for i in range(args.runs):
            print(f"round {i + 1}/{args.runs}", file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
            one_round(i, data, scratch, args.workers, res, args.diagnose)
            loads.append(os.getloadavg()[0])
        print(report(res, args, loads))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
