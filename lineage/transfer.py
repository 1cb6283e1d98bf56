"""Copying a project's history between stores: ``lineage push`` and ``lineage pull``.

Everything is copied with its identity (run ids, version indexes, event uids), so running
the same copy twice changes nothing the second time. Blobs travel first, only those the
target lacks, so a version never lands on the target before its bytes. A local store's
blobs go to its own blob store by default (:func:`default_blobs`): a moved directory reads
as the original did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from lineage.manifest import manifest_digests, read_manifest
from lineage.progress import bar
from lineage.records import Edge, VersionRecord
from lineage.storage import Stores, local_dir

__all__ = ["TransferReport", "copy_project", "default_blobs"]

logger = logging.getLogger(__name__)
_BATCH = 5000
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class TransferReport:
    project: str
    runs: int
    versions: int
    edges: int
    events: int
    blobs: int
    blob_bytes: int


def default_blobs(store: str) -> str | None:
    """The blob store that opening ``store`` alone reads (``<dir>/blobs``, as
    :func:`lineage.storage.open_stores` without ``LINEAGE_BLOBS``), or None for a graph
    server, which keeps no bytes of its own.

    >>> default_blobs("/data/team")
    '/data/team/blobs'
    """
    directory = local_dir(store)
    return None if directory is None else str(directory / "blobs")


def copy_project(source: Stores, target: Stores, project: str) -> TransferReport:
    """Copy ``project``'s runs, versions, edges and events, and the blobs of its committed
    versions that ``target`` lacks (none when both share one blob store)."""
    runs = source.graph.list_runs(project)
    artifacts = source.graph.list_artifacts(project)
    versions: list[VersionRecord] = []
    for artifact in artifacts:
        versions += source.graph.list_versions(project, artifact.name, include_deleted=True)
    ids = [run.id for run in runs] + [version.id for version in versions]
    edges: dict[tuple[str, str], Edge] = {}
    for id_chunk in _chunks(ids, _BATCH):
        for edge in source.graph.expand(id_chunk, "down"):
            edges[(edge.source, edge.target)] = edge
    events = source.graph.events(project)

    blobs, blob_bytes = 0, 0
    if source.blobs.url != target.blobs.url:
        blobs, blob_bytes = _copy_blobs(
            source, target, [v for v in versions if v.state == "committed"]
        )

    counts = {"runs": 0, "versions": 0, "edges": 0, "events": 0}
    # versions before edges that point at them; events last
    target_counts = target.graph.import_records(runs=runs, artifacts=artifacts, versions=versions)
    for key in ("runs", "versions"):
        counts[key] += target_counts.get(key, 0)
    for edge_chunk in _chunks(list(edges.values()), _BATCH):
        counts["edges"] += target.graph.import_records(edges=edge_chunk).get("edges", 0)
    for event_chunk in _chunks(events, _BATCH):
        counts["events"] += target.graph.import_records(events=event_chunk).get("events", 0)
    return TransferReport(project=project, blobs=blobs, blob_bytes=blob_bytes, **counts)


def _copy_blobs(source: Stores, target: Stores, versions: list[VersionRecord]) -> tuple[int, int]:
    wanted: set[str] = set()
    sizes: dict[str, int] = {}  # of the files' blobs; a manifest page's is small, not counted
    for version in versions:
        wanted |= manifest_digests(source.blobs, version.digest)
        manifest = read_manifest(source.blobs, version.digest)
        wanted |= manifest.blob_digests()
        sizes.update((e.digest, e.size) for e in manifest if e.digest and not e.is_reference)
    copied, size = 0, 0
    missing = sorted(target.blobs.missing(wanted))
    with bar("copying", sum(sizes.get(d, 0) for d in missing)) as advance:
        for digest in missing:
            with source.blobs.open(digest) as stream:
                _, n = target.blobs.put_stream(stream, digest)
            copied += 1
            size += n
            advance(sizes.get(digest, 0))
    return copied, size


def _chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
