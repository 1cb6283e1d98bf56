"""Graph benchmark: SQLite, Neo4j and networkx (the in-memory floor) on fine-tuning trees.

For each tree size (``bench/gen_tree.py``), on a fresh store of each kind, in one run (after
an untimed warm-up, ``--warm-up``: a 40,000-run tree in a project of its own, ingested and
queried a thousand times, so that a server is measured warm as a long-running one would be):

- bulk ingest: ``import_records`` in batches of 5,000 runs with their versions and edges, as
  ``lineage push`` does; runs/s and records (runs + versions + edges)/s;
- upstream: ``Service.lineage(leaf, "upstream", 20)`` of 50 random generation-20 models
  (median, p95), after one untimed warm-up query;
- downstream: ``Service.tree(base, depth=None)``, the whole derivation tree of the base
  model (median of 5);
- per-run graph writes, the SDK path one run at a time: ``create_run``, ``add_edges`` for its
  inputs, ``commit_version`` per output; the first ``--sdk-runs`` runs of a second tree logged
  into the same project and artifacts of the loaded store (so ``model`` already has 100,000
  versions at 100k). Nothing is extrapolated.

networkx holds the same records in a ``DiGraph`` and answers the same questions with the same
semantics (same node and edge sets, same ``Subgraph`` shape); every store's answers are checked
against it. Ratios are "times slower than networkx", measured in the same process.

    .venv/bin/python bench/bench_graph.py                          # 10,000 and 100,000 runs
    .venv/bin/python bench/bench_graph.py --runs 10000 --start-neo4j
    .venv/bin/python bench/bench_graph.py --neo4j bolt://127.0.0.1:7687   # WIPES that database
    .venv/bin/python bench/bench_graph.py --explain    # SQLite's plans for expand, both ways
    .venv/bin/python bench/bench_graph.py --runs 100000 --stores sqlite --no-networkx \
        --scratch /tmp/big --keep     # leaves /tmp/big/sqlite-100000: lineage --store it -p ft
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import networkx as nx
from gen_tree import DATASETS, DEPTH, Step, Tree, generate

from lineage.records import (
    PRODUCED,
    ArtifactRecord,
    Edge,
    RunRecord,
    Subgraph,
    VersionRecord,
    run_node,
    version_node,
)
from lineage.service import Service
from lineage.storage.graph import GraphStore, NewVersion, write_run
from lineage.storage.local import LocalBlobStore
from lineage.traversal import Row, derived_answer, derived_triples, paused_gc

BATCH = 5000
QUERIES = 50
REPEAT = 5
PAGE = 1000  # versions in the first page of the tree
GOALS = {  # at 100,000 runs, from the issue (15: and at 1M, with the pages and writers)
    ("sqlite", "page_median"): "< 200 ms (1M)",
    ("neo4j", "page_median"): "< 200 ms (1M)",
    ("neo4j", "writers"): ">= 1,000 runs/s (8 writers)",
    ("neo4j", "writers_run"): ">= 1,000 runs/s (8 writers)",
    ("neo4j", "sdk_writers"): ">= 1,000 runs/s (8 writers)",
    ("sqlite", "ingest"): ">= 20,000 runs/s",
    ("neo4j", "ingest"): ">= 5,000 runs/s",
    ("sqlite", "per_run"): ">= 1,000 runs/s",
    ("sqlite", "up_median"): "< 5 ms",
    ("neo4j", "up_median"): "< 5 ms",
    ("sqlite", "tree"): "< 1 s",
    ("neo4j", "tree"): "< 2 s",
}
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Batch:
    """One ``import_records`` call's worth of records, built before the clock starts."""

    runs: list[RunRecord]
    artifacts: Sequence[ArtifactRecord]
    versions: list[VersionRecord]
    edges: list[Edge]

    @property
    def records(self) -> int:
        return len(self.runs) + len(self.versions) + len(self.edges)


@dataclass(frozen=True)
class Logged:
    """One run as the SDK writes it to the graph: the run, its input edges, its commits."""

    run: RunRecord
    inputs: list[Edge]
    outputs: list[tuple[NewVersion, VersionRecord]]  # what to commit, what it must become


def batches(tree: Tree, size: int) -> list[Batch]:
    return [
        Batch(
            runs=[s.run for s in steps],
            artifacts=tree.artifacts if start == 0 else (),
            versions=[v for s in steps for v in s.outputs],
            edges=[e for s in steps for e in s.edges],
        )
        for start in range(0, len(tree.steps), size)
        for steps in [tree.steps[start : start + size]]
    ]


def logged(step: Step) -> Logged:
    run = step.run
    return Logged(
        run=run,
        inputs=[e for e in step.edges if e.target == run.id],
        outputs=[
            (
                NewVersion(
                    project=v.project,
                    name=v.name,
                    type=v.type,
                    digest=v.digest,
                    size=v.size,
                    file_count=v.file_count,
                    metadata=v.metadata,
                    run_id=run.id,
                    at=v.created_at,
                ),
                v,
            )
            for v in step.outputs
        ],
    )


class Subject(Protocol):
    name: str

    def ingest(self, batch: Batch) -> None: ...
    def log_run(self, step: Logged) -> None: ...
    def write_run(self, step: Logged) -> None: ...
    def upstream(self, ref: str) -> Subgraph: ...
    def tree(self, ref: str) -> Subgraph: ...
    def first_page(self, ref: str) -> int: ...
    def close(self) -> None: ...


class StoreSubject:
    """A GraphStore behind the service layer, as the SDK and CLI use it."""

    def __init__(
        self,
        name: str,
        graph: GraphStore,
        scratch: Path,
        data: Callable[[], Path | None] = lambda: None,
        server: Callable[[], int | None] = lambda: None,
        url: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.name = name
        self.graph = graph
        self.service = Service(graph, LocalBlobStore(scratch / "blobs"))
        self.scratch = scratch
        self.url = url  # the store as lineage.init takes it (the SDK rows)
        self.data = data  # where the store's files are
        self.server = server  # the pid of the server that answers

    def ingest(self, batch: Batch) -> None:
        self.graph.import_records(
            runs=batch.runs, artifacts=batch.artifacts, versions=batch.versions, edges=batch.edges
        )

    def log_run(self, step: Logged) -> None:
        self.graph.create_run(step.run)
        if step.inputs:
            self.graph.add_edges(step.inputs)
        for new, expected in step.outputs:
            created, fresh = self.graph.commit_version(new)
            assert fresh and created.id == expected.id, (created.id, expected.id)

    def write_run(self, step: Logged) -> None:
        """``log_run`` as one call (lineage.storage.graph.write_run): one write a run."""
        made = write_run(self.graph, step.run, step.inputs, [new for new, _ in step.outputs])
        for (created, fresh), (_, expected) in zip(made, step.outputs, strict=True):
            assert fresh and created.id == expected.id, (created.id, expected.id)

    def upstream(self, ref: str) -> Subgraph:
        return self.service.lineage(ref, "upstream", DEPTH)

    def tree(self, ref: str) -> Subgraph:
        return self.service.tree(ref, depth=None)

    def first_page(self, ref: str) -> int:
        """The first page of the whole derivation tree (``PAGE`` versions): how many."""
        return len(self.service.tree_page(ref, None, first=PAGE).nodes)

    def close(self) -> None:
        self.graph.close()


class NetworkxSubject:
    """The floor: records held as node and edge attributes of an in-memory DiGraph."""

    name = "networkx"

    def __init__(self) -> None:
        self.g = nx.DiGraph()

    def ingest(self, batch: Batch) -> None:
        self.g.add_nodes_from((r.id, {"record": r}) for r in batch.runs)
        self.g.add_nodes_from((v.id, {"record": v}) for v in batch.versions)
        self.g.add_edges_from((e.source, e.target, {"row": (e.source, e.target, e.kind)})
                              for e in batch.edges)  # fmt: skip

    def log_run(self, step: Logged) -> None:
        run = step.run.id
        self.g.add_node(run, record=step.run)
        for e in step.inputs:
            self.g.add_edge(e.source, run, row=(e.source, run, e.kind))
        for _, version in step.outputs:
            vid = version.id
            self.g.add_node(vid, record=version)
            self.g.add_edge(run, vid, row=(run, vid, PRODUCED))

    write_run = log_run

    def _walk(self, start: str, up: bool, hops: int | None) -> tuple[set[str], set[Row], bool]:
        adjacency = self.g.pred if up else self.g.succ
        nodes, edges, truncated = {start}, set(), False
        frontier, done = [start], 0
        while frontier:
            at_limit = hops is not None and done >= hops
            following = []
            for node in frontier:
                for far, data in adjacency[node].items():
                    if far in nodes:
                        edges.add(data["row"])
                    elif at_limit:
                        truncated = True
                    else:
                        edges.add(data["row"])
                        nodes.add(far)
                        following.append(far)
            if at_limit:
                break
            frontier, done = following, done + 1
        return nodes, edges, truncated

    def _subgraph(
        self, ids: set[str], edges: set[Row], truncated: bool, root: str, derived: bool
    ) -> Subgraph:
        attrs = self.g.nodes
        if derived:  # as lineage.traversal assembles it, with the same fast constructors
            versions = {i: attrs[i]["record"] for i in ids if ":" in i}
            return derived_answer(versions, derived_triples(edges), truncated=truncated, root=root)
        edge_list = [Edge(source=s, target=t, kind=k) for s, t, k in sorted(edges)]
        nodes = []
        for node_id in sorted(ids):
            record = attrs[node_id]["record"]
            if ":" in node_id:
                nodes.append(version_node(node_id, record))
            else:
                nodes.append(run_node(record))
        return Subgraph(nodes=tuple(nodes), edges=tuple(edge_list), truncated=truncated, root=root)

    def upstream(self, ref: str) -> Subgraph:
        with paused_gc():  # as the stores' traversals do
            return self._subgraph(*self._walk(ref, True, 2 * DEPTH), root=ref, derived=False)

    def tree(self, ref: str) -> Subgraph:
        with paused_gc():
            return self._subgraph(*self._walk(ref, False, None), root=ref, derived=True)

    def first_page(self, ref: str) -> int:
        return 0  # networkx holds the whole graph: nothing to page

    def close(self) -> None:
        self.g.clear()


@dataclass
class Result:
    subject: str
    runs: int
    ingest_s: float = 0.0
    ingest_cpu_s: float = 0.0  # CPU seconds of this process over the ingest
    ingest_runs: int = 0
    ingest_records: int = 0
    per_run_s: float = 0.0
    per_run_runs: int = 0
    up_ms: list[float] = field(default_factory=list)
    up_nodes: int = 0
    tree_s: list[float] = field(default_factory=list)
    tree_cpu_s: list[float] = field(default_factory=list)
    tree_nodes: int = 0
    tree_edges: int = 0
    batch_rates: list[float] = field(default_factory=list)  # runs/s of each ingest batch
    batch_runs: list[int] = field(default_factory=list)  # runs in each (the last: the rest)
    page_ms: list[float] = field(default_factory=list)
    rss_up_mib: float = 0.0  # growth of this process's RSS over the upstream queries
    rss_page_mib: float = 0.0  # ... over the first pages
    rss_tree_mib: float = 0.0  # ... while holding one whole tree
    server_rss_mib: float = 0.0  # a server's (Neo4j's JVM) RSS at the end
    disk_mib: float = 0.0  # the store's files after ingest (and the warm-up)
    writers_rate: float = 0.0  # per-run writes, runs/s, with --writers threads
    writers_run_rate: float = 0.0  # the same, a run in one call (write_run)
    error: str | None = None
    sdk_writers_rate: float = 0.0  # real SDK runs (lineage.init ... finish), runs/s
    sdk_writers_cpu_ms: float = 0.0  # ... CPU ms of this process a run

    def metrics(self) -> dict[str, float]:
        if self.error:
            return {}
        # "flat from first to last" is judged on full batches: the rest after the last full
        # one (76 runs at 100k) is a transaction's fixed cost, not the store slowing down
        full = [r for r, n in zip(self.batch_rates, self.batch_runs, strict=False) if n == BATCH]
        full = full or self.batch_rates
        return {
            "ingest": self.ingest_runs / self.ingest_s,
            "ingest_records": self.ingest_records / self.ingest_s,
            "per_run": self.per_run_runs / self.per_run_s,
            "up_median": statistics.median(self.up_ms),
            "up_p95": percentile(self.up_ms, 95),
            "tree": statistics.median(self.tree_s),
            "tree_cpu": statistics.median(self.tree_cpu_s),
            **({"ingest_cpu": self.ingest_runs / self.ingest_cpu_s} if self.ingest_cpu_s else {}),
            **({"page_median": statistics.median(self.page_ms)} if self.page_ms else {}),
            **({"writers": self.writers_rate} if self.writers_rate else {}),
            **({"writers_run": self.writers_run_rate} if self.writers_run_rate else {}),
            **({"sdk_writers": self.sdk_writers_rate} if self.sdk_writers_rate else {}),
            **({"sdk_writers_cpu": self.sdk_writers_cpu_ms} if self.sdk_writers_cpu_ms else {}),
            "rss_up": self.rss_up_mib,
            "rss_page": self.rss_page_mib,
            "rss_tree": self.rss_tree_mib,
            **({"disk": self.disk_mib} if self.disk_mib else {}),
            **({"server_rss": self.server_rss_mib} if self.server_rss_mib else {}),
            **(
                {
                    "batch_first": self.batch_rates[0],
                    "batch_last": full[-1],
                    "batch_min": min(full),
                }
                if len(self.batch_rates) > 1
                else {}
            ),
        }


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def answer(sub: Subgraph) -> tuple[frozenset[str], frozenset[tuple[str, str, str | None]], bool]:
    """What must agree between stores: node ids, edges, truncation."""
    return sub.ids, frozenset((e.source, e.target, e.run) for e in sub.edges), sub.truncated


def warm_up(subject: Subject, warm: Tree | None) -> None:
    """Untimed: ingest a tree into a project of its own and ask it each question many times,
    so that a server is measured warm, as a long-running one is. Measured on this machine: a
    fresh Neo4j JVM ingests its first 20,000 runs at 1,261 runs/s, the next two 20,000 at
    4,357 and 5,140, and a warm one 6,700-8,900; upstream queries take 5.5-8 ms median
    until about a thousand have run, then ~3 ms."""
    if warm is None or subject.name == "networkx":
        return
    for batch in batches(warm, BATCH):
        subject.ingest(batch)
    for leaf in warm.leaves[:1000]:
        subject.upstream(leaf)
    for _ in range(3):
        subject.tree(warm.base)


def measure(
    subject: Subject,
    tree: Tree,
    load: Sequence[Batch],
    sdk: Sequence[Logged],
    leaves: Sequence[str],
    expected: dict[str, Any],
    log: Callable[[str], None],
    warm: Tree | None = None,
    concurrent: Sequence[Sequence[Logged]] = (),
    whole: Sequence[Sequence[Logged]] = (),
    sdk_runs: int = 0,
) -> Result:
    result = Result(subject=subject.name, runs=sum(tree.generations))
    warm_up(subject, warm)

    start, cpu = time.perf_counter(), time.process_time()
    for batch in load:
        began = time.perf_counter()
        subject.ingest(batch)
        result.batch_rates.append(len(batch.runs) / (time.perf_counter() - began))
        result.batch_runs.append(len(batch.runs))
        if len(result.batch_rates) % 20 == 0:  # a long ingest says how it goes
            log(f"    batch {len(result.batch_rates)}: {result.batch_rates[-1]:,.0f} runs/s")
    result.ingest_s = time.perf_counter() - start
    result.ingest_cpu_s = time.process_time() - cpu
    data = getattr(subject, "data", lambda: None)()
    if data is not None:
        result.disk_mib = disk_mib(data)
        log(f"  store on disk: {result.disk_mib:,.0f} MiB (with the warm-up's)")
    result.ingest_runs = sum(len(b.runs) for b in load)
    result.ingest_records = sum(b.records for b in load)
    rates = result.batch_rates
    log(
        f"  ingest {result.ingest_runs / result.ingest_s:,.0f} runs/s (batches: first "
        f"{rates[0]:,.0f}, last {rates[-1]:,.0f}, min {min(rates):,.0f}, max {max(rates):,.0f})"
    )

    # Queries run as in a process that freezes nothing (lineage.traversal.paused_gc moves an
    # answer to the oldest generation only then); writes run with the benchmark's own objects
    # frozen, so that no collection re-scans them on a store's time.
    gc.unfreeze()
    subject.upstream(tree.leaves[-1])  # warm-up: connections, caches, query plans
    before = rss_mib()
    for ref in leaves:
        took, sub = timed(lambda ref=ref: subject.upstream(ref))
        result.up_ms.append(took * 1000)
        result.up_nodes = max(result.up_nodes, len(sub.nodes))
        check(expected, f"up {ref}", answer(sub), subject.name)
    result.rss_up_mib = rss_mib() - before
    log(
        f"  upstream median {statistics.median(result.up_ms):.2f} ms "
        f"(RSS {result.rss_up_mib:+.1f} MiB over {len(leaves)} queries)"
    )

    if subject.name != "networkx":
        subject.first_page(tree.base)  # untimed: its first round trips
        before = rss_mib()
        # the tree holds versions only: every one made but the shared datasets
        versions = sum(len(step.outputs) for step in tree.steps) - DATASETS
        for _ in range(max(REPEAT, 5)):
            took, count = timed(lambda: subject.first_page(tree.base))
            result.page_ms.append(took * 1000)
            assert count == min(PAGE, versions), (count, versions)
        result.rss_page_mib = rss_mib() - before
        log(
            f"  first page of the tree ({PAGE:,} versions) median "
            f"{statistics.median(result.page_ms):.1f} ms (RSS {result.rss_page_mib:+.1f} MiB)"
        )

    for _ in range(REPEAT):
        before = rss_mib()
        cpu = time.process_time()
        took, sub = timed(lambda: subject.tree(tree.base))
        result.tree_cpu_s.append(time.process_time() - cpu)
        result.tree_s.append(took)
        result.rss_tree_mib = max(result.rss_tree_mib, rss_mib() - before)
        result.tree_nodes, result.tree_edges = len(sub.nodes), len(sub.edges)
        del sub
    check(expected, "tree", (result.tree_nodes, result.tree_edges), subject.name)
    gc.freeze()
    log(
        f"  tree median {statistics.median(result.tree_s):.3f} s ({result.tree_nodes:,} nodes, "
        f"RSS {result.rss_tree_mib:+.0f} MiB while held)"
    )

    start = time.perf_counter()
    for step in sdk:
        subject.log_run(step)
    result.per_run_s = time.perf_counter() - start
    result.per_run_runs = len(sdk)
    log(f"  per-run {result.per_run_runs / result.per_run_s:,.0f} runs/s")
    if concurrent and subject.name != "networkx":
        result.writers_rate = log_concurrently(subject, concurrent)
        log(f"  per-run, {len(concurrent)} writers: {result.writers_rate:,.0f} runs/s")
    if whole and subject.name != "networkx":
        result.writers_run_rate = log_concurrently(subject, whole, one_call=True)
        log(f"  per-run, {len(whole)} writers, a run a call: {result.writers_run_rate:,.0f} runs/s")
    url = getattr(subject, "url", lambda: None)()
    if sdk_runs and concurrent and url is not None:
        scratch = getattr(subject, "scratch")  # noqa: B009 - a StoreSubject's
        result.sdk_writers_rate, result.sdk_writers_cpu_ms = sdk_concurrently(
            url, scratch, tree, len(concurrent), sdk_runs
        )
        log(
            f"  the SDK, {len(concurrent)} writers: {result.sdk_writers_rate:,.1f} runs/s, "
            f"{result.sdk_writers_cpu_ms:.1f} CPU ms of this process a run"
        )
    server = getattr(subject, "server", lambda: None)()
    if server is not None:
        result.server_rss_mib = rss_mib(server)
        log(f"  server RSS {result.server_rss_mib:,.0f} MiB")
    return result


def log_concurrently(
    subject: Subject, shares: Sequence[Sequence[Logged]], one_call: bool = False
) -> float:
    """Runs/s of a thread per share logging its runs in order, as that many SDK processes
    would, through one store object (its connection pool): three calls a run, or
    (``one_call``) each run in one ``write_run``."""
    import threading

    failures: list[BaseException] = []

    def work(share: list[Logged]) -> None:
        try:
            log = subject.write_run if one_call else subject.log_run
            for step in share:
                log(step)
        except BaseException as exc:  # reported after the clock stops
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(list(share),)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - start
    if failures:
        raise failures[0]
    return sum(len(share) for share in shares) / took


def sdk_concurrently(
    url: str, scratch: Path, tree: Tree, writers: int, runs: int
) -> tuple[float, float]:
    """Runs/s and CPU ms a run of this process for ``writers`` threads each making ``runs``
    real SDK runs, as a training script does: ``lineage.init`` (with its ``reap_stale`` and
    the script's git code version), ``use_artifact`` of a model of ``tree`` and of a dataset,
    ``log_artifact`` of a one-file model (an artifact a writer: its own numbering), the
    ``with`` block's ``finish``. Every call is the SDK's, each durable when it returns. The
    runs are then checked: finished, two inputs and the logged version each."""
    import threading

    import lineage

    blobs = scratch / "sdk-blobs"
    files = scratch / "sdk-files"
    files.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    datasets = [f"{tree.project}/dataset:v{i}" for i in range(20)]
    plans = []
    for w in range(writers):
        plan = []
        for k in range(-1, runs):  # the first (-1): the untimed warm-up's
            path = files / f"w{w}{k}.bin"
            path.write_bytes(f"sdk model {w} {k} {time.time()}".encode())
            plan.append((rng.choice(tree.leaves), rng.choice(datasets), path))
        plans.append(plan)
    made: list[list[tuple[str, str]]] = [[] for _ in range(writers)]
    failures: list[BaseException] = []

    def work(w: int, plan: list[tuple[str, str, Path]]) -> None:
        try:
            for model, dataset, path in plan:
                with lineage.init(
                    project=tree.project, job_type="finetune", config={"lr": 1e-4},
                    store=url, blobs=str(blobs),
                ) as run:  # fmt: skip
                    run.use_artifact(model)
                    run.use_artifact(dataset)
                    artifact = lineage.Artifact(f"sdk-w{w}", type="model")
                    artifact.add_file(path)
                    version = run.log_artifact(artifact)
                made[w].append((run.id, version.ref))
        except BaseException as exc:  # reported after the clock stops
            failures.append(exc)

    for w in range(writers):  # untimed: the client, its connections, each artifact's first
        work(w, plans[w][:1])
        made[w].clear()
    threads = [threading.Thread(target=work, args=(w, plans[w][1:])) for w in range(writers)]
    cpu, start = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    if failures:
        raise failures[0]
    done = [pair for share in made for pair in share]
    from lineage.client import Client, _close_all

    service = Client.shared(url, str(blobs)).service
    for run_id, ref in done[:: max(1, len(done) // 50)]:  # a sample: each whole
        record = service.get_run(run_id)
        inputs, outputs = service.run_io(run_id)
        assert record.state == "finished", record
        assert len(inputs) == 2 and [v.ref for v in outputs] == [ref], (inputs, outputs)
    _close_all()  # the SDK's clients: before the store they talk to goes
    return len(done) / took, cpu / len(done) * 1000


def writer_shares(
    tree: Tree, writers: int, runs: int, seed: int, prefix: str = "x", first: int = 0
) -> list[list[Logged]]:
    """``runs`` fine-tuning runs for each of ``writers`` concurrent writers: each fine-tunes
    random models of ``tree`` on one of its datasets into an artifact of its own
    (``model-wN``), so its version indexes are its own, as separate experiments logging at
    once would. ``prefix`` keeps run ids and digests apart from another set's, ``first`` is
    the index of a writer's first version (after another set's)."""
    rng = random.Random(seed)
    datasets = [f"{tree.project}/dataset:v{i}" for i in range(20)]
    shares = []
    for w in range(writers):
        share = []
        for k in range(runs):
            run = RunRecord(
                id=f"{prefix}{w}{k:06d}", project=tree.project, name=f"writer-{w}-{k}",
                job_type="finetune", state="finished", config={"lr": 1e-4},
                started_at=1_700_000_000.0 + k, finished_at=1_700_000_001.0 + k,
            )  # fmt: skip
            version = VersionRecord(
                project=tree.project, name=f"model-w{w}", type="model", index=first + k,
                digest=hashlib.blake2b(f"{prefix}w{w}:{k}".encode(), digest_size=32).hexdigest(),
                size=1 << 20, file_count=1, metadata={"generation": 21}, aliases=(),
                created_by=run.id, created_at=1_700_000_000.0, state="committed",
            )  # fmt: skip
            inputs = (rng.choice(tree.leaves), rng.choice(datasets))
            share.append(logged(Step(run=run, inputs=inputs, outputs=(version,))))
        shares.append(share)
    return shares


def rss_mib(pid: int | str = "self") -> float:
    """The resident set of a process now, MiB (Linux)."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def check(expected: dict[str, Any], key: str, got: Any, name: str) -> None:
    if key not in expected:
        expected[key] = got
    elif expected[key] != got:
        raise AssertionError(f"{name} answers {key} differently from networkx")


# subjects ------------------------------------------------------------------------------------


class Neo4jServer:
    """A Neo4j to benchmark: the one at ``--neo4j`` (wiped), or one started per tree size."""

    def __init__(
        self, uri: str | None, start: bool, heap: str | None, cache: str | None, scratch: Path
    ) -> None:
        self.uri, self.start, self.heap, self.cache, self.scratch = uri, start, heap, cache, scratch
        self.process: Any = None
        self.data: Path | None = None

    def open(self, runs: int) -> GraphStore:
        from lineage.storage.neo4j import Neo4jGraphStore

        if self.start:
            sys.path.insert(0, str(REPO / "tests"))
            from neo4j_process import Neo4jProcess

            heap, cache = neo4j_memory(runs)
            env = {"NEO4J_HEAP": self.heap or heap, "NEO4J_PAGECACHE": self.cache or cache}
            print(f"  neo4j heap {env['NEO4J_HEAP']}, page cache {env['NEO4J_PAGECACHE']}",
                  file=sys.stderr, flush=True)  # fmt: skip
            self.process = Neo4jProcess(extra_env=env)
            self.data = self.scratch / f"neo4j-{runs}"
            self.process.start(self.data)
            self.uri = self.process.uri
        else:
            assert self.uri is not None
            wipe(self.uri)
        graph: GraphStore = Neo4jGraphStore(self.uri)
        return graph

    def close(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def neo4j_memory(runs: int) -> tuple[str, str]:
    """Heap and page cache of a started Neo4j for a tree of ``runs`` (with the warm-up):
    the store takes ~250 MiB on disk per 100,000 runs; the page cache holds all of it, and
    the heap the whole-tree answer the server builds in one query. (Up to 100,000 runs it was
    512m, less than the 570 MiB that 100,000 runs and the warm-up take: pages were evicted
    during the ingest and the tree's walk.)"""
    if runs <= 100_000:
        return "768m", "1g"
    return "4g", f"{max(1, round(runs / 100_000 * 0.3))}g"


def disk_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def wipe(uri: str) -> None:
    import os

    import neo4j

    user, password = os.environ.get("NEO4J_USER"), os.environ.get("NEO4J_PASSWORD")
    auth = (user or "neo4j", password or "") if user or password else None
    with neo4j.GraphDatabase.driver(uri, auth=auth) as driver, driver.session() as session:
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def run_size(
    runs: int, args: argparse.Namespace, scratch: Path, log: Callable[[str], None]
) -> list[Result]:
    started = time.perf_counter()
    tree = generate(runs, seed=args.seed)
    # the per-run path logs a second tree into the same project and artifacts
    sdk = generate(max(args.sdk_runs, DEPTH), seed=args.seed + 1, run_prefix="s", after=tree)
    load = batches(tree, BATCH)
    sdk_steps = [logged(step) for step in sdk.steps[: args.sdk_runs]]
    shares = (
        writer_shares(tree, args.writers, args.writer_runs, args.seed + 3) if args.writers else []
    )
    whole = (
        writer_shares(tree, args.writers, args.writer_runs, args.seed + 4, "y", args.writer_runs)
        if args.writers
        else []
    )
    leaves = random.Random(args.seed).sample(tree.leaves, min(QUERIES, len(tree.leaves)))
    warm = (
        generate(args.warm_up, seed=args.seed + 2, project="warm", run_prefix="w")
        if args.warm_up
        else None
    )
    # the generated records stay out of the collector's way: a store is measured, not the
    # cost of re-scanning the benchmark's own million objects
    gc.collect()
    gc.freeze()
    log(
        f"tree of {runs:,} fine-tuning runs: {len(tree.steps):,} runs, {tree.node_count:,} "
        f"nodes, generated in {time.perf_counter() - started:.1f}s"
    )
    expected: dict[str, Any] = {}
    results = []

    subjects: list[tuple[str, Callable[[], Subject], Callable[[], None]]] = []
    if args.networkx:
        subjects.append(("networkx", NetworkxSubject, lambda: None))
    if "sqlite" in args.stores:
        from lineage.storage.sqlite import SQLiteGraphStore

        path = scratch / f"sqlite-{runs}"
        subjects.append(
            (
                "sqlite",
                lambda: StoreSubject(
                    "sqlite",
                    SQLiteGraphStore(path / "lineage.db"),
                    path,
                    data=lambda: path,
                    url=lambda: str(path),
                ),
                (lambda: log(f"  kept: lineage --store {path} -p {tree.project} ls"))
                if args.keep
                else (lambda: shutil.rmtree(path, ignore_errors=True)),
            )
        )
    if "neo4j" in args.stores:
        server = Neo4jServer(
            args.neo4j, args.start_neo4j, args.neo4j_heap, args.neo4j_pagecache, scratch
        )
        subjects.append(
            (
                "neo4j",
                lambda: StoreSubject(
                    "neo4j",
                    server.open(runs),
                    scratch / f"neo4j-blobs-{runs}",
                    data=lambda: server.data,
                    server=lambda: server.process.pid if server.process else None,
                    url=lambda: server.uri,
                ),
                server.close,
            )
        )

    for name, make, cleanup in subjects:
        log(f" {name}")
        subject: Subject | None = None
        try:
            subject = make()
            results.append(
                measure(
                    subject,
                    tree,
                    load,
                    sdk_steps,
                    leaves,
                    expected,
                    log,
                    warm,
                    shares,
                    whole,
                    args.sdk_writer_runs,
                )
            )
        except Exception as exc:
            traceback.print_exc()
            results.append(Result(subject=name, runs=runs, error=f"{type(exc).__name__}: {exc}"))
            log(f"  FAILED: {type(exc).__name__}: {exc}")
        finally:
            if subject is not None:
                with contextlib.suppress(Exception):
                    subject.close()
            cleanup()
            del subject
            gc.collect()
    gc.unfreeze()
    return results


def explain(scratch: Path) -> str:
    """EXPLAIN QUERY PLAN of the SQL the SQLite store really runs for expand, both ways."""
    from lineage.storage.sqlite import SQLiteGraphStore

    graph = SQLiteGraphStore(scratch / "explain" / "lineage.db")
    db = graph._db()
    seen: list[str] = []
    db.set_trace_callback(seen.append)  # the statements with their parameters bound
    graph.expand_rows(["p/model:v0", "p/model:v1"], "down")
    graph.expand_rows(["p/model:v1"], "up")
    db.set_trace_callback(None)
    out = []
    for sql in seen:
        out.append(sql)
        out += [f"    {row[3]}" for row in db.execute("EXPLAIN QUERY PLAN " + sql)]
    graph.close()
    return "\n".join(out)


# reporting -----------------------------------------------------------------------------------

ROWS = [
    ("ingest", "bulk ingest, runs/s", "{:,.0f}", True),
    ("ingest_cpu", "  same, runs per CPU s of this process", "{:,.0f}", True),
    ("ingest_records", "bulk ingest, records/s", "{:,.0f}", True),
    ("per_run", "per-run graph writes, runs/s", "{:,.0f}", True),
    ("up_median", "upstream depth 20, median ms", "{:.2f}", False),
    ("up_p95", "upstream depth 20, p95 ms", "{:.2f}", False),
    ("tree", "downstream tree, median s", "{:.3f}", False),
    ("tree_cpu", "  same, CPU s of this process", "{:.3f}", False),
    ("page_median", "first page of the tree, median ms", "{:.1f}", False),
    ("batch_first", "ingest, first batch, runs/s", "{:,.0f}", True),
    ("batch_last", "ingest, last full batch, runs/s", "{:,.0f}", True),
    ("batch_min", "ingest, slowest full batch, runs/s", "{:,.0f}", True),
    ("writers", "per-run writes, concurrent writers, runs/s", "{:,.0f}", True),
    ("writers_run", "  same, a run in one call (write_run), runs/s", "{:,.0f}", True),
    ("sdk_writers", "  same, the SDK itself (init, 2 uses, log, finish), runs/s", "{:,.1f}", True),
    ("sdk_writers_cpu", "  ... CPU ms of this process a run (SDK)", "{:.1f}", False),
    ("rss_up", "RSS growth over upstream queries, MiB", "{:+.1f}", False),
    ("rss_page", "RSS growth over first pages, MiB", "{:+.1f}", False),
    ("rss_tree", "RSS growth holding one tree, MiB", "{:+.0f}", False),
    ("disk", "store on disk after ingest, MiB", "{:,.0f}", False),
    ("server_rss", "server RSS at the end, MiB", "{:,.0f}", False),
]


RATIOS = {"ingest", "ingest_records", "per_run", "up_median", "up_p95", "tree", "tree_cpu"}


def table(results: list[Result]) -> str:
    by_name = {r.subject: r for r in results}
    floor = by_name["networkx"].metrics() if "networkx" in by_name else {}
    names = [r.subject for r in results]
    header = ["metric", *names, "goal (100k)"]
    lines = []
    for key, label, fmt, higher in ROWS:
        cells = [label]
        for name in names:
            r = by_name[name]
            metrics = r.metrics()
            if key not in metrics:
                cells.append("failed" if r.error else "-")
                continue
            value = metrics[key]
            cell = fmt.format(value)
            if name != "networkx" and floor.get(key) and key in RATIOS:
                ratio = floor[key] / value if higher else value / floor[key]
                cell += f" (x{ratio:.1f})"
            cells.append(cell)
        goals = [f"{n} {GOALS[(n, key)]}" for n in names if (n, key) in GOALS]
        cells.append("; ".join(goals))
        lines.append(cells)
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def fmt_row(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [fmt_row(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt_row(row) for row in lines]
    for r in results:
        if r.error:
            out.append(f"{r.subject}: {r.error}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    global BATCH, QUERIES, REPEAT
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "neo4j"])
    parser.add_argument("--neo4j", metavar="URI", help="benchmark this Neo4j (it is WIPED)")
    parser.add_argument("--start-neo4j", action="store_true", help="start one per tree size")
    parser.add_argument(
        "--neo4j-heap", help="heap of a started Neo4j (default: by size, neo4j_memory)"
    )
    parser.add_argument("--neo4j-pagecache", help="page cache of a started Neo4j (by size)")
    parser.add_argument(
        "--no-networkx", dest="networkx", action="store_false",
        help="leave networkx out (at 1M it holds ~2.6M nodes in memory: several GiB)",
    )  # fmt: skip
    parser.add_argument(
        "--writers", type=int, default=8, help="concurrent writers for the per-run path (0: none)"
    )
    parser.add_argument("--writer-runs", type=int, default=500, help="runs per concurrent writer")
    parser.add_argument("--sdk-runs", type=int, default=5000, help="runs for the per-run path")
    parser.add_argument(
        "--sdk-writer-runs", type=int, default=25,
        help="real SDK runs (lineage.init ... finish) per concurrent writer (0: none)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--warm-up", type=int, default=40_000, metavar="RUNS",
        help="untimed: a tree this size in a project of its own first (0: measure cold)",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--scratch", type=Path, help="where stores live (default: a temp dir)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave each SQLite store behind in --scratch (DIR/sqlite-RUNS, a store the CLI, "
        "SDK and server open; no blobs), instead of removing it after its size",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--explain", action="store_true", help="print SQLite's expand plans")
    args = parser.parse_args(argv)
    if args.keep and args.scratch is None:
        parser.error("--keep needs --scratch DIR: where the stores are left")
    BATCH, QUERIES, REPEAT = args.batch, args.queries, args.repeat
    if "neo4j" in args.stores and not (args.neo4j or args.start_neo4j or args.explain):
        args.stores = [s for s in args.stores if s != "neo4j"]
        print("neo4j: skipped (give --neo4j URI or --start-neo4j)", file=sys.stderr)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="lineage-bench-graph-"))
    scratch.mkdir(parents=True, exist_ok=True)
    everything = {}
    try:
        if args.explain:
            print(explain(scratch))
            return 0
        for runs in args.runs:
            results = run_size(runs, args, scratch, log)
            everything[runs] = results
            floor = results[0]
            walked = 2 * (floor.ingest_runs - 2) + 1  # every run but prepare and pretrain
            print(
                f"\n{runs:,} fine-tuning runs ({floor.ingest_runs:,} runs with evaluations, "
                f"{floor.ingest_records:,} records); downstream of the base: {walked:,} nodes "
                f"walked, {floor.tree_nodes:,} versions in the tree; per-run path: "
                f"{args.sdk_runs:,} runs\n"
            )
            print(table(results), flush=True)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:,.0f} MiB")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    str(n): [r.__dict__ | {"metrics": r.metrics()} for r in rs]
                    for n, rs in everything.items()
                },
                indent=1,
            )
        )
    return 0 if all(not r.error for rs in everything.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
