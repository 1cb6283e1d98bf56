"""The protocol between ``run.py`` and each tool's script, and what every script shares.

Standard library only: each script runs in its tool's own venv (``bench/out/peers/<tool>``),
which holds nothing of lineage's. A script is started once per round and part::

    <venv>/bin/python bench/peers/peer_<tool>.py data --data D --store S --change REL --salt N
    <venv>/bin/python bench/peers/peer_<tool>.py graph --tree T.json --store S

and prints one JSON object a line on stdout, each step as soon as it is done::

    {"step": "snapshot", "wall": 5.1, "cpu": 6.0, "bytes": 1031258112, "files": 10000}
    {"step": "restore", "unsupported": "why, in one sentence"}
    {"version": "3.67.1"}                    # the tool's version, once

``wall`` is seconds, ``cpu`` the user + system seconds of the script's whole process tree
(its own threads, its children, reaped or still running: a tool's background service
counts), ``bytes`` the size of the tool's store after the step. Before each timed step the
dirty pages of the previous one are flushed, untimed, as ``bench_ingest.py`` does. Anything
else a script prints goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DATA_STEPS = ("snapshot", "re-snapshot unchanged", "re-snapshot one changed", "restore")
GRAPH_STEPS = ("ingest", "upstream depth 20", "downstream of base")
_TICK = os.sysconf("SC_CLK_TCK")


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def tree_cpu(root: int | None = None) -> float:
    """User + system seconds of ``root`` and every live descendant, with their reaped children."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        times[pid] = sum(int(f) for f in fields[11:15]) / _TICK  # utime stime cutime cstime
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack += children.get(pid, [])
    return total


def timed(step: str, fn: Callable[[], object], store: Iterable[Path], **extra: Any) -> Any:
    """Flush, run ``fn``, emit the step with the store's size; return what ``fn`` returned."""
    os.sync()
    cpu, start = tree_cpu(), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    cpu = tree_cpu() - cpu
    store = list(store)
    for path in store:
        at_rest(path)
    emit(step=step, wall=wall, cpu=cpu, bytes=sum(size(p) for p in store), **extra)
    return value


def at_rest(root: Path) -> None:
    """Checkpoint every SQLite write-ahead log under ``root`` into its database, untimed.

    A WAL holds every page a transaction wrote until a checkpoint copies them home (SQLite
    does it at 1,000 pages, or when the last connection closes); measured before that, a
    store's size counts each page once per write. Every tool's store is measured at rest.
    """
    import sqlite3

    if not root.exists():
        return
    for wal in [root.with_name(root.name + "-wal")] if root.is_file() else root.rglob("*-wal"):
        db = wal.with_name(wal.name.removesuffix("-wal"))
        if not wal.is_file() or not db.is_file():
            continue
        with contextlib.closing(sqlite3.connect(db, timeout=10)) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def start(*store: Path) -> None:
    """Emit the store's size before the first step: what the steps add is counted from it."""
    emit(step="start", bytes=sum(size(p) for p in store))


def size(root: Path) -> int:
    """Bytes of every regular file under ``root`` (apparent sizes; hard links counted once)."""
    if not root.exists():
        return 0
    if root.is_file():
        return root.stat().st_size
    total, seen = 0, set()
    for folder, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def files(root: Path) -> dict[str, int]:
    """Relative path -> size of every regular file under ``root``."""
    out = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = os.lstat(path).st_size
    return out


def same_tree(restored: Path, data: Path, own: str = "") -> int:
    """Check that ``restored`` holds ``data``'s files with their bytes; return the file count.

    ``own``: a file of the tool's own that the restore leaves at the top (not counted)."""
    want, got = files(data), files(restored)
    got.pop(own, None)
    if want != got:
        missing = sorted(set(want) - set(got))[:3]
        extra = sorted(set(got) - set(want))[:3]
        raise SystemExit(f"restore differs: missing {missing}, extra {extra}")
    for rel in sorted(want)[:: max(1, len(want) // 50)]:  # 50 files compared byte for byte
        if (restored / rel).read_bytes() != (data / rel).read_bytes():
            raise SystemExit(f"restore differs: {rel} has other bytes")
    return len(got)


class Change:
    """One 50 KiB file rewritten with new bytes (an edit a second old), put back on exit."""

    def __init__(self, path: Path, salt: int) -> None:
        self.path, self.salt = path, salt
        self.saved = b""

    def __enter__(self) -> Change:
        self.saved = self.path.read_bytes()
        self.path.write_bytes(random.Random(self.salt).randbytes(len(self.saved)))
        old = time.time_ns() - 10**9
        os.utime(self.path, ns=(old, old))
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.write_bytes(self.saved)


def p95(values: list[float]) -> float:
    return sorted(values)[round(0.95 * (len(values) - 1))]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def arguments(argv: list[str] | None = None) -> Any:
    """The command line every script takes (see the module docstring)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["data", "graph"])
    parser.add_argument("--data", type=Path, help="the dataset (data part)")
    parser.add_argument("--change", help="the 50 KiB file to rewrite, relative to --data")
    parser.add_argument("--salt", type=int, default=0, help="seeds the rewritten bytes")
    parser.add_argument("--tree", type=Path, help="the tree, as run.py exports it (graph part)")
    parser.add_argument("--store", type=Path, required=True, help="this tool's scratch folder")
    parser.add_argument("--neo4j", action="store_true", help="lineage: a Neo4j store (graph)")
    args = parser.parse_args(argv)
    for name in ("data", "tree", "store"):  # absolute: some tools change directory
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    return args


def load_tree(path: Path) -> dict[str, Any]:
    """The fine-tuning tree as ``run.py`` exports it from ``bench/gen_tree.py``::

    {"runs": N, "steps": [[run_id, job_type, config, summary, started, finished,
                           [input version ids], [[version id, type, digest, size, metadata]]]],
     "base": id, "queries": [ids of depth-20 models], "batch": 5000}
    """
    with open(path) as f:
        tree: dict[str, Any] = json.load(f)
    return tree
