"""Cursor pagination: a connection of ``edges`` (cursor, node), ``nodes`` and ``pageInfo``.

Cursors are opaque (base64 of the sort key of the last item seen), so a page stays right when
items are added before it is fetched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from lineage.cursors import cursor, cursor_key
from lineage.errors import InvalidInput
from lineage.server.graphql.loaders import Context

__all__ = [
    "DEFAULT_PAGE",
    "Connection",
    "PageEdge",
    "PageInfo",
    "asks",
    "keyset_page",
    "paginate",
]

DEFAULT_PAGE = 50

N = TypeVar("N")
X = TypeVar("X")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(name="Edge")
class PageEdge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[PageEdge[N]]
    page_info: PageInfo
    # the count, or how to get it when asked for (counting a big list is a query of its own)
    count: strawberry.Private[int | Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        return self.count if isinstance(self.count, int) else await self.count()

    @strawberry.field
    def nodes(self) -> list[N]:
        return [edge.node for edge in self.edges]


def paginate(
    items: Sequence[X],
    key: Callable[[X], list[Any]],
    wrap: Callable[[X], N],
    context: Context,
    first: int,
    after: str | None,
) -> Connection[N]:
    """The page of ``items`` (sorted by ``key``) after the cursor ``after``."""
    context.limits.first(first)
    start = 0
    if after is not None:
        bound = cursor_key(after)
        try:
            start = next((i for i, item in enumerate(items) if key(item) > bound), len(items))
        except TypeError:
            raise InvalidInput(f"cursor {after[:40]!r} belongs to another list") from None
    page = items[start : start + first]
    edges = [PageEdge(cursor=cursor(key(item)), node=wrap(item)) for item in page]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=start + first < len(items),
            end_cursor=edges[-1].cursor if edges else after,
        ),
        count=len(items),
    )


async def keyset_page(
    fetch: Callable[[int, list[Any] | None], Awaitable[Sequence[X]]],
    key: Callable[[X], list[Any]],
    wrap: Callable[[X], N],
    count: Callable[[], Awaitable[int]],
    context: Context,
    first: int,
    after: str | None,
) -> Connection[N]:
    """A page the store cuts: ``fetch(limit, after_key)`` returns up to ``limit`` items in
    ``key`` order after ``after_key``; one more than asked tells whether a next page exists.
    ``totalCount`` is counted only when a query asks for it."""
    context.limits.first(first)
    items = await fetch(first + 1, None if after is None else cursor_key(after))
    page = items[:first]
    edges = [PageEdge(cursor=cursor(key(item)), node=wrap(item)) for item in page]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(items) > first,
            end_cursor=edges[-1].cursor if edges else after,
        ),
        count=count,
    )


def asks(info: strawberry.Info[Any, Any], name: str) -> bool:
    """Whether the query selects ``name`` on the field being resolved (directly or through
    fragments): a connection's ``totalCount`` is counted only when asked for."""

    def within(selections: Sequence[Selection]) -> bool:
        return any(
            s.name == name if isinstance(s, SelectedField) else within(s.selections)
            for s in selections
        )

    return any(within(field.selections) for field in info.selected_fields)
