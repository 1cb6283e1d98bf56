"""OpenLineage ingest over HTTP against the same runs logged through the SDK over HTTP.

A Spark-like job run is two events (``START`` and ``COMPLETE``), each naming two inputs (a
table every run reads and one of its own) and one output with a schema facet: one run, two
inputs and one new dataset version. The same runs are logged through the SDK into the same
kind of server (``lineage.init(store=URL)``, two ``use_artifact``, one ``log_artifact`` of
a one-file artifact, finish) as the baseline. Both run against ``lineage server`` in a child
process on loopback (one worker) over SQLite and over Neo4j, with 1 and 8 concurrent
clients (threads, each posting its next request when the last is answered). Figures are
events/s (OpenLineage) and runs/s (both; a run is two events), the median of ``--rounds``.

- ``single``: one event per POST to ``/api/v1/lineage``, as the openlineage-python HTTP
  transport sends them. The goal is judged on this figure, with 8 clients.
- ``batch``: the same events, 50 per POST to ``/api/v1/lineage/batch`` (not the goal).
- ``async``: the same events emitted by one openlineage-python client through its
  ``AsyncHttpTransport`` (one event per POST, up to ``--concurrent`` requests in flight, a
  run's COMPLETE held until its START was answered): the client's high-throughput mode,
  from one process. Measured with 1 client only (it is one client already sending many).
- ``floor`` (``--floor``): the same clients and events against ``bench/floor_server.py``,
  the same HTTP stack (uvicorn, httptools, Starlette, the access log) without lineage:
  ``http`` parses each body and answers 201, ``commit`` also inserts it into SQLite with one
  commit a request. What the stack allows on this machine in the same minutes; lineage's
  single-event figures are printed as a ratio of both.
- ``--client raw``: the single-event cells (and the floor's) sent from raw keep-alive
  sockets, requests made in advance, instead of httpx: the clients run on the same 2 cores
  as the server, and httpx's 0.5-2 ms of CPU a request held the floor itself under 1,000
  events/s on this machine (bench/README.md: "the clients' share").
- ``server CPU``: CPU seconds the server process used per event (user + system), a figure
  that depends less on what else the machine runs than events/s do.

Goal (issue 11): >= 1,000 events/s into SQLite; Neo4j no slower than half that.

    .venv/bin/python bench/bench_openlineage.py [--runs 400] [--rounds 3] [--neo4j bolt://...]

Without ``--neo4j`` a Neo4j is started from ``storage/neo4j`` (tests/neo4j_process.py). With
``--warm-up RUNS`` each lineage server is sent that many runs untimed before its cells
(:func:`warm_up`), else 20. ``--warm-up auto`` (Neo4j started here): 1,000 runs, then cells of
single events at 8 clients until the JVM's CPU an event stops falling (:func:`warm_until_flat`):
a young JVM's JIT compiler takes a third to a half of its CPU for thousands of events, which a
long-running database server has long finished (bench/README.md, fourteenth session).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from ports import free_port  # noqa: E402
from server_process import ServerProcess  # noqa: E402

import lineage  # noqa: E402
from lineage.server.app import open_service  # noqa: E402
from lineage.server.auth import create_token  # noqa: E402

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"


def run_events(tag: str, i: int) -> list[bytes]:
    run = str(uuid.uuid4())
    base: dict[str, Any] = {
        "producer": PRODUCER,
        "run": {"runId": run},
        "job": {"namespace": f"spark-{tag}", "name": f"etl.job_{i % 50}"},
        "inputs": [
            {"namespace": f"s3://lake-{tag}", "name": "dim/customers"},
            {"namespace": f"s3://lake-{tag}", "name": f"raw/part-{i}"},
        ],
        "outputs": [
            {
                "namespace": f"s3://lake-{tag}",
                "name": f"clean/part-{i}",
                "facets": {
                    "schema": {
                        "_producer": PRODUCER,
                        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json",
                        "fields": [{"name": c, "type": "STRING"} for c in "abcdef"],
                    }
                },
            }
        ],
    }
    return [
        json.dumps({**base, "eventType": kind, "eventTime": f"2024-05-01T10:{m:02d}:00Z"}).encode()
        for kind, m in (("START", 0), ("COMPLETE", 1))
    ]


def in_threads(clients: int, work: list[Any], each: Callable[[Any, int], None]) -> float:
    """Seconds to do ``work`` split over ``clients`` threads (``each(item, thread)``)."""
    shares = [work[k::clients] for k in range(clients)]
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for item in shares[k]:
                each(item, k)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


CLIENT = "httpx"  # --client: the single-event cells' client (httpx, or raw sockets)


def bench_openlineage(url: str, token: str, runs: int, clients: int) -> float:
    tag = uuid.uuid4().hex[:6]
    work = [run_events(tag, i) for i in range(runs)]
    if CLIENT == "raw":
        return 2 * runs / raw_posts(url, token, work, clients)
    sessions = [
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        for _ in range(clients)
    ]

    def post(events: list[bytes], k: int) -> None:
        for body in events:
            answer = sessions[k].post(
                "/api/v1/lineage", content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 201, answer.text

    seconds = in_threads(clients, work, post)
    for s in sessions:
        s.close()
    return 2 * runs / seconds


def raw_posts(url: str, token: str, work: list[list[bytes]], clients: int) -> float:
    """Seconds to POST each run's events to ``/api/v1/lineage`` from ``clients`` threads,
    each on its own keep-alive connection, from requests made before the clock starts and
    answers read by their ``Content-Length``: tens of microseconds of this process's CPU a
    request where httpx spends 0.5-2 ms (bench/README.md), so that the clients, which share
    the machine's cores with the server, take little of them."""
    host, _, port = url.removeprefix("http://").partition(":")
    head = (
        f"POST /api/v1/lineage HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    ).encode()
    requests = [[head + b"Content-Length: %d\r\n\r\n" % len(e) + e for e in run] for run in work]
    connections = [socket.create_connection((host, int(port)), timeout=60) for _ in range(clients)]

    def post(run: list[bytes], k: int) -> None:
        sock = connections[k]
        for request in run:
            sock.sendall(request)
            received = b""
            while True:
                head, found, body = received.partition(b"\r\n\r\n")
                if found:
                    length = int(head.lower().partition(b"content-length:")[2].split(b"\r")[0])
                    if len(body) >= length:
                        break
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                received += chunk
            assert received.startswith(b"HTTP/1.1 201 "), received

    try:
        return in_threads(clients, requests, post)
    finally:
        for sock in connections:
            sock.close()


def warm_up(url: str, token: str, runs: int) -> float:
    """Seconds to send ``runs`` runs' events untimed, so that a server is measured warm, as
    a long-running one is (``bench_graph.py`` warms its stores the same way): nine tenths in
    batches from 8 clients, the rest one event a request (query plans, connections, and a
    JVM's compiled code: measured in process, one group's Neo4j CPU an event fell from 42 ms
    over the first 400 events to 4 ms after 1,600, and was still falling)."""
    start = time.perf_counter()
    if runs >= 10:
        bench_batch(url, token, runs - runs // 10, 8)
    bench_openlineage(url, token, max(runs // 10, 20), 8)
    return time.perf_counter() - start


def bench_batch(url: str, token: str, runs: int, clients: int, size: int = 50) -> float:
    """Events/s posting the same events ``size`` at a time to the batch endpoint."""
    tag = uuid.uuid4().hex[:6]
    events = [json.loads(e) for i in range(runs) for e in run_events(tag, i)]
    batches = [events[k : k + size] for k in range(0, len(events), size)]
    sessions = [
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        for _ in range(clients)
    ]

    def post(batch: list[Any], k: int) -> None:
        answer = sessions[k].post("/api/v1/lineage/batch", json=batch)
        assert answer.status_code == 200, answer.text

    seconds = in_threads(clients, batches, post)
    for s in sessions:
        s.close()
    return len(events) / seconds


def client_event(event: dict[str, Any]) -> Any:
    """``event`` as the openlineage-python client's RunEvent (what an integration emits)."""
    from openlineage.client import event_v2 as ol
    from openlineage.client.facet_v2 import schema_dataset

    def dataset(kind: type[Any], d: dict[str, Any]) -> Any:
        facets = {}
        if "schema" in d.get("facets", {}):
            fields = d["facets"]["schema"]["fields"]
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(f["name"], f["type"]) for f in fields
                ]
            )
        return kind(d["namespace"], d["name"], facets=facets)

    return ol.RunEvent(
        eventType=ol.RunState(event["eventType"]),
        eventTime=event["eventTime"],
        producer=event["producer"],
        run=ol.Run(runId=event["run"]["runId"]),
        job=ol.Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
        inputs=[dataset(ol.InputDataset, d) for d in event["inputs"]],
        outputs=[dataset(ol.OutputDataset, d) for d in event["outputs"]],
    )


def bench_async(url: str, token: str, runs: int, concurrent: int) -> float:
    """Events/s of one openlineage-python client emitting through its AsyncHttpTransport,
    from the first ``emit`` until every event was answered (each must be stored)."""
    from openlineage.client.transport.async_http import AsyncHttpConfig, AsyncHttpTransport
    from openlineage.client.transport.http import ApiKeyTokenProvider

    tag = uuid.uuid4().hex[:6]
    events = [client_event(json.loads(e)) for i in range(runs) for e in run_events(tag, i)]
    config = AsyncHttpConfig(
        url=url,
        auth=ApiKeyTokenProvider({"apiKey": token}),
        timeout=60,
        max_concurrent_requests=concurrent,
    )
    transport = AsyncHttpTransport(config)
    start = time.perf_counter()
    for event in events:
        transport.emit(event)
    if not transport.wait_for_completion(timeout=600):
        raise RuntimeError(f"AsyncHttpTransport: events left after 600 s: {transport.get_stats()}")
    seconds = time.perf_counter() - start
    transport.close()
    stats = transport.get_stats()
    if stats.get("failed") or stats.get("success") != len(events):
        raise RuntimeError(f"AsyncHttpTransport did not store every event: {stats}")
    return len(events) / seconds


def machine_busy(since: tuple[int, int] | None = None) -> Any:
    """The machine's CPU ticks so far ``(busy, total)`` (/proc/stat), or, given an earlier
    reading, the share of the CPUs' time that was busy since: under 100% at the goal's cell,
    the writer's groups wait (on Neo4j, on the disk) rather than run out of cores."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    now = (sum(ticks) - idle, sum(ticks))
    if since is None:
        return now
    return (now[0] - since[0]) / max(1, now[1] - since[1])


AUTO = -1  # --warm-up auto


def _warm_up_runs(text: str) -> int:
    return AUTO if text == "auto" else int(text)


def warm_until_flat(url: str, token: str, jvm: int, runs: int = 300, most: int = 40) -> None:
    """Cells of ``runs`` single-event runs at 8 clients, untimed, until the JVM's CPU an
    event is no longer falling: ten cells at least (6,000 events; a run that stopped after
    eight, at 4.4 ms, was on a plateau the JIT later leaves: another reached 1.9 after
    thirteen), then three cells in a row none of which went 10% below the lowest of the
    cells before them (one cell's figure swings with the machine's load), ``most`` cells at
    most. Each cell's figure is printed: how long a young Neo4j takes to reach what
    a long-running one spends (its JIT compiler's work)."""
    seen: list[float] = []
    start = time.perf_counter()
    while len(seen) < most:
        before = cpu_seconds(jvm)
        bench_openlineage(url, token, runs, 8)
        seen.append((cpu_seconds(jvm) - before) / (2 * runs))
        if len(seen) >= 10 and min(seen[-3:]) > 0.9 * min(seen[:-3]):
            break
    print(
        f"neo4j  warm until flat: {len(seen) * runs * 2:,} single events in "
        f"{time.perf_counter() - start:.0f} s; the JVM's CPU an event, cell by cell (ms): "
        + " ".join(f"{1000 * x:.2f}" for x in seen),
        flush=True,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its child processes so far (Linux: /proc;
    the workers of ``--workers``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return own + sum(cpu_seconds(int(child)) for child in children)


class ChildServer:
    """A server in a child process on loopback, answering ``/healthz`` once up."""

    def __init__(self, command: list[str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        quiet = subprocess.DEVNULL  # the access log, as ServerProcess's goes to a file
        self.process = subprocess.Popen(self.command, stdout=quiet, stderr=quiet)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server on {self.url} did not answer in 60 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def bench_floor(runs: int, rounds: int) -> dict[tuple[str, int], float]:
    """Single events/s of the floor servers at 1 and 8 clients (median of ``rounds``), printed;
    by (mode, clients)."""
    out = {}
    for mode in ("http", "commit"):
        port = free_port()
        script = str(REPO / "bench" / "floor_server.py")
        server = ChildServer([sys.executable, script, str(port), mode], port)
        server.start()
        assert server.process is not None
        try:
            bench_openlineage(server.url, "none", 20, 1)  # warm-up
            for clients in (1, 8):
                rates, cpu = [], []
                for _ in range(rounds):
                    before = cpu_seconds(server.process.pid)
                    rates.append(bench_openlineage(server.url, "none", runs, clients))
                    cpu.append((cpu_seconds(server.process.pid) - before) / (2 * runs))
                out[mode, clients] = rate = statistics.median(rates)
                ms = 1000 * statistics.median(cpu)
                print(
                    f"floor  {mode:6} clients={clients}: single {rate:6.0f} events/s (server CPU "
                    f"{ms:.2f} ms/event); load {os.getloadavg()[0]:.1f}; "
                    f"rounds {' '.join(f'{x:.0f}' for x in rates)}",
                    flush=True,
                )
        finally:
            server.stop()
    return out


class WorkersServer(ChildServer):
    """``lineage server --workers N`` (serving.serve) in a child process on loopback."""

    def __init__(self, store: str, blobs: str, *, port: int, workers: int) -> None:
        code = (
            "import sys; from lineage.server.serving import serve; "
            "serve(sys.argv[1], sys.argv[2], port=int(sys.argv[3]), workers=int(sys.argv[4]))"
        )
        super().__init__([sys.executable, "-c", code, store, blobs, str(port), str(workers)], port)


def bench_sdk(url: str, token: str, runs: int, clients: int, scratch: Path) -> float:
    project = f"sdk{uuid.uuid4().hex[:6]}"
    files = scratch / project
    files.mkdir()
    with lineage.init(project=project, job_type="seed", store=url, token=token) as run:
        for name, body in (("customers", b"c"), *((f"raw{i}", b"%d" % i) for i in range(runs))):
            (files / name).write_bytes(body)
            art = lineage.Artifact(name, type="dataset")
            art.add_file(files / name)
            run.log_artifact(art)

    def log(i: int, k: int) -> None:
        out = files / f"clean{i}"
        out.write_bytes(b"clean %d" % i)
        with lineage.init(project=project, job_type="etl", store=url, token=token) as run:
            run.use_artifact("customers:latest")
            run.use_artifact(f"raw{i}:latest")
            art = lineage.Artifact(f"clean{i}", type="dataset", metadata={"columns": 6})
            art.add_file(out)
            run.log_artifact(art)

    return runs / in_threads(clients, list(range(runs)), log)


def bench_in_process(store: str, blobs: str, runs: int, group: int) -> dict[str, float]:
    """CPU ms an event of ``ingest_group`` (no HTTP), groups of ``group`` events as 8
    clients make them (START of 4 runs then their COMPLETE), set-based and event by event
    (``SET_BASED`` off: the per-event path), alternating groups in one process."""
    from lineage.openlineage import check_event
    from lineage.openlineage import group as grouping

    service = open_service(store, blobs)
    spent = {True: 0.0, False: 0.0}
    counted = {True: 0, False: 0}
    try:
        for set_based in (True, False, True, False):
            tag = uuid.uuid4().hex[:6]
            events = [json.loads(e) for i in range(runs) for e in run_events(tag, i)]
            grouping.SET_BASED = set_based
            for k in range(0, len(events), group):
                part = events[k : k + group]
                part = part[0::2] + part[1::2]
                start = time.process_time()
                for result in grouping.ingest_group(service, [check_event(e) for e in part]):
                    if isinstance(result, Exception):
                        raise result
                spent[set_based] += time.process_time() - start
                counted[set_based] += len(part)
    finally:
        grouping.SET_BASED = True
        service.graph.close()
    return {"set-based": 1000 * spent[True] / counted[True],
            "per event": 1000 * spent[False] / counted[False]}  # fmt: skip


class _Cells:
    """One server's figures at one number of clients, round by round."""

    def __init__(self) -> None:
        self.single: list[float] = []
        self.batch: list[float] = []
        self.sdk: list[float] = []
        self.cpu: list[float] = []
        self.jvm_cpu: list[float] = []
        self.busy: list[float] = []
        self.batch_cpu: list[float] = []

    def measure(
        self,
        url: str,
        token: str,
        pid: int,
        args: Any,
        clients: int,
        scratch: Path,
        jvm: int | None = None,
    ) -> None:
        before, machine = cpu_seconds(pid), machine_busy()
        jvm_before = cpu_seconds(jvm) if jvm else 0.0
        self.single.append(bench_openlineage(url, token, args.runs, clients))
        self.cpu.append((cpu_seconds(pid) - before) / (2 * args.runs))
        self.busy.append(machine_busy(since=machine))
        if jvm:
            self.jvm_cpu.append((cpu_seconds(jvm) - jvm_before) / (2 * args.runs))
        before = cpu_seconds(pid)
        self.batch.append(bench_batch(url, token, args.runs, clients))
        self.batch_cpu.append((cpu_seconds(pid) - before) / (2 * args.runs))
        if not args.no_sdk:
            self.sdk.append(bench_sdk(url, token, args.runs // 4, clients, scratch))

    def report(
        self, what: str, args: Any, clients: int, floor: dict[tuple[str, int], float]
    ) -> None:
        ol = statistics.median(self.single)
        sdk_runs = statistics.median(self.sdk or [float("nan")])
        of_floor = "".join(
            f"; {ol / floor[mode, clients]:.2f}x the {mode} floor"
            for mode in ("http", "commit")
            if (mode, clients) in floor
        )
        print(
            f"{what} clients={clients}: single {ol:6.0f} events/s "
            f"({ol / 2:5.0f} runs/s, server CPU {1000 * statistics.median(self.cpu):.2f} "
            f"ms/event); batch {statistics.median(self.batch):6.0f} events/s "
            f"(server CPU {1000 * statistics.median(self.batch_cpu):.2f} ms/event); "
            f"SDK {sdk_runs:5.1f} runs/s; single/SDK runs {ol / 2 / sdk_runs:5.1f}x"
            f"{of_floor}; load {os.getloadavg()[0]:.1f}; "
            + (
                f"Neo4j's JVM CPU {1000 * statistics.median(self.jvm_cpu):.2f} ms/event; "
                if self.jvm_cpu
                else ""
            )
            + f"machine busy {100 * statistics.median(self.busy):.0f}% (single); "
            f"rounds {' '.join(f'{x:.0f}' for x in self.single)}, "
            f"batch {' '.join(f'{x:.0f}' for x in self.batch)}",
            flush=True,
        )

    @staticmethod
    def report_async(what: str, url: str, token: str, pid: int, args: Any) -> None:
        asynced, async_cpu = [], []
        for _ in range(args.rounds):
            before = cpu_seconds(pid)
            asynced.append(bench_async(url, token, args.runs, args.concurrent))
            async_cpu.append((cpu_seconds(pid) - before) / (2 * args.runs))
        print(
            f"{what} 1 client, AsyncHttpTransport ({args.concurrent} in flight): "
            f"{statistics.median(asynced):6.0f} events/s "
            f"(server CPU {1000 * statistics.median(async_cpu):.2f} ms/event); "
            f"rounds {' '.join(f'{x:.0f}' for x in asynced)}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400, help="job runs per cell")
    parser.add_argument("--neo4j", help="a Neo4j to use (wiped); default: start one")
    parser.add_argument("--stores", default="sqlite,neo4j")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per cell (median)")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (lineage server --workers)"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="ingest_group's CPU an event, no HTTP: set-based against event by event",
    )
    parser.add_argument(
        "--warm-up",
        type=_warm_up_runs,
        default=0,
        metavar="RUNS|auto",
        help="runs sent untimed to each lineage server first, so that Neo4j's JVM is measured "
        "warm (e.g. 2000: 4,000 events; default 0: only 20 runs, as before); auto: 1,000, then "
        "single events until the JVM's CPU an event stops falling",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="first the same clients against bench/floor_server.py (the HTTP stack, no lineage)",
    )
    parser.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="the single-event cells' client: httpx (as before), or raw: a keep-alive socket a "
        "thread and requests made in advance, for the server's rate with little CPU spent by "
        "the clients (which share the cores with it)",
    )
    parser.add_argument(
        "--writers",
        default="process",
        help="the server's OpenLineage writer, or several (process,thread): one server each, "
        "their rounds alternated (LINEAGE_OPENLINEAGE_WRITER); thread:2, groups "
        "written at once (LINEAGE_OPENLINEAGE_LANES)",
    )
    parser.add_argument(
        "--no-sdk", action="store_true", help="leave out the SDK baseline (a quicker run)"
    )
    parser.add_argument(
        "--concurrent",
        type=int,
        default=100,
        help="requests in flight of the async cell (AsyncHttpTransport's default: 100)",
    )
    args = parser.parse_args(argv)
    global CLIENT
    CLIENT = args.client
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{platform.machine()} {_cpu_model()}, {os.cpu_count()} cores, load average {load}; "
        f"single events sent by {args.client} clients"
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench-ol-"))
    neo = None
    floor = bench_floor(args.runs, args.rounds) if args.floor else {}
    for kind in args.stores.split(","):
        blobs = str(scratch / f"blobs-{kind}")
        if kind == "sqlite":
            store = str(scratch / "store")
        else:
            if args.neo4j is None and neo is None:
                from neo4j_process import Neo4jProcess

                neo = Neo4jProcess()
                neo.start(scratch / "neo4j")
            store = args.neo4j or neo.uri  # type: ignore[union-attr]
        if args.in_process:
            for size in (1, 8, 50):
                cells = [
                    bench_in_process(store, blobs, args.runs, size) for _ in range(args.rounds)
                ]
                ours = statistics.median(c["set-based"] for c in cells)
                theirs = statistics.median(c["per event"] for c in cells)
                print(
                    f"{kind:6} in process, groups of {size:2}: CPU {ours:.2f} ms/event set-based, "
                    f"{theirs:.2f} event by event ({theirs / ours:.2f}x); "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            continue
        writers = args.writers.split(",")
        servers: dict[str, tuple[ServerProcess | WorkersServer, int, str]] = {}
        try:
            for writer in writers:  # one server each, over a store of its own (SQLite)
                where = store if kind != "sqlite" else str(scratch / f"store-{writer}")
                service = open_service(where, f"{blobs}-{writer}")
                token = create_token(service, "write", "bench")
                service.graph.close()
                # the server inherits them; thread:2, groups written at once; thread:2:6,
                # the second once 6 events wait
                kind_of, lanes, least = ([*writer.split(":"), "", ""])[:3]
                os.environ["LINEAGE_OPENLINEAGE_WRITER"] = kind_of
                os.environ["LINEAGE_OPENLINEAGE_LANES"] = lanes
                os.environ["LINEAGE_LANE_MIN"] = least or "4"
                server: ServerProcess | WorkersServer
                if args.workers > 1:
                    server = WorkersServer(
                        where, f"{blobs}-{writer}", port=free_port(), workers=args.workers
                    )
                else:
                    log = scratch / f"{kind}-{writer}.log"
                    server = ServerProcess(where, f"{blobs}-{writer}", port=free_port(), log=log)
                server.start()
                assert server.process is not None
                servers[writer] = (server, server.process.pid, token)
                if args.warm_up:
                    runs = 1000 if args.warm_up == AUTO else args.warm_up
                    warmed = warm_up(server.url, token, runs)
                    print(f"{kind:6} warm-up: {runs:,} runs in {warmed:.1f} s", flush=True)
                    if args.warm_up == AUTO and kind == "neo4j" and neo is not None:
                        assert neo.pid is not None
                        warm_until_flat(server.url, token, neo.pid)
                else:
                    bench_openlineage(server.url, token, 20, 1)  # query plans, connections
            os.environ.pop("LINEAGE_OPENLINEAGE_WRITER", None)
            os.environ.pop("LINEAGE_OPENLINEAGE_LANES", None)
            os.environ.pop("LINEAGE_LANE_MIN", None)
            jvm = neo.pid if kind == "neo4j" and neo is not None else None
            for clients in (1, 8):
                cells = {w: _Cells() for w in writers}
                for _ in range(args.rounds):  # the writers' rounds alternated
                    for writer, (server, pid, token) in servers.items():
                        cells[writer].measure(
                            server.url, token, pid, args, clients, scratch, jvm=jvm
                        )
                for writer, (server, pid, token) in servers.items():
                    cells[writer].report(
                        f"{kind:6} workers={args.workers} writer={writer}", args, clients, floor
                    )
                    if clients == 1:
                        cells[writer].report_async(
                            f"{kind:6} workers={args.workers} writer={writer}",
                            server.url,
                            token,
                            pid,
                            args,
                        )
        finally:
            os.environ.pop("LINEAGE_OPENLINEAGE_WRITER", None)
            os.environ.pop("LINEAGE_OPENLINEAGE_LANES", None)
            os.environ.pop("LINEAGE_LANE_MIN", None)
            for server, _, _ in servers.values():
                server.stop()
    if neo is not None:
        neo.stop()
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
