"""Lean execution: plain fields resolved without strawberry's per-field machinery.

graphql-core resolves every field through strawberry's wrapper (an ``Info``, the argument
parser, the chain of field extensions, a ``GraphQLResolveInfo``): about 7 µs a field, so a
depth-20 ``lineage`` answer of ~800 fields spent most of its time there. Most fields of the
answer types are plain: a synchronous method of the object taking nothing but ``self``
(``LineageNode.id``, ``Run.config``), or an attribute. :class:`LeanExecutor` calls those
directly and completes their values by graphql-core's rules (non-null checks, list items,
scalar and enum output coercion, sub-selections), with a plan made once per selection set
and request.

Plans are shared between requests of the same query text (the parser cache gives them the
same document): a plan depends only on the document and the schema, unless a ``@skip`` or
``@include`` of the operation reads a variable, and then it is made per request. A
selection whose fields are all plain is completed by a function compiled once from its
plan; where the type declares columns (:mod:`lineage.server.graphql.bulk`: the nodes and
edges of a graph, runs, versions), that function reads the records directly, a whole list
of nodes in one comprehension. ``__typename`` of an object type is a plain field too.

Everything else goes through graphql-core untouched: async resolvers, resolvers with
arguments or ``info``, abstract and ``is_type_of`` types, ``@defer`` and ``@stream``, field
extensions and resolve middleware. So does any plain field whose quick
completion meets something unusual (an exception, null where the schema says non-null, a
value its scalar refuses): graphql-core resolves it again and reports it as it always does.
The answer, its errors and the schema are the same either way.
"""

from __future__ import annotations

import asyncio
import operator
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.fields.resolver import SELF_PARAMSPEC

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
    VariableNode,
)
from lineage.server.graphql import bulk

__all__ = ["LeanExecutor"]

DEFINITION = "strawberry-definition"  # strawberry's back reference on a GraphQLField

Getter = Callable[[Any], Any]
Leaf = Callable[[Any], Any]  # value -> output value


class _Slow(Exception):
    """This value needs graphql-core's own completion (which reports what is wrong)."""


class _Step:
    """One field of a selection set, and how to execute it without graphql-core."""

    __slots__ = (
        "bulk",
        "compiled",
        "details",
        "field_name",
        "getter",
        "item_type",
        "leaf",
        "many",
        "name",
        "nonnull",
        "parent",
        "plan",
        "return_type",
        "type",
    )

    def __init__(
        self,
        parent: GraphQLObjectType,
        name: str,
        details: Any,
        return_type: GraphQLOutputType | None,
    ) -> None:
        self.parent = parent  # the type whose selection this field is in
        self.name = name
        self.field_name: str = details[0].node.name.value
        self.details = details  # graphql-core's FieldDetailsList
        self.return_type = return_type
        self.getter: Getter | None = None  # None: graphql-core executes the field
        self.leaf: Leaf | None = None  # a scalar, an enum or a list of them
        # an object (or with ``many``, a list of objects) of ``type``, selected by ``plan``
        self.type: GraphQLObjectType | None = None
        self.plan: list[_Step] = []
        self.many = False
        self.nonnull = False  # the field's type is non-null
        self.item_type: Any = None  # with ``many``: the items' type (maybe non-null)
        # an object field's value as one expression over the parent's parts (bulk.py), once
        # ``compiled``; None when a field under it has no column
        self.bulk: Callable[[Any], Any] | None = None
        self.compiled = False


# id(field) -> (field, getter or None); the field is kept so that its id stays its own
_getters: dict[int, tuple[GraphQLField, Getter | None]] = {}


def _getter(field: GraphQLField) -> Getter | None:
    """How to resolve ``field`` without strawberry's wrapper, or None when it needs it."""
    known = _getters.get(id(field))
    if known is not None and known[0] is field:
        return known[1]
    getter: Getter | None = None
    definition = field.extensions.get(DEFINITION)
    if definition is not None and not definition.extensions and not field.args:
        resolver = definition.base_resolver
        if resolver is None:
            if definition.default_resolver is getattr:
                getter = operator.attrgetter(definition.python_name)
        elif (
            not resolver.is_async
            and not resolver.arguments
            and len(resolver.signature.parameters) == 1
            and resolver.reserved_parameters.get(SELF_PARAMSPEC) is not None
        ):
            getter = resolver.wrapped_func
    _getters[id(field)] = (field, getter)
    return getter


def _plain(details: Any) -> bool:
    """Whether a field node asks for nothing but its value (@skip and @include are already
    applied when graphql-core collects the fields; @stream and @defer are not)."""
    node = details.node
    return (
        details.defer_usage is None
        and not node.arguments
        and all(d.name.value in ("skip", "include") for d in node.directives or ())
    )


# graphql-core's built-in scalars answer these values as they are (Int: 32 bits)
_AS_IS = {id(GraphQLString): str, id(GraphQLID): str, id(GraphQLBoolean): bool}
_INT = 1 << 31


def _scalar(type_: GraphQLLeafType, nonnull: bool) -> Leaf:
    coerce = type_.coerce_output_value
    names: dict[Any, str] = {}
    wrapped = None
    if isinstance(type_, GraphQLEnumType):
        # strawberry's enums: the resolver returns a member, the answer is its GraphQL name
        wrapped = getattr(type_, "wrapped_cls", None)
        for name, value in type_.values.items():
            names.setdefault(value.value, name)

    def leaf(value: Any) -> Any:
        if value is None:
            if nonnull:
                raise _Slow
            return None
        if wrapped is not None and type(value) is wrapped:
            name = names.get(value.value)
            if name is not None:
                return name
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _Slow
        return coerced

    as_is = _AS_IS.get(id(type_))
    if type_ is GraphQLInt:

        def integer(value: Any) -> Any:
            if type(value) is int and -_INT <= value < _INT:
                return value
            return leaf(value)

        return integer
    if as_is is not None:

        def plain(value: Any) -> Any:
            if type(value) is as_is:
                return value
            return leaf(value)

        return plain
    return leaf


def _leaf(type_: GraphQLOutputType) -> Leaf | None:
    """How to complete a scalar, an enum or a list of them, or None for other types."""
    nonnull = isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLLeafType):
        return _scalar(inner, nonnull)
    if not isinstance(inner, GraphQLList):
        return None
    item = _leaf(inner.of_type)
    if item is None:
        return None
    each = item

    def items(value: Any) -> Any:
        if value is None:
            if nonnull:
                raise _Slow
            return None
        if not isinstance(value, list | tuple):
            raise _Slow
        return [each(v) for v in value]

    return items


_TYPENAME = _scalar(GraphQLString, nonnull=True)
_typenames: dict[str, Getter] = {}


def _typename(name: str) -> Getter:
    """``__typename`` of an object type: its name (graphql-core's resolver's answer)."""
    getter = _typenames.get(name)
    if getter is None:
        getter = _typenames[name] = lambda _source: name
    return getter


# plans shared between requests: (id(type), the ids of a selection's field nodes) -> (the
# type, the field details, the plan); type and nodes are kept so that their ids stay theirs
_shared: dict[tuple[int, tuple[Any, ...]], tuple[Any, Any, list[_Step]]] = {}
MAX_SHARED = 4096  # selection sets; the lot is dropped when full (a new one fills again)
# id(operation) -> (operation, whether its plans may be shared)
_constant: dict[int, tuple[OperationDefinitionNode, bool]] = {}


def _shareable(operation: OperationDefinitionNode, fragments: dict[str, Any]) -> bool:
    """Whether no @skip or @include of ``operation`` or its fragments takes a variable (the
    fields a selection collects are then the same for every request)."""
    known = _constant.get(id(operation))
    if known is not None and known[0] is operation:
        return known[1]
    if len(_constant) >= MAX_SHARED:
        _constant.clear()
    stack: list[Any] = [operation, *fragments.values()]
    shareable = True
    while stack and shareable:
        node = stack.pop()
        for directive in getattr(node, "directives", None) or ():
            if directive.name.value in ("skip", "include") and any(
                isinstance(argument.value, VariableNode) for argument in directive.arguments
            ):
                shareable = False
        selections = getattr(node, "selection_set", None)
        if selections is not None:
            stack.extend(selections.selections)
    _constant[id(operation)] = (operation, shareable)
    return shareable


# id(plan) -> (plan, its runner or None); the plan is kept so that its id stays its own
_runners: dict[int, tuple[list[_Step], Callable[[Any], dict[str, Any]] | None]] = {}


def _runner(plan: list[_Step]) -> Callable[[Any], dict[str, Any]] | None:
    """A function that completes a whole selection of plain fields in one go (a dict
    display: no loop, no per-field bookkeeping), or None when a field of ``plan``, or of a
    selection under it, needs graphql-core. It raises on anything unusual (a resolver's
    exception, _Slow): the caller then executes the selection field by field."""
    known = _runners.get(id(plan))
    if known is not None and known[0] is plan:
        return known[1]
    run = _compile(plan)
    if len(_runners) >= MAX_SHARED:
        _runners.clear()
    _runners[id(plan)] = (plan, run)
    return run


def _compile(plan: list[_Step]) -> Callable[[Any], dict[str, Any]] | None:
    program = bulk.Program()
    scope = program.scope
    lines: list[str] = []
    parts: dict[str, str] | None = None
    entries: list[str] = []
    for i, step in enumerate(plan):
        if step.getter is None or not step.name.isidentifier():
            return None
        value = None
        shape = bulk.shape_of(step.parent)
        if shape is not None:
            # the field's column: read from the object's parts (its records), no calls
            if parts is None:
                lines, parts = program.parts(shape, "s")
            value = program.value(step.parent, step, parts)
        if value is None:
            scope[f"g{i}"] = step.getter
            if step.leaf is not None:
                scope[f"c{i}"] = step.leaf
            else:
                sub = _runner(step.plan)
                if sub is None:
                    return None
                scope[f"c{i}"] = _complete_objects(step, sub)
            value = f"c{i}(g{i}(s))"
        entries.append(f"{step.name!r}: {value}")
    return _function(program, lines, "{" + ", ".join(entries) + "}")


def _function(program: bulk.Program, lines: list[str], value: str) -> Callable[[Any], Any]:
    """``def run(s): <lines>; return <value>``, compiled in ``program``'s scope."""
    source = "def run(s):\n" + "".join(f"    {line}\n" for line in lines)
    source += f"    return {value}\n"
    exec(source, program.scope)  # names: GraphQL names (identifiers, checked) and our own
    run: Callable[[Any], Any] = program.scope["run"]
    return run


def _bulk(step: _Step) -> Callable[[Any], Any] | None:
    """An object field's value, completed from its parent's parts in one expression (the
    nodes of a graph from its records), or None when a field under it has no column."""
    if not step.compiled:
        shape = bulk.shape_of(step.parent)
        if shape is not None and step.leaf is None and step.getter is not None:
            program = bulk.Program()
            lines, parts = program.parts(shape, "s")
            value = program.value(step.parent, step, parts)
            if value is not None:
                step.bulk = _function(program, lines, value)
        step.compiled = True
    return step.bulk


def _complete_objects(step: _Step, sub: Callable[[Any], dict[str, Any]]) -> Leaf:
    """How a runner completes an object field (or a list of objects) by ``sub``."""
    nonnull = step.nonnull
    if not step.many:

        def one(value: Any) -> Any:
            if value is None:
                if nonnull:
                    raise _Slow
                return None
            return sub(value)

        return one
    items_nonnull = isinstance(step.item_type, GraphQLNonNull)

    def many(value: Any) -> Any:
        if value is None:
            if nonnull:
                raise _Slow
            return None
        if not isinstance(value, list | tuple):
            raise _Slow
        if items_nonnull:
            return [sub(each) for each in value]  # a None item fails in sub: _Slow's way
        return [None if each is None else sub(each) for each in value]

    return many


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    return gather_with_cancel(*values)


_orphans: set[asyncio.Future[Any]] = set()  # work tracked after its executor was freed


def _tracker(executor: weakref.ref[LeanExecutor]) -> Callable[[Sequence[Any]], None]:
    """graphql-core's ``track_async_work`` of ``executor``, without keeping it alive."""

    def track(values: Sequence[Any]) -> None:
        alive = executor()
        if alive is not None:
            alive.track_async_work(values)
            return
        # the operation is over: settle the work as graphql-core would, errors observed
        pending = [
            value for value in values if asyncio.isfuture(value) or asyncio.iscoroutine(value)
        ]
        if pending:
            future = asyncio.gather(*pending, return_exceptions=True)
            _orphans.add(future)
            future.add_done_callback(_orphans.discard)

    return track


class LeanExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, with plain fields resolved and completed directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core's helpers for resolvers are two bound methods of the executor, which
        # holds them: a reference cycle, so refcounting never freed a request's executor, and
        # with it the context, the loaders and every record of the answer. Each request's
        # answer then lived until a collection of the older generations, which walked them
        # all (a gen-1 pass every ~10 requests; a third of the server's CPU for a 100-node
        # tree). The same helpers, holding the executor weakly:
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=_gather, track=_tracker(weakref.ref(self))
        )
        manager = self.middleware_manager
        self._lean = manager is None or not manager.middlewares
        # id(grouped field set) -> (the set, its plan); the set is kept so its id stays its own
        self._plans: dict[int, tuple[Any, list[_Step]]] = {}
        self._shared = self._lean and _shareable(self.operation, self.fragment_definitions)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's entry for every selection set of an object."""
        if not self._lean or position_context is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        return self._execute(
            parent_type, source_value, path, self._plan(parent_type, grouped_field_set)
        )

    def _execute(
        self, parent_type: GraphQLObjectType, source: Any, path: Path | None, plan: list[_Step]
    ) -> Any:
        """What ``execute_fields`` answers, by a plan."""
        run = _runner(plan)
        if run is not None:
            try:
                return run(source)
            except Exception:  # noqa: BLE001, S110 -- field by field below, errors reported
                pass
        results: dict[str, Any] = {}
        awaitable: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for step in plan:
                name = step.name
                getter = step.getter
                result: Any = Undefined
                if getter is not None:
                    leaf = step.leaf
                    if leaf is not None:
                        try:
                            results[name] = leaf(getter(source))
                            continue
                        except Exception:  # noqa: BLE001, S110 -- graphql-core does it again
                            pass
                    else:
                        run = step.bulk if step.compiled else _bulk(step)
                        if run is not None:
                            try:
                                results[name] = run(source)
                                continue
                            except Exception:  # noqa: BLE001, S110 -- item by item below
                                pass
                        result = self._object(step, source, Path(path, name, parent_type.name))
                if result is Undefined:
                    result = self.execute_field(
                        parent_type, source, step.details, Path(path, name, parent_type.name), None
                    )
                    if result is Undefined:
                        continue
                results[name] = result
                if is_awaitable(result):
                    awaitable.append(name)
        except Exception:
            if awaitable:
                self.settle_in_background([results[name] for name in awaitable])
            raise
        if not awaitable:
            return results
        return self._gather_fields(results, awaitable)

    def _object(self, step: _Step, source: Any, path: Path) -> Any:
        """An object field's (or list of objects') completed value, or Undefined when
        graphql-core is to execute the field instead."""
        assert step.getter is not None and step.type is not None
        try:
            value = step.getter(source)
        except Exception:  # noqa: BLE001 -- graphql-core resolves it again and reports it
            return Undefined
        if value is None:
            return Undefined if step.nonnull else None
        try:
            if step.many:
                result = self._objects(step, value, path)
            else:
                result = self._execute(step.type, value, path, step.plan)
        except _Slow:
            return Undefined
        except Exception as error:  # noqa: BLE001 -- from a sub-selection: graphql-core's rule
            self.handle_field_error(error, step.return_type, step.details, path)  # type: ignore[arg-type]
            return None
        if self.is_awaitable(result):
            return self._guard(result, step.return_type, step.details, path)
        return result

    def _objects(self, step: _Step, value: Any, path: Path) -> Any:
        """A list of objects, completed; raises _Slow before executing anything when
        graphql-core is to do it."""
        item_type = step.item_type
        if not isinstance(value, list | tuple) or (
            isinstance(item_type, GraphQLNonNull) and any(v is None for v in value)
        ):
            raise _Slow
        type_, plan, details = step.type, step.plan, step.details
        assert type_ is not None
        execute, is_awaitable = self._execute, self.is_awaitable
        completed: list[Any] = []
        later: list[int] = []
        try:
            for index, each in enumerate(value):
                if each is None:
                    completed.append(None)
                    continue
                item_path = Path(path, index, None)
                try:
                    done = execute(type_, each, item_path, plan)
                except Exception as error:  # noqa: BLE001 -- graphql-core's rule
                    self.handle_field_error(error, item_type, details, item_path)
                    done = None
                else:
                    if is_awaitable(done):
                        done = self._guard(done, item_type, details, item_path)
                        later.append(index)
                completed.append(done)
        except Exception:
            if later:
                self.settle_in_background([completed[i] for i in later])
            raise
        if not later:
            return completed
        return self._gather_items(completed, later)

    async def _gather_fields(self, results: dict[str, Any], names: list[str]) -> dict[str, Any]:
        if len(names) == 1:
            results[names[0]] = await results[names[0]]
        else:
            values = await gather_with_cancel(*(results[name] for name in names))
            results.update(zip(names, values, strict=True))
        return results

    async def _guard(
        self, completed: Awaitable[Any], return_type: Any, details: Any, path: Path
    ) -> Any:
        """A value completed later: its error is the field's (or item's), as in graphql-core."""
        try:
            return await completed
        except Exception as error:  # noqa: BLE001 -- recorded (or raised) by graphql-core
            self.handle_field_error(error, return_type, details, path)
            return None

    # plans -------------------------------------------------------------------------------

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[_Step]:
        """How to execute each field of a selection set of ``parent_type``."""
        known = self._plans.get(id(grouped_field_set))
        if known is not None and known[0] is grouped_field_set:
            return known[1]
        if not self._shared or any(
            d.defer_usage is not None for details in grouped_field_set.values() for d in details
        ):
            return self._new_plan(parent_type, grouped_field_set)
        key = (
            id(parent_type),
            tuple(
                (name, *(id(d.node) for d in details))
                for name, details in grouped_field_set.items()
            ),
        )
        shared = _shared.get(key)
        if shared is not None and shared[0] is parent_type:
            self._plans[id(grouped_field_set)] = (grouped_field_set, shared[2])
            return shared[2]
        plan = self._new_plan(parent_type, grouped_field_set)
        if len(_shared) >= MAX_SHARED:
            _shared.clear()
        _shared[key] = (parent_type, grouped_field_set, plan)
        return plan

    def _new_plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[_Step]:
        plan: list[_Step] = []
        fields = parent_type.fields
        for name, details in grouped_field_set.items():
            field = fields.get(details[0].node.name.value)
            step = _Step(parent_type, name, details, None if field is None else field.type)
            getter = None if field is None else _getter(field)
            if field is None and step.field_name == "__typename":
                if all(_plain(d) for d in details):
                    step.getter, step.leaf = _typename(parent_type.name), _TYPENAME
            elif field is not None and getter is not None and all(_plain(d) for d in details):
                step.leaf = _leaf(field.type)
                if step.leaf is not None or self._selects(step, field.type):
                    step.getter = getter
            plan.append(step)
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan

    def _selects(self, step: _Step, type_: GraphQLOutputType) -> bool:
        """Fill in how ``step`` completes an object or a list of objects of ``type_``;
        False when graphql-core is to do it."""
        step.nonnull = isinstance(type_, GraphQLNonNull)
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if isinstance(inner, GraphQLList):
            step.many, step.item_type = True, inner.of_type
            inner = inner.of_type
            inner = inner.of_type if isinstance(inner, GraphQLNonNull) else inner
        if not isinstance(inner, GraphQLObjectType) or inner.is_type_of is not None:
            return False  # abstract types, nested lists
        grouped, deferred, _ = self.collect_subfields(inner, step.details)
        if deferred:
            return False
        step.type, step.plan = inner, self._plan(inner, grouped)
        return True

    async def _gather_items(self, completed: list[Any], later: list[int]) -> list[Any]:
        values = await gather_with_cancel(*(completed[i] for i in later))
        for index, value in zip(later, values, strict=True):
            completed[index] = value
        return completed
