"""Every Cypher text of the Neo4j store, written once at import: none is built per call.

Record fields are node properties of the same names (:mod:`lineage.storage.codec`); the
queries that read whole records list them from the codec's field tuples. The only value ever
formatted into a query is a walk's depth bound, an int (Cypher takes no parameter there).
"""

from __future__ import annotations

from typing import LiteralString

from lineage.storage.codec import (
    ARTIFACT_FIELDS,
    EVENT_FIELDS,
    RUN_FIELDS,
    RUN_UPDATES_ON_IMPORT,
    TOKEN_FIELDS,
    VERSION_FIELDS,
    VERSION_STORED,
    VERSION_UPDATES_ON_IMPORT,
)
from lineage.storage.graph import Direction

__all__ = [
    "ARTIFACT",
    "ARTIFACT_ALIASES",
    "DERIVE",
    "EVENTS",
    "EXPAND",
    "LOCK",
    "MERGE_ARTIFACTS",
    "MERGE_RUNS",
    "MERGE_RUNS_IMPORTED",
    "MERGE_VERSIONS",
    "REACHES",
    "RUNS",
    "SCHEMA",
    "SPARSE_VERSION_FIELDS",
    "TOKEN",
    "TREE",
    "TREE_TRIPLES",
    "TREE_VERSIONS",
    "VERSIONS",
    "VERSION_DENSE_FIELDS",
    "VERSION_ROW",
    "VERSION_ROWS",
    "fields_list",
    "limit_clause",
    "run_filters",
    "walk_query",
    "walk_records_query",
]


def fields_list(var: str, fields: tuple[str, ...]) -> LiteralString:
    """``[n.a, n.b, ...]``: a record's properties, in field order."""
    text: LiteralString = "[" + ", ".join(f"{var}.{name}" for name in fields) + "]"
    return text


# Unique constraints give the index every MERGE and point lookup seeks on; the range
# indexes serve the listings.
SCHEMA: dict[str, LiteralString] = {
    "run_id": "CREATE CONSTRAINT run_id IF NOT EXISTS FOR (n:Run) REQUIRE n.id IS UNIQUE",
    "version_id": "CREATE CONSTRAINT version_id IF NOT EXISTS "
    "FOR (n:ArtifactVersion) REQUIRE n.id IS UNIQUE",
    "artifact_key": "CREATE CONSTRAINT artifact_key IF NOT EXISTS "
    "FOR (n:Artifact) REQUIRE n.key IS UNIQUE",
    "alias_key": "CREATE CONSTRAINT alias_key IF NOT EXISTS FOR (n:Alias) REQUIRE n.key IS UNIQUE",
    "event_uid": "CREATE CONSTRAINT event_uid IF NOT EXISTS FOR (n:Event) REQUIRE n.uid IS UNIQUE",
    "token_id": "CREATE CONSTRAINT token_id IF NOT EXISTS FOR (n:Token) REQUIRE n.id IS UNIQUE",
    "token_digest": "CREATE CONSTRAINT token_digest IF NOT EXISTS "
    "FOR (n:Token) REQUIRE n.digest IS UNIQUE",
    "counter_name": "CREATE CONSTRAINT counter_name IF NOT EXISTS "
    "FOR (n:Counter) REQUIRE n.name IS UNIQUE",
    # a blob store's staged blobs (lineage.storage.neo4j.staged), oldest first
    "staged_scope": "CREATE INDEX staged_scope IF NOT EXISTS "
    "FOR (n:StagedBlob) ON (n.scope, n.seq)",
    "run_project": "CREATE INDEX run_project IF NOT EXISTS FOR (n:Run) ON (n.project)",
    "run_state": "CREATE INDEX run_state IF NOT EXISTS FOR (n:Run) ON (n.state)",
    "run_parent": "CREATE INDEX run_parent IF NOT EXISTS FOR (n:Run) ON (n.parent)",
    "location_uri": "CREATE CONSTRAINT location_uri IF NOT EXISTS "
    "FOR (n:Location) REQUIRE n.uri IS UNIQUE",
    "artifact_project": "CREATE INDEX artifact_project IF NOT EXISTS "
    "FOR (n:Artifact) ON (n.project)",
    "version_artifact": "CREATE INDEX version_artifact IF NOT EXISTS "
    "FOR (n:ArtifactVersion) ON (n.project, n.name)",
    # a page of an artifact's versions in index order, without sorting them all
    "version_index": "CREATE INDEX version_index IF NOT EXISTS "
    "FOR (n:ArtifactVersion) ON (n.project, n.name, n.index)",
    "version_digest": "CREATE INDEX version_digest IF NOT EXISTS "
    "FOR (n:ArtifactVersion) ON (n.digest)",
    "alias_version": "CREATE INDEX alias_version IF NOT EXISTS FOR (n:Alias) ON (n.version)",
    "event_project": "CREATE INDEX event_project IF NOT EXISTS FOR (n:Event) ON (n.project)",
    # a first page of a broad filter walks its order (lineage.storage.neo4j.store find_runs)
    "run_started": "CREATE INDEX run_started IF NOT EXISTS FOR (n:Run) ON (n.started_at)",
    "version_created": "CREATE INDEX version_created IF NOT EXISTS "
    "FOR (n:ArtifactVersion) ON (n.created_at)",
}

# Takes the node's write lock for the rest of the transaction without changing it. Reads of
# the node in *later* statements then see the latest commit.
LOCK: LiteralString = "SET a._lock = true REMOVE a._lock"

# Reads return ONE record holding a list of positional rows: the driver's cost per record
# dominates a big answer (a lineage of 100,000 records), the server's does not.
RUNS: LiteralString = "RETURN collect(" + fields_list("r", RUN_FIELDS) + ") AS rows"
# the hint keeps a plan cached for good (replan=skip: lineage.storage.neo4j.state) on a seek
# of the index whatever the store held when it was planned
_ALIASES_OF_V: LiteralString = (
    "COLLECT { MATCH (l:Alias {version: v.id}) USING INDEX SEEK l:Alias(version) RETURN l.alias }"
)
# a version ``v``'s fields in VERSION_FIELDS order, its artifact ``a``'s type, the aliases
# that point at it (for one version)
VERSION_ROW: LiteralString = (
    "["
    + ", ".join(
        "a.type" if f == "type" else _ALIASES_OF_V if f == "aliases" else f"v.{f}"
        for f in VERSION_FIELDS
    )
    + "]"
)
VERSIONS: LiteralString = (
    "MATCH (a:Artifact {key: v.project + '/' + v.name}) RETURN collect(" + VERSION_ROW + ") AS rows"
)
# the same for many versions: their own fields (null for type and aliases) and id, then one lookup
# per artifact for its type and aliases (two index seeks per version fewer: a 100,000-version
# answer in ~half the time)
VERSION_ROWS: LiteralString = (
    "RETURN collect(["
    + ", ".join("null" if f in ("type", "aliases") else f"v.{f}" for f in VERSION_FIELDS)
    + ", v.id]) AS rows"
)
ARTIFACT_ALIASES: LiteralString = (
    "UNWIND $keys AS key MATCH (a:Artifact {key: key}) "
    "RETURN collect([key, a.type, COLLECT { MATCH (l:Alias) WHERE l.key STARTS WITH key + '/' "
    "RETURN [l.version, l.alias] }]) AS rows"
)
ARTIFACT: LiteralString = fields_list("a", ARTIFACT_FIELDS)
EVENTS: LiteralString = "RETURN collect(" + fields_list("e", EVENT_FIELDS) + ") AS rows"
TOKEN: LiteralString = fields_list("t", TOKEN_FIELDS)

# expand: ids are split by shape (a version id has ':', a run id never does), so each id is
# one unique-index seek on its own label, then an expand of the one relationship type that
# leaves (or enters) that label, (:Run)-[:PRODUCED]->, (:ArtifactVersion)-[:CONSUMED_BY]->,
# so every edge's kind is known without reading it. The answer is ONE record holding
# [near id, far ids...] per node: the driver's cost per record, not the server, is what a
# 200,000-edge answer costs (8.7 s as one record per edge, 3.1 s like this, pure-Python
# driver). PROFILE on a 10,000-run tree, a run and two versions (one a dataset with 493
# consumers), Neo4j 5.26 slotted runtime:
#
#   ProduceResults <- CartesianProduct
#     <- EagerAggregation collect([near] + far) AS runs
#        <- EagerAggregation cache[n.id] AS near, collect(m.id)   rows 1    db hits 1
#           <- Expand(All) (n)-[:PRODUCED]->(m)                    rows 1    db hits 4
#              <- Apply <- Unwind $runs
#                       <- NodeUniqueIndexSeek n:Run(id)           rows 1    db hits 2
#     <- EagerAggregation collect([near] + far) AS versions
#        <- EagerAggregation cache[n.id] AS near, collect(m.id)   rows 2    db hits 493
#           <- Expand(All) (n)-[:CONSUMED_BY]->(m)                 rows 493  db hits 497
#              <- Apply <- Unwind $versions
#                       <- NodeUniqueIndexSeek n:ArtifactVersion(id)  rows 2  db hits 4
#
# about 2 db hits per edge returned, 2 per id: no var-length expand, no path enumeration.
# tests/storage/test_neo4j.py checks the plan's shape.
EXPAND: dict[str, LiteralString] = {
    "down": (
        "CALL () { UNWIND $runs AS id MATCH (n:Run {id: id})-[:PRODUCED]->(m) "
        "  WITH n.id AS near, collect(m.id) AS far RETURN collect([near] + far) AS runs } "
        "CALL () { UNWIND $versions AS id MATCH (n:ArtifactVersion {id: id})-[:CONSUMED_BY]->(m) "
        "  WITH n.id AS near, collect(m.id) AS far RETURN collect([near] + far) AS versions } "
        "RETURN runs, versions"
    ),
    "up": (
        "CALL () { UNWIND $runs AS id MATCH (n:Run {id: id})<-[:CONSUMED_BY]-(m) "
        "  WITH n.id AS near, collect(m.id) AS far RETURN collect([near] + far) AS runs } "
        "CALL () { UNWIND $versions AS id MATCH (n:ArtifactVersion {id: id})<-[:PRODUCED]-(m) "
        "  WITH n.id AS near, collect(m.id) AS far RETURN collect([near] + far) AS versions } "
        "RETURN runs, versions"
    ),
}


# A whole walk (walk_rows): the start ids seeked as above, then a var-length expand that
# Neo4j plans as a pruning BFS, each node visited once however many paths reach it, then
# the edges leaving the nodes found. PROFILE, downstream of the base of the same tree:
#
#   Projection [n IN found | n.id]                                db hits 20,001
#     <- Apply
#        <- EagerAggregation collect(n) <- Distinct n
#           <- VarLengthExpand(Pruning,BFS,All) (s)-[:PRODUCED|CONSUMED_BY*0..]->(n)
#                                                      rows 20,001  db hits 70,001
#              <- Distinct s <- Union of the two NodeUniqueIndexSeek
#        <- EagerAggregation collect(n.id) AS near, collect(m.id) AS far   db hits 20,000
#           <- Expand(All) (n)-[:PRODUCED|CONSUMED_BY]->(m)    rows 20,000  db hits 70,001
#              <- Unwind found
#
# about 9 db hits per node of the answer. Upstream of a depth-20 leaf: 40 nodes, 370 db
# hits, about 1 ms a walk against 25-35 ms for 40 expand round trips.
def walk_query(direction: Direction, hops: int | None) -> LiteralString:
    """A walk's query: ``nodes``, and ``near``/``far``, the edges leaving them."""
    return _walk_body(direction, hops) + "RETURN [n IN found | n.id] AS nodes, near, far"


def _walk_body(direction: Direction, hops: int | None) -> LiteralString:
    """The walk up to ``found`` (the nodes), ``near`` and ``far`` (the edges leaving them)."""
    # Cypher takes no parameter for a var-length bound: the one value formatted into a
    # query is this int (validated by lineage.traversal.check_depth, cast again here).
    bound = "" if hops is None else str(max(0, int(hops)))  # below 0 walks like 0
    left, right = ("-", "->") if direction == "down" else ("<-", "-")
    query = (
        "CALL () { UNWIND $runs AS id MATCH (s:Run {id: id}) RETURN s "
        "UNION UNWIND $versions AS id MATCH (s:ArtifactVersion {id: id}) RETURN s } "
        f"MATCH (s){left}[:PRODUCED|CONSUMED_BY*0..{bound}]{right}(n) "
        "WITH DISTINCT n WITH collect(n) AS found "
        "CALL (found) { UNWIND found AS n "
        f"  MATCH (n){left}[:PRODUCED|CONSUMED_BY]{right}(m) "
        "  RETURN collect(n.id) AS near, collect(m.id) AS far } "
    )
    return query


# walk_records: the same walk and, in the same query, the records of the nodes found (they
# are in hand: no index seek per id), each artifact's type and aliases once. Records come
# back as columns, one list per property: the driver decodes a 130,000-version answer as
# columns in 0.07 s of CPU, as a list of rows in 0.57 s (the server's cost is the same).
#
# A value costs the server about a microsecond to read and send, so only what the id does not
# say travels (project, name and index are parsed from it), and what is rare travels as
# [id, value] pairs, where it is not the field's default: these fields, with their test.
# Each artifact's key ("project/name") is cut from the ids already read ("project/name:vN":
# the index is digits, so the last ":v" ends the key, whatever the name holds): reading
# project and name again cost the 130,000-version tree 260,000 more property reads.
SPARSE_VERSION_FIELDS: dict[str, LiteralString] = {
    "description": "v.description IS NOT NULL",
    "state": "v.state <> 'committed'",
    "tags": "size(v.tags) > 0",
    "event_at": "v.event_at IS NOT NULL",  # OpenLineage's versions only
}
VERSION_DENSE_FIELDS = tuple(
    f for f in VERSION_STORED if f not in ("project", "name", "index", *SPARSE_VERSION_FIELDS)
)
_VERSION_COLUMNS: LiteralString = (
    "CALL (found) { WITH [v IN found WHERE v:ArtifactVersion AND v.project IS NOT NULL] AS vs "
    "  WITH vs, [v IN vs | v.id] AS ids "
    "  RETURN [ids, "
    + "".join(f"[v IN vs | v.{f}], " for f in VERSION_DENSE_FIELDS)
    + ", ".join(
        f"[v IN vs WHERE {test} | [v.id, v.{f}]]" for f, test in SPARSE_VERSION_FIELDS.items()
    )
    + "] AS versions, "
    "  COLLECT { UNWIND ids AS id "
    "  RETURN DISTINCT left(id, size(id) - size(last(split(id, ':v'))) - 2) } AS keys } "
    "CALL (keys) { UNWIND keys AS key MATCH (a:Artifact {key: key}) "
    "  RETURN collect([key, a.type, COLLECT { MATCH (l:Alias) "
    "  WHERE l.key STARTS WITH key + '/' RETURN [l.version, l.alias] }]) AS artifacts } "
)
# The whole derivation tree under a version (no depth limit, so nothing is cut): the versions
# found, then per version, run consuming it and version that run produced, a triple, as three
# columns. 390,000 ids for a 130,000-version tree, where the walk's edges would be 520,000
# ids and the nodes' 260,000 more.
_TREE_FOUND: LiteralString = (
    "MATCH (s:ArtifactVersion {id: $root}) "
    "MATCH (s)-[:PRODUCED|CONSUMED_BY*0..]->(n:ArtifactVersion) "
    "WITH DISTINCT n WITH collect(n) AS found "
)
_TREE_TRIPLES: LiteralString = (
    "CALL (found) { UNWIND found AS a MATCH (a)-[:CONSUMED_BY]->(r:Run)-[:PRODUCED]->(b) "
    "  RETURN [collect(a.id), collect(b.id), collect(r.id)] AS triples } "
)
TREE: LiteralString = (
    _TREE_FOUND + _TREE_TRIPLES + _VERSION_COLUMNS + "RETURN triples, versions, artifacts"
)
# The same answer as two queries that the server runs at once, on two of its threads: the
# triples, and the versions' columns (the larger half, which the client decodes while the
# server is still on the triples). Each walks the tree itself: the walk is a fifth of the
# query's time, the two halves each twice that.
TREE_TRIPLES: LiteralString = _TREE_FOUND + _TREE_TRIPLES + "RETURN triples"
TREE_VERSIONS: LiteralString = _TREE_FOUND + _VERSION_COLUMNS + "RETURN versions, artifacts"
# One generation of a derivation tree (derive_rows, what pages of a tree walk): per run
# consuming one of the versions, [version, run, its outputs...] (no outputs: [version, run]).
DERIVE: LiteralString = (
    "UNWIND $ids AS id MATCH (a:ArtifactVersion {id: id})-[:CONSUMED_BY]->(r:Run) "
    "OPTIONAL MATCH (r)-[:PRODUCED]->(b:ArtifactVersion) "
    "WITH a, r, collect(b.id) AS outputs RETURN collect([a.id, r.id] + outputs) AS rows"
)
_RUN_COLUMNS: LiteralString = (
    "CALL (found) { WITH [r IN found WHERE r:Run AND r.project IS NOT NULL] AS rs RETURN ["
    + ", ".join(f"[r IN rs | r.{f}]" for f in RUN_FIELDS)
    + "] AS runs } "
)


def walk_records_query(direction: Direction, hops: int | None, runs: bool) -> LiteralString:
    """A walk's query that also answers the records found: ``versions`` (columns:
    ``[ids, *VERSION_DENSE_FIELDS, *SPARSE_VERSION_FIELDS pairs]``), ``artifacts`` and,
    if asked for, ``runs`` (a column per RUN_FIELDS)."""
    return (
        _walk_body(direction, hops)
        + _VERSION_COLUMNS
        + (_RUN_COLUMNS if runs else "WITH *, [] AS runs ")
        + "RETURN [n IN found | n.id] AS nodes, near, far, versions, artifacts, runs"
    )


def _reaches_query(direction: str, source_version: bool, target_version: bool) -> str:
    left, right = ("-", "->") if direction == "down" else ("<-", "-")
    source_label = "ArtifactVersion" if source_version else "Run"
    target_label = "ArtifactVersion" if target_version else "Run"
    return (
        f"OPTIONAL MATCH (s:{source_label} {{id: $source}}), (t:{target_label} {{id: $target}}) "
        f"OPTIONAL MATCH p = shortestPath((s){left}[:PRODUCED|CONSUMED_BY*1..]{right}(t)) "
        "RETURN p IS NOT NULL AS found"
    )


REACHES: dict[tuple[str, bool, bool], LiteralString] = {
    (way, source, target): _reaches_query(way, source, target)
    for way in ("down", "up")
    for source in (False, True)
    for target in (False, True)
}

# writes -------------------------------------------------------------------------------------


def _map(var: str, fields: tuple[str, ...]) -> LiteralString:
    """``{a: row.a, b: row.b}``: those fields of an imported row."""
    text: LiteralString = "{" + ", ".join(f"{f}: {var}.{f}" for f in fields) + "}"
    return text


# MERGE runs by id; a stub is filled in. On import, a run that has finished since an earlier
# import takes the newer state. Both answer how many runs were new (or advanced).
_MERGE_RUN: LiteralString = (
    "UNWIND $rows AS row MERGE (r:Run {id: row.id}) "
    "WITH r, row, r.project IS NULL AS fresh "
    "SET r += CASE WHEN fresh THEN row ELSE {} END "
)
MERGE_RUNS: LiteralString = _MERGE_RUN + "RETURN sum(CASE WHEN fresh THEN 1 ELSE 0 END) AS n"


def _reflatten(when: LiteralString, var: LiteralString, doc: LiteralString) -> LiteralString:
    """A flattened document (lineage.storage.neo4j.filter) replaced by the row's, when
    ``when``: its stale keys go."""
    return (
        f"FOREACH (k IN CASE WHEN {when} THEN [k IN keys({var}) WHERE k STARTS WITH '{doc}.'] "
        f"ELSE [] END | REMOVE {var}[k]) "
        f"FOREACH (k IN CASE WHEN {when} THEN [k IN keys(row) WHERE k STARTS WITH '{doc}.'] "
        f"ELSE [] END | SET {var}[k] = row[k]) "
    )


MERGE_RUNS_IMPORTED: LiteralString = (
    _MERGE_RUN
    + "WITH r, row, fresh, NOT fresh AND r.state = 'running' AND row.state <> 'running' AS adv "
    "SET r += CASE WHEN adv THEN "
    + _map("row", RUN_UPDATES_ON_IMPORT)
    + " ELSE {} END "
    + _reflatten("adv", "r", "summary")
    + "RETURN sum(CASE WHEN fresh OR adv THEN 1 ELSE 0 END) AS n"
)
MERGE_ARTIFACTS: LiteralString = (
    "UNWIND $rows AS row MERGE (a:Artifact {key: row.key}) "
    "ON CREATE SET a += row, a.next_index = 0, a._new = true "
    "WITH a, a._new IS NOT NULL AS fresh REMOVE a._new "
    "RETURN sum(CASE WHEN fresh THEN 1 ELSE 0 END) AS n"
)
# a version imported again takes the fields that can change since: an edit, a deletion
MERGE_VERSIONS: LiteralString = (
    "UNWIND $rows AS row MERGE (v:ArtifactVersion {id: row.id}) "
    "WITH row, v, v.project IS NULL AS fresh "
    "SET v += CASE WHEN fresh THEN row ELSE "
    + _map("row", VERSION_UPDATES_ON_IMPORT)
    + " END "
    + _reflatten("NOT fresh", "v", "metadata")
    + "RETURN sum(CASE WHEN fresh THEN 1 ELSE 0 END) AS n"
)

# small builders ------------------------------------------------------------------------------


def run_filters(
    project: str | None, job_type: str | None, state: str | None
) -> list[LiteralString]:
    """WHERE clauses for runs (parameters $project, $job_type, $state), stubs excluded."""
    where: list[LiteralString] = ["r.project IS NOT NULL"]
    if project is not None:
        where.append("r.project = $project")
    if job_type is not None:
        where.append("r.job_type = $job_type")
    if state is not None:
        where.append("r.state = $state")
    return where


def limit_clause(limit: int | None) -> LiteralString:
    """`` LIMIT $limit``, or nothing (SQLite reads a negative LIMIT as "no limit")."""
    return "" if limit is None or limit < 0 else " LIMIT $limit"
