"""Graph payloads in bulk (lineage/server/graphql/bulk.py): the same answers and errors as
strawberry's own executor, field for field, for every column and every odd record."""

from __future__ import annotations

import dataclasses
import string
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import strawberry
from serving import both as _both
from strawberry.schema.config import StrawberryConfig

from lineage.manifest import Entry, write_manifest
from lineage.records import Edge, Node, RunRecord, Subgraph, VersionRecord
from lineage.server.app import open_service
from lineage.server.graphql import Context, build_schema
from lineage.server.graphql import bulk as bulk_module
from lineage.server.graphql.execution import LeanExecutor
from lineage.server.graphql.graphs import LineageGraph, LineageNode, lineage_graph
from lineage.server.graphql.schema import schema
from lineage.server.graphql.types import LONG, Long
from lineage.service import Service

pytestmark = pytest.mark.anyio

RUN = """__typename id project name jobType state config summary tags notes host user startedAt
finishedAt error facets"""
VERSION = """__typename id ref project name type version index digest size fileCount metadata
description aliases tags state createdAt"""
# every column of nodes and edges, under aliases, fragments, @skip/@include and twice
EVERYTHING = f"""
query Everything($ref: String!, $yes: Boolean!, $no: Boolean!) {{
  lineage(ref: $ref, direction: BOTH, depth: 10) {{
    __typename root truncated
    nodes {{ __typename id kind ref label project run {{ {RUN} }} artifactVersion {{ {VERSION} }} }}
    edges {{ __typename source target kind }}
    n: nodes {{
      i: id k: kind id @include(if: $yes) label @skip(if: $yes) ...N
      artifactVersion {{ ...V d: digest digest }}
      artifactVersion {{ aliases ...V }}
    }}
    e: edges {{ ...E kind @include(if: $no) }}
  }}
  derivationTree(ref: $ref, depth: 10) {{
    root nodes {{ id label artifactVersion {{ {VERSION} }} }} edges {{ source target kind }}
  }}
  impact(ref: "q/raw:v0") {{ nodes {{ id label project run {{ id name }} }} edges {{ ...E }} }}
}}
fragment N on LineageNode {{ ref run {{ id state startedAt finishedAt }} }}
fragment V on ArtifactVersion {{ ref version size createdAt metadata }}
fragment E on LineageEdge {{ source target }}
"""


def _history(service: Service) -> None:
    """Two projects (labels of foreign nodes carry theirs), runs with and without their
    optional fields, versions with descriptions, aliases, tags, and a deleted one."""
    blob = service.blobs.put_bytes(b"weights")
    raw = service.start_run(project="q", job_type="ingest", tags=["nightly"], notes="raw")
    service.commit(
        raw.id,
        name="raw",
        type="dataset",
        manifest=write_manifest(service.blobs, []),
        description="games",
        metadata={"rows": 600, "nested": {"a": [1, 2.5, None]}},
    )
    service.finish_run(raw.id, summary={"rows": 600})
    for index, parent in enumerate([None, 0, 1, 1, 3]):
        run = service.start_run(
            project="p",
            job_type=None if index == 3 else "train",
            config={"i": index, "lr": 1e-3},
            host="gpu-1" if index % 2 else None,
        )
        service.use(run.id, "q/raw:v0")
        if parent is not None:
            service.use(run.id, f"p/model:v{parent}")
        manifest = write_manifest(service.blobs, [Entry(path=f"w{index}", size=7, digest=blob)])
        service.commit(
            run.id,
            name="model",
            type="model",
            manifest=manifest,
            metadata={"n": index},
            aliases=["best"] if index == 3 else (),
        )
        if index == 4:
            service.finish_run(run.id, state="failed", error="diverged")
        elif index != 1:
            service.finish_run(run.id, summary={"loss": 1 / (index + 1)})
    service.tag("p/model:v1", add=["keep", "2"])
    service.delete_version("p/model:v4")


class _Counted:
    """How many LineageNode objects an answer made (none: its nodes came in bulk)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made = 0
        init = LineageNode.__init__

        def counting(made: LineageNode, /, *args: Any, **kwargs: Any) -> None:
            self.made += 1
            init(made, *args, **kwargs)

        monkeypatch.setattr(LineageNode, "__init__", counting)


async def test_every_column_answers_as_its_resolver(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    _history(service)
    counted = _Counted(monkeypatch)
    for yes, no in [(True, False), (False, True)]:
        variables = {"ref": "p/model:v3", "yes": yes, "no": no}
        data, errors = await _both(service, EVERYTHING, variables)
        assert not errors, errors
        graph = data["lineage"]
        ids = {node["id"] for node in graph["nodes"]}
        assert {"p/model:v3", "p/model:v1", "q/raw:v0"} <= ids
        labels = {node["id"]: node["label"] for node in graph["nodes"]}
        assert labels["q/raw:v0"] == "q/raw:v0" and labels["p/model:v3"] == "model:v3"
        n = graph["n"][0]
        assert ("id" in n) is yes and ("label" in n) is no and n["i"] == graph["nodes"][0]["id"]
        assert list(n["artifactVersion"] or {}) in ([], ["ref", "version", "size", "createdAt",
            "metadata", "d", "digest", "aliases"])  # fmt: skip
        assert ("kind" in graph["e"][0]) is no
        versions = {node["id"]: node["artifactVersion"] for node in graph["nodes"]}
        assert [node["id"] for node in data["derivationTree"]["nodes"]] == [
            "p/model:v3",
            "p/model:v4",
        ]
        assert "best" in versions["p/model:v3"]["aliases"]
        assert sorted(versions["p/model:v1"]["tags"]) == ["2", "keep"]
        assert versions["p/model:v4"]["state"] == "DELETED"
        runs = [node["run"] for node in graph["nodes"] if node["run"]]
        assert {run["state"] for run in runs} >= {"FINISHED", "RUNNING", "FAILED"}
        assert any(run["jobType"] is None for run in runs)
        assert any(run["finishedAt"] is None for run in runs)
    # the lean schema made no node object: every list of nodes came in bulk (the other
    # schema, strawberry's, made them all)
    made = counted.made
    for lean in (True, False):
        counted.made = 0
        await build_schema(lean=lean).execute(
            EVERYTHING,
            variable_values={"ref": "p/model:v3", "yes": True, "no": False},
            context_value=Context(service=service),
        )
        assert (counted.made == 0) is lean, counted.made
    assert made > 0


async def test_a_field_without_a_column_takes_the_long_way(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``state`` and ``createdBy`` need the request (async): those nodes are made one by
    one, and the answer is still strawberry's."""
    _history(service)
    counted = _Counted(monkeypatch)
    document = """query($ref: String!) { lineage(ref: $ref, depth: 10) {
      nodes { id state label artifactVersion { ref createdBy { id } } }
      edges { source run { id } derivation } totalCount pageInfo { hasNextPage } } }"""
    data, errors = await _both(service, document, {"ref": "p/model:v3"})
    assert not errors and counted.made > 0
    states = {node["id"]: node["state"] for node in data["lineage"]["nodes"]}
    assert states["q/raw:v0"] == "ALIVE"
    assert data["lineage"]["totalCount"] == len(states)


async def test_pages_in_bulk(service: Service) -> None:
    """Paging: each page's nodes and ``truncated`` as strawberry answers them, and the pages
    together are the whole answer."""
    _history(service)
    document = """query($ref: String!, $after: String) {
      lineage(ref: $ref, direction: BOTH, depth: 10, first: 3, after: $after) {
        truncated root nodes { id kind label run { id } artifactVersion { ref } }
        edges { source target kind } pageInfo { hasNextPage endCursor } } }"""
    whole, _ = await _both(service, EVERYTHING, {"ref": "p/model:v3", "yes": True, "no": False})
    for depth in (10, 2):
        seen: list[str] = []
        after = None
        while True:
            variables = {"ref": "p/model:v3", "after": after}
            data, errors = await _both(service, document.replace("10", str(depth)), variables)
            assert not errors, errors
            page = data["lineage"]
            assert len(page["nodes"]) <= 3
            seen += [node["id"] for node in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        # the last page knows whether depth cut the walk
        assert page["truncated"] is (depth == 2)
        if depth == 10:
            assert sorted(seen) == sorted(node["id"] for node in whole["lineage"]["nodes"])
            assert len(seen) > 3


# odd records: every column raises, and the executor answers as graphql-core does --------------

_GRAPH: list[Subgraph] = []


@strawberry.type
class _Root:
    @strawberry.field
    def graph(self, info: strawberry.Info[Context, None]) -> LineageGraph:
        return lineage_graph(_GRAPH[0], info.context, "tree", 3)


def _version(index: int, **changes: Any) -> VersionRecord:
    record = VersionRecord(
        project="p",
        name="model",
        type="model",
        index=index,
        digest="d" * 8,
        size=7,
        file_count=1,
        metadata={"n": index},
        aliases=("latest",),
        created_at=1_700_000_000.25,
        tags=("x",),
    )
    return dataclasses.replace(record, **changes)


def _run(run_id: str, **changes: Any) -> RunRecord:
    record = RunRecord(
        id=run_id, project="p", name=f"run-{run_id}", state="finished", started_at=1.5
    )
    return dataclasses.replace(record, **changes)


def _graph(*, version: dict[str, Any] | None = None, run: dict[str, Any] | None = None,
           node: dict[str, Any] | None = None, edge: dict[str, Any] | None = None,
           root: Any = "p/model:v0") -> Subgraph:  # fmt: skip
    """Three nodes and two edges; the second version, the run and the first edge changed."""
    first, second = _version(0), dataclasses.replace(_version(1), **(version or {}))
    made = _run("r1", **(run or {}))
    nodes = (
        Node(id=first.id, kind="artifact_version", ref=first.ref, version=first),
        Node(id="r1", kind="run", run=made),
        dataclasses.replace(
            Node(id=second.id, kind="artifact_version", ref=second.ref, version=second),
            **(node or {}),
        ),
    )
    edges = (
        dataclasses.replace(Edge(source=first.id, target="r1", kind="consumed_by"), **(edge or {})),
        Edge(source="r1", target=second.id, kind="produced"),
    )
    return Subgraph(nodes=nodes, edges=edges, root=root)


ODD = {
    "as made": _graph(),
    "unknown node kind": _graph(node={"kind": "dataset"}),
    "node id not a string": _graph(node={"id": 7}),
    "node id null": _graph(node={"id": None}),
    "ref an int": _graph(node={"ref": 5}),
    "a node of no record": _graph(node={"version": None}),
    "unknown run state": _graph(run={"state": "paused"}),
    "run name null": _graph(run={"name": None}),
    "run finished": _graph(run={"finished_at": 99.0, "job_type": "train", "error": "x"}),
    "run tags of an int": _graph(run={"tags": ("a", 3)}),
    "config a mapping proxy": _graph(run={"config": MappingProxyType({"lr": 0.1})}),
    "created at null": _graph(version={"created_at": None}),
    "index past 32 bits": _graph(version={"index": 1 << 40}),
    "index a bool": _graph(version={"index": True}),
    "size a float": _graph(version={"size": 7.0}),
    "size a bool": _graph(version={"size": True}),
    "aliases null": _graph(version={"aliases": None}),
    "unknown version state": _graph(version={"state": "lost"}),
    "metadata not a mapping": _graph(version={"metadata": 3}),
    "unknown edge kind": _graph(edge={"kind": "feeds"}),
    "edge source null": _graph(edge={"source": None}),
    "root an int": _graph(root=12),
    "no root": _graph(root=None),
}
ODD_QUERY = f"""{{ graph {{
  __typename root truncated
  nodes {{ id kind ref label project run {{ {RUN} }} artifactVersion {{ {VERSION} }} }}
  edges {{ source target kind }}
  again: nodes {{ id artifactVersion {{ index }} }}
}} }}"""


@pytest.mark.parametrize("case", list(ODD))
async def test_odd_records_answer_as_graphql_core(case: str, tmp_path: Path) -> None:
    _GRAPH[:] = [ODD[case]]
    service = open_service(str(tmp_path / "store"), str(tmp_path / "blobs"))
    try:
        answers = []
        for executor in (LeanExecutor, None):
            schema = strawberry.Schema(
                query=_Root,
                config=StrawberryConfig(scalar_map={Long: LONG}),
                execution_context_class=executor,
            )
            result = await schema.execute(ODD_QUERY, context_value=Context(service=service))
            answers.append((result.data, [e.formatted for e in result.errors or ()]))
    finally:
        service.graph.close()
    assert answers[0] == answers[1]
    data, errors = answers[0]
    fine = ("as made", "ref an int", "node id not a string", "a node of no record",
            "run finished", "run tags of an int", "config a mapping proxy", "index a bool",
            "size a float", "size a bool", "no root", "root an int")  # fmt: skip
    assert bool(errors) is (case not in fine), errors
    if case == "as made":
        nodes = data["graph"]["nodes"]
        assert [n["kind"] for n in nodes] == ["ARTIFACT_VERSION", "RUN", "ARTIFACT_VERSION"]
        assert nodes[0]["artifactVersion"]["createdAt"] == "2023-11-14T22:13:20.250000+00:00"
        assert nodes[1]["run"]["startedAt"] == "1970-01-01T00:00:01.500000+00:00"
        assert nodes[1]["label"] == "run-r1" and nodes[0]["project"] == "p"
    if case == "ref an int":
        assert data["graph"]["nodes"][2]["ref"] == "5"
    if case == "node id not a string":
        assert data["graph"]["nodes"][2]["id"] == "7"
    if case == "run tags of an int":
        assert data["graph"]["nodes"][1]["run"]["tags"] == ["a", "3"]
    if case == "index a bool":
        assert data["graph"]["again"][2]["artifactVersion"]["index"] == 1


def test_every_column_names_its_fields_type() -> None:
    """A column completes the type the schema gives its field (one that did not would never
    be used: the executor checks), and its object columns hold the declared types."""
    seen = 0
    for type_ in schema._schema.type_map.values():
        shape = bulk_module.shape_of(type_) if hasattr(type_, "fields") else None
        if shape is None:
            continue
        for name, found in shape.columns.items():
            field = type_.fields[name]
            if isinstance(found, bulk_module.Leaf):
                assert str(field.type) == found.graphql, (type_.name, name)
            else:
                inner = str(field.type).strip("[]!")
                assert inner == found.type.__name__, (type_.name, name)
                assert str(field.type).startswith("[") is isinstance(found, bulk_module.Many)
            seen += 1
    assert seen >= 45


# (timestamps whose microseconds round half to even, before 1970, a second's carry, years
# out of range, ints, a bool; each column's text must be what the resolver's datetime gives)
TIMES = [0, 1, -1, 1.5, -1.25, 5e-7, 1.5e-6, 2.5e-6, -5e-7, 1_700_000_000.25, 1_700_000_000.0,
         1_699_999_999.9999996, 951_782_400.000001, 4_102_444_800.123456, 253_402_300_799.9999999,
         -62_135_596_800, -62_135_596_801, 1 << 40, True, float("nan"), float("inf")]  # fmt: skip


def _leaf_value(leaf: bulk_module.Leaf, value: Any) -> Any:
    """What a column's expression gives for a record's value (``_x``)."""
    program = bulk_module.Program()
    expr = string.Template(leaf.expr).substitute(tmp=program.fresh())
    return eval(expr, program.scope, {"_x": value})  # our own column's text


@pytest.mark.parametrize("at", TIMES)
def test_times_answer_as_the_resolvers_datetime(at: Any) -> None:
    try:
        expected: Any = datetime.fromtimestamp(at, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        expected = None
    for leaf in (bulk_module.time("_x"), bulk_module.maybe_time("_x")):
        if expected is None:
            with pytest.raises(Exception):  # noqa: B017 -- any: field by field then
                _leaf_value(leaf, at)
        else:
            assert _leaf_value(leaf, at) == expected
    assert _leaf_value(bulk_module.maybe_time("_x"), None) is None


@pytest.mark.parametrize(
    "value", [(), [], ("a",), ["a", "b"], ("a", 3), (None,), None, 0, "ab", iter(()), iter(["a"])]
)
def test_texts_answer_as_their_items(value: Any) -> None:
    leaf = bulk_module.texts("_x")
    items = list(value) if isinstance(value, tuple | list | str) else None
    if items is None and value is not None and hasattr(value, "__next__"):
        items = list(value)
        value = iter(items)
    if items is None or any(type(item) is not str for item in items):
        with pytest.raises(Exception):  # noqa: B017 -- any: field by field then
            _leaf_value(leaf, value)
    else:
        assert _leaf_value(leaf, value) == items
