"""Fields with arguments resolved without strawberry's per-call wrapper.

Strawberry resolves a field whose resolver takes arguments (``derivationTree(ref, depth,
asOf, first, after)``, ``artifactVersion(ref, asOf)``) through a wrapper that, on every call,
makes an ``Info``, converts each argument by its type (the GraphQL name worked out from the
Python name again, an ``isinstance`` ladder), builds the chain of field extensions and
awaits the resolver inside a coroutine of its own: some tens of µs a root field, a good part
of what a small query costs beyond the service call.

When every argument is a scalar or an enum (``String``, ``DateTime``, ``Direction``...), that
conversion gives graphql-core's values back unchanged, under their Python names. For such a
field, with no field extension, permission or exception handler, :func:`lean_resolvers`
sets graphql-core's resolver to a function that renames the arguments by a table made once,
makes the same ``Info`` and calls the resolver: the same call strawberry makes, so the same
answer and the same errors. Every other field keeps strawberry's wrapper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strawberry.relay.types import GlobalID
from strawberry.schema.compat import is_scalar
from strawberry.types.base import StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField

from graphql import GraphQLObjectType

__all__ = ["lean_resolvers"]

DEFINITION = "strawberry-definition"  # strawberry's back reference on a GraphQLField


def _scalar(type_: Any, registry: Any) -> bool:
    """Whether strawberry hands an argument of ``type_`` to the resolver as graphql-core
    parsed it: a scalar or an enum (graphql-core gives the member), maybe nullable; not a
    GlobalID, a list or an input."""
    if type(type_) is StrawberryOptional:  # exactly: not Maybe, which wraps its value
        type_ = type_.of_type
    if isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_):
        return True
    return type_ is not GlobalID and is_scalar(type_, registry)


def _lean(definition: StrawberryField, schema: Any) -> Callable[..., Any] | None:
    """graphql-core's resolver for ``definition``, or None when strawberry's is needed."""
    resolver = definition.base_resolver
    converter = schema.schema_converter
    if (
        resolver is None
        or definition.extensions
        or not resolver.arguments
        or resolver.parent_parameter is not None
        or resolver.root_parameter is not None
        or converter._get_field_exception_handlers(definition)
        or not all(_scalar(a.type, converter.scalar_registry) for a in resolver.arguments)
    ):
        return None
    config = schema.config
    names = {config.name_converter.from_argument(a): a.python_name for a in resolver.arguments}
    call: Any = resolver.wrapped_func
    info_class: Any = config.info_class
    info_name = None if resolver.info_parameter is None else resolver.info_parameter.name
    with_self = resolver.self_parameter is not None

    def resolve(source: Any, info: Any, **values: Any) -> Any:
        kwargs = {names[name]: value for name, value in values.items() if name in names}
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=definition)
        return call(source, **kwargs) if with_self else call(**kwargs)

    return resolve


def lean_resolvers(schema: Any) -> int:
    """Give each field of ``schema`` (a strawberry schema) that qualifies (module docstring)
    a lean resolver; how many did."""
    count = 0
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for field in type_.fields.values():
            definition = field.extensions.get(DEFINITION)
            if not isinstance(definition, StrawberryField):
                continue
            resolve = _lean(definition, schema)
            if resolve is not None:
                field.resolve = resolve
                count += 1
    return count
