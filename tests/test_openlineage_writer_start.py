"""What the server's OpenLineage writer process loads to write its first event: the store,
the service and the mapping, not the HTTP client (httpx, which brings click, rich and
pygments) nor the schema checker (jsonschema: the server checks events, the child writes
them). The child is started as :class:`lineage.openlineage.writer.ProcessWriter` starts it
(``bench/bench_writer_start.py``), with ``-X importtime`` telling every module it imported."""

from __future__ import annotations

import sys
from pathlib import Path

from lineage.server.app import open_service

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from bench_writer_start import start_and_store

NOT_NEEDED = ("httpx", "click", "rich", "pygments", "jsonschema", "referencing")


def test_the_writer_process_writes_its_first_event_without_the_http_client_or_the_checker(
    tmp_path: Path,
) -> None:
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    open_service(store, blobs).graph.close()
    _, _, said = start_and_store(store, blobs, ["-X", "importtime"])
    imported = {
        line.rpartition("|")[2].strip()
        for line in said.splitlines()
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
