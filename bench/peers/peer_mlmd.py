"""ML Metadata's side (pip ``ml-metadata``): the fine-tuning tree in its SQLite store.

Each run is an Execution of its job type (prepare, pretrain, finetune, eval), each version an
Artifact of its type named by its version id, with the same payload lineage stores (config,
summary, times; digest, size, file count, metadata) as custom properties, and an INPUT or
OUTPUT Event per edge. Ingest goes in batches of 5,000 runs as lineage's does, each batch as
three bulk calls (``put_artifacts``, ``put_executions``, ``put_events``). Queries are
``get_lineage_subgraph``: upstream 40 hops (20 versions back) from a depth-20 model, and
downstream without a bound (``max_num_hops`` 100) from the base.

MLMD tracks metadata only, it stores no files: the data part says so and does nothing.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from common import arguments, emit, load_tree, log, p95, size, timed, tree_cpu
from ml_metadata import __version__ as mlmd_version
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

Options = pb.LineageSubgraphQueryOptions


def open_store(path: Path) -> metadata_store.MetadataStore:
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def ingest(store: metadata_store.MetadataStore, spec: dict[str, Any]) -> dict[str, int]:
    """Load the tree; return version id -> artifact id."""
    steps, batch = spec["steps"], spec["batch"]
    artifact_types = {
        name: store.put_artifact_type(pb.ArtifactType(name=name))
        for name in ("dataset", "model", "result")
    }
    execution_types = {
        name: store.put_execution_type(pb.ExecutionType(name=name))
        for name in ("prepare", "pretrain", "finetune", "eval")
    }
    ids: dict[str, int] = {}
    for start in range(0, len(steps), batch):
        chunk = steps[start : start + batch]
        artifacts, executions = [], []
        for run_id, job_type, config, summary, started, finished, _inputs, outputs in chunk:
            e = pb.Execution(
                type_id=execution_types[job_type], name=run_id,
                last_known_state=pb.Execution.COMPLETE,
            )  # fmt: skip
            e.custom_properties["config"].string_value = config
            e.custom_properties["summary"].string_value = summary
            e.custom_properties["started_at"].double_value = started
            e.custom_properties["finished_at"].double_value = finished
            executions.append(e)
            for vid, kind, digest, nbytes, metadata in outputs:
                a = pb.Artifact(
                    type_id=artifact_types[kind], name=vid, uri=digest, state=pb.Artifact.LIVE
                )
                a.custom_properties["size"].int_value = nbytes
                a.custom_properties["file_count"].int_value = 1
                a.custom_properties["metadata"].string_value = metadata
                a.custom_properties["created_by"].string_value = run_id
                artifacts.append(a)
        artifact_ids = store.put_artifacts(artifacts)
        execution_ids = store.put_executions(executions)
        made = iter(artifact_ids)
        events = []
        for step, execution_id in zip(chunk, execution_ids, strict=True):
            for vid in step[6]:
                events.append(
                    pb.Event(artifact_id=ids[vid], execution_id=execution_id, type=pb.Event.INPUT)
                )
            for out in step[7]:
                ids[out[0]] = next(made)
                events.append(
                    pb.Event(
                        artifact_id=ids[out[0]], execution_id=execution_id, type=pb.Event.OUTPUT
                    )
                )
        store.put_events(events)
    return ids


def subgraph(store: metadata_store.MetadataStore, artifact: int, up: bool) -> pb.LineageGraph:
    options = Options(
        starting_artifacts=Options.StartingNodes(filter_query=f"id = {artifact}"),
        max_num_hops=40 if up else 100,
        direction=Options.UPSTREAM if up else Options.DOWNSTREAM,
    )
    return store.get_lineage_subgraph(options)


def graph_part(tree_file: Path, folder: Path) -> None:
    spec = load_tree(tree_file)
    store = open_store(folder / "mlmd.sqlite")
    ids = timed("ingest", lambda: ingest(store, spec), [folder], runs=len(spec["steps"]))
    leaves = spec["queries"]
    subgraph(store, ids[leaves[-1]], True)  # warm-up, as lineage's side
    took, nodes = [], 0
    cpu = tree_cpu()
    for ref in leaves:
        start = time.perf_counter()
        g = subgraph(store, ids[ref], True)
        took.append(time.perf_counter() - start)
        nodes = max(nodes, len(g.artifacts) + len(g.executions))
    emit(
        step="upstream depth 20", wall=statistics.median(took), p95=p95(took),
        cpu=(tree_cpu() - cpu) / len(took), nodes=nodes, queries=len(took),
    )  # fmt: skip
    took, cpu = [], tree_cpu()
    for _ in range(3):
        start = time.perf_counter()
        g = subgraph(store, ids[spec["base"]], False)
        took.append(time.perf_counter() - start)
        nodes = len(g.artifacts)
        del g
    emit(
        step="downstream of base", wall=statistics.median(took), cpu=(tree_cpu() - cpu) / 3,
        nodes=nodes, what="versions",
    )  # fmt: skip


def main() -> None:
    args = arguments()
    args.store.mkdir(parents=True, exist_ok=True)
    emit(version=mlmd_version)
    if args.part == "data":
        why = "ML Metadata records metadata (artifact URIs), it stores and restores no files"
        for step in ("snapshot", "re-snapshot unchanged", "re-snapshot one changed", "restore"):
            emit(step=step, unsupported=why)
    else:
        graph_part(args.tree, args.store)
    log(f"mlmd: store {size(args.store) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
