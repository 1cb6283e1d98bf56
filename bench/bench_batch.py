"""Many small files to a lineage server: two checkouts of lineage, paired and alternated.

Each round, for each checkout (in turn, the order swapped every round): a fresh store served
by that checkout's ``lineage server --workers 1`` on loopback, then that checkout's SDK in a
child process logs one dataset of ``--files`` small files (``lineage.init`` + ``add_dir`` +
``log_artifact``, a cold stat cache). Timed: the client's wall and CPU seconds for the log,
and the server's CPU seconds over it (``/proc/<pid>/stat``). Medians over ``--rounds``.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_batch.py /work/wt/base-x /work/wt/mine \\
        [--files 10000] [--size 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import free_port, process_server

CLIENT = """
import json, os, resource, sys, time
import lineage
from lineage.client import Client
url, token, data = sys.argv[1:]
started, cpu = time.perf_counter(), time.process_time()
with lineage.init(project="p", store=url, token=token) as run:
    art = lineage.Artifact("ds", type="dataset")
    art.add_dir(data)
    run.log_artifact(art)
wall, cpu = time.perf_counter() - started, time.process_time() - cpu
sent = Client.shared(url, token=token).blobs.bytes_sent
print(json.dumps({"wall": wall, "cpu": cpu, "sent": sent}))
"""
TOKEN = """
import sys
from lineage.server.app import open_service
from lineage.server.auth import create_token
service = open_service(sys.argv[1], sys.argv[2])
print(create_token(service, "write", "bench"))
service.graph.close()
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def once(repo: Path, data: Path, root: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    store, blobs = str(root / "store"), str(root / "blobs")
    python = str(repo / ".venv" / "bin" / "python")
    token = subprocess.run(
        [python, "-c", TOKEN, store, blobs], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    command = [str(repo / ".venv" / "bin" / "lineage"), "--store", store, "--blobs", blobs]
    command += ["server", "--port", str(port), "--workers", "1"]
    with process_server(command, root, port, root / "server.log", env=env) as (url, pid):
        before = cpu_seconds(pid)
        out = subprocess.run(
            [python, "-c", CLIENT, url, token, str(data)],
            env=env,
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        result["server_cpu"] = cpu_seconds(pid) - before
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("repos", nargs=2, type=Path, help="two checkouts: before, after")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[Path, list[dict[str, float]]] = {repo: [] for repo in args.repos}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        data = Path(tmp) / "data"
        for i in range(args.files):
            path = data / f"part-{i // 100:03d}" / f"{i:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((f"{i:016d}".encode() * (args.size // 16 + 1))[: args.size])
        for n in range(args.rounds):
            order = args.repos if n % 2 == 0 else args.repos[::-1]
            for repo in order:
                root = Path(tempfile.mkdtemp(dir=tmp))
                got = once(repo, data, root)
                results[repo].append(got)
                print(f"round {n + 1} {repo.name}: {got}  load {os.getloadavg()[0]:.1f}")
    print(f"\n{args.files} files of {args.size} bytes, medians of {args.rounds} rounds")
    print(f"{'checkout':28} {'wall s':>8} {'cpu s':>8} {'server cpu s':>13} {'sent':>12}")
    for repo, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(
            f"{repo.name:28} {med['wall']:8.2f} {med['cpu']:8.2f} "
            f"{med['server_cpu']:13.2f} {int(med['sent']):12,}"
        )


if __name__ == "__main__":
    main()
