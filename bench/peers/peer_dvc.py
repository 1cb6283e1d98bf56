"""DVC's side, through its Python API (``dvc.repo.Repo``), defaults left as they are.

DVC versions files of its workspace, so the dataset is first copied into a workspace of
its own (``--store``/repo/data, untimed, flushed). Then: ``Repo.add("data")`` (hash, copy
into ``.dvc/cache``), again unchanged, again after one file is rewritten, and the first
version's ``data.dvc`` checked out (``Repo.checkout``) in an empty repo whose cache is the
first one's, the way ``git checkout <rev> data.dvc && dvc checkout`` restores a version.
The store is ``.dvc`` (cache and state database) and DVC's site cache folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from common import Change, arguments, emit, log, same_tree, size, start, timed
from dvc import __version__ as dvc_version
from dvc.repo import Repo


def init(root: Path, site: Path, cache: Path | None = None) -> Repo:
    root.mkdir(parents=True)
    Repo.init(str(root), no_scm=True)
    config = root / ".dvc" / "config"
    lines = ["[core]", "    no_scm = true", "    analytics = false", f"    site_cache_dir = {site}"]
    if cache is not None:
        lines += ["[cache]", f"    dir = {cache}"]
    config.write_text("\n".join(lines) + "\n")
    return Repo(str(root))


def data_part(data: Path, store: Path, change: Path, salt: int) -> None:
    root, site = store / "repo", store / "site-cache"
    repo = init(root, site)
    subprocess.run(["cp", "-r", str(data), str(root / "data")], check=True)
    os.sync()
    kept = [root / ".dvc", site]

    os.chdir(root)  # as `dvc add data` is run: from the repo

    def add() -> str:
        repo.add("data")
        return (root / "data.dvc").read_text()

    start(*kept)
    first = timed("snapshot", add, kept)
    again = timed("re-snapshot unchanged", add, kept)
    with Change(root / "data" / change, salt):
        edited = timed("re-snapshot one changed", add, kept)
    if again != first or edited == first:
        raise SystemExit(f"data.dvc: {first!r}, {again!r}, {edited!r}")

    other = init(store / "restore", site, cache=root / ".dvc" / "cache")
    (store / "restore" / "data.dvc").write_text(first)
    os.chdir(store / "restore")
    timed("restore", lambda: other.checkout(), kept)
    emit(check="restore", files=same_tree(store / "restore" / "data", data))
    shutil.rmtree(root / "data")  # the workspace copy is not the store's


def main() -> None:
    os.environ["DVC_NO_ANALYTICS"] = "1"
    args = arguments()
    args.store.mkdir(parents=True, exist_ok=True)
    emit(version=dvc_version)
    if args.part != "data":
        raise SystemExit("peer_dvc.py: only the data part (the tree is for MLMD and lineage)")
    data_part(args.data, args.store, Path(args.change), args.salt)
    log(f"dvc: store {size(args.store) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
