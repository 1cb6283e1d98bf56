"""The checked-in SDL is the code's schema, and it holds the names the API promises."""

from __future__ import annotations

from pathlib import Path

import pytest

import graphql as graphql_core
from lineage.server.graphql import schema, sdl

ROOT = Path(__file__).resolve().parents[2]
SDL = ROOT / "graphql" / "schema.graphql"
QUERIES = sorted((ROOT / "graphql" / "queries").glob("*.graphql"))


def test_sdl_file_matches_code() -> None:
    assert SDL.read_text() == sdl(), (
        "graphql/schema.graphql is stale: regenerate it with python -c "
        "'from lineage.server.graphql import sdl; print(sdl(), end=\"\")' > graphql/schema.graphql"
    )


def test_graphql_is_graphql_core() -> None:
    # lineage.server.graphql must never shadow the graphql-core package strawberry imports
    assert graphql_core.__file__ is not None and "site-packages" in graphql_core.__file__
    assert not (ROOT / "graphql" / "__init__.py").exists()


def _fields(built: graphql_core.GraphQLSchema, name: str) -> set[str]:
    kind = built.get_type(name)
    assert isinstance(kind, (graphql_core.GraphQLObjectType, graphql_core.GraphQLInputObjectType))
    return set(kind.fields)


def test_contract_names() -> None:
    built = graphql_core.build_schema(SDL.read_text())
    assert {
        "artifactVersion",
        "run",
        "artifacts",
        "runs",
        "lineage",
        "derivationTree",
        "path",
        "impact",
    } <= _fields(built, "Query")
    assert {
        "createRun",
        "finishRun",
        "useArtifact",
        "commitVersion",
        "setAlias",
        "removeAlias",
        "updateVersion",
        "deleteVersion",
    } <= _fields(built, "Mutation")
    assert {"nodes", "edges", "truncated", "dot", "svg"} <= _fields(built, "LineageGraph")
    assert {"id", "kind", "ref", "run", "artifactVersion"} <= _fields(built, "LineageNode")
    assert {"source", "target", "kind", "run"} <= _fields(built, "LineageEdge")
    assert {"config", "summary", "state", "startedAt", "code", "consumed", "produced"} <= _fields(
        built, "Run"
    )
    assert {"name", "type", "description", "versions", "aliases"} <= _fields(built, "Artifact")
    assert {
        "ref",
        "version",
        "digest",
        "size",
        "metadata",
        "aliases",
        "files",
        "loggedBy",
        "usedBy",
        "events",
    } <= _fields(built, "ArtifactVersion")
    assert {"path", "digest", "size", "uri"} <= _fields(built, "File")
    assert {"name", "artifacts", "runs"} <= _fields(built, "Project")
    assert {"kind", "at", "actor", "old", "new"} <= _fields(built, "Event")

    def values(name: str) -> set[str]:
        kind = built.get_type(name)
        assert isinstance(kind, graphql_core.GraphQLEnumType)
        return set(kind.values)

    assert values("Direction") == {"UPSTREAM", "DOWNSTREAM", "BOTH"}
    assert values("NodeKind") == {"RUN", "ARTIFACT_VERSION"}
    assert values("EdgeKind") == {"CONSUMED_BY", "PRODUCED", "DERIVED"}
    lineage = built.query_type.fields["lineage"] if built.query_type else None
    assert lineage is not None

    def default(arg: str) -> str:
        node = lineage.args[arg].ast_node
        assert node is not None and node.default_value is not None
        return graphql_core.print_ast(node.default_value)

    assert default("direction") == "UPSTREAM"
    assert default("depth") == "20"


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_example_queries_validate(path: Path) -> None:
    document = graphql_core.parse(path.read_text())
    assert graphql_core.validate(schema._schema, document) == []
