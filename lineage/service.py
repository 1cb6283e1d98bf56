"""The service layer: every rule of lineage, once, over a GraphStore and a BlobStore.

The SDK, the CLI and the GraphQL resolvers are thin callers of :class:`Service`. Rules held
here: names and refs, run states, the commit protocol (blobs first, then the version), dedup
of byte-identical versions, the cycle check, alias uniqueness and the event log.
"""

from __future__ import annotations

import bisect
import dataclasses
import difflib
import getpass
import logging
import os
import secrets
import socket
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lineage import history, sent
from lineage.errors import (
    AliasedVersion,
    Conflict,
    CycleError,
    IntegrityError,
    InvalidInput,
    NotFound,
    RunNotActive,
    RunNotFound,
    VersionNotFound,
)
from lineage.filters import Target, order_key, parse, parse_order
from lineage.hashing import check_digest
from lineage.locations import canonical, is_location, reference_locations
from lineage.manifest import Manifest, manifest_digests, read_manifest
from lineage.moments import parse_time, shown
from lineage.names import (
    Ref,
    check_alias,
    check_json,
    check_name,
    check_text,
    parse_ref,
    quoted,
)
from lineage.pages import (
    DEFAULT_PAGE,
    Page,
    Paused,
    answer_pages,
    capped,
    check_first,
    count_nodes,
    lineage_steps,
    read_cursor,
    split_ids,
    tree_steps,
    walk_pages,
)
from lineage.records import (
    PRODUCED,
    RUN_STATES,
    ArtifactRecord,
    CodeVersion,
    Edge,
    Event,
    RunRecord,
    Subgraph,
    VersionRecord,
)
from lineage.storage.blobs import BlobStore
from lineage.storage.graph import DeriveRows, Direction, GraphStore, NewVersion
from lineage.storage.local import LocalBlobStore
from lineage.traversal import (
    Traversal,
    check_depth,
    check_direction,
    derived_answer,
    derived_triples,
    paused_gc,
)
from lineage.view import classify

__all__ = ["GcReport", "Service", "find_key"]

logger = logging.getLogger(__name__)

_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits
MAX_TAGS = 64
MAX_TEXT = 64 * 1024
MAX_CHILD_RUNS = 10_000  # runs below one parent that its lineage covers


def new_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class _Typed:
    """A ref the user typed as a storage URI: ``artifact`` names the artifact (the URI, or its
    part before a selector), ``ref`` is the whole text; a refusal says these."""

    artifact: str
    ref: str


def _said(ref: Ref, typed: _Typed | None) -> str:
    """``ref`` as a refusal names it: by the URI the user typed, with the selector."""
    return f"{typed.artifact}:{ref.selector}" if typed else str(ref)


@dataclass(frozen=True, kw_only=True)
class GcReport:
    blobs_total: int
    blobs_live: int
    blobs_removed: int
    dry_run: bool
    # temporary files killed writers left in a local blob store, older than the grace period:
    # removed (or, in a dry run, that would be) and their bytes
    temps_removed: int = 0
    temp_bytes: int = 0
    # blobs younger than the grace period: kept unchecked (a commit may be about to land)
    blobs_young: int = 0


class Service:
    """Every rule of lineage over one graph store and one blob store; what
    :class:`lineage.protocol.LineageService` describes, run in this process."""

    def __init__(self, graph: GraphStore, blobs: BlobStore) -> None:
        self.graph = graph
        # who a change is by when the caller does not say (a server says: its token's actor)
        self.actor = local_user()
        self.blobs = blobs
        self.traversal = Traversal(graph)
        self.paused = Paused()  # walks waiting for a client's next page

    # runs ----------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        project: str,
        job_type: str | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        code: CodeVersion | None = None,
        host: str | None = None,
        pid: int | None = None,
        run_id: str | None = None,
        started_at: float | None = None,
        user: str | None = None,
    ) -> RunRecord:
        """Start a run; ``user`` defaults to this process's OS user (a server passes its
        token's actor)."""
        check_name(project, "project")
        if job_type is not None:
            check_name(job_type, "job_type")
        if run_id is not None:
            check_name(run_id, "run id")
            if self.graph.get_runs([run_id]):
                raise Conflict(f"a run with id {run_id!r} already exists", run_id=run_id)
        run_id = run_id or new_run_id()
        if name is not None:
            check_name(name, "run name")
        tags = tuple(check_name(tag, "tag") for tag in (tags or ()))
        if len(tags) > MAX_TAGS:
            raise InvalidInput(f"a run has at most {MAX_TAGS} tags, got {len(tags)}")
        if notes is not None and (not isinstance(notes, str) or len(notes) > MAX_TEXT):
            raise InvalidInput(f"notes must be a string of at most {MAX_TEXT} characters")
        check_text(notes, "notes")
        check_text(host, "host")
        if code is not None:
            check_text([code.commit, code.remote, code.script, *code.command], "code")
        run = RunRecord(
            id=run_id,
            project=project,
            name=name or f"{job_type or 'run'}-{run_id}",
            job_type=job_type,
            config=check_json(config, "config"),
            tags=tags,
            notes=notes,
            code=code,
            host=host,
            pid=pid,
            started_at=started_at or time.time(),
            user=user or self.actor,
        )
        self.graph.create_run(run)
        return run

    def tag(
        self,
        target: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        default_project: str | None = None,
        actor: str | None = None,
    ) -> RunRecord | VersionRecord:
        """Add and remove tags of a run (by id) or a version (by ref), logged in the event
        log (``tags.changed``, old and new tags, who). A run id wins over a ref that reads
        the same (``name`` alone is ``name:latest``); a bare word that is neither is a
        NotFound saying both misses (a ref with ':' or '/' is never a run's id)."""
        added = [check_name(t, "tag") for t in add]
        removed = {check_name(t, "tag") for t in remove}
        run = self.graph.get_runs([target]).get(target) if ":" not in target else None
        current: tuple[str, ...]
        version: VersionRecord | None = None
        if run is not None:
            current = run.tags
        else:
            try:
                version = self.resolve(target, default_project, include_deleted=True)
            except NotFound as error:
                if ":" in target or "/" in target:
                    raise
                raise NotFound(
                    f"no run has the id {target!r}, and as a version's ref (name:latest): "
                    f"{error.message}",
                    target=target,
                ) from None
            current = version.tags
        tags = tuple(dict.fromkeys([*(t for t in current if t not in removed), *added]))
        if len(tags) > MAX_TAGS:
            raise InvalidInput(f"a record has at most {MAX_TAGS} tags, would have {len(tags)}")
        owner: RunRecord | VersionRecord = run if run is not None else version  # type: ignore[assignment]
        event = Event(
            project=owner.project,
            target=owner.id,
            kind="tags.changed",
            at=time.time(),
            actor=actor or self.actor,
            old=list(current),
            new=list(tags),
        )
        if run is not None:
            if tags == current:
                return run
            updated = self.graph.update_run(run.id, {"tags": list(tags)})
            assert updated is not None
            self.graph.append_events([event])
            return updated
        assert version is not None
        if tags == current:
            return version
        return self.graph.update_version(version.id, {"tags": list(tags)}, [event])

    def get_run(self, run_id: str) -> RunRecord:
        run = self.graph.get_runs([run_id]).get(run_id)
        if run is None:
            raise RunNotFound(f"run {run_id!r} does not exist", run_id=run_id)
        return run

    def active_run(self, run_id: str) -> RunRecord:
        return check_active(self.get_run(run_id))

    def finish_run(
        self,
        run_id: str,
        *,
        state: str = "finished",
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
        at: float | None = None,
    ) -> RunRecord:
        if state not in RUN_STATES or state == "running":
            ends = ", ".join(s for s in RUN_STATES if s != "running")
            raise InvalidInput(f"a run finishes as one of {ends}, not {state!r}")
        run = self.active_run(run_id)
        changes: dict[str, Any] = {"state": state, "finished_at": at or time.time()}
        if summary is not None:
            changes["summary"] = {**run.summary, **check_json(summary, "summary")}
        if error is not None:  # the SDK escapes an exception's text before it gets here
            check_text(error, "error")
            changes["error"] = str(error)[:MAX_TEXT]
        updated = self.graph.update_run(run_id, changes)
        assert updated is not None
        return updated

    def update_summary(self, run_id: str, summary: Mapping[str, Any]) -> RunRecord:
        run = self.active_run(run_id)
        merged = check_json({**run.summary, **check_json(summary, "summary")}, "summary")
        updated = self.graph.update_run(run_id, {"summary": merged})
        assert updated is not None
        return updated

    def reap_stale(self, project: str | None = None) -> list[RunRecord]:
        """Mark ``crashed`` every running run of this host whose process is gone."""
        host = socket.gethostname()
        reaped = []
        for run in self.graph.list_runs(project, state="running"):
            if run.host != host or run.pid is None or process_alive(run.pid):
                continue
            updated = self.graph.update_run(
                run.id,
                {"state": "crashed", "finished_at": time.time(), "error": "process exited"},
            )
            if updated is not None:
                reaped.append(updated)
        return reaped

    # versions ------------------------------------------------------------------------------

    def resolve(
        self,
        ref: str | Ref,
        default_project: str | None = None,
        *,
        include_deleted: bool = False,
    ) -> VersionRecord:
        """The version a ref names; a deleted version only with ``include_deleted``. A
        storage URI (``s3://bucket/train``) names the newest version of the artifact at that
        location (:mod:`lineage.locations`)."""
        if isinstance(ref, str) and is_location(ref):
            # a refusal names the artifact as typed (the URI), not by its derived ref
            parsed, artifact = self.located(ref)
            return self._resolve(parsed, include_deleted, _Typed(artifact, ref))
        parsed = ref if isinstance(ref, Ref) else parse_ref(ref, default_project)
        return self._resolve(parsed, include_deleted, None)

    def _resolve(self, parsed: Ref, include_deleted: bool, typed: _Typed | None) -> VersionRecord:
        if parsed.as_of is not None:
            return self._resolve_then(parsed, parsed.as_of, include_deleted, typed)
        if parsed.index is not None:
            found = self.graph.get_versions([str(parsed)]).get(str(parsed))
        else:
            assert parsed.alias is not None
            found = self.graph.find_alias(parsed.project, parsed.name, parsed.alias)
        if found is None or (found.state != "committed" and not include_deleted):
            ref = typed.ref if typed else str(parsed)
            raise VersionNotFound(self._not_found(parsed, typed), ref=ref)
        return found

    def _resolve_then(
        self, ref: Ref, at: float, include_deleted: bool, typed: _Typed | None = None
    ) -> VersionRecord:
        """The version ``ref`` named at ``at``, as it was then (:mod:`lineage.history`)."""
        plain = dataclasses.replace(ref, as_of=None)
        said = _said(plain, typed)
        when = shown(at)
        if ref.alias is not None:
            found = history.alias_target(self.graph, ref.project, ref.name, ref.alias, at)
            if found is None:
                raise VersionNotFound(
                    f"{said} named no version at {when}", ref=typed.ref if typed else said
                )
        else:
            now = self.graph.get_versions([str(plain)]).get(str(plain))
            versions = self.graph.list_versions(ref.project, ref.name, include_deleted=True)
            events = self.graph.events(ref.project, target_prefix=f"{ref.project}/{ref.name}:")
            found = None if now is None else history.version_then(now, at, events, versions)
            if found is None:
                raise VersionNotFound(
                    f"{said} did not exist at {when}", ref=typed.ref if typed else said
                )
        if found.state != "committed" and not include_deleted:
            gone = _said(Ref(project=found.project, name=found.name, index=found.index), typed)
            raise VersionNotFound(f"{gone} was deleted at {when}", ref=typed.ref if typed else gone)
        return found

    def alias_history(self, ref: str, default_project: str | None = None) -> list[Event]:
        """Every move of an alias (``name:production``): moved, removed, or dropped with
        its version's deletion, oldest first."""
        parsed = parse_ref(ref, default_project)
        if parsed.alias is None:
            raise InvalidInput(f"{parsed} is not an alias ref (name:alias)", ref=ref)
        if self.graph.get_artifact(parsed.project, parsed.name) is None:
            raise VersionNotFound(self._not_found(parsed), ref=ref)
        return history.alias_events(self.graph, parsed.project, parsed.name, parsed.alias)

    def at_location(self, uri: str) -> Ref:
        """The ``latest`` ref of the artifact recorded at a storage location; with a
        selector after it (``s3://lake/clean/orders:v0``, ``...:production``: what the text
        views and pictures label a dataset version from OpenLineage with), that version."""
        return self.located(uri)[0]

    def located(self, uri: str) -> tuple[Ref, str]:
        """:meth:`at_location`'s ref, and the part of ``uri`` that names the artifact (all
        of it, or what comes before a selector)."""
        found = self.graph.find_locations([canonical(uri)]).get(canonical(uri))
        if found is not None:
            return Ref(project=found[0], name=found[1], alias="latest"), uri
        head, sign, moment = uri.rpartition("@")  # URI[:selector]@TIME: what it named then
        if sign and is_location(head):
            try:
                then = parse_time(moment)
            except InvalidInput:
                pass
            else:
                ref, artifact = self.located(head)
                return dataclasses.replace(ref, as_of=then), artifact
        head, colon, selector = uri.rpartition(":")
        if colon and is_location(head) and "/" not in selector:
            there = self.graph.find_locations([canonical(head)]).get(canonical(head))
            if there is not None:  # parse_ref checks the selector
                return parse_ref(f"{there[0]}/{there[1]}:{selector}"), head
        raise VersionNotFound(
            f"no artifact is recorded at {quoted(uri)}: log a reference to it, or let an "
            "OpenLineage job read or write it",
            ref=uri,
        )

    def latest(self, project: str, name: str) -> VersionRecord | None:
        """The newest live version of an artifact (its ``latest`` alias), or None."""
        return self.graph.find_alias(project, name, "latest")

    def _not_found(self, ref: Ref, typed: _Typed | None = None) -> str:
        artifact = self.graph.get_artifact(ref.project, ref.name)
        if artifact is None and typed is not None:
            return f"no artifact at {quoted(typed.artifact)}"
        if artifact is None:
            names = [a.name for a in self.graph.list_artifacts(ref.project)]
            close = difflib.get_close_matches(ref.name, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            return f"no artifact {ref.name!r} in project {ref.project!r}{hint}"
        versions = self.graph.list_versions(ref.project, ref.name, include_deleted=True)
        live = [v for v in versions if v.state == "committed"]
        if ref.index is not None and any(v.index == ref.index for v in versions):
            return f"{_said(ref, typed)} was deleted"
        target = ref.index if ref.index is not None else (live[-1].index if live else 0)
        nearest = sorted(live, key=lambda v: abs(v.index - target))[:3]
        listing = ", ".join(
            f"v{v.index}" + (f" ({', '.join(v.aliases)})" if v.aliases else "")
            for v in sorted(nearest, key=lambda v: v.index)
        )
        artifact_said = typed.artifact if typed else f"{ref.project}/{ref.name}"
        return f"{_said(ref, typed)} does not exist; nearest versions of {artifact_said}: " + (
            listing or "none"
        )

    def use(self, run_id: str, ref: str | Ref, role: str | None = None) -> VersionRecord:
        """Record that a run consumed a version: ``(version)-[:CONSUMED_BY]->(run)``.

        ``role`` (a name, e.g. ``base``: a base model of a merge) is kept in the run's
        facets, ``{"roles": {"base": [ref, ...]}}``, which :mod:`lineage.modelcard` reads.
        """
        if role is not None:
            check_name(role, "role")
        run = self.active_run(run_id)
        version = self.resolve(ref, run.project)
        if version.state != "committed":
            raise VersionNotFound(f"{version.ref} was deleted", ref=version.ref)
        if self.reaches(run.id, version.id, "down"):
            raise CycleError(
                f"run {run.name} ({run.id}) cannot consume {version.ref}: it, or a run "
                "downstream of it, produced that version, and lineage must stay acyclic",
                ref=version.ref,
                run_id=run.id,
            )
        self.graph.add_edges([Edge(source=version.id, target=run.id, kind="consumed_by")])
        if role is not None:
            roles = dict(run.facets.get("roles") or {})
            held = list(roles.get(role) or [])
            if version.id not in held:
                roles[role] = [*held, version.id]
                self.graph.update_run(run.id, {"facets": {**run.facets, "roles": roles}})
        return version

    def check_manifest(self, digest: str) -> Manifest:
        """Load a manifest and confirm every blob it needs is present (the commit precondition)."""
        return check_manifest(self.blobs, digest)

    def commit(
        self,
        run_id: str,
        *,
        name: str,
        type: str,
        manifest: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
    ) -> tuple[VersionRecord, bool]:
        """Commit a version whose manifest and blobs are already stored.

        Byte-identical content returns the existing version (``created`` False) and records the
        run as a producer too, unless that edge would close a cycle: then the fact goes to
        the event log instead. The existing version keeps its metadata and description: what
        the commit offered instead goes to its event log (``version.relogged``, see
        :func:`relog_offer`), and the SDK warns.
        """
        check_name(name, "artifact name")
        check_name(type, "artifact type")
        metadata = check_json(metadata, "metadata")
        aliases = [alias for alias in dict.fromkeys(map(check_alias, aliases)) if alias != "latest"]
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_TEXT
        ):
            raise InvalidInput(f"description must be a string of at most {MAX_TEXT} characters")
        check_text(description, "description")
        run = self.active_run(run_id)
        loaded = self.check_manifest(manifest)
        claimed = reference_locations(loaded)
        now = time.time()
        version, created = self.graph.commit_version(
            NewVersion(
                project=run.project,
                name=name,
                type=type,
                digest=manifest,
                size=loaded.size,
                file_count=len(loaded),
                metadata=metadata,
                description=description,
                run_id=run.id,
                at=now,
            )
        )
        if not created:
            if self.reaches(run.id, version.id, "up"):
                self.graph.append_events(
                    [
                        Event(
                            project=run.project,
                            target=version.id,
                            kind="version.reproduced",
                            at=now,
                            actor=run.id,
                            new={"run": run.id, "edge": False, "reason": "would close a cycle"},
                        )
                    ]
                )
            else:
                self.graph.add_edges([Edge(source=run.id, target=version.id, kind=PRODUCED)])
            offer = relog_offer(version, metadata, description)
            if offer:
                logger.info(
                    "%s re-logged by run %s; offered %s not applied", version.id, run.id, offer
                )
                self.graph.append_events(
                    [
                        Event(
                            project=run.project,
                            target=version.id,
                            kind="version.relogged",
                            at=now,
                            actor=run.id,
                            old={key: _current(version, key) for key in offer},
                            new={"run": run.id, **offer},
                        )
                    ]
                )
        if claimed:  # the storage this version references is this artifact
            self.graph.add_locations((uri, version.project, version.name) for uri in claimed)
        for alias in aliases:
            self._move_alias(version, alias, actor=run.id)
        if aliases:
            version = self.resolve(version.id)
        return version, created

    def set_alias(self, ref: str, alias: str, *, actor: str | None = None) -> VersionRecord:
        alias = check_alias(alias)
        if alias == "latest":
            raise InvalidInput("'latest' moves by itself to the newest version; it cannot be set")
        version = self.resolve(ref)
        self._move_alias(version, alias, actor=actor or self.actor)
        return self.resolve(version.id)

    def _move_alias(self, version: VersionRecord, alias: str, *, actor: str | None) -> None:
        current = self.graph.find_alias(version.project, version.name, alias)
        if current is not None and current.index == version.index:
            return
        event = Event(
            project=version.project,
            target=version.id,
            kind="alias.moved",
            at=time.time(),
            actor=actor or self.actor,
            old=None if current is None else {"alias": alias, "version": f"v{current.index}"},
            new={"alias": alias, "version": f"v{version.index}"},
        )
        self.graph.set_alias(version.project, version.name, alias, version.index, event)

    def remove_alias(
        self, project: str, name: str, alias: str, *, actor: str | None = None
    ) -> None:
        alias = check_alias(alias)
        if alias == "latest":
            raise InvalidInput("'latest' cannot be removed; delete the version instead")
        current = self.graph.find_alias(project, name, alias)
        if current is None:
            raise VersionNotFound(f"{project}/{name} has no alias {alias!r}", ref=alias)
        event = Event(
            project=project,
            target=current.id,
            kind="alias.removed",
            at=time.time(),
            actor=actor or self.actor,
            old={"alias": alias, "version": f"v{current.index}"},
        )
        self.graph.set_alias(project, name, alias, None, event)

    def update_version(
        self,
        ref: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> VersionRecord:
        version = self.resolve(ref)
        changes: dict[str, Any] = {}
        events = []
        now = time.time()
        if metadata is not None:
            new = check_json(metadata, "metadata")
            if new != dict(version.metadata):
                changes["metadata"] = new
                events.append(
                    Event(
                        project=version.project,
                        target=version.id,
                        kind="metadata.updated",
                        at=now,
                        actor=actor or self.actor,
                        old=dict(version.metadata),
                        new=new,
                    )
                )
        if description is not None:
            if not isinstance(description, str) or len(description) > MAX_TEXT:
                raise InvalidInput(f"description must be a string of at most {MAX_TEXT} characters")
            check_text(description, "description")
            if description != version.description:
                changes["description"] = description
                events.append(
                    Event(
                        project=version.project,
                        target=version.id,
                        kind="description.updated",
                        at=now,
                        actor=actor or self.actor,
                        old=version.description,
                        new=description,
                    )
                )
        if not changes:
            return version
        return self.graph.update_version(version.id, changes, events)

    def delete_version(
        self, ref: str, *, force: bool = False, actor: str | None = None
    ) -> VersionRecord:
        version = self.resolve(ref)
        held = [alias for alias in version.aliases if alias != "latest"]
        if held and not force:
            raise AliasedVersion(
                f"{version.ref} holds alias(es) {', '.join(held)}: move them first or force",
                ref=version.ref,
            )
        self.graph.delete_version(
            version.id,
            Event(
                project=version.project,
                target=version.id,
                kind="version.deleted",
                at=time.time(),
                actor=actor or self.actor,
                old={"aliases": list(version.aliases), "digest": version.digest},
            ),
        )
        return version

    def events(self, ref: str, default_project: str | None = None) -> list[Event]:
        """The event log of a version (``name:v3``) or of a whole artifact (``name``)."""
        if ":" in ref:
            version = self.resolve(ref, default_project, include_deleted=True)
            found = self.graph.events(version.project, target_prefix=version.id)
            return [event for event in found if event.target == version.id]
        parsed = parse_ref(ref, default_project)
        if self.graph.get_artifact(parsed.project, parsed.name) is None:
            raise VersionNotFound(self._not_found(parsed), ref=ref)
        return self.graph.events(parsed.project, target_prefix=f"{parsed.project}/{parsed.name}:")

    def manifest(self, version: VersionRecord) -> Manifest:
        return read_manifest(self.blobs, version.digest)

    def artifacts(
        self, project: str | None = None, *, type: str | None = None
    ) -> list[ArtifactRecord]:
        check_text(type, "type")
        return self.graph.list_artifacts(project, type=type)

    def get_artifact(self, project: str, name: str) -> ArtifactRecord:
        artifact = self.graph.get_artifact(check_name(project, "project"), check_name(name))
        if artifact is None:
            raise VersionNotFound(self._not_found(Ref(project=project, name=name, alias="latest")))
        return artifact

    def versions(
        self,
        project: str,
        name: str,
        *,
        include_deleted: bool = False,
        limit: int | None = None,
        after: int | None = None,
        newest_first: bool = False,
    ) -> list[VersionRecord]:
        """An artifact's versions, oldest (or newest) first; ``after`` the index of the last
        one of the previous page."""
        check_name(project, "project")
        check_name(name, "artifact name")
        return self.graph.list_versions(
            project,
            name,
            include_deleted=include_deleted,
            limit=limit,
            after=after,
            newest_first=newest_first,
        )

    def count_versions(self, project: str, name: str, *, include_deleted: bool = False) -> int:
        return self.graph.count_versions(project, name, include_deleted=include_deleted)

    def aliases(self, project: str, name: str) -> list[tuple[str, VersionRecord]]:
        """An artifact's aliases, by name, each with the version it names."""
        return self.graph.list_aliases(project, name)

    def artifact_summaries(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, list[tuple[str, VersionRecord]]]]:
        """:meth:`count_versions` and :meth:`aliases` of each artifact of ``keys`` (project,
        name), in one or two store round trips for all of them."""
        wanted = list(keys)
        return self.graph.artifact_summaries(wanted) if wanted else {}

    def runs(
        self,
        project: str | None = None,
        *,
        job_type: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        """Runs oldest first (by ``started_at``, then id); ``after`` the ``(started_at, id)``
        of the last run of the previous page."""
        check_text(job_type, "job_type")
        return self.graph.list_runs(
            project, job_type=job_type, state=state, limit=limit, after=after
        )

    def count_runs(
        self, project: str, *, job_type: str | None = None, state: str | None = None
    ) -> int:
        check_text(job_type, "job_type")
        return self.graph.count_runs(project, job_type=job_type, state=state)

    def count_project_runs(
        self, projects: Iterable[str], *, job_type: str | None = None, state: str | None = None
    ) -> dict[str, int]:
        """:meth:`count_runs` of each project, in one store round trip for all of them."""
        check_text(job_type, "job_type")
        wanted = list(projects)
        if not wanted:
            return {}
        return self.graph.count_project_runs(wanted, job_type=job_type, state=state)

    def find_runs(
        self,
        project: str | None = None,
        *,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[RunRecord]:
        """Runs passing ``filter`` (:mod:`lineage.filters`), in ``order_by`` (default
        ``created``) then by id; ``after`` the sort key (:func:`find_key`) of the previous
        page's last."""
        where = None if filter is None else parse(filter, "runs")
        order = parse_order(order_by or "created", "runs")
        if project is not None:
            check_name(project, "project")
        return self.graph.find_runs(project, where, order, limit=limit, after=_check_key(after))

    def find_versions(
        self,
        project: str | None = None,
        *,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[VersionRecord]:
        """Versions passing ``filter`` (deleted ones too: ``state = committed`` leaves them
        out), as :meth:`find_runs`."""
        where = None if filter is None else parse(filter, "versions")
        order = parse_order(order_by or "created", "versions")
        if project is not None:
            check_name(project, "project")
        return self.graph.find_versions(project, where, order, limit=limit, after=_check_key(after))

    def count_found_runs(self, project: str | None = None, *, filter: str | None = None) -> int:
        """How many runs :meth:`find_runs` finds (every page), counted by the store."""
        where = None if filter is None else parse(filter, "runs")
        if project is not None:
            check_name(project, "project")
        return self.graph.count_found_runs(project, where)

    def count_found_versions(self, project: str | None = None, *, filter: str | None = None) -> int:
        """How many versions :meth:`find_versions` finds (every page)."""
        where = None if filter is None else parse(filter, "versions")
        if project is not None:
            check_name(project, "project")
        return self.graph.count_found_versions(project, where)

    def get_runs(self, ids: Iterable[str]) -> dict[str, RunRecord]:
        return self.graph.get_runs(list(ids))

    def child_runs(self, run_id: str) -> list[RunRecord]:
        """The runs whose parent is ``run_id`` (an OpenLineage DAG run's tasks), oldest first."""
        return self.graph.child_runs(run_id)

    def _descendant_runs(self, run_id: str) -> list[str]:
        """Every run below ``run_id`` by parent links (children, their children, ...)."""
        found: list[str] = []
        frontier = [run_id]
        seen = {run_id}
        while frontier and len(found) < MAX_CHILD_RUNS:
            level = [c.id for r in frontier for c in self.graph.child_runs(r) if c.id not in seen]
            seen.update(level)
            found += level
            frontier = level
        return found

    def projects(self) -> list[str]:
        return self.graph.list_projects()

    def sent_projects(self, projects: Iterable[str]) -> dict[str, str]:
        """Each project's name as sent: the OpenLineage namespace of its jobs (a run's) or of
        its datasets (its first artifact's latest version), else the project itself; one
        store round trip for all (:meth:`GraphStore.project_samples`)."""
        wanted = list(projects)
        samples = self.graph.project_samples(wanted) if wanted else {}
        named: dict[str, str] = {}
        for project in wanted:
            sample = samples.get(project)
            came = None
            if isinstance(sample, RunRecord):
                came = sent.project_name(sample)
            elif sample is not None:
                dataset = sent.dataset_name(sample.metadata)
                came = dataset[0] if dataset is not None else None
            named[project] = came or project
        return named

    def producers(self, version: VersionRecord) -> list[RunRecord]:
        runs = [e.source for e in self.graph.expand([version.id], "up")]
        found = self.graph.get_runs(runs)
        return sorted(found.values(), key=lambda r: r.started_at)

    def consumers(self, version: VersionRecord) -> list[RunRecord]:
        runs = [e.target for e in self.graph.expand([version.id], "down")]
        found = self.graph.get_runs(runs)
        return sorted(found.values(), key=lambda r: r.started_at)

    def consumer_page(
        self, version: VersionRecord, *, first: int, after: str | None = None
    ) -> tuple[list[RunRecord], int]:
        """At most ``first`` of the runs that consumed a version, by id after the run id
        ``after``, and how many consumed it in all: the records of one page, however many
        runs read it (a shared dataset of a 100,000-run sweep)."""
        ids = sorted({e.target for e in self.graph.expand([version.id], "down")})
        start = 0 if after is None else bisect.bisect_right(ids, after)
        shown = ids[start : start + first]
        found = self.graph.get_runs(shown) if shown else {}
        return [found[i] for i in shown if i in found], len(ids)

    def consumed(self, ids: Sequence[str]) -> set[str]:
        """Which of these versions some run consumed (one round trip)."""
        return {edge.source for edge in self.graph.expand(list(ids), "down")}

    def run_io(self, run_id: str) -> tuple[list[VersionRecord], list[VersionRecord]]:
        """The versions a run consumed and produced."""
        inputs = [e.source for e in self.graph.expand([run_id], "up")]
        outputs = [e.target for e in self.graph.expand([run_id], "down")]
        found = self.graph.get_versions([*inputs, *outputs])
        return [found[i] for i in inputs if i in found], [found[o] for o in outputs if o in found]

    # traversals: refs resolved here, walked by node id in lineage.traversal ---------------

    def node_id(self, start: str, default_project: str | None = None) -> tuple[str, str]:
        """Resolve a ref or a run id to ``(node id, kind)``; a deleted version too (its
        lineage stays)."""
        bare = start.partition("@")[0]
        if ":" not in bare and "/" not in bare:
            run = self.graph.get_runs([bare]).get(bare)
            if run is not None:
                at = _as_of(start)
                if at is not None and run.started_at > at:
                    raise RunNotFound(f"run {bare} had not started at {shown(at)}", run_id=bare)
                return bare, "run"
            if default_project is None:
                try:
                    parse_ref(start, default_project)
                except InvalidInput:
                    raise RunNotFound(
                        f"{start!r} is neither a run id nor a ref with a project", run_id=start
                    ) from None
        return self.resolve(start, default_project, include_deleted=True).id, "artifact_version"

    def lineage(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        default_project: str | None = None,
    ) -> Subgraph:
        """Runs and versions upstream, downstream or both ways of a version or run."""
        ways = check_direction(direction)
        depth = check_depth(depth)
        named = _indexed_ref(start, default_project)
        if named is not None:
            # a ref by index (project/name:v3) is walked at once: the start's own record in
            # the answer proves the version exists (one round trip, not two, on a server)
            walked = self.traversal.lineage(named, direction, depth)
            if any(n.id == named for n in walked.nodes):
                return walked
        node, kind = self.node_id(start, default_project)
        at = _as_of(start)
        if at is not None:  # the graph as it was (lineage.history)
            hops = None if depth is None else 2 * depth - (0 if ":" in node else 1)
            return history.walk_then(self.graph, node, ways, hops, at)
        answer = self.traversal.lineage(node, direction, depth)
        children = self._descendant_runs(node) if kind == "run" else []
        if not children:
            return answer
        # a parent run's lineage covers its tasks': theirs, merged into its own
        parts = [answer, *(self.traversal.lineage(c, direction, depth) for c in children)]
        found = {
            **{n.id: n for part in parts for n in part.nodes},
            **{n.id: n for n in answer.nodes},
        }
        edges = dict.fromkeys(e for part in parts for e in part.edges)
        return Subgraph(
            nodes=tuple(found.values()),
            edges=tuple(edges),
            truncated=any(part.truncated for part in parts),
            root=answer.root,
        )

    def impact(self, ref: str, *, default_project: str | None = None) -> Subgraph:
        """Every run and version downstream of a version: what a bad dataset touched."""
        node, _ = self.node_id(ref, default_project)
        at = _as_of(ref)
        if at is not None:
            return history.walk_then(self.graph, node, check_direction("downstream"), None, at)
        return self.traversal.impact(node)

    def tree(
        self, ref: str, depth: int | None = 20, *, default_project: str | None = None
    ) -> Subgraph:
        """The derivation view under a version: ``a -> b`` labelled by the run that did it."""
        depth = check_depth(depth)
        node, kind = self.node_id(ref, default_project)
        if kind != "artifact_version":
            raise InvalidInput(f"a derivation tree starts at a version, not run {ref!r}")
        at = _as_of(ref)
        if at is not None:
            walked = history.walk_then(
                self.graph,
                node,
                check_direction("downstream"),
                None if depth is None else 2 * depth,
                at,
            )
            rows = [(e.source, e.target, e.kind) for e in walked.edges]
            versions = {n.id: n.version for n in walked.nodes if n.version is not None}
            return derived_answer(
                versions, derived_triples(rows), truncated=walked.truncated, root=node
            )
        return self.traversal.tree(node, depth)

    def path(
        self, source: str, target: str, *, default_project: str | None = None
    ) -> Subgraph | None:
        """Every node on some path between two nodes (either way round), or None."""
        if "@" in source or "@" in target:
            raise InvalidInput("path does not answer as of a time; ask lineage REF@TIME")
        a, _ = self.node_id(source, default_project)
        b, _ = self.node_id(target, default_project)
        return self.traversal.path(a, b)

    def reaches(self, source: str, target: str, direction: Direction) -> bool:
        """Whether node ``target`` is reachable from node ``source`` (the cycle check)."""
        return self.traversal.reaches(source, target, direction)

    # big answers in pages (lineage.pages) -------------------------------------------------

    def lineage_page(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Page:
        """One page of :meth:`lineage`: ``first`` nodes after the cursor ``after``, by
        generation then id, with the edges completed on it (:mod:`lineage.pages`)."""
        return self.paused.page(
            ("lineage", start, direction, depth, first, default_project),
            after,
            lambda: self.lineage_pages(
                start, direction, depth, first=first, after=after, default_project=default_project
            ),
        )

    def lineage_pages(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Iterator[Page]:
        """Every page of :meth:`lineage` from ``after`` on, walked once: it holds one level
        of ids (and the ids seen) between pages, never the records of the whole answer."""
        ways = check_direction(direction)
        depth = check_depth(depth)
        first = check_first(first)
        node, kind = self.node_id(start, default_project)
        at = _as_of(start)
        question: list[Any] = [direction, node if at is None else f"{node}@{at!r}", depth]
        if after is not None:
            read_cursor(after, question)
        if at is not None or (kind == "run" and self._descendant_runs(node)):
            # as of a time, or a parent run's merged lineage: paged from the whole answer
            whole = self.lineage(start, direction, depth, default_project=default_project)
            cut = classify(whole, store=self, mode=direction, depth=depth).truncated  # type: ignore[arg-type]
            return answer_pages(question, whole, ways, first=first, after=after, cut=cut)
        hops = None if depth is None else 2 * depth - (0 if ":" in node else 1)
        expand = self.traversal.expand_rows
        starts = [([node], lineage_steps(expand, way)) for way in ways]
        return walk_pages(
            question, starts, hops, self._page_records, first=first, after=after, root=node
        )

    def lineage_count(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        default_project: str | None = None,
        cap: int | None = None,
    ) -> int:
        """How many nodes the pages of this lineage hold: a walk of ids, no records (asked
        apart from the pages so that the first page never waits for it). ``cap``: stop
        counting past it, and say ``cap + 1`` ("more than cap": bounded work)."""
        ways = check_direction(direction)
        depth = check_depth(depth)
        node, kind = self.node_id(start, default_project)
        if _as_of(start) is not None or (kind == "run" and self._descendant_runs(node)):
            whole = self.lineage(start, direction, depth, default_project=default_project)
            return capped(len(whole.nodes), cap)
        hops = None if depth is None else 2 * depth - (0 if ":" in node else 1)
        expand = self.traversal.expand_rows
        starts = [([node], lineage_steps(expand, way)) for way in ways]
        return count_nodes(starts, hops, cap=cap)

    def tree_page(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Page:
        """One page of :meth:`tree`: ``first`` versions after the cursor ``after``, by
        generation then id, with the derived edges completed on it."""
        return self.paused.page(
            ("tree", ref, depth, first, default_project),
            after,
            lambda: self.tree_pages(
                ref, depth, first=first, after=after, default_project=default_project
            ),
        )

    def tree_pages(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Iterator[Page]:
        """Every page of :meth:`tree` from ``after`` on, walked once."""
        depth = check_depth(depth)
        first = check_first(first)
        node, kind = self.node_id(ref, default_project)
        if kind != "artifact_version":
            raise InvalidInput(f"a derivation tree starts at a version, not run {ref!r}")
        at = _as_of(ref)
        question: list[Any] = ["tree", node if at is None else f"{node}@{at!r}", depth]
        if after is not None:
            read_cursor(after, question)
        if at is not None:
            whole = self.tree(ref, depth, default_project=default_project)
            cut = classify(whole, store=self, mode="tree", depth=depth).truncated
            return answer_pages(question, whole, None, first=first, after=after, cut=cut)
        starts = [([node], tree_steps(self.traversal.expand_rows, self._derive()))]
        return walk_pages(
            question,
            starts,
            depth,
            self._page_records,
            first=first,
            after=after,
            derived=True,
            gated=True,
            root=node,
        )

    def tree_count(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        default_project: str | None = None,
        cap: int | None = None,
    ) -> int:
        """How many versions the pages of this derivation tree hold (a walk of ids); ``cap``
        as for :meth:`lineage_count`."""
        depth = check_depth(depth)
        node, kind = self.node_id(ref, default_project)
        if kind != "artifact_version":
            raise InvalidInput(f"a derivation tree starts at a version, not run {ref!r}")
        if _as_of(ref) is not None:
            return capped(len(self.tree(ref, depth, default_project=default_project).nodes), cap)
        starts = [([node], tree_steps(self.traversal.expand_rows, self._derive()))]
        return count_nodes(starts, depth, gated=True, cap=cap)

    def _derive(self) -> Callable[[list[str]], list[tuple[str, str | None, str]]] | None:
        """The store's ``derive_rows``, if it has one (lineage.storage.graph)."""
        return self.graph.derive_rows if isinstance(self.graph, DeriveRows) else None

    def _page_records(
        self, ids: list[str]
    ) -> tuple[dict[str, VersionRecord], dict[str, RunRecord]]:
        versions, runs = split_ids(ids)
        with paused_gc():
            return (
                self.graph.get_versions(versions) if versions else {},
                self.graph.get_runs(runs) if runs else {},
            )

    # garbage -------------------------------------------------------------------------------

    def gc(self, *, dry_run: bool = False, grace: float = 3600.0) -> GcReport:
        """Remove blobs that no live version's manifest references.

        Blobs younger than ``grace`` seconds are kept: they may belong to a version whose
        blobs are stored but whose commit has not landed yet. A local blob store's temporary
        files older than ``grace`` (what killed writers left) go too; a file still being
        written is never older than a minute (``TEMP_MIN_AGE``) and is left alone.
        """
        live: set[str] = set()
        for digest in self.graph.manifest_digests():
            try:
                live |= manifest_digests(self.blobs, digest)
                live |= read_manifest(self.blobs, digest).blob_digests()
            except Exception:  # noqa: BLE001 - a broken manifest keeps what it might reference
                logger.warning("manifest %s is unreadable; gc keeps everything", digest)
                return GcReport(blobs_total=0, blobs_live=0, blobs_removed=0, dry_run=True)
        everything = set(self.blobs.digests(older_than=grace))
        young = len(set(self.blobs.digests()) - everything)
        dead = everything - live
        removed = 0 if dry_run else self.blobs.delete(dead)
        temps = temp_bytes = 0
        if isinstance(self.blobs, LocalBlobStore):
            temps, temp_bytes = self.blobs.temporaries(grace, remove=not dry_run)
        return GcReport(
            blobs_total=len(everything),
            blobs_live=len(everything & live),
            blobs_removed=removed if not dry_run else len(dead),
            dry_run=dry_run,
            temps_removed=temps,
            temp_bytes=temp_bytes,
            blobs_young=young,
        )


def _indexed_ref(start: str, default_project: str | None) -> str | None:
    """The version id a ref by index names (``name:v3`` -> ``project/name:v3``); None for
    anything else (an alias, a run id, a storage URI, a ref as of a time, a bad ref)."""
    if ":v" not in start or "@" in start or is_location(start):
        return None
    try:
        parsed = parse_ref(start, default_project)
    except InvalidInput:
        return None
    return str(parsed) if parsed.index is not None else None


def _as_of(ref: str) -> float | None:
    """The time of ``REF@TIME`` (or ``RUN@TIME``), None without one."""
    if "@" not in ref:
        return None
    return parse_time(ref.partition("@")[2])


def find_key(order_by: str | None, record: RunRecord | VersionRecord) -> list[Any]:
    """A found record's sort key under ``order_by``: what ``after`` takes to page on."""
    target: Target = "runs" if isinstance(record, RunRecord) else "versions"
    return [*order_key(parse_order(order_by or "created", target), record), record.id]


def _check_key(after: Sequence[Any] | None) -> list[Any] | None:
    if after is None:
        return None
    key = list(after)
    if (
        len(key) != 3
        or key[0] not in (0, 1, 2)
        or not isinstance(key[2], str)
        or not isinstance(key[1], int | float | str)
        or isinstance(key[1], bool)
    ):
        raise InvalidInput("invalid cursor for this list: pass an endCursor from a page")
    return key


def check_active(run: RunRecord) -> RunRecord:
    """The run, if it is still running: only a running run may log."""
    if run.state != "running":
        raise RunNotActive(
            f"run {run.name} ({run.id}) is {run.state}; start a new run to log more",
            run_id=run.id,
        )
    return run


def check_manifest(blobs: BlobStore, digest: str) -> Manifest:
    """Load a manifest and confirm every blob it needs is in ``blobs``."""
    check_digest(digest)
    if blobs.missing([digest]):
        raise IntegrityError(
            f"manifest {digest} is not in the blob store {blobs.url}", digest=digest
        )
    manifest = read_manifest(blobs, digest)
    missing = blobs.missing(manifest.blob_digests())
    if missing:
        paths = sorted(e.path for e in manifest if e.digest in missing)
        raise IntegrityError(
            f"{len(missing)} blob(s) of the manifest are not in {blobs.url}, "
            f"e.g. {paths[0]!r}: upload them before committing",
            digest=digest,
        )
    return manifest


def relog_offer(
    version: VersionRecord, metadata: Mapping[str, Any] | None, description: str | None
) -> dict[str, Any]:
    """What a commit of ``version``'s exact bytes offered that the version does not say.

    ``{"metadata": ..., "description": ...}``, each only when given and different from the
    version's own; empty when nothing offered is lost (a plain reproduction).
    """
    offer: dict[str, Any] = {}
    if metadata and dict(metadata) != dict(version.metadata):
        offer["metadata"] = dict(metadata)
    if description is not None and description != version.description:
        offer["description"] = description
    return offer


def _current(version: VersionRecord, key: str) -> Any:
    return dict(version.metadata) if key == "metadata" else version.description


def local_user() -> str | None:
    """This process's OS user, what a local change records as its actor."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
