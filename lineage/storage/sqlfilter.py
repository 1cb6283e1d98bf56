"""A :mod:`lineage.filters` filter and order as SQLite SQL, over a side table of leaves.

Each scalar leaf of ``config``, ``summary`` and ``metadata`` and each tag is also a row of a
side table (``run_leaf``, ``version_leaf``: ``(rid, key, value)``, ``rid`` the record's
rowid, the key ``config.lr``, ``summary.eval.loss`` or ``tag``; the value a number, a string,
or a boolean as the blob ``x'00'``/``x'01'``). The table is clustered on ``(rid, key,
value)`` (``WITHOUT ROWID``: a new record's rowid is the largest, so its leaves are
appended), and a copy of it, ``run_leaf_by_value``/``version_leaf_by_value``, is clustered on
``(key, value, rid)``. SQLite orders numbers before strings before blobs, so a kind is a range
of the copy: numbers ``value < ''``, strings ``'' <= value < x''``. A comparison on a key is
then a range of that key, ``runs.rowid IN (SELECT rid FROM run_leaf_by_value WHERE key = ?
AND value < ? ...)``, never a read of each row's JSON; ``and``, ``or`` and ``not`` combine
such sets (a probe of one row's leaves reads the side table itself). A leaf exists only for a
value of its kind, so a comparison holds only when the value is of the literal's kind, and
missing is false: ``not`` means what it says.

New rows get their leaves set-based: the meta key ``run_leaf_done`` (:data:`DONE`) holds the
largest rowid whose row has them, and each writer that inserts rows catches up, in its own
transaction, every row past it (one ``INSERT ... SELECT``, in the table's order), so an
import of 5,000 runs writes its leaves at once rather than from a trigger row by row (three
times the rows a second). A bulk import that inserts only new rows, with none waiting
before it, writes its rows' leaves from the records it holds instead (:func:`leaf_rows`,
the same leaves without parsing the JSON it has just written) and moves the mark past
them. The copies by value have a mark of their own
(``run_leaf_by_value_done``): the leaves past it are merged in key order (:func:`merge_sql`)
by a writer once 50,000 rows wait, or by the next filter, in its write transaction, before it
reads. A random value (a loss) lands on a random page of the copy: merged a batch at a time,
each batch of a 1M-run import rewrote a page a leaf all over a tree larger than the page
cache; merged 50,000 rows at a time, each page once a merge. A row inserted by another
program (an older lineage) is caught up by the next writer, or by the next filter before it
reads (one read tells). Updates and deletes are kept by triggers on the records' tables
(:func:`leaves_schema`), whoever writes, in the side table and (rows within its mark) in its
copy. A store made before the side table gets it filled on open (and the first side tables,
``run_leaves``/``version_leaves``, keyed by text ids in three indexes, are dropped). The
rowid of a table without an ``INTEGER PRIMARY KEY`` stays put for lineage's writes (no
``REPLACE``, no ``VACUUM``); SQLite does not promise that a ``VACUUM`` keeps them, so a
store vacuumed by hand should drop its side tables, which the next open fills again.

The triggers read the JSON with ``json_tree``. Python's ``json`` writes NaN and infinities as
``NaN``/``Infinity``, which SQLite 3.40's JSON functions refuse: a document that is not valid
JSON is read with those tokens rewritten (``null``, ``1e999``, which SQLite reads as an
infinite REAL), so one diverged metric does not hide the rest of its row. The rewrite looks
for the token after ``: ``, ``, `` or ``[``, where ``json`` writes it. Only keys the filter
language can name (letters, digits, ``_``, ``-``; nested as ``a.b``) get leaves; lists are not
looked into.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lineage.filters import NULLABLE, And, Compare, Field, Filter, Not, Or, Order

__all__ = [
    "BY_VALUE",
    "BY_VALUE_DONE",
    "DONE",
    "LEAVES",
    "OLD_LEAVES",
    "Columns",
    "by_value",
    "drop_old_leaves",
    "leaf_rows",
    "leaves_schema",
    "merge_sql",
    "number_range",
    "order_leaf_key",
    "order_sql",
    "seek_sql",
    "string_range",
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


def _readable(column: str) -> str:
    """The JSON text of ``column``, or ``{}`` when even the rewrite is not JSON (the
    column is read once when it is JSON, as it nearly always is)."""
    fixed = column
    for old, new in _REWRITES:
        fixed = f"replace({fixed}, '{old}', '{new}')"
    return (
        f"(CASE WHEN json_valid({column}) THEN {column} "
        f"WHEN json_valid({fixed}) THEN {fixed} ELSE '{{}}' END)"
    )


# the leaves of one table: (leaves table, records table, JSON columns, tags column)
LEAVES = {
    "runs": ("run_leaf", "runs", ("config", "summary"), "tags"),
    "versions": ("version_leaf", "versions", ("metadata",), "tags"),
}
# the meta key of the largest rowid of each table whose row has its leaves
DONE = {target: f"{leaves}_done" for target, (leaves, *_) in LEAVES.items()}
# each side table's copy ordered by (key, value, rid), and the meta key of the largest rowid
# whose leaves it holds (:func:`merge_sql`)
BY_VALUE = {target: f"{leaves}_by_value" for target, (leaves, *_) in LEAVES.items()}
BY_VALUE_DONE = {target: f"{leaves}_by_value_done" for target, (leaves, *_) in LEAVES.items()}
# the first side tables (text ids, three indexes): dropped when a store opens
OLD_LEAVES = ("run_leaves", "version_leaves")
# a leaf's value: the atom, a boolean as a blob (after every number and string)
_VALUE = "CASE j.type WHEN 'true' THEN x'01' WHEN 'false' THEN x'00' ELSE j.atom END"
# the kinds as ranges of the (key, value, rid) index (numbers < strings < blobs)
_NUMBER = "{0} < ''"
_STRING = "{0} >= '' AND {0} < x''"


def _leaf_rows(row: str, document: str, column: str) -> str:
    """SELECT the leaves of ``row.column`` (``row`` is ``new`` in a trigger)."""
    text = _readable(f"{row}.{column}")
    path = "replace(j.fullkey, '\"', '')"  # SQLite 3.40 quotes labels such as "a-b"
    return (
        f"SELECT {row}.rowid, '{document}' || substr({path}, 2), {_VALUE} "
        f"FROM json_tree({text}) j "
        "WHERE j.type IN ('integer', 'real', 'text', 'true', 'false') AND CASE "
        # SQLite quotes every label but a letter then letters and digits: a path without
        # quotes is of such labels alone, a key of the filter language unless it goes
        # into a list (``[``) or is the document itself (the common case, tested at once)
        "WHEN instr(j.fullkey, '\"') = 0 THEN instr(j.fullkey, '[') = 0 AND j.fullkey != '$' "
        # else keys of letters, digits, _ and -, not starting with a digit or -, none empty
        # (a WHEN of its own: SQLite may evaluate every operand of an AND, and the path of
        # an empty key, '$.' or '$.a.', is an error to json_type; a CASE stops at the first)
        f"WHEN NOT ({path} GLOB '$.*' AND {path} NOT GLOB '*[^A-Za-z0-9_.$-]*' "
        f"AND {path} NOT GLOB '*.[0-9-]*' AND {path} NOT GLOB '*..*' "
        f"AND {path} NOT GLOB '*.') THEN 0 "
        # a label holding a dot ({"a.b": 1}) reads as another path: kept only when that
        # path leads to this very value (then the filter language's answer is the same)
        f"ELSE json_type({text}, {path}) = j.type "
        f"AND (j.type IN ('true', 'false') OR json_extract({text}, {path}) IS j.atom) END"
    )


def leaves_schema(target: str) -> tuple[list[str], list[str]]:
    """``(schema, catch_up)``: the statements creating ``target``'s side table of leaves, its
    index and the triggers keeping it on updates and deletes, and those giving leaves to the
    rows inserted since the last catch-up, set-based (:data:`DONE`: the largest rowid that
    has them; each statement takes it as its one parameter; the writer then records the
    table's largest rowid)."""
    leaves, table, documents, tags = LEAVES[target]
    by_value, merged = BY_VALUE[target], BY_VALUE_DONE[target]
    # OR IGNORE: a key held twice ({"a.b": 1, "a": {"b": 1}}) is one leaf; a row updated
    # before its catch-up has its leaves from the update trigger already
    columns = f"INSERT OR IGNORE INTO {leaves} (rid, key, value) "
    tag_rows = (
        f"SELECT new.rowid, 'tag', t.value FROM json_each(CASE WHEN "
        f"json_valid(new.{tags}) THEN new.{tags} END) t WHERE t.type = 'text'"
    )
    inserts = " ".join(f"{columns}{_leaf_rows('new', d, d)};" for d in documents)
    inserts += f" {columns}{tag_rows};"
    watched = ", ".join([*documents, tags])
    done = DONE[target]
    # the row's leaves leave the copy by value wherever its mark is; they come back now if
    # the row is within the mark, else with the next merge
    unmerge = (
        f"DELETE FROM {by_value} WHERE (key, value, rid) IN "
        f"(SELECT key, value, rid FROM {leaves} WHERE rid = old.rowid);"
    )
    remerge = (
        f"INSERT OR IGNORE INTO {by_value} (key, value, rid) SELECT key, value, rid "
        f"FROM {leaves} WHERE rid = new.rowid AND new.rowid <= coalesce((SELECT "
        f"CAST(value AS INTEGER) FROM meta WHERE key = '{merged}'), 0);"
    )
    lower = "UPDATE meta SET value = min(CAST(value AS INTEGER), old.rowid - 1) WHERE key ="
    schema = [
        f"CREATE TABLE IF NOT EXISTS {leaves} (rid INTEGER NOT NULL, key TEXT NOT NULL, "
        "value NOT NULL, PRIMARY KEY (rid, key, value)) WITHOUT ROWID",
        f"CREATE TABLE IF NOT EXISTS {by_value} (key TEXT NOT NULL, value NOT NULL, "
        "rid INTEGER NOT NULL, PRIMARY KEY (key, value, rid)) WITHOUT ROWID",
        # the index the copy by value replaces (a store made before it; an older lineage
        # opening the store makes it again, and keeps the triggers below)
        f"DROP INDEX IF EXISTS {leaves}_value",
        f"CREATE TRIGGER IF NOT EXISTS {leaves}_update AFTER UPDATE OF {watched} ON {table} "
        f"BEGIN {unmerge} DELETE FROM {leaves} WHERE rid = old.rowid; {inserts} {remerge} END",
        # a deleted row's rowid may come back (the largest one): it is caught up again
        f"CREATE TRIGGER IF NOT EXISTS {leaves}_delete AFTER DELETE ON {table} "
        f"BEGIN {unmerge} DELETE FROM {leaves} WHERE rid = old.rowid; "
        f"{lower} '{done}'; {lower} '{merged}'; END",
    ]
    # One statement for every document and the tags, its rows sorted as the table is
    # clustered, so each leaf lands where the previous one did (one statement a document
    # went back over the same rows and pages once a document): 5% less time a batch.
    every = f"FROM {table} new CROSS JOIN json_"
    selects = [
        statement.replace("FROM json_", every).replace(" WHERE ", " WHERE new.rowid > ?1 AND ", 1)
        for statement in [*(_leaf_rows("new", d, d) for d in documents), tag_rows]
    ]
    catch_up = [f"{columns}SELECT * FROM ({' UNION ALL '.join(selects)}) ORDER BY 1, 2, 3"]
    return schema, catch_up


# A key of the filter language: its leaf is the catch-up's whatever the document. A key
# holding a dot or a ``$`` may or may not get one (the catch-up keeps a label ``a.b`` when
# the path ``a.b`` leads to the same value): left to the catch-up's SQL. Any other key (an
# empty one, a space, a first digit, non-ASCII) never gets one, nor does anything under it.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INT = (-(2**63), 2**63 - 1)
_TRUTH = {True: b"\x01", False: b"\x00"}


class _Unsure(Exception):
    """A value whose leaf only the catch-up's ``json_tree`` reading can say."""


def leaf_rows(target: str, records: Sequence[Any], first: int) -> list[tuple[int, str, Any]] | None:
    """The ``(rid, key, value)`` leaves the catch-up (:func:`leaves_schema`) would give the
    records ``records`` stored at rowids ``first``, ``first + 1``, ..., read from the records
    themselves instead of parsing their JSON again in SQL: a bulk import's leaves at half
    the cost. None when a record holds something the catch-up reads in a way of its own (a
    key with a dot or a ``$``, a NaN or an infinity, an integer beyond 64 bits, a non-ASCII
    or NUL-holding string, a key that is not a string, a type JSON would write otherwise):
    then the catch-up's SQL gives every leaf, as before."""
    documents = [(name, _paths(name)) for name in LEAVES[target][2]]
    rows: list[tuple[int, str, Any]] = []
    add = rows.append
    try:
        for rid, record in enumerate(records, first):
            for name, paths in documents:
                document = getattr(record, name)
                if document:
                    _flatten(rid, name, paths, document, add)
            if record.tags:
                for tag in record.tags:
                    add((rid, "tag", _text(tag)))
    except _Unsure:
        return None
    return rows


# prefix -> key -> the leaf's key ("" for a key that gets no leaf): a bulk import meets the
# same few keys again and again (bounded: past the bound, keys are worked out each time)
_PATHS: dict[str, dict[str, str]] = {}
_BOUND = 4096


def _paths(prefix: str) -> dict[str, str]:
    paths = _PATHS.get(prefix)
    if paths is None:
        paths = {}
        if len(_PATHS) < _BOUND:
            _PATHS[prefix] = paths
    return paths


def _path(paths: dict[str, str], prefix: str, key: Any) -> str:
    if type(key) is not str:
        raise _Unsure  # JSON writes it as a string of its own (1 -> "1", True -> "true")
    if _KEY.fullmatch(key):
        path = f"{prefix}.{key}"
    elif "." in key or "$" in key:
        raise _Unsure
    else:
        path = ""
    if len(paths) < _BOUND:
        paths[key] = path
    return path


def _flatten(
    rid: int,
    prefix: str,
    paths: dict[str, str],
    document: Any,
    add: Callable[[tuple[int, str, Any]], None],
) -> None:
    if type(document) is not dict and not isinstance(document, Mapping):
        return  # a list or a scalar document: no key, no leaf (json_tree's '$' or '$[0]')
    for key, value in document.items():
        path = paths.get(key)
        if path is None:
            path = _path(paths, prefix, key)
        if not path:
            continue
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN or an infinity: json writes NaN / Infinity,
                raise _Unsure  # which the catch-up rewrites
            add((rid, path, value))
        elif kind is str:
            add((rid, path, _text(value)))
        elif kind is int:
            if not _INT[0] <= value <= _INT[1]:
                raise _Unsure  # SQLite reads it as a REAL
            add((rid, path, value))
        elif kind is bool:
            add((rid, path, _TRUTH[value]))
        elif kind is dict:
            _flatten(rid, path, _paths(path), value, add)
        elif value is not None and kind is not list and kind is not tuple:
            raise _Unsure  # a subclass or a type the encoder writes in a way of its own


def _text(value: Any) -> str:
    # json_tree gives a string's decoded text; it differs from Python's for a NUL, and the
    # escapes of non-ASCII text (surrogate pairs) are SQLite's to read
    if type(value) is not str or not value.isascii() or "\x00" in value:
        raise _Unsure
    return value


def merge_sql(target: str) -> str:
    """The statement copying into ``target``'s copy by value the leaves of the rows past its
    mark (:data:`BY_VALUE_DONE`, the one parameter), in the copy's order: the writer then
    moves the mark to the side table's own (:data:`DONE`)."""
    leaves, by_value = LEAVES[target][0], BY_VALUE[target]
    return (
        f"INSERT OR IGNORE INTO {by_value} (key, value, rid) SELECT key, value, rid "
        f"FROM {leaves} WHERE rid > ? ORDER BY key, value, rid"
    )


def drop_old_leaves(target: str) -> list[str]:
    """The statements dropping ``target``'s first side table and its triggers."""
    old = OLD_LEAVES[list(LEAVES).index(target)]
    return [
        *(f"DROP TRIGGER IF EXISTS {old}_{kind}" for kind in ("insert", "update", "delete")),
        f"DROP TABLE IF EXISTS {old}",
        # an insert trigger of this table: a catch-up gives new rows their leaves now
        f"DROP TRIGGER IF EXISTS {LEAVES[target][0]}_insert",
    ]


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
        f"EXISTS (SELECT 1 FROM {columns['leaves']} l "
        f"WHERE l.rid = {columns['rowid']} AND l.key = ? AND {test})"
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
            return f"instr(l.value, ?) > 0 AND {_STRING.format('l.value')}"
        params.extend(where.values)
        return f"l.value IN ({', '.join('?' * len(where.values))})"
    assert field.document is not None
    params.append(f"{field.document}." + ".".join(field.path))
    if where.kind == "bool":
        truths = {1 if v else 0 for v in where.values}
        if where.op == "!=":
            truths = {0, 1} - truths
        blobs = ", ".join(f"x'0{t}'" for t in sorted(truths))
        return f"l.value IN ({blobs or 'NULL'})"
    kind = _NUMBER if where.kind == "number" else _STRING
    return f"{_compare('l.value', where, params)} AND {kind.format('l.value')}"


def seek_sql(where: Filter, columns: Columns) -> tuple[str, list[Any]] | None:
    """``SELECT rid FROM leaves l WHERE l.key = ? AND ...``: the rowids a comparison on a
    key or a tag holds for, read from one index range; None for any other filter."""
    if not isinstance(where, Compare) or where.field.attribute is not None:
        return None
    if where.field.tags and where.op == "!=":
        return None
    params: list[Any] = []
    test = _leaf_test(where, params)
    return f"SELECT l.rid FROM {by_value(columns)} l WHERE l.key = ? AND {test}", params


def by_value(columns: Columns) -> str:
    """The copy by value of the side table ``columns`` names (ranges of a key's values)."""
    return f"{columns['leaves']}_by_value"


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
    # the key's number or string (NULL: missing, a boolean): one seek on (rid, key)
    found = (
        f"(SELECT o.value FROM {columns['leaves']} o "
        f"WHERE o.rid = {columns['rowid']} AND o.key = ? AND o.value < x'')"
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


def number_range(value: str) -> str:
    """The SQL test that the leaf value ``value`` is a number (a range of the index)."""
    return _NUMBER.format(value)


def string_range(value: str) -> str:
    """The SQL test that the leaf value ``value`` is a string (a range of the index)."""
    return _STRING.format(value)
