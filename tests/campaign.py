"""What the reliability campaigns (tests/reliability/) share: their time, their figures, and
the invariants a store must keep whatever happened to the processes writing to it.

One knob, ``LINEAGE_SOAK_SECONDS``. Unset, each campaign runs its fast slice (a few rounds,
what ``make test`` runs); set, each campaign loops until its share of that time is spent
(``make soak``) and appends its figures as one JSON line to ``test-artifacts/soak.jsonl``.
The fast slice draws its random choices from seed 0; a soak from ``LINEAGE_SOAK_SEED`` or a
fresh seed, which its line records::

    with Tally("kill", "sqlite", share=1 / 3) as tally:
        for _ in tally.rounds(fast=2):
            ...kill something...
            tally.add("kills")
            check_store(tally, graph, blobs)   # counts invariants checked and violations

A violation does not stop a campaign: it is counted and written down, and the test fails at
the end naming every one of them (at most the first 20).
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import blake3
import httpx
from ports import free_port

from lineage.manifest import manifest_digests, read_manifest
from lineage.service import Service
from lineage.storage.local import LocalBlobStore

ROOT = Path(__file__).resolve().parents[1]
SOAK_FILE = ROOT / "test-artifacts" / "soak.jsonl"
LINEAGE = Path(sys.executable).parent / "lineage"
HANG = 10.0  # seconds: a request that takes longer is a hang, whatever the machine's load


# read once, when the tests are collected: fixtures (``workdir``) clear every LINEAGE_*
SOAK_SECONDS = float(os.environ.get("LINEAGE_SOAK_SECONDS") or 0)
SOAK_SEED = os.environ.get("LINEAGE_SOAK_SEED")


# each campaign's part of LINEAGE_SOAK_SECONDS (they run one after the other)
SHARES = {
    "kill": 0.28,
    "concurrent_writers": 0.14,
    "server_restart": 0.14,
    "fuzz_graphql": 0.24,
    "hostile_battery": 0.07,
    "hostile_cli_sdk": 0.07,
    "full_disk": 0.06,
}


class Tally:
    """A campaign's clock and figures: ``rounds`` (how many times it went round), ``kills``,
    ``requests``, ``invariants`` (checked), ``violations``, and any of its own."""

    def __init__(self, campaign: str, params: str = "", *, share: float = 1.0) -> None:
        self.campaign = campaign
        self.params = params
        self.budget = SOAK_SECONDS * SHARES[campaign] * share
        self.figures: Counter[str] = Counter()
        self.problems: list[str] = []
        self.started = time.monotonic()
        # the fast slice is the same every time (CI stays stable); a soak explores
        self.seed = (
            0 if not self.budget else int(SOAK_SEED or random.SystemRandom().getrandbits(32))
        )
        self.random = random.Random(self.seed)

    @property
    def soaking(self) -> bool:
        return self.budget > 0

    def rounds(self, fast: int) -> Iterator[int]:
        """``fast`` rounds, or as many as fit in this campaign's share of the soak (at least
        ``fast``)."""
        index = 0
        while index < fast or (self.soaking and not self.spent()):
            yield index
            index += 1
            self.figures["rounds"] += 1

    def spent(self) -> bool:
        return time.monotonic() - self.started >= self.budget

    def add(self, figure: str, count: int = 1) -> None:
        self.figures[figure] += count

    def check(self, ok: bool, problem: str) -> bool:
        """One invariant checked; ``problem`` is written down if it does not hold."""
        self.figures["invariants"] += 1
        if not ok:
            self.figures["violations"] += 1
            self.problems.append(problem)
        return ok

    def line(self) -> dict[str, Any]:
        figures = {key: self.figures[key] for key in ("rounds", "kills", "requests")}
        figures.update(self.figures)
        figures.setdefault("invariants", 0)
        figures.setdefault("violations", 0)
        return {
            "campaign": self.campaign,
            "params": self.params,
            "seconds": round(time.monotonic() - self.started, 1),
            "budget": round(self.budget, 1),
            "seed": self.seed,
            **figures,
            "cpu": _cpu(),
            "load": os.getloadavg()[0],
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def __enter__(self) -> Tally:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        line = self.line()
        if kind is not None:
            line["error"] = f"{kind.__name__}: {error}"[:500]
        if self.soaking:
            SOAK_FILE.parent.mkdir(parents=True, exist_ok=True)
            with SOAK_FILE.open("a") as out:
                out.write(json.dumps(line) + "\n")
        if kind is None:
            assert not self.problems, f"{len(self.problems)} violations: " + "; ".join(
                self.problems[:20]
            )


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# invariants ----------------------------------------------------------------------------------


def blob_files(root: Path) -> Iterator[tuple[str, Path]]:
    """``(digest, path)`` of every published blob of a local blob store at ``root``."""
    for folder in sorted(root.iterdir()):
        if len(folder.name) == 2 and folder.is_dir():
            for path in sorted(folder.iterdir()):
                yield folder.name + path.name, path


def hash_file(path: Path) -> str:
    hasher = blake3.blake3()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            hasher.update(chunk)
    return str(hasher.hexdigest())


def check_store(tally: Tally, service: Service, *, gc: bool = True) -> None:
    """Every invariant a store keeps after any writer was killed at any point:

    - every blob file hashes to its name (hashed here, with blake3 directly);
    - every visible version's manifest and every blob it names are stored (so it verifies);
    - every edge joins a known run and a known version (no orphan);
    - each artifact's version indexes are 0..n-1 (no gap, no duplicate);
    - with ``gc``: the temporary files killed writers left (aged past the grace period here,
      as an hour would age them) are all removed by gc, and the versions still verify after.
    """
    blobs = service.blobs
    assert isinstance(blobs, LocalBlobStore)
    for digest, path in blob_files(blobs.root):
        tally.check(hash_file(path) == digest, f"blob {digest} does not hash to its name")
    graph = service.graph
    runs, listed = _nodes(graph)
    versions = []
    for artifact, found in listed:
        versions.extend(found)
        indexes = sorted(v.index for v in found)
        tally.check(
            indexes == list(range(len(found))),
            f"{artifact.project}/{artifact.name} has version indexes {indexes}",
        )
    _check_versions(tally, service, [v for v in versions if v.state != "deleted"])
    known = runs | {v.id for v in versions}
    edges = [
        edge for direction in ("down", "up") for edge in graph.expand(sorted(known), direction)
    ]
    if any(edge.source not in known or edge.target not in known for edge in edges):
        # A server outlives the client killed in the middle of a request, and may commit that
        # request's version and its edge (one transaction) between the reads above and the
        # edges' read. Nodes are never removed (deleted versions stay listed), so nodes read
        # after the edges are all an edge committed before may name.
        runs, listed = _nodes(graph)
        known |= runs | {v.id for _, found in listed for v in found}
    for edge in edges:
        tally.check(
            edge.source in known and edge.target in known,
            f"orphan edge {edge.source} -> {edge.target}",
        )
    if gc:
        tmp = blobs.root / "tmp"
        old = time.time() - 7200  # the writers are dead: age what they left past the grace
        for path in tmp.iterdir():
            os.utime(path, (old, old))
        service.gc()
        left = sorted(path.name for path in tmp.iterdir())
        tally.check(left == [], f"gc left {len(left)} temporary files: {left[:5]}")
        _check_versions(tally, service, [v for v in versions if v.state != "deleted"])


def _nodes(graph: Any) -> tuple[set[str], list[tuple[Any, list[Any]]]]:
    """The ids of every run, and every artifact with all its versions (deleted ones too)."""
    runs = {run.id for run in graph.list_runs()}
    listed = [
        (artifact, graph.list_versions(artifact.project, artifact.name, include_deleted=True))
        for artifact in graph.list_artifacts()
    ]
    return runs, listed


def _check_versions(tally: Tally, service: Service, versions: list[Any]) -> None:
    blobs = service.blobs
    for version in versions:
        needed = {version.digest}
        try:
            needed |= manifest_digests(blobs, version.digest)
            needed |= read_manifest(blobs, version.digest).blob_digests()
        except Exception as error:
            tally.check(False, f"{version.id}: manifest unreadable: {error}")
            continue
        missing = blobs.missing(needed)
        tally.check(not missing, f"{version.id}: {len(missing)} blobs missing")


class LineageServer:
    """``lineage server`` in a child process on 127.0.0.1."""

    def __init__(
        self, store: str, blobs: str, *options: str, port: int = 0, log: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log  # its stderr, if given
        command = [str(LINEAGE), "--store", store, "--blobs", blobs, "server", *options]
        with log.open("ab") if log else open(os.devnull, "wb") as stderr:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)], env=child_env(), stderr=stderr
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "lineage server exited"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("lineage server did not start")

    def healthy(self) -> bool:
        """Whether it answers ``/healthz`` within ``HANG`` seconds."""
        try:
            return httpx.get(f"{self.url}/healthz", timeout=HANG).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# processes -----------------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout first on the path (and tests/, for
    the helpers), no LINEAGE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    path = [str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(path).rstrip(os.pathsep)
    env.update(extra)
    return env


def python(code: str, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """``python -c code args...`` in a child process with :func:`child_env`."""
    popen.setdefault("env", child_env())
    return subprocess.Popen([sys.executable, "-c", code, *args], **popen)
