"""Graph payloads in bulk: a selection of plain fields completed straight from the records.

The nodes and edges of a ``lineage`` or ``derivationTree`` answer are records of
:mod:`lineage.records`, each wrapped in a strawberry object whose plain fields read it.
:class:`~lineage.server.graphql.execution.LeanExecutor` completes those with two calls a
field (the resolver, then the completion of its value): most of the time of a 100-node
answer. Here an object type declares, for its plain fields, a *column*: a Python
expression over the record that gives the field's completed value. A selection of columns
compiles to one expression, and a list of nodes to one list comprehension of dict displays
over the traversal's records: no wrapper object a node, no call a field::

    [{"id": ... n.id ..., "kind": NODE_KINDS[n.kind],
      "artifactVersion": None if (v := n.version) is None else {"ref": ... v.ref ...}}
     for n in answer.graph.nodes]

A column is exact or it raises. Its expression gives what the resolver and graphql-core's
completion of its value give (the same string, enum name, ISO time, list or dict), or raises
wherever they could differ: a value of another type than the record's field declares, a
null where the schema says non-null, an unknown enum value. The executor then completes the
selection field by field, as without columns, and graphql-core words the errors. Each
column also names the field type it completes (``"String!"``); a column whose field has
another type in the schema is not used. ``tests/graphql/test_bulk.py`` holds every column
to its resolver.

Templates name the object's *parts* with ``$``: ``$record`` (``Run``, ``ArtifactVersion``),
``$node`` and ``$answer`` (``LineageNode``), ``$edge``, ``$answer`` (``LineageGraph``);
``$tmp`` is a name of the expression's own.
"""

from __future__ import annotations

import enum
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull, GraphQLObjectType

__all__ = [
    "SHAPES",
    "Column",
    "Leaf",
    "Many",
    "One",
    "Program",
    "Shape",
    "Step",
    "boolean",
    "column",
    "enumeration",
    "ident",
    "integer",
    "json",
    "long",
    "maybe_ident",
    "maybe_text",
    "maybe_time",
    "shape",
    "shape_of",
    "text",
    "texts",
    "time",
]

DEFINITION = "strawberry-definition"  # strawberry's back reference on graphql-core's types


@dataclass(frozen=True, kw_only=True)
class Leaf:
    """A scalar or enum field, or a list of them: ``expr`` gives its completed value."""

    graphql: str  # the field's type as the schema prints it: "String!", "[String!]!"
    expr: str
    env: Mapping[str, Any] = field(default_factory=dict)  # names ``expr`` uses
    enum: type[enum.Enum] | None = None  # ``expr`` looks its value up in ``$enum``


@dataclass(frozen=True, kw_only=True)
class One:
    """An object field, nullable: ``value`` is the object's part ``part`` (None: the field
    is null)."""

    type: type
    value: str
    part: str


@dataclass(frozen=True, kw_only=True)
class Many:
    """A list of objects, neither the list nor an object null (``[T!]!``): ``items``
    iterates their part ``part``; ``others``, their other parts, are the same for every
    item."""

    type: type
    items: str
    part: str
    others: Mapping[str, str] = field(default_factory=dict)


Column = Leaf | One | Many


@dataclass(frozen=True, kw_only=True)
class Shape:
    """How a strawberry type's fields read its parts: ``parts`` maps each part to the
    attribute of the object holding it, ``columns`` a GraphQL field name to its column."""

    parts: Mapping[str, str]
    columns: Mapping[str, Column]


SHAPES: dict[type, Shape] = {}


def shape(cls: type, parts: Mapping[str, str], **columns: Column) -> None:
    """Declare the columns of strawberry type ``cls``, by GraphQL field name."""
    SHAPES[cls] = Shape(parts=dict(parts), columns=columns)


# columns -------------------------------------------------------------------------------------


class _Slow(Exception):
    """Not a value a column completes: the executor completes it field by field."""


def _slow() -> Any:
    raise _Slow


def _int(value: Any) -> int:
    if type(value) is int and -(1 << 31) <= value < 1 << 31:
        return value
    raise _Slow


def _bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _Slow


_HELPERS: dict[str, Any] = {
    "_str": str,
    "_slow": _slow,
    "_int": _int,
    "_bool": _bool,
    "_long": int,  # the Long scalar's serializer
    "_fromtimestamp": datetime.fromtimestamp,
    "_UTC": UTC,
}

# A DateTime's ISO text from a POSIX timestamp: what ``fromtimestamp(t, UTC).isoformat()``
# gives. Before 3.12, ``utcfromtimestamp`` makes the same fields (the same rounding, the same
# gmtime) without the time zone, and a UTC time's ISO text is the naive one's with "+00:00"
# after it: half the time of the aware datetime's (~1 us a value, ~0.1 ms a 100-node tree).
# From 3.12 it is deprecated (a warning, an error in the tests): the aware way there.
if sys.version_info < (3, 12):
    _HELPERS["_utcfromtimestamp"] = datetime.utcfromtimestamp
    _ISO = "(_utcfromtimestamp({}).isoformat() + '+00:00')"
else:  # pragma: no cover -- the interpreter of the tests and the benches is 3.11
    _ISO = "_fromtimestamp({}, _UTC).isoformat()"


def text(expr: str, graphql: str = "String!") -> Leaf:
    """A string, never null."""
    return Leaf(graphql=graphql, expr=f"($tmp if type($tmp := {expr}) is _str else _slow())")


def ident(expr: str) -> Leaf:
    """An ID (a string), never null."""
    return text(expr, "ID!")


def maybe_text(expr: str, graphql: str = "String") -> Leaf:
    """A string or null."""
    return Leaf(
        graphql=graphql,
        expr=f"(None if ($tmp := {expr}) is None else $tmp if type($tmp) is _str else _slow())",
    )


def maybe_ident(expr: str) -> Leaf:
    """An ID or null."""
    return maybe_text(expr, "ID")


def texts(expr: str) -> Leaf:
    """A list of strings (a tuple of the record), neither the list nor an item null."""
    # most are empty (aliases, tags): no comprehension (a call of its own before 3.12) then
    each = "[$tmp if type($tmp) is _str else _slow() for $tmp in $tmp]"
    return Leaf(graphql="[String!]!", expr=f"([] if ($tmp := {expr}) == () else {each})")


def integer(expr: str) -> Leaf:
    """A GraphQL Int (32 bits), never null."""
    return Leaf(graphql="Int!", expr=f"_int({expr})")


def long(expr: str) -> Leaf:
    """A Long (an integer of up to 64 bits), never null."""
    return Leaf(graphql="Long!", expr=f"_long({expr})")


def boolean(expr: str) -> Leaf:
    """A Boolean, never null."""
    return Leaf(graphql="Boolean!", expr=f"_bool({expr})")


def json(expr: str) -> Leaf:
    """A JSON object: a copy of the record's mapping (what ``JSON(dict(...))`` answers)."""
    return Leaf(graphql="JSON!", expr=f"dict({expr})")


def time(expr: str) -> Leaf:
    """A DateTime from a POSIX timestamp, never null (ISO 8601 in UTC)."""
    return Leaf(graphql="DateTime!", expr=_ISO.format(expr))


def maybe_time(expr: str) -> Leaf:
    """A DateTime from a POSIX timestamp, or null."""
    return Leaf(
        graphql="DateTime",
        expr=f"(None if ($tmp := {expr}) is None else {_ISO.format('$tmp')})",
    )


def enumeration(cls: type[enum.Enum], expr: str) -> Leaf:
    """``cls(value)`` of a strawberry enum, never null: the GraphQL name of its member."""
    return Leaf(graphql=f"{cls.__name__}!", expr=f"$enum[{expr}]", enum=cls)


def column(expr: str, graphql: str, **env: Any) -> Leaf:
    """Any other leaf: ``expr`` (using the names of ``env``) gives the completed value, or
    raises."""
    return Leaf(graphql=graphql, expr=expr, env=env)


# compiling -----------------------------------------------------------------------------------


class Step(Protocol):
    """What :func:`Program.value` reads of one step of an executor's plan."""

    name: str  # the response key (an alias, or the field's name)
    field_name: str  # the GraphQL field's name
    getter: Any  # None: not a plain field
    type: GraphQLObjectType | None  # an object field's type
    plan: list[Any]  # an object field's selection, as steps
    nonnull: bool
    item_type: Any  # of a list of objects: the items' type


def shape_of(type_: GraphQLObjectType) -> Shape | None:
    """The shape declared for a graphql-core object type of strawberry's, if any."""
    definition = type_.extensions.get(DEFINITION)
    origin = getattr(definition, "origin", None)
    return None if origin is None else SHAPES.get(origin)


class Program:
    """The source of one function being generated, and the names it uses."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = dict(_HELPERS)
        self._count = 0

    def fresh(self, prefix: str = "_v") -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def parts(self, shape: Shape, source: str) -> tuple[list[str], dict[str, str]]:
        """Statements binding the parts of an object (the Python name ``source``) to names
        of their own, and those names."""
        names = {part: self.fresh("_p") for part in shape.parts}
        lines = [f"{names[part]} = {source}.{attr}" for part, attr in shape.parts.items()]
        return lines, names

    def display(
        self, type_: GraphQLObjectType, plan: list[Any], parts: Mapping[str, str]
    ) -> str | None:
        """A dict display completing ``plan`` on an object of ``type_`` whose parts are the
        Python names ``parts``; None when a step has no column."""
        entries = []
        for step in plan:
            value = self.value(type_, step, parts)
            if value is None or not step.name.isidentifier():
                return None
            entries.append(f"{step.name!r}: {value}")
        return "{" + ", ".join(entries) + "}"

    def value(self, type_: GraphQLObjectType, step: Step, parts: Mapping[str, str]) -> str | None:
        """An expression completing one step of an object of ``type_``, or None."""
        if step.getter is None:
            return None  # not a plain field (or one with arguments, directives...)
        if step.field_name == "__typename":
            return repr(type_.name)
        shape = shape_of(type_)
        found = None if shape is None else shape.columns.get(step.field_name)
        field_ = type_.fields.get(step.field_name)
        if found is None or field_ is None:
            return None
        if isinstance(found, Leaf):
            return self._leaf(found, field_.type, parts)
        inner = field_.type.of_type if isinstance(field_.type, GraphQLNonNull) else field_.type
        many = isinstance(inner, GraphQLList)
        if many != isinstance(found, Many) or step.type is None:
            return None
        if many != step.nonnull or (many and not isinstance(step.item_type, GraphQLNonNull)):
            return None  # columns of objects: ``T`` (nullable) and ``[T!]!`` only
        if shape_of(step.type) is not SHAPES.get(found.type):
            return None
        item = self.fresh()
        child = {**{k: self._fill(v, parts) for k, v in getattr(found, "others", {}).items()}}
        child[found.part] = item
        body = self.display(step.type, step.plan, child)
        if body is None:
            return None
        if isinstance(found, One):
            return f"(None if ({item} := {self._fill(found.value, parts)}) is None else {body})"
        return f"[{body} for {item} in {self._fill(found.items, parts)}]"

    def _leaf(self, leaf: Leaf, type_: Any, parts: Mapping[str, str]) -> str | None:
        if str(type_) != leaf.graphql:
            return None
        names = dict(parts, tmp=self.fresh())
        for name, value in leaf.env.items():
            known = self.scope.setdefault(name, value)
            if known is not value:
                return None
        if leaf.enum is not None:
            inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
            if not isinstance(inner, GraphQLEnumType):
                return None
            names["enum"] = self.fresh("_e")
            self.scope[names["enum"]] = _names(inner, leaf.enum)
        return string.Template(leaf.expr).substitute(names)

    def _fill(self, template: str, parts: Mapping[str, str]) -> str:
        return string.Template(template).substitute(parts, tmp=self.fresh())


def _names(type_: GraphQLEnumType, cls: type[enum.Enum]) -> dict[Any, str]:
    """Each value of ``cls``'s members -> the GraphQL name graphql-core completes it to."""
    names: dict[Any, str] = {}
    for member in cls:
        try:
            names[member.value] = type_.coerce_output_value(member)
        except Exception:  # noqa: BLE001 -- a member without a name: never looked up
            continue
    return names
