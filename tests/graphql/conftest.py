"""Fixtures of the server tests: the ASGI app over each backend, called through httpx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from serving import Server
from starlette.applications import Starlette

from lineage.server.app import create_app, open_service
from lineage.server.auth import create_token
from lineage.service import Service

SCOPES = ("read", "write")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def service(backend: Any) -> Iterator[Service]:
    """A service of its own over the backend's stores (what the test writes and checks with)."""
    opened = open_service(backend.store, backend.blobs)
    yield opened
    opened.graph.close()


@pytest.fixture
def make_server(backend: Any) -> Iterator[Callable[..., Server]]:
    apps: list[Starlette] = []

    def make(**options: Any) -> Server:
        app = create_app(backend.store, backend.blobs, **options)
        apps.append(app)
        return Server(app)

    yield make
    for app in apps:
        app.state.lineage.close()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()


@pytest.fixture
def tokens(service: Service) -> dict[str, str]:
    return {scope: create_token(service, scope, f"{scope} token for tests") for scope in SCOPES}
