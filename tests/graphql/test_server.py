"""Real uvicorn processes on loopback: several of them serve one store, writes through each."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import free_port
from serving import manifest_of

from lineage.server.auth import create_token
from lineage.server.serving import background
from lineage.service import Service

pytestmark = pytest.mark.slow

START = (
    "import sys; from lineage.server.serving import serve; "
    "serve(sys.argv[1], sys.argv[2], port=int(sys.argv[3]), workers=int(sys.argv[4]))"
)


@contextmanager
def _server(backend: Any, log: Path, workers: int = 1) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", START, backend.store, backend.blobs, str(port), str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _graphql(url: str, query: str, token: str | None = None, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _upload(url: str, token: str, blobs: dict[str, bytes]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    missing = httpx.post(
        f"{url}/blobs/missing", json={"digests": sorted(blobs)}, headers=headers
    ).json()["missing"]
    for digest in missing:
        put = httpx.put(f"{url}/blobs/{digest}", content=blobs[digest], headers=headers)
        assert put.status_code == 200, put.text


CREATE = 'mutation { createRun(project: "shared", jobType: "train") { id } }'
USE = "mutation($run: ID!, $ref: String!) { useArtifact(runId: $run, ref: $ref) { ref } }"
COMMIT = """
mutation($run: ID!, $manifest: String!) {
  commitVersion(runId: $run, name: "model", type: "model", manifest: $manifest) {
    version { index }
  }
}
"""
FINISH = "mutation($run: ID!) { finishRun(runId: $run) { state } }"


def _log(url: str, token: str, index: int, parent: str | None) -> int:
    """One run through one server: consume ``parent``, commit new bytes, finish."""
    run = _graphql(url, CREATE, token)["createRun"]["id"]
    if parent is not None:
        _graphql(url, USE, token, run=run, ref=parent)
    digest, blobs = manifest_of({"weights.bin": f"weights {index}".encode()})
    _upload(url, token, blobs)
    version = _graphql(url, COMMIT, token, run=run, manifest=digest)["commitVersion"]["version"]
    _graphql(url, FINISH, token, run=run)
    index_: int = version["index"]
    return index_


def test_two_servers_one_store(backend: Any, tmp_path: Path, service: Service) -> None:
    token = create_token(service, "write", "test_server")
    with (
        _server(backend, tmp_path / "a.log") as a,
        _server(backend, tmp_path / "b.log") as b,
    ):
        assert _log(a, token, 0, None) == 0
        assert _log(b, token, 1, "shared/model:v0") == 1  # b sees what a wrote
        # both at once: version numbers stay consecutive, none lost or doubled
        with ThreadPoolExecutor(4) as pool:
            indexes = list(
                pool.map(
                    lambda i: _log([a, b][i % 2], token, i, "shared/model:v0"),
                    range(2, 10),
                )
            )
        assert sorted(indexes) == list(range(2, 10))
        for url in (a, b):
            impact = _graphql(url, '{ impact(ref: "shared/model:v0") { nodes { ref } } }')
            refs = {n["ref"] for n in impact["impact"]["nodes"] if n["ref"]}
            assert refs == {f"shared/model:v{i}" for i in range(10)}
        # anonymous writes are refused over the wire too
        body = httpx.post(f"{a}/graphql", json={"query": CREATE}).json()
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert len(service.graph.list_runs("shared", state="finished")) == 10


def test_workers(backend: Any, tmp_path: Path, service: Service) -> None:
    token = create_token(service, "write", "test_server workers")
    with _server(backend, tmp_path / "w.log", workers=2) as url:
        with ThreadPoolExecutor(4) as pool:
            indexes = list(pool.map(lambda i: _log(url, token, i, None), range(6)))
        assert sorted(indexes) == list(range(6))
        page = _graphql(url, '{ runs(project: "shared", first: 4) { totalCount nodes { state } } }')
        assert page["runs"]["totalCount"] == 6 and len(page["runs"]["nodes"]) == 4
        # the GraphiQL page for a browser
        html = httpx.get(f"{url}/graphql", headers={"Accept": "text/html"})
        assert html.status_code == 200 and "graphiql" in html.text.lower()


def test_background(backend: Any, service: Service) -> None:
    token = create_token(service, "write", "test_server background")
    with background(backend.store, backend.blobs) as url:
        assert url.startswith("http://127.0.0.1:")
        assert _log(url, token, 0, None) == 0
        data = _graphql(url, '{ artifactVersion(ref: "shared/model:latest") { ref } }')
        assert data["artifactVersion"]["ref"] == "shared/model:v0"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz")
