"""The ``Query`` root: parse the arguments, call the service, wrap the answer."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated

import strawberry

from lineage.errors import NotFound
from lineage.filters import literal as quoted
from lineage.filters import parse
from lineage.names import check_name
from lineage.server.graphql.diff import LineageDiff, lineage_diff
from lineage.server.graphql.find import found_runs, found_versions
from lineage.server.graphql.graphs import Direction, LineageGraph, lineage_graph, lineage_page
from lineage.server.graphql.loaders import call
from lineage.server.graphql.pagination import DEFAULT_PAGE, Connection
from lineage.server.graphql.types import (
    Artifact,
    ArtifactVersion,
    Info,
    Project,
    Run,
    RunState,
    artifact_page,
    field,
    run_page,
)

__all__ = ["Query"]


def _at(ref: str, as_of: datetime | None) -> str:
    """``ref`` as of ``asOf``: ``REF@SECONDS`` (lineage.history answers it)."""
    if as_of is None:
        return ref
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    return f"{ref.partition('@')[0]}@{as_of.timestamp()!r}"


@strawberry.type
class Query:
    @field("Every project, by name.")
    async def projects(self, info: Info) -> list[Project]:
        names = await call(info.context.service.projects)
        return [Project(name=name) for name in names]

    @strawberry.field
    async def project(self, info: Info, name: str) -> Project:
        check_name(name, "project")
        if name not in await call(info.context.service.projects):
            raise NotFound(f"no project {name!r}", project=name)
        return Project(name=name)

    @field(
        "A version by ref: project/name:v3 or project/name:alias; with `asOf` (or a ref "
        "ending @TIME) the one it named then, as it was then."
    )
    async def artifact_version(
        self, info: Info, ref: str, as_of: datetime | None = None
    ) -> ArtifactVersion | None:
        return ArtifactVersion(record=await info.context.loaders.version(_at(ref, as_of)))

    @strawberry.field
    async def artifact(self, info: Info, project: str, name: str) -> Artifact | None:
        check_name(project, "project")
        check_name(name, "artifact name")
        found = await info.context.loaders.artifacts.load((project, name))
        if found is None:
            raise NotFound(f"no artifact {name!r} in project {project!r}", project=project)
        return Artifact(record=found)

    @strawberry.field
    async def run(self, info: Info, id: strawberry.ID) -> Run | None:
        found = await info.context.loaders.runs.load(str(id))
        if found is None:
            found = await call(info.context.service.get_run, str(id))  # raises RunNotFound
        return Run(record=found)

    @field("A project's artifacts by name, a page at a time.")
    async def artifacts(
        self,
        info: Info,
        project: str,
        type: str | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> Connection[Artifact]:
        check_name(project, "project")
        return await artifact_page(info, project, type, first, after)

    @field(
        "A project's runs, oldest first, a page at a time; `filter` in the filter language "
        "(config.lr < 1e-4 and tag = round3), ordered by `orderBy` (a field, '-' before it "
        "for descending; default created)."
    )
    async def runs(
        self,
        info: Info,
        project: str,
        job_type: str | None = None,
        state: RunState | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
    ) -> Connection[Run]:
        check_name(project, "project")
        if filter is None and order_by is None:
            return await run_page(info, project, job_type, state, first, after)
        parts = []
        if filter is not None:
            parse(filter, "runs")  # refused as the caller wrote it, columns and all
            parts.append(f"({filter})")
        if job_type is not None:
            parts.append(f"job_type = {quoted(job_type)}")
        if state is not None:
            parts.append(f"state = {quoted(state.value)}")
        joined = " and ".join(parts) or None
        return await found_runs(info, project, joined, order_by, first, after)

    @field(
        "Versions passing `filter` (metadata.epochs = 3 and type = model), in a project or "
        "all, ordered by `orderBy` (default created), a page at a time; deleted versions too "
        "unless the filter says state = committed."
    )
    async def versions(
        self,
        info: Info,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> Connection[ArtifactVersion]:
        if project is not None:
            check_name(project, "project")
        return await found_versions(info, project, filter, order_by, first, after)

    @field(
        "Runs and versions upstream (how it was made), downstream (what it fed) "
        "or both ways of a version ref or a run id, up to `depth` generations."
    )
    async def lineage(
        self,
        info: Info,
        ref: str,
        direction: Direction = Direction.UPSTREAM,
        depth: int = 20,
        as_of: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> LineageGraph:
        context = info.context
        depth = context.limits.depth(depth)
        start = _at(ref, as_of)
        if first is not None or after is not None:
            service = context.service
            return await lineage_page(
                context,
                direction.value,
                depth,
                functools.partial(service.lineage_page, start, direction.value, depth),
                functools.partial(service.lineage_count, start, direction.value, depth),
                first,
                after,
            )
        found = await call(context.service.lineage, start, direction.value, depth)
        return lineage_graph(found, context, direction.value, depth)

    @field(
        "The version-to-version view under a version: an edge a -> b (DERIVED) "
        "for each run that consumed a and produced b. Fine-tuning stages and model surgery."
    )
    async def derivation_tree(
        self,
        info: Info,
        ref: str,
        depth: int = 20,
        as_of: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> LineageGraph:
        context = info.context
        depth = context.limits.depth(depth)
        start = _at(ref, as_of)
        if first is not None or after is not None:
            service = context.service
            return await lineage_page(
                context,
                "tree",
                depth,
                functools.partial(service.tree_page, start, depth),
                functools.partial(service.tree_count, start, depth),
                first,
                after,
            )
        found = await call(context.service.tree, start, depth)
        return lineage_graph(found, context, "tree", depth)

    @field(
        "Every node on a path between two versions or runs (either way round), "
        "or null when neither came from the other."
    )
    async def path(
        self,
        info: Info,
        source: Annotated[str, strawberry.argument(name="from")],
        target: Annotated[str, strawberry.argument(name="to")],
    ) -> LineageGraph | None:
        found = await call(info.context.service.path, source, target)
        return None if found is None else lineage_graph(found, info.context)

    @field(
        "Everything downstream of a version, at any depth: which runs and "
        "models a bad dataset touched."
    )
    async def impact(self, info: Info, ref: str, as_of: datetime | None = None) -> LineageGraph:
        found = await call(info.context.service.impact, _at(ref, as_of))
        return lineage_graph(found, info.context, "downstream", None)

    @field(
        "Why two versions (refs) or two runs (ids) differ: files, metadata, how each was "
        "made (the producing runs' config, summary, code, job type) and ancestry (merge "
        "bases, the runs on each side since them, the upstream inputs that differ)."
    )
    async def diff(self, info: Info, a: str, b: str) -> LineageDiff:
        from lineage.diff import diff

        context = info.context
        depth = context.limits.max_lineage_depth
        return lineage_diff(await call(diff, context.service, a, b, depth=depth))
