"""The Neo4j store's batched writes: records in, as ``UNWIND`` batches of idempotent MERGEs.

``import_records`` (``lineage push``, ``sync``) sends every kind of record through these in
transactions of ``BATCH`` rows; the store's single writes (``create_run``, ``add_edges``,
an event with an alias move) use the same bodies with a batch of one. Each body may run
again after a retry, or after an import cut short, and changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, LiteralString, TypeVar

import neo4j

from lineage.records import (
    CONSUMED_BY,
    PRODUCED,
    ArtifactRecord,
    Edge,
    Event,
    RunRecord,
    VersionRecord,
)
from lineage.storage import codec
from lineage.storage.codec import ARTIFACT_FIELDS, RUN_FIELDS, VERSION_STORED
from lineage.storage.neo4j.cypher import (
    LOCK,
    MERGE_ARTIFACTS,
    MERGE_RUNS,
    MERGE_RUNS_IMPORTED,
    MERGE_VERSIONS,
)
from lineage.storage.neo4j.filter import flat_props
from lineage.storage.neo4j.state import version_artifacts

__all__ = [
    "BATCH",
    "artifact_props",
    "chunks",
    "edge_batches",
    "edge_lanes",
    "event_rows",
    "insert_events",
    "merge_artifacts",
    "merge_edges",
    "merge_runs",
    "merge_versions",
    "run_props",
    "unique",
    "version_props",
]

T = TypeVar("T")
BATCH = 2000  # measured: 2,000-row transactions ingest faster than 5,000 or 20,000 (1g heap)
_KINDS = (PRODUCED, CONSUMED_BY)


# records as node properties --------------------------------------------------------------


def _props(fields: tuple[str, ...], values: Iterable[Any]) -> dict[str, Any]:
    # a null property is no property: leave it out rather than send it
    return {name: value for name, value in zip(fields, values, strict=True) if value is not None}


def run_props(run: RunRecord) -> dict[str, Any]:
    """A run's node properties, with its config and summary flattened for filters."""
    return {
        **_props(RUN_FIELDS, codec.encode_run(run)),
        **flat_props("config", run.config),
        **flat_props("summary", run.summary),
    }


def version_props(version: VersionRecord) -> dict[str, Any]:
    """A version's node properties, with its ``id`` and its metadata flattened."""
    return {
        "id": version.id,
        **_props(VERSION_STORED, codec.encode_version(version)),
        **flat_props("metadata", version.metadata),
    }


def artifact_props(artifact: ArtifactRecord) -> dict[str, Any]:
    """An artifact's node properties, with its ``key`` (and no ``next_index``)."""
    return {"key": artifact.key, **_props(ARTIFACT_FIELDS, codec.encode_artifact(artifact))}


def event_rows(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Events as node properties, one per uid (the codec fixes a missing uid here, before
    the first attempt, so a retried transaction reuses it)."""
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        row = codec.encode_event(event)
        rows.setdefault(row["uid"], row)
    return list(rows.values())


def edge_batches(edges: Iterable[Edge]) -> Iterator[tuple[str, list[list[str]]]]:
    """``(kind, [[source, target], ...])`` per edge kind, each edge once; refuses an edge
    that does not join a run and a version in its kind's direction."""
    by_kind: dict[str, dict[tuple[str, str], list[str]]] = {}
    seen: set[tuple[str, str]] = set()
    for edge in edges:
        if edge.kind not in _KINDS:
            raise ValueError(f"edge kind must be {' or '.join(_KINDS)}, not {edge.kind!r}")
        run, version = (
            (edge.source, edge.target) if edge.kind == PRODUCED else (edge.target, edge.source)
        )
        if ":" in run or ":" not in version:  # the labels of its two nodes follow from this
            raise ValueError(f"a {edge.kind} edge joins a run and a version, not {edge}")
        pair = (edge.source, edge.target)
        if pair not in seen:  # (source, target) is the edge's identity, as in SQLite
            seen.add(pair)
            by_kind.setdefault(edge.kind, {})[pair] = [edge.source, edge.target]
    for kind, rows in by_kind.items():
        yield kind, list(rows.values())


def edge_lanes(edges: Iterable[Edge], lanes: int = 2) -> list[list[tuple[str, list[list[str]]]]]:
    """``edge_batches`` split into ``lanes`` of about as many edges, by run: a run's edges
    all in one lane, so that two lanes written at once never lock the same run. The pairs of
    each lane and kind are sorted, so the versions they share (a dataset, a parent model) are
    locked in one order by every lane: the lanes may wait for each other, never deadlock."""
    batches = list(edge_batches(edges))
    weight: dict[str, int] = {}
    for kind, pairs in batches:
        for pair in pairs:
            run = _run_of(kind, pair)
            weight[run] = weight.get(run, 0) + 1
    total, seen, lane_of = sum(weight.values()), 0, {}
    for run, n in weight.items():  # runs in their first order: a lane is a stretch of them
        lane_of[run] = min(lanes - 1, seen * lanes // max(total, 1))
        seen += n
    out: list[list[tuple[str, list[list[str]]]]] = [[] for _ in range(lanes)]
    for kind, pairs in batches:
        split: list[list[list[str]]] = [[] for _ in range(lanes)]
        for pair in pairs:
            split[lane_of[_run_of(kind, pair)]].append(pair)
        for lane, part in zip(out, split, strict=True):
            if part:
                lane.append((kind, sorted(part)))
    return out


def _run_of(kind: str, pair: list[str]) -> str:
    return pair[0] if kind == PRODUCED else pair[1]


# transaction bodies ------------------------------------------------------------------------


def merge_runs(
    tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]], *, imported: bool = False
) -> int:
    """MERGE runs by id; a stub is filled in. On import, a run that has finished since an
    earlier import takes the newer state. Returns how many runs were new or advanced."""
    query = MERGE_RUNS_IMPORTED if imported else MERGE_RUNS
    n: int = tx.run(query, rows=rows).single(strict=True)["n"]
    return n


def merge_artifacts(tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]]) -> int:
    n: int = tx.run(MERGE_ARTIFACTS, rows=rows).single(strict=True)["n"]
    return n


def merge_versions(tx: neo4j.ManagedTransaction, versions: list[VersionRecord]) -> int:
    """Import versions as they are, keeping index and state; aliases move to them."""
    # the artifacts' locks first, in a stable order, as commit_version takes them; then,
    # read under the lock, the next index stays above every imported one
    locked = version_artifacts(versions)
    tx.run(
        "UNWIND $artifacts AS row MERGE (a:Artifact {key: row.key}) "
        "ON CREATE SET a.project = row.project, a.name = row.name, a.type = row.type, "
        "a.created_at = row.created_at, a.next_index = 0 " + LOCK,
        artifacts=locked,
    ).consume()
    tx.run(
        "UNWIND $artifacts AS row MATCH (a:Artifact {key: row.key}) "
        "WITH a, row, a.next_index AS current "
        "SET a.next_index = CASE WHEN current > row.top THEN current ELSE row.top + 1 END",
        artifacts=locked,
    ).consume()
    created: int = tx.run(MERGE_VERSIONS, rows=[version_props(v) for v in versions]).single(
        strict=True
    )["n"]
    tx.run(
        "UNWIND $rows AS row UNWIND row.aliases AS alias "
        "MERGE (l:Alias {key: row.key + '/' + alias}) "
        "SET l.project = row.project, l.name = row.name, l.alias = alias, "
        "l.index = row.index, l.version = row.id",
        rows=[
            {"id": v.id, "key": f"{v.project}/{v.name}", "project": v.project, "name": v.name,
             "index": v.index, "aliases": list(v.aliases)}
            for v in versions
            if v.aliases
        ],
    ).consume()  # fmt: skip
    return created


def merge_edges(tx: neo4j.ManagedTransaction, kind: str, pairs: list[list[str]]) -> int:
    query: LiteralString
    if kind == PRODUCED:
        query = (
            "UNWIND $pairs AS p MERGE (s:Run {id: p[0]}) MERGE (t:ArtifactVersion {id: p[1]}) "
            "MERGE (s)-[:PRODUCED]->(t)"
        )
    else:
        query = (
            "UNWIND $pairs AS p MERGE (s:ArtifactVersion {id: p[0]}) MERGE (t:Run {id: p[1]}) "
            "MERGE (s)-[:CONSUMED_BY]->(t)"
        )
    counters = tx.run(query, pairs=pairs).consume().counters
    return counters.relationships_created


def insert_events(tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]]) -> int:
    """Append events not yet stored (by uid), numbering them from the counter node.

    Locking the counter first serialises every event writer, so the uid check and the
    numbers read after it are exact: ``seq`` is strictly increasing in commit order.
    """
    if not rows:
        return 0
    tx.run("MERGE (a:Counter {name: 'events'}) ON CREATE SET a.value = 0 " + LOCK).consume()
    n: int = tx.run(
        "MATCH (c:Counter {name: 'events'}) "
        "WITH c, [row IN $rows WHERE NOT EXISTS { MATCH (:Event {uid: row.uid}) }] AS new, "
        "c.value AS base "
        "SET c.value = base + size(new) "
        "WITH base, new UNWIND range(0, size(new) - 1) AS i "
        "MERGE (e:Event {uid: new[i].uid}) ON CREATE SET e += new[i], e.seq = base + i + 1 "
        "RETURN count(e) AS n",
        rows=rows,
    ).single(strict=True)["n"]
    return n


# small helpers ------------------------------------------------------------------------------


def unique(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    """The first of each key, in order (a duplicate in one batch would count twice)."""
    first: dict[str, T] = {}
    for item in items:
        first.setdefault(key(item), item)
    return list(first.values())


def chunks(items: list[T], size: int = BATCH) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
