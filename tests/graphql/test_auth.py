"""Tokens: stored hashed, scoped, revocable; anonymous reads only from loopback."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from helpers import snapshot
from serving import Server

from lineage.errors import InvalidInput, Unauthenticated
from lineage.hashing import hash_bytes
from lineage.server import serving as lineage_server
from lineage.server.auth import create_token, is_loopback, revoke_token, token_id
from lineage.service import Service

pytestmark = pytest.mark.anyio

READ = "{ projects { name } }"
WRITE = 'mutation { createRun(project: "p") { id } }'


async def _code(server: Server, query: str, **kwargs: Any) -> str | None:
    body = await server.graphql(query, **kwargs)
    if "errors" not in body:
        return None
    code: str = body["errors"][0]["extensions"]["code"]
    return code


def test_tokens_are_stored_hashed(service: Service) -> None:
    secret = create_token(service.graph, "read", "dashboards")
    ident = token_id(secret)
    record = service.graph.find_token(hash_bytes(secret.encode()))
    assert record is not None and record.id == ident and record.scope == "read"
    assert record.digest != secret and secret not in repr(record)
    assert record.description == "dashboards" and not record.revoked
    assert create_token(service, "write") != create_token(service, "write")
    with pytest.raises(InvalidInput):
        create_token(service, "admin")
    with pytest.raises(Unauthenticated):
        token_id("lin_short")


async def test_scopes(server: Server, tokens: dict[str, str], service: Service) -> None:
    # on loopback, anyone may read; writes need a write token
    assert await _code(server, READ) is None
    assert await _code(server, READ, token=tokens["read"]) is None
    before = snapshot(service.graph, service.blobs)
    assert await _code(server, WRITE) == "UNAUTHENTICATED"
    assert await _code(server, WRITE, token=tokens["read"]) == "FORBIDDEN"
    assert snapshot(service.graph, service.blobs) == before
    assert await _code(server, WRITE, token=tokens["write"]) is None
    assert len(service.graph.list_runs("p")) == 1


@pytest.mark.parametrize(
    "header",
    [
        "Bearer lin_abcdefgh_" + "0" * 64,  # well-formed, unknown
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
async def test_bad_tokens_refused_even_for_reads(server: Server, header: str) -> None:
    body = await server.graphql(READ, headers={"Authorization": header})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"] is None
    response = await server.request("GET", "/blobs/" + "0" * 64, headers={"Authorization": header})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_revoked(server: Server, tokens: dict[str, str], service: Service) -> None:
    assert await _code(server, WRITE, token=tokens["write"]) is None
    assert revoke_token(service, token_id(tokens["write"])) is True
    assert await _code(server, WRITE, token=tokens["write"]) == "UNAUTHENTICATED"
    assert revoke_token(service, "nosuchid") is False


async def test_require_token(make_server: Callable[..., Server], tokens: dict[str, str]) -> None:
    server = make_server(require_token=True)
    body = await server.graphql(READ)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "lineage token create" in body["errors"][0]["message"]
    assert await _code(server, READ, token=tokens["read"]) is None
    response = await server.request("POST", "/blobs/missing", json={"digests": []})
    assert response.status_code == 401


async def test_off_loopback_needs_token(server: Server, tokens: dict[str, str]) -> None:
    remote = ("192.0.2.7", 40000)
    assert await _code(server, READ, client=remote) == "UNAUTHENTICATED"
    assert await _code(server, READ, client=remote, token=tokens["read"]) is None
    # a page whose DNS name was rebound to 127.0.0.1 still names its own host
    rebound = await _code(server, READ, base_url="http://evil.example:8000")
    assert rebound == "UNAUTHENTICATED"
    assert await _code(server, READ, base_url="http://localhost:8000") is None
    assert await _code(server, READ, client=("::1", 1), base_url="http://[::1]:8000") is None


async def test_graphiql_page_needs_no_token(
    make_server: Callable[..., Server], server: Server
) -> None:
    locked = make_server(require_token=True)
    response = await locked.request("GET", "/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()
    # queries are POSTed (a cross-site GET cannot read anything)
    response = await server.request(
        "GET", "/graphql", params={"query": READ}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 400 and "not allowed" in response.text


def test_is_loopback() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org", "", None]))


def test_serve_requires_tokens_off_loopback(monkeypatch: pytest.MonkeyPatch, backend: Any) -> None:
    calls: list[dict[str, Any]] = []  # the uvicorn.Config each serve() would run
    monkeypatch.setattr(lineage_server, "_run", lambda config: calls.append(vars(config)))
    for key in ("LINEAGE_STORE", "LINEAGE_BLOBS", "LINEAGE_SERVER_REQUIRE_TOKEN"):
        monkeypatch.setenv(key, "unset")
    lineage_server.serve(backend.store, backend.blobs, host="127.0.0.1", port=1)
    assert os.environ["LINEAGE_SERVER_REQUIRE_TOKEN"] == "0"
    lineage_server.serve(backend.store, backend.blobs, host="0.0.0.0", port=1, workers=3)
    assert os.environ["LINEAGE_SERVER_REQUIRE_TOKEN"] == "1"
    assert calls[-1]["workers"] == 3 and calls[-1]["factory"] is True
    app = lineage_server.app_from_env()
    try:
        assert app.state.lineage.gate.require_token is True
    finally:
        app.state.lineage.close()
    with pytest.raises(InvalidInput):
        lineage_server.serve(backend.store, backend.blobs, workers=0)
