"""The dashboard's search: whatever a user pastes into the box.

- a ref, with or without its project (``classifier:v8``, ``churn/classifier:production``,
  ``churn/classifier``): the version it names, in every project that has such an artifact;
- a run id: that run;
- a tag: the runs that carry it;
- a commit hash (at least 7 hex digits, a prefix is enough): the runs that ran it;
- a dataset's label as sent (``s3://lake/clean/orders:v0``, or the URI alone): that version;
- any other text: artifacts and runs whose name contains it (case-insensitively), a
  dataset or job from OpenLineage by its name as sent (:mod:`lineage.sent`) or its safe one.

Runs are read from the store in keyset pages (newest first) rather than all at once, at most
:data:`SCAN` of them (a run id is looked up apart, whatever its age), and at most
:data:`MAX_HITS` of each kind are kept: a search of a million-run store answers as fast as
one of a thousand runs, and says when it stopped short.
"""

from __future__ import annotations

import re
from typing import Any

from lineage import sent
from lineage.errors import LineageError
from lineage.locations import is_location
from lineage.names import parse_ref
from lineage.records import ArtifactRecord, RunRecord, VersionRecord, version_id
from lineage.service import Service

__all__ = ["MAX_HITS", "SCAN", "search"]

MAX_HITS = 1000
SCAN = 10_000  # runs a search reads at most, newest first
_BATCH = 1000
_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_RUN_WORD = re.compile(r"[A-Za-z0-9_.-]+")


def _versions(svc: Service, q: str) -> list[VersionRecord]:
    """The versions ``q`` names as a ref, across projects when it names none."""
    if is_location(q):  # a storage URI, or a dataset's label as sent (URI:vN)
        try:
            return [svc.resolve(q, include_deleted=True)]
        except LineageError:
            return []
    if not re.fullmatch(r"[^\s]+", q) or (":" not in q and "/" not in q):
        return []
    try:
        parsed = parse_ref(q, "-")  # a placeholder project, only to check the shape
    except LineageError:
        return []
    if "/" in q.partition(":")[0]:
        candidates = [q]
    else:
        projects = sorted({a.project for a in svc.artifacts() if a.name == parsed.name})
        candidates = [f"{project}/{q}" for project in projects]
    found = []
    for ref in candidates:
        try:
            found.append(svc.resolve(ref, include_deleted=True))
        except LineageError:
            continue
    return found


def _sent(svc: Service, artifacts: list[ArtifactRecord]) -> dict[str, tuple[str, str]]:
    """The ``(namespace, name)`` each artifact from OpenLineage was sent with, by its key:
    what its first version keeps (one store call for them all)."""
    firsts = svc.graph.get_versions([version_id(a.project, a.name, 0) for a in artifacts])
    found = {}
    for first in firsts.values():
        came = sent.dataset_name(first.metadata)
        if came is not None:
            found[f"{first.project}/{first.name}"] = came
    return found


def _why(run: RunRecord, q: str, needle: str, commit: bool) -> str | None:
    if run.id == q:
        return "run id"
    if q in run.tags:
        return "tag"
    if commit and run.code is not None and run.code.commit.lower().startswith(q.lower()):
        return "commit"
    if needle in run.name.casefold():
        return "name"
    return None


def search(svc: Service, q: str, scan: int = SCAN) -> dict[str, Any]:
    """What the search page shows for ``q`` (already stripped and bounded); runs are looked
    for among the newest ``scan``, and by id among all."""
    needle = q.casefold()
    commit = _COMMIT.fullmatch(q.lower()) is not None
    everything = svc.artifacts()
    names = _sent(svc, everything)
    artifacts = [
        {"artifact": a, "sent": names.get(a.key)}
        for a in everything
        if needle in a.name.casefold()
        or (a.key in names and needle in sent.joined(*names[a.key]).casefold())
    ]
    runs: list[tuple[RunRecord, str]] = []
    more_runs = 0
    scanned = 0
    stopped = False
    # a run's id, tags and name are names ([A-Za-z0-9_.-]): other text finds no run
    if _RUN_WORD.fullmatch(q):
        runs += [(run, "run id") for run in svc.get_runs([q]).values()]
        after: tuple[float, str] | None = None
        while True:
            want = min(_BATCH, scan - scanned)
            chunk = svc.graph.list_runs(  # the keyset, newest first too
                limit=want, after=after, newest_first=True
            )
            scanned += len(chunk)
            for run in chunk:
                why = _why(run, q, needle, commit)
                if why is None or run.id == q:
                    continue
                if len(runs) < MAX_HITS:
                    runs.append((run, why))
                else:
                    more_runs += 1
            if len(chunk) < want:
                break
            if scanned >= scan:
                stopped = True  # there may be older runs: the page says where to look
                break
            after = (chunk[-1].started_at, chunk[-1].id)
    return {
        "scanned": scanned if stopped else None,
        "versions": _versions(svc, q),
        "artifacts": artifacts[:MAX_HITS],
        "more_artifacts": max(0, len(artifacts) - MAX_HITS),
        "runs": runs,
        "more_runs": more_runs,
    }
