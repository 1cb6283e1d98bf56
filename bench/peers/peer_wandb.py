"""Weights & Biases' side, offline (``WANDB_MODE=offline``: no server, no account).

A snapshot is what a W&B user writes: ``wandb.init``, ``wandb.Artifact``, ``add_dir``,
``run.log_artifact``, ``run.finish``. Offline, the artifact's files are copied into W&B's
staging folder (``add_dir``'s default ``policy="mutable"``) and its manifest goes into the
run's ``.wandb`` log, to be uploaded by ``wandb sync``; everything W&B writes (run folders,
staging, cache, settings) lives under ``--store``, all of it counted as the store. Restore
goes through ``use_artifact(...).download()``, which asks the W&B server for the artifact;
the script tries it and reports the error it gets.
"""

from __future__ import annotations

import os
from pathlib import Path

from common import Change, arguments, emit, log, size, start, timed

NO_DEDUP = (
    "offline, every file is copied again into W&B's staging folder (W&B skips unchanged files "
    "only when uploading, against its server)"
)


def data_part(data: Path, store: Path, change: Path, salt: int) -> None:
    import wandb

    def snapshot() -> None:
        run = wandb.init(project="bench", job_type="snapshot")
        artifact = wandb.Artifact("dataset", type="dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact)
        run.finish()

    start(store)
    timed("snapshot", snapshot, [store])
    timed("re-snapshot unchanged", snapshot, [store], no_dedup=NO_DEDUP)
    with Change(data / change, salt):
        timed("re-snapshot one changed", snapshot, [store], no_dedup=NO_DEDUP)
    try:
        run = wandb.init(project="bench", job_type="restore")
        run.use_artifact("dataset:v0").download(str(store / "restored"))
        run.finish()
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}".splitlines()[0]
        emit(step="restore", unsupported=f"offline, W&B cannot read an artifact back ({why})")
    else:
        raise SystemExit("wandb restored offline: measure it")


def main() -> None:
    args = arguments()
    args.store.mkdir(parents=True, exist_ok=True)
    for name, folder in [("DIR", "runs"), ("CACHE_DIR", "cache"), ("DATA_DIR", "data"),
                         ("CONFIG_DIR", "config"), ("ARTIFACT_DIR", "artifacts")]:  # fmt: skip
        os.environ[f"WANDB_{name}"] = str(args.store / folder)
        (args.store / folder).mkdir(exist_ok=True)
    os.environ.update(
        WANDB_MODE="offline", WANDB_SILENT="true", WANDB_CONSOLE="off",
        WANDB_DISABLE_GIT="true", WANDB_DISABLE_CODE="true",
    )  # fmt: skip
    import wandb

    emit(version=wandb.__version__)
    if args.part != "data":
        raise SystemExit("peer_wandb.py: only the data part (the tree is for MLMD and lineage)")
    data_part(args.data, args.store, Path(args.change), args.salt)
    log(f"wandb: store {size(args.store) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
