"""A :mod:`lineage.filters` filter and order as Cypher, over flattened properties.

A node keeps ``config``, ``summary`` and ``metadata`` as JSON text (the codec's one encoding),
which Cypher cannot look into without APOC. So each scalar leaf is also written, when the
record is written, as a property of its own named by its path: ``config.lr``,
``summary.eval.accuracy``, ``metadata.epochs`` (:func:`flat_props`), with a range index per
key (:func:`index_query`, created by the store the first time a record has that key). A
filter names the property, ``r.`config.lr` < $f0``, so the planner seeks that index; the key
is checked against the filter language's key pattern first, and every value is a parameter.
Only string, boolean, integer (64-bit) and float leaves are kept (a NaN is no value, as in
SQLite; -0.0 is kept as 0.0), under keys that the filter language can name; lists and nulls
are not.

A comparison holds only when the value is of the literal's kind (``IS :: INTEGER | FLOAT``,
``IS :: STRING``, ``IS :: BOOLEAN``). Under a ``not`` it is ``coalesce(..., false)``: missing
is false, so ``not`` means what it says, as in :mod:`lineage.storage.sqlfilter`; elsewhere
the bare predicate (a null already fails a WHERE) lets the planner use the index.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, LiteralString

from lineage.filters import JSON_FIELDS, NULLABLE, And, Compare, Filter, Not, Or, Order

__all__ = ["FLAT_PREFIXES", "flat_props", "index_query", "order_cypher", "prop", "where_cypher"]

FLAT_PREFIXES = tuple(f"{d}." for target in JSON_FIELDS.values() for d in target)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_TYPES = {"number": "INTEGER | FLOAT", "string": "STRING", "bool": "BOOLEAN"}


def flat_props(document: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened properties of one JSON field of a record: ``{"config.lr": 0.001}``."""
    found: dict[str, Any] = {}
    _flatten(document, value, found)
    return found


def _flatten(prefix: str, value: Any, found: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(key, str) and _KEY.fullmatch(key):
                _flatten(f"{prefix}.{key}", inner, found)
    elif isinstance(value, bool):
        found[prefix] = value
    elif isinstance(value, str):
        if value.isascii() or _encodable(value):  # Bolt cannot carry a lone surrogate, which
            found[prefix] = value  # a store an older lineage wrote may hold: not filterable
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            found[prefix] = value
    elif isinstance(value, float) and not math.isnan(value):
        found[prefix] = value + 0.0  # -0.0 is 0.0 (Neo4j would sort it below 0)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def prop(var: str, key: str) -> str:
    """``var.`config.lr```: a flattened property by name. Keys are checked against the
    filter language's key pattern (letters, digits, ``_``, ``-``, dot-joined) before they
    get here; a backtick can never be one of them. Named in the text, not as ``var[$k]``,
    so that the planner can seek the property's range index (:func:`index_query`)."""
    if not all(_KEY.fullmatch(part) for part in key.split(".")):
        raise ValueError(f"not a flattened key: {key!r}")
    return f"{var}.`{key}`"


def index_query(label: str, key: str) -> str:
    """The range index of one flattened property (created once a record has that key)."""
    if label not in ("Run", "ArtifactVersion"):
        raise ValueError(f"no flattened properties on {label!r}")
    return (
        f"CREATE RANGE INDEX `flat {label} {key}` IF NOT EXISTS "
        f"FOR (n:{label}) ON ({prop('n', key)})"
    )


class _Builder:
    def __init__(self, var: str, columns: Mapping[str, str]) -> None:
        self.var = var
        self.columns = columns
        self.params: dict[str, Any] = {}

    def param(self, value: Any) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return "$" + name

    def compile(self, where: Filter, negated: bool = False) -> str:
        # Outside a ``not``, a null comparison already counts as false (WHERE, AND, OR treat
        # it so) and the bare predicate lets the planner seek an index; under one, null
        # must become false first.
        if isinstance(where, And):
            return "(" + " AND ".join(self.compile(p, negated) for p in where.parts) + ")"
        if isinstance(where, Or):
            return "(" + " OR ".join(self.compile(p, negated) for p in where.parts) + ")"
        if isinstance(where, Not):
            return f"(NOT {self.compile(where.part, True)})"
        return f"coalesce({self.leaf(where)}, false)" if negated else f"({self.leaf(where)})"

    def leaf(self, where: Compare) -> str:
        field = where.field
        if field.tags:
            tags = f"coalesce({self.var}.tags, [])"
            if where.op == "contains":
                return f"any(t IN {tags} WHERE t CONTAINS {self.param(where.values[0])})"
            if where.op == "in":
                return f"any(t IN {tags} WHERE t IN {self.param(list(where.values))})"
            found = f"{self.param(where.values[0])} IN {tags}"
            return f"NOT {found}" if where.op == "!=" else found
        if field.attribute is not None:
            wanted = "number" if field.kind == "time" else field.kind
            given = "number" if where.kind == "time" else where.kind
            if wanted != given:
                return "false"
            return self.compare(self.columns[field.attribute], where)
        value = prop(self.var, f"{field.document}." + ".".join(field.path))
        kind = "number" if where.kind == "time" else where.kind
        return f"{self.compare(value, where)} AND {value} IS :: {_TYPES[kind]}"

    def compare(self, expression: str, where: Compare) -> str:
        if where.op == "in":
            return f"{expression} IN {self.param(list(where.values))}"
        operand = self.param(where.values[0])
        if where.op == "contains":
            return f"{expression} CONTAINS {operand}"
        return f"{expression} {_OPS[where.op]} {operand}"

    def order(self, order: Order) -> tuple[str, str]:
        field = order.field
        # ranks as lineage.filters.order_key: the rest (missing...) last in both directions
        number, string, rest = (2, 1, 0) if order.descending else (0, 1, 2)
        if field.attribute is not None:
            column = self.columns[field.attribute]
            first = number if field.kind in ("number", "time") else string
            if field.attribute not in NULLABLE:
                return str(first), column
            return (
                f"CASE WHEN {column} IS NULL THEN {rest} ELSE {first} END",
                f"coalesce({column}, 0)",
            )
        value = prop(self.var, f"{field.document}." + ".".join(field.path))
        # a type predicate holds for null too (types are nullable): null is tested first
        rank = (
            f"CASE WHEN {value} IS NULL THEN {rest} WHEN {value} IS :: INTEGER | FLOAT "
            f"THEN {number} WHEN {value} IS :: STRING THEN {string} ELSE {rest} END"
        )
        kept = f"{value} IS NOT NULL AND {value} IS :: INTEGER | FLOAT | STRING"
        return rank, f"CASE WHEN {kept} THEN {value} ELSE 0 END"


def where_cypher(
    where: Filter, var: str, columns: Mapping[str, str], params: dict[str, Any]
) -> LiteralString:
    """A boolean expression over the node ``var``; its parameters are added to ``params``."""
    builder = _Builder(var, columns)
    builder.params = params
    # only fixed fragments and parameter names are joined: no value is in the text
    return builder.compile(where)


def order_cypher(
    order: Order, var: str, columns: Mapping[str, str], params: dict[str, Any]
) -> tuple[LiteralString, LiteralString]:
    """``(rank, value)`` expressions ranking a node as :func:`lineage.filters.order_key`."""
    builder = _Builder(var, columns)
    builder.params = params
    return builder.order(order)
