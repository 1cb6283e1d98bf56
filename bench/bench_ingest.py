"""Log, re-log and download the 10,000-file dataset through the public SDK, against cp/cat.

Issue 2's performance items, every figure a median of ``--runs`` rounds and every ratio
against a baseline run in the same round of this one process (the rounds interleave
subject and baseline, so a noisy neighbour hits both):

1. first ``log_artifact`` into a fresh store vs ``cp -r``, ``cp -r && sync`` and ``cat``
   (also with ``syncfs`` switched off, to show what durability costs);
2. re-log of the unchanged directory;
3. re-log after rewriting one 50 KiB file, with the bytes it added to the blob store;
4. ``download()`` into an empty directory vs ``cp -r``, and into one already holding the
   files vs one ``stat`` per file.

The page cache is warm (every file is read once first); before each timed step the dirty
pages of the previous one are flushed (untimed), so no step pays for another's writeback.

    .venv/bin/python bench/gen_dataset.py
    .venv/bin/python bench/bench_ingest.py [--data bench/data] [--scratch bench/out] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import lineage
import lineage.files
import lineage.storage.local

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_dataset import DEFAULT_DIR, content, generate, layout

BENCH = Path(__file__).resolve().parent


@dataclass
class Sample:
    wall: float
    cpu: float  # user + sys of this process and its children


@dataclass
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    notes: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, sample: Sample) -> None:
        self.samples.setdefault(key, []).append(sample)

    def note(self, key: str, value: float) -> None:
        self.notes.setdefault(key, []).append(value)

    def wall(self, key: str) -> float:
        return statistics.median(s.wall for s in self.samples[key])

    def best(self, key: str) -> float:
        return min(s.wall for s in self.samples[key])

    def cpu(self, key: str) -> float:
        return statistics.median(s.cpu for s in self.samples[key])

    def ratio(self, key: str, base: str) -> float:
        """Median over rounds of (key / base) in the same round."""
        pairs = zip(self.samples[key], self.samples[base], strict=True)
        return statistics.median(a.wall / b.wall for a, b in pairs)


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object]) -> Sample:
    os.sync()  # start from a clean page cache: nobody else's writeback in our time
    cpu, start = _cpu(), time.perf_counter()
    fn()
    return Sample(time.perf_counter() - start, _cpu() - cpu)


def sh(command: str) -> Callable[[], object]:
    return lambda: subprocess.run(command, shell=True, check=True)


def remove(*paths: Path) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    os.sync()


def tree_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        if Path(folder).name == "tmp":
            continue
        total += sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
    return total


@contextlib.contextmanager
def scandir_walk_in_add_dir() -> Iterator[None]:
    """Swap ``add_dir``'s walk for :func:`scandir_walk` (same result): what it would give."""
    saved = lineage.files.walk
    lineage.files.walk = scandir_walk
    try:
        yield
    finally:
        lineage.files.walk = saved


@contextlib.contextmanager
def no_syncfs() -> Iterator[None]:
    saved = lineage.storage.local._syncfs
    lineage.storage.local._syncfs = lambda path: None
    try:
        yield
    finally:
        lineage.storage.local._syncfs = saved


# The scandir walk measured here now is ``lineage.files.walk`` itself.
scandir_walk = lineage.files.walk


def log(store: Path, data: Path) -> lineage.ArtifactVersion:
    """What a user writes: one run that logs the directory as an artifact."""
    with lineage.init(project="bench", job_type="bench", store=str(store)) as run:
        artifact = lineage.Artifact("dataset", type="dataset")
        artifact.add_dir(data)
        return run.log_artifact(artifact)


def one_round(i: int, data: Path, scratch: Path, res: Results) -> None:
    """One round; every step writes to a directory of its own, all deleted at the end.

    Deleting a gigabyte between steps would make the next step pay for the discards that
    the deletion queues (``/work`` is mounted with ``discard``), so nothing is deleted
    until the round is over and the disk has settled. Odd rounds run the first-log steps
    in the reverse order, so that neither side always goes first.
    """
    here = scratch / f"round{i}"
    remove(here)
    here.mkdir()

    def q(path: Path) -> str:
        return shlex.quote(str(path))

    store = here / "store"
    version: list[lineage.ArtifactVersion] = []

    def first_log() -> None:
        res.add("log (first)", timed(lambda: version.append(log(store, data))))

    def first_log_no_syncfs() -> None:
        with no_syncfs():
            res.add("log, no syncfs", timed(lambda: log(here / "nosync", data)))

    steps = [
        lambda: res.add("cat", timed(sh(f"find {q(data)} -type f -exec cat {{}} + >/dev/null"))),
        lambda: res.add("cp -r", timed(sh(f"cp -r {q(data)} {q(here / 'cp')}"))),
        lambda: res.add("cp -r && sync", timed(sh(f"cp -r {q(data)} {q(here / 'cps')} && sync"))),
        first_log_no_syncfs,
        first_log,
    ]
    for step in steps if i % 2 == 0 else steps[::-1]:
        step()
    res.note("blob store bytes", tree_bytes(store / "blobs"))

    res.add("re-log unchanged", timed(lambda: log(store, data)))
    res.add("  of which add_dir's walk", timed(lambda: lineage.files.walk(data)))
    res.add("  the walk on os.scandir", timed(lambda: scandir_walk(data)))
    with scandir_walk_in_add_dir():
        res.add("re-log unchanged, scandir *", timed(lambda: log(store, data)))

    # rewrite one 50 KiB file with new bytes, as a user editing the dataset would
    # (a different file each time: the bytes added depend on the size of its manifest page)
    small = [(r, s) for r, s in layout() if s < 1 << 20]

    def edit_and_log(k: int, label: str) -> None:
        rel, size = small[(i * 1409 + k * 4951 + 17) % len(small)]
        target = data / rel
        target.write_bytes(content(rel, size, salt=2 * i + k + 1))
        os.utime(target, ns=(time.time_ns() - 10**9,) * 2)  # an edit a second old: not racy
        before = tree_bytes(store / "blobs")
        changed: list[lineage.ArtifactVersion] = []
        try:
            res.add(label, timed(lambda: changed.append(log(store, data))))
        finally:
            target.write_bytes(content(rel, size))  # back to the generated bytes
        res.note("bytes added by one-file change", tree_bytes(store / "blobs") - before)
        res.note("new version", float(changed[0].version != version[0].version))
        time.sleep(0.2)
        log(store, data)  # untimed: the restored file back in the stat cache

    edit_and_log(0, "re-log, one file changed")
    with scandir_walk_in_add_dir():
        edit_and_log(1, "re-log, one changed, scandir *")

    dl = here / "download"
    res.add("cp -r (again)", timed(sh(f"cp -r {q(data)} {q(here / 'cp2')}")))
    res.add("download, empty dir", timed(lambda: version[0].download(dl)))
    res.add("download, files present", timed(lambda: version[0].download(dl)))
    paths = [str(p) for p in dl.rglob("*") if p.is_file()]
    res.add("stat every file", timed(lambda: [os.stat(p) for p in paths]))
    res.note("downloaded files", len(paths))
    remove(here)
    settle(scratch)


def settle(path: Path, quiet: float = 1.0, limit: float = 15.0) -> None:
    """Wait until the disk under ``path`` has finished writing and discarding (Linux)."""
    st = os.stat(path)
    stat_file = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/stat")
    if not stat_file.exists():
        return
    deadline = time.monotonic() + limit
    last, since = "", time.monotonic()
    while time.monotonic() < deadline:
        fields = stat_file.read_text().split()
        now = " ".join(fields[4:5] + fields[8:9] + fields[11:12])  # writes, in flight, discards
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet and fields[8] == "0":
            return
        time.sleep(0.1)


def report(res: Results, runs: int, data: Path, scratch: Path) -> str:
    lines = [
        f"{runs} rounds; data {data}, scratch {scratch}",
        "wall: median seconds; best: fastest round; cpu: median CPU seconds of this process and "
        "its children; ratio: median over rounds of subject/baseline, same round",
        "",
        f"{'step':28s} {'wall s':>8s} {'best s':>7s} {'cpu s':>7s}   ratio",
    ]

    def row(key: str, ratios: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        extra = ", ".join(f"{res.ratio(key, base):.2f}x {label}" for label, base in ratios)
        lines.append(
            f"{key:28s} {res.wall(key):8.3f} {res.best(key):7.3f} {res.cpu(key):7.2f}   {extra}"
        )

    row("cat")
    row("cp -r", [("cat", "cat")])
    row("cp -r && sync", [("cp -r", "cp -r")])
    row("log, no syncfs", [("cp -r", "cp -r")])
    row("log (first)", [("cp -r", "cp -r"), ("cp -r && sync", "cp -r && sync"), ("cat", "cat")])
    row("re-log unchanged")
    row("  of which add_dir's walk")
    row("  the walk on os.scandir")
    row("re-log unchanged, scandir *")
    row("re-log, one file changed")
    row("re-log, one changed, scandir *")
    row("cp -r (again)")
    row("download, empty dir", [("cp -r", "cp -r (again)")])
    row("stat every file")
    row("download, files present", [("stat loop", "stat every file")])
    added = statistics.median(res.notes["bytes added by one-file change"])
    most = max(res.notes["bytes added by one-file change"])
    stored = statistics.median(res.notes["blob store bytes"])
    lines += [
        "",
        f"blob store after first log: {stored / 2**20:.1f} MiB",
        f"bytes added by the one-file change: {added / 1000:.1f} KB median, "
        f"{most / 1000:.1f} KB at most (a 51.2 KB file plus manifest) "
        f"(new version each round: {all(res.notes['new version'])})",
        f"files downloaded: {int(statistics.median(res.notes['downloaded files']))}",
        "",
        "* add_dir's walk (lineage.files.walk) swapped for bench_ingest.scandir_walk, which "
        "returns the same list",
        "",
        "goals: (1) first log <= 1.2x cp -r; (2) re-log unchanged < 0.2 s; (3) one-file change "
        "< 0.3 s and < 100 KB added; (4) download <= 1.2x cp -r, into present files ~ a stat each",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--scratch", type=Path, default=BENCH / "out")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3 (figures are medians)")
    data, scratch = args.data.resolve(), args.scratch.resolve()
    generate(data)
    scratch.mkdir(parents=True, exist_ok=True)
    subprocess.run(f"find '{data}' -type f -exec cat {{}} + >/dev/null", shell=True, check=True)
    res = Results()
    settle(scratch)
    for i in range(args.runs):
        print(f"round {i + 1}/{args.runs}", file=sys.stderr, flush=True)
        one_round(i, data, scratch, res)
    print(report(res, args.runs, data, scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
