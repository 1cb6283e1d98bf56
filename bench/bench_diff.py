"""Lineage diff of two 10,000-file versions that differ in one file, on SQLite: the content
diff that skips shared manifest pages by digest against a naive full-manifest comparison,
in the same process, interleaved, medians.

    .venv/bin/python bench/bench_diff.py [--files 10000] [--calls 21]

Timed, each a median of ``--calls`` calls, the order alternating call by call:

- ``Api.diff(A, B)``: the whole answer (two upstream walks with records, the content diff,
  metadata, config, ancestry);
- ``diff_manifests``: the content diff alone (two manifest roots, the differing pages);
- naive: both whole manifests read (``read_manifest``) and every path compared.

Before every timed call the manifest pages this process wrote are forgotten
(``lineage.manifest._written``), so neither side profits from having logged them: a
``lineage diff`` command starts cold too.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lineage
import lineage.manifest as manifest_module
from lineage.diff import diff_manifests
from lineage.manifest import read_manifest


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def naive(blobs: object, a: str, b: str) -> tuple[list[str], list[str], list[str]]:
    ma = read_manifest(blobs, a).entries  # type: ignore[arg-type]
    mb = read_manifest(blobs, b).entries  # type: ignore[arg-type]
    added = sorted(mb.keys() - ma.keys())
    removed = sorted(ma.keys() - mb.keys())
    changed = sorted(p for p in ma.keys() & mb.keys() if ma[p] != mb[p])
    return added, removed, changed


def forget() -> None:
    manifest_module._written = manifest_module._Written(limit=32_768)


def timed(fn: Callable[[], object]) -> float:
    forget()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as scratch:
        root = Path(scratch)
        store, blobs = str(root / "store"), str(root / "store" / "blobs")
        data = root / "data"
        for i in range(args.files):
            path = data / f"d{i // 100:03d}" / f"{i:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"file {i}\n".encode() * 8)
        refs = []
        for step in range(2):
            if step:
                (data / "d042" / "04217.bin").write_bytes(b"changed\n")
            with lineage.init(
                project="bench", job_type="prep", config={"step": step}, store=store, blobs=blobs
            ) as run:
                art = lineage.Artifact("corpus", type="dataset", metadata={"step": step})
                art.add_dir(data)
                refs.append(run.log_artifact(art))
        a, b = refs
        api = lineage.Api(store, blobs, project="bench")
        service = api.service
        check = api.diff(a.ref, b.ref)
        assert check.files is not None
        assert [c.path for c in check.files.changed] == ["d042/04217.bin"]
        assert naive(service.blobs, a.digest, b.digest)[2] == ["d042/04217.bin"]

        cases: dict[str, Callable[[], object]] = {
            "Api.diff (whole answer)": lambda: api.diff(a.ref, b.ref),
            "diff_manifests (content)": lambda: diff_manifests(service.blobs, a.digest, b.digest),
            "naive full comparison": lambda: naive(service.blobs, a.digest, b.digest),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for call in range(args.calls):
            for name in names if call % 2 == 0 else reversed(names):
                times[name].append(timed(cases[name]))
        files = check.files
        print(f"{args.files} files a version, one changed; {args.calls} calls each, medians")
        print(f"CPU: {cpu_model()} ({os.cpu_count()} CPUs); load before: {os.getloadavg()}")
        print(f"pages read {files.pages_read}, skipped {files.pages_skipped}")
        base = statistics.median(times["naive full comparison"])
        for name in names:
            median = statistics.median(times[name])
            fastest = min(times[name])
            print(
                f"  {name:<26} median {median * 1e3:8.2f} ms  fastest {fastest * 1e3:8.2f} ms"
                f"  naive/this {base / median:6.1f}x"
            )
        print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
