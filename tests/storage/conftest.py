"""Fixtures of the store-level Neo4j tests (the server itself: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lineage.storage.neo4j import Neo4jGraphStore


@pytest.fixture
def store(neo4j_server: Any) -> Iterator[Neo4jGraphStore]:
    """A store on the session's Neo4j, wiped first."""
    neo4j_server.wipe()
    graph = Neo4jGraphStore(
        neo4j_server.uri, user=neo4j_server.user, password=neo4j_server.password
    )
    yield graph
    graph.close()
