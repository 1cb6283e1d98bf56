"""The Neo4j store's one-statement reads (the SDK's path reads ten times a run: the run's
state, refs, the cycle check, the artifact's type): each one auto-commit round trip, no
managed transaction; within ``transaction()`` they see its writes; a connection lost or a
server away for a moment is retried as a managed read was, a server gone is StoreUnavailable
after ``max_retry_time``. Real Neo4j, reached directly or through a TCP relay on loopback
that can drop every connection."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import neo4j
import pytest

from lineage.errors import StoreUnavailable
from lineage.records import CONSUMED_BY, Edge, RunRecord
from lineage.storage.graph import NewVersion
from lineage.storage.neo4j import Neo4jGraphStore

pytestmark = pytest.mark.neo4j


def _logged(store: Neo4jGraphStore) -> tuple[RunRecord, str]:
    """A running run that consumed g/data:v0, committed by another run."""
    store.create_run(RunRecord(id="maker", project="g", name="maker"))
    version, _ = store.commit_version(
        NewVersion(
            project="g",
            name="data",
            type="dataset",
            digest=f"{1:064x}",
            size=1,
            file_count=1,
            run_id="maker",
            at=time.time(),
        )
    )
    run = RunRecord(id="train", project="g", name="train", host="h", pid=1)
    store.create_run(run)
    store.add_edges([Edge(source=version.id, target=run.id, kind=CONSUMED_BY)])
    return run, version.id


def test_the_sdk_paths_reads_are_one_statement_each_without_a_managed_transaction(
    store: Neo4jGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, version = _logged(store)
    managed: list[str] = []
    for name in ("execute_read", "begin_transaction"):
        original = getattr(neo4j.Session, name)

        def spy(self: Any, *args: Any, _name: str = name, _f: Any = original, **kw: Any) -> Any:
            managed.append(_name)
            return _f(self, *args, **kw)

        monkeypatch.setattr(neo4j.Session, name, spy)
    # what Service.start_run / use / commit / finish_run and lineage.init read
    assert store.get_runs([run.id])[run.id].state == "running"
    assert [r.id for r in store.list_runs(state="running")] == ["maker", "train"]
    assert store.find_alias("g", "data", "latest").id == version  # type: ignore[union-attr]
    assert list(store.get_versions([version])) == [version]
    assert store.get_artifact("g", "data").type == "dataset"  # type: ignore[union-attr]
    assert store.get_artifact("g", "nothing") is None
    assert store.reaches(version, run.id, "down") is True
    assert store.reaches(run.id, version, "down") is False
    assert store.get_runs(["nobody"]) == {}
    assert managed == []


def test_reads_in_an_open_transaction_see_its_writes_and_its_rollback_leaves_none(
    store: Neo4jGraphStore,
) -> None:
    run, version = _logged(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.create_run(RunRecord(id="inside", project="g", name="inside"))
        store.add_edges([Edge(source=version, target="inside", kind=CONSUMED_BY)])
        assert store.get_runs(["inside"])["inside"].state == "running"
        assert "inside" in {r.id for r in store.list_runs(state="running")}
        assert store.reaches(version, "inside", "down") is True
        raise RuntimeError("rolled back")
    assert store.get_runs(["inside"]) == {}
    assert store.reaches(version, "inside", "down") is False
    assert set(store.get_runs([run.id])) == {run.id}


class Relay:
    """A TCP relay on loopback to ``target``: ``drop()`` closes every connection it carries;
    while ``down``, a new connection is closed at once (a server away)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.down = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        with self.lock:
            dropped, self.sockets = self.sockets, []
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.drop()


@pytest.fixture
def relay(neo4j_server: Any) -> Iterator[Relay]:
    neo4j_server.wipe()
    host, port = neo4j_server.uri.rsplit("/", 1)[1].rsplit(":", 1)
    relay = Relay((host, int(port)))
    yield relay
    relay.close()


def _through(relay: Relay, neo4j_server: Any, retry: float) -> Neo4jGraphStore:
    scheme = neo4j_server.uri.split("://", 1)[0]
    return Neo4jGraphStore(
        f"{scheme}://127.0.0.1:{relay.port}", user=neo4j_server.user,
        password=neo4j_server.password, connect_timeout=2, max_retry_time=retry,
    )  # fmt: skip


def test_a_read_is_retried_through_lost_connections_and_a_server_away_for_a_moment(
    relay: Relay, neo4j_server: Any
) -> None:
    store = _through(relay, neo4j_server, retry=30)
    try:
        run, version = _logged(store)
        relay.down = True
        relay.drop()  # every pooled connection is dead; the server is away for 1 s

        def back() -> None:
            time.sleep(1.0)
            relay.down = False

        threading.Thread(target=back).start()
        assert store.get_runs([run.id])[run.id].id == run.id
        relay.drop()  # lost again, the server there: the next read reconnects
        assert store.find_alias("g", "data", "latest").id == version  # type: ignore[union-attr]
        assert store.reaches(version, run.id, "down") is True
    finally:
        store.close()


def test_a_read_of_a_server_gone_is_store_unavailable_after_max_retry_time(
    relay: Relay, neo4j_server: Any
) -> None:
    store = _through(relay, neo4j_server, retry=1.0)
    try:
        run, _ = _logged(store)
        relay.down = True
        relay.drop()
        with pytest.raises(StoreUnavailable, match="unavailable"):
            store.get_runs([run.id])
        with pytest.raises(StoreUnavailable):
            store.list_runs(state="running")
    finally:
        store.close()
