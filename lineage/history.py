"""Answers as of a past time, computed from what is recorded: never from a copy per time.

What each record says about its past:

- a version existed from when it was made on (its ``made_at``: an OpenLineage version's event
  time, else its commit, ``created_at``; a run existed from its ``started_at``, which for an
  OpenLineage run is its event's time too, so a 2024 run and its 2024 outputs exist together
  as of 2024 whenever they were stored); a ``version.deleted`` event says when it was
  tombstoned, so before that it shows as it was (``committed``);
- its metadata, description and tags as they were: the ``metadata.updated``,
  ``description.updated`` and ``tags.changed`` events after the time, undone newest first
  (each keeps the ``old`` value);
- a run existed from its ``started_at`` on, and was ``running`` until its ``finished_at``;
- an alias pointed where the ``alias.moved`` / ``alias.removed`` / ``version.deleted`` events
  up to the time leave it (an alias with no event at all, as a ``push`` copies it, counts as
  held since its version's commit); ``latest`` is the newest version committed by then and
  not deleted by then;
- an edge existed once both its ends did (edges keep no time of their own: a run that
  started before the time and consumed a version logged before it counts as having consumed
  it then, even if the ``use_artifact`` call came later).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from lineage.records import Event, RunRecord, Subgraph, VersionRecord
from lineage.storage.graph import Direction, GraphStore, Row
from lineage.traversal import answer, is_version

__all__ = [
    "LookupsThen",
    "alias_events",
    "alias_moves",
    "alias_target",
    "run_then",
    "version_then",
    "walk_then",
]

_UNDONE = {"metadata.updated": "metadata", "description.updated": "description"}


def _artifact_events(graph: GraphStore, project: str, name: str) -> list[Event]:
    return graph.events(project, target_prefix=f"{project}/{name}:")


def alias_events(graph: GraphStore, project: str, name: str, alias: str) -> list[Event]:
    """Every event that moved, removed or (deleting its version) dropped ``alias``."""
    return alias_moves(_artifact_events(graph, project, name), alias)


def alias_moves(events: Iterable[Event], alias: str) -> list[Event]:
    """Of an artifact's ``events`` (in order), those that moved or dropped ``alias``."""
    found = []
    held: str | None = None
    for event in events:
        if event.kind == "alias.moved" and (event.new or {}).get("alias") == alias:
            held = event.target
            found.append(event)
        elif _drops(event, alias, held):
            held = None
            found.append(event)
    return found


def _drops(event: Event, alias: str, held: str | None) -> bool:
    """Whether ``event`` removes ``alias`` (held by ``held``)."""
    if event.kind == "alias.removed":
        return bool((event.old or {}).get("alias") == alias)
    return event.kind == "version.deleted" and event.target == held


def alias_target(
    graph: GraphStore, project: str, name: str, alias: str, at: float
) -> VersionRecord | None:
    """The version ``alias`` named at ``at``, as it was then; None when it named none."""
    versions = graph.list_versions(project, name, include_deleted=True)
    events = _artifact_events(graph, project, name)
    if alias == "latest":
        deleted = _deleted_at(events)
        live = [
            v for v in versions if v.made_at <= at and not (v.id in deleted and deleted[v.id] <= at)
        ]
        chosen = max(live, key=lambda v: v.index) if live else None
    else:
        mentioned = alias_events(graph, project, name, alias)
        if not mentioned:  # never moved by an event (copied by push): held since its commit
            current = graph.find_alias(project, name, alias)
            chosen = current if current is not None and current.made_at <= at else None
        else:
            holder: str | None = None
            for event in mentioned:
                if event.at > at:
                    break
                holder = event.target if event.kind == "alias.moved" else None
            chosen = next((v for v in versions if v.id == holder), None)
    if chosen is None:
        return None
    return version_then(chosen, at, events, versions)


def _deleted_at(events: Iterable[Event]) -> dict[str, float]:
    return {e.target: e.at for e in events if e.kind == "version.deleted"}


def version_then(
    version: VersionRecord,
    at: float,
    events: Sequence[Event],
    siblings: Sequence[VersionRecord],
) -> VersionRecord | None:
    """``version`` as it was at ``at`` (None if not yet committed): state, metadata,
    description, tags and aliases then. ``events`` are its artifact's, ``siblings`` its
    artifact's versions (for the aliases)."""
    if version.made_at > at:
        return None
    mine = [e for e in events if e.target == version.id]
    deleted = any(e.kind == "version.deleted" and e.at <= at for e in mine)
    changes: dict[str, object] = {"state": "deleted" if deleted else "committed"}
    for event in sorted((e for e in mine if e.at > at), key=lambda e: e.seq or 0, reverse=True):
        if event.kind in _UNDONE:
            changes[_UNDONE[event.kind]] = (
                event.old
                if event.old is not None
                else ({} if event.kind == "metadata.updated" else None)
            )
        elif event.kind == "tags.changed":
            changes["tags"] = tuple(event.old or ())
    changes["aliases"] = _aliases_then(version, at, events, siblings, deleted)
    return dataclasses.replace(version, **changes)  # type: ignore[arg-type]


def _aliases_then(
    version: VersionRecord,
    at: float,
    events: Sequence[Event],
    siblings: Sequence[VersionRecord],
    deleted: bool,
) -> tuple[str, ...]:
    if deleted:
        return ()
    held: dict[str, str] = {}
    touched: set[str] = set()
    for event in events:
        if event.at > at:
            break
        if event.kind == "alias.moved":
            alias = (event.new or {}).get("alias")
            if alias:
                held[alias] = event.target
                touched.add(alias)
        elif event.kind == "alias.removed":
            alias = (event.old or {}).get("alias")
            if alias:
                held.pop(alias, None)
                touched.add(alias)
        elif event.kind == "version.deleted":
            held = {a: v for a, v in held.items() if v != event.target}
    names = {a for a, v in held.items() if v == version.id}
    # aliases no event ever moved (a push copies them): held since the version's commit
    names |= {a for a in version.aliases if a != "latest" and a not in touched}
    deleted_then = _deleted_at(e for e in events if e.at <= at)
    live = [v for v in siblings if v.made_at <= at and v.id not in deleted_then]
    if live and max(live, key=lambda v: v.index).id == version.id:
        names.add("latest")
    return tuple(sorted(names))


def run_then(run: RunRecord, at: float, events: Sequence[Event] = ()) -> RunRecord | None:
    """``run`` as it was at ``at`` (None if not yet started): ``running`` until it ended,
    its tags then."""
    if run.started_at > at:
        return None
    changes: dict[str, object] = {}
    if run.finished_at is None or run.finished_at > at:
        changes.update(state="running", finished_at=None, error=None)
    for event in sorted(
        (e for e in events if e.target == run.id and e.at > at and e.kind == "tags.changed"),
        key=lambda e: e.seq or 0,
        reverse=True,
    ):
        changes["tags"] = tuple(event.old or ())
    return dataclasses.replace(run, **changes) if changes else run  # type: ignore[arg-type]


def walk_then(
    graph: GraphStore, start: str, ways: Collection[Direction], hops: int | None, at: float
) -> Subgraph:
    """A lineage walk over the graph as it was at ``at``: level by level, keeping only the
    nodes that existed then (and so the edges between them), the records as they were."""
    versions: dict[str, VersionRecord] = {}
    runs: dict[str, RunRecord] = {}
    events_of: dict[str, list[Event]] = {}  # by project
    siblings_of: dict[tuple[str, str], list[VersionRecord]] = {}

    def then(ids: Collection[str]) -> set[str]:
        """Which of ``ids`` existed at ``at``; their records as they were go in the maps."""
        fresh = [i for i in ids if i not in versions and i not in runs]
        for version in graph.get_versions([i for i in fresh if is_version(i)]).values():
            events = events_of.get(version.project)
            if events is None:
                events = events_of[version.project] = graph.events(version.project)
            key = (version.project, version.name)
            if key not in siblings_of:
                siblings_of[key] = graph.list_versions(*key, include_deleted=True)
            prefix = f"{version.project}/{version.name}:"
            mine = [e for e in events if e.target.startswith(prefix)]
            was = version_then(version, at, mine, siblings_of[key])
            if was is not None:
                versions[version.id] = was
        for run in graph.get_runs([i for i in fresh if not is_version(i)]).values():
            events = events_of.get(run.project)
            if events is None:
                events = events_of[run.project] = graph.events(run.project)
            was_run = run_then(run, at, events)
            if was_run is not None:
                runs[run.id] = was_run
        return {i for i in ids if i in versions or i in runs}

    initial = then([start])
    nodes = set(initial)
    edges: set[Row] = set()
    truncated = False
    for way in ways:
        far = 1 if way == "down" else 0
        seen = set(initial)
        frontier = set(initial)
        done = 0
        while frontier:
            rows = graph.expand(frontier, way)
            found = [(e.source, e.target, e.kind) for e in rows]
            alive = then({row[far] for row in found})
            found = [row for row in found if row[far] in alive]
            if hops is not None and done >= hops:
                for row in found:
                    if row[far] in seen:
                        edges.add(row)
                    else:
                        truncated = True
                break
            edges.update(found)
            frontier = {row[far] for row in found} - seen
            seen |= frontier
            done += 1
        nodes |= seen
    return answer(nodes, edges, versions, runs, truncated=truncated, root=start)


class LookupsThen:
    """What :func:`lineage.view.classify` asks of a service (which versions some run consumed,
    a version's consumers, runs), answered as of ``at``: only runs started by then count, so
    a version nothing had consumed yet is a dead end then."""

    def __init__(self, service: Any, at: float) -> None:
        self.service = service
        self.at = at

    def consumers(self, version: VersionRecord) -> list[RunRecord]:
        found = (run_then(run, self.at) for run in self.service.consumers(version))
        return [run for run in found if run is not None]

    def consumed(self, ids: Sequence[str]) -> set[str]:
        return {
            i
            for i in self.service.consumed(ids)
            if self.consumers(self.service.resolve(i, include_deleted=True))
        }

    def get_runs(self, ids: Iterable[str]) -> dict[str, RunRecord]:
        found = {k: run_then(run, self.at) for k, run in self.service.get_runs(ids).items()}
        return {k: run for k, run in found.items() if run is not None}
