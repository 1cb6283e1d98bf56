"""A :mod:`lineage.filters` filter and order as SQLite SQL, over a side table of leaves.

Each scalar leaf of ``config``, ``summary`` and ``metadata`` and each tag is also a row of a
side table (``run_leaves``, ``version_leaves``: ``(id, key, num, str, flag)``, the key
``config.lr``, ``summary.eval.loss`` or ``tag``; a number in ``num``, a string in ``str``, a
boolean in ``flag``), indexed on ``(key, num, id)``, ``(key, str, id)`` and ``(id, key)``. A
comparison on a key is then an index range of that key, ``runs.id IN (SELECT id FROM
run_leaves WHERE key = ? AND num < ?)``, never a read of each row's JSON; ``and``, ``or`` and
``not`` combine such sets. A leaf exists only for a value of its kind, so a comparison holds
only when the value is of the literal's kind, and missing is false: ``not`` means what it says.

The side table is kept by triggers on the records' tables (:func:`leaves_schema`), so every
write, from any code path or any version of lineage that opens the file later, keeps it
exact; a store made before it gets it filled once on open. The triggers read the JSON with
``json_tree``. Python's ``json`` writes NaN and infinities as ``NaN``/``Infinity``, which
SQLite 3.40's JSON functions refuse: a document that is not valid JSON is read with those
tokens rewritten (``null``, ``1e999``, which SQLite reads as an infinite REAL), so one
diverged metric does not hide the rest of its row. The rewrite looks for the token after
``: ``, ``, `` or ``[``, where ``json`` writes it. Only keys the filter language can name
(letters, digits, ``_``, ``-``; nested as ``a.b``) get leaves; lists are not looked into.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lineage.filters import NULLABLE, And, Compare, Field, Filter, Not, Or, Order

__all__ = [
    "LEAVES",
    "Columns",
    "leaves_schema",
    "order_leaf_key",
    "order_sql",
    "seek_sql",
    "where_sql",
]

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
_SQL_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _document(column: str) -> str:
    fixed = column
    for old, new in _REWRITES:
        fixed = f"replace({fixed}, '{old}', '{new}')"
    return f"(CASE WHEN json_valid({column}) THEN {column} ELSE {fixed} END)"


def _readable(column: str) -> str:
    """The JSON text of ``column``, or ``{}`` when even the rewrite is not JSON."""
    fixed = _document(column)
    return f"(CASE WHEN json_valid({fixed}) THEN {fixed} ELSE '{{}}' END)"


# the leaves of one table: (leaves table, records table, JSON columns, tags column)
LEAVES = {
    "runs": ("run_leaves", "runs", ("config", "summary"), "tags"),
    "versions": ("version_leaves", "versions", ("metadata",), "tags"),
}


def _leaf_rows(row: str, document: str, column: str) -> str:
    """SELECT the leaves of ``row.column`` (``row`` is ``new`` in a trigger)."""
    text = _readable(f"{row}.{column}")
    path = "replace(j.fullkey, '\"', '')"  # SQLite 3.40 quotes labels such as "a-b"
    return (
        f"SELECT {row}.id, '{document}' || substr({path}, 2), "
        "CASE WHEN j.type IN ('integer', 'real') THEN j.atom END, "
        "CASE WHEN j.type = 'text' THEN j.atom END, "
        "CASE j.type WHEN 'true' THEN 1 WHEN 'false' THEN 0 END "
        f"FROM json_tree({text}) j "
        "WHERE j.type IN ('integer', 'real', 'text', 'true', 'false') "
        # keys of letters, digits, _ and -, not starting with a digit or -, none empty
        f"AND {path} GLOB '$.*' AND {path} NOT GLOB '*[^A-Za-z0-9_.$-]*' "
        f"AND {path} NOT GLOB '*.[0-9-]*' AND {path} NOT GLOB '*..*' "
        f"AND {path} NOT GLOB '*.' "
        # a label holding a dot ({"a.b": 1}) reads as another path: kept only when that
        # path leads to this very value (then the filter language's answer is the same)
        f"AND json_type({text}, {path}) = j.type "
        f"AND (j.type IN ('true', 'false') OR json_extract({text}, {path}) IS j.atom)"
    )


def leaves_schema(target: str) -> tuple[list[str], list[str]]:
    """``(schema, fill)``: the statements creating ``target``'s side table of leaves, its
    indexes and the triggers keeping it, and those filling it from the rows a store holds
    already (run once, when the table is new)."""
    leaves, table, documents, tags = LEAVES[target]
    columns = f"INSERT INTO {leaves} (id, key, num, str, flag) "
    tag_rows = (
        f"SELECT new.id, 'tag', NULL, t.value, NULL FROM json_each(CASE WHEN "
        f"json_valid(new.{tags}) THEN new.{tags} END) t WHERE t.type = 'text'"
    )
    inserts = " ".join(f"{columns}{_leaf_rows('new', d, d)};" for d in documents)
    inserts += f" {columns}{tag_rows};"
    watched = ", ".join([*documents, tags])
    schema = [
        f"CREATE TABLE IF NOT EXISTS {leaves} (id TEXT NOT NULL, key TEXT NOT NULL, num, "
        "str TEXT, flag INTEGER)",
        # covering: a probe of one row's key reads this index alone
        f"CREATE INDEX IF NOT EXISTS {leaves}_id ON {leaves} (id, key, num, str, flag)",
        f"CREATE INDEX IF NOT EXISTS {leaves}_num ON {leaves} (key, num, id)",
        f"CREATE INDEX IF NOT EXISTS {leaves}_str ON {leaves} (key, str, id)",
        f"CREATE TRIGGER IF NOT EXISTS {leaves}_insert AFTER INSERT ON {table} BEGIN {inserts} END",
        f"CREATE TRIGGER IF NOT EXISTS {leaves}_update AFTER UPDATE OF {watched} ON {table} "
        f"BEGIN DELETE FROM {leaves} WHERE id = old.id; {inserts} END",
        f"CREATE TRIGGER IF NOT EXISTS {leaves}_delete AFTER DELETE ON {table} "
        f"BEGIN DELETE FROM {leaves} WHERE id = old.id; END",
    ]
    every = f"FROM {table} new, json_"
    fill = [columns + _leaf_rows("new", d, d).replace("FROM json_", every) for d in documents] + [
        columns + tag_rows.replace("FROM json_", every)
    ]
    return schema, fill


def leaves_bulk(target: str) -> tuple[str, str, list[str]]:
    """``(insert trigger, its CREATE statement, fill)`` for a bulk import of ``target``'s
    rows: the import drops the per-row insert trigger, inserts its rows, fills their leaves
    with ``fill`` (each statement takes one parameter, a JSON array of the new rows' ids)
    in one set-based pass of the triggers' own SELECTs, and creates the trigger again, all
    in its one transaction (three times the rows a second of the per-row trigger)."""
    leaves, table, *_ = LEAVES[target]
    schema, fill = leaves_schema(target)
    trigger = f"{leaves}_insert"
    (create,) = (s for s in schema if s.startswith(f"CREATE TRIGGER IF NOT EXISTS {trigger} "))
    every = f"FROM {table} new, json_"
    some = f"FROM json_each(?) w CROSS JOIN {table} new ON new.id = w.value, json_"
    return trigger, create, [statement.replace(every, some) for statement in fill]


def where_sql(where: Filter, columns: Columns) -> tuple[str, list[Any]]:
    """``(sql, params)``: a boolean expression over a row of the table ``columns`` names."""
    params: list[Any] = []
    return _compile(where, columns, params), params


def _compile(where: Filter, columns: Columns, params: list[Any], negated: bool = False) -> str:
    # Outside a ``not``, NULL already counts as false (WHERE, AND and OR treat it so) and the
    # bare term lets the planner use an index (``runs.id IN (...)``, ``state = ?``); under
    # one, NULL (a missing attribute) must become false first.
    if isinstance(where, And):
        return "(" + " AND ".join(_compile(p, columns, params, negated) for p in where.parts) + ")"
    if isinstance(where, Or):
        return "(" + " OR ".join(_compile(p, columns, params, negated) for p in where.parts) + ")"
    if isinstance(where, Not):
        return f"(NOT {_compile(where.part, columns, params, True)})"
    leaf = _leaf(where, columns, params)
    return f"coalesce({leaf}, 0)" if negated else f"({leaf})"


def _leaf(where: Compare, columns: Columns, params: list[Any]) -> str:
    field = where.field
    if field.attribute is not None:
        column = columns[field.attribute]
        wanted = "number" if field.kind == "time" else field.kind
        given = "number" if where.kind == "time" else where.kind
        if wanted != given:
            return "0"  # a string attribute is never a number, and so on
        return _compare(column, where, params)
    # a probe of the row's leaves: one seek on (id, key)
    test = _leaf_test(where, params)
    found = (
        f"EXISTS (SELECT 1 FROM {columns['leaves']} l INDEXED BY {columns['leaves']}_id "
        f"WHERE l.id = {columns['id']} "
        f"AND l.key = ? AND {test})"
    )
    return f"NOT {found}" if field.tags and where.op == "!=" else found


def _leaf_test(where: Compare, params: list[Any]) -> str:
    """The test on a leaf row (``num < ?``) of a comparison on a key or a tag; its key,
    then its values, go to ``params``."""
    field = where.field
    if field.tags:
        params.append("tag")
        if where.op == "contains":
            params.append(where.values[0])
            return "instr(l.str, ?) > 0"
        params.extend(where.values)
        return f"l.str IN ({', '.join('?' * len(where.values))})"
    assert field.document is not None
    params.append(f"{field.document}." + ".".join(field.path))
    if where.kind == "bool":
        truths = {1 if v else 0 for v in where.values}
        if where.op == "!=":
            truths = {0, 1} - truths
        return f"l.flag IN ({', '.join(map(str, sorted(truths))) or 'NULL'})"
    column = "l.num" if where.kind == "number" else "l.str"
    return _compare(column, where, params)


def seek_sql(where: Filter, columns: Columns) -> tuple[str, list[Any]] | None:
    """``SELECT id FROM leaves l WHERE l.key = ? AND ...``: the ids a comparison on a key
    or a tag holds for, read from one index range; None for any other filter."""
    if not isinstance(where, Compare) or where.field.attribute is not None:
        return None
    if where.field.tags and where.op == "!=":
        return None
    params: list[Any] = []
    test = _leaf_test(where, params)
    return f"SELECT l.id FROM {columns['leaves']} l WHERE l.key = ? AND {test}", params


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
    2 the rest; descending 2 - that) and of its value within the rank (0 for the rest), as
    :func:`lineage.filters.order_key` ranks them. ``params`` fill the rank's then the value's
    placeholders. For a column that always has a value the rank is a constant (a digit) and
    the value the bare column, so that an index on it can serve the order."""
    field: Field = order.field
    number, string, rest = (2, 1, 0) if order.descending else (0, 1, 2)
    if field.attribute is not None:
        column = columns[field.attribute]
        first = number if field.kind in ("number", "time") else string
        if field.attribute not in NULLABLE:  # one rank: the column orders (and an index)
            return str(first), column, []
        return (
            f"(CASE WHEN {column} IS NULL THEN {rest} ELSE {first} END)",
            f"coalesce({column}, 0)",
            [],
        )
    assert field.document is not None
    # the key's number or string (NULL: missing, a boolean): one index seek on (id, key)
    found = (
        f"(SELECT coalesce(num, str) FROM {columns['leaves']} o INDEXED BY {columns['leaves']}_id "
        f"WHERE o.id = {columns['id']} AND o.key = ?)"
    )
    rank = (
        f"(CASE typeof({found}) WHEN 'text' THEN {string} WHEN 'null' THEN {rest} "
        f"ELSE {number} END)"
    )
    key = order_leaf_key(order)
    return rank, f"coalesce({found}, 0)", [key, key]


def order_leaf_key(order: Order) -> str:
    """The side table's key of a document field an order reads (``summary.loss``)."""
    return f"{order.field.document}." + ".".join(order.field.path)
