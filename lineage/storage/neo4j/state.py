"""A group of OpenLineage events on Neo4j: its state read in one statement, its writes in one.

:mod:`lineage.openlineage.plan` maps a group of events in memory against the state the group
reads, then writes what they made. Through the protocol calls (``find_locations``,
``artifact_states``, ``get_runs``, ``expand_rows``; ``import_records``, ``update_runs``,
``add_locations``) that is about fifteen statements, each a Bolt round trip and, on a busy
server, a few milliseconds. Here both halves are one statement each:

- :data:`READ`: the storage locations the group names, then the write lock of each artifact
  the group writes (its outputs', by name or location), in key order, as ``commit_version``
  takes it, and only after the locks (a subquery of its own: an Apply runs it whole first)
  each named artifact's type, next index and newest version. Its inputs are read unlocked,
  so that another group that reads them goes on beside it (two lanes of
  :class:`~lineage.openlineage.group.GroupWriter`); an input the plan makes a version of is
  locked by the write, which finds a version another writer made meanwhile (the plan's
  ``_Stale``: the group is stored again event by event). An input no one has stored yet is
  the exception: the statement writes (the locks), so Neo4j seeks the unique indexes with
  ``NodeUniqueIndexSeek(Locking)``, which holds a key it did not find until the commit; a
  second group naming the same new input waits for the first's commit, then finds its
  version (tests/test_openlineage_lanes.py). Then the versions the plan will
  look for by digest (its outputs, its inputs that name a version) and the newest versions
  of the artifacts its other inputs bind to (what the plan would otherwise read one
  artifact at a time); the group's runs and the edges that enter and leave them.
- :data:`WRITE`: the new runs, the versions with their artifacts (created, or their
  next index moved past the versions) and aliases, the edges of each kind, the changed
  runs and the new locations; each a ``CALL () {...}`` subquery, in that order, the
  counts ``import_records`` answers returned.

With BEGIN sent with the read (``transaction()``) and the COMMIT, a group costs three round
trips whatever its size, reads the plan could not foresee aside.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, LiteralString

from lineage.records import RunRecord, VersionRecord
from lineage.storage.codec import (
    RUN_FIELDS,
    RUN_UPDATES_ON_IMPORT,
    VERSION_UPDATES_ON_IMPORT,
)
from lineage.storage.neo4j.cypher import LOCK, VERSION_ROW, fields_list
from lineage.storage.neo4j.staged import CREATE as STAGE

__all__ = [
    "READ",
    "READ_UNLOCKED",
    "WRITE",
    "GroupRead",
    "forced",
    "replanning",
    "version_aliases",
    "version_artifacts",
]


def _map(var: str, fields: tuple[str, ...]) -> LiteralString:
    text: LiteralString = "{" + ", ".join(f"{f}: {var}.{f}" for f in fields) + "}"
    return text


# Planned once, kept however the store grows: planning a statement this long takes 0.2-2 s
# on a busy 2-CPU machine (the store growing from empty, Neo4j would plan them again every
# 10 s or so). But a plan made while the store was nearly empty can scan whole indexes where
# it should seek (a scan of an empty index costs nothing), and kept, each of its lookups
# grows with the store: a group of 256 events went from 1,000 to 130 events/s
# (bench/README.md). Hence the hints: USING INDEX SEEK, as USING INDEX alone pins the index
# and not the seek (plans made on a store of ~9,000 versions still scanned the whole
# ArtifactVersion(digest) and Run(id) indexes once a row: batches of 50 at 250 events/s
# where seeks give 1,000). And the writer plans them again, ``replan=force``, at its groups
# 1, 4, 16, 64, ... (:func:`replanning`), which replaces the kept plan: a handful of plans
# in a writer's life, for whatever else a plan of the empty store chose.
_REPLAN: LiteralString = "CYPHER replan=skip "
_FORCE: LiteralString = "CYPHER replan=force "


def replanning(count: int) -> bool:
    """Whether a writer's ``count``-th group (from 1) plans its statements again: at the
    powers of 4."""
    return count > 0 and count & (count - 1) == 0 and (count.bit_length() - 1) % 2 == 0


def forced(query: LiteralString) -> LiteralString:
    """``query`` (one of this module's) planned again when it runs."""
    assert query.startswith(_REPLAN)
    return _FORCE + query[len(_REPLAN) :]


def _read(lock: bool) -> LiteralString:
    # what the group writes (its outputs, by key or location), locked in key order
    locking: LiteralString = (
        "CALL (locations) { "
        "UNWIND [x IN locations WHERE x[0] IN $lock_uris | x[1] + '/' + x[2]] + $lock_keys "
        "AS key WITH DISTINCT key ORDER BY key "
        "MATCH (a:Artifact {key: key}) USING INDEX SEEK a:Artifact(key) "
        + LOCK
        + " RETURN count(a) AS locked } "
        if lock
        else ""
    )
    query: LiteralString = (
        _REPLAN + "CALL () { UNWIND $uris AS uri "
        "MATCH (l:Location {uri: uri}) USING INDEX SEEK l:Location(uri) "
        "RETURN collect([l.uri, l.project, l.name]) AS locations } "
        "CALL (locations) { UNWIND [x IN locations | x[1] + '/' + x[2]] + $keys AS key "
        "WITH DISTINCT key ORDER BY key RETURN collect(key) AS keys } "
        + locking
        + "CALL (keys) { UNWIND keys AS key "
        "MATCH (a:Artifact {key: key}) USING INDEX SEEK a:Artifact(key) "
        "WHERE a.project IS NOT NULL "
        "OPTIONAL MATCH (p:ArtifactVersion {id: key + ':v' + toString(a.next_index - 1)}) "
        "USING INDEX SEEK p:ArtifactVersion(id) "
        "RETURN collect([a.project, a.name, a.type, a.next_index, p.index, p.created_at]) "
        "AS artifacts } "
        # the key a dataset is stored under: its location's artifact, else its own
        "CALL (locations, keys) { UNWIND $digests AS row "
        "WITH row, [x IN locations WHERE x[0] = row[0] | x[1] + '/' + x[2]] AS at "
        "WITH DISTINCT coalesce(at[0], row[1]) AS key, row[2] AS digest "
        "MATCH (a:Artifact {key: key}) USING INDEX SEEK a:Artifact(key) "
        "WHERE a.project IS NOT NULL "
        "CALL (a, digest) { MATCH (v:ArtifactVersion {digest: digest}) "
        "USING INDEX SEEK v:ArtifactVersion(digest) "
        "WHERE v.project = a.project AND v.name = a.name AND v.state = 'committed' "
        "RETURN v ORDER BY v.index LIMIT 1 } "
        "RETURN collect(" + VERSION_ROW + ") AS digested } "
        "CALL (locations, keys) { UNWIND $newest AS row "
        "WITH row, [x IN locations WHERE x[0] = row[0] | x[1] + '/' + x[2]] AS at "
        "WITH DISTINCT coalesce(at[0], row[1]) AS key "
        "MATCH (a:Artifact {key: key}) USING INDEX SEEK a:Artifact(key) "
        "WHERE a.project IS NOT NULL "
        "CALL (a) { MATCH (v:ArtifactVersion {project: a.project, name: a.name}) "
        "USING INDEX SEEK v:ArtifactVersion(project, name) "
        "WHERE v.state = 'committed' "
        "WITH v ORDER BY v.index DESC LIMIT $scan "
        "RETURN collect(" + VERSION_ROW + ") AS versions } "
        "RETURN collect([a.project, a.name, versions]) AS newest } "
        "CALL () { UNWIND $ids AS id MATCH (r:Run {id: id}) USING INDEX SEEK r:Run(id) "
        "WHERE r.project IS NOT NULL "
        "RETURN collect(" + fields_list("r", RUN_FIELDS) + ") AS runs } "
        "CALL () { UNWIND $ids AS id MATCH (n:Run {id: id})<-[:CONSUMED_BY]-(m) "
        "USING INDEX SEEK n:Run(id) "
        "WHERE n.project IS NOT NULL "
        "RETURN collect([m.id, n.id]) AS ups } "
        "CALL () { UNWIND $ids AS id MATCH (n:Run {id: id})-[:PRODUCED]->(m) "
        "USING INDEX SEEK n:Run(id) "
        "WHERE n.project IS NOT NULL "
        "RETURN collect([n.id, m.id]) AS downs } "
        "RETURN locations, artifacts, digested, newest, runs, ups, downs"
    )
    return query


# within a transaction the artifacts are locked (what is read stays true to the commit)
READ = _read(lock=True)
READ_UNLOCKED = _read(lock=False)

# as bulk.merge_runs (imported=True): a new run, or a stub filled in, counts
_RUNS: LiteralString = (
    "CALL () { UNWIND $runs AS row MERGE (r:Run {id: row.id}) "
    "WITH r, row, r.project IS NULL AS fresh "
    "SET r += CASE WHEN fresh THEN row ELSE {} END "
    "WITH r, row, fresh, NOT fresh AND r.state = 'running' AND row.state <> 'running' AS adv "
    "SET r += CASE WHEN adv THEN " + _map("row", RUN_UPDATES_ON_IMPORT) + " ELSE {} END "
    "RETURN sum(CASE WHEN fresh OR adv THEN 1 ELSE 0 END) AS runs } "
)
# as bulk.merge_versions: the artifacts created or locked, their next index past the
# versions (read in a subquery after the locks), the versions, then their aliases
_VERSIONS: LiteralString = (
    "CALL () { UNWIND $artifacts AS row MERGE (a:Artifact {key: row.key}) "
    "ON CREATE SET a.project = row.project, a.name = row.name, a.type = row.type, "
    "a.created_at = row.created_at, a.next_index = 0 " + LOCK + " RETURN count(a) AS locked } "
    "CALL () { UNWIND $artifacts AS row "
    "MATCH (a:Artifact {key: row.key}) USING INDEX SEEK a:Artifact(key) "
    "WITH a, row, a.next_index AS current "
    "SET a.next_index = CASE WHEN current > row.top THEN current ELSE row.top + 1 END "
    "RETURN count(a) AS moved } "
    "CALL () { UNWIND $versions AS row MERGE (v:ArtifactVersion {id: row.id}) "
    "WITH row, v, v.project IS NULL AS fresh "
    "SET v += CASE WHEN fresh THEN row ELSE " + _map("row", VERSION_UPDATES_ON_IMPORT) + " END "
    "RETURN sum(CASE WHEN fresh THEN 1 ELSE 0 END) AS versions } "
    "CALL () { UNWIND $aliases AS row UNWIND row.aliases AS alias "
    "MERGE (l:Alias {key: row.key + '/' + alias}) "
    "SET l.project = row.project, l.name = row.name, l.alias = alias, "
    "l.index = row.index, l.version = row.id RETURN count(l) AS aliased } "
)
_EDGES: LiteralString = (
    "CALL () { UNWIND $produced AS p MERGE (s:Run {id: p[0]}) "
    "MERGE (t:ArtifactVersion {id: p[1]}) MERGE (s)-[:PRODUCED]->(t) RETURN count(*) AS made } "
    "CALL () { UNWIND $consumed AS p MERGE (s:ArtifactVersion {id: p[0]}) "
    "MERGE (t:Run {id: p[1]}) MERGE (s)-[:CONSUMED_BY]->(t) RETURN count(*) AS used } "
)
_CHANGED: LiteralString = (
    "CALL () { UNWIND $changed AS row MATCH (r:Run {id: row.id}) USING INDEX SEEK r:Run(id) "
    "WHERE r.project IS NOT NULL SET r += row.props RETURN count(r) AS changed } "
)
_LOCATIONS: LiteralString = (
    "CALL () { UNWIND $locations AS row MERGE (l:Location {uri: row.uri}) "
    "ON CREATE SET l.project = row.project, l.name = row.name RETURN count(l) AS placed } "
)


_STAGED: LiteralString = "CALL () { " + STAGE + " RETURN count(s) AS staged } "


# every part always there (an empty list writes nothing): one text, planned once; a text per
# combination of parts was planned again for each new one, ~0.1-0.5 s on a busy server
WRITE: LiteralString = (
    _REPLAN + _RUNS + _VERSIONS + _EDGES + _CHANGED + _LOCATIONS + _STAGED + "RETURN runs, versions"
)


def version_artifacts(versions: Sequence[VersionRecord]) -> list[dict[str, Any]]:
    """Each artifact of ``versions`` once, in key order (the order every writer locks
    artifacts in), with the highest index among them (``top``) and, for one new to the store,
    the made time of the earliest of them (``created_at``: lineage.made)."""
    artifacts: dict[str, dict[str, Any]] = {}
    for v in versions:
        key = f"{v.project}/{v.name}"
        row = artifacts.setdefault(
            key,
            {"key": key, "project": v.project, "name": v.name, "type": v.type,
             "created_at": float(v.made_at), "top": v.index},
        )  # fmt: skip
        row["top"] = max(row["top"], v.index)
        row["created_at"] = min(row["created_at"], float(v.made_at))
    return sorted(artifacts.values(), key=lambda row: str(row["key"]))


def version_aliases(versions: Sequence[VersionRecord]) -> list[dict[str, Any]]:
    """The aliases of ``versions``, a row per version that has some, in order (of two
    versions with one alias, the later one keeps it)."""
    return [
        {"id": v.id, "key": f"{v.project}/{v.name}", "project": v.project, "name": v.name,
         "index": v.index, "aliases": list(v.aliases)}
        for v in versions
        if v.aliases
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class GroupRead:
    """A group's state (``Neo4jGraphStore.group_state``): storage locations by uri, artifact
    states by ``(project, name)``, runs by id, the ``(source, target)`` edges entering
    (``ups``) and leaving (``downs``) them, versions by ``(project, name, digest)`` and the
    newest versions of artifacts, newest first."""

    locations: dict[str, tuple[str, str]]
    artifacts: dict[tuple[str, str], tuple[str, int, int | None, float | None]]
    runs: dict[str, RunRecord]
    ups: list[tuple[str, str]]
    downs: list[tuple[str, str]]
    digested: dict[tuple[str, str, str], VersionRecord]
    newest: dict[tuple[str, str], list[VersionRecord]]
