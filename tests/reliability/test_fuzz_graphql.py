"""GraphQL fuzzing: schemathesis generates queries and mutations from the schema the server
introspects, and sends them to the ASGI application in this process, anonymously and with a
read and a write token, on both stores. Whatever it sends: no HTTP 5xx, no INTERNAL error, no
request that does not end within ``HANG`` seconds.

The fast slice sends ``FAST_EXAMPLES`` examples an operation, derandomized (the same requests
every run); under LINEAGE_SOAK_SECONDS it goes round with new random examples until its time
is spent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from campaign import HANG, ROOT, Tally
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes

import lineage
from graphql import NameNode, ObjectFieldNode
from lineage.server.app import create_app, open_service
from lineage.server.auth import create_token

pytestmark = pytest.mark.reliability

FAST_EXAMPLES = 2
SOAK_EXAMPLES = 25


Scope = MutableMapping[str, Any]

# lineage's own scalars, as a hostile client would fill them: well-formed and not, huge,
# year 1, lone surrogates
TEXT = st.text() | st.sampled_from(["\ud800", "a\udcff", "x" * 70_000])
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(st.datetimes().map(lambda d: d.isoformat()), TEXT).map(nodes.String),
)
schemathesis.graphql.scalar("Long", st.integers().map(nodes.Int))
schemathesis.graphql.scalar(
    "JSON",
    st.recursive(
        st.one_of(
            TEXT.map(nodes.String),
            st.integers().map(nodes.Int),
            st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
            st.booleans().map(nodes.Boolean),
            st.just(nodes.Null),
        ),
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(nodes.List),
            st.dictionaries(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), children, max_size=4
            ).map(
                lambda fields: nodes.Object(
                    [ObjectFieldNode(name=NameNode(value=k), value=v) for k, v in fields.items()]
                )
            ),
        ),
        max_leaves=20,
    ),
)


def loopback(app: Any) -> Callable[..., Awaitable[None]]:
    """``app`` as a caller on 127.0.0.1 sees it (the test client calls itself "testclient",
    on host "testserver"): anonymous reads are allowed there."""

    async def call(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
            headers.append((b"host", b"127.0.0.1:8000"))
            scope = dict(scope, client=("127.0.0.1", 50000), headers=headers)
        await app(scope, receive, send)

    return call


def seed(backend: Any, work: Path) -> None:
    """A little history for the generated queries to find: runs, versions, aliases, edges."""
    (work / "a.txt").write_text("alpha")
    with lineage.init(project="p", job_type="prep", store=backend.store, blobs=backend.blobs) as r:
        data = lineage.Artifact("data", type="dataset", metadata={"rows": 3})
        data.add_file(work / "a.txt")
        base = r.log_artifact(data, aliases=["production"])
    with lineage.init(project="p", job_type="train", store=backend.store, blobs=backend.blobs) as r:
        r.use_artifact(base.ref)
        (work / "m.bin").write_bytes(b"model")
        model = lineage.Artifact("model", type="model")
        model.add_file(work / "m.bin")
        r.log_artifact(model)


def every_field() -> set[str]:
    """Every field of Query and Mutation in the checked-in SDL: what the fuzzer must cover."""
    from graphql import build_schema

    sdl = build_schema((ROOT / "graphql" / "schema.graphql").read_text())
    return {
        f"{root.name}.{field}"
        for root in (sdl.query_type, sdl.mutation_type)
        if root is not None
        for field in root.fields
    }


@pytest.mark.parametrize("who", ["anonymous", "read", "write"])
def test_fuzz_graphql(backend, tmp_path: Path, workdir: Path, who: str) -> None:  # type: ignore[no-untyped-def]
    seed(backend, tmp_path)
    service = open_service(backend.store, backend.blobs)
    headers = {}
    if who != "anonymous":
        headers["Authorization"] = f"Bearer {create_token(service, who, 'fuzz')}"
    service.graph.close()
    app = create_app(backend.store, backend.blobs)
    try:
        schema = schemathesis.graphql.from_asgi("/graphql", loopback(app))
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} == every_field()
        with Tally("fuzz_graphql", f"{who}-{backend.name}", share=1 / 6) as tally:
            for round_ in tally.rounds(fast=1):
                if round_:
                    tally.random.shuffle(operations)
                for operation in operations:
                    fuzz(tally, operation, headers)
                    if round_ and tally.spent():
                        break
    finally:
        app.state.lineage.close()


def fuzz(tally: Tally, operation: Any, headers: dict[str, str]) -> None:
    examples = SOAK_EXAMPLES if tally.soaking else FAST_EXAMPLES

    @settings(
        max_examples=examples,
        derandomize=not tally.soaking,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(operation.as_strategy())
    def send(case: Any) -> None:
        response = case.call(headers=headers)
        tally.add("requests")
        query = str(case.body)[:300]
        tally.check(response.elapsed <= HANG, f"{response.elapsed:.1f} s for {query}")
        if not tally.check(response.status_code < 500, f"{response.status_code} for {query}"):
            return
        try:
            body = json.loads(response.content)
        except ValueError:
            tally.check(False, f"not JSON ({response.status_code}) for {query}")
            return
        errors = body.get("errors") or [] if isinstance(body, dict) else []
        codes = [(error.get("extensions") or {}).get("code") for error in errors]
        tally.add("refusals", int(bool(errors)))
        for code in codes:
            tally.add(f"code_{code}")
        tally.check("INTERNAL" not in codes, f"INTERNAL {errors} for {query}")

    send()
