"""The server's OpenLineage writer process (lineage.openlineage.writer): events written by a
child of the server, started again when it dies, stopped with the server; the thread writer
when asked or when no child can start; refusals carried across the process boundary."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import free_port
from server_process import ServerProcess

from lineage.errors import LineageError, StoreUnavailable, Unauthenticated
from lineage.openlineage import InvalidEvent, check_event
from lineage.openlineage.group import GroupWriter
from lineage.openlineage.writer import ProcessWriter, _error, _exception, wanted
from lineage.server.app import open_service
from lineage.server.auth import create_token

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
BATCH = "/api/v1/lineage/batch"


def run_event(kind: str = "START", run: str | None = None, job: str = "etl.load") -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": PRODUCER,
        "run": {"runId": run or str(uuid.uuid4())},
        "job": {"namespace": "spark-writer", "name": job},
        "inputs": [{"namespace": "s3://lake", "name": "raw/orders"}],
        "outputs": [{"namespace": "s3://lake", "name": "clean/orders"}],
    }


def writers_of(pid: int, module: bytes = b"lineage.openlineage.writer") -> list[int]:
    """The pids of ``pid``'s children that are OpenLineage writer processes (or run
    another ``module``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid and module in command:
            found.append(int(entry))
    return found


def gone(pid: int, seconds: float = 30) -> bool:
    """Whether process ``pid`` exits (or is a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


class Served:
    def __init__(self, home: Path, store: str | None = None) -> None:
        self.store, self.blobs = store or str(home / "store"), str(home / "blobs")
        self.service = open_service(self.store, self.blobs)
        self.token = create_token(self.service, "write", "emitter")
        self.process = ServerProcess(self.store, self.blobs, port=free_port(), log=home / "log")

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def post(self, body: Any, path: str = "/api/v1/lineage") -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.post(f"{self.process.url}{path}", json=body, headers=headers, timeout=60)

    def runs(self) -> set[str]:
        return {run.id for run in self.service.graph.list_runs("spark-writer")}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path)
    server.process.start()
    try:
        yield server
    finally:
        server.process.stop()
        server.service.graph.close()


def test_events_are_written_by_a_child_that_stops_with_the_server(served: Served) -> None:
    assert writers_of(served.pid) == []  # started by the first event, not before
    run = str(uuid.uuid4())
    assert served.post(run_event("START", run)).status_code == 201
    (child,) = writers_of(served.pid)
    assert served.post(run_event("COMPLETE", run)).status_code == 201
    assert writers_of(served.pid) == [child]  # one child for the server's life
    assert served.runs() == {run}
    assert served.service.graph.get_runs([run])[run].state == "finished"
    (files,) = writers_of(child, b"lineage.storage.filewriter")  # its manifests' files
    served.process.stop()
    assert gone(child), "the writer outlived the server"
    assert gone(files), "the writer's files process outlived it"


def test_a_writer_that_dies_is_started_again(served: Served) -> None:
    first = str(uuid.uuid4())
    assert served.post(run_event("START", first)).status_code == 201
    (child,) = writers_of(served.pid)
    os.kill(child, signal.SIGKILL)
    assert gone(child)
    second = str(uuid.uuid4())
    answer = served.post(run_event("START", second))
    if answer.status_code == 503:  # sent before the server saw the child go: sent again
        assert "writer process stopped" in answer.json()["error"]["message"]
        answer = served.post(run_event("START", second))
    assert answer.status_code == 201, answer.text
    (again,) = writers_of(served.pid)
    assert again != child
    assert served.runs() == {first, second}


def test_a_writer_killed_mid_batch_loses_nothing_said_stored(served: Served) -> None:
    events = [run_event("START", str(uuid.uuid4()), job=f"etl.load_{i}") for i in range(1000)]
    answers: list[httpx.Response] = []
    assert served.post(run_event()).status_code == 201  # the child is up
    (child,) = writers_of(served.pid)
    sending = threading.Thread(target=lambda: answers.append(served.post(events, BATCH)))
    sending.start()
    deadline = time.monotonic() + 120
    while served.service.graph.count_runs("spark-writer") < 2 and time.monotonic() < deadline:
        time.sleep(0.005)  # until the child has committed a group of the batch
    os.kill(child, signal.SIGKILL)
    sending.join()
    (answer,) = answers
    assert answer.status_code in (200, 207), answer.text  # never a 500
    failed = answer.json()["failed"]
    assert {item["code"] for item in failed} <= {"UNAVAILABLE"}, failed
    stored = {events[i]["run"]["runId"] for i in range(1000)} - {
        events[item["index"]]["run"]["runId"] for item in failed
    }
    assert stored <= served.runs()  # every event answered stored is stored
    again = served.post(events, BATCH)  # what an emitter does with the refused ones
    assert again.status_code == 200, again.text
    assert len(served.runs()) == 1001
    assert writers_of(served.pid) not in ([], [child])  # a new child took the second batch


def test_a_batch_is_answered_item_by_item_across_the_process(served: Served) -> None:
    good, bad = run_event(), run_event()
    bad["eventTime"] = "yesterday"
    answer = served.post([good, bad, run_event()], "/api/v1/lineage/batch")
    assert writers_of(served.pid)
    assert answer.status_code == 207, answer.text
    failed = answer.json()["failed"]
    assert [item["index"] for item in failed] == [1]
    assert failed[0]["field"], failed
    assert len(served.runs()) == 2


def test_the_thread_writer_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_OPENLINEAGE_WRITER", "thread")
    server = Served(tmp_path)
    server.process.start()
    try:
        run = str(uuid.uuid4())
        assert server.post(run_event("START", run)).status_code == 201
        assert writers_of(server.pid) == []
        assert server.runs() == {run}
    finally:
        server.process.stop()
        server.service.graph.close()


def test_the_writer_by_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINEAGE_OPENLINEAGE_WRITER", raising=False)
    assert wanted("/srv/lineage") and wanted("sqlite:///srv/lineage")
    assert not wanted("neo4j://db:7687") and not wanted("bolt://db:7687")
    monkeypatch.setenv("LINEAGE_OPENLINEAGE_WRITER", "Thread")
    assert not wanted("/srv/lineage")
    monkeypatch.setenv("LINEAGE_OPENLINEAGE_WRITER", "process")
    assert wanted("neo4j://db:7687")
    monkeypatch.setenv("LINEAGE_OPENLINEAGE_WRITER", "fastest")  # not a choice: as unset
    assert wanted("/srv/lineage") and not wanted("bolt://db:7687")


def test_a_neo4j_server_writes_in_a_child_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, neo4j_server: Any
) -> None:
    neo4j_server.wipe()
    monkeypatch.setenv("LINEAGE_OPENLINEAGE_WRITER", "process")
    server = Served(tmp_path, neo4j_server.uri)
    server.process.start()
    try:
        run = str(uuid.uuid4())
        assert server.post(run_event("START", run)).status_code == 201
        assert server.post(run_event("FAIL", run)).status_code == 201
        assert len(writers_of(server.pid)) == 1
        assert server.service.graph.get_runs([run])[run].state == "failed"
    finally:
        server.process.stop()
        server.service.graph.close()


def test_a_child_that_cannot_open_the_store_leaves_the_events_to_the_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = open_service(str(tmp_path / "store"), str(tmp_path / "blobs"))
    run = str(uuid.uuid4())

    async def main() -> None:
        writer = ProcessWriter("nope://nowhere", str(tmp_path / "blobs"), GroupWriter(service))
        try:
            await writer.store(check_event(run_event("START", run)))
            (stored,) = await writer.store_many([check_event(run_event("COMPLETE", run))])
            assert not isinstance(stored, Exception)
        finally:
            await writer.aclose()

    try:
        asyncio.run(main())
        assert service.graph.get_runs([run])[run].state == "finished"
    finally:
        service.graph.close()
    assert "did not start (cannot open nope://nowhere" in caplog.text


@pytest.mark.parametrize(
    "error",
    [
        InvalidEvent("not a UUID", field="run.runId"),
        Unauthenticated("token abc is unknown or revoked"),
        StoreUnavailable("the store is down", url="bolt://x"),
        ValueError("a bug"),
    ],
)
def test_a_refusal_crosses_the_process_boundary_as_it_was(error: Exception) -> None:
    described = _error(error)
    json.dumps(described)  # plain data, whatever the class
    rebuilt = _exception(described)
    assert type(rebuilt) is type(error)
    assert str(rebuilt) == str(error)
    assert vars(rebuilt) == vars(error)


def test_a_refusal_of_a_class_gone_is_a_lineage_error() -> None:
    rebuilt = _exception(("lineage.nowhere:Missing", "it went wrong", {}))
    assert isinstance(rebuilt, LineageError)
    assert str(rebuilt) == "it went wrong"
