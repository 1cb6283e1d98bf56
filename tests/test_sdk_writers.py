"""Concurrent SDK runs against each real store: what eight training threads of one process
log (``lineage.init``, ``use_artifact``, ``log_artifact``, the ``with`` block's finish) is the
graph networkx builds from the same calls, and a run killed mid-way keeps what its calls
returned. The path ``bench_graph.py``'s SDK row measures (on Neo4j: every one-statement read
an auto-commit, the writes group-committed)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import networkx as nx

import lineage
from lineage.client import Client

WRITERS = 8
RUNS = 2  # a writer's


def seed(backend, workdir: Path) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """Three datasets, logged by one run: its id and their refs."""
    refs = []
    with lineage.init(
        project="p", job_type="prepare", store=backend.store, blobs=backend.blobs
    ) as run:
        for i in range(3):
            path = workdir / f"data{i}.csv"
            path.write_text(f"dataset {i}\n")
            artifact = lineage.Artifact(f"data{i}", type="dataset")
            artifact.add_file(path)
            refs.append(run.log_artifact(artifact).ref)
    return run.id, refs


def test_eight_threads_of_sdk_runs_log_the_graph_networkx_builds(backend, workdir) -> None:  # type: ignore[no-untyped-def]
    maker, datasets = seed(backend, workdir)
    expected = nx.DiGraph((maker, ref) for ref in datasets)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def writer(w: int) -> None:
        rng = random.Random(w)
        mine: list[str] = []  # this writer's models so far: the next run fine-tunes one
        try:
            for k in range(RUNS):
                path = workdir / f"model-{w}-{k}.bin"
                path.write_bytes(f"weights {w} {k}".encode())
                with lineage.init(
                    project="p", job_type="finetune", config={"w": w, "k": k},
                    store=backend.store, blobs=backend.blobs,
                ) as run:  # fmt: skip
                    inputs = [run.use_artifact(rng.choice(datasets)).ref]
                    if mine:
                        inputs.append(run.use_artifact(rng.choice(mine)).ref)
                    artifact = lineage.Artifact(f"model-w{w}", type="model")
                    artifact.add_file(path)
                    version = run.log_artifact(artifact)
                    assert version.ref == f"p/model-w{w}:v{k}"  # a writer's own numbering
                mine.append(version.ref)
                with lock:
                    for ref in inputs:
                        expected.add_edge(ref, run.id)
                    expected.add_edge(run.id, version.ref)
        except BaseException as exc:  # raised again in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures

    service = Client.shared(backend.store, backend.blobs).service
    runs = [node for node in expected if ":" not in node]
    assert len(runs) == WRITERS * RUNS + 1
    stored = nx.DiGraph()
    for run_id in runs:
        record = service.get_run(run_id)
        assert record.state == "finished", record
        inputs, outputs = service.run_io(run_id)
        stored.add_edges_from((v.ref, run_id) for v in inputs)
        stored.add_edges_from((run_id, v.ref) for v in outputs)
    assert set(stored.edges) == set(expected.edges)
    # every last model's whole upstream, as the store walks it and as networkx does
    for w in range(WRITERS):
        ref = f"p/model-w{w}:v{RUNS - 1}"
        walked = service.lineage(ref, "upstream", None)
        assert walked.ids == nx.ancestors(expected, ref) | {ref}, ref


KILLED = """\
import os, signal, sys
import lineage
run = lineage.init(project="p", job_type="train")
run.use_artifact("data0:latest")
open("model.bin", "wb").write(b"half-trained")
artifact = lineage.Artifact("model", type="model")
artifact.add_file("model.bin")
version = run.log_artifact(artifact)
print(run.id, version.ref, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no exit hook runs
"""


def test_a_run_killed_mid_way_keeps_what_its_calls_returned(backend, workdir) -> None:  # type: ignore[no-untyped-def]
    _, [data0, *_] = seed(backend, workdir)
    script = workdir / "train.py"
    script.write_text(textwrap.dedent(KILLED))
    env = {**os.environ, "LINEAGE_STORE": backend.store, "LINEAGE_BLOBS": backend.blobs}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=workdir, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    run_id, ref = done.stdout.split()
    service = Client.shared(backend.store, backend.blobs).service
    assert service.get_run(run_id).state == "running"  # nothing ended it
    inputs, outputs = service.run_io(run_id)
    assert [v.ref for v in inputs] == [data0]
    assert [v.ref for v in outputs] == [ref] == ["p/model:v0"]
    assert service.resolve("p/model:latest").created_by == run_id
