"""Over-limit queries get an error with a code, at once: never a timeout, never a partial walk."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from serving import Server

import graphql as graphql_core
from lineage.manifest import write_manifest
from lineage.server.app import MAX_GRAPHQL_BODY
from lineage.server.graphql.schema import MAX_ALIASES, MAX_QUERY_DEPTH, MAX_TOKENS
from lineage.service import Service

pytestmark = pytest.mark.anyio


def _nested(depth: int) -> str:
    """A query ``depth`` deep (the root field counts 0): version -> loggedBy -> consumed -> ..."""
    inner = "id"
    for level in reversed(range(depth - 1)):
        inner = f"{'consumed' if level % 2 else 'loggedBy'} {{ {inner} }}"
    return f'{{ artifactVersion(ref: "p/a:v0") {{ {inner} }} }}'


def _seed(service: Service) -> None:
    run = service.start_run(project="p", job_type="make")
    digest = write_manifest(service.blobs, [])
    service.commit(run.id, name="a", type="dataset", manifest=digest)


async def test_query_depth(server: Server, service: Service) -> None:
    _seed(service)
    assert "errors" not in await server.graphql(_nested(MAX_QUERY_DEPTH))
    error = await server.error(_nested(MAX_QUERY_DEPTH + 1))
    assert error["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert str(MAX_QUERY_DEPTH) in error["message"]


async def test_query_depth_configurable(make_server: Callable[..., Server]) -> None:
    server = make_server(max_depth=3)
    error = await server.error(_nested(4))
    assert error["extensions"]["code"] == "QUERY_TOO_DEEP"


async def test_introspection_within_limits(server: Server) -> None:
    # what GraphiQL sends first: deep and long, and it must pass
    data = await server.data(graphql_core.get_introspection_query(descriptions=True))
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_tokens(server: Server) -> None:
    fields = " ".join(["__typename"] * MAX_TOKENS)
    error = await server.error(f"{{ {fields} }}")
    assert error["extensions"]["code"] == "TOO_MANY_TOKENS"
    assert str(MAX_TOKENS) in error["message"]


async def test_aliases(server: Server) -> None:
    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"

    assert "errors" not in await server.graphql(aliased(MAX_ALIASES))
    error = await server.error(aliased(MAX_ALIASES + 1))
    assert error["extensions"]["code"] == "TOO_MANY_ALIASES"
    # fragments do not smuggle more aliases in
    fragment = "fragment F on Query { " + " ".join(f"b{i}: __typename" for i in range(30)) + " }"
    error = await server.error("{ ...F ... on Query { ...F } } " + fragment)
    assert error["extensions"]["code"] == "TOO_MANY_ALIASES"


async def test_lineage_depth_cap(make_server: Callable[..., Server], service: Service) -> None:
    _seed(service)
    server = make_server(max_lineage_depth=30)
    for field in ("lineage", "derivationTree"):
        ok = await server.data(f'{{ {field}(ref: "p/a:v0", depth: 30) {{ truncated }} }}')
        assert ok[field]["truncated"] is False
        error = await server.error(f'{{ {field}(ref: "p/a:v0", depth: 31) {{ truncated }} }}')
        assert error["extensions"]["code"] == "INVALID_INPUT"
        assert "30" in error["message"]
        error = await server.error(f'{{ {field}(ref: "p/a:v0", depth: -1) {{ truncated }} }}')
        assert error["extensions"]["code"] == "INVALID_INPUT"


async def test_page_size(server: Server) -> None:
    error = await server.error('{ runs(project: "p", first: 100000) { totalCount } }')
    assert error["extensions"]["code"] == "INVALID_INPUT"
    error = await server.error('{ runs(project: "p", after: "not a cursor") { totalCount } }')
    assert error["extensions"]["code"] == "INVALID_INPUT"


async def test_request_body(server: Server) -> None:
    response = await server.request(
        "POST",
        "/graphql",
        content=b'{"query": "' + b" " * MAX_GRAPHQL_BODY + b'{ __typename }"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    response = await server.request(
        "POST", "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
