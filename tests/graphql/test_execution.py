"""The lean executor answers exactly what strawberry's own executor answers: data and errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import strawberry
from serving import both as _both

from lineage.manifest import Entry, write_manifest
from lineage.remote import GRAPH
from lineage.server.app import open_service
from lineage.server.auth import Principal
from lineage.server.graphql import Context, build_schema
from lineage.server.graphql.execution import LeanExecutor, _tracker
from lineage.service import Service

pytestmark = pytest.mark.anyio

QUERIES = Path(__file__).resolve().parents[2] / "graphql" / "queries"
PARENTS = [None, 0, 1, 2, 2, 4]  # model:vI was fine-tuned from model:vPARENTS[I]

SHAPES = """
query Shapes($ref: String!, $yes: Boolean!, $no: Boolean!) {
  lineage(ref: $ref, direction: BOTH, depth: 3) {
    __typename
    root
    ...Graph
    again: nodes { id @include(if: $yes) kind @skip(if: $yes) label state }
    nodes { ref ref run @include(if: $no) { id } artifactVersion { ...V version } }
  }
  tree: derivationTree(ref: "p/model:v2", depth: 2) {
    nodes { id kind } edges { source target kind run { __typename id tags code { commit } } }
  }
  artifactVersion(ref: $ref) { ...V loggedBy { id config summary consumed { ...V } } }
}
fragment Graph on LineageGraph { truncated edges { kind source } nodes { id } }
fragment V on ArtifactVersion { __typename ref index size fileCount metadata aliases createdAt }
"""


@contextlib.asynccontextmanager
async def siblings_dropped() -> AsyncIterator[None]:
    """Around a query whose non-null root field fails: graphql-core cancels the other root
    fields' tasks (gather_with_cancel), some before they started, and the coroutines those
    held are dropped unawaited, each warning "never awaited" when the collector frees it,
    in whatever test is running then (strawberry's own executor as ours: 9-45 such warnings
    in 300 asks of SHAPES on a missing ref). They are freed here, under a filter for that
    warning alone: the answers are what the tests check."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning
        )
        yield
        for _ in range(3):  # the tasks graphql-core settles in the background
            await asyncio.sleep(0)
        gc.collect()


def _history(service: Service) -> None:
    prep = service.start_run(project="p", job_type="prep")
    service.commit(prep.id, name="data", type="dataset", manifest=write_manifest(service.blobs, []))
    service.finish_run(prep.id)
    blob = service.blobs.put_bytes(b"weights")
    for index, parent in enumerate(PARENTS):
        run = service.start_run(project="p", job_type="train", config={"i": index, "lr": 1e-3})
        service.use(run.id, "p/data:v0")
        if parent is not None:
            service.use(run.id, f"p/model:v{parent}")
        manifest = write_manifest(service.blobs, [Entry(path=f"w{index}", size=7, digest=blob)])
        service.commit(run.id, name="model", type="model", manifest=manifest, metadata={"n": index})
        service.finish_run(run.id, summary={"loss": 1 / (index + 1)})


async def test_same_answers(service: Service) -> None:
    _history(service)
    documents: list[tuple[str, dict[str, Any]]] = [
        ((QUERIES / "upstream_lineage.graphql").read_text(), {"ref": "p/model:v5"}),
        ((QUERIES / "finetuning_tree.graphql").read_text(), {"base": "p/model:v0"}),
        ((QUERIES / "dataset_impact.graphql").read_text(), {"dataset": "p/data:v0"}),
        ((QUERIES / "version_path.graphql").read_text(), {"from": "p/data:v0", "to": "p/model:v3"}),
        (f"query($r: String!) {{ derivationTree(ref: $r) {{ {GRAPH} }} }}", {"r": "p/model:v0"}),
        (f"query($r: String!) {{ lineage(ref: $r) {{ {GRAPH} }} }}", {"r": "p/model:v5"}),
        (SHAPES, {"ref": "p/model:v3", "yes": True, "no": False}),
        (SHAPES, {"ref": "p/model:v3", "yes": False, "no": True}),
    ]
    for document, variables in documents:
        data, errors = await _both(service, document, variables)
        assert data and not errors, (document, errors)
    data, _ = await _both(service, *documents[0])
    ids = {node["id"] for node in data["lineage"]["nodes"]}
    assert {"p/model:v5", "p/model:v4", "p/model:v2", "p/data:v0"} <= ids
    assert "p/model:v3" not in ids  # a sibling branch, not upstream
    data, _ = await _both(service, *documents[-2])
    assert data["lineage"]["again"][0].keys() == {"id", "label", "state"}
    assert "run" not in data["lineage"]["nodes"][0]

    async with siblings_dropped():
        data, errors = await _both(service, *documents[0][:1], {"ref": "p/model:v99"})
    assert data is None and errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_plans_shared_between_requests_follow_each_requests_variables(
    service: Service,
) -> None:
    """One schema, one query text, asked again and again: its plans are made once and
    reused, unless a @skip/@include reads a variable, whose value each request decides."""
    _history(service)
    lean, plain = build_schema(), build_schema(lean=False)
    constant = "query($r: String!) { lineage(ref: $r) { nodes { id @include(if: true) kind } } }"
    asks = [
        (SHAPES, {"ref": "p/model:v3", "yes": True, "no": False}),
        (SHAPES, {"ref": "p/model:v5", "yes": False, "no": True}),
        (SHAPES, {"ref": "p/model:v3", "yes": True, "no": False}),
        (constant, {"r": "p/model:v5"}),
        (constant, {"r": "p/model:v2"}),
    ]
    for document, variables in asks:
        answers = []
        for schema in (lean, plain):
            result = await schema.execute(
                document, variable_values=variables, context_value=Context(service=service)
            )
            assert not result.errors, result.errors
            answers.append(result.data)
        assert answers[0] == answers[1], variables
        assert answers[0] is not None
        if document is SHAPES:
            again = answers[0]["lineage"]["again"][0]
            assert ("id" in again) is variables["yes"] and ("kind" in again) is variables["no"]
            assert ("run" in answers[0]["lineage"]["nodes"][0]) is variables["no"]


async def test_a_query_seen_before_answers_as_the_first_time(service: Service) -> None:
    """A query text that parsed and validated runs the short way the next time it is asked
    (LineageSchema.execute, without strawberry's extension hooks): the same data, the same
    errors with their codes, the same refusals, whoever asks."""
    _history(service)
    schema = build_schema()
    reader, writer = Principal(scope="read", token="r"), Principal(scope="write", token="w")
    nobody = Principal(scope=None, reason="authentication required (test)")
    upstream = (QUERIES / "upstream_lineage.graphql").read_text()
    two = 'query A { projects { name } } query B { artifactVersion(ref: "p/model:v1") { ref } }'
    alias = 'mutation { setAlias(ref: "p/model:v1", alias: "best") { ref aliases } }'
    asks: list[tuple[str, dict[str, Any], str | None, Principal]] = [
        (SHAPES, {"ref": "p/model:v3", "yes": True, "no": False}, None, reader),
        (SHAPES, {"ref": "p/model:v3", "yes": True, "no": False}, None, nobody),
        (SHAPES, {"ref": "p/model:v99", "yes": False, "no": True}, None, writer),
        (upstream, {"ref": "p/model:v5"}, None, reader),
        (upstream, {"ref": 5}, None, reader),  # a variable of the wrong type
        (upstream, {}, None, reader),  # a variable missing
        (two, {}, "A", reader),
        (two, {}, "B", reader),
        (two, {}, "C", reader),  # no such operation: refused as before
        (alias, {}, None, reader),  # a mutation: FORBIDDEN to a reader, every time
        ("{ projects { nope } }", {}, None, reader),  # invalid: never the short way
        ("{ projects { name }", {}, None, reader),  # a syntax error
    ]

    async def ask(document: str, variables: dict[str, Any], name: str | None, who: Principal):
        try:
            async with siblings_dropped():
                result = await schema.execute(
                    document,
                    variable_values=variables,
                    operation_name=name,
                    context_value=Context(service=service, principal=who),
                )
        except Exception as error:
            return type(error).__name__
        return result.data, [e.formatted for e in result.errors or ()], result.extensions

    for document, variables, name, who in asks:
        first = await ask(document, variables, name, who)
        again = await ask(document, variables, name, who)
        if isinstance(first, tuple) and first[0] is None and isinstance(again, tuple):
            # A non-null root field failed: graphql-core cancels the operation's other root
            # fields (gather_with_cancel), so which of their errors made it in first is a race
            # on either path. Every error either answer holds is one the other could hold.
            fewer, more = sorted((first[1], again[1]), key=len)
            assert again[0] is None and again[2] == first[2], (document[:40], variables)
            assert fewer and all(error in more for error in fewer), (document[:40], variables)
            continue
        assert again == first, (document[:40], variables, name, who)
    codes = {
        (document[:12], who.scope): [e["extensions"]["code"] for e in answer[1]]
        for document, variables, name, who in asks
        if isinstance(answer := await ask(document, variables, name, who), tuple)
    }
    assert codes[SHAPES[:12], None] == ["UNAUTHENTICATED"]
    assert codes[alias[:12], "read"] == ["FORBIDDEN"]
    assert set(codes[SHAPES[:12], "write"]) == {"NOT_FOUND"}
    assert await ask(two, {}, "C", reader) == "CannotGetOperationTypeError"
    assert {SHAPES, upstream, two} <= schema.valid.keys()
    assert not {"{ projects { nope } }", "{ projects { name }"} & schema.valid.keys()


# errors inside plain fields: what graphql-core reports, at the same paths ------------------


@strawberry.type
class Leaf:
    value: int

    @strawberry.field
    def broken(self) -> str:
        raise ValueError(f"broken {self.value}")

    @strawberry.field
    def missing(self) -> str:
        return None  # type: ignore[return-value]

    @strawberry.field
    def huge(self) -> int:
        return 1 << 40  # not a GraphQL Int

    @strawberry.field
    def fine(self) -> int:
        return self.value


@strawberry.type
class Root:
    @strawberry.field
    def leaves(self) -> list[Leaf]:
        return [Leaf(value=1), Leaf(value=2)]

    @strawberry.field
    def holes(self) -> list[Leaf]:
        return [Leaf(value=1), None]  # type: ignore[list-item]

    @strawberry.field
    def maybe(self) -> list[Leaf | None]:
        return [Leaf(value=1), None]

    @strawberry.field
    def one(self) -> Leaf:
        return Leaf(value=3)


@pytest.mark.parametrize(
    "document",
    [
        "{ leaves { fine broken } }",
        "{ leaves { fine missing } }",
        "{ leaves { fine huge } }",
        "{ holes { fine } one { fine } }",
        "{ maybe { fine broken } one { fine } }",
        "{ one { fine missing } maybe { fine } }",
        "{ maybe { fine } one { fine } }",
    ],
)
async def test_same_errors(document: str) -> None:
    lean = strawberry.Schema(query=Root, execution_context_class=LeanExecutor)
    plain = strawberry.Schema(query=Root)
    got, expected = await lean.execute(document), await plain.execute(document)
    assert got.data == expected.data
    assert [e.formatted for e in got.errors or ()] == [e.formatted for e in expected.errors or ()]
    if "broken" in document or "missing" in document or "huge" in document or "holes" in document:
        assert got.errors
    else:
        assert not got.errors and got.data


async def test_a_request_leaves_nothing_for_the_collector(tmp_path: Path) -> None:
    """A request's objects (its context, loaders, the traversal's records) go when it does,
    freed by reference counting: graphql-core's executor holding its own bound methods, and
    DataLoaders calling back into what holds them, were reference cycles, so each answer
    lived until a collection of the older generations walked it. (An error's traceback and
    ``state``'s networkx graph still make cycles of their own; so does a Neo4j driver: the
    GraphQL layer is the same over any store, SQLite makes none.)"""
    service = open_service(str(tmp_path / "store"), str(tmp_path / "blobs"))
    _history(service)
    documents = [
        ((QUERIES / "upstream_lineage.graphql").read_text(), {"ref": "p/model:v5"}),
        (
            "query T($ref: String!) { derivationTree(ref: $ref) { root truncated "
            "nodes { id kind ref label artifactVersion { ref digest metadata createdAt } } "
            "edges { source target kind run { id name } derivation } } }",
            {"ref": "p/model:v0"},
        ),
        (
            "query V($ref: String!) { artifactVersion(ref: $ref) { ref createdBy { id } "
            "loggedBy { id consumed { ref } } artifact { name } } }",
            {"ref": "p/model:v3"},
        ),
        ("{ nope }", {}),  # refused by validation
    ]
    schema = build_schema()
    for document, variables in documents:  # parsed, validated and planned once
        await schema.execute(
            document, variable_values=variables, context_value=Context(service=service)
        )
    for document, variables in documents:
        gc.collect()
        gc.disable()
        try:
            context = Context(service=service)
            result = await schema.execute(
                document, variable_values=variables, context_value=context
            )
            assert result.data is not None or result.errors
            assert not result.errors or document == "{ nope }", result.errors
            gone = weakref.ref(context)
            del context, result
            assert gone() is None, document
            assert gc.collect() == 0, document
        finally:
            gc.enable()
    service.graph.close()


async def test_work_tracked_after_the_operation_is_still_settled() -> None:
    """A resolver's ``info.async_helpers.track``, called after its executor is gone, still
    settles the work (what graphql-core does while the executor lives)."""
    done: list[int] = []

    async def work() -> int:
        done.append(1)
        raise ValueError("observed, not raised")

    class Gone:
        pass

    ref = weakref.ref(Gone())
    assert ref() is None
    _tracker(ref)([work(), 3])  # type: ignore[arg-type]
    for _ in range(3):
        await asyncio.sleep(0)
    assert done == [1]
