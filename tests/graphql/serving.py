"""What the server tests share: a client of the ASGI app, and manifests built by hand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from lineage.hashing import hash_bytes
from lineage.manifest import Entry, encode_manifest
from lineage.server.graphql import Context, build_schema
from lineage.service import Service

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ("127.0.0.1", 50000)


@dataclass
class Server:
    """One application, and the calls a client makes to it (each through a fresh client)."""

    app: Starlette

    async def request(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        client: tuple[str, int] = LOOPBACK,
        base_url: str = "http://127.0.0.1:8000",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        transport = httpx.ASGITransport(app=self.app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            return await http.request(method, url, headers=headers, **kwargs)

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        response = await self.request(
            "POST", "/graphql", json={"query": query, "variables": variables or {}}, **kwargs
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """The data of a query that must succeed."""
        body = await self.graphql(query, variables, **kwargs)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def error(
        self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The one error of a query that must fail."""
        body = await self.graphql(query, variables, **kwargs)
        assert len(body.get("errors") or []) == 1, body
        error: dict[str, Any] = body["errors"][0]
        assert "\n" not in error["message"]
        return error

    async def upload(self, blobs: dict[str, bytes], token: str) -> list[str]:
        """Store what the server lacks of ``blobs``, as the SDK's remote mode will."""
        response = await self.request(
            "POST", "/blobs/missing", json={"digests": sorted(blobs)}, token=token
        )
        assert response.status_code == 200, response.text
        missing: list[str] = response.json()["missing"]
        for digest in missing:
            put = await self.request("PUT", f"/blobs/{digest}", content=blobs[digest], token=token)
            assert put.status_code == 200, put.text
        return missing


def manifest_of(files: dict[str, bytes]) -> tuple[str, dict[str, bytes]]:
    """The digest of the manifest of ``files`` and every blob it needs (pages, root, files)."""
    entries = [
        Entry(path=path, size=len(data), digest=hash_bytes(data)) for path, data in files.items()
    ]
    root, pages = encode_manifest(entries)
    blobs = {hash_bytes(data): data for data in files.values()}
    blobs.update({hash_bytes(page): page for page in pages})
    blobs[hash_bytes(root)] = root
    return hash_bytes(root), blobs


async def both(
    service: Service, document: str, variables: dict[str, Any] | None = None
) -> tuple[Any, list[Any]]:
    """The lean schema's answer (data, formatted errors), once it is checked to be the same
    as strawberry's own executor's."""
    answers = []
    for lean in (True, False):
        result = await build_schema(lean=lean).execute(
            document, variable_values=variables, context_value=Context(service=service)
        )
        answers.append((result.data, [e.formatted for e in result.errors or ()]))
    assert answers[0] == answers[1]
    return answers[0]
