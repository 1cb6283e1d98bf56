"""The GraphQL object types: thin views over the records of :mod:`lineage.records`.

Each type wraps one record (a ``Private`` field) and resolves its relations through the
request's DataLoaders. Lists that can grow without bound are cursor-paginated connections
(:mod:`lineage.server.graphql.pagination`); lineage graphs are in
:mod:`lineage.server.graphql.graphs`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NewType, TypeVar

import strawberry
from strawberry.scalars import JSON

from lineage.errors import InvalidInput
from lineage.made import artifact_times
from lineage.manifest import Entry
from lineage.records import ArtifactRecord, RunRecord, VersionRecord
from lineage.records import CodeVersion as CodeRecord
from lineage.records import Event as EventRecord
from lineage.server.graphql import bulk
from lineage.server.graphql.loaders import Context, call
from lineage.server.graphql.pagination import (
    DEFAULT_PAGE,
    Connection,
    asks,
    keyset_page,
    paginate,
)

__all__ = [
    "LONG",
    "Alias",
    "Artifact",
    "ArtifactVersion",
    "CodeVersion",
    "Event",
    "File",
    "Info",
    "Long",
    "Project",
    "Run",
    "RunState",
    "VersionState",
    "artifact_page",
    "field",
    "mutation",
    "run_page",
]

Info = strawberry.Info[Context, None]
Long = NewType("Long", int)
LONG = strawberry.scalar(
    name="Long",
    description="An integer of up to 64 bits, such as a size in bytes.",
    serialize=int,
    parse_value=int,
)
F = TypeVar("F", bound=Callable[..., Any])


def field(description: str) -> Callable[[F], F]:
    """``strawberry.field(description=...)``, keeping the resolver's type for mypy."""
    decorator: Callable[[F], F] = strawberry.field(description=description)
    return decorator


def mutation(description: str) -> Callable[[F], F]:
    """``strawberry.mutation(description=...)``, keeping the resolver's type for mypy."""
    decorator: Callable[[F], F] = strawberry.mutation(description=description)
    return decorator


# enums ---------------------------------------------------------------------------------------


@strawberry.enum
class RunState(enum.Enum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"
    CRASHED = "crashed"
    ABORTED = "aborted"


@strawberry.enum
class VersionState(enum.Enum):
    COMMITTED = "committed"
    DELETED = "deleted"


def _time(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, tz=UTC)


# runs ----------------------------------------------------------------------------------------


@strawberry.type(description="The code a run ran: git commit, script and command line.")
class CodeVersion:
    commit: str
    dirty: bool
    remote: str | None
    script: str | None = strawberry.field(
        description="The script, relative to its repository's root when inside one."
    )
    command: list[str] = strawberry.field(description="The process's command line (argv).")

    @classmethod
    def of(cls, code: CodeRecord | None) -> CodeVersion | None:
        if code is None:
            return None
        return cls(
            commit=code.commit,
            dirty=code.dirty,
            remote=code.remote,
            script=code.script,
            command=list(code.command),
        )


@strawberry.type(description="One execution of a process: what it consumed and produced.")
class Run:
    record: strawberry.Private[RunRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.record.id)

    @strawberry.field
    def project(self) -> str:
        return self.record.project

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def job_type(self) -> str | None:
        return self.record.job_type

    @strawberry.field
    def state(self) -> RunState:
        return RunState(self.record.state)

    @strawberry.field
    def config(self) -> JSON:
        return JSON(dict(self.record.config))

    @field("Final metrics.")
    def summary(self) -> JSON:
        return JSON(dict(self.record.summary))

    @strawberry.field
    def tags(self) -> list[str]:
        return list(self.record.tags)

    @strawberry.field
    def notes(self) -> str | None:
        return self.record.notes

    @strawberry.field
    def code(self) -> CodeVersion | None:
        return CodeVersion.of(self.record.code)

    @strawberry.field
    def host(self) -> str | None:
        return self.record.host

    @field("Who started it: the OS user of a local run, a token's actor on a server.")
    def user(self) -> str | None:
        return self.record.user

    @strawberry.field
    def started_at(self) -> datetime:
        started = _time(self.record.started_at)
        assert started is not None
        return started

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return _time(self.record.finished_at)

    @strawberry.field
    def error(self) -> str | None:
        return self.record.error

    @field("OpenLineage job and run facets as they came (job, run, eventTime, producer).")
    def facets(self) -> JSON:
        return JSON(dict(self.record.facets))

    @field("The run this one is a task of (OpenLineage's parent run facet), if known.")
    async def parent(self, info: Info) -> Run | None:
        if self.record.parent is None:
            return None
        found = await info.context.loaders.runs.load(self.record.parent)
        return None if found is None else Run(record=found)

    @field("The runs whose parent is this one (an Airflow DAG run's tasks), oldest first.")
    async def children(self, info: Info) -> list[Run]:
        found = await call(info.context.service.child_runs, self.record.id)
        return [Run(record=record) for record in found]

    @field("The versions this run consumed.")
    async def consumed(self, info: Info) -> list[ArtifactVersion]:
        loaders = info.context.loaders
        edges = await loaders.upstream.load(self.record.id)
        found = await loaders.versions.load_many([e.source for e in edges])
        return [ArtifactVersion(record=v) for v in found if v is not None]

    @field("The versions this run produced (or reproduced).")
    async def produced(self, info: Info) -> list[ArtifactVersion]:
        loaders = info.context.loaders
        edges = await loaders.downstream.load(self.record.id)
        found = await loaders.versions.load_many([e.target for e in edges])
        return [ArtifactVersion(record=v) for v in found if v is not None]


# the plain fields of a run, read from its record in bulk (see bulk.py); each gives what its
# resolver above gives, or raises
bulk.shape(
    Run,
    {"record": "record"},
    id=bulk.ident("$record.id"),
    project=bulk.text("$record.project"),
    name=bulk.text("$record.name"),
    jobType=bulk.maybe_text("$record.job_type"),
    state=bulk.enumeration(RunState, "$record.state"),
    config=bulk.json("$record.config"),
    summary=bulk.json("$record.summary"),
    tags=bulk.texts("$record.tags"),
    notes=bulk.maybe_text("$record.notes"),
    host=bulk.maybe_text("$record.host"),
    user=bulk.maybe_text("$record.user"),
    startedAt=bulk.time("$record.started_at"),
    finishedAt=bulk.maybe_time("$record.finished_at"),
    error=bulk.maybe_text("$record.error"),
    facets=bulk.json("$record.facets"),
)


async def _runs(info: Info, ids: list[str]) -> list[Run]:
    found = await info.context.loaders.runs.load_many(ids)
    return [Run(record=r) for r in sorted((r for r in found if r), key=lambda r: r.started_at)]


# versions ------------------------------------------------------------------------------------


@strawberry.type(description="An entry of the append-only event log.")
class Event:
    record: strawberry.Private[EventRecord]

    @strawberry.field
    def seq(self) -> int | None:
        return self.record.seq

    @field("alias.moved, alias.removed, metadata.updated, ...")
    def kind(self) -> str:
        return self.record.kind

    @field("The node the event is about (a version ref).")
    def target(self) -> str:
        return self.record.target

    @strawberry.field
    def at(self) -> datetime:
        at = _time(self.record.at)
        assert at is not None
        return at

    @field("Who made the change: a run id or token:<id>.")
    def actor(self) -> str | None:
        return self.record.actor

    @strawberry.field
    def old(self) -> JSON | None:
        return JSON(self.record.old)

    @strawberry.field
    def new(self) -> JSON | None:
        return JSON(self.record.new)


@strawberry.type(description="One file of a version: stored bytes, or a reference elsewhere.")
class File:
    entry: strawberry.Private[Entry]

    @strawberry.field
    def path(self) -> str:
        return self.entry.path

    @strawberry.field
    def size(self) -> Long:
        return Long(self.entry.size)

    @field("BLAKE3 of the bytes: GET /blobs/{digest} downloads them.")
    def digest(self) -> str | None:
        return self.entry.digest

    @field("Where a reference points (files it does not store).")
    def uri(self) -> str | None:
        return self.entry.uri

    @strawberry.field
    def etag(self) -> str | None:
        return self.entry.etag

    @strawberry.field
    def is_reference(self) -> bool:
        return self.entry.is_reference


@strawberry.type(description="One immutable content state of an artifact.")
class ArtifactVersion:
    record: strawberry.Private[VersionRecord]

    @field("The fully qualified ref, project/name:vN.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.record.id)

    @field("project/name:vN")
    def ref(self) -> str:
        return self.record.ref

    @strawberry.field
    def project(self) -> str:
        return self.record.project

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def type(self) -> str:
        return self.record.type

    @field("v0, v1, ... in creation order.")
    def version(self) -> str:
        return f"v{self.record.index}"

    @strawberry.field
    def index(self) -> int:
        return self.record.index

    @field("The manifest's digest: same content, same digest.")
    def digest(self) -> str:
        return self.record.digest

    @field("Total bytes of its files.")
    def size(self) -> Long:
        return Long(self.record.size)

    @strawberry.field
    def file_count(self) -> int:
        return self.record.file_count

    @strawberry.field
    def metadata(self) -> JSON:
        return JSON(dict(self.record.metadata))

    @strawberry.field
    def description(self) -> str | None:
        return self.record.description

    @strawberry.field
    def aliases(self) -> list[str]:
        return list(self.record.aliases)

    @strawberry.field
    def tags(self) -> list[str]:
        return list(self.record.tags)

    @strawberry.field
    def state(self) -> VersionState:
        return VersionState(self.record.state)

    @field(
        "When it was made: its OpenLineage event's time (eventTime) where it has one, else "
        "when it was stored (storedAt). The filter field `created` and asOf go by it."
    )
    def created_at(self) -> datetime:
        at = _time(self.record.made_at)
        assert at is not None
        return at

    @field(
        "When lineage stored it: for a version an OpenLineage event made, when that event "
        "arrived (later, for a replayed history); else createdAt. Filter field `stored`."
    )
    def stored_at(self) -> datetime:
        at = _time(self.record.created_at)
        assert at is not None
        return at

    @field(
        "When the OpenLineage event that produced (or observed) it says it was made; null for "
        "a version the SDK logged, made when it was stored."
    )
    def event_time(self) -> datetime | None:
        return _time(self.record.event_at)

    @field("The run that created this version.")
    async def created_by(self, info: Info) -> Run | None:
        if self.record.created_by is None:
            return None
        found = await info.context.loaders.runs.load(self.record.created_by)
        return None if found is None else Run(record=found)

    @strawberry.field
    async def artifact(self, info: Info) -> Artifact:
        key = (self.record.project, self.record.name)
        found = await info.context.loaders.artifacts.load(key)
        assert found is not None
        return Artifact(record=found)

    @field("Runs that produced it: the creator, then reproductions.")
    async def logged_by(self, info: Info) -> list[Run]:
        edges = await info.context.loaders.upstream.load(self.record.id)
        return await _runs(info, [e.source for e in edges])

    @field("Runs that consumed it.")
    async def used_by(self, info: Info) -> list[Run]:
        edges = await info.context.loaders.downstream.load(self.record.id)
        return await _runs(info, [e.target for e in edges])

    @field("Alias moves, metadata edits, deletion.")
    async def events(self, info: Info) -> list[Event]:
        found = await call(info.context.service.events, self.record.id)
        return [Event(record=e) for e in found]

    @field("Its files, sorted by path.")
    async def files(
        self,
        info: Info,
        first: int = 100,
        after: str | None = None,
        prefix: str | None = None,
    ) -> Connection[File]:
        manifest = await call(info.context.service.manifest, self.record)
        entries = [e for e in manifest if prefix is None or e.path.startswith(prefix)]
        return paginate(
            entries, lambda e: [e.path], lambda e: File(entry=e), info.context, first, after
        )


bulk.shape(
    ArtifactVersion,
    {"record": "record"},
    id=bulk.ident("$record.id"),
    ref=bulk.text("$record.ref"),
    project=bulk.text("$record.project"),
    name=bulk.text("$record.name"),
    type=bulk.text("$record.type"),
    version=bulk.text('f"v{$record.index}"'),
    index=bulk.integer("$record.index"),
    digest=bulk.text("$record.digest"),
    size=bulk.long("$record.size"),
    fileCount=bulk.integer("$record.file_count"),
    metadata=bulk.json("$record.metadata"),
    description=bulk.maybe_text("$record.description"),
    aliases=bulk.texts("$record.aliases"),
    tags=bulk.texts("$record.tags"),
    state=bulk.enumeration(VersionState, "$record.state"),
    createdAt=bulk.time("$record.made_at"),
    storedAt=bulk.time("$record.created_at"),
    eventTime=bulk.maybe_time("$record.event_at"),
)


# artifacts -----------------------------------------------------------------------------------


@strawberry.type(description="A movable label on one version, unique within its artifact.")
class Alias:
    alias: str
    version: ArtifactVersion


@strawberry.type(description="A named, typed collection of versions.")
class Artifact:
    record: strawberry.Private[ArtifactRecord]

    @strawberry.field
    def project(self) -> str:
        return self.record.project

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def type(self) -> str:
        return self.record.type

    @strawberry.field
    def description(self) -> str | None:
        return self.record.description

    @field("When it was created: its first version's createdAt (when that was made).")
    async def created_at(self, info: Info) -> datetime:
        created, _ = await call(artifact_times, info.context.service, self.record)
        return datetime.fromtimestamp(created, tz=UTC)

    @field("When lineage stored its first version.")
    async def stored_at(self, info: Info) -> datetime:
        _, stored = await call(artifact_times, info.context.service, self.record)
        return datetime.fromtimestamp(stored, tz=UTC)

    @field("Its versions, oldest first.")
    async def versions(
        self,
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        include_deleted: bool = False,
    ) -> Connection[ArtifactVersion]:
        # the store cuts the page (an artifact may hold 100,000 versions), by index
        service, project, name = info.context.service, self.record.project, self.record.name

        async def fetch(limit: int, bound: list[Any] | None) -> list[VersionRecord]:
            if bound is not None and (
                len(bound) != 1 or not isinstance(bound[0], int) or isinstance(bound[0], bool)
            ):
                raise InvalidInput(f"cursor {(after or '')[:40]!r} belongs to another list")
            found: list[VersionRecord] = await call(
                service.versions,
                project,
                name,
                include_deleted=include_deleted,
                limit=limit,
                after=None if bound is None else bound[0],
            )
            info.context.loaders.versions.prime_many({v.id: v for v in found})
            return found

        async def count() -> int:
            counted: int = await call(
                service.count_versions, project, name, include_deleted=include_deleted
            )
            return counted

        return await keyset_page(
            fetch, lambda v: [v.index], lambda v: ArtifactVersion(record=v), count,
            info.context, first, after,
        )  # fmt: skip

    @field("Every alias and the version holding it.")
    async def aliases(self, info: Info) -> list[Alias]:
        held = await call(info.context.service.aliases, self.record.project, self.record.name)
        return [Alias(alias=a, version=ArtifactVersion(record=v)) for a, v in held]

    @field("The newest live version.")
    async def latest(self, info: Info) -> ArtifactVersion | None:
        # the store's `latest` alias: one lookup, not every version of the artifact
        found = await call(info.context.service.latest, self.record.project, self.record.name)
        return ArtifactVersion(record=found) if found is not None else None

    @field("The event log of every version of the artifact.")
    async def events(self, info: Info) -> list[Event]:
        found = await call(info.context.service.events, self.record.key)
        return [Event(record=e) for e in found]


async def artifact_page(
    info: Info, project: str, type: str | None, first: int, after: str | None
) -> Connection[Artifact]:
    """A page of a project's artifacts by name (``Query.artifacts``, ``Project.artifacts``)."""
    found = await call(info.context.service.artifacts, project, type=type)
    return paginate(
        found, lambda a: [a.name], lambda a: Artifact(record=a), info.context, first, after
    )


async def run_page(
    info: Info,
    project: str,
    job_type: str | None,
    state: RunState | None,
    first: int,
    after: str | None,
) -> Connection[Run]:
    """A page of a project's runs, oldest first (``Query.runs``, ``Project.runs``): the store
    returns just the page (a project may hold 100,000 runs), by ``(started_at, id)``."""
    service = info.context.service
    state_value = None if state is None else state.value

    async def fetch(limit: int, bound: list[Any] | None) -> list[RunRecord]:
        keyset = None
        if bound is not None:
            if (
                len(bound) != 2
                or not isinstance(bound[0], int | float)
                or isinstance(bound[0], bool)
                or not isinstance(bound[1], str)
            ):
                raise InvalidInput(f"cursor {(after or '')[:40]!r} belongs to another list")
            keyset = (float(bound[0]), bound[1])
        found: list[RunRecord] = await call(
            service.runs, project, job_type=job_type, state=state_value, limit=limit, after=keyset
        )
        info.context.loaders.runs.prime_many({r.id: r for r in found})
        return found

    # asked for before the page is fetched, so that the projects of a listing (Query.projects
    # { runs { totalCount } }) are counted together, in one store call
    counts = info.context.loaders.run_counts
    key = (project, job_type, state_value)
    counted = counts.load(key) if asks(info, "totalCount") else None

    async def count() -> int:
        return await (counts.load(key) if counted is None else counted)

    return await keyset_page(
        fetch, lambda r: [r.started_at, r.id], lambda r: Run(record=r), count,
        info.context, first, after,
    )  # fmt: skip


@strawberry.type(description="A namespace: every run and artifact belongs to one.")
class Project:
    name: str

    @strawberry.field
    async def artifacts(
        self,
        info: Info,
        type: str | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> Connection[Artifact]:
        return await artifact_page(info, self.name, type, first, after)

    @strawberry.field
    async def runs(
        self,
        info: Info,
        job_type: str | None = None,
        state: RunState | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> Connection[Run]:
        return await run_page(info, self.name, job_type, state, first, after)
