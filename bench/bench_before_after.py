"""The hot spots of a re-log and a download, old modules against current, in one process.

The old ``lineage/storage/local.py``, ``lineage/manifest.py`` and ``lineage/download.py`` are
read from git at ``--base`` (default: the commit that introduced them) and loaded beside
the current ones; every figure is the median of 7 calls, the rounds interleaved.

    .venv/bin/python bench/bench_before_after.py [--base 247d653] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import lineage.download
import lineage.manifest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import log
from gen_dataset import DEFAULT_DIR, generate

BENCH = Path(__file__).resolve().parent
MODULES = {"local": "lineage/storage/local.py", "manifest": "lineage/manifest.py"}
MODULES["download"] = "lineage/download.py"


def load_old(base: str, folder: Path) -> dict[str, ModuleType]:
    loaded = {}
    for name, path in MODULES.items():
        source = subprocess.run(
            ["git", "show", f"{base}:{path}"], cwd=BENCH.parent, check=True, capture_output=True
        ).stdout
        file = folder / f"old_{name}.py"
        file.write_bytes(source)
        spec = importlib.util.spec_from_file_location(f"old_{name}", file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        loaded[name] = module
    return loaded


def median_ms(fn: Callable[[], object], calls: int = 7) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="247d653")
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--scratch", type=Path, default=BENCH / "out")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    data, store = args.data.resolve(), args.scratch.resolve() / "before_after"
    generate(data)
    shutil.rmtree(store, ignore_errors=True)
    with tempfile.TemporaryDirectory() as folder:
        old = load_old(args.base, Path(folder))
        version = log(store, data)
        client = version._client
        new_blobs, cache = client.blobs, client.cache
        old_blobs = old["local"].LocalBlobStore(store / "blobs")
        manifest = version.manifest()
        digests, entries = list(manifest.blob_digests()), list(manifest)
        target = store / "download"
        version.download(target)

        def old_commit_path() -> None:
            digest = old["manifest"].write_manifest(new_blobs, entries)
            old["manifest"].read_manifest(new_blobs, digest)

        def new_commit_path() -> None:
            digest = lineage.manifest.write_manifest(new_blobs, entries)
            lineage.manifest.read_manifest(new_blobs, digest)

        cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
            "missing(), 10,000 digests": (
                lambda: old_blobs.missing(digests),
                lambda: new_blobs.missing(digests),
            ),
            "write + read back a 10,000-entry manifest": (old_commit_path, new_commit_path),
            "download() into a dir holding the files": (
                lambda: old["download"].download(manifest, target, new_blobs, cache),
                lambda: lineage.download.download(manifest, target, new_blobs, cache),
            ),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (before, after) in cases.items():
                results[name].append((median_ms(before), median_ms(after)))
    shutil.rmtree(store, ignore_errors=True)
    print(f"old modules from {args.base} vs current; ms, median of 7 calls, {args.rounds} rounds")
    for name, pairs in results.items():
        old_ms = ", ".join(f"{b:.1f}" for b, _ in pairs)
        new_ms = ", ".join(f"{a:.1f}" for _, a in pairs)
        ratio = statistics.median(b / a for b, a in pairs)
        print(f"{name:44s} before {old_ms:>14s}   after {new_ms:>12s}   {ratio:4.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
