"""Every GraphQL error leaves with ``extensions.code``, and its message on one line.

- a :class:`~lineage.errors.LineageError` raised by the service keeps its message and its
  ``code`` (NOT_FOUND, INVALID_INPUT, CONFLICT, UNAUTHENTICATED, FORBIDDEN, ...), plus its
  context (``ref``, ``digest``, ...) when that is a plain value;
- a query over a limit: QUERY_TOO_DEEP, TOO_MANY_ALIASES, TOO_MANY_TOKENS, QUERY_TOO_COMPLEX
  (more fields than MAX_EXPANDED_FIELDS once its fragments are expanded);
- any other malformed query: GRAPHQL_PARSE_FAILED or GRAPHQL_VALIDATION_FAILED;
- a variable missing or of the wrong type: BAD_USER_INPUT (graphql-core's message, which
  names the variable);
- anything else is a bug: INTERNAL, logged with its traceback, its message masked.
"""

from __future__ import annotations

import logging
import re

from graphql import GraphQLError, GraphQLSyntaxError
from lineage.errors import LineageError

__all__ = ["INTERNAL_MESSAGE", "classify", "format_error"]

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "internal server error: the server log has the details"
_LIMITS = (
    # the wording of strawberry's limiter extensions and graphql-core's parser
    (re.compile(r"exceeds maximum operation depth"), "QUERY_TOO_DEEP"),
    (re.compile(r"aliases found\. Allowed"), "TOO_MANY_ALIASES"),
    (re.compile(r"Document contains more than \d+ tokens"), "TOO_MANY_TOKENS"),
    (re.compile(r"Query expands to more than \d+ fields"), "QUERY_TOO_COMPLEX"),
)
_PLAIN = (str, int, float, bool)


def classify(error: GraphQLError) -> str:
    """The ``extensions.code`` of an error."""
    original = error.original_error
    if isinstance(original, LineageError):
        return original.code
    for pattern, code in _LIMITS:
        if pattern.search(error.message):
            return code
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if error.path is None and error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"  # coercing the request's variables, before any resolver
    if original is None and error.path is None:
        return "GRAPHQL_VALIDATION_FAILED"
    return "INTERNAL"  # a resolver failed, or broke the schema's promises


def format_error(error: GraphQLError) -> None:
    """Set the code (and mask the message of a bug) on an error, in place."""
    code = classify(error)
    extensions = dict(error.extensions or {})
    original = error.original_error
    if isinstance(original, LineageError):
        extensions.update(
            (key, value)
            for key, value in original.context.items()
            if isinstance(value, _PLAIN) and key not in ("code", "message")
        )
        logger.info("refused (%s): %s", code, original)
    elif code == "INTERNAL":
        logger.error("GraphQL resolver failed: %s", error.message, exc_info=original)
        if original is not None:
            error.message = INTERNAL_MESSAGE
    extensions["code"] = code
    error.extensions = extensions
    error.message = " ".join(error.message.split())
