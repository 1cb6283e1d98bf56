"""The GraphQL schema: query and mutation roots, limits, authorisation, error codes.

``schema`` is the schema with the default limits, whose SDL is checked in as
``graphql/schema.graphql``; :func:`build_schema` makes one with other limits.

>>> print(sdl())  # what graphql/schema.graphql holds
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import strawberry
from graphql.execution import MiddlewareManager
from graphql.validation.validation_context import ASTValidationContext
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.extensions import max_aliases as aliases_limiter
from strawberry.extensions import query_depth_limiter as depth_limiter
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    Node,
    OperationDefinitionNode,
    ValidationContext,
    execute,
    get_operation_ast,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import OperationType as OperationKind
from lineage.server.graphql.errors import format_error
from lineage.server.graphql.execution import LeanExecutor
from lineage.server.graphql.loaders import Context
from lineage.server.graphql.mutations import Mutation
from lineage.server.graphql.queries import Query
from lineage.server.graphql.resolvers import lean_resolvers
from lineage.server.graphql.types import LONG, Long

__all__ = [
    "MAX_ALIASES",
    "MAX_EXPANDED_FIELDS",
    "MAX_QUERY_DEPTH",
    "MAX_TOKENS",
    "Authorize",
    "LineageSchema",
    "build_schema",
    "expanded_size",
    "schema",
    "sdl",
]

MAX_QUERY_DEPTH = 10
MAX_TOKENS = 5000
MAX_ALIASES = 50
MAX_EXPANDED_FIELDS = 20_000  # fields of a query once its fragments are expanded
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
    """Gives every error its ``extensions.code`` (see :mod:`lineage.server.graphql.errors`),
    and runs a query it has seen before the short way (:meth:`execute`)."""

    # query text -> its document, for the texts that parsed and validated without an error
    # (filled by the validation cache of build_schema; empty: every request the long way)
    valid: dict[str, DocumentNode] = {}

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            format_error(error)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Strawberry's ``execute``; a query whose text parsed and validated without an
        error before, asked by a reader, goes straight to graphql-core's executor.

        What strawberry's extensions would do for it is known: the parser and validation
        caches give the same document and no error, the token limit was met at its parse,
        and :class:`Authorize` lets any reader query. Skipping their hooks (a context
        manager each, per stage) saves about 0.1 ms a request, the whole cost of
        ``{ __typename }`` in process. The answer and its errors are the same: graphql-core
        runs the same document with the same executor, and the errors are formatted as
        strawberry's ``execute`` formats them. A refused caller, a mutation, an operation
        that is not in the document, an unknown text go the long way."""
        document = self._known(query, context_value, root_value, allowed_operation_types)
        if document is None or _query_of(document, operation_name) is None:
            return await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        try:
            outcome: Any = execute(
                self._schema,
                document,
                middleware=MiddlewareManager(),
                variable_values=variable_values,
                operation_name=operation_name,
                context_value=context_value,
                is_awaitable=cast(Any, optimized_is_awaitable),
                executor_class=self.execution_context_class,
                operation_extensions=operation_extensions,
            )
            result: GraphQLExecutionResult = (
                await outcome if optimized_is_awaitable(outcome) else outcome
            )
        except Exception as error:  # noqa: BLE001 - as strawberry's execute answers it
            failed = (
                error
                if isinstance(error, GraphQLError)
                else GraphQLError(str(error), original_error=error)
            )
            self.process_errors([failed])
            return ExecutionResult(data=None, errors=[failed], extensions={})
        if result.errors:
            self.process_errors(result.errors)
        return ExecutionResult(data=result.data, errors=result.errors, extensions={})

    def _known(
        self,
        query: str | None,
        context: Any | None,
        root: Any | None,
        allowed: Iterable[OperationType] | None,
    ) -> DocumentNode | None:
        """The document of ``query`` when it may go the short way: known valid, asked by a
        reader, with no root value, and queries allowed."""
        if (
            not isinstance(query, str)
            or root is not None
            or not isinstance(context, Context)
            or context.principal.scope is None
            or (allowed is not None and OperationType.QUERY not in allowed)
        ):
            return None
        return self.valid.get(query)


def _query_of(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation ``name`` selects in ``document`` when it is a query, else None."""
    operation = get_operation_ast(document, name)
    return operation if operation and operation.operation is OperationKind.QUERY else None


def expanded_size(document: DocumentNode, cap: int) -> int | None:
    """The fields of ``document``'s operations once every fragment spread is expanded (at most
    ``cap + 1``: counting stops there), or None when fragments spread each other in a cycle.

    Linear in the document's size: each fragment is counted once, then multiplied.
    """
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }

    def direct(node: Node) -> tuple[int, dict[str, int]]:
        # the fields under ``node`` and the fragments it spreads (with their counts), no recursion
        fields, spreads = 0, dict[str, int]()
        stack: list[Node] = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, FieldNode):
                fields += 1
            if isinstance(current, FragmentSpreadNode):
                name = current.name.value
                if name in fragments:
                    spreads[name] = spreads.get(name, 0) + 1
                continue
            selections = getattr(current, "selection_set", None)
            if selections is not None:
                stack.extend(selections.selections)
        return fields, spreads

    shapes = {name: direct(fragment) for name, fragment in fragments.items()}
    # fragments in dependency order (Kahn): a fragment once all it spreads are sized
    waiting = {name: len(spreads) for name, (_, spreads) in shapes.items()}
    users: dict[str, list[str]] = {name: [] for name in shapes}
    for name, (_, spreads) in shapes.items():
        for spread in spreads:
            users[spread].append(name)
    ready = [name for name, count in waiting.items() if count == 0]
    sizes: dict[str, int] = {}
    while ready:
        name = ready.pop()
        fields, spreads = shapes[name]
        sizes[name] = min(cap + 1, fields + sum(n * sizes[s] for s, n in spreads.items()))
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    if len(sizes) < len(shapes):
        return None
    total = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            fields, spreads = direct(definition)
            total = min(cap + 1, total + fields + sum(n * sizes[s] for s, n in spreads.items()))
    return total


def _shape_rule(max_fields: int, rules: list[type[ASTValidationRule]]) -> type[ASTValidationRule]:
    class QueryShape(ASTValidationRule):
        """Refuses a query whose fragments expand past ``max_fields`` fields, or spread each
        other in a cycle, before ``rules`` (which walk every expansion) get to see it."""

        def __init__(self, context: ASTValidationContext) -> None:
            super().__init__(context)
            size = expanded_size(context.document, max_fields)
            if size is None:
                context.report_error(
                    GraphQLError("Fragments spread each other in a cycle; nothing was run.")
                )
            elif size > max_fields:
                context.report_error(
                    GraphQLError(
                        f"Query expands to more than {max_fields} fields (a fragment counts "
                        "each time it is spread); nothing was run."
                    )
                )
            else:
                for rule in rules:
                    rule(cast(ValidationContext, context))

    return QueryShape


def _validation_cache(valid: dict[str, DocumentNode]) -> Callable[[], SchemaExtension]:
    """Strawberry's ValidationCache, keyed by the parsed document itself rather than by its
    hash: the parser cache gives each query text one document, and hashing a document walks
    every node of it (a tenth of a millisecond for the lineage query), on every request.
    A text whose document validates without an error goes into ``valid``."""
    # id(document) -> (document, rules, errors); the document is kept so its id stays its own
    known: dict[int, tuple[DocumentNode, tuple[Any, ...], list[GraphQLError]]] = {}

    class Validated(SchemaExtension):
        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            document = context.graphql_document
            assert document is not None
            rules = tuple(context.validation_rules)
            found = known.get(id(document))
            if found is not None and found[0] is document and found[1] == rules:
                errors = found[2]
            else:
                errors = validate_document(context.schema._schema, document, rules)
                if len(known) >= QUERY_CACHE:
                    del known[next(iter(known))]
                known[id(document)] = (document, rules, errors)
            if not errors and isinstance(context.query, str):
                if len(valid) >= QUERY_CACHE and context.query not in valid:
                    del valid[next(iter(valid))]
                valid[context.query] = document
            context.pre_execution_errors = errors
            yield

    return Validated


def build_schema(
    *,
    max_depth: int = MAX_QUERY_DEPTH,
    max_tokens: int = MAX_TOKENS,
    max_aliases: int = MAX_ALIASES,
    lean: bool = True,
) -> LineageSchema:
    """The schema with these query-shape limits (each over-limit query: an error with a code).

    The limits are strawberry's QueryDepthLimiter, MaxAliasesLimiter and MaxTokensLimiter,
    and MAX_EXPANDED_FIELDS: the depth and alias rules walk every expansion of a fragment, so
    a query whose fragments expand past that many fields (or in a cycle) is refused first, in
    time linear in its size.
    The depth and alias rules are built once, not per request as those extensions do, so
    that the validation of a query text seen before comes from a cache.
    ``lean``: plain fields are executed by :class:`LeanExecutor`, and fields whose arguments
    are scalars are resolved without strawberry's wrapper (:func:`lean_resolvers`); False:
    strawberry's own executor and resolvers, field by field. The answers are the same.
    """
    rules: list[type[ASTValidationRule]] = [
        _shape_rule(
            MAX_EXPANDED_FIELDS,
            [
                depth_limiter.create_validator(max_depth, None),
                aliases_limiter.create_validator(max_aliases),
            ],
        )
    ]

    def tokens() -> SchemaExtension:
        return MaxTokensLimiter(max_token_count=max_tokens)

    def limits() -> SchemaExtension:
        return AddValidationRules(rules)

    def parsed() -> SchemaExtension:
        return ParserCache(maxsize=QUERY_CACHE)

    valid: dict[str, DocumentNode] = {}
    extensions: list[Any] = [Authorize, tokens, limits, parsed, _validation_cache(valid)]
    built = LineageSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Long: LONG}),
        execution_context_class=LeanExecutor if lean else None,
    )
    built.valid = valid
    if lean:
        lean_resolvers(built)
    return built


schema = build_schema()


def sdl() -> str:
    """The schema in GraphQL SDL, as ``graphql/schema.graphql`` holds it."""
    return schema.as_str() + "\n"
