"""``diff(a, b)`` in GraphQL: :class:`lineage.diff.LineageDiff` as typed objects (records as
the schema's ``ArtifactVersion`` and ``Run``; config, summary and metadata values as JSON)."""

from __future__ import annotations

import enum

import strawberry
from strawberry.scalars import JSON

from lineage import diff as core
from lineage.server.graphql.graphs import NodeKind
from lineage.server.graphql.types import ArtifactVersion, File, Run, field

__all__ = ["ChangeKind", "LineageDiff", "lineage_diff"]


@strawberry.enum(description="How a key or a file differs from side A to side B.")
class ChangeKind(enum.Enum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@strawberry.type(description="A key that differs; nested keys as a path (`opt.lr`).")
class KeyChange:
    path: str
    keys: list[str]
    change: ChangeKind
    a: JSON | None = strawberry.field(description="A's value (null when added).")
    b: JSON | None = strawberry.field(description="B's value (null when removed).")


def _key(c: core.KeyChange) -> KeyChange:
    return KeyChange(
        path=c.path, keys=list(c.keys), change=ChangeKind(c.change), a=JSON(c.a), b=JSON(c.b)
    )


def _keys(changes: tuple[core.KeyChange, ...]) -> list[KeyChange]:
    return [_key(c) for c in changes]


@strawberry.type(description="A file that differs, as each side has it.")
class FileChange:
    path: str
    change: ChangeKind
    a: File | None
    b: File | None


@strawberry.type(description="Files that differ, read from the manifest pages that differ.")
class FilesDiff:
    added: list[FileChange]
    removed: list[FileChange]
    changed: list[FileChange]
    unchanged: int
    pages_read: int
    pages_skipped: int


def _files(f: core.ContentDiff) -> FilesDiff:
    def one(c: core.FileChange) -> FileChange:
        return FileChange(
            path=c.path,
            change=ChangeKind(c.change),
            a=None if c.a is None else File(entry=c.a),
            b=None if c.b is None else File(entry=c.b),
        )

    return FilesDiff(
        added=[one(c) for c in f.added],
        removed=[one(c) for c in f.removed],
        changed=[one(c) for c in f.changed],
        unchanged=f.unchanged,
        pages_read=f.pages_read,
        pages_skipped=f.pages_skipped,
    )


@strawberry.type(description="One side: a version with the run that created it, or a run.")
class DiffSide:
    id: str
    kind: NodeKind
    version: ArtifactVersion | None
    run: Run | None


def _side(s: core.Side) -> DiffSide:
    return DiffSide(
        id=s.id,
        kind=NodeKind(s.kind),
        version=None if s.version is None else ArtifactVersion(record=s.version),
        run=None if s.run is None else Run(record=s.run),
    )


@strawberry.type(description="How each side was made: the producing runs compared.")
class MadeDiff:
    a_run: str | None
    b_run: str | None
    job_type: KeyChange | None
    config: list[KeyChange]
    summary: list[KeyChange]
    code: list[KeyChange] = strawberry.field(description="commit, dirty, script")


@strawberry.type(description="A run on one side since the merge bases.")
class ChainStep:
    run: Run
    consumed: list[str]
    produced: list[str]


@strawberry.type(description="Upstream versions of one artifact that only one side has.")
class AlignedInput:
    artifact: str
    a: list[ArtifactVersion]
    b: list[ArtifactVersion]


@strawberry.type(description="Where the two lineages part.")
class AncestryDiff:
    merge_bases: list[str] = strawberry.field(
        description="The nearest common ancestors in the derivation view (all of them)."
    )
    chain_a: list[ChainStep]
    chain_b: list[ChainStep]
    inputs: list[AlignedInput]
    shared_inputs: int = strawberry.field(description="Upstream versions both sides have.")
    truncated: bool


def _chain(steps: tuple[core.ChainStep, ...]) -> list[ChainStep]:
    return [
        ChainStep(run=Run(record=s.run), consumed=list(s.consumed), produced=list(s.produced))
        for s in steps
    ]


def _ancestry(a: core.Ancestry) -> AncestryDiff:
    return AncestryDiff(
        merge_bases=list(a.merge_bases),
        chain_a=_chain(a.chain_a),
        chain_b=_chain(a.chain_b),
        inputs=[
            AlignedInput(
                artifact=i.artifact,
                a=[ArtifactVersion(record=v) for v in i.a],
                b=[ArtifactVersion(record=v) for v in i.b],
            )
            for i in a.inputs
        ],
        shared_inputs=a.shared_inputs,
        truncated=a.truncated,
    )


@strawberry.type(description="Why two versions (or runs) differ.")
class LineageDiff:
    a: DiffSide
    b: DiffSide
    files: FilesDiff | None = strawberry.field(description="Null unless both are versions.")
    metadata: list[KeyChange]
    description: KeyChange | None
    made: MadeDiff
    ancestry: AncestryDiff
    unlisted: list[str] = strawberry.field(
        description="The versions whose file list (manifest) the blob store lacks: their "
        "files are not compared (`files` is null); the rest is."
    )

    @field("The whole diff as JSON: what `lineage diff --json` prints.")
    def json(self) -> JSON:
        return JSON(self.source)

    source: strawberry.Private[object] = None


def lineage_diff(d: core.LineageDiff) -> LineageDiff:
    m = d.made
    return LineageDiff(
        a=_side(d.a),
        b=_side(d.b),
        files=None if d.files is None else _files(d.files),
        metadata=_keys(d.metadata),
        description=None if d.description is None else _key(d.description),
        made=MadeDiff(
            a_run=m.a_run,
            b_run=m.b_run,
            job_type=None if m.job_type is None else _key(m.job_type),
            config=_keys(m.config),
            summary=_keys(m.summary),
            code=_keys(m.code),
        ),
        ancestry=_ancestry(d.ancestry),
        unlisted=list(d.unlisted),
        source=d.to_json(),
    )
