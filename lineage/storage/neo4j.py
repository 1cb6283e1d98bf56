"""The server GraphStore: Neo4j 5.26 through the official driver.

Graph model (ids as in :mod:`lineage.records`)::

    (:ArtifactVersion {id})-[:CONSUMED_BY]->(:Run {id})-[:PRODUCED]->(:ArtifactVersion {id})
    (:Artifact {key: "project/name", type, next_index})
    (:Alias {key: "project/name/alias", version})   (:Event {uid, seq})   (:Token {id, digest})
    (:Counter {name: "events", value})               the event sequence

JSON-ish fields (config, summary, code, metadata, event old/new) are JSON strings, so a record
reads back exactly as SQLite returns it. An edge always has both nodes: an edge imported
before its endpoint creates a *stub* (a node with only ``id``); stubs have no ``project``, every
read skips them, and importing or creating the real record fills them in.

Every call is one managed transaction (``execute_write``/``execute_read``) whose function is
idempotent (MERGE on unique keys, generated uids fixed before the first attempt), so the
driver's retries never duplicate a node or an edge. Batches go through ``UNWIND``. Besides
the protocol, ``walk_rows``, ``walk_records``, ``tree_rows`` and ``reaches`` answer a whole
traversal, records included, in one round trip (a pruning BFS on the server). Needs Neo4j
5.26 or later (``CALL () {...}``, ``OPTIONAL CALL``).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, LiteralString, TypeVar
from urllib.parse import urlsplit

import neo4j
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConfigurationError,
    ConnectionPoolError,
    DatabaseUnavailable,
    IncompleteCommit,
    ServiceUnavailable,
    SessionExpired,
)

from lineage.errors import (
    InvalidInput,
    StoreUnavailable,
    TypeMismatch,
    Unauthenticated,
    VersionNotFound,
)
from lineage.records import (
    CONSUMED_BY,
    PRODUCED,
    ArtifactRecord,
    CodeVersion,
    Edge,
    Event,
    RunRecord,
    TokenRecord,
    VersionRecord,
    version_id,
    version_record,
)
from lineage.storage.graph import Direction, NewVersion
from lineage.traversal import derived_triples

__all__ = ["Neo4jGraphStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
BATCH = 2000  # measured: 2,000-row transactions ingest faster than 5,000 or 20,000 (1g heap)
_UNAVAILABLE = (ServiceUnavailable, SessionExpired, ConnectionPoolError, DatabaseUnavailable)
_KINDS = (PRODUCED, CONSUMED_BY)

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
    "run_project": "CREATE INDEX run_project IF NOT EXISTS FOR (n:Run) ON (n.project)",
    "run_state": "CREATE INDEX run_state IF NOT EXISTS FOR (n:Run) ON (n.state)",
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
}

# Takes the node's write lock for the rest of the transaction without changing it. Reads of
# the node in *later* statements then see the latest commit.
_LOCK: LiteralString = "SET a._lock = true REMOVE a._lock"

# Reads return ONE record holding a list of positional rows: the driver's cost per record
# dominates a big answer (a lineage of 100,000 records), the server's does not.
_RUNS: LiteralString = (
    "RETURN collect([r.id, r.project, r.name, r.job_type, r.state, r.config, r.summary, r.tags, "
    "r.notes, r.code, r.host, r.pid, r.started_at, r.finished_at, r.error]) AS rows"
)
# a version's fields, its artifact's type, the aliases that point at it (for one version)
_VERSIONS: LiteralString = (
    "MATCH (a:Artifact {key: v.project + '/' + v.name}) "
    "RETURN collect([v.project, v.name, a.type, v.index, v.digest, v.size, v.file_count, "
    "v.metadata, v.description, v.created_by, v.created_at, v.state, "
    "COLLECT { MATCH (l:Alias {version: v.id}) RETURN l.alias }]) AS rows"
)
# the same for many versions: their own fields, then one lookup per artifact for its type
# and aliases (two index seeks per version fewer: a 100,000-version answer in ~half the time)
_VERSION_FIELDS: LiteralString = (
    "RETURN collect([v.project, v.name, null, v.index, v.digest, v.size, v.file_count, "
    "v.metadata, v.description, v.created_by, v.created_at, v.state, v.id]) AS rows"
)
_ARTIFACT_ALIASES: LiteralString = (
    "UNWIND $keys AS key MATCH (a:Artifact {key: key}) "
    "RETURN collect([key, a.type, COLLECT { MATCH (l:Alias) WHERE l.key STARTS WITH key + '/' "
    "RETURN [l.version, l.alias] }]) AS rows"
)
_EVENTS: LiteralString = (
    "RETURN collect([e.seq, e.project, e.target, e.kind, e.at, e.actor, e.old, e.new, e.uid]) "
    "AS rows"
)
# ids per lookup query: bounds the list the server builds for one answer
_LOOKUP = 20_000
# up to this many ids, get_versions is one query (resolving a ref: one round trip, not two)
_FEW = 16

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
_EXPAND: dict[str, LiteralString] = {
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
def _walk_query(direction: Direction, hops: int | None) -> LiteralString:
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
_VERSION_COLUMNS: LiteralString = (
    # A value costs the server about a microsecond to read and send, so only what the id
    # does not say travels (project, name and index are parsed from it), and what is rare
    # travels as [id, value] pairs: a description, a state other than 'committed'. collect()
    # drops nulls: a null created_by travels as '' (a run id is never empty).
    "CALL (found) { UNWIND found AS v WITH v WHERE v:ArtifactVersion AND v.project IS NOT NULL "
    "  RETURN [collect(v.id), collect(v.digest), collect(v.size), collect(v.file_count), "
    "  collect(v.metadata), collect(coalesce(v.created_by, '')), collect(v.created_at), "
    "  collect(CASE WHEN v.state <> 'committed' THEN [v.id, v.state] END), "
    "  collect(CASE WHEN v.description IS NOT NULL THEN [v.id, v.description] END)] AS versions, "
    "  collect(DISTINCT v.project + '/' + v.name) AS keys } "
    "CALL (keys) { UNWIND keys AS key MATCH (a:Artifact {key: key}) "
    "  RETURN collect([key, a.type, COLLECT { MATCH (l:Alias) "
    "  WHERE l.key STARTS WITH key + '/' RETURN [l.version, l.alias] }]) AS artifacts } "
)
# The whole derivation tree under a version (no depth limit, so nothing is cut): the versions
# found, then per version, run consuming it and version that run produced, a triple, as three
# columns. 390,000 ids for a 130,000-version tree, where the walk's edges would be 520,000
# ids and the nodes' 260,000 more.
_TREE: LiteralString = (
    "MATCH (s:ArtifactVersion {id: $root}) "
    "MATCH (s)-[:PRODUCED|CONSUMED_BY*0..]->(n:ArtifactVersion) "
    "WITH DISTINCT n WITH collect(n) AS found "
    "CALL (found) { UNWIND found AS a MATCH (a)-[:CONSUMED_BY]->(r:Run)-[:PRODUCED]->(b) "
    "  RETURN [collect(a.id), collect(b.id), collect(r.id)] AS triples } "
    + _VERSION_COLUMNS
    + "RETURN triples, versions, artifacts"
)
_RUN_COLUMNS: LiteralString = (
    "CALL (found) { WITH [r IN found WHERE r:Run AND r.project IS NOT NULL] AS rs "
    "  RETURN [[r IN rs | r.id], [r IN rs | r.project], [r IN rs | r.name], "
    "  [r IN rs | r.job_type], [r IN rs | r.state], [r IN rs | r.config], "
    "  [r IN rs | r.summary], [r IN rs | r.tags], [r IN rs | r.notes], [r IN rs | r.code], "
    "  [r IN rs | r.host], [r IN rs | r.pid], [r IN rs | r.started_at], "
    "  [r IN rs | r.finished_at], [r IN rs | r.error]] AS runs } "
)


def _walk_records_query(direction: Direction, hops: int | None, runs: bool) -> LiteralString:
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


# every variant written once, at import: no Cypher is built per call
_REACHES: dict[tuple[str, bool, bool], LiteralString] = {
    (way, source, target): _reaches_query(way, source, target)
    for way in ("down", "up")
    for source in (False, True)
    for target in (False, True)
}


class Neo4jGraphStore:
    """GraphStore on a Neo4j 5 server (or cluster, or Aura).

    >>> store = Neo4jGraphStore("neo4j://localhost:7687", user="neo4j", password="...")

    ``user``, ``password`` and ``database`` default to ``NEO4J_USER``, ``NEO4J_PASSWORD`` and
    ``NEO4J_DATABASE`` (no auth, the server's default database). An unreachable server raises
    StoreUnavailable within about ``connect_timeout`` seconds; once connected, a call that still
    finds the server gone after ``max_retry_time`` seconds of the driver's retries raises it too.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        connect_timeout: float = 10.0,
        max_retry_time: float = 30.0,
    ) -> None:
        self.url = url
        self._shown = _redact(url)
        user = user or os.environ.get("NEO4J_USER")
        password = password or os.environ.get("NEO4J_PASSWORD")
        self._database = database or os.environ.get("NEO4J_DATABASE") or None
        auth = (user or "neo4j", password or "") if user or password else None
        try:
            self._driver = neo4j.GraphDatabase.driver(
                url,
                auth=auth,
                connection_timeout=connect_timeout,
                max_transaction_retry_time=max_retry_time,
                notifications_min_severity="OFF",
                warn_notification_severity="OFF",
                user_agent="lineage",
            )
        except (ConfigurationError, ValueError) as exc:
            raise InvalidInput(f"invalid Neo4j URL {self._shown}: {exc}", url=url) from exc
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()
        try:
            self._driver.verify_connectivity()
            self._create_schema()
        except ValueError as exc:
            self._driver.close()
            raise InvalidInput(f"invalid Neo4j URL {self._shown}: {_line(exc)}", url=url) from exc
        except AuthError as exc:
            self._driver.close()
            raise Unauthenticated(
                f"Neo4j at {self._shown} refused the credentials (set NEO4J_USER and "
                f"NEO4J_PASSWORD): {_line(exc)}",
                url=url,
            ) from exc
        except (*_UNAVAILABLE, ClientError, OSError) as exc:
            self._driver.close()
            raise StoreUnavailable(
                f"cannot reach Neo4j at {self._shown}: {_line(exc)}", url=url
            ) from exc

    def __repr__(self) -> str:
        return f"Neo4jGraphStore({self._shown!r})"

    # sessions ------------------------------------------------------------------------------

    def _create_schema(self) -> None:
        def existing(tx: neo4j.ManagedTransaction) -> set[str]:
            names = tx.run("SHOW CONSTRAINTS YIELD name").value("name")
            return set(names) | set(tx.run("SHOW INDEXES YIELD name").value("name"))

        with self._session() as session:
            missing = [name for name in SCHEMA if name not in session.execute_read(existing)]
            for name in missing:
                try:
                    session.execute_write(_consume, SCHEMA[name])
                except ClientError as exc:
                    # another process created it between our look and our write
                    if "AlreadyExists" not in (exc.code or ""):
                        raise
            if missing:
                session.execute_read(_consume, "CALL db.awaitIndexes(300)")

    def _session(self) -> neo4j.Session:
        return self._driver.session(database=self._database, bookmark_manager=self._bookmarks)

    def _write(self, work: Callable[[neo4j.ManagedTransaction], T]) -> T:
        try:
            with self._session() as session:
                return session.execute_write(work)
        except IncompleteCommit as exc:
            raise StoreUnavailable(
                f"lost Neo4j at {self._shown} while committing; the write may or may not have "
                "been applied (running it again is safe)",
                url=self.url,
            ) from exc
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"Neo4j at {self._shown} is unavailable: {_line(exc)}", url=self.url
            ) from exc

    def _read(self, work: Callable[[neo4j.ManagedTransaction], T]) -> T:
        try:
            with self._session() as session:
                return session.execute_read(work)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"Neo4j at {self._shown} is unavailable: {_line(exc)}", url=self.url
            ) from exc

    def _rows(self, query: LiteralString, **params: Any) -> list[neo4j.Record]:
        return self._read(lambda tx: list(tx.run(query, params)))

    def _collect(self, query: LiteralString, **params: Any) -> list[list[Any]]:
        return self._read(partial(_collect, query=query, **params))

    def close(self) -> None:
        self._driver.close()

    # runs ----------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> None:
        rows = [_run_props(run)]
        self._write(lambda tx: _merge_runs(tx, rows))

    def update_run(self, run_id: str, changes: Mapping[str, Any]) -> RunRecord | None:
        allowed = {"state", "summary", "finished_at", "error", "notes", "tags", "config"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update run fields {sorted(unknown)}")
        props = {key: _encode_run_field(key, value) for key, value in changes.items()}

        def work(tx: neo4j.ManagedTransaction) -> RunRecord | None:
            rows = _collect(
                tx,
                "MATCH (r:Run {id: $id}) WHERE r.project IS NOT NULL SET r += $props " + _RUNS,
                id=run_id,
                props=props,
            )
            return _runs(rows)[0] if rows else None

        return self._write(work)

    def get_runs(self, ids: Collection[str]) -> dict[str, RunRecord]:
        def work(tx: neo4j.ManagedTransaction) -> list[list[Any]]:
            query: LiteralString = (
                "UNWIND $ids AS id MATCH (r:Run {id: id}) WHERE r.project IS NOT NULL " + _RUNS
            )
            return [
                row
                for part in _chunks(sorted(ids), _LOOKUP)
                for row in _collect(tx, query, ids=part)
            ]

        return {run.id: run for run in _runs(self._read(work))}

    def list_runs(
        self,
        project: str | None = None,
        *,
        job_type: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        where = _run_filters(project, job_type, state)
        if after is not None:  # keyset: the (started_at, id) of the last run seen
            where.append("(r.started_at > $at OR (r.started_at = $at AND r.id > $id))")
        query: LiteralString = (
            "MATCH (r:Run) WHERE " + " AND ".join(where) + " WITH r "
            "ORDER BY r.started_at, r.id" + _limit(limit) + " " + _RUNS
        )
        rows = self._collect(
            query,
            project=project,
            job_type=job_type,
            state=state,
            at=None if after is None else float(after[0]),
            id=None if after is None else after[1],
            limit=limit,
        )
        return _runs(rows)

    def count_runs(
        self, project: str, *, job_type: str | None = None, state: str | None = None
    ) -> int:
        where = _run_filters(project, job_type, state)
        row = self._rows(
            "MATCH (r:Run) WHERE " + " AND ".join(where) + " RETURN count(r) AS n",
            project=project,
            job_type=job_type,
            state=state,
        )[0]
        count: int = row["n"]
        return count

    # artifacts and versions ----------------------------------------------------------------

    def list_projects(self) -> list[str]:
        rows = self._rows(
            "CALL () { MATCH (r:Run) WHERE r.project IS NOT NULL RETURN DISTINCT r.project AS p "
            "UNION MATCH (a:Artifact) WHERE a.project IS NOT NULL RETURN DISTINCT a.project AS p }"
            " RETURN p ORDER BY p"
        )
        return [row["p"] for row in rows]

    def get_artifact(self, project: str, name: str) -> ArtifactRecord | None:
        rows = self._rows(
            "MATCH (a:Artifact {key: $key}) RETURN a {.*} AS a", key=f"{project}/{name}"
        )
        return _artifact(rows[0]["a"]) if rows else None

    def list_artifacts(
        self,
        project: str | None = None,
        *,
        type: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[ArtifactRecord]:
        where: list[LiteralString] = ["a.project IS NOT NULL"]
        if project is not None:
            where.append("a.project = $project")
        if type is not None:
            where.append("a.type = $type")
        if after is not None:
            where.append("a.key > $after")
        query: LiteralString = (
            "MATCH (a:Artifact) WHERE " + " AND ".join(where) + " RETURN a {.*} AS a "
            "ORDER BY a.project, a.name" + _limit(limit)
        )
        rows = self._rows(query, project=project, type=type, after=after, limit=limit)
        return [_artifact(row["a"]) for row in rows]

    def update_artifact(self, project: str, name: str, description: str | None) -> None:
        self._write(
            lambda tx: tx.run(
                "MATCH (a:Artifact {key: $key}) SET a.description = $description",
                key=f"{project}/{name}",
                description=description,
            ).consume()
        )

    def commit_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        # Numbering: the artifact node is the lock. The first statement writes it (a property
        # set and removed: the write lock is held to commit, nothing persists); only then, in
        # a second statement, are its type, next index and the digest check read, so they are
        # current and every writer of this artifact waits for the previous one's commit.
        # (A read in the locking statement itself, `SET a.n = a.n`, reads *before* the lock:
        # measured, it loses updates.) The alternative, no lock, CREATE and let the version-id
        # constraint refuse a taken index, then retry: uncontended it is a statement cheaper
        # (~200-500 vs ~130-290 commits/s, one process); with 4 and 8 processes on one artifact
        # both give ~100-260 commits/s on a busy 2-CPU machine, the retry way failing 1.7 and
        # 3 transactions per commit. What decides it: only the lock makes the digest dedup
        # race-free (two writers of the same bytes would both create a version), and a
        # uniqueness constraint on (artifact, digest) cannot hold, deleted versions keep theirs.
        key = f"{new.project}/{new.name}"

        def work(tx: neo4j.ManagedTransaction) -> tuple[VersionRecord, bool]:
            tx.run(
                "MERGE (a:Artifact {key: $key}) "
                "ON CREATE SET a.project = $project, a.name = $name, a.type = $type, "
                "a.description = $description, a.created_at = $at, a.next_index = 0 " + _LOCK,
                key=key,
                project=new.project,
                name=new.name,
                type=new.type,
                description=new.description,
                at=float(new.at),
            ).consume()
            head = tx.run(
                "MATCH (a:Artifact {key: $key}) "
                "OPTIONAL CALL (a) { MATCH (v:ArtifactVersion {digest: $digest}) "
                "WHERE v.project = a.project AND v.name = a.name AND v.state = 'committed' "
                "RETURN v.id AS existing ORDER BY v.index LIMIT 1 } "
                "RETURN a.type AS type, a.next_index AS next_index, existing",
                key=key,
                digest=new.digest,
            ).single(strict=True)
            if head["type"] != new.type:
                raise TypeMismatch(
                    f"artifact {key} has type {head['type']!r}, not {new.type!r}", artifact=key
                )
            if head["existing"] is not None:
                return _versions_by_id(tx, [head["existing"]])[0], False
            index: int = head["next_index"]
            props = _version_props(
                VersionRecord(
                    project=new.project, name=new.name, type=new.type, index=index,
                    digest=new.digest, size=new.size, file_count=new.file_count,
                    metadata=new.metadata, description=new.description,
                    created_by=new.run_id, created_at=new.at,
                )
            )  # fmt: skip
            row = tx.run(
                "MATCH (a:Artifact {key: $key}) SET a.next_index = $index + 1 "
                "MERGE (v:ArtifactVersion {id: $id}) SET v += $props "
                "MERGE (r:Run {id: $run}) MERGE (r)-[:PRODUCED]->(v) "
                "MERGE (l:Alias {key: $key + '/latest'}) "
                "SET l.project = v.project, l.name = v.name, l.alias = 'latest', "
                "l.index = v.index, l.version = v.id "
                "WITH v " + _VERSIONS,
                key=key,
                index=index,
                id=props["id"],
                props=props,
                run=new.run_id,
            ).single(strict=True)
            return _versions(row["rows"])[0], True

        return self._write(work)

    def get_versions(self, ids: Collection[str]) -> dict[str, VersionRecord]:
        if len(ids) <= _FEW:  # one query, its artifact looked up per version
            rows = self._collect(
                "UNWIND $ids AS id MATCH (v:ArtifactVersion {id: id}) "
                "WHERE v.project IS NOT NULL WITH v " + _VERSIONS,
                ids=list(ids),
            )
            return {version.id: version for version in _versions(rows)}
        versions = self._read(partial(_versions_by_id, ids=list(ids)))
        return {version.id: version for version in versions}

    def find_alias(self, project: str, name: str, alias: str) -> VersionRecord | None:
        rows = self._collect(
            "MATCH (l:Alias {key: $key}) MATCH (v:ArtifactVersion {id: l.version}) "
            "WHERE v.project IS NOT NULL WITH v " + _VERSIONS,
            key=f"{project}/{name}/{alias}",
        )
        return _versions(rows)[0] if rows else None

    def list_versions(
        self,
        project: str,
        name: str,
        *,
        include_deleted: bool = False,
        limit: int | None = None,
        after: int | None = None,
        newest_first: bool = False,
    ) -> list[VersionRecord]:
        bound, order = ("<", " DESC") if newest_first else (">", "")
        query: LiteralString = (
            "MATCH (v:ArtifactVersion {project: $project, name: $name}) "
            "WHERE v.index " + bound + " $after AND ($all OR v.state = 'committed') "
            "WITH v ORDER BY v.index" + order
        )
        start = ((1 << 62) if newest_first else -1) if after is None else after

        def work(tx: neo4j.ManagedTransaction) -> list[VersionRecord]:
            rows = _collect(
                tx,
                query + _limit(limit) + " " + _VERSION_FIELDS,
                project=project,
                name=name,
                all=include_deleted,
                after=start,
                limit=limit,
            )
            return _versions(_with_artifacts(tx, rows))

        return self._read(work)

    def count_versions(self, project: str, name: str, *, include_deleted: bool = False) -> int:
        row = self._rows(
            "MATCH (v:ArtifactVersion {project: $project, name: $name}) "
            "WHERE $all OR v.state = 'committed' RETURN count(v) AS n",
            project=project,
            name=name,
            all=include_deleted,
        )[0]
        count: int = row["n"]
        return count

    def list_aliases(self, project: str, name: str) -> list[tuple[str, VersionRecord]]:
        # an alias key is project/name/alias and names hold no '/': the prefix is exact
        rows = self._rows(
            "MATCH (l:Alias) WHERE l.key STARTS WITH $prefix "
            "RETURN l.alias AS alias, l.version AS version ORDER BY alias",
            prefix=f"{project}/{name}/",
        )
        versions = self.get_versions({row["version"] for row in rows})
        return [
            (row["alias"], versions[row["version"]]) for row in rows if row["version"] in versions
        ]

    def set_alias(
        self, project: str, name: str, alias: str, index: int | None, event: Event | None
    ) -> None:
        key = f"{project}/{name}/{alias}"
        events = _event_rows([event] if event is not None else [])

        def work(tx: neo4j.ManagedTransaction) -> None:
            if index is None:
                tx.run("MATCH (l:Alias {key: $key}) DELETE l", key=key).consume()
            else:
                tx.run(
                    "MERGE (l:Alias {key: $key}) SET l.project = $project, l.name = $name, "
                    "l.alias = $alias, l.index = $index, l.version = $version",
                    key=key,
                    project=project,
                    name=name,
                    alias=alias,
                    index=index,
                    version=version_id(project, name, index),
                ).consume()
            _insert_events(tx, events)

        self._write(work)

    def update_version(
        self, version_id: str, changes: Mapping[str, Any], events: Sequence[Event]
    ) -> VersionRecord:
        allowed = {"metadata", "description"}
        if set(changes) - allowed:
            raise ValueError(f"cannot update version fields {sorted(set(changes) - allowed)}")
        props = {
            key: json.dumps(value) if key == "metadata" else value for key, value in changes.items()
        }
        rows = _event_rows(events)

        def work(tx: neo4j.ManagedTransaction) -> VersionRecord:
            found = tx.run(
                "MATCH (v:ArtifactVersion {id: $id}) WHERE v.project IS NOT NULL "
                "SET v += $props RETURN v.id",
                id=version_id,
                props=props,
            ).single()
            if found is None:
                # raised inside the transaction: the events roll back with it
                raise VersionNotFound(f"version {version_id} does not exist", ref=version_id)
            _insert_events(tx, rows)
            return _versions_by_id(tx, [version_id])[0]

        return self._write(work)

    def delete_version(self, version_id: str, event: Event) -> None:
        rows = _event_rows([event])

        def work(tx: neo4j.ManagedTransaction) -> None:
            # the artifact's lock first, as commit_version takes it, so `latest` stays exact
            found = tx.run(
                "MATCH (v:ArtifactVersion {id: $id}) WHERE v.project IS NOT NULL "
                "MATCH (a:Artifact {key: v.project + '/' + v.name}) " + _LOCK + " RETURN a.key",
                id=version_id,
            ).single()
            if found is None:
                return
            tx.run(
                "MATCH (v:ArtifactVersion {id: $id}) SET v.state = 'deleted' "
                "WITH v OPTIONAL MATCH (l:Alias {version: v.id}) DELETE l",
                id=version_id,
            ).consume()
            tx.run(
                "MATCH (a:Artifact {key: $key}) "
                "MATCH (n:ArtifactVersion {project: a.project, name: a.name}) "
                "WHERE n.state = 'committed' "
                "WITH a, n ORDER BY n.index DESC LIMIT 1 "
                "MERGE (l:Alias {key: a.key + '/latest'}) "
                "SET l.project = n.project, l.name = n.name, l.alias = 'latest', "
                "l.index = n.index, l.version = n.id",
                key=found[0],
            ).consume()
            _insert_events(tx, rows)

        self._write(work)

    def manifest_digests(self) -> set[str]:
        rows = self._rows(
            "MATCH (v:ArtifactVersion) WHERE v.state = 'committed' RETURN DISTINCT v.digest AS d"
        )
        return {row["d"] for row in rows}

    # edges ---------------------------------------------------------------------------------

    def add_edges(self, edges: Iterable[Edge]) -> None:
        batches = list(_edge_batches(edges))
        if batches:
            self._write(lambda tx: sum(_merge_edges(tx, kind, rows) for kind, rows in batches))

    def expand(self, ids: Collection[str], direction: Direction) -> list[Edge]:
        # grouped by the given ids in their order, then by the far end: SQLite's order
        position = {node: i for i, node in enumerate(ids)}
        near, far = (0, 1) if direction == "down" else (1, 0)
        rows = sorted(self.expand_rows(ids, direction), key=lambda r: (position[r[near]], r[far]))
        return [Edge(source=s, target=t, kind=k) for s, t, k in rows]

    def expand_rows(self, ids: Collection[str], direction: Direction) -> list[tuple[str, str, str]]:
        """``expand`` as ``(source, target, kind)`` tuples, what traversals use."""
        if not ids:
            return []
        runs = [i for i in ids if ":" not in i]
        versions = [i for i in ids if ":" in i]
        query = _EXPAND[direction]
        found = self._read(
            lambda tx: tx.run(query, runs=runs, versions=versions).single(strict=True)
        )
        if direction == "down":
            return [
                *((near, far, PRODUCED) for near, *fars in found["runs"] for far in fars),
                *((near, far, CONSUMED_BY) for near, *fars in found["versions"] for far in fars),
            ]
        return [
            *((far, near, CONSUMED_BY) for near, *fars in found["runs"] for far in fars),
            *((far, near, PRODUCED) for near, *fars in found["versions"] for far in fars),
        ]

    def walk_rows(
        self, start: Collection[str], direction: Direction, hops: int | None
    ) -> tuple[set[str], set[tuple[str, str, str]], bool]:
        """A whole breadth-first walk in one round trip: ``(nodes, edges, truncated)``, the
        same answer as lineage.traversal's level-by-level walk over ``expand``.

        The server finds every node within ``hops`` with a pruning BFS var-length expand
        (each node visited once, however many paths reach it: no path enumeration), then the
        lineage edges leaving each; an edge whose far end lies beyond ``hops`` marks the walk
        truncated.
        """
        return _walked(start, direction, self._walk(_walk_query(direction, hops), start))

    def walk_records(
        self, start: Collection[str], direction: Direction, hops: int | None, *, runs: bool = True
    ) -> tuple[
        set[str], set[tuple[str, str, str]], bool, dict[str, VersionRecord], dict[str, RunRecord]
    ]:
        """``walk_rows`` and the records of the nodes found, in one round trip: ``(nodes,
        edges, truncated, versions, runs)`` (``runs`` empty unless asked for).

        The server reads the records from the nodes the walk holds (no index seek per id)
        and each artifact's type and aliases once: upstream of a depth-20 leaf in one round
        trip instead of four.
        """
        found = self._walk(_walk_records_query(direction, hops, runs), start)
        nodes, edges, truncated = _walked(start, direction, found)
        versions = _version_columns(found["versions"], found["artifacts"])
        ran = _runs([list(row) for row in zip(*found["runs"], strict=True)]) if runs else []
        return nodes, edges, truncated, versions, {run.id: run for run in ran}

    def _walk(self, query: LiteralString, start: Collection[str]) -> neo4j.Record:
        """Run a walk query from ``start``, its ids split by shape (a version id has ':')."""
        return self._read(
            lambda tx: tx.run(
                query,
                runs=[i for i in start if ":" not in i],
                versions=[i for i in start if ":" in i],
            ).single(strict=True)
        )

    def tree_rows(
        self, root: str, generations: int | None
    ) -> tuple[dict[str, VersionRecord], list[tuple[str, str, str]], bool]:
        """The derivation tree under a version in one round trip: ``walk_records``, or with
        no depth limit (nothing can be cut) the triples computed by the server."""
        if generations is not None:
            _, edges, truncated, versions, _ = self.walk_records(
                [root], "down", 2 * generations, runs=False
            )
            return versions, derived_triples(edges), truncated
        # one row always (aggregates over nothing): an unknown root gives empty columns
        found = self._read(lambda tx: tx.run(_TREE, root=root).single(strict=True))
        return (
            _version_columns(found["versions"], found["artifacts"]),
            list(zip(*found["triples"], strict=True)),
            False,
        )

    def reaches(self, source: str, target: str, direction: Direction) -> bool:
        """Whether ``target`` is reachable from ``source``: one bidirectional BFS on the server."""
        if source == target:
            return False  # lineage is acyclic
        query = _REACHES[direction, ":" in source, ":" in target]
        found: bool = self._read(
            lambda tx: tx.run(query, source=source, target=target).single(strict=True)["found"]
        )
        return found

    # events --------------------------------------------------------------------------------

    def append_events(self, events: Iterable[Event]) -> None:
        rows = _event_rows(events)
        if rows:
            self._write(lambda tx: _insert_events(tx, rows))

    def events(
        self, project: str, *, target_prefix: str | None = None, after: int | None = None
    ) -> list[Event]:
        where: list[LiteralString] = ["e.project = $project"]
        if target_prefix is not None:
            where.append("e.target STARTS WITH $prefix")
        if after is not None:
            where.append("e.seq > $after")
        query: LiteralString = (
            "MATCH (e:Event) WHERE " + " AND ".join(where) + " WITH e ORDER BY e.seq " + _EVENTS
        )
        rows = self._collect(query, project=project, prefix=target_prefix, after=after)
        old_new = _decode(text for row in rows for text in (row[6], row[7]))
        return [
            Event(
                seq=seq, project=proj, target=target, kind=kind, at=at, actor=actor,
                old=old_new[2 * i], new=old_new[2 * i + 1], uid=uid,
            )
            for i, (seq, proj, target, kind, at, actor, _, _, uid) in enumerate(rows)
        ]  # fmt: skip

    # copying between stores ----------------------------------------------------------------

    def import_records(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        artifacts: Sequence[ArtifactRecord] = (),
        versions: Sequence[VersionRecord] = (),
        edges: Sequence[Edge] = (),
        events: Sequence[Event] = (),
    ) -> dict[str, int]:
        # One transaction per batch of BATCH records, not one for the whole call: a
        # 100,000-run push would otherwise hold its whole write set in the server's heap.
        # Each batch is idempotent, so an import cut short is completed by running it again.
        counts = {"runs": 0, "artifacts": 0, "versions": 0, "edges": 0, "events": 0}
        run_rows = [_run_props(run) for run in _unique(runs, lambda run: run.id)]
        for chunk in _chunks(run_rows):
            counts["runs"] += self._write(partial(_merge_runs, rows=chunk, imported=True))
        artifact_rows = [
            {
                "key": a.key,
                "project": a.project,
                "name": a.name,
                "type": a.type,
                "description": a.description,
                "created_at": float(a.created_at),
            }
            for a in _unique(artifacts, lambda a: a.key)
        ]
        for chunk in _chunks(artifact_rows):
            counts["artifacts"] += self._write(partial(_merge_artifacts, rows=chunk))
        for batch in _chunks(_unique(versions, lambda v: v.id)):
            counts["versions"] += self._write(partial(_merge_versions, versions=batch))
        for kind, pairs in _edge_batches(edges):
            for part in _chunks(pairs):
                counts["edges"] += self._write(partial(_merge_edges, kind=kind, pairs=part))
        for chunk in _chunks(_event_rows(events)):
            counts["events"] += self._write(partial(_insert_events, rows=chunk))
        return counts

    # tokens --------------------------------------------------------------------------------

    def create_token(self, token: TokenRecord) -> None:
        props = {
            "digest": token.digest,
            "scope": token.scope,
            "created_at": float(token.created_at),
            "description": token.description,
            "revoked": bool(token.revoked),
        }
        self._write(
            lambda tx: tx.run(
                "MERGE (t:Token {id: $id}) ON CREATE SET t += $props", id=token.id, props=props
            ).consume()
        )

    def find_token(self, digest: str) -> TokenRecord | None:
        rows = self._rows("MATCH (t:Token {digest: $digest}) RETURN t {.*} AS t", digest=digest)
        if not rows:
            return None
        t = rows[0]["t"]
        return TokenRecord(
            id=t["id"],
            digest=t["digest"],
            scope=t["scope"],
            created_at=t["created_at"],
            description=t.get("description"),
            revoked=bool(t.get("revoked", False)),
        )

    def revoke_token(self, token_id: str) -> bool:
        def work(tx: neo4j.ManagedTransaction) -> bool:
            row = tx.run(
                "MATCH (t:Token {id: $id}) SET t.revoked = true RETURN count(t) AS n", id=token_id
            ).single(strict=True)
            return bool(row["n"] > 0)

        return self._write(work)


# transaction bodies -------------------------------------------------------------------------


def _consume(tx: neo4j.ManagedTransaction, query: LiteralString) -> None:
    tx.run(query).consume()


def _merge_runs(
    tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]], *, imported: bool = False
) -> int:
    """MERGE runs by id; a stub is filled in. On import, a run that has finished since an
    earlier import takes the newer state. Returns how many runs were new or advanced."""
    advance: LiteralString = (
        "WITH r, row, fresh, NOT fresh AND r.state = 'running' AND row.state <> 'running' AS adv "
        "SET r += CASE WHEN adv THEN {state: row.state, summary: row.summary, "
        "finished_at: row.finished_at, error: row.error} ELSE {} END "
        "RETURN sum(CASE WHEN fresh OR adv THEN 1 ELSE 0 END) AS n"
        if imported
        else "RETURN sum(CASE WHEN fresh THEN 1 ELSE 0 END) AS n"
    )
    query: LiteralString = (
        "UNWIND $rows AS row MERGE (r:Run {id: row.id}) "
        "WITH r, row, r.project IS NULL AS fresh "
        "SET r += CASE WHEN fresh THEN row ELSE {} END " + advance
    )
    n: int = tx.run(query, rows=rows).single(strict=True)["n"]
    return n


def _merge_artifacts(tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]]) -> int:
    n: int = tx.run(
        "UNWIND $rows AS row MERGE (a:Artifact {key: row.key}) "
        "ON CREATE SET a += row, a.next_index = 0, a._new = true "
        "WITH a, a._new IS NOT NULL AS fresh REMOVE a._new "
        "RETURN sum(CASE WHEN fresh THEN 1 ELSE 0 END) AS n",
        rows=rows,
    ).single(strict=True)["n"]
    return n


def _merge_versions(tx: neo4j.ManagedTransaction, versions: list[VersionRecord]) -> int:
    """Import versions as they are, keeping index and state; aliases move to them."""
    artifacts: dict[str, dict[str, Any]] = {}
    for v in versions:
        key = f"{v.project}/{v.name}"
        top = artifacts.setdefault(
            key,
            {"key": key, "project": v.project, "name": v.name, "type": v.type,
             "created_at": float(v.created_at), "top": v.index},
        )  # fmt: skip
        top["top"] = max(top["top"], v.index)
    # the artifacts' locks first, in a stable order, as commit_version takes them; then,
    # read under the lock, the next index stays above every imported one
    locked = sorted(artifacts.values(), key=lambda row: row["key"])
    tx.run(
        "UNWIND $artifacts AS row MERGE (a:Artifact {key: row.key}) "
        "ON CREATE SET a.project = row.project, a.name = row.name, a.type = row.type, "
        "a.created_at = row.created_at, a.next_index = 0 " + _LOCK,
        artifacts=locked,
    ).consume()
    tx.run(
        "UNWIND $artifacts AS row MATCH (a:Artifact {key: row.key}) "
        "WITH a, row, a.next_index AS current "
        "SET a.next_index = CASE WHEN current > row.top THEN current ELSE row.top + 1 END",
        artifacts=locked,
    ).consume()
    created: int = tx.run(
        "UNWIND $rows AS row MERGE (v:ArtifactVersion {id: row.id}) "
        "WITH row, v, v.project IS NULL AS fresh "
        "SET v += CASE WHEN fresh THEN row ELSE {metadata: row.metadata, "
        "description: row.description, state: row.state} END "
        "RETURN sum(CASE WHEN fresh THEN 1 ELSE 0 END) AS n",
        rows=[_version_props(v) for v in versions],
    ).single(strict=True)["n"]
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


def _merge_edges(tx: neo4j.ManagedTransaction, kind: str, pairs: list[list[str]]) -> int:
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


def _insert_events(tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]]) -> int:
    """Append events not yet stored (by uid), numbering them from the counter node.

    Locking the counter first serialises every event writer, so the uid check and the
    numbers read after it are exact: ``seq`` is strictly increasing in commit order.
    """
    if not rows:
        return 0
    tx.run("MERGE (a:Counter {name: 'events'}) ON CREATE SET a.value = 0 " + _LOCK).consume()
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


def _collect(tx: neo4j.ManagedTransaction, query: LiteralString, **params: Any) -> list[list[Any]]:
    rows: list[list[Any]] = tx.run(query, params).single(strict=True)["rows"]
    return rows


def _versions_by_id(tx: neo4j.ManagedTransaction, ids: list[str]) -> list[VersionRecord]:
    query: LiteralString = (
        "UNWIND $ids AS id MATCH (v:ArtifactVersion {id: id}) WHERE v.project IS NOT NULL "
        + _VERSION_FIELDS
    )
    rows = [row for part in _chunks(sorted(ids), _LOOKUP) for row in _collect(tx, query, ids=part)]
    return _versions(_with_artifacts(tx, rows))


def _with_artifacts(tx: neo4j.ManagedTransaction, rows: list[list[Any]]) -> list[list[Any]]:
    """Fill in each _VERSION_FIELDS row's type and aliases: one query for all the artifacts."""
    keys = sorted({f"{row[0]}/{row[1]}" for row in rows})
    return _join_artifacts(rows, _collect(tx, _ARTIFACT_ALIASES, keys=keys))


def _join_artifacts(rows: list[list[Any]], artifacts: list[list[Any]]) -> list[list[Any]]:
    """Fill in each _VERSION_FIELDS row's type and aliases from ``[key, type, [[version,
    alias], ...]]`` rows, in place; rows without their artifact are dropped."""
    types, aliases = _artifact_maps(artifacts)
    joined = []
    for row in rows:
        key = f"{row[0]}/{row[1]}"
        if key in types:  # a version without its artifact is no record, as in SQLite's join
            row[2] = types[key]
            row[12] = aliases.get(row[12], [])
            joined.append(row)
    return joined


def _version_columns(
    columns: list[list[Any]], artifacts: list[list[Any]]
) -> dict[str, VersionRecord]:
    """Version records from _VERSION_COLUMNS' ``versions`` and ``artifacts``."""
    types, aliases = _artifact_maps(artifacts)
    states = dict(columns[7])
    texts = dict(columns[8])
    versions: dict[str, VersionRecord] = {}
    for ref, digest, size, count, meta, by, at in zip(
        columns[0], columns[1], columns[2], columns[3], _decode(columns[4]), columns[5],
        columns[6], strict=True,
    ):  # fmt: skip
        key, _, index = ref.rpartition(":v")
        kind = types.get(key)
        if kind is not None:  # a version without its artifact is no record
            project, _, name = key.partition("/")
            held = aliases.get(ref)
            versions[ref] = version_record(
                project, name, kind, int(index), digest, size, count, meta, texts.get(ref),
                tuple(sorted(held)) if held else (), by or None, at, states.get(ref, "committed"),
            )  # fmt: skip
    return versions


def _artifact_maps(
    artifacts: list[list[Any]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """From ``[key, type, [[version, alias], ...]]`` rows: types by artifact key, aliases by
    version id."""
    types: dict[str, str] = {}
    aliases: dict[str, list[str]] = {}
    for key, artifact_type, held in artifacts:
        types[key] = artifact_type
        for version, alias in held:
            aliases.setdefault(version, []).append(alias)
    return types, aliases


def _walked(
    start: Collection[str], direction: Direction, found: neo4j.Record
) -> tuple[set[str], set[tuple[str, str, str]], bool]:
    """A walk's ``(nodes, edges, truncated)`` from its ``nodes``, ``near`` and ``far``."""
    nodes = set(start)
    nodes.update(found["nodes"])
    edges: set[tuple[str, str, str]] = set()
    truncated = False
    down = direction == "down"
    for near, far in zip(found["near"], found["far"], strict=True):
        if far not in nodes:
            truncated = True  # only a node at exactly `hops` has such an edge
        elif down:
            edges.add((near, far, CONSUMED_BY if ":" in near else PRODUCED))
        else:
            edges.add((far, near, PRODUCED if ":" in near else CONSUMED_BY))
    return nodes, edges, truncated


# rows in and out ----------------------------------------------------------------------------


def _run_props(run: RunRecord) -> dict[str, Any]:
    code = (
        json.dumps({"commit": run.code.commit, "dirty": run.code.dirty, "remote": run.code.remote})
        if run.code
        else None
    )
    started_at = float(run.started_at)
    props = {
        "id": run.id,
        "project": run.project,
        "name": run.name,
        "job_type": run.job_type,
        "state": run.state,
        "config": json.dumps(dict(run.config)),
        "summary": json.dumps(dict(run.summary)),
        "tags": list(run.tags),
        "notes": run.notes,
        "code": code,
        "host": run.host,
        "pid": run.pid,
        "started_at": started_at,
        "finished_at": None if run.finished_at is None else float(run.finished_at),
        "error": run.error,
    }
    return {key: value for key, value in props.items() if value is not None}


def _encode_run_field(key: str, value: Any) -> Any:
    if key in ("summary", "config"):
        return json.dumps(value)
    if key == "tags":
        return list(value)
    if key == "finished_at" and value is not None:
        return float(value)
    return value


def _runs(rows: list[list[Any]]) -> list[RunRecord]:
    decoded = _decode(text for row in rows for text in (row[5], row[6], row[9]))
    return [
        RunRecord(
            id=row[0], project=row[1], name=row[2], job_type=row[3], state=row[4],
            config=decoded[3 * i], summary=decoded[3 * i + 1], tags=tuple(row[7] or ()),
            notes=row[8],
            code=CodeVersion(**decoded[3 * i + 2]) if decoded[3 * i + 2] else None, host=row[10],
            pid=row[11], started_at=row[12], finished_at=row[13], error=row[14],
        )
        for i, row in enumerate(rows)
    ]  # fmt: skip


def _artifact(a: Mapping[str, Any]) -> ArtifactRecord:
    return ArtifactRecord(
        project=a["project"],
        name=a["name"],
        type=a["type"],
        description=a.get("description"),
        created_at=a["created_at"],
    )


def _versions(rows: list[list[Any]]) -> list[VersionRecord]:
    metadata = _decode(row[7] for row in rows)
    return [
        version_record(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], meta, row[8],
            tuple(sorted(row[12])), row[9], row[10], row[11],
        )
        for row, meta in zip(rows, metadata, strict=True)
    ]  # fmt: skip


def _decode(texts: Iterable[str | None]) -> list[Any]:
    """Many stored JSON texts with one parse (one ``json.loads`` each costs seconds on a
    100,000-record answer)."""
    decoded: list[Any] = json.loads(
        "[" + ",".join("null" if text is None else text for text in texts) + "]"
    )
    return decoded


def _version_props(v: VersionRecord) -> dict[str, Any]:
    props = {
        "id": v.id,
        "project": v.project,
        "name": v.name,
        "index": v.index,
        "digest": v.digest,
        "size": v.size,
        "file_count": v.file_count,
        "metadata": json.dumps(dict(v.metadata)),
        "description": v.description,
        "created_by": v.created_by,
        "created_at": float(v.created_at),
        "state": v.state,
    }
    return {key: value for key, value in props.items() if value is not None}


def _edge_batches(edges: Iterable[Edge]) -> Iterator[tuple[str, list[list[str]]]]:
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


def _event_rows(events: Iterable[Event]) -> list[dict[str, Any]]:
    # the uid is fixed here, before the first attempt, so a retried transaction reuses it
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        uid = event.uid or uuid.uuid4().hex
        rows.setdefault(
            uid,
            {
                "uid": uid,
                "project": event.project,
                "target": event.target,
                "kind": event.kind,
                "at": float(event.at),
                "actor": event.actor,
                "old": json.dumps(event.old) if event.old is not None else None,
                "new": json.dumps(event.new) if event.new is not None else None,
            },
        )
    return list(rows.values())


# small helpers ------------------------------------------------------------------------------


def _unique(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    """The first of each key, in order (a duplicate in one batch would count twice)."""
    first: dict[str, T] = {}
    for item in items:
        first.setdefault(key(item), item)
    return list(first.values())


def _chunks(items: list[T], size: int = BATCH) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_filters(
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


def _limit(limit: int | None) -> LiteralString:
    # SQLite reads a negative LIMIT as "no limit"
    return "" if limit is None or limit < 0 else " LIMIT $limit"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


def _line(exc: BaseException) -> str:
    """The driver's message on one line (it spreads the reason over several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
