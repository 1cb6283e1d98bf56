"""Shared fixtures: the backends every store-level and SDK-level test runs against.

``BACKENDS`` lists the graph stores the whole suite is parametrised over. Neo4j is the real
server started once per session by ``tests/neo4j_process.py`` (or the one named by
``NEO4J_URI``); if it cannot start, the tests that need it fail: they are never skipped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from s3_server import ENV, UNSET, Flaky, S3Server

BACKENDS = ["sqlite", "neo4j"]


@dataclass
class Neo4jServer:
    uri: str
    user: str | None = None
    password: str | None = None
    process: object | None = None
    driver: Any = None  # the wipes' own, opened on the first: a driver a wipe cost 20-50 ms

    def wipe(self) -> None:
        import neo4j

        if self.driver is None:
            auth = (self.user, self.password) if self.user and self.password else None
            self.driver = neo4j.GraphDatabase.driver(self.uri, auth=auth)
        with self.driver.session() as session:
            # in batches: one transaction over a big graph exhausts the server's memory pool
            session.run(
                "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
            ).consume()

    def close(self) -> None:
        if self.driver is not None:
            self.driver.close()
            self.driver = None


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    uri = os.environ.get("NEO4J_URI")
    if uri:
        given = Neo4jServer(
            uri=uri,
            user=os.environ.get("NEO4J_USER"),
            password=os.environ.get("NEO4J_PASSWORD"),
        )
        yield given
        given.close()
        return
    from neo4j_process import Neo4jProcess

    process = Neo4jProcess()
    process.start(tmp_path_factory.mktemp("neo4j-data"))
    server = Neo4jServer(uri=process.uri, process=process)
    try:
        yield server
    finally:
        server.close()
        process.stop()


@dataclass(frozen=True)
class Backend:
    name: str
    store: str  # what lineage.init(store=...) takes
    blobs: str


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh, empty graph store (and blob store) of each kind."""
    blobs = str(tmp_path / "blobs")
    if request.param == "sqlite":
        return Backend(name="sqlite", store=str(tmp_path / "store"), blobs=blobs)
    server: Neo4jServer = request.getfixturevalue("neo4j_server")
    server.wipe()
    return Backend(name="neo4j", store=server.uri, blobs=blobs)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside an empty directory, with no LINEAGE_* settings leaking in."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for key in list(os.environ):
        if key.startswith("LINEAGE_"):
            monkeypatch.delenv(key)
    return work


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server for the session, with fake credentials in the environment."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in ENV.items():
            env.setenv(key, value)
        for key in UNSET:
            env.delenv(key, raising=False)
        server = S3Server()
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake credentials of ``s3_server``, without starting it."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    for key in UNSET:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def flaky() -> Iterator[Callable[..., Flaky]]:
    """Start S3 endpoints that fail as scripted: ``flaky([(500, "InternalError")], body)``."""
    servers: list[Flaky] = []

    def start(script: list[tuple[int, str]], body: bytes = b"hello") -> Flaky:
        servers.append(Flaky(script, body))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
