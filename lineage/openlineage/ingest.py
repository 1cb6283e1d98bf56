"""OpenLineage events into the lineage graph: the mapping and the event semantics.

The mapping (Marquez's, with artifact versions):

- the job namespace is the project (its :func:`~lineage.openlineage.naming.internal_name`);
  the run keeps OpenLineage's ``runId`` (a non-UUID one mapped to a stable UUID); its name
  is the job name verbatim; job and run facets are the run's ``facets`` (JSON), under
  ``job`` and ``run``, with the original namespace, name and runId;
- a dataset ``(namespace, name)`` is an artifact of type ``dataset`` in project
  ``internal_name(namespace)`` named ``internal_name(name)``; its versions are references
  (no bytes: a one-entry manifest naming the dataset's location) identified by the
  ``version`` facet where present, else by the schema facet and the producing run (without
  a schema facet, by the producing run); the dataset's facets are the version's metadata,
  under ``openlineage``; the ``lineage`` facet of lineage's own export gives the version
  its type, size, description, its own metadata (beside ``openlineage``), its tags and its
  aliases (moved to it, as they stood where it was exported), and the run its config,
  summary, tags, notes, user, host, code and error: each one that is not valid is left
  out, as an emitter's facet may say anything;
- a version keeps the time it was made, ``event_at``: the ``eventTime`` of the earliest
  event that produced (or observed) it, whatever order the events arrive in (its
  ``created_at`` is when it was stored: for a replayed or late event, later). A version the
  SDK logged has none: it was made when it was stored, its ``created_at``
  (:attr:`~lineage.records.VersionRecord.made_at` is the one or the other);
- an input binds to the version its ``version`` facet names, else to the version of another
  run made most recently at or before the event's time (of the 64 newest by number; of two
  made at the same time, the later-numbered). If every version was made after the event's
  time, the input read one that lineage never saw made: it is recorded as an *observed*
  version, made by no run (one with the same schema observed before is reused), which does
  not take ``latest`` from the versions made after it. Binding a version made later would
  put the consumer downstream of a run that had not happened yet. A dataset never seen
  before is recorded the same way.

Event semantics: events of one run are cumulative, in any order, any number of times.
``START``/``RUNNING``/``OTHER`` leave a run ``running``; ``COMPLETE`` finishes it,
``FAIL`` fails it, ``ABORT`` aborts it; a terminal state is never undone by a later
``RUNNING``, and of two terminal events the later one (by ``eventTime``) wins. Sending the
same events again changes nothing. The ``parent`` run facet sets the run's ``parent``.
An edge that would close a cycle is not added (lineage stays acyclic).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lineage.errors import InvalidInput, InvalidMetadata, InvalidName
from lineage.manifest import Encoded, Entry, encode_one, store_encoded
from lineage.names import check_alias, check_json, check_name, check_text
from lineage.openlineage.naming import internal_name, location
from lineage.openlineage.validation import InvalidEvent, event_kind, event_time, run_id
from lineage.records import (
    CONSUMED_BY,
    PRODUCED,
    RUN_STATES,
    ArtifactRecord,
    CodeVersion,
    Edge,
    RunRecord,
    VersionRecord,
)
from lineage.service import MAX_TAGS, MAX_TEXT, Service
from lineage.storage.graph import NewVersion

__all__ = ["STATES", "Ingested", "bound", "dataset_ref", "ingest"]

logger = logging.getLogger(__name__)

STATES = {
    "START": "running",
    "RUNNING": "running",
    "OTHER": "running",
    "COMPLETE": "finished",
    "FAIL": "failed",
    "ABORT": "aborted",
}
DATASET_TYPE = "dataset"
_SCAN = 64  # versions of a dataset looked at for the one an input binds to


@dataclass(frozen=True, kw_only=True)
class Ingested:
    """What one event wrote or found: its run (None for a dataset or job event) and the
    versions it consumed and produced."""

    run: RunRecord | None = None
    inputs: tuple[VersionRecord, ...] = field(default_factory=tuple)
    outputs: tuple[VersionRecord, ...] = field(default_factory=tuple)


def dataset_ref(namespace: str, name: str, selector: str = "latest") -> str:
    """The ref of an OpenLineage dataset's version: ``dataset_ref("s3://b", "t")``."""
    return f"{internal_name(namespace)}/{internal_name(name)}:{selector}"


def ingest(service: Service, event: Mapping[str, Any]) -> Ingested:
    """Store one event checked by :func:`~lineage.openlineage.validation.check_event`.

    Everything the event could be refused for is checked before the first write.
    """
    kind = event_kind(event)
    if kind == "RunEvent":
        return _Run(service, event).store()
    if kind == "DatasetEvent":
        dataset = _Dataset(event["dataset"], "dataset")
        uri = dataset.location
        dataset.check(
            service.graph.find_locations([uri]) if uri else {}, service.graph.get_artifact
        )
        version = dataset.observed(service, event_time(event))
        if dataset.claim:
            service.graph.add_locations(dataset.claim)
        return Ingested(inputs=(version,))
    return Ingested()  # a JobEvent: its job exists once a run of it does


class _Dataset:
    """One dataset of an event, its internal names, metadata and identity."""

    def __init__(self, item: Mapping[str, Any], where: str) -> None:
        self.item = item
        self.where = where
        self.namespace: str = item["namespace"]
        self.name: str = item["name"]
        self.project = internal_name(self.namespace)
        self.artifact = internal_name(self.name)
        self.facets: Mapping[str, Any] = item.get("facets") or {}
        self._encoded: dict[str | None, Encoded] = {}  # by run
        # kept as they came, but the facts lineage's export carried: they are the version's
        facets = _without(self.facets, ("metadata", "description", "tags"))
        own = {"namespace": self.namespace, "name": self.name, "facets": facets}
        for extra in ("inputFacets", "outputFacets"):
            if item.get(extra):
                own[extra] = item[extra]
        given = _given(self.facets)
        mine = _json(given.get("metadata"), "metadata") or {}
        try:
            self.metadata = check_json({**mine, "openlineage": own}, "dataset facets")
        except InvalidMetadata as error:
            raise InvalidEvent(str(error), field=f"{where}.facets") from None
        self.description = _text(given.get("description"), "description")
        self.tags = _tags(given.get("tags"))

    @property
    def named_version(self) -> str | None:
        version = self.facets.get("version")
        found = version.get("datasetVersion") if isinstance(version, Mapping) else None
        return found if isinstance(found, str) and found else None

    def check(
        self,
        places: Mapping[str, tuple[str, str]],
        get_artifact: Callable[[str, str], ArtifactRecord | None],
    ) -> None:
        """Find the artifact this dataset is: the one at its storage location (an SDK
        reference, say; ``places`` are the recorded ones), else its own; refuse one of its
        own name of another type."""
        self.type = _lineage_facet(self.facets, "type", DATASET_TYPE)
        self.claim: list[tuple[str, str, str]] = []
        uri = self.location
        if uri is not None:
            found = places.get(uri)
            if found is not None:
                self.project, self.artifact = found
                artifact = get_artifact(*found)
                self.type = artifact.type if artifact is not None else DATASET_TYPE
                return
            self.claim = [(uri, self.project, self.artifact)]
        artifact = get_artifact(self.project, self.artifact)
        if artifact is not None and artifact.type != self.type:
            raise InvalidEvent(
                f"{artifact.key} is an artifact of type {artifact.type!r}, not {self.type}",
                field=f"{self.where}.name",
            )

    @property
    def location(self) -> str | None:
        return location(self.namespace, self.name)

    def identity(self, run: str | None) -> dict[str, Any]:
        if self.named_version is not None:
            return {"version": self.named_version}
        schema = self.facets.get("schema")
        fields = schema.get("fields") if isinstance(schema, Mapping) else None
        out: dict[str, Any] = {"run": run} if run else {"observed": True}
        if fields is not None:
            out["schema"] = fields
        return out

    def encoded(self, run: str | None) -> Encoded:
        """The reference manifest of the version ``run`` makes of this dataset (None: one
        observed as an input): one entry naming the dataset's location, its
        :meth:`identity` as the entry's version. Encoded once a run (a group's read-ahead
        and its write ask for the same one)."""
        found = self._encoded.get(run)
        if found is None:
            text = json.dumps(self.identity(run), sort_keys=True, separators=(",", ":"))
            uri = self.location or ("openlineage:" + json.dumps([self.namespace, self.name]))
            entry = Entry(path="dataset", size=0, uri=uri, version_id=text)
            found = self._encoded[run] = encode_one(entry)
        return found

    def digest(self, run: str | None) -> str:
        """The digest of the reference manifest of :meth:`encoded` (nothing stored)."""
        return self.encoded(run).digest

    def manifest(self, service: Service, run: str | None) -> str:
        """The digest of the reference manifest of :meth:`encoded`, stored (a group's
        deferred blobs take it as it is: no second hashing). Put even when its files are
        there: a group that failed may have left them unsynced, and a put makes them
        durable (lineage.storage.local), where a look would trust them."""
        encoded = self.encoded(run)
        blobs: Any = service.blobs
        put_encoded = getattr(blobs, "put_encoded", None)
        if put_encoded is not None:
            put_encoded(encoded)
            return encoded.digest
        return store_encoded(blobs, encoded, every_page=True)

    def find(self, service: Service, digest: str) -> VersionRecord | None:
        for version in service.graph.list_versions(self.project, self.artifact):
            if version.digest == digest and version.state == "committed":
                return version
        return None

    @property
    def size(self) -> int:
        """The version's size that lineage's own export wrote in its ``lineage`` facet (the
        bytes of the version it exported), else 0: a reference names no bytes of its own."""
        size = _given(self.facets).get("size")
        if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 2**63:
            return size
        return 0

    @property
    def aliases(self) -> tuple[str, ...]:
        """The aliases that lineage's own export wrote in its ``lineage`` facet, but
        ``latest`` (it moves by itself) and any that is not a valid alias."""
        given = _given(self.facets).get("aliases")
        out: list[str] = []
        for alias in given if isinstance(given, list) else ():
            try:
                alias = check_alias(alias)
            except InvalidName:
                continue
            if alias != "latest" and alias not in out:
                out.append(alias)
        return tuple(out)

    def aliased(self, service: Service, version: VersionRecord) -> VersionRecord:
        """``version`` with the :attr:`aliases` and :attr:`tags` it had where it was
        exported: an alias that another version holds here moves to it, as it stood in the
        exporting store; tags are added."""
        if version.state != "committed":
            return version
        for alias in self.aliases:
            if alias not in version.aliases:
                version = service.set_alias(version.id, alias)
        if set(self.tags) - set(version.tags):
            tagged = service.tag(version.id, add=self.tags)
            assert isinstance(tagged, VersionRecord)
            version = tagged
        return version

    def made_at(self, at: float) -> float:
        """When the version an event at ``at`` names was made: the time lineage's own export
        wrote in its ``lineage`` facet (a version made before the run's event), else ``at``."""
        made = _given(self.facets).get("eventTime")
        if isinstance(made, str):
            try:
                return _seconds(made)
            except ValueError:
                pass
        return at

    def observed(
        self, service: Service, at: float, *, empty: bool = False, newer: bool = False
    ) -> VersionRecord:
        """The version an input names, or one made by no run, recorded as seen (``empty``:
        the artifact has no version yet; ``newer``: it has one made after ``at``, which
        keeps ``latest``)."""
        digest = self.manifest(service, None)
        found = None if empty else self.find(service, digest)
        if found is not None:
            return self.aliased(service, found)
        made = self.made_at(at)
        index = (
            0
            if empty
            else service.graph.count_versions(self.project, self.artifact, include_deleted=True)
        )
        version = VersionRecord(
            project=self.project,
            name=self.artifact,
            type=self.type,
            index=index,
            digest=digest,
            size=self.size,
            file_count=1,
            metadata=self.metadata,
            description=self.description,
            created_at=at,
            aliases=() if newer else ("latest",),
            event_at=made,
        )
        service.graph.import_records(versions=[version])
        return self.aliased(service, version)


class _Run:
    """One run event, stored in order: the run, its outputs, its inputs."""

    def __init__(self, service: Service, event: Mapping[str, Any]) -> None:
        self.service = service
        self.graph = service.graph
        self.event = event
        self.at = event_time(event)
        self.job = event["job"]
        self.original_id: str = event["run"]["runId"]
        run_facets: Mapping[str, Any] = event["run"].get("facets") or {}
        # what lineage's own export said of the run: its id and how it ended
        self.id = _lineage_facet(run_facets, "id", None) or run_id(self.original_id)
        self.project = internal_name(self.job["namespace"])
        self.state = STATES[event["eventType"]]
        ended = _lineage_facet(run_facets, "state", None)
        if self.state != "running" and ended in RUN_STATES and ended != "running":
            self.state = ended
        self.inputs = [_Dataset(d, f"inputs[{i}]") for i, d in enumerate(event.get("inputs", []))]
        self.outputs = [
            _Dataset(d, f"outputs[{i}]") for i, d in enumerate(event.get("outputs", []))
        ]
        parent = run_facets.get("parent")
        self.parent = run_id(parent["run"]["runId"]) if isinstance(parent, Mapping) else None
        facets: dict[str, Any] = {
            "job": {
                "namespace": self.job["namespace"],
                "name": self.job["name"],
                "facets": self.job.get("facets") or {},
            },
            "run": _without(run_facets, RUN_FACTS),  # kept, but the facts: the run's
            "eventTime": event["eventTime"],
            "producer": event.get("producer"),
        }
        if self.original_id != self.id:
            facets["runId"] = self.original_id
        try:
            self.facets = check_json(facets, "run facets")
        except InvalidMetadata as error:
            raise InvalidEvent(str(error), field="run.facets") from None
        failure = run_facets.get("errorMessage")
        message = failure.get("message") if isinstance(failure, Mapping) else None
        self.error = str(message)[:65536] if message else None
        self.facts = run_facts(run_facets)
        self.given_error = self.facts.pop("error", None)  # how it ended, as lineage said

    def store(self) -> Ingested:
        datasets = [*self.outputs, *self.inputs]
        uris = [uri for d in datasets if (uri := d.location) is not None]
        places = self.graph.find_locations(uris) if uris else {}
        for dataset in datasets:
            dataset.check(places, self.graph.get_artifact)
        self.fresh = False
        run = self._run()
        outputs = self._outputs(run)
        inputs = self._inputs(run, {v.id for v in outputs})
        claims = [claim for d in datasets for claim in d.claim]
        if claims:  # each new dataset's location is its artifact's
            self.graph.add_locations(claims)
        return Ingested(run=run, inputs=tuple(inputs), outputs=tuple(outputs))

    def _job_type(self) -> str | None:
        facet = (self.job.get("facets") or {}).get("jobType")
        kind = facet.get("jobType") if isinstance(facet, Mapping) else None
        return internal_name(str(kind).lower()) if kind else None

    def _run(self) -> RunRecord:
        existing = self.graph.get_runs([self.id]).get(self.id)
        if existing is None:
            fresh = self.record()
            # SQLite's one-statement insert where there is one
            insert = getattr(self.graph, "insert_run", None)
            if insert(fresh) if insert else self.graph.import_records(runs=[fresh])["runs"]:
                self.fresh = True  # no edges yet
                return fresh
            existing = self.graph.get_runs([self.id])[self.id]  # a concurrent event made it
        return self._update(existing)

    def record(self) -> RunRecord:
        """The run as this event alone makes it (its first event)."""
        terminal = self.state != "running"
        return RunRecord(
            id=self.id,
            project=self.project,
            name=self.job["name"],
            job_type=self._job_type(),
            state=self.state,
            started_at=self.at,
            finished_at=self.at if terminal else None,
            error=self.ended_error(),
            parent=self.parent,
            facets=self.facets,
            **self.facts,
        )

    def ended_error(self) -> str | None:
        """The error of the run as this event ends it: what lineage's export said of it,
        else the ``errorMessage`` facet of a failure."""
        if self.state == "running":
            return None
        if self.given_error is not None:
            return str(self.given_error)
        return self.error if self.state == "failed" else None

    def _update(self, run: RunRecord) -> RunRecord:
        changes = self.changes(run)
        if not changes:
            return run
        updated = self.graph.update_run(self.id, changes)
        return updated or run

    def changes(self, run: RunRecord) -> dict[str, Any]:
        """What this event changes of the stored ``run`` (cumulative, terminal states kept)."""
        changes: dict[str, Any] = {}
        last = run.facets.get("eventTime")
        newer = last is None or self.at >= _seconds(last)
        facets = _merge(run.facets, self.facets, newer=newer)
        if facets != run.facets:
            changes["facets"] = facets
        if self.at < run.started_at:
            changes["started_at"] = self.at
        if self.state != "running":
            ended = run.state != "running"
            later = run.finished_at is not None and self.at > run.finished_at
            if (not ended or later) and (run.state != self.state or run.finished_at != self.at):
                changes["state"] = self.state
                changes["finished_at"] = self.at
                changes["error"] = self.ended_error()
        if self.parent is not None and run.parent is None:
            changes["parent"] = self.parent
        return changes

    def _outputs(self, run: RunRecord) -> list[VersionRecord]:
        made = set() if self.fresh else {e.target for e in self.graph.expand([self.id], "down")}
        found = []
        for dataset in self.outputs:
            digest = dataset.manifest(self.service, self.id)
            version, created = self.graph.commit_version(
                NewVersion(
                    project=dataset.project,
                    name=dataset.artifact,
                    type=dataset.type,
                    digest=digest,
                    size=dataset.size,
                    file_count=1,
                    metadata=dataset.metadata,
                    description=dataset.description,
                    run_id=self.id,
                    at=self.at,
                    event_at=dataset.made_at(self.at),
                )
            )
            if not created:
                version = self._merge_metadata(version, dataset)
                if version.id not in made and not self.service.reaches(self.id, version.id, "up"):
                    self.graph.add_edges([Edge(source=self.id, target=version.id, kind=PRODUCED)])
            found.append(dataset.aliased(self.service, version))
        return found

    def _inputs(self, run: RunRecord, outputs: set[str]) -> list[VersionRecord]:
        used = set() if self.fresh else {e.source for e in self.graph.expand([self.id], "up")}
        used_artifacts = {version.rpartition(":")[0] for version in used}
        found = []
        edges = []
        for dataset in self.inputs:
            key = f"{dataset.project}/{dataset.artifact}"
            if dataset.named_version is None and key in used_artifacts:
                continue  # bound by an earlier event of this run
            version = self._bind(dataset)
            if version.id in outputs or version.id in used:
                found.append(version)
                continue
            # a run that produced nothing cannot close a cycle
            if (outputs or not self.fresh) and self.service.reaches(self.id, version.id, "down"):
                logger.info("%s not recorded as consumed by %s: a cycle", version.id, self.id)
                continue
            edges.append(Edge(source=version.id, target=self.id, kind=CONSUMED_BY))
            found.append(version)
        if edges:
            self.graph.add_edges(edges)
        return found

    def _bind(self, dataset: _Dataset) -> VersionRecord:
        if dataset.named_version is None:
            versions = self.graph.list_versions(
                dataset.project, dataset.artifact, newest_first=True, limit=_SCAN
            )
            found, newer = bound(versions, self.id, self.at)
            if found is not None:
                return found
            return dataset.observed(self.service, self.at, empty=not versions, newer=newer)
        return dataset.observed(self.service, self.at)

    def _merge_metadata(self, version: VersionRecord, dataset: _Dataset) -> VersionRecord:
        changes = version_changes(version, dataset, self.at)
        if changes:
            return self.graph.update_version(version.id, changes, [])
        return version


def bound(
    versions: Sequence[VersionRecord], run: str, at: float
) -> tuple[VersionRecord | None, bool]:
    """The version (of ``versions``, newest first) an input of ``run``'s event at ``at``
    binds to, if one is old enough; and whether another run made one after ``at``."""
    best: VersionRecord | None = None
    newer = False
    for version in versions:
        if version.created_by == run:
            continue  # what the run wrote is not what it read
        made = version.made_at
        if made > at:
            newer = True
        elif best is None or (made, version.index) > (best.made_at, best.index):
            best = version
    return best, newer


def version_changes(version: VersionRecord, dataset: _Dataset, at: float) -> dict[str, Any]:
    """What an event at ``at`` that produced the stored ``version`` again changes of it:
    metadata it adds, and its time if the event is earlier (events arrive in any order)."""
    changes: dict[str, Any] = {}
    merged = _merge(version.metadata, dataset.metadata, newer=False)
    if merged != version.metadata:
        changes["metadata"] = merged
    made = dataset.made_at(at)
    if version.event_at is not None and made < version.event_at:
        changes["event_at"] = made
    return changes


def _lineage_facet(facets: Mapping[str, Any], key: str, default: Any) -> Any:
    """A name in the ``lineage`` facet (what lineage's export writes), if it is a valid one."""
    value = _given(facets).get(key)
    try:
        return check_name(value, key) if value is not None else default
    except InvalidName:
        return default


RUN_FACTS = ("config", "summary", "tags", "notes", "user", "host", "code", "error")


def _without(facets: Mapping[str, Any], facts: Sequence[str]) -> dict[str, Any]:
    """``facets`` with a ``lineage`` facet that holds none of ``facts`` (kept elsewhere:
    not twice, which would double a store's leaves and flattened keys)."""
    out = dict(facets)
    given = _given(facets)
    if any(fact in given for fact in facts):
        out["lineage"] = {k: v for k, v in given.items() if k not in facts}
    return out


def run_facts(run_facets: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a run that lineage's own export gave in its ``lineage`` run facet
    (config, summary, tags, notes, user, host, code, error), each as a run is checked when it
    starts; one that is not valid is left out."""
    given = _given(run_facets)
    facts: dict[str, Any] = {}
    for key in ("config", "summary"):
        if (document := _json(given.get(key), key)) is not None:
            facts[key] = document
    if tags := _tags(given.get("tags")):
        facts["tags"] = tags
    for key in ("notes", "user", "host", "error"):
        if (text := _text(given.get(key), key)) is not None:
            facts[key] = text
    if (code := _code(given.get("code"))) is not None:
        facts["code"] = code
    return facts


def _given(facets: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``lineage`` facet (what lineage's own export writes); empty when there is none."""
    facet = facets.get("lineage")
    return facet if isinstance(facet, Mapping) else {}


def _json(value: Any, what: str) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return check_json(value, what)
    except InvalidInput:
        return None


def _text(value: Any, what: str) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        return None
    try:
        check_text(value, what)
    except InvalidInput:
        return None
    return value


def _tags(value: Any) -> tuple[str, ...]:
    out: list[str] = []
    for tag in value if isinstance(value, list) else ():
        try:
            tag = check_name(tag, "tag")
        except InvalidName:
            continue
        if tag not in out:
            out.append(tag)
    return tuple(out[:MAX_TAGS])


def _code(value: Any) -> CodeVersion | None:
    if not isinstance(value, Mapping):
        return None
    commit, dirty, command = value.get("commit"), value.get("dirty"), value.get("command", [])
    optional = [value.get("remote"), value.get("script")]
    if not (
        isinstance(commit, str)
        and isinstance(dirty, bool)
        and all(part is None or isinstance(part, str) for part in optional)
        and isinstance(command, list)
        and all(isinstance(arg, str) for arg in command)
    ):
        return None
    try:
        check_text([commit, *optional, *command], "code")
    except InvalidInput:
        return None
    return CodeVersion(
        commit=commit, dirty=dirty, remote=optional[0], script=optional[1], command=tuple(command)
    )


def _seconds(text: Any) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(text)).timestamp()


def _merge(old: Mapping[str, Any], new: Mapping[str, Any], *, newer: bool) -> dict[str, Any]:
    """``old`` with what ``new`` adds; where both say something, ``new`` wins if ``newer``."""
    out = dict(old)
    for key, value in new.items():
        if key not in out:
            out[key] = value
        elif isinstance(out[key], Mapping) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value, newer=newer)
        elif newer:
            out[key] = value
    return out


def ingest_many(service: Service, events: Sequence[Mapping[str, Any]]) -> list[Ingested]:
    """:func:`ingest` of each event, in order."""
    return [ingest(service, event) for event in events]
