"""Blob transfer over HTTP: what is missing, upload hashed on arrival, download streamed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from serving import Server

from lineage.hashing import hash_bytes
from lineage.service import Service

pytestmark = pytest.mark.anyio


def _stored(service: Service, backend: Any) -> tuple[list[str], list[str]]:
    """The blobs held, and any temporary file left behind."""
    tmp = Path(backend.blobs) / "tmp"
    return sorted(service.blobs.digests()), sorted(os.listdir(tmp)) if tmp.exists() else []


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_missing_put_get(server: Server, tokens: dict[str, str], service: Service) -> None:
    token = tokens["write"]
    small, large = b"hello blobs", os.urandom(3 * 1024 * 1024 + 17)
    digests = [hash_bytes(small), hash_bytes(large)]
    response = await server.request(
        "POST", "/blobs/missing", json={"digests": digests}, token=tokens["read"]
    )
    assert response.status_code == 200 and response.json() == {"missing": sorted(digests)}

    put = await server.request("PUT", f"/blobs/{digests[0]}", content=small, token=token)
    assert put.status_code == 200 and put.json() == {"digest": digests[0], "size": len(small)}
    # streamed in small chunks, without a Content-Length
    put = await server.request(
        "PUT", f"/blobs/{digests[1]}", content=_chunks(large, 65536), token=token
    )
    assert put.status_code == 200 and put.json()["size"] == len(large)
    assert service.blobs.get_bytes(digests[1]) == large
    again = await server.request("PUT", f"/blobs/{digests[0]}", content=small, token=token)
    assert again.status_code == 200

    response = await server.request("POST", "/blobs/missing", json={"digests": digests})
    assert response.json() == {"missing": []}
    got = await server.request("GET", f"/blobs/{digests[1]}")
    assert got.status_code == 200 and got.content == large
    assert got.headers["content-length"] == str(len(large))
    assert got.headers["etag"] == f'"{digests[1]}"'
    head = await server.request("HEAD", f"/blobs/{digests[1]}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(large))
    head = await server.request("HEAD", "/blobs/" + "0" * 64)
    assert head.status_code == 404


async def test_mismatch_stores_nothing(
    server: Server, tokens: dict[str, str], service: Service, backend: Any
) -> None:
    before = _stored(service, backend)
    claimed = hash_bytes(b"what the client claims")
    response = await server.request(
        "PUT", f"/blobs/{claimed}", content=b"what it sends", token=tokens["write"]
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "DATA_LOSS" and claimed in error["message"]
    assert error["message"].startswith("digest mismatch, nothing stored")
    assert _stored(service, backend) == before
    assert service.blobs.missing([claimed, hash_bytes(b"what it sends")]) == {
        claimed,
        hash_bytes(b"what it sends"),
    }


async def test_oversize_stores_nothing(
    make_server: Callable[..., Server], tokens: dict[str, str], service: Service, backend: Any
) -> None:
    server = make_server(max_upload=1000)
    before = _stored(service, backend)
    body = b"x" * 1001
    digest = hash_bytes(body)
    declared = await server.request("PUT", f"/blobs/{digest}", content=body, token=tokens["write"])
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "1000" in declared.json()["error"]["message"]
    streamed = await server.request(
        "PUT", f"/blobs/{digest}", content=_chunks(body, 300), token=tokens["write"]
    )
    assert streamed.status_code == 413
    assert _stored(service, backend) == before
    exact = await server.request(
        "PUT", f"/blobs/{hash_bytes(body[:1000])}", content=body[:1000], token=tokens["write"]
    )
    assert exact.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("PUT", "/blobs/not-a-digest", b"x", 400, "INVALID_INPUT"),
        ("PUT", "/blobs/" + "A" * 64, b"x", 400, "INVALID_INPUT"),
        ("GET", "/blobs/" + "0" * 64, None, 404, "NOT_FOUND"),
        ("GET", "/blobs/../../etc/passwd", None, 404, None),
        ("POST", "/blobs/missing", b"not json", 400, "INVALID_INPUT"),
        ("POST", "/blobs/missing", b'{"digests": "abc"}', 400, "INVALID_INPUT"),
        ("POST", "/blobs/missing", b'{"digests": ["abc"]}', 400, "INVALID_INPUT"),
        ("POST", "/blobs/missing", b'["' + b"0" * 64 + b'"]', 400, "INVALID_INPUT"),
    ],
)
async def test_bad_requests_change_nothing(
    server: Server,
    tokens: dict[str, str],
    service: Service,
    backend: Any,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    code: str | None,
) -> None:
    before = _stored(service, backend)
    response = await server.request(method, path, content=body, token=tokens["write"])
    assert response.status_code == status
    if code is not None:
        assert response.json()["error"]["code"] == code
    assert _stored(service, backend) == before


async def test_scopes(server: Server, tokens: dict[str, str], service: Service) -> None:
    digest = hash_bytes(b"data")
    anonymous = await server.request("PUT", f"/blobs/{digest}", content=b"data")
    assert anonymous.status_code == 401
    reader = await server.request("PUT", f"/blobs/{digest}", content=b"data", token=tokens["read"])
    assert reader.status_code == 403 and reader.json()["error"]["code"] == "FORBIDDEN"
    assert service.blobs.missing([digest]) == {digest}
    remote = await server.request("GET", f"/blobs/{digest}", client=("192.0.2.1", 1))
    assert remote.status_code == 401


async def test_healthz(server: Server) -> None:
    response = await server.request("GET", "/healthz", client=("192.0.2.1", 1))
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def _raw_put(
    server: Server, digest: str, token: str, declared: int, messages: list[dict[str, Any]]
) -> tuple[int, bytes]:
    """A PUT straight to the ASGI app, whose Content-Length says ``declared`` bytes and whose
    body is ``messages`` (what a server hands on when a client sends less, then stops)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"/blobs/{digest}",
        "raw_path": f"/blobs/{digest}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(declared).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await server.app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


@pytest.mark.parametrize(
    "ending",
    [
        {"type": "http.request", "body": b"", "more_body": False},  # the body ends short
        {"type": "http.disconnect"},  # the client goes away
    ],
)
async def test_content_length_that_lies_stores_nothing(
    server: Server, tokens: dict[str, str], service: Service, backend: Any, ending: dict[str, Any]
) -> None:
    before = _stored(service, backend)
    sent = b"fewer bytes than declared"
    digest = hash_bytes(sent)
    messages = [{"type": "http.request", "body": sent, "more_body": True}, ending]
    status, body = await _raw_put(server, digest, tokens["write"], 1000, messages)
    assert status == 400, body
    assert b"INVALID_INPUT" in body and b"Content-Length" in body
    assert _stored(service, backend) == before
    assert service.blobs.missing([digest]) == {digest}
    # more bytes than declared: refused too
    status, body = await _raw_put(
        server,
        digest,
        tokens["write"],
        5,
        [{"type": "http.request", "body": sent, "more_body": False}],
    )
    assert status == 400, body
    assert _stored(service, backend) == before
