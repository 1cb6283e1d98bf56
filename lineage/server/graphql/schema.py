"""The GraphQL schema: query and mutation roots, limits, authorisation, error codes.

``schema`` is the schema with the default limits, whose SDL is checked in as
``graphql/schema.graphql``; :func:`build_schema` makes one with other limits.

>>> print(sdl())  # what graphql/schema.graphql holds
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions import max_aliases as aliases_limiter
from strawberry.extensions import query_depth_limiter as depth_limiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from graphql import ASTValidationRule, GraphQLError
from lineage.server.graphql.errors import format_error
from lineage.server.graphql.loaders import Context
from lineage.server.graphql.mutations import Mutation
from lineage.server.graphql.queries import Query
from lineage.server.graphql.types import LONG, Long

__all__ = [
    "MAX_ALIASES",
    "MAX_QUERY_DEPTH",
    "MAX_TOKENS",
    "Authorize",
    "LineageSchema",
    "build_schema",
    "schema",
    "sdl",
]

MAX_QUERY_DEPTH = 10
MAX_TOKENS = 5000
MAX_ALIASES = 50
QUERY_CACHE = 256  # distinct query texts whose parse and validation are remembered


class Authorize(SchemaExtension):
    """Reads need a reader (anonymous on loopback, or a token); mutations a write token."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            context.principal.require("read")
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if (
            isinstance(context, Context)
            and self.execution_context.operation_type is OperationType.MUTATION
        ):
            context.principal.require("write")
        yield


class LineageSchema(strawberry.Schema):
    """Gives every error its ``extensions.code`` (see :mod:`lineage.server.graphql.errors`)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            format_error(error)


def build_schema(
    *,
    max_depth: int = MAX_QUERY_DEPTH,
    max_tokens: int = MAX_TOKENS,
    max_aliases: int = MAX_ALIASES,
) -> LineageSchema:
    """The schema with these query-shape limits (each over-limit query: an error with a code).

    The limits are strawberry's QueryDepthLimiter, MaxAliasesLimiter and MaxTokensLimiter.
    The depth and alias rules are built once, not per request as those extensions do, so
    that the validation of a query text seen before comes from a cache.
    """
    rules: list[type[ASTValidationRule]] = [
        depth_limiter.create_validator(max_depth, None),
        aliases_limiter.create_validator(max_aliases),
    ]

    def tokens() -> SchemaExtension:
        return MaxTokensLimiter(max_token_count=max_tokens)

    def limits() -> SchemaExtension:
        return AddValidationRules(rules)

    def parsed() -> SchemaExtension:
        return ParserCache(maxsize=QUERY_CACHE)

    def validated() -> SchemaExtension:
        return ValidationCache(maxsize=QUERY_CACHE)

    extensions: list[Any] = [Authorize, tokens, limits, parsed, validated]
    return LineageSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Long: LONG}),
    )


schema = build_schema()


def sdl() -> str:
    """The schema in GraphQL SDL, as ``graphql/schema.graphql`` holds it."""
    return schema.as_str() + "\n"
