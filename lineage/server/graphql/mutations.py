"""The ``Mutation`` root: what the SDK's remote mode calls. Every rule is the service's.

A version is committed from a manifest whose blobs are already stored: upload what
``POST /blobs/missing`` names with ``PUT /blobs/{digest}``, then ``commitVersion``.
Every mutation needs a write token (checked once per operation, see ``schema.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from lineage.errors import InvalidInput, InvalidMetadata
from lineage.records import CodeVersion, RunRecord
from lineage.server.graphql.loaders import call
from lineage.server.graphql.types import Artifact, ArtifactVersion, Info, Run, RunState, mutation

__all__ = ["Mutation"]


@strawberry.input(description="The code a run ran: git commit, script and command line.")
class CodeVersionInput:
    commit: str
    dirty: bool = False
    remote: str | None = None
    script: str | None = None
    command: list[str] = strawberry.field(default_factory=list)


def _timestamp(at: datetime, argument: str) -> float:
    """``at`` in seconds since the epoch; InvalidInput naming ``argument`` when out of range."""
    try:
        return at.timestamp()
    except (ValueError, OverflowError, OSError) as error:
        raise InvalidInput(
            f"{argument} {at.isoformat()!r} is out of range ({error})", argument=argument
        ) from None


@strawberry.type(description="What `tag` changed: a run or a version.")
class Tagged:
    run: Run | None
    version: ArtifactVersion | None


@strawberry.type
class CommitResult:
    version: ArtifactVersion
    created: bool = strawberry.field(
        description="False when byte-identical content returned an existing version."
    )


def _object(value: object, what: str) -> Mapping[str, Any] | None:
    """A JSON argument the service takes as a mapping."""
    if value is None or isinstance(value, dict):
        return value
    raise InvalidMetadata(f"{what} must be a JSON object, got {type(value).__name__}")


@strawberry.type
class Mutation:
    @mutation(
        "Start a run; finish it with finishRun. `id` and `startedAt` keep a run's identity when"
        " `lineage sync` sends a run logged offline."
    )
    async def create_run(
        self,
        info: Info,
        project: str,
        job_type: str | None = None,
        name: str | None = None,
        config: JSON | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
        code: CodeVersionInput | None = None,
        host: str | None = None,
        pid: int | None = None,
        id: strawberry.ID | None = None,
        started_at: datetime | None = None,
    ) -> Run:
        record = await call(
            info.context.service.start_run,
            user=info.context.principal.actor,
            run_id=None if id is None else str(id),
            started_at=None if started_at is None else _timestamp(started_at, "startedAt"),
            project=project,
            job_type=job_type,
            name=name,
            config=_object(config, "config"),
            tags=tags,
            notes=notes,
            code=None
            if code is None
            else CodeVersion(
                commit=code.commit,
                dirty=code.dirty,
                remote=code.remote,
                script=code.script,
                command=tuple(code.command),
            ),
            host=host,
            pid=pid,
        )
        return Run(record=record)

    @mutation("Merge values into a running run's summary.")
    async def log_summary(self, info: Info, run_id: strawberry.ID, summary: JSON) -> Run:
        mapping = _object(summary, "summary") or {}
        return Run(record=await call(info.context.service.update_summary, str(run_id), mapping))

    @mutation("Finish a run as FINISHED, FAILED, CRASHED or KILLED.")
    async def finish_run(
        self,
        info: Info,
        run_id: strawberry.ID,
        state: RunState = RunState.FINISHED,
        summary: JSON | None = None,
        error: str | None = None,
    ) -> Run:
        record = await call(
            info.context.service.finish_run,
            str(run_id),
            state=state.value,
            summary=_object(summary, "summary"),
            error=error,
        )
        return Run(record=record)

    @mutation(
        "Record that a running run consumed a version; a ref without a project "
        "means the run's project."
    )
    async def use_artifact(
        self, info: Info, run_id: strawberry.ID, ref: str, role: str | None = None
    ) -> ArtifactVersion:
        return ArtifactVersion(record=await call(info.context.service.use, str(run_id), ref, role))

    @mutation(
        "Commit a version produced by a running run, from the digest of a "
        "manifest whose blobs are all stored."
    )
    async def commit_version(
        self,
        info: Info,
        run_id: strawberry.ID,
        name: str,
        type: str,
        manifest: str,
        description: str | None = None,
        metadata: JSON | None = None,
        aliases: list[str] | None = None,
    ) -> CommitResult:
        version, created = await call(
            info.context.service.commit,
            str(run_id),
            name=name,
            type=type,
            manifest=manifest,
            description=description,
            metadata=_object(metadata, "metadata"),
            aliases=aliases or (),
        )
        return CommitResult(version=ArtifactVersion(record=version), created=created)

    @mutation(
        "Add and remove tags of a run (by id) or a version (by ref); logged with the "
        "token as its actor."
    )
    async def tag(
        self,
        info: Info,
        target: str,
        add: list[str] | None = None,
        remove: list[str] | None = None,
        project: str | None = None,
    ) -> Tagged:
        context = info.context
        record = await call(
            context.service.tag, target, add=add or (), remove=remove or (),
            default_project=project, actor=context.principal.actor,
        )  # fmt: skip
        if isinstance(record, RunRecord):
            return Tagged(run=Run(record=record), version=None)
        return Tagged(run=None, version=ArtifactVersion(record=record))

    @mutation("Point an alias at a version, moving it if held elsewhere.")
    async def set_alias(self, info: Info, ref: str, alias: str) -> ArtifactVersion:
        context = info.context
        record = await call(context.service.set_alias, ref, alias, actor=context.principal.actor)
        return ArtifactVersion(record=record)

    @mutation("Remove an alias from an artifact.")
    async def remove_alias(self, info: Info, project: str, name: str, alias: str) -> Artifact:
        context = info.context
        await call(
            context.service.remove_alias, project, name, alias, actor=context.principal.actor
        )
        found = await call(context.service.graph.get_artifact, project, name)
        assert found is not None
        return Artifact(record=found)

    @mutation("Replace a version's metadata and/or description.")
    async def update_version(
        self,
        info: Info,
        ref: str,
        metadata: JSON | None = None,
        description: str | None = None,
    ) -> ArtifactVersion:
        context = info.context
        record = await call(
            context.service.update_version,
            ref,
            metadata=_object(metadata, "metadata"),
            description=description,
            actor=context.principal.actor,
        )
        return ArtifactVersion(record=record)

    @mutation(
        "Delete a version (a tombstone: lineage keeps it). Refused while it "
        "holds aliases other than latest, unless force."
    )
    async def delete_version(self, info: Info, ref: str, force: bool = False) -> ArtifactVersion:
        context = info.context
        record = await call(
            context.service.delete_version, ref, force=force, actor=context.principal.actor
        )
        deleted = await call(context.service.resolve, record.id, include_deleted=True)
        return ArtifactVersion(record=deleted)
