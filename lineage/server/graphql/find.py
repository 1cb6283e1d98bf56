"""Pages of runs and versions found by a filter (``Query.runs(filter:, orderBy:)``,
``Query.versions``): the store cuts each page after the cursor's sort key."""

from __future__ import annotations

from typing import Any

from lineage.records import RunRecord, VersionRecord
from lineage.server.graphql.loaders import call
from lineage.server.graphql.pagination import Connection, keyset_page
from lineage.server.graphql.types import ArtifactVersion, Info, Run
from lineage.service import find_key

__all__ = ["found_runs", "found_versions"]


async def found_runs(
    info: Info,
    project: str | None,
    filter: str | None,
    order_by: str | None,
    first: int,
    after: str | None,
) -> Connection[Run]:
    service = info.context.service

    async def fetch(limit: int, bound: list[Any] | None) -> list[RunRecord]:
        found: list[RunRecord] = await call(
            service.find_runs, project, filter=filter, order_by=order_by, limit=limit, after=bound
        )
        info.context.loaders.runs.prime_many({r.id: r for r in found})
        return found

    async def count() -> int:
        every = await call(service.find_runs, project, filter=filter, order_by=order_by)
        return len(every)

    return await keyset_page(
        fetch, lambda r: find_key(order_by, r), lambda r: Run(record=r), count,
        info.context, first, after,
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

    async def fetch(limit: int, bound: list[Any] | None) -> list[VersionRecord]:
        found: list[VersionRecord] = await call(
            service.find_versions, project, filter=filter, order_by=order_by, limit=limit,
            after=bound,
        )  # fmt: skip
        return found

    async def count() -> int:
        every = await call(service.find_versions, project, filter=filter, order_by=order_by)
        return len(every)

    return await keyset_page(
        fetch, lambda v: find_key(order_by, v), lambda v: ArtifactVersion(record=v), count,
        info.context, first, after,
    )  # fmt: skip
