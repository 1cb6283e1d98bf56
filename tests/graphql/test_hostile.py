"""Hostile requests get a refusal (400, or a GraphQL error with a code), quickly: never a 500,
never INTERNAL, never a hang."""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

import pytest
from serving import Server

from lineage.cursors import cursor
from lineage.manifest import write_manifest
from lineage.service import Service

pytestmark = pytest.mark.anyio
T = TypeVar("T")


def _chain(k: int) -> str:
    """Fragments each spreading the next twice: 2**k fields once expanded, ~60 bytes a level."""
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(k))
    return f"{{ ...F0 }} {fragments} fragment F{k} on Query {{ __typename }}"


def _calls_during(work: Coroutine[Any, Any, T]) -> Callable[[], Awaitable[tuple[T, int]]]:
    """``work``'s answer, and how many Python functions ran meanwhile (in any thread)."""

    async def run() -> tuple[T, int]:
        calls = 0

        def profile(frame: FrameType, event: str, arg: Any) -> None:
            nonlocal calls
            if event == "call":
                calls += 1

        threading.setprofile(profile)  # type: ignore[arg-type]
        sys.setprofile(profile)  # type: ignore[arg-type]
        try:
            answer = await work
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
        return answer, calls

    return run


@pytest.mark.parametrize("k", [20, 40])
async def test_fragment_fan_out_chain_is_refused_quickly(server: Server, k: int) -> None:
    await server.data(_chain(3))  # imports and caches warmed: what follows is the refusal
    error, calls = await _calls_during(server.error(_chain(k)))()
    # the chain is sized without being expanded (2**k fields): work in proportion to its
    # text (~700 calls a fragment), never the validation rules that walk every expansion
    assert calls < 2_000 * k, calls
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "fields" in error["message"]


async def test_small_fragment_chain_passes(server: Server) -> None:
    assert (await server.data(_chain(5))) == {"__typename": "Query"}


async def test_fragment_cycle_is_refused(server: Server) -> None:
    body = await server.graphql(
        "{ ...A } fragment A on Query { ...B __typename } fragment B on Query { ...A }"
    )
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert codes == {"GRAPHQL_VALIDATION_FAILED"}, body
    assert any("A" in error["message"] for error in body["errors"])


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"ref": 5}, "String cannot represent a non string value: 5"),
        ({}, "non-null type 'String!'"),
        ({"ref": "p/a:v0", "depth": "deep"}, "Int cannot represent non-integer value"),
        ({"ref": "p/a:v0", "depth": 2**40}, "Int cannot represent non 32-bit"),
    ],
)
async def test_bad_variables_are_named_not_internal(
    server: Server, variables: dict[str, Any], named: str
) -> None:
    """A variable missing or of the wrong type is the caller's mistake, said as graphql-core
    says it (was INTERNAL, its message masked, logged as a bug)."""
    query = (
        "query($ref: String!, $depth: Int) { lineage(ref: $ref, depth: $depth) { nodes { id } } }"
    )
    error = await server.error(query, variables)
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}, error
    assert error["message"].startswith("Variable '$") and named in error["message"], error


async def test_json_nested_deep_is_400(server: Server) -> None:
    body = b"[" * 5000 + b"]" * 5000
    for url in ("/graphql", "/blobs/missing"):
        response = await server.request(
            "POST", url, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (url, response.text)
    nested = b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    response = await server.request(
        "POST", "/graphql", content=nested, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "{ __typename \xff }"}',
        b'{"query": "{ __typename }", "variables": {"a": "\xc3\x28"}}',
        b"\xff\xfe{}",
    ],
)
async def test_invalid_utf8_is_400(server: Server, body: bytes) -> None:
    for url in ("/graphql", "/blobs/missing"):
        response = await server.request(
            "POST", url, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (url, response.text)


def _seed(service: Service) -> None:
    run = service.start_run(project="p", job_type="make")
    service.commit(run.id, name="a", type="dataset", manifest=write_manifest(service.blobs, []))


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
async def test_huge_integer_cursors_are_invalid_input(
    server: Server, service: Service, value: int
) -> None:
    _seed(service)
    queries: list[tuple[str, dict[str, Any]]] = [
        (
            'query($c: String) { artifact(project: "p", name: "a") '
            "{ versions(after: $c) { totalCount } } }",
            {"c": cursor([value])},
        ),
        (
            'query($c: String) { runs(project: "p", after: $c) { totalCount } }',
            {"c": cursor([value, "x"])},
        ),
        (
            'query($c: String) { runs(project: "p", after: $c) { totalCount } }',
            {"c": cursor([1.0, value])},
        ),
    ]
    for query, variables in queries:
        error = await server.error(query, variables)
        assert error["extensions"]["code"] == "INVALID_INPUT", error
        assert "after" in error["message"]


async def test_year_one_started_at_is_invalid_input(server: Server, tokens: dict[str, str]) -> None:
    for started in ("0001-01-01T00:07:06", "0001-01-01T00:00:01"):
        error = await server.error(
            f'mutation {{ createRun(project: "p", startedAt: "{started}") {{ id }} }}',
            token=tokens["write"],
        )
        assert error["extensions"]["code"] == "INVALID_INPUT", error
        assert "startedAt" in error["message"]
