"""Set-based storing of a group of OpenLineage run events (SQLite).

:func:`~lineage.openlineage.ingest.ingest` stores an event with ~25 statements of its own.
Here the group's events are mapped by the same rules (:class:`~lineage.openlineage.ingest._Run`
parses an event, decides its run's changes and its datasets' identities) against the state
the group reads in a few statements (its runs and their edges, its artifacts, the storage
locations it names; versions by digest and the newest of an input's artifact as asked),
which each event updates in memory for the next: an input binds to a version an earlier
event of the group produced, a run's second event sees its first. Then the group's new
runs, versions, aliases and edges go in with one ``import_records``, its changed runs with
one ``update_runs``, its locations with one ``add_locations``. A store with ``group_state``
and ``write_planned`` (Neo4j: :mod:`lineage.storage.neo4j.state`) reads all of that state,
and the versions the group will look up, in one call, and writes in one.

- An event refused while mapped changes nothing: its changes to the group's state are undone
  (a journal), its manifests forgotten; the next event sees the state without it.
- What the plan does not cover is stored as before, by ``ingest``, after the writes planned
  so far (then the state is read again): a dataset or job event; an input newly bound to a
  run that has edges already (its edge needs the cycle check's walk); an output version
  stored before by another run; an input observed beside deleted versions.
- If the group's writes fail, they are undone (a savepoint) and the events they came from
  are stored again one by one, as they would be alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from lineage.errors import LineageError, TypeMismatch
from lineage.openlineage.ingest import (
    _SCAN,
    Ingested,
    _Dataset,
    _Run,
    bound,
    ingest,
    version_changes,
)
from lineage.openlineage.validation import event_kind
from lineage.records import CONSUMED_BY, PRODUCED, ArtifactRecord, Edge, RunRecord, VersionRecord
from lineage.service import Service

__all__ = ["ingest_planned"]

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (project, artifact)
Artifact = tuple[str, int, int | None, float | None]  # type, next index, newest index, its time


class _Fallback(Exception):
    """The plan does not cover this event: ``ingest`` stores it."""


class _Stale(Exception):
    """The group's writes met rows the group did not read: stored again, event by event."""


_MISSING = object()
_ADDED = object()
_APPENDED = object()


class _Journal:
    """Changes to the group's state, undone when the event making them is refused."""

    def __init__(self) -> None:
        self.undo: list[tuple[Any, Any, Any]] = []

    def put(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        self.undo.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def add(self, items: set[Any], item: Any) -> None:
        if item not in items:
            items.add(item)
            self.undo.append((items, item, _ADDED))

    def set(self, items: list[Any], i: int, item: Any) -> None:
        self.undo.append((items, i, items[i]))
        items[i] = item

    def append(self, items: list[Any], item: Any) -> None:
        items.append(item)
        self.undo.append((items, None, _APPENDED))

    def commit(self) -> None:
        self.undo.clear()

    def rollback(self) -> None:
        for target, key, old in reversed(self.undo):
            if old is _ADDED:
                target.discard(key)
            elif old is _APPENDED:
                target.pop()
            elif old is _MISSING:
                del target[key]
            else:
                target[key] = old
        self.undo.clear()


class _Plan:
    """The group's state as read, and as its mapped events change it; what to write."""

    def __init__(self, service: Service, graph: Any) -> None:
        self.service = service
        self.graph = graph
        self.journal = _Journal()
        self._pending()

    def _pending(self) -> None:
        self.new_runs: set[str] = set()
        self.changed: dict[str, dict[str, Any]] = {}
        self.versions: list[VersionRecord] = []
        self.edges: list[Edge] = []
        self.metadata: dict[str, dict[str, Any]] = {}  # changes of stored versions, by id
        self.claims: list[tuple[str, str, str]] = []

    def load(self, runs: Sequence[_Run]) -> None:
        """The state ``runs`` read, in a few statements."""
        ids = list(dict.fromkeys(run.id for run in runs))
        written = [dataset for run in runs for dataset in run.outputs]
        datasets = written + [dataset for run in runs for dataset in run.inputs]
        keys: list[Key] = [(dataset.project, dataset.artifact) for dataset in datasets]
        uris = [uri for dataset in datasets if (uri := dataset.location) is not None]
        graph = self.graph
        self.by_digest: dict[tuple[str, str, str], VersionRecord | None] = {}
        self.recent: dict[Key, list[VersionRecord]] = {}
        read = getattr(graph, "group_state", None)  # all of it in one statement (Neo4j)
        if read is not None:
            digests, newest = _foreseen(runs)
            # locked: what the group writes (an input it must make a version of is locked
            # by the write, and a clash with another writer's version found there: _Stale)
            state = read(
                uris, keys, ids, digests=digests, newest=newest, scan=_SCAN,
                writes=keys[: len(written)],
                write_uris=[uri for dataset in written if (uri := dataset.location) is not None],
            )  # fmt: skip
            self.locations, found, runs_found = state.locations, state.artifacts, state.runs
            up, down = state.ups, state.downs
            keys.extend(self.locations.values())
            # what with_digest and newest would read, for the keys they will be asked
            for uri, project, name, digest in digests:
                key = self.locations.get(uri, (project, name)) if uri else (project, name)
                if key in found:
                    self.by_digest[(*key, digest)] = state.digested.get((*key, digest))
            self.recent.update(state.newest)
        else:
            self.locations = graph.find_locations(uris) if uris else {}
            keys.extend(self.locations.values())
            found = graph.artifact_states(keys) if keys else {}
        self.artifacts: dict[Key, Artifact | None] = {key: found.get(key) for key in keys}
        self.runs: dict[str, RunRecord | None] = dict.fromkeys(ids)
        self.runs.update((runs_found if read is not None else graph.get_runs(ids)) if ids else {})
        stored = [i for i, run in self.runs.items() if run is not None]
        self.ups: dict[str, set[str]] = {i: set() for i in stored}
        self.downs: dict[str, set[str]] = {i: set() for i in stored}
        if read is None:
            up = [(s, t) for s, t, _ in graph.expand_rows(stored, "up")]
            down = [(s, t) for s, t, _ in graph.expand_rows(stored, "down")]
        for source, target in up:
            self.ups[target].add(source)
        for source, target in down:
            self.downs[source].add(target)

    # the state, read where the load did not ------------------------------------------------

    def artifact(self, key: Key) -> Artifact | None:
        if key not in self.artifacts:
            self.artifacts[key] = self.graph.artifact_states([key]).get(key)
        return self.artifacts[key]

    def artifact_record(self, project: str, name: str) -> ArtifactRecord | None:
        found = self.artifact((project, name))
        return ArtifactRecord(project=project, name=name, type=found[0]) if found else None

    def with_digest(self, key: Key, digest: str) -> VersionRecord | None:
        wanted = (*key, digest)
        if wanted not in self.by_digest:
            found = None
            if self.artifact(key) is not None:
                found = self.graph.versions_with_digests([wanted]).get(wanted)
            self.by_digest[wanted] = found
        return self.by_digest[wanted]

    def newest(self, key: Key) -> list[VersionRecord]:
        if key not in self.recent:
            versions = []
            if self.artifact(key) is not None:
                versions = self.graph.list_versions(*key, newest_first=True, limit=_SCAN)
                made = [v for v in self.versions if (v.project, v.name) == key]
                if made:  # not written yet
                    versions = sorted([*made, *versions], key=lambda v: -v.index)[:_SCAN]
            self.recent[key] = versions
        return self.recent[key]

    def _made(self, version: VersionRecord) -> None:
        """A version the group makes, in the state and in what to write."""
        key = (version.project, version.name)
        j = self.journal
        found = self.artifact(key)
        top, at = (found[2], found[3]) if found else (None, None)
        if top is None or version.index > top:
            top, at = version.index, version.created_at
        kind = found[0] if found else version.type
        j.put(
            self.artifacts, key, (kind, max(found[1] if found else 0, version.index + 1), top, at)
        )
        j.put(self.by_digest, (*key, version.digest), version)
        if key in self.recent:
            newer = sorted([version, *self.recent[key]], key=lambda v: -v.index)
            j.put(self.recent, key, newer[:_SCAN])
        j.append(self.versions, version)

    # an event ------------------------------------------------------------------------------

    def event(self, event: _Run) -> Ingested:
        """Map ``event`` onto the state (raises what refuses it, or _Fallback)."""
        datasets = [*event.outputs, *event.inputs]
        if any(dataset.aliases or dataset.tags for dataset in datasets):
            raise _Fallback  # aliases and tags as lineage's export gave them: by the service
        for dataset in datasets:
            dataset.check(self.locations, self.artifact_record)
        run, fresh = self._run(event)
        outputs = self._outputs(event, fresh)
        inputs = self._inputs(event, fresh, {v.id for v in outputs})
        for claim in (claim for d in datasets for claim in d.claim):
            self.journal.append(self.claims, claim)
            if claim[0] not in self.locations:
                self.journal.put(self.locations, claim[0], claim[1:])
        return Ingested(run=run, inputs=tuple(inputs), outputs=tuple(outputs))

    def _run(self, event: _Run) -> tuple[RunRecord, bool]:
        j = self.journal
        existing = self.runs.get(event.id, _MISSING)
        if existing is _MISSING:
            raise _Fallback  # not loaded (cannot happen: every event's run is)
        if existing is None:
            fresh = event.record()
            j.put(self.runs, event.id, fresh)
            j.add(self.new_runs, event.id)
            j.put(self.ups, event.id, set())
            j.put(self.downs, event.id, set())
            return fresh, True
        assert isinstance(existing, RunRecord)
        changes = event.changes(existing)
        if not changes:
            return existing, False
        updated = dataclasses.replace(existing, **changes)
        j.put(self.runs, event.id, updated)
        if event.id not in self.new_runs:
            j.put(self.changed, event.id, {**self.changed.get(event.id, {}), **changes})
        return updated, False

    def _outputs(self, event: _Run, fresh: bool) -> list[VersionRecord]:
        made = set(self.downs[event.id])
        found = []
        for dataset in event.outputs:
            digest = dataset.manifest(self.service, event.id)
            key = (dataset.project, dataset.artifact)
            artifact = self.artifact(key)
            if artifact is not None:
                if artifact[0] != dataset.type:
                    raise TypeMismatch(
                        f"artifact {key[0]}/{key[1]} has type {artifact[0]!r}, "
                        f"not {dataset.type!r}",
                        artifact=f"{key[0]}/{key[1]}",
                    )
                stored = self.with_digest(key, digest)
                if stored is not None:
                    if stored.id not in made:
                        raise _Fallback  # its edge needs the cycle check's walk
                    found.append(self._merge_metadata(stored, dataset, event.at))
                    continue
            at = max(event.at, time.time())
            index = 0
            if artifact is not None:
                index = artifact[1]
                if artifact[3] is not None:
                    at = max(at, artifact[3])
            version = VersionRecord(
                project=key[0], name=key[1], type=dataset.type, index=index, digest=digest,
                size=dataset.size, file_count=1, metadata=dataset.metadata, aliases=("latest",),
                description=dataset.description,
                created_by=event.id, created_at=at, event_at=dataset.made_at(event.at),
            )  # fmt: skip
            self._made(version)
            self.journal.append(self.edges, Edge(source=event.id, target=version.id, kind=PRODUCED))
            self.journal.add(self.downs[event.id], version.id)
            found.append(version)
        return found

    def _merge_metadata(
        self, version: VersionRecord, dataset: _Dataset, at: float
    ) -> VersionRecord:
        changes = version_changes(version, dataset, at)
        if not changes:
            return version
        version = dataclasses.replace(version, **changes)
        j = self.journal
        key = (version.project, version.name)
        made = [i for i, v in enumerate(self.versions) if v.id == version.id]
        if made:  # not written yet: written as it is now
            j.set(self.versions, made[0], version)
        else:
            j.put(self.metadata, version.id, {**self.metadata.get(version.id, {}), **changes})
        if key in self.recent:  # what a later input of the group binds to sees its time
            j.put(
                self.recent, key, [version if v.id == version.id else v for v in self.recent[key]]
            )
        j.put(self.by_digest, (*key, version.digest), version)
        return version

    def _inputs(self, event: _Run, fresh: bool, outputs: set[str]) -> list[VersionRecord]:
        used = set(self.ups[event.id])
        used_artifacts = {version.rpartition(":")[0] for version in used}
        found = []
        edges = []
        for dataset in event.inputs:
            key = f"{dataset.project}/{dataset.artifact}"
            if dataset.named_version is None and key in used_artifacts:
                continue  # bound by an earlier event of this run
            version = self._bind(event, dataset)
            if version.id in outputs or version.id in used:
                found.append(version)
                continue
            # a fresh run reaches only its new outputs, which nothing consumes yet: no cycle
            if not fresh:
                raise _Fallback  # the cycle check's walk
            edges.append(Edge(source=version.id, target=event.id, kind=CONSUMED_BY))
            found.append(version)
        for edge in edges:
            self.journal.append(self.edges, edge)
            self.journal.add(self.ups[event.id], edge.source)
        return found

    def _bind(self, event: _Run, dataset: _Dataset) -> VersionRecord:
        key = (dataset.project, dataset.artifact)
        if dataset.named_version is None:
            versions = self.newest(key)
            found, newer = bound(versions, event.id, event.at)
            if found is not None:
                return found
            return self._observed(dataset, event.at, empty=not versions, newer=newer)
        return self._observed(dataset, event.at, empty=False)

    def _observed(
        self, dataset: _Dataset, at: float, *, empty: bool, newer: bool = False
    ) -> VersionRecord:
        key = (dataset.project, dataset.artifact)
        digest = dataset.manifest(self.service, None)
        found = None if empty else self.with_digest(key, digest)
        if found is not None:
            return found
        artifact = self.artifact(key)
        index = 0
        if artifact is not None and (not empty or artifact[1] != 0):
            made = sum(1 for v in self.versions if (v.project, v.name) == key)
            stored = self.graph.count_versions(*key, include_deleted=True) + made
            if empty or stored != artifact[1]:
                raise _Fallback  # versions deleted, or indexes with gaps
            index = stored
        version = VersionRecord(
            project=key[0], name=key[1], type=dataset.type, index=index, digest=digest,
            size=dataset.size, file_count=1, metadata=dataset.metadata, created_at=at,
            description=dataset.description,
            aliases=() if newer else ("latest",), event_at=dataset.made_at(at),
        )  # fmt: skip
        self._made(version)
        return version

    # writing -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what the events mapped since the last flush, set-based (in a savepoint
        where the store has them)."""
        graph = self.graph
        if self.new_runs or self.changed or self.versions or self.edges or self.claims:
            atomic = getattr(graph, "atomic", None)
            # all of it but the metadata in one statement (Neo4j)
            write = getattr(graph, "write_planned", None)
            with atomic() if atomic is not None else contextlib.nullcontext():
                runs = [self.runs[i] for i in sorted(self.new_runs)]
                changed = {i: c for i, c in self.changed.items() if i not in self.new_runs}
                if write is not None:
                    counts = write(runs=runs, versions=self.versions, edges=self.edges,
                                   changed=changed, locations=self.claims)  # fmt: skip
                else:
                    counts = graph.import_records(
                        runs=runs, versions=self.versions, edges=self.edges
                    )
                # another writer's run or version of the same id: this group's state is stale
                if counts["runs"] != len(runs) or counts["versions"] != len(self.versions):
                    raise _Stale(
                        f"{counts} stored of {len(runs)} runs, {len(self.versions)} versions"
                    )
                if changed and write is None:
                    graph.update_runs(changed)
                for version_id, changes in self.metadata.items():
                    graph.update_version(version_id, changes, [])
                if self.claims and write is None:
                    graph.add_locations(self.claims)
        self._pending()


def _foreseen(
    runs: Sequence[_Run],
) -> tuple[list[tuple[str | None, str, str, str]], list[tuple[str | None, str, str]]]:
    """The digests the group's datasets will be looked up by (outputs, inputs naming a
    version), ``(uri, project, name, digest)``, and the datasets whose newest versions an
    input binds to, ``(uri, project, name)``: what a store reading the state in one
    statement reads ahead (a digest computed as ``_Dataset.manifest`` does, not stored)."""
    digests: list[tuple[str | None, str, str, str]] = []
    newest: list[tuple[str | None, str, str]] = []
    for run in runs:
        for dataset in run.outputs:
            digest = dataset.digest(run.id)
            digests.append((dataset.location, dataset.project, dataset.artifact, digest))
        for dataset in run.inputs:
            if dataset.named_version is None:
                newest.append((dataset.location, dataset.project, dataset.artifact))
            else:
                digest = dataset.digest(None)
                digests.append((dataset.location, dataset.project, dataset.artifact, digest))
    return digests, newest


def ingest_planned(
    service: Service, events: Sequence[Mapping[str, Any]], blobs: Any
) -> list[Ingested | Exception]:
    """Store checked events within the caller's transaction, set-based; for each event what
    it stored or the error that refused it (nothing of it stored). ``blobs``: the group's
    deferred manifests (``pending``, ``undone_on_error()``), what ``service`` writes to."""
    graph: Any = service.graph
    savepoints = callable(getattr(graph, "atomic", None))
    plan = _Plan(service, graph)
    out: list[Ingested | Exception | None] = [None] * len(events)
    parsed: list[_Run | Exception | None] = []
    for event in events:
        try:
            parsed.append(_Run(service, event) if event_kind(event) == "RunEvent" else None)
        except LineageError as error:
            parsed.append(error)
        except Exception:  # noqa: BLE001 - ingest words it as it would alone
            parsed.append(None)
    plan.load([run for run in parsed if isinstance(run, _Run)])
    segment: list[int] = []  # events mapped since the last flush
    manifests = set(blobs.pending)  # before the segment

    def flush() -> None:
        nonlocal manifests
        if not savepoints and callable(getattr(blobs, "start_flush", None)):
            # Neo4j: the manifests fsynced while the write runs (durable before the commit:
            # the group's flush waits for them); a failed write fails the whole group
            blobs.start_flush()
        try:
            plan.flush()
        except Exception:
            if not savepoints:
                raise  # nothing of the group stays: the caller stores each event alone
            logger.info("a group's writes failed; its %d events are stored alone", len(segment))
            plan._pending()
            for digest in set(blobs.pending) - manifests:
                del blobs.pending[digest]
            for i in segment:
                out[i] = _alone(service, graph, events[i], blobs)
        segment.clear()
        manifests = set(blobs.pending)

    for i, event in enumerate(events):
        run = parsed[i]
        if isinstance(run, Exception):
            out[i] = run
            continue
        if run is not None:
            try:
                with blobs.undone_on_error():
                    try:
                        out[i] = plan.event(run)
                    except BaseException:
                        plan.journal.rollback()
                        raise
                plan.journal.commit()
                segment.append(i)
                continue
            except LineageError as error:
                out[i] = error
                continue
            except Exception as error:  # noqa: BLE001 - _Fallback, or ingest's to word
                if not isinstance(error, _Fallback):
                    logger.debug("the plan left an event to ingest: %r", error)
        flush()
        out[i] = _alone(service, graph, event, blobs)
        manifests = set(blobs.pending)
        plan.load([r for r in parsed[i + 1 :] if isinstance(r, _Run)])
    flush()
    return [result if result is not None else RuntimeError("not stored") for result in out]


def _alone(
    service: Service, graph: Any, event: Mapping[str, Any], blobs: Any
) -> Ingested | Exception:
    """``ingest`` of one event: in a savepoint, its error answered to its sender alone; a
    store without savepoints (Neo4j) fails the group with it (the caller stores each alone)."""
    if not callable(getattr(graph, "atomic", None)):
        with blobs.undone_on_error():
            return ingest(service, event)
    try:
        with blobs.undone_on_error(), graph.atomic():
            return ingest(service, event)
    except Exception as error:  # noqa: BLE001 - answered to that event's sender alone
        return error
