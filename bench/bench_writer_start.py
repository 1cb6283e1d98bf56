"""The CPU of the server's OpenLineage writer process from its start to its first event
stored, started as :class:`lineage.openlineage.writer.ProcessWriter` starts it (a SQLite
store made beforehand, as the server makes it).

    PYTHONPATH=$PWD .venv/bin/python bench/bench_writer_start.py [--rounds 7] [-- PYTHON_FLAGS]

Prints each start's CPU (user + system, from ``wait4``) and the median. Extra flags after
``--`` go to the child's interpreter (``-X importtime``, ``-m cProfile -o FILE``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from lineage.framing import frame, frames
from lineage.server.app import open_service


def _answer(sock: socket.socket, buffer: bytearray) -> object:
    while True:
        found = list(frames(buffer))
        if found:
            return found[0]
        data = sock.recv(1 << 16)
        if not data:
            raise SystemExit("the writer process closed its socket")
        buffer += data


EVENT = {
    "eventType": "START",
    "eventTime": "2024-05-01T10:00:00Z",
    "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark",
    "job": {"namespace": "bench", "name": "etl.load"},
    "outputs": [{"namespace": "s3://lake", "name": "clean/orders"}],
}


def start_and_store(store: str, blobs: str, flags: list[str]) -> tuple[float, float, str]:
    """Start a writer process over ``store`` (which exists), have it store one event, close
    it: (its CPU seconds, wall seconds to the event stored, what it wrote on stderr)."""
    event = {**EVENT, "run": {"runId": str(uuid.uuid4())}}
    ours, theirs = socket.socketpair()
    started = time.perf_counter()
    with ours, tempfile.TemporaryFile() as err:
        command = [sys.executable, *flags, "-m", "lineage.openlineage.writer"]
        child = subprocess.Popen(
            [*command, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stderr=err,
        )
        theirs.close()
        buffer = bytearray()
        ours.sendall(frame((store, blobs)))
        assert _answer(ours, buffer) == "ready"
        ours.sendall(frame([(1, event, None)]))
        assert _answer(ours, buffer) == [(1, None)]  # stored
        wall = time.perf_counter() - started
        ours.close()  # the child reads the end and exits
        _, status, usage = os.wait4(child.pid, 0)  # its CPU: what Popen.wait does not tell
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        said = err.read().decode(errors="replace")
    assert child.returncode == 0, said[-2000:]
    return usage.ru_utime + usage.ru_stime, wall, said


def one_start(flags: list[str]) -> tuple[float, float, str]:
    """:func:`start_and_store` on a new store."""
    home = Path(tempfile.mkdtemp(prefix="writer-start-"))
    try:
        store, blobs = str(home / "store"), str(home / "blobs")
        open_service(store, blobs).graph.close()
        return start_and_store(store, blobs, flags)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("flags", nargs="*")
    args = parser.parse_args()
    cpus = []
    for _ in range(args.rounds):
        cpu, wall, said = one_start(list(args.flags))
        sys.stderr.write(said)  # what -X importtime says, for one
        cpus.append(cpu)
        print(f"child CPU {cpu * 1000:.0f} ms, first event stored after {wall * 1000:.0f} ms")
    print(f"median child CPU {statistics.median(cpus) * 1000:.0f} ms of {len(cpus)} starts")


if __name__ == "__main__":
    main()
