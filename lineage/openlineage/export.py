"""The lineage graph as OpenLineage RunEvents, for Marquez, DataHub or another lineage store.

Each run becomes a ``START`` event at its start and, once it ended, a ``COMPLETE``, ``FAIL``
or ``ABORT`` event at its end, both with the versions it consumed (inputs) and produced
(outputs). What came in through OpenLineage goes out as it came: the job's namespace and
name, the runId, the job, run and dataset facets. Everything else goes out under its
project (the namespace) and name; a dataset's ``version`` facet is its version's ref.

A ``lineage`` facet on runs and datasets carries what OpenLineage has no field for (the run's
id, state, config, summary, tags, notes, user, host, code and error; the version's ref,
digest, type, size, aliases, metadata, description, tags and the time it was made: its
producing event's time, else when it was stored), so that :func:`lineage.openlineage.
ingest` of the events rebuilds the same graph in another store: ``lineage export
--openlineage`` then ``lineage import``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from lineage.openlineage.validation import SCHEMA_URL
from lineage.records import RunRecord, VersionRecord
from lineage.service import Service

__all__ = ["FACET_SCHEMA_URL", "PRODUCER", "export_events", "run_events"]

PRODUCER = "https://pypi.org/project/lineage/"
FACET_SCHEMA_URL = "https://pypi.org/project/lineage/#LineageFacet"
VERSION_FACET = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
JOB_TYPE_FACET = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json"
ENDING = {
    "finished": "COMPLETE",
    "failed": "FAIL",
    "crashed": "FAIL",
    "aborted": "ABORT",
    "killed": "ABORT",
}
_RUN_NAMESPACE = uuid.UUID("0e7f6a36-7d0c-4a51-9a39-62d0c6e1a1b8")


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat()


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMA_URL, **fields}


def _dataset(version: VersionRecord) -> dict[str, Any]:
    came = version.metadata.get("openlineage")
    if isinstance(came, Mapping) and "namespace" in came and "name" in came:
        namespace, name = str(came["namespace"]), str(came["name"])
        facets = dict(came.get("facets") or {})
    else:
        namespace, name, facets = version.project, version.name, {}
    facets.setdefault(
        "version",
        {"_producer": PRODUCER, "_schemaURL": VERSION_FACET, "datasetVersion": version.ref},
    )
    facets["lineage"] = _facet(
        ref=version.ref,
        digest=version.digest,
        type=version.type,
        size=version.size,
        aliases=sorted(version.aliases),
        eventTime=_time(version.made_at),  # when it was made, which its run's events need not say
        **_given(
            # what it came with through OpenLineage is the facets above
            metadata={k: v for k, v in version.metadata.items() if k != "openlineage"},
            description=version.description,
            tags=list(version.tags),
        ),
    )
    return {"namespace": namespace, "name": name, "facets": facets}


def _given(**facts: Any) -> dict[str, Any]:
    """The facts that say something (no empty ones: an import's default)."""
    return {key: value for key, value in facts.items() if value}


def _job(run: RunRecord) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The job, the run facets and the runId of a run, as it came or from its record."""
    came = run.facets.get("job")
    if isinstance(came, Mapping) and "namespace" in came and "name" in came:
        job = {
            "namespace": came["namespace"],
            "name": came["name"],
            "facets": dict(came.get("facets") or {}),
        }
        return job, dict(run.facets.get("run") or {}), str(run.facets.get("runId") or run.id)
    facets: dict[str, Any] = {}
    if run.job_type:
        facets["jobType"] = {
            "_producer": PRODUCER,
            "_schemaURL": JOB_TYPE_FACET,
            "processingType": "BATCH",
            "integration": "LINEAGE",
            "jobType": run.job_type,
        }
    job = {"namespace": run.project, "name": run.name, "facets": facets}
    try:
        run_id = str(uuid.UUID(run.id))
    except ValueError:
        run_id = str(uuid.uuid5(_RUN_NAMESPACE, run.id))
    return job, {}, run_id


def run_events(
    run: RunRecord, inputs: list[VersionRecord], outputs: list[VersionRecord]
) -> list[dict[str, Any]]:
    """The events of one run: ``START``, and its end if it ended."""
    job, run_facets, run_id = _job(run)
    run_facets["lineage"] = _facet(
        id=run.id,
        project=run.project,
        state=run.state,
        **_given(
            config=dict(run.config),
            summary=dict(run.summary),
            tags=list(run.tags),
            notes=run.notes,
            user=run.user,
            host=run.host,
            code=dataclasses.asdict(run.code) if run.code is not None else None,
            error=run.error,
        ),
    )
    datasets = {
        "inputs": [_dataset(v) for v in inputs],
        "outputs": [_dataset(v) for v in outputs],
    }
    base = {
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_id, "facets": run_facets},
        "job": job,
        **datasets,
    }
    events = [{"eventType": "START", "eventTime": _time(run.started_at), **base}]
    ending = ENDING.get(run.state)
    if ending is not None:
        ended = run.finished_at if run.finished_at is not None else run.started_at
        events.append({"eventType": ending, "eventTime": _time(ended), **base})
    return events


def export_events(
    service: Service, project: str | None = None, *, since: float | None = None
) -> Iterator[dict[str, Any]]:
    """Every run of ``project`` (of every project: None) started at or after ``since``, as
    OpenLineage events in the order the runs started."""
    runs = service.runs(project)
    for run in runs:
        if since is not None and run.started_at < since:
            continue
        inputs, outputs = service.run_io(run.id)
        # in the order they were made (the store's is by id: policy:v10 before policy:v2), so
        # that an import numbers a run's versions of one artifact as they were numbered here
        outputs.sort(key=lambda v: (v.project, v.name, v.index))
        yield from run_events(run, inputs, outputs)
