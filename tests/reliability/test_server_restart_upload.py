"""The server killed (SIGKILL) and restarted mid-upload, while the SDK logs into it.

A real ``lineage server`` process serves the stores; the SDK logs a folder of files into it.
Once a random number of its blobs have landed, the server is killed and started again on
the same port. The client's retries must carry the log to its end: one version, with all its
blobs, nothing twice; and the stores must keep every invariant of
:func:`campaign.check_store`, also while nobody serves them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from campaign import LineageServer, Tally, blob_files, check_store

import lineage
from lineage.retry import ENV
from lineage.server.app import open_service
from lineage.server.auth import create_token

pytestmark = pytest.mark.reliability

FILES = 60
SIZE = 32 * 1024
# seconds of downtime that the client's retries must ride out (its LINEAGE_RETRY_SECONDS):
# more than a restart takes on a loaded machine, which LineageServer bounds at 60 s
PATIENCE = 120.0


def folder(root: Path, tag: str) -> Path:
    root.mkdir(parents=True)
    for i in range(FILES):
        (root / f"{i:03d}.bin").write_bytes(f"{tag}-{i}".encode().ljust(64, b".") * (SIZE // 64))
    return root


def log(url: str, token: str, name: str, data: Path) -> lineage.ArtifactVersion:
    """The user's code."""
    with lineage.init(project="p", store=url, token=token) as run:
        art = lineage.Artifact(name, type="dataset")
        art.add_dir(data)
        return run.log_artifact(art)


def test_server_killed_and_restarted_mid_upload(
    backend: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(PATIENCE))
    service = open_service(backend.store, backend.blobs)
    token = create_token(service, "write", "restart campaign")
    service.graph.close()
    blobs = Path(backend.blobs)
    server = LineageServer(backend.store, backend.blobs)
    try:
        with Tally("server_restart", backend.name, share=1 / 2) as tally:
            for round_ in tally.rounds(fast=1):
                name = f"big{round_}"
                data = folder(workdir / name, f"{backend.name}-{round_}-{tally.seed}")
                landed = sum(1 for _ in blob_files(blobs))
                at = landed + tally.random.randint(1, FILES - 1)
                downtime: list[float] = []

                def kill_and_restart(at: int = at, downtime: list[float] = downtime) -> None:
                    nonlocal server
                    deadline = time.monotonic() + 120
                    while sum(1 for _ in blob_files(blobs)) < at:
                        if time.monotonic() > deadline:
                            return
                        time.sleep(0.005)
                    server.kill()
                    killed = time.monotonic()
                    tally.add("kills")
                    # what the stores hold while nobody serves them
                    crashed = open_service(backend.store, backend.blobs)
                    try:
                        check_store(tally, crashed, gc=False)
                    finally:
                        crashed.graph.close()
                    server = LineageServer(backend.store, backend.blobs, port=server.port)
                    downtime.append(time.monotonic() - killed)

                killer = threading.Thread(target=kill_and_restart)
                killer.start()
                try:
                    version = log(server.url, token, name, data)
                except lineage.StoreUnavailable as error:
                    killer.join()
                    # the server was down longer than the client waits: allowed only then
                    tally.add("client_gave_up")
                    tally.check(downtime[0] > PATIENCE, f"gave up after {downtime}: {error}")
                    version = log(server.url, token, name, data)  # the same code again
                killer.join()
                if not downtime:
                    tally.add("finished_before_kill")
                else:
                    slowest = max(tally.figures["max_downtime_ms"], int(downtime[0] * 1000))
                    tally.figures["max_downtime_ms"] = slowest
                tally.check(version.ref == f"p/{name}:v0", version.ref)
                tally.check(version.record.file_count == FILES, str(version.record.file_count))
                check = open_service(backend.store, backend.blobs)
                try:
                    check_store(tally, check)
                    versions = check.graph.list_versions("p", name, include_deleted=True)
                    tally.check(len(versions) == 1, f"{name}: {len(versions)} versions")
                    edges = check.graph.expand([versions[0].id], "up")
                    pairs = [(e.source, e.target, e.kind) for e in edges]
                    tally.check(len(pairs) == len(set(pairs)), f"{name}: an edge twice: {pairs}")
                finally:
                    check.graph.close()
                version.verify()
                tally.add("requests", FILES)
    finally:
        server.stop()
