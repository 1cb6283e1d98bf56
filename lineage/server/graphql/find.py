"""Pages of runs and versions found by a filter (``Query.runs(filter:, orderBy:)``,
``Query.versions``): the store cuts each page after the cursor's sort key, and counts
``totalCount`` itself with the same compiled filter (no record is read to count)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lineage.records import RunRecord, VersionRecord
from lineage.server.graphql.loaders import call
from lineage.server.graphql.pagination import Connection, keyset_page
from lineage.server.graphql.types import ArtifactVersion, Info, Run
from lineage.service import find_key

__all__ = ["found_runs", "found_versions"]

R = TypeVar("R", RunRecord, VersionRecord)
N = TypeVar("N", Run, ArtifactVersion)


async def found_runs(
    info: Info,
    project: str | None,
    filter: str | None,
    order_by: str | None,
    first: int,
    after: str | None,
) -> Connection[Run]:
    service = info.context.service

    def prime(found: list[RunRecord]) -> None:
        info.context.loaders.runs.prime_many({r.id: r for r in found})

    return await _found(
        info, service.find_runs, service.count_found_runs, lambda r: Run(record=r), prime,
        project, filter, order_by, first, after,
    )  # fmt: skip


async def found_versions(
    info: Info,
    project: str | None,
    filter: str | None,
    order_by: str | None,
    first: int,
    after: str | None,
) -> Connection[ArtifactVersion]:
    service = info.context.service
    return await _found(
        info, service.find_versions, service.count_found_versions,
        lambda v: ArtifactVersion(record=v), None, project, filter, order_by, first, after,
    )  # fmt: skip


async def _found(
    info: Info,
    find: Callable[..., list[R]],
    count_found: Callable[..., int],
    wrap: Callable[[R], N],
    prime: Callable[[list[R]], None] | None,
    project: str | None,
    filter: str | None,
    order_by: str | None,
    first: int,
    after: str | None,
) -> Connection[N]:
    """A page of what ``find`` (the service's find_runs or find_versions) finds, and its
    ``count_found`` for totalCount."""

    async def fetch(limit: int, bound: list[Any] | None) -> list[R]:
        found: list[R] = await call(
            find, project, filter=filter, order_by=order_by, limit=limit, after=bound
        )
        if prime is not None:
            prime(found)
        return found

    async def count() -> int:
        counted: int = await call(count_found, project, filter=filter)
        return counted

    return await keyset_page(
        fetch, lambda r: find_key(order_by, r), wrap, count, info.context, first, after
    )
