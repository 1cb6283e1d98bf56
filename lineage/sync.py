"""``lineage sync``: send what was logged offline to a lineage server, idempotently.

Runs are replayed in the order they started, through the server's own mutations, so the
server applies every rule: a run keeps its id, its inputs are recorded, each version it
produced is committed after its blobs (only those the server lacks travel), and the
server assigns the version's number. What was sent is remembered beside the local store
(``sync-<server>.json``), so a second sync sends nothing and an interrupted one resumes.

Local version numbers can differ from the server's (another machine may have logged
``policy:v4`` meanwhile); the report says which local version became which remote one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lineage.errors import VersionNotFound
from lineage.manifest import manifest_digests, read_manifest
from lineage.progress import bar
from lineage.records import RunRecord, VersionRecord
from lineage.remote import RemoteService
from lineage.storage import Stores

__all__ = ["SyncReport", "sync_project"]

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class SyncReport:
    project: str
    runs: int = 0
    versions: int = 0
    edges: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    renumbered: dict[str, str] = field(default_factory=dict)


class _State:
    def __init__(self, path: Path) -> None:
        self.path = path
        data = json.loads(path.read_text()) if path.exists() else {}
        self.runs: dict[str, str] = data.get("runs", {})
        self.versions: dict[str, str] = data.get("versions", {})
        self.sent: set[str] = set(data.get("sent", []))  # edges sent: "source>target"

    def save(self) -> None:
        data = {"runs": self.runs, "versions": self.versions, "sent": sorted(self.sent)}
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=".sync-")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(name, self.path)


def state_path(home: Path, url: str) -> Path:
    return home / f"sync-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def sync_project(
    local: Stores,
    remote: RemoteService,
    project: str,
    state_file: Path,
    echo: Callable[[str], None] | None = None,
) -> SyncReport:
    state = _State(state_file)
    report = SyncReport(project=project)
    graph = local.graph
    runs = sorted(graph.list_runs(project), key=lambda r: (r.started_at, r.id))
    local_runs = {run.id for run in runs}
    for run in runs:
        if state.runs.get(run.id) == run.state:
            continue
        _sync_run(local, remote, run, local_runs, state, report)
        state.runs[run.id] = run.state
        state.save()
        if echo is not None:
            echo(f"  {run.name} ({run.id}, {run.state}) sent")
    return report


def _sync_run(
    local: Stores,
    remote: RemoteService,
    run: RunRecord,
    local_runs: set[str],
    state: _State,
    report: SyncReport,
) -> None:
    graph = local.graph
    if run.id not in state.runs:
        try:
            remote.get_run(run.id)  # created by a sync that stopped before saving its state
        except Exception:  # noqa: BLE001 - RunNotFound: create it
            remote.start_run(
                project=run.project,
                job_type=run.job_type,
                name=run.name,
                config=run.config,
                tags=run.tags,
                notes=run.notes,
                code=run.code,
                host=run.host,
                pid=run.pid,
                run_id=run.id,
                started_at=run.started_at,
            )
            report.runs += 1
        state.runs[run.id] = "running"
        state.save()
    inputs = [edge.source for edge in graph.expand([run.id], "up")]
    outputs = [edge.target for edge in graph.expand([run.id], "down")]
    records = graph.get_versions([*inputs, *outputs])
    for version_id in inputs:
        key = f"{version_id}>{run.id}"
        if key in state.sent:
            continue
        remote.use(run.id, _remote_ref(records[version_id], local_runs, state))
        state.sent.add(key)
        report.edges += 1
    for version_id in sorted(outputs, key=lambda v: records[v].index):
        version = records[version_id]
        key = f"{run.id}>{version_id}"
        if key in state.sent or version.state != "committed":
            continue
        _send_blobs(local, remote, version, report)
        # the server numbers the version; byte-identical content gives the same one back
        committed, created = remote.commit(
            run.id,
            name=version.name,
            type=version.type,
            manifest=version.digest,
            description=version.description,
            metadata=version.metadata,
            aliases=[a for a in version.aliases if a != "latest"],
        )
        state.versions[version_id] = committed.ref
        state.sent.add(key)
        report.versions += int(created)
        if committed.ref != version_id:
            report.renumbered[version_id] = committed.ref
        state.save()
    if run.state != "running":
        remote.finish_run(run.id, state=run.state, summary=run.summary, error=run.error)


def _remote_ref(version: VersionRecord, local_runs: set[str], state: _State) -> str:
    if version.id in state.versions:
        return state.versions[version.id]
    if version.created_by in local_runs:
        raise VersionNotFound(
            f"{version.ref} was made offline by a run not yet synced", ref=version.ref
        )
    return version.ref  # a version resolved from the server while online


def _send_blobs(
    local: Stores, remote: RemoteService, version: VersionRecord, report: SyncReport
) -> None:
    wanted = manifest_digests(local.blobs, version.digest)
    wanted |= read_manifest(local.blobs, version.digest).blob_digests()
    missing = remote.blobs.missing(wanted)
    if not missing:
        return
    path_of = getattr(local.blobs, "path", None)
    items = []
    for digest in sorted(missing):
        if path_of is not None:
            items.append((Path(path_of(digest)), digest))
        else:
            with local.blobs.open(digest) as stream:
                remote.blobs.put_stream(stream, digest)
            report.blobs += 1
    if items:
        with bar(f"sending {version.ref}", sum(p.stat().st_size for p, _ in items)) as advance:
            results = remote.blobs.put_files(items, advance)
        report.blobs += len(results)
        report.blob_bytes += sum(size for _, size in results)
