"""Generate the benchmark dataset: 10,000 files, about 1 GiB, in 100 folders.

9,900 files of 50 KiB and 100 files of 5 MiB, every byte pseudo-random and deterministic
(BLAKE3 in XOF mode, keyed by the file's path), so two machines generate identical bytes
and no two files share content. Folder ``d00`` .. ``d99`` each hold 99 small files and one
large one.

    .venv/bin/python bench/gen_dataset.py [DIR]      # default: bench/data/ (git-ignored)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import blake3

FOLDERS = 100
SMALL_PER_FOLDER = 99
SMALL = 50 * 1024
LARGE = 5 * 1024 * 1024
SEED = b"lineage-bench-v1"
DEFAULT_DIR = Path(__file__).resolve().parent / "data"


def content(name: str, size: int, salt: int = 0) -> bytes:
    """The bytes of one file: ``size`` pseudo-random bytes determined by ``name`` (and ``salt``)."""
    return blake3.blake3(f"{name}\0{salt}".encode(), key=blake3.blake3(SEED).digest()).digest(
        length=size
    )


def layout() -> list[tuple[str, int]]:
    """``(relative path, size)`` of every file, sorted."""
    files = []
    for d in range(FOLDERS):
        folder = f"d{d:02d}"
        files += [(f"{folder}/s{i:03d}.bin", SMALL) for i in range(SMALL_PER_FOLDER)]
        files.append((f"{folder}/large.bin", LARGE))
    return sorted(files)


def generate(root: Path) -> tuple[int, int]:
    """Write the dataset under ``root`` (files already of the right size are kept)."""
    count = total = 0
    for rel, size in layout():
        path = root / rel
        count += 1
        total += size
        if path.is_file() and path.stat().st_size == size:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content(rel, size))
    return count, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    count, total = generate(args.dir)
    os.sync()
    print(
        f"{count} files, {total / 2**30:.2f} GiB in {args.dir} "
        f"({time.perf_counter() - start:.1f} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
