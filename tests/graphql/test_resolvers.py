"""Fields with arguments resolved without strawberry's wrapper (lineage.server.graphql.resolvers)
answer what strawberry's wrapper answers: renamed arguments, enums, times, nulls, defaults,
variables, errors raised by the resolver and refused arguments."""

from __future__ import annotations

from typing import Any

import pytest
from serving import both
from test_execution import _history

from lineage.server.graphql import build_schema
from lineage.server.graphql.resolvers import DEFINITION, lean_resolvers
from lineage.service import Service

pytestmark = pytest.mark.anyio

GRAPH = "root truncated nodes { id kind label } edges { source target kind }"
ASKS: list[tuple[str, dict[str, Any]]] = [
    (f'{{ path(from: "p/data:v0", to: "p/model:v3") {{ {GRAPH} }} }}', {}),
    (f'{{ path(to: "p/data:v0", from: "p/model:v3") {{ {GRAPH} }} }}', {}),
    (f'{{ lineage(ref: "p/model:v5", direction: DOWNSTREAM, depth: 2) {{ {GRAPH} }} }}', {}),
    (f'{{ lineage(ref: "p/model:v2", direction: BOTH) {{ {GRAPH} }} }}', {}),
    (
        'query($at: DateTime) { artifactVersion(ref: "p/model:v1", asOf: $at) { ref } }',
        {"at": "2100-01-01T00:00:00+00:00"},
    ),
    ('{ artifactVersion(ref: "p/model:v1", asOf: null) { ref aliases } }', {}),
    ('{ artifactVersion(ref: "p/model:v1", asOf: "1970-01-02T00:00:00Z") { ref } }', {}),
    (f'{{ derivationTree(ref: "p/model:v0", depth: 1, first: 2) {{ {GRAPH} }} }}', {}),
    (f'{{ derivationTree(ref: "p/model:v0", after: null, first: null) {{ {GRAPH} }} }}', {}),
    ('query($d: Int!) { derivationTree(ref: "p/model:v0", depth: $d) { root } }', {"d": 2}),
    ('{ run(id: "nosuch") { id } project(name: "p") { name artifacts { totalCount } } }', {}),
    ('{ artifact(project: "p", name: "model") { versions(first: 2) { totalCount } } }', {}),
    ('{ diff(a: "p/model:v1", b: "p/model:v4") { __typename } }', {}),
    ('{ impact(ref: "p/data:v0") { root } }', {}),
    # errors: raised by the resolver, or by the service it calls
    ('{ derivationTree(ref: "p/nosuch:v0") { root } }', {}),
    ('{ project(name: "bad name!") { name } }', {}),
    ('{ lineage(ref: "p/model:v5", depth: 100000) { root } }', {}),
    (
        '{ artifactVersion(ref: "::") { ref } other: artifactVersion(ref: "p/model:v0") { ref } }',
        {},
    ),
    ('mutation { setAlias(ref: "p/model:v1", alias: "best") { ref } }', {}),
]


async def test_same_answers_as_strawberrys_wrapper(service: Service) -> None:
    _history(service)
    errors_seen = 0
    for document, variables in ASKS:
        data, errors = await both(service, document, variables)
        assert data or errors, document
        errors_seen += bool(errors)
    assert errors_seen == 6  # the run not found, and the last five
    data, _ = await both(service, *ASKS[0])
    assert {"p/data:v0", "p/model:v3"} <= {node["id"] for node in data["path"]["nodes"]}
    data, _ = await both(service, *ASKS[2])
    assert data["lineage"]["root"] == "p/model:v5"
    data, _ = await both(service, *ASKS[4])
    assert data["artifactVersion"]["ref"] == "p/model:v1"
    data, _ = await both(service, *ASKS[7])
    assert len(data["derivationTree"]["nodes"]) == 2


def test_which_fields_go_the_lean_way() -> None:
    schema = build_schema()
    plain = build_schema(lean=False)
    tree = plain._schema.type_map["Query"].fields["derivationTree"]  # type: ignore[union-attr]
    assert tree.resolve.__module__ != "lineage.server.graphql.resolvers"
    assert lean_resolvers(plain) == 25
    assert tree.resolve.__module__ == "lineage.server.graphql.resolvers"
    for name, lean in [
        ("Query.derivationTree", True),
        ("Query.artifactVersion", True),
        ("Query.lineage", True),  # an enum argument
        ("Query.path", True),  # arguments named from and to
        ("Query.runs", True),  # an enum and a filter's text
        ("Mutation.createRun", False),  # an input object
        ("Mutation.tag", False),  # lists of strings: strawberry copies them
    ]:
        type_name, _, field_name = name.partition(".")
        field = schema._schema.type_map[type_name].fields[field_name]  # type: ignore[union-attr]
        assert field.extensions.get(DEFINITION) is not None
        assert (field.resolve.__module__ == "lineage.server.graphql.resolvers") is lean, name
