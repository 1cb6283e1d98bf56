"""The filter language of ``lineage find``, ``Api.runs(filter=...)`` and GraphQL ``filter``.

A filter is comparisons joined by ``and``, ``or``, ``not`` and parentheses::

    config.lr < 1e-4 and summary.accuracy >= 0.9 and tag = round3
    metadata.epochs = 3 or not (state in (failed, crashed))
    created > 2026-11-01 and name contains resnet

Fields of a run: ``config.KEY``, ``summary.KEY`` (nested keys as ``a.b.c``), ``tag``,
``job_type``, ``state``, ``user``, ``name``, ``ref`` (its id), ``project``, ``host``,
``created`` (= ``started``), ``finished``. Fields of a version: ``metadata.KEY``, ``tag``,
``name``, ``ref`` (``project/name:vN``), ``project``, ``type``, ``state``, ``version`` (its
index), ``size``, ``files``, ``digest``, ``description``, ``created`` (when it was made: an
OpenLineage version's event time, else when it was stored), ``stored`` (when lineage stored
it).

Operators: ``= != < <= > >=``, ``contains`` (a substring of a string), ``in (a, b, ...)``.
Values: numbers (``3``, ``-0.5``, ``1e-4``), ``true``/``false``, strings (``'quoted'``,
``"quoted"`` or a bare word such as ``round3``), and for the time fields an ISO date or time
(``2026-11-01``, ``2026-11-01T08:00``, UTC unless it says otherwise) or seconds since the epoch.

A comparison holds only when the record has the field with a value of the literal's kind:
``config.lr < 1e-4`` is false for a run without ``lr``, or whose ``lr`` is a string, a list or
NaN (``!=`` too: ``config.opt != adam`` needs an ``opt`` string); ``not`` negates what is left.
``tag = x`` holds when ``x`` is one of the record's tags, ``tag != x`` when it is none of them.
Strings compare by code point (keep to the Basic Multilingual Plane: Neo4j compares UTF-16
units). Booleans take ``=`` and ``!=`` only.

:func:`parse` turns text into a :data:`Filter` (refusing bad text with the column and what was
expected: ``filter: at 14: expected a value after '<'``); the stores compile it
(:mod:`lineage.storage.sqlfilter`, :mod:`lineage.storage.neo4j.filter`); :func:`matches` is the
same filter evaluated in Python, the meaning the stores must give it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from lineage.errors import InvalidInput
from lineage.records import RunRecord, VersionRecord

__all__ = [
    "And",
    "Compare",
    "Field",
    "Filter",
    "FilterError",
    "Not",
    "Or",
    "Order",
    "Target",
    "conjuncts",
    "field_value",
    "literal",
    "matches",
    "order_key",
    "parse",
    "parse_order",
]

Target = Literal["runs", "versions"]
Kind = Literal["number", "string", "bool", "time"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "contains", "in"]

# JSON documents a field may reach into, and plain attributes: field name -> (record
# attribute, kind). "time" attributes are seconds since the epoch.
JSON_FIELDS: dict[Target, tuple[str, ...]] = {
    "runs": ("config", "summary"),
    "versions": ("metadata",),
}
ATTRIBUTES: dict[Target, dict[str, tuple[str, Kind]]] = {
    "runs": {
        "job_type": ("job_type", "string"),
        "state": ("state", "string"),
        "user": ("user", "string"),
        "name": ("name", "string"),
        "ref": ("id", "string"),
        "project": ("project", "string"),
        "host": ("host", "string"),
        "created": ("started_at", "time"),
        "started": ("started_at", "time"),
        "finished": ("finished_at", "time"),
    },
    "versions": {
        "name": ("name", "string"),
        "ref": ("id", "string"),
        "project": ("project", "string"),
        "type": ("type", "string"),
        "state": ("state", "string"),
        "version": ("index", "number"),
        "size": ("size", "number"),
        "files": ("file_count", "number"),
        "digest": ("digest", "string"),
        "description": ("description", "string"),
        # when it was made (an OpenLineage version's event time), as every surface shows
        # "created"; "stored" is when lineage stored it (the same for a version the SDK logged)
        "created": ("made_at", "time"),
        "stored": ("created_at", "time"),
    },
}
# record attributes that may be None (every other one always has a value)
NULLABLE = frozenset({"job_type", "user", "host", "finished_at", "description"})
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ORDERING = ("<", "<=", ">", ">=")


class FilterError(InvalidInput):
    """A filter (or an order) that does not parse: ``position`` is its 1-based column."""

    def __init__(self, message: str, *, position: int, text: str) -> None:
        super().__init__(
            f"filter: at {position}: {message}", argument="filter", position=position, text=text
        )
        self.position = position
        self.text = text


@dataclass(frozen=True, kw_only=True)
class Field:
    """What a comparison reads: ``document`` (config, summary, metadata) and a key ``path``
    into it, or an attribute of the record (``attribute``, of ``kind``), or its tags."""

    name: str  # as written: "config.lr", "tag", "created"
    document: str | None = None
    path: tuple[str, ...] = ()
    attribute: str | None = None
    kind: Kind | None = None  # an attribute's; None for a document's key and for tags

    @property
    def tags(self) -> bool:
        return self.document is None and self.attribute is None


@dataclass(frozen=True, kw_only=True)
class Compare:
    field: Field
    op: Op
    values: tuple[Any, ...]  # one, or several for ``in``
    kind: Kind  # the literal's kind


@dataclass(frozen=True, kw_only=True)
class And:
    parts: tuple[Filter, ...]


@dataclass(frozen=True, kw_only=True)
class Or:
    parts: tuple[Filter, ...]


@dataclass(frozen=True, kw_only=True)
class Not:
    part: Filter


Filter = Compare | And | Or | Not


@dataclass(frozen=True, kw_only=True)
class Order:
    """Order by ``field`` (ascending, or descending), then by id. Values are ranked numbers
    (and times), then strings, then the rest (missing, booleans, lists, NaN) last, in both
    directions: descending is numbers high to low, then strings Z to A, then the rest (by
    descending id). So the first page of either direction is the top of a value index."""

    field: Field
    descending: bool = False


# tokens ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op><=|>=|!=|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[^\s()=<>!,'"]+)
    | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_KEYWORDS = frozenset({"and", "or", "not", "in", "contains"})


@dataclass(frozen=True)
class _Token:
    kind: str  # string, op, punct, word, end
    text: str
    position: int  # 1-based column


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.lastgroup is None:  # only blanks left
            break
        kind = match.lastgroup
        start = match.start(kind) + 1
        if kind == "bad":
            char = match.group(kind)
            what = "unterminated string" if char in "'\"" else f"unexpected {char!r}"
            raise FilterError(what, position=start, text=text)
        if kind == "string" and not _closed(match.group(kind)):
            raise FilterError("unterminated string", position=start, text=text)
        found.append(_Token(kind, match.group(kind), start))
        at = match.end()
    if at < len(text) and text[at:].strip() and text[at] in "'\"":
        raise FilterError("unterminated string", position=at + 1, text=text)
    found.append(_Token("end", "", len(text) + 1))
    return found


def _closed(literal: str) -> bool:
    return len(literal) >= 2 and literal[-1] == literal[0]


# parsing -----------------------------------------------------------------------------------


def parse(text: str, target: Target) -> Filter:
    """The filter ``text`` says, for ``target`` records; FilterError naming the column and
    what was expected when it says nothing sound."""
    if not isinstance(text, str) or not text.strip():
        raise FilterError("expected a comparison (the filter is empty)", position=1, text=str(text))
    if len(text) > 4000:
        raise FilterError("too long (at most 4000 characters)", position=4001, text=text[:4000])
    parser = _Parser(text, target)
    found = parser.expression(0)
    token = parser.peek()
    if token.kind != "end":
        parser.fail(f"expected 'and', 'or' or the end, not {_shown(token)}", token)
    return found


def parse_order(text: str, target: Target) -> Order:
    """``created``, ``-summary.accuracy`` (descending), ``config.lr desc``."""
    words = text.split()
    descending = False
    if len(words) == 2 and words[1].lower() in ("asc", "desc"):
        descending = words[1].lower() == "desc"
        words = words[:1]
    if len(words) != 1:
        raise FilterError(
            "expected a field, optionally '-' before it or 'desc' after it", position=1, text=text
        )
    name = words[0]
    offset = text.index(name) + 1
    if name.startswith("-"):
        descending, name, offset = True, name[1:], offset + 1
    field = _field(name, target, offset, text)
    if field.tags:
        raise FilterError("cannot order by tags", position=offset, text=text)
    return Order(field=field, descending=descending)


def _field(name: str, target: Target, position: int, text: str) -> Field:
    head, _, rest = name.partition(".")
    if head in JSON_FIELDS[target]:
        path = tuple(rest.split(".")) if rest else ()
        if not path or not all(_KEY.fullmatch(part) for part in path):
            raise FilterError(
                f"expected a key after '{head}.' (letters, digits, '_', '-'; nested as a.b)",
                position=position,
                text=text,
            )
        return Field(name=name, document=head, path=path)
    if name == "tag" or name == "tags":
        return Field(name="tag")
    if name in ATTRIBUTES[target]:
        attribute, kind = ATTRIBUTES[target][name]
        return Field(name=name, attribute=attribute, kind=kind)
    known = [f"{d}.KEY" for d in JSON_FIELDS[target]] + ["tag", *ATTRIBUTES[target]]
    raise FilterError(
        f"unknown field {name!r} for {target} (expected one of {', '.join(known)})",
        position=position,
        text=text,
    )


def _shown(token: _Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, text: str, target: Target) -> None:
        self.text = text
        self.target = target
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, message: str, token: _Token) -> FilterError:
        raise FilterError(message, position=token.position, text=self.text)

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "word" and token.text.lower() == word:
            self.at += 1
            return True
        return False

    def expression(self, depth: int) -> Filter:
        if depth > 50:
            self.fail("nested too deeply (at most 50 levels)", self.peek())
        parts = [self.conjunction(depth)]
        while self.keyword("or"):
            parts.append(self.conjunction(depth))
        return parts[0] if len(parts) == 1 else Or(parts=tuple(parts))

    def conjunction(self, depth: int) -> Filter:
        parts = [self.unary(depth)]
        while self.keyword("and"):
            parts.append(self.unary(depth))
        return parts[0] if len(parts) == 1 else And(parts=tuple(parts))

    def unary(self, depth: int) -> Filter:
        if self.keyword("not"):
            return Not(part=self.unary(depth + 1))
        token = self.peek()
        if token.kind == "punct" and token.text == "(":
            self.take()
            inner = self.expression(depth + 1)
            close = self.take()
            if close.kind != "punct" or close.text != ")":
                self.fail(f"expected ')' to close the '(' at {token.position}", close)
            return inner
        return self.comparison()

    def comparison(self) -> Compare:
        token = self.take()
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            self.fail(f"expected a field, not {_shown(token)}", token)
        field = _field(token.text, self.target, token.position, self.text)
        op_token = self.take()
        op: str
        if op_token.kind == "op":
            op = "=" if op_token.text == "==" else op_token.text
        elif op_token.kind == "word" and op_token.text.lower() in ("in", "contains"):
            op = op_token.text.lower()
        else:
            self.fail(
                f"expected an operator (= != < <= > >= contains in) after {token.text!r}, "
                f"not {_shown(op_token)}",
                op_token,
            )
        if op == "in":
            opening = self.take()
            if opening.kind != "punct" or opening.text != "(":
                self.fail("expected '(' after 'in'", opening)
            values = [self.value(field, "in")]
            while True:
                sep = self.take()
                if sep.kind == "punct" and sep.text == ")":
                    break
                if sep.kind != "punct" or sep.text != ",":
                    self.fail("expected ',' or ')' in the list after 'in'", sep)
                values.append(self.value(field, "in"))
            kinds = {kind for kind, _ in values}
            if len(kinds) > 1:
                self.fail("the values after 'in' must be of one kind", opening)
            return Compare(
                field=field, op="in", values=tuple(v for _, v in values), kind=values[0][0]
            )
        kind, value = self.value(field, op)
        if field.tags and op not in ("=", "!=", "contains"):
            self.fail(f"'tag' takes = != contains in, not {op!r}", op_token)
        if kind == "bool" and op not in ("=", "!="):
            self.fail(f"true and false take = and !=, not {op!r}", op_token)
        if op == "contains" and kind != "string":
            self.fail("expected a string after 'contains'", op_token)
        return Compare(field=field, op=op, values=(value,), kind=kind)  # type: ignore[arg-type]

    def value(self, field: Field, op: str) -> tuple[Kind, Any]:
        token = self.take()
        if token.kind not in ("word", "string") or (
            token.kind == "word" and token.text.lower() in _KEYWORDS
        ):
            self.fail(f"expected a value after {op!r}, not {_shown(token)}", token)
        if field.kind == "time":
            if token.kind == "word" and _NUMBER.fullmatch(token.text):
                return "time", float(token.text)
            return "time", self.moment(token)
        if token.kind == "string":
            body = token.text[1:-1]
            return "string", re.sub(r"\\(.)", r"\1", body)
        word = token.text
        if _NUMBER.fullmatch(word):
            number = float(word)
            if not math.isfinite(number):
                self.fail(f"the number {word} is out of range", token)
            if re.fullmatch(r"[+-]?\d+", word) and abs(int(word)) < 2**63:
                return "number", int(word)
            return "number", number
        if word.lower() in ("true", "false"):
            return "bool", word.lower() == "true"
        return "string", word

    def moment(self, token: _Token) -> float:
        text = token.text[1:-1] if token.kind == "string" else token.text
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"expected a date or time (2026-11-01, 2026-11-01T08:00), not {token.text!r}",
                token,
            )
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()


def literal(value: str) -> str:
    """A string as a filter literal: ``literal("it's")`` is ``'it\\'s'``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# the meaning, in Python --------------------------------------------------------------------


Record = RunRecord | VersionRecord


def field_value(field: Field, record: Record) -> Any:
    """What ``field`` reads of ``record`` (None when absent); a tag field reads the tuple
    of tags."""
    if field.tags:
        return tuple(getattr(record, "tags", ()))
    if field.attribute is not None:
        return getattr(record, field.attribute, None)
    document: Any = getattr(record, field.document or "", None)
    for key in field.path:
        if not isinstance(document, Mapping) or key not in document:
            return None
        document = document[key]
    return document


def _kind(value: Any) -> Kind | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return None if isinstance(value, float) and math.isnan(value) else "number"
    if isinstance(value, str):
        return "string"
    return None


def matches(where: Filter | None, record: Record) -> bool:
    """Whether ``record`` passes ``where`` (None passes everything)."""
    if where is None:
        return True
    if isinstance(where, And):
        return all(matches(part, record) for part in where.parts)
    if isinstance(where, Or):
        return any(matches(part, record) for part in where.parts)
    if isinstance(where, Not):
        return not matches(where.part, record)
    value = field_value(where.field, record)
    if where.field.tags:
        tags = value
        if where.op == "=":
            return where.values[0] in tags
        if where.op == "!=":
            return where.values[0] not in tags
        if where.op == "in":
            return any(v in tags for v in where.values)
        return any(where.values[0] in tag for tag in tags)  # contains
    kind = "number" if where.field.kind == "time" else _kind(value)
    wanted = "number" if where.kind == "time" else where.kind
    if value is None or kind != wanted:
        return False
    if where.op == "in":
        return value in where.values
    operand = where.values[0]
    if where.op == "=":
        return bool(value == operand)
    if where.op == "!=":
        return bool(value != operand)
    if where.op == "contains":
        return operand in value
    if where.op == "<":
        return bool(value < operand)
    if where.op == "<=":
        return bool(value <= operand)
    if where.op == ">":
        return bool(value > operand)
    return bool(value >= operand)


def conjuncts(where: Filter) -> list[Filter]:
    """The parts of a filter that must all hold (its top-level ``and``s, flattened)."""
    if isinstance(where, And):
        return [q for part in where.parts for q in conjuncts(part)]
    return [where]


def order_key(order: Order, record: Record) -> tuple[int, Any]:
    """The rank and value a record sorts by under ``order`` (ties then go by id): sorted
    on ``(rank, value, id)``, reversed when descending. The rank is 0 for numbers (and
    times), 1 for strings, 2 for the rest; descending, it is ``2 - rank``, so that the rest
    comes last either way."""
    rank, value = _ranked(order, record)
    return (2 - rank if order.descending else rank), value


def _ranked(order: Order, record: Record) -> tuple[int, Any]:
    value = field_value(order.field, record)
    if order.field.kind == "time" and value is not None:
        return 0, float(value)
    kind = _kind(value)
    if kind == "number":
        return 0, value
    if kind == "string":
        return 1, value
    return 2, 0
