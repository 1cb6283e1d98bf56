"""A :mod:`lineage.filters` filter and order as SQLite SQL over the stored JSON columns.

Keys of ``config``, ``summary`` and ``metadata`` are read with ``json_extract`` on the JSON text
each row keeps; the key path and every value are parameters, never SQL text. A comparison
holds only when ``json_type`` says the value is of the literal's kind; it is tested *after*
the comparison itself, so SQLite (whose ``AND`` stops at the first false) pays for it only on
rows that pass. Each comparison is ``coalesce(..., 0)``: a missing value is false, not NULL,
so ``not`` means what it says.

Python's ``json`` writes NaN and infinities as ``NaN``/``Infinity``, which SQLite 3.40's JSON
functions refuse; a row whose text is not valid JSON is read with those tokens rewritten
(``null``, ``1e999``, which SQLite reads as an infinite REAL), so one diverged metric does
not hide the rest of its row. The rewrite looks for the token after ``: ``, ``, `` or ``[``,
where ``json`` writes it; only a row that holds such a token at all pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lineage.filters import NULLABLE, And, Compare, Field, Filter, Not, Or, Order

__all__ = ["Columns", "order_sql", "where_sql"]

# record attribute -> SQL expression, per table; ``document`` columns and ``tags`` likewise
Columns = Mapping[str, str]

_REWRITES = (
    (": NaN", ": null"),
    (", NaN", ", null"),
    ("[NaN", "[null"),
    (": Infinity", ": 1e999"),
    (", Infinity", ", 1e999"),
    ("[Infinity", "[1e999"),
    ("-Infinity", "-1e999"),
)
_NUMBER_TYPES = "('integer', 'real')"
_SQL_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _document(column: str) -> str:
    fixed = column
    for old, new in _REWRITES:
        fixed = f"replace({fixed}, '{old}', '{new}')"
    return f"(CASE WHEN json_valid({column}) THEN {column} ELSE {fixed} END)"


def _path(path: Sequence[str]) -> str:
    return "$" + "".join(f'."{key}"' for key in path)


def where_sql(where: Filter, columns: Columns) -> tuple[str, list[Any]]:
    """``(sql, params)``: a boolean expression over a row of the table ``columns`` names."""
    params: list[Any] = []
    return _compile(where, columns, params), params


def _compile(where: Filter, columns: Columns, params: list[Any]) -> str:
    if isinstance(where, And):
        return "(" + " AND ".join(_compile(p, columns, params) for p in where.parts) + ")"
    if isinstance(where, Or):
        return "(" + " OR ".join(_compile(p, columns, params) for p in where.parts) + ")"
    if isinstance(where, Not):
        return f"(NOT {_compile(where.part, columns, params)})"
    return f"coalesce({_leaf(where, columns, params)}, 0)"


def _leaf(where: Compare, columns: Columns, params: list[Any]) -> str:
    field = where.field
    if field.tags:
        tags = columns["tags"]
        if where.op == "contains":
            params.append(where.values[0])
            return f"EXISTS (SELECT 1 FROM json_each({tags}) WHERE instr(value, ?) > 0)"
        params.extend(where.values)
        slots = ", ".join("?" * len(where.values))
        found = f"EXISTS (SELECT 1 FROM json_each({tags}) WHERE value IN ({slots}))"
        return f"NOT {found}" if where.op == "!=" else found
    if field.attribute is not None:
        column = columns[field.attribute]
        wanted = "number" if field.kind == "time" else field.kind
        given = "number" if where.kind == "time" else where.kind
        if wanted != given:
            return "0"  # a string attribute is never a number, and so on
        return _compare(column, where, params)
    assert field.document is not None
    document = _document(columns[field.document])
    path = _path(field.path)
    value = f"json_extract({document}, ?)"
    kind = f"json_type({document}, ?)"
    if where.kind == "bool":
        params.append(path)
        truths = {"true" if v else "false" for v in where.values}
        if where.op == "!=":
            truths = {"true", "false"} - truths
        return f"{kind} IN ({', '.join(repr(w) for w in sorted(truths)) or 'NULL'})"
    params.append(path)
    test = _compare(value, where, params)
    params.append(path)
    types = _NUMBER_TYPES if where.kind == "number" else "('text')"
    return f"({test} AND {kind} IN {types})"


def _compare(expression: str, where: Compare, params: list[Any]) -> str:
    if where.op == "in":
        params.extend(where.values)
        return f"{expression} IN ({', '.join('?' * len(where.values))})"
    params.append(where.values[0])
    if where.op == "contains":
        return f"instr({expression}, ?) > 0"
    return f"{expression} {_SQL_OPS[where.op]} ?"


def order_sql(order: Order, columns: Columns) -> tuple[str, str, list[Any]]:
    """``(rank, value, params)``: the SQL of a row's rank (0 numbers and times, 1 strings,
    2 the rest) and of its value within the rank (0 for rank 2), as :func:`lineage.filters.
    order_key` ranks them. ``params`` fill the rank's then the value's placeholders. For a
    column that always has a value the rank is a constant (a digit) and the value the bare
    column, so that an index on it can serve the order."""
    field: Field = order.field
    if field.attribute is not None:
        column = columns[field.attribute]
        first = 0 if field.kind in ("number", "time") else 1
        if field.attribute not in NULLABLE:  # one rank: the column orders (and an index)
            return str(first), column, []
        return (
            f"(CASE WHEN {column} IS NULL THEN 2 ELSE {first} END)",
            f"coalesce({column}, 0)",
            [],
        )
    assert field.document is not None
    document = _document(columns[field.document])
    path = _path(field.path)
    kind = f"json_type({document}, ?)"
    rank = f"(CASE WHEN {kind} IN {_NUMBER_TYPES} THEN 0 WHEN {kind} = 'text' THEN 1 ELSE 2 END)"
    value = (
        f"(CASE WHEN {kind} IN ({_NUMBER_TYPES[1:-1]}, 'text') "
        f"THEN json_extract({document}, ?) ELSE 0 END)"
    )
    return rank, value, [path, path, path, path]
