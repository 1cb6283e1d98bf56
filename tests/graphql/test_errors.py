"""Every GraphQL error carries a code; a bug's message never leaves the server."""

from __future__ import annotations

import logging

import pytest

from graphql import GraphQLError, GraphQLSyntaxError, Source
from lineage.errors import Forbidden, IntegrityError, VersionNotFound
from lineage.server.graphql.errors import INTERNAL_MESSAGE, format_error


def _formatted(error: GraphQLError) -> GraphQLError:
    format_error(error)
    return error


def test_lineage_errors_keep_message_code_and_context() -> None:
    original = VersionNotFound("p/m:v9 does not exist;\nnearest versions: v8", ref="p/m:v9")
    error = _formatted(
        GraphQLError(str(original), path=["artifactVersion"], original_error=original)
    )
    assert error.extensions == {"code": "NOT_FOUND", "ref": "p/m:v9"}
    assert error.message == "p/m:v9 does not exist; nearest versions: v8"
    assert _formatted(GraphQLError("no", original_error=Forbidden("no"))).extensions == {
        "code": "FORBIDDEN"
    }
    integrity = IntegrityError("bad", digest="ab", path=object())  # context that is not JSON
    assert _formatted(GraphQLError("bad", original_error=integrity)).extensions == {
        "code": "DATA_LOSS",
        "digest": "ab",
    }


def test_bugs_are_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="lineage.server.graphql.errors"):
        error = _formatted(
            GraphQLError("secret path /srv/x", path=["run"], original_error=KeyError("/srv/x"))
        )
    assert error.message == INTERNAL_MESSAGE and error.extensions == {"code": "INTERNAL"}
    assert "secret path" in caplog.text


def test_query_errors() -> None:
    syntax = GraphQLSyntaxError(Source("{"), 1, "Expected Name, found <EOF>.")
    assert _formatted(syntax).extensions == {"code": "GRAPHQL_PARSE_FAILED"}
    unknown = GraphQLError("Cannot query field 'x' on type 'Query'.")
    assert _formatted(unknown).extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
