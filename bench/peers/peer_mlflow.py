"""MLflow's side: its default local setup, a SQLite tracking store and a local artifact folder.

A snapshot is what an MLflow user writes: a run that logs the directory,
``mlflow.log_artifacts(data, "dataset")``; the store is ``--store``/mlflow.db (tracking) and
``--store``/artifacts (the experiment's artifact location). MLflow has no content addressing:
every snapshot copies every file into the new run's artifact folder, changed or not, so the two
re-snapshot rows are that full copy again (flagged ``no_dedup``). Restore:
``mlflow.artifacts.download_artifacts`` of the first run into an empty folder.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from common import Change, arguments, emit, log, same_tree, size, start, timed

NO_DEDUP = "no content addressing: every file copied again into the new run"


def data_part(data: Path, store: Path, change: Path, salt: int) -> None:
    import mlflow
    import mlflow.artifacts

    root = [store / "mlflow.db", store / "artifacts"]
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    mlflow.create_experiment("bench", artifact_location=(store / "artifacts").as_uri())
    mlflow.set_experiment("bench")

    def snapshot() -> str:
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(data), artifact_path="dataset")
            return str(run.info.run_id)

    start(*root)
    first = timed("snapshot", snapshot, root)
    timed("re-snapshot unchanged", snapshot, root, no_dedup=NO_DEDUP)
    with Change(data / change, salt):
        timed("re-snapshot one changed", snapshot, root, no_dedup=NO_DEDUP)
    target = store / "restored"
    target.mkdir()
    timed(
        "restore",
        lambda: mlflow.artifacts.download_artifacts(
            run_id=first, artifact_path="dataset", dst_path=str(target)
        ),
        root,
    )
    emit(check="restore", files=same_tree(target / "dataset", data))


def main() -> None:
    warnings.simplefilter("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args = arguments()
    args.store.mkdir(parents=True, exist_ok=True)
    from mlflow.version import VERSION

    emit(version=VERSION)
    if args.part != "data":
        raise SystemExit("peer_mlflow.py: only the data part (the tree is for MLMD and lineage)")
    data_part(args.data, args.store, Path(args.change), args.salt)
    log(f"mlflow: store {size(args.store) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
