"""What the server's OpenLineage writer process loads to write its first event: the store,
the service and the mapping, not the HTTP client (httpx, which brings click, rich and
pygments) nor the schema checker (jsonschema: the server checks events, the child writes
them). The child is started as :class:`lineage.openlineage.writer.ProcessWriter` starts it,
with ``-X importtime`` telling every module it imported."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path

from lineage.openlineage.writer import _frame, _frames
from lineage.server.app import open_service

NOT_NEEDED = ("httpx", "click", "rich", "pygments", "jsonschema", "referencing")


def answer(sock: socket.socket, buffer: bytearray) -> object:
    while True:
        found = list(_frames(buffer))
        if found:
            return found[0]
        data = sock.recv(1 << 16)
        assert data, "the writer process closed its socket"
        buffer += data


def test_the_writer_process_writes_its_first_event_without_the_http_client_or_the_checker(
    tmp_path: Path,
) -> None:
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    open_service(store, blobs).graph.close()
    event = {
        "eventType": "START",
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "spark", "name": "etl.load"},
        "inputs": [{"namespace": "s3://lake", "name": "raw/orders"}],
        "outputs": [{"namespace": "s3://lake", "name": "clean/orders"}],
    }
    ours, theirs = socket.socketpair()
    with ours:
        child = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "lineage.openlineage.writer",
             str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        theirs.close()
        buffer = bytearray()
        ours.sendall(_frame((store, blobs)))
        assert answer(ours, buffer) == "ready"
        ours.sendall(_frame([(1, event, None)]))
        assert answer(ours, buffer) == [(1, None)]  # stored
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode(errors="replace")[-2000:]
    imported = {
        line.rpartition("|")[2].strip()
        for line in err.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "lineage.service" in imported and "lineage.openlineage.group" in imported
    loaded = sorted(m for m in imported if m.split(".")[0] in NOT_NEEDED)
    assert loaded == [], loaded
    # and the event is there, read by another process's store
    graph = open_service(store, blobs).graph
    try:
        assert [run.name for run in graph.list_runs()] == ["etl.load"]
    finally:
        graph.close()
