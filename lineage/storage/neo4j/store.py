"""The Neo4j GraphStore: connection, sessions, managed transactions, and each protocol call.

Its Cypher is in :mod:`lineage.storage.neo4j.cypher`, its batched writes in
:mod:`lineage.storage.neo4j.bulk`, the records' properties in :mod:`lineage.storage.codec`;
the graph model is drawn in :mod:`lineage.storage.neo4j`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, LiteralString, TypeVar, cast
from urllib.parse import urlsplit

import neo4j
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConfigurationError,
    ConnectionPoolError,
    CypherSyntaxError,
    DatabaseUnavailable,
    IncompleteCommit,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from lineage.errors import (
    InvalidInput,
    StoreUnavailable,
    Unauthenticated,
    VersionNotFound,
)
from lineage.filters import Compare, Filter, Order, conjuncts
from lineage.records import (
    CONSUMED_BY,
    PRODUCED,
    ArtifactRecord,
    Edge,
    Event,
    RunRecord,
    TokenRecord,
    VersionRecord,
    version_id,
)
from lineage.storage import codec
from lineage.storage.codec import TOKEN_FIELDS, VERSION_FIELDS
from lineage.storage.graph import Direction, NewVersion, check_run_write
from lineage.storage.neo4j.bulk import (
    BATCH,
    artifact_props,
    chunks,
    edge_batches,
    edge_lanes,
    event_rows,
    insert_events,
    merge_artifacts,
    merge_edges,
    merge_runs,
    merge_versions,
    run_props,
    unique,
    version_props,
)
from lineage.storage.neo4j.cypher import (
    ARTIFACT,
    ARTIFACT_ALIASES,
    DERIVE,
    EVENTS,
    EXPAND,
    LOCK,
    REACHES,
    RUNS,
    SCHEMA,
    SPARSE_VERSION_FIELDS,
    TOKEN,
    TREE,
    TREE_TRIPLES,
    TREE_VERSIONS,
    VERSION_DENSE_FIELDS,
    VERSION_ROWS,
    VERSIONS,
    limit_clause,
    run_filters,
    walk_query,
    walk_records_query,
)
from lineage.storage.neo4j.filter import (
    FLAT_PREFIXES,
    flat_props,
    index_query,
    order_cypher,
    prop,
    where_cypher,
)
from lineage.storage.neo4j.group import GroupCommit, Write, write_group
from lineage.storage.neo4j.staged import CREATE as STAGE
from lineage.storage.neo4j.staged import StagedBlobs, scope_of
from lineage.storage.neo4j.state import (
    READ,
    READ_UNLOCKED,
    WRITE,
    GroupRead,
    forced,
    replanning,
    version_aliases,
    version_artifacts,
)
from lineage.traversal import derived_triples

__all__ = ["Neo4jGraphStore"]

logger = logging.getLogger(__name__)

_UNAVAILABLE = (ServiceUnavailable, SessionExpired, ConnectionPoolError, DatabaseUnavailable)
# ids per lookup query: bounds the list the server builds for one answer
_LOOKUP = 20_000
# flattened keys given a range index, per label (lineage.storage.neo4j.filter)
MAX_FLAT_INDEXES = 200
# up to this many ids, get_versions is one query (resolving a ref: one round trip, not two)
_FEW = 16
T = TypeVar("T")


@dataclasses.dataclass
class _Open:
    """A transaction of ``Neo4jGraphStore.transaction()``, and the flattened keys whose
    indexes wait for its commit."""

    session: neo4j.Session
    tx: neo4j.Transaction
    later: list[tuple[str, list[Mapping[str, Any]]]] = dataclasses.field(default_factory=list)
    # blobs staged in it and not yet sent (lineage.storage.neo4j.staged): with its next
    # write statement, else before its commit; not at all if it wrote nothing (no version
    # of it names them: a duplicate event's group is its read alone)
    staged: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    wrote: bool = False
    replan: bool = False  # its group's statements planned again (state.replanning)


class Neo4jGraphStore:
    """GraphStore on a Neo4j 5 server (or cluster, or Aura).

    >>> store = Neo4jGraphStore("neo4j://localhost:7687", user="neo4j", password="...")

    ``user``, ``password`` and ``database`` default to ``NEO4J_USER``, ``NEO4J_PASSWORD`` and
    ``NEO4J_DATABASE`` (no auth, the server's default database). An unreachable server raises
    StoreUnavailable within about ``connect_timeout`` seconds; once connected, a call that still
    finds the server gone after ``max_retry_time`` seconds of the driver's retries raises it too.
    """

    # a first page walks its order's index unless one and-ed comparison on a key of the
    # filter holds for fewer nodes than this (find_runs; tests move it to try both plans)
    broad = 2000
    # OpenLineage groups written at once (lineage.openlineage.group.GroupWriter): a group's
    # transaction locks only what it writes, and the database server does the work while
    # the writer maps the next group
    group_lanes = 2

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
        self._groups = 0  # groups read (group_state): when to plan its statements again
        self._closing: list[Callable[[], None]] = []
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
        self._retry_for = max_retry_time  # a one-statement read's retries (_statement)
        self._group = GroupCommit(self._execute)
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
            names = session.execute_read(existing)
            missing = [name for name in SCHEMA if name not in names]
            for name in missing:
                try:
                    session.execute_write(_consume, SCHEMA[name])
                except ClientError as exc:
                    # another process created it between our look and our write
                    if "AlreadyExists" not in (exc.code or ""):
                        raise
            if missing:
                session.execute_read(_consume, "CALL db.awaitIndexes(300)")
            session.execute_write(_flatten_all)
        # the flat indexes seen above: SHOW costs ~0.1 s a store opened, and a flat index
        # another process adds meanwhile is met by _index_flat's AlreadyExists
        self._indexed = {name for name in names if name.startswith("flat ")}

    def _index_flat(self, label: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Create the range index of each flattened key these rows have and none had
        before (``MAX_FLAT_INDEXES`` a label at most: past them a filter scans)."""
        keys = {k for row in rows for k in row if k.startswith(FLAT_PREFIXES)}
        new = sorted(k for k in keys if f"flat {label} {k}" not in self._indexed)
        if not new:
            return
        open_tx = self._open()
        if open_tx is not None:  # schema waits for the open transaction: after its commit
            open_tx.later.append((label, [{k: None for k in new}]))
            return
        held = sum(1 for name in self._indexed if name.startswith(f"flat {label} "))
        with self._session() as session:
            for key in new[: max(0, MAX_FLAT_INDEXES - held)]:
                query: LiteralString = index_query(label, key)
                try:
                    session.execute_write(_consume, query)
                except ClientError as exc:
                    if "AlreadyExists" not in (exc.code or ""):
                        raise
                self._indexed.add(f"flat {label} {key}")

    def _session(self) -> neo4j.Session:
        return self._driver.session(database=self._database, bookmark_manager=self._bookmarks)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every read and write of this thread within the block in one Neo4j transaction,
        committed when the block ends (none of it when it raises): one commit for many
        store calls (the OpenLineage endpoint group-commits concurrent events). Neo4j has
        no savepoints: a nested block joins the outer one, and a write that fails within
        the block fails the whole of it. Indexes of new flattened keys are created after
        the commit."""
        if self._open() is not None:
            yield
            return
        session = self._session()
        try:
            # BEGIN sent with the first statement, as execute_query sends it: a round trip
            # fewer (the driver's flag; without it, BEGIN is a round trip of its own)
            with getattr(session, "_pipelined_begin", contextlib.nullcontext()):
                tx = _Open(session, session.begin_transaction())
        except BaseException as exc:
            session.close()
            if not isinstance(exc, _UNAVAILABLE):
                raise
            raise StoreUnavailable(
                f"Neo4j at {self._shown} is unavailable: {_line(exc)}", url=self.url
            ) from exc
        self._tx_local().open = tx
        with self._writing():
            try:
                yield
                staged, tx.staged = tx.staged, []
                if staged and tx.wrote:
                    tx.tx.run(STAGE, staged=staged).consume()
                tx.tx.commit()
            except BaseException:
                if not tx.tx.closed():
                    try:
                        tx.tx.rollback()
                    except Exception:  # lost with the connection: the cause is raised
                        logger.debug("rollback failed", exc_info=True)
                raise
            finally:
                self._tx_local().open = None
                tx.tx.close()
                session.close()
        for label, rows in tx.later:
            self._index_flat(label, rows)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A commit's failures as this store words them: a commit whose answer was lost, and
        a server gone (both StoreUnavailable)."""
        try:
            yield
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

    def _tx_local(self) -> threading.local:
        local: threading.local | None = self.__dict__.get("_transactions")
        if local is None:
            local = self.__dict__.setdefault("_transactions", threading.local())
        return local

    def _open(self) -> _Open | None:
        """This thread's transaction of :meth:`transaction`, if one is open."""
        return cast("_Open | None", getattr(self._tx_local(), "open", None))

    def _write(self, work: Callable[[neo4j.ManagedTransaction], T], *, locks: bool = False) -> T:
        """``work`` in this thread's open transaction, else in a write of its own; ``locks``:
        it only reads, after taking write locks (within a transaction, it writes nothing)."""
        open_tx = self._open()
        if open_tx is not None:
            open_tx.wrote |= not locks
            return work(cast(neo4j.ManagedTransaction, open_tx.tx))
        with self._writing(), self._session() as session:
            return session.execute_write(work)

    def _execute(
        self,
        query: LiteralString,
        params: dict[str, Any],
        check: Callable[[list[Any]], Any] = lambda rows: rows,
    ) -> Any:
        """One write statement in a transaction of its own (a group of group.py), its BEGIN
        sent with it (execute_query: a round trip fewer than execute_write); ``check`` of its
        ``rows``, called before the commit (an exception it raises rolls the transaction back
        and reaches the caller, not retried)."""
        with self._writing():
            return self._driver.execute_query(
                query,
                params,
                database_=self._database,
                routing_=neo4j.RoutingControl.WRITE,
                bookmark_manager_=self._bookmarks,
                result_transformer_=lambda result: check(result.single(strict=True)["rows"]),
            )

    def _submit(self, write: Write) -> Any:
        """One single write: in this thread's open :meth:`transaction` if there is one (never
        through the group queue, whose leader would carry other callers' writes in a
        transaction it has not committed yet), else group-committed with concurrent callers."""
        open_tx = self._open()
        if open_tx is None:
            return self._group.submit(write)
        open_tx.wrote = True
        [(result, error)] = write_group(cast(neo4j.ManagedTransaction, open_tx.tx), [write])
        if error is not None:
            raise error
        return result

    def _read(self, work: Callable[[neo4j.ManagedTransaction], T]) -> T:
        open_tx = self._open()
        if open_tx is not None:  # reads see the open transaction's writes
            return work(cast(neo4j.ManagedTransaction, open_tx.tx))
        try:
            with self._session() as session:
                return session.execute_read(work)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"Neo4j at {self._shown} is unavailable: {_line(exc)}", url=self.url
            ) from exc

    def _autocommit(self, query: LiteralString, **params: Any) -> list[neo4j.Record]:
        """One small read as an auto-commit transaction (within :meth:`transaction`, in
        it): RUN and PULL sent together, one round trip where a managed read takes three
        (BEGIN, RUN and PULL, COMMIT). Not retried: a server gone is StoreUnavailable."""
        open_tx = self._open()
        if open_tx is not None:
            return list(open_tx.tx.run(query, params))
        try:
            return self._run_read(query, params)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"Neo4j at {self._shown} is unavailable: {_line(exc)}", url=self.url
            ) from exc

    def _run_read(self, query: LiteralString, params: dict[str, Any]) -> list[neo4j.Record]:
        """One statement in an auto-commit read transaction of its own session."""
        with self._driver.session(
            database=self._database,
            bookmark_manager=self._bookmarks,
            default_access_mode=neo4j.READ_ACCESS,
        ) as session:
            return list(session.run(query, params))

    def _statement(self, query: LiteralString, params: dict[str, Any]) -> list[neo4j.Record]:
        """A read of one statement as an auto-commit transaction (within :meth:`transaction`,
        in it): RUN and PULL sent together, one round trip where a managed read takes three
        (BEGIN, RUN and PULL, COMMIT); the SDK's path reads ten times a run (the run's
        state, refs, the cycle check, the artifact's type). Retried as a managed read is:
        a server gone, or a transient error, again until ``max_retry_time`` has passed,
        then StoreUnavailable. Nothing is lost by a statement reading in a transaction of
        its own: Neo4j reads are read-committed, a managed read of several statements saw
        others' commits between them too."""
        open_tx = self._open()
        if open_tx is not None:
            return list(open_tx.tx.run(query, params))
        deadline = time.monotonic() + self._retry_for
        delay = 0.05
        while True:
            try:
                return self._run_read(query, params)
            except (*_UNAVAILABLE, Neo4jError) as exc:
                gone = isinstance(exc, _UNAVAILABLE)
                if not (gone or (isinstance(exc, Neo4jError) and exc.is_retryable())):
                    raise
                if time.monotonic() + delay > deadline:
                    if gone:
                        raise StoreUnavailable(
                            f"Neo4j at {self._shown} is unavailable: {_line(exc)}", url=self.url
                        ) from exc
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 1.0)

    def _rows(self, query: LiteralString, **params: Any) -> list[neo4j.Record]:
        return self._statement(query, params)

    def _collect(self, query: LiteralString, **params: Any) -> list[list[Any]]:
        [record] = self._statement(query, params)
        rows: list[list[Any]] = record["rows"]
        return rows

    def before_close(self, call: Callable[[], None]) -> None:
        """Have ``call`` run when :meth:`close` starts, while the driver is still open (the
        staged blobs' retirer ends first, its last retirement done, instead of failing on a
        closed driver)."""
        self._closing.append(call)

    def close(self) -> None:
        closing, self._closing = self._closing, []
        for call in closing:
            call()
        helper: ThreadPoolExecutor | None = self.__dict__.get("_helper_pool")
        if helper is not None:
            helper.shutdown()
        self._driver.close()

    # runs ----------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> None:
        rows = [run_props(run)]
        self._submit(Write(runs=rows))
        self._index_flat("Run", rows)

    def update_run(self, run_id: str, changes: Mapping[str, Any]) -> RunRecord | None:
        props = codec.encode_run_changes(changes)
        flat = {d: flat_props(d, changes[d]) for d in ("config", "summary") if d in changes}

        if flat:
            self._index_flat("Run", flat.values())

        def work(tx: neo4j.ManagedTransaction) -> RunRecord | None:
            for document, values in flat.items():
                _reflatten(tx, "Run", run_id, document, values)
            rows = _collect(
                tx,
                "MATCH (r:Run {id: $id}) WHERE r.project IS NOT NULL SET r += $props " + RUNS,
                id=run_id,
                props=props,
            )
            return codec.decode_runs(rows)[0] if rows else None

        return self._write(work)

    def get_runs(self, ids: Collection[str]) -> dict[str, RunRecord]:
        def work(tx: neo4j.ManagedTransaction) -> list[list[Any]]:
            query: LiteralString = (
                "UNWIND $ids AS id MATCH (r:Run {id: id}) WHERE r.project IS NOT NULL " + RUNS
            )
            return [
                row
                for part in chunks(sorted(ids), _LOOKUP)
                for row in _collect(tx, query, ids=part)
            ]

        if len(ids) <= _LOOKUP:  # one statement (the SDK checks its run's state every call)
            query: LiteralString = (
                "UNWIND $ids AS id MATCH (r:Run {id: id}) WHERE r.project IS NOT NULL " + RUNS
            )
            return {r.id: r for r in codec.decode_runs(self._collect(query, ids=sorted(ids)))}
        return {run.id: run for run in codec.decode_runs(self._read(work))}

    def list_runs(
        self,
        project: str | None = None,
        *,
        job_type: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        after: tuple[float, str] | None = None,
        newest_first: bool = False,
    ) -> list[RunRecord]:
        where = run_filters(project, job_type, state)
        order: LiteralString = "r.started_at, r.id"
        if newest_first:
            order = "r.started_at DESC, r.id DESC"
            if after is not None:
                where.append("(r.started_at < $at OR (r.started_at = $at AND r.id < $id))")
        elif after is not None:  # keyset: the (started_at, id) of the last run seen
            where.append("(r.started_at > $at OR (r.started_at = $at AND r.id > $id))")
        # running runs are few (every run ends): the planner, left alone, scans every run
        # of the project index for them (lineage.init's reap_stale, ~50 ms at 65,000 runs)
        hint: LiteralString = " USING INDEX r:Run(state)" if state == "running" else ""
        query: LiteralString = (
            "MATCH (r:Run)" + hint + " WHERE " + " AND ".join(where) + " WITH r "
            "ORDER BY " + order + limit_clause(limit) + " " + RUNS
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
        return codec.decode_runs(rows)

    def count_runs(
        self, project: str, *, job_type: str | None = None, state: str | None = None
    ) -> int:
        where = run_filters(project, job_type, state)
        row = self._rows(
            "MATCH (r:Run) WHERE " + " AND ".join(where) + " RETURN count(r) AS n",
            project=project,
            job_type=job_type,
            state=state,
        )[0]
        count: int = row["n"]
        return count

    def count_project_runs(
        self, projects: Collection[str], *, job_type: str | None = None, state: str | None = None
    ) -> dict[str, int]:
        where = ["r.project = p", *run_filters(None, job_type, state)]
        rows = self._rows(
            "UNWIND $projects AS p CALL (p) { MATCH (r:Run) WHERE "
            + " AND ".join(where)
            + " RETURN count(r) AS n } RETURN p, n",
            projects=sorted(set(projects)),
            job_type=job_type,
            state=state,
        )
        return {row["p"]: row["n"] for row in rows}  # a count for every project, 0 too

    def child_runs(self, run_id: str) -> list[RunRecord]:
        """The runs whose parent is ``run_id``, oldest first."""
        query: LiteralString = (
            "MATCH (r:Run {parent: $id}) WHERE r.project IS NOT NULL "
            "WITH r ORDER BY r.started_at, r.id " + RUNS
        )
        return codec.decode_runs(self._collect(query, id=run_id))

    # artifacts and versions ----------------------------------------------------------------

    def list_projects(self) -> list[str]:
        rows = self._rows(
            "CALL () { MATCH (r:Run) WHERE r.project IS NOT NULL RETURN DISTINCT r.project AS p "
            "UNION MATCH (a:Artifact) WHERE a.project IS NOT NULL RETURN DISTINCT a.project AS p }"
            " RETURN p ORDER BY p"
        )
        return [row["p"] for row in rows]

    def project_samples(self, projects: Collection[str]) -> dict[str, RunRecord | VersionRecord]:
        wanted = sorted(set(projects))
        found: dict[str, RunRecord | VersionRecord] = {}
        runs = self._collect(
            "UNWIND $projects AS p CALL (p) { MATCH (r:Run) WHERE r.project = p "
            "WITH r ORDER BY r.id LIMIT 1 RETURN r } WITH r " + RUNS,
            projects=wanted,
        )
        found.update((run.project, run) for run in codec.decode_runs(runs))
        rest = [p for p in wanted if p not in found]
        if rest:
            rows = self._collect(
                "UNWIND $projects AS p CALL (p) { MATCH (a:Artifact) WHERE a.project = p "
                "WITH a ORDER BY a.name LIMIT 1 RETURN a.key AS key } "
                "MATCH (l:Alias {key: key + '/latest'}) MATCH (v:ArtifactVersion {id: l.version}) "
                "WHERE v.project IS NOT NULL WITH v " + VERSIONS,
                projects=rest,
            )
            found.update((version.project, version) for version in codec.decode_versions(rows))
        return found

    def get_artifact(self, project: str, name: str) -> ArtifactRecord | None:
        rows = self._rows(
            "MATCH (a:Artifact {key: $key}) RETURN " + ARTIFACT + " AS a", key=f"{project}/{name}"
        )
        return codec.decode_artifact(rows[0]["a"]) if rows else None

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
            "MATCH (a:Artifact) WHERE " + " AND ".join(where) + " WITH a "
            "ORDER BY a.project, a.name" + limit_clause(limit) + " RETURN " + ARTIFACT + " AS a"
        )
        rows = self._rows(query, project=project, type=type, after=after, limit=limit)
        return [codec.decode_artifact(row["a"]) for row in rows]

    def commit_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        # Numbering: the artifact node is the lock. The commit first writes it (a property
        # set and removed: the write lock is held to commit, nothing persists); only then, in
        # the clauses after it (group.py's COMMIT, one statement: an Eager follows the lock),
        # are its type, next index and the digest check read, so they are current and every
        # writer of this artifact waits for the previous one's commit. (A read in the locking
        # clause itself, `SET a.n = a.n`, reads *before* the lock: measured, it loses updates.)
        # The alternative, no lock, CREATE and let the version-id constraint refuse a taken
        # index, then retry: uncontended it is a statement cheaper (~200-500 vs ~130-290
        # commits/s, one process); with 4 and 8 processes on one artifact both give ~100-260
        # commits/s on a busy 2-CPU machine, the retry way failing 1.7 and 3 transactions per
        # commit. What decides it: only the lock makes the digest dedup race-free (two writers
        # of the same bytes would both create a version), and a uniqueness constraint on
        # (artifact, digest) cannot hold, deleted versions keep theirs.
        # many threads' commits (and runs and edges) share a transaction: group.py
        committed: list[tuple[VersionRecord, bool]] = self._submit(Write(commits=[new]))
        self._index_flat("ArtifactVersion", [flat_props("metadata", new.metadata)])
        return committed[0]

    def write_run(
        self, run: RunRecord, edges: Iterable[Edge], commits: Sequence[NewVersion]
    ) -> list[tuple[VersionRecord, bool]]:
        """The WriteRun fast path (lineage.storage.graph): the run, its edges and its commits
        as one write, group-committed with concurrent callers' (group.py): one transaction
        for a group of runs where three calls a run take three. All or nothing: a commit
        refused for its type leaves nothing of the run stored."""
        edges = list(edges)
        check_run_write(run, commits, edges)  # refused here, in the caller's thread
        batches = list(edge_batches(edges))
        rows = [run_props(run)]
        committed: list[tuple[VersionRecord, bool]] | None = self._submit(
            Write(runs=rows, edges=batches, commits=list(commits))
        )
        self._index_flat("Run", rows)
        self._index_flat("ArtifactVersion", [flat_props("metadata", c.metadata) for c in commits])
        return committed or []

    def get_versions(self, ids: Collection[str]) -> dict[str, VersionRecord]:
        if len(ids) <= _FEW:  # one query, its artifact looked up per version
            rows = self._collect(
                "UNWIND $ids AS id MATCH (v:ArtifactVersion {id: id}) "
                "WHERE v.project IS NOT NULL WITH v " + VERSIONS,
                ids=list(ids),
            )
            return {version.id: version for version in codec.decode_versions(rows)}
        versions = self._read(partial(_versions_by_id, ids=list(ids)))
        return {version.id: version for version in versions}

    def find_alias(self, project: str, name: str, alias: str) -> VersionRecord | None:
        rows = self._collect(
            "MATCH (l:Alias {key: $key}) MATCH (v:ArtifactVersion {id: l.version}) "
            "WHERE v.project IS NOT NULL WITH v " + VERSIONS,
            key=f"{project}/{name}/{alias}",
        )
        return codec.decode_versions(rows)[0] if rows else None

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
                query + limit_clause(limit) + " " + VERSION_ROWS,
                project=project,
                name=name,
                all=include_deleted,
                after=start,
                limit=limit,
            )
            return _with_artifacts(tx, rows)

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

    def artifact_summaries(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, list[tuple[str, VersionRecord]]]]:
        # an alias key is project/name/alias and names hold no '/': the prefix is exact
        rows = self._rows(
            "UNWIND $keys AS k "
            "CALL (k) { MATCH (v:ArtifactVersion {project: k[0], name: k[1]}) "
            "WHERE v.state = 'committed' RETURN count(v) AS n } "
            "CALL (k) { MATCH (l:Alias) WHERE l.key STARTS WITH k[0] + '/' + k[1] + '/' "
            "WITH l ORDER BY l.alias RETURN collect([l.alias, l.version]) AS aliases } "
            "RETURN k[0] AS project, k[1] AS name, n, aliases",
            keys=[list(key) for key in dict.fromkeys(keys)],
        )
        versions = self.get_versions({v for row in rows for _, v in row["aliases"]})
        return {
            (row["project"], row["name"]): (
                row["n"],
                [(alias, versions[v]) for alias, v in row["aliases"] if v in versions],
            )
            for row in rows
        }

    def set_alias(
        self, project: str, name: str, alias: str, index: int | None, event: Event | None
    ) -> None:
        key = f"{project}/{name}/{alias}"
        events = event_rows([event] if event is not None else [])

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
            insert_events(tx, events)

        self._write(work)

    def update_version(
        self, version_id: str, changes: Mapping[str, Any], events: Sequence[Event]
    ) -> VersionRecord:
        props = codec.encode_version_changes(changes)
        rows = event_rows(events)
        flat = flat_props("metadata", changes["metadata"]) if "metadata" in changes else None
        if flat:
            self._index_flat("ArtifactVersion", [flat])

        def work(tx: neo4j.ManagedTransaction) -> VersionRecord:
            if flat is not None:
                _reflatten(tx, "ArtifactVersion", version_id, "metadata", flat)
            found = tx.run(
                "MATCH (v:ArtifactVersion {id: $id}) WHERE v.project IS NOT NULL "
                "SET v += $props RETURN v.id",
                id=version_id,
                props=props,
            ).single()
            if found is None:
                # raised inside the transaction: the events roll back with it
                raise VersionNotFound(f"version {version_id} does not exist", ref=version_id)
            insert_events(tx, rows)
            return _versions_by_id(tx, [version_id])[0]

        return self._write(work)

    def delete_version(self, version_id: str, event: Event) -> None:
        rows = event_rows([event])

        def work(tx: neo4j.ManagedTransaction) -> None:
            # the artifact's lock first, as commit_version takes it, so `latest` stays exact
            found = tx.run(
                "MATCH (v:ArtifactVersion {id: $id}) WHERE v.project IS NOT NULL "
                "MATCH (a:Artifact {key: v.project + '/' + v.name}) " + LOCK + " RETURN a.key",
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
            insert_events(tx, rows)

        self._write(work)

    def manifest_digests(self) -> set[str]:
        rows = self._rows(
            "MATCH (v:ArtifactVersion) WHERE v.state = 'committed' RETURN DISTINCT v.digest AS d"
        )
        return {row["d"] for row in rows}

    # edges ---------------------------------------------------------------------------------

    def add_edges(self, edges: Iterable[Edge]) -> None:
        batches = list(edge_batches(edges))  # refused here, in the caller's thread
        if batches:
            self._submit(Write(edges=batches))

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
        query = EXPAND[direction]
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
        return _walked(start, direction, self._walk(walk_query(direction, hops), start))

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
        found = self._walk(walk_records_query(direction, hops, runs), start)
        nodes, edges, truncated = _walked(start, direction, found)
        versions = _version_columns(found["versions"], found["artifacts"])
        ran = codec.decode_runs(list(zip(*found["runs"], strict=True))) if runs else []
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
        if self._open() is not None:  # inside a transaction: one query, in it
            found = self._read(lambda tx: tx.run(TREE, root=root).single(strict=True))
            triples = found["triples"]
        else:  # the triples on another of the server's threads, meanwhile
            pending = self._helper().submit(
                self._read, lambda tx: tx.run(TREE_TRIPLES, root=root).single(strict=True)
            )
            try:
                found = self._read(lambda tx: tx.run(TREE_VERSIONS, root=root).single(strict=True))
            finally:
                triples = pending.result()["triples"]
        return (
            _version_columns(found["versions"], found["artifacts"]),
            list(zip(*triples, strict=True)),
            False,
        )

    def _helper(self) -> ThreadPoolExecutor:
        """The thread that runs the other half of a query split in two (``tree_rows``)."""
        helper: ThreadPoolExecutor | None = self.__dict__.get("_helper_pool")
        if helper is None:
            fresh = ThreadPoolExecutor(1, thread_name_prefix="lineage-neo4j")
            helper = self.__dict__.setdefault("_helper_pool", fresh)
            if helper is not fresh:
                fresh.shutdown()
        return helper

    def derive_rows(self, ids: Collection[str]) -> list[tuple[str, str | None, str]]:
        """One generation of a derivation tree in one round trip: ``(version, output, run)``
        per run consuming one of ``ids`` and per version it produced (``None``: a run
        without outputs)."""
        if not ids:
            return []
        found = self._read(lambda tx: tx.run(DERIVE, ids=list(ids)).single(strict=True))
        rows: list[tuple[str, str | None, str]] = []
        for version, run, *outputs in found["rows"]:
            if outputs:
                rows += [(version, output, run) for output in outputs]
            else:
                rows.append((version, None, run))
        return rows

    def reaches(self, source: str, target: str, direction: Direction) -> bool:
        """Whether ``target`` is reachable from ``source``: one bidirectional BFS on the server."""
        if source == target:
            return False  # lineage is acyclic
        query = REACHES[direction, ":" in source, ":" in target]
        [record] = self._statement(query, {"source": source, "target": target})
        found: bool = record["found"]
        return found

    # events --------------------------------------------------------------------------------

    def append_events(self, events: Iterable[Event]) -> None:
        rows = event_rows(events)
        if rows:
            self._write(lambda tx: insert_events(tx, rows))

    def events(
        self, project: str, *, target_prefix: str | None = None, after: int | None = None
    ) -> list[Event]:
        where: list[LiteralString] = ["e.project = $project"]
        if target_prefix is not None:
            where.append("e.target STARTS WITH $prefix")
        if after is not None:
            where.append("e.seq > $after")
        query: LiteralString = (
            "MATCH (e:Event) WHERE " + " AND ".join(where) + " WITH e ORDER BY e.seq " + EVENTS
        )
        rows = self._collect(query, project=project, prefix=target_prefix, after=after)
        return codec.decode_events(rows)

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
        edge_work = edge_lanes(edges)  # a bad edge refused before anything is written
        run_rows = [run_props(run) for run in unique(runs, lambda run: run.id)]
        self._index_flat("Run", run_rows)
        self._index_flat("ArtifactVersion", [flat_props("metadata", v.metadata) for v in versions])
        artifact_rows = [artifact_props(a) for a in unique(artifacts, lambda a: a.key)]
        # runs beside artifacts and versions (no node in common), then the edges in two
        # lanes split by run (edge_lanes): what the records are, not their order, is stored
        self._lanes(
            counts,
            [
                [("runs", partial(merge_runs, rows=c, imported=True)) for c in chunks(run_rows)],
                [("artifacts", partial(merge_artifacts, rows=c)) for c in chunks(artifact_rows)]
                + [
                    ("versions", partial(merge_versions, versions=c))
                    for c in chunks(unique(versions, lambda v: v.id))
                ],
            ],
        )
        self._lanes(
            counts,
            [
                [
                    ("edges", partial(merge_edges, kind=kind, pairs=part))
                    for kind, pairs in lane
                    for part in chunks(pairs)
                ]
                for lane in edge_work
            ],
        )
        for chunk in chunks(event_rows(events)):
            counts["events"] += self._write(partial(insert_events, rows=chunk))
        return counts

    def _lanes(
        self,
        counts: dict[str, int],
        lanes: Sequence[Sequence[tuple[str, Callable[[neo4j.ManagedTransaction], int]]]],
    ) -> None:
        """Each lane's transactions in order, adding their counts; two lanes at once (a
        thread and a session each) when both have work and there are three transactions or
        more: Neo4j runs a transaction on one core, and an import is the server's work, so
        a second lane puts the second core to work. In this thread's open
        :meth:`transaction`, one after the other in it."""
        busy = [lane for lane in lanes if lane]
        if self._open() is not None or len(busy) < 2 or sum(map(len, busy)) < 3:
            for lane in busy:
                for key, work in lane:
                    counts[key] += self._write(work)
            return
        stop = threading.Event()  # a lane that failed: the other ends after its transaction
        failed: list[BaseException] = []
        totals = [dict.fromkeys(counts, 0) for _ in busy]

        def write(lane: int) -> None:
            try:
                for key, work in busy[lane]:
                    if stop.is_set():
                        return
                    totals[lane][key] += self._write(work)
            except BaseException as exc:  # noqa: BLE001 -- raised again in the caller's thread
                failed.append(exc)
                stop.set()

        others = [threading.Thread(target=write, args=(i,)) for i in range(1, len(busy))]
        for thread in others:
            thread.start()
        write(0)
        for thread in others:
            thread.join()
        if failed:
            raise failed[0]
        for total in totals:
            for key, n in total.items():
                counts[key] += n

    # finding by filter ---------------------------------------------------------------------

    def find_runs(
        self,
        project: str | None,
        where: Filter | None,
        order: Order,
        *,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[RunRecord]:
        """Runs passing ``where``, in ``order`` then by id, from the one after the sort key
        ``after`` (``(rank, value, id)``)."""

        def page(hints: bool) -> list[RunRecord]:
            found: list[RunRecord] = []
            for query, params in self._find_plan("Run", "r", _RUN_COLUMNS, project, where,
                                                 order, limit, after, hints):  # fmt: skip
                found += codec.decode_runs(self._collect(query + " " + RUNS, **params))
                if limit is not None and len(found) >= limit:
                    break
            return found[:limit] if limit is not None else found

        return _hinted(page)

    def find_versions(
        self,
        project: str | None,
        where: Filter | None,
        order: Order,
        *,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[VersionRecord]:
        """Versions (deleted ones too) passing ``where``, as :meth:`find_runs`."""

        def page(hints: bool) -> list[VersionRecord]:
            found: list[VersionRecord] = []
            for query, params in self._find_plan("ArtifactVersion", "v", _VERSION_COLUMNS,
                                                 project, where, order, limit, after,
                                                 hints):  # fmt: skip
                found += self._read(partial(_versions_found, query=query, params=params))
                if limit is not None and len(found) >= limit:
                    break
            return found[:limit] if limit is not None else found

        return _hinted(page)

    def _find_plan(
        self,
        label: LiteralString,
        var: LiteralString,
        columns: Mapping[str, str],
        project: str | None,
        where: Filter | None,
        order: Order,
        limit: int | None,
        after: Sequence[Any] | None,
        hints: bool = True,
    ) -> Iterator[tuple[LiteralString, dict[str, Any]]]:
        """The queries of a page, in turn (the caller stops once the page is full). A first
        page of a broad filter walks its order's index: ``started_at``/``created_at``, or a
        key's flattened property (its numbers, then its strings, then the rest), with the
        planner told to (``USING INDEX``); anything else lets the planner seek the
        filter's own indexes."""
        match: LiteralString = f"MATCH ({var}:{label}) WHERE {var}.project IS NOT NULL"
        field = order.field
        key = None if field.document is None else f"{field.document}." + ".".join(field.path)
        walkable = field.attribute in ("started_at", "created_at") or (
            key is not None and f"flat {label} {key}" in self._indexed
        )
        if (
            not hints
            or limit is None
            or not walkable
            or not self._broad(label, var, columns, where)
        ):
            narrowest = self._narrowest(label, var, columns, where) if hints else None
            if narrowest is not None:  # the planner, left alone, may seek a broader one
                match = (
                    f"MATCH ({var}:{label}) USING INDEX {var}:{label}({prop('', narrowest)[1:]}) "
                    f"WHERE {var}.project IS NOT NULL"
                )
            yield _find_query(match, var, columns, project, where, order, limit, after)
            return
        if key is None:
            column = columns[field.attribute or ""]
            prop_name: LiteralString = "started_at" if label == "Run" else "created_at"
            hinted: LiteralString = (
                f"MATCH ({var}:{label}) USING INDEX {var}:{label}({prop_name}) "
                f"WHERE {column} IS NOT NULL AND {var}.project IS NOT NULL"
            )
            yield _find_query(hinted, var, columns, project, where, order, limit, after)
            return
        value = prop(var, key)
        number, string, rest = (2, 1, 0) if order.descending else (0, 1, 2)
        position = None if after is None else (2 - after[0] if order.descending else after[0])
        for part, (rank, kind) in enumerate(((number, "INTEGER | FLOAT"), (string, "STRING"))):
            if position is not None and part < position:
                continue
            hinted = (
                f"MATCH ({var}:{label}) USING INDEX {var}:{label}({prop('', key)[1:]}) "
                f"WHERE {value} IS NOT NULL AND {value} IS :: {kind} "
                f"AND {var}.project IS NOT NULL"
            )
            yield _find_query(hinted, var, columns, project, where, order, limit,
                              after if position == part else None, rank=rank,
                              bare=value)  # fmt: skip
        yield _find_query(match, var, columns, project, where, order, limit,
                          after if position == 2 else None, rank=rest)  # fmt: skip

    def _narrowest(
        self,
        label: LiteralString,
        var: LiteralString,
        columns: Mapping[str, str],
        where: Filter | None,
    ) -> str | None:
        """The key of the ``and``-ed range comparison of ``where`` holding the fewest nodes,
        when there are two or more (each counted through its index, up to the fewest so
        far); None otherwise."""
        parts = [
            part for part in ([] if where is None else conjuncts(where))
            if isinstance(part, Compare) and part.field.document is not None
            and part.op in ("=", "<", "<=", ">", ">=", "in")
            and f"flat {label} {part.field.document}.{'.'.join(part.field.path)}"
            in self._indexed
        ]  # fmt: skip
        if len(parts) < 2:
            return None
        best: tuple[int, str] | None = None
        for part in parts:
            params: dict[str, Any] = {"cap": 1 << 62 if best is None else best[0]}
            test = where_cypher(part, var, columns, params)
            counted: int = self._rows(
                f"MATCH ({var}:{label}) WHERE {test} WITH {var} LIMIT $cap RETURN count(*) AS n",
                **params,
            )[0]["n"]
            if best is None or counted < best[0]:
                best = (counted, f"{part.field.document}." + ".".join(part.field.path))
        return None if best is None else best[1]

    def _broad(
        self,
        label: LiteralString,
        var: LiteralString,
        columns: Mapping[str, str],
        where: Filter | None,
    ) -> bool:
        """Whether every ``and``-ed comparison of ``where`` on a key holds for at least
        ``broad`` nodes (each counted through its index, up to that many)."""
        if where is None:
            return True
        for part in conjuncts(where):
            if not isinstance(part, Compare) or part.field.document is None:
                continue
            params: dict[str, Any] = {"cap": self.broad}
            test = where_cypher(part, var, columns, params)
            counted = self._rows(
                f"MATCH ({var}:{label}) WHERE {test} WITH {var} LIMIT $cap RETURN count(*) AS n",
                **params,
            )[0]["n"]
            if counted < self.broad:
                return False
        return True

    def count_found_runs(self, project: str | None, where: Filter | None) -> int:
        """How many runs :meth:`find_runs` would return without a limit (no record read)."""
        return self._count_found(
            "MATCH (r:Run) WHERE r.project IS NOT NULL", "r", _RUN_COLUMNS, project, where
        )

    def count_found_versions(self, project: str | None, where: Filter | None) -> int:
        """How many versions :meth:`find_versions` would return without a limit."""
        return self._count_found(
            "MATCH (v:ArtifactVersion) WHERE v.project IS NOT NULL", "v", _VERSION_COLUMNS,
            project, where,
        )  # fmt: skip

    def _count_found(
        self,
        match: LiteralString,
        var: LiteralString,
        columns: Mapping[str, str],
        project: str | None,
        where: Filter | None,
    ) -> int:
        params: dict[str, Any] = {"project": project}
        query = match
        if project is not None:
            query += f" AND {var}.project = $project"
        if where is not None:
            query += " AND " + where_cypher(where, var, columns, params)
        count: int = self._rows(query + f" RETURN count({var}) AS n", **params)[0]["n"]
        return count

    # tokens --------------------------------------------------------------------------------

    def create_token(self, token: TokenRecord) -> None:
        props = dict(zip(TOKEN_FIELDS, codec.encode_token(token), strict=True))
        self._write(
            lambda tx: tx.run(
                "MERGE (t:Token {id: $id}) ON CREATE SET t += $props", id=token.id, props=props
            ).consume()
        )

    def find_token(self, digest: str) -> TokenRecord | None:
        # the server looks a token up on every request: one round trip, not three
        rows = self._autocommit(
            "MATCH (t:Token {digest: $digest}) RETURN " + TOKEN + " AS t", digest=digest
        )
        return codec.decode_token(rows[0]["t"]) if rows else None

    def add_locations(self, locations: Iterable[tuple[str, str, str]]) -> None:
        rows = [{"uri": uri, "project": p, "name": n} for uri, p, n in locations]
        if rows:
            self._write(
                lambda tx: tx.run(
                    "UNWIND $rows AS row MERGE (l:Location {uri: row.uri}) "
                    "ON CREATE SET l.project = row.project, l.name = row.name",
                    rows=rows,
                ).consume()
            )

    def find_locations(self, uris: Collection[str]) -> dict[str, tuple[str, str]]:
        rows = self._rows(
            "UNWIND $uris AS uri MATCH (l:Location {uri: uri}) RETURN l.uri AS uri, "
            "l.project AS project, l.name AS name",
            uris=list(uris),
        )
        return {row["uri"]: (row["project"], row["name"]) for row in rows}

    def revoke_token(self, token_id: str) -> bool:
        def work(tx: neo4j.ManagedTransaction) -> bool:
            row = tx.run(
                "MATCH (t:Token {id: $id}) SET t.revoked = true RETURN count(t) AS n", id=token_id
            ).single(strict=True)
            return bool(row["n"] > 0)

        return self._write(work)

    # set-based reads and writes of a group of events (lineage.openlineage.plan) -------------

    def artifact_states(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int, int | None, float | None]]:
        """``(type, next_index, newest index, its created_at)`` of each stored artifact of
        ``keys`` (project, name). Within :meth:`transaction`, each found artifact is locked
        first, in key order, as ``commit_version`` locks it: what is read stays true to the
        commit."""
        wanted = sorted({f"{p}/{n}" for p, n in keys})

        def work(tx: neo4j.ManagedTransaction) -> list[list[Any]]:
            if self._open() is not None:
                tx.run(
                    "UNWIND $keys AS key MATCH (a:Artifact {key: key}) " + LOCK, keys=wanted
                ).consume()
            return _collect(
                tx,
                "UNWIND $keys AS key MATCH (a:Artifact {key: key}) WHERE a.project IS NOT NULL "
                "OPTIONAL MATCH (p:ArtifactVersion {id: key + ':v' + toString(a.next_index - 1)}) "
                "RETURN collect([a.project, a.name, a.type, a.next_index, p.index, p.created_at])"
                " AS rows",
                keys=wanted,
            )

        rows = self._write(work, locks=True) if self._open() is not None else self._read(work)
        return {(p, n): (t, i, top, at) for p, n, t, i, top, at in rows}

    def versions_with_digests(
        self, wanted: Collection[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], VersionRecord]:
        """The committed version of each ``(project, name, digest)`` that has one (of several,
        the lowest index: what ``commit_version`` finds)."""
        rows = self._collect(
            "UNWIND $rows AS row CALL (row) { MATCH (v:ArtifactVersion {digest: row[2]}) "
            "WHERE v.project = row[0] AND v.name = row[1] AND v.state = 'committed' "
            "RETURN v ORDER BY v.index LIMIT 1 } WITH v " + VERSIONS,
            rows=[list(item) for item in dict.fromkeys(wanted)],
        )
        return {(v.project, v.name, v.digest): v for v in codec.decode_versions(rows)}

    def update_runs(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """``update_run`` of many runs (id: its changes) in one statement; ``config`` and
        ``summary`` (flattened) go one run at a time."""
        rows = []
        for run_id, change in changes.items():
            if {"config", "summary"} & set(change):
                self.update_run(run_id, change)
            elif change:
                rows.append({"id": run_id, "props": codec.encode_run_changes(change)})
        if rows:
            self._write(
                lambda tx: tx.run(
                    "UNWIND $rows AS row MATCH (r:Run {id: row.id}) "
                    "WHERE r.project IS NOT NULL SET r += row.props",
                    rows=rows,
                ).consume()
            )

    # staged blobs (lineage.storage.neo4j.staged, lineage.storage.staging) -----------------

    def staging_for(self, url: str) -> StagedBlobs:
        """The graph side of :class:`~lineage.storage.staging.Staging` for the blob store at
        ``url`` on this machine: its blobs staged apart from other blob stores'."""
        return StagedBlobs(self, scope_of(url))

    def stage_rows(self, rows: list[dict[str, Any]]) -> None:
        """Staged-blob rows created in this thread's open transaction, with its next write
        statement or before its commit; outside a transaction, at once."""
        open_tx = self._open()
        if open_tx is not None:
            open_tx.staged += rows
        elif rows:
            self._write(lambda tx: tx.run(STAGE, staged=rows).consume())

    def run_write(self, query: LiteralString, params: dict[str, Any]) -> list[neo4j.Record]:
        """One statement in this thread's open transaction, else in a write of its own."""
        return self._write(lambda tx: list(tx.run(query, params)))

    # a group of OpenLineage events in two statements (lineage.storage.neo4j.state) ----------

    def group_state(
        self,
        uris: Collection[str],
        keys: Collection[tuple[str, str]],
        ids: Collection[str],
        *,
        digests: Collection[tuple[str | None, str, str, str]] = (),
        newest: Collection[tuple[str | None, str, str]] = (),
        scan: int = 64,
        writes: Collection[tuple[str, str]] | None = None,
        write_uris: Collection[str] = (),
    ) -> GroupRead:
        """What :meth:`find_locations` of ``uris``, :meth:`artifact_states` of ``keys`` and
        of the artifacts at those locations, :meth:`get_runs` of ``ids`` and the ``(source,
        target)`` pairs of the edges entering and leaving those runs answer, in one
        statement (within :meth:`transaction`, the artifacts locked first, as
        ``artifact_states`` locks them). With them, for datasets ``(uri, project, name,
        ...)`` stored under their location's artifact if it has one, else their own: the
        committed version of each ``digest`` (``versions_with_digests``) and the ``scan``
        newest committed versions of each of ``newest`` (``list_versions``), of the
        artifacts that exist."""
        open_tx = self._open()
        query = READ if open_tx is not None else READ_UNLOCKED
        self._groups += 1  # a race here only moves a replan
        if replanning(self._groups):
            query = forced(query)
            if open_tx is not None:
                open_tx.replan = True
        params = {
            "uris": list(dict.fromkeys(uris)),
            "keys": sorted({f"{p}/{n}" for p, n in keys}),
            "ids": sorted(set(ids)),
            "digests": [[u, f"{p}/{n}", d] for u, p, n, d in dict.fromkeys(digests)],
            "newest": [[u, f"{p}/{n}"] for u, p, n in dict.fromkeys(newest)],
            "scan": scan,
            "lock_keys": sorted({f"{p}/{n}" for p, n in (keys if writes is None else writes)}),
            "lock_uris": list(dict.fromkeys(uris if writes is None else write_uris)),
        }

        def work(tx: neo4j.ManagedTransaction) -> neo4j.Record:
            return tx.run(query, params).single(strict=True)

        found = self._write(work, locks=True) if self._open() is not None else self._read(work)
        locations = {uri: (project, name) for uri, project, name in found["locations"]}
        artifacts = {(p, n): (t, i, top, at) for p, n, t, i, top, at in found["artifacts"]}
        return GroupRead(
            locations=locations,
            artifacts=artifacts,
            runs={run.id: run for run in codec.decode_runs(found["runs"])},
            ups=[(source, target) for source, target in found["ups"]],
            downs=[(source, target) for source, target in found["downs"]],
            digested={
                (v.project, v.name, v.digest): v for v in codec.decode_versions(found["digested"])
            },
            newest={(p, n): codec.decode_versions(rows) for p, n, rows in found["newest"]},
        )

    def write_planned(
        self,
        *,
        runs: Sequence[RunRecord],
        versions: Sequence[VersionRecord],
        edges: Sequence[Edge],
        changed: Mapping[str, Mapping[str, Any]],
        locations: Iterable[tuple[str, str, str]],
    ) -> dict[str, int]:
        """``import_records(runs=, versions=, edges=)``, ``update_runs(changed)`` and
        ``add_locations(locations)`` in one statement; the counts ``import_records``
        answers (``runs`` and ``versions``). Within :meth:`transaction` that is one round
        trip; a group past ``BATCH`` rows of a kind, or a change of a run's config or
        summary (flattened run by run), takes those calls."""
        run_rows = [run_props(run) for run in unique(runs, lambda run: run.id)]
        versions = unique(versions, lambda v: v.id)
        batches = dict(edge_batches(edges))
        claims = list(locations)
        location_rows = [{"uri": uri, "project": p, "name": n} for uri, p, n in claims]
        flat = any({"config", "summary"} & set(change) for change in changed.values())
        if flat or max(len(run_rows), len(versions), len(edges), len(location_rows)) > BATCH:
            counts = self.import_records(runs=runs, versions=versions, edges=edges)
            if changed:
                self.update_runs(changed)
            self.add_locations(claims)
            return counts
        self._index_flat("Run", run_rows)
        self._index_flat("ArtifactVersion", [flat_props("metadata", v.metadata) for v in versions])
        params: dict[str, list[Any]] = {
            "runs": sorted(run_rows, key=lambda row: str(row["id"])),
            "artifacts": version_artifacts(versions),
            "versions": [version_props(v) for v in versions],
            "aliases": version_aliases(versions),
            "produced": sorted(batches.get(PRODUCED, [])),
            "consumed": sorted(batches.get(CONSUMED_BY, [])),
            "changed": [
                {"id": run_id, "props": codec.encode_run_changes(change)}
                for run_id, change in sorted(changed.items())
                if change
            ],
            "locations": location_rows,
        }
        open_tx = self._open()  # the blobs staged in it so far go with the write
        params["staged"] = open_tx.staged if open_tx is not None else []
        query = forced(WRITE) if open_tx is not None and open_tx.replan else WRITE
        found = self._write(lambda tx: tx.run(query, params).single(strict=True))
        if open_tx is not None:
            open_tx.staged = []
        return {"runs": found["runs"], "versions": found["versions"]}


# flattened documents (lineage.storage.neo4j.filter) ----------------------------------------


def _reflatten(
    tx: neo4j.ManagedTransaction, label: str, node: str, document: str, values: dict[str, Any]
) -> None:
    """Replace the flattened properties of one document of a node by ``values``."""
    query: LiteralString = (
        "MATCH (n {id: $id}) WHERE $label IN labels(n) "
        "FOREACH (k IN [k IN keys(n) WHERE k STARTS WITH $prefix] | REMOVE n[k]) "
        "SET n += $values"
    )
    tx.run(query, id=node, label=label, prefix=f"{document}.", values=values).consume()


def _flatten_all(tx: neo4j.ManagedTransaction) -> int:
    """Write the flattened properties of every record written before they existed (a store
    made by an older lineage); marks the store done. Returns how many nodes it changed."""
    done = tx.run("MATCH (c:Counter {name: 'flattened'}) RETURN c.value AS v").single()
    if done is not None:
        return 0
    changed = 0
    for label, fields in (("Run", ("config", "summary")), ("ArtifactVersion", ("metadata",))):
        query: LiteralString = (
            "MATCH (n) WHERE $label IN labels(n) AND n.project IS NOT NULL "
            "RETURN n.id AS id, [n.config, n.summary, n.metadata] AS docs"
        )
        rows = []
        for record in tx.run(query, label=label):
            docs = dict(zip(("config", "summary", "metadata"), record["docs"], strict=True))
            values: dict[str, Any] = {}
            for field in fields:
                if docs[field]:
                    values.update(flat_props(field, codec.loads_many([docs[field]])[0]))
            if values:
                rows.append({"id": record["id"], "values": values})
        for part in chunks(rows):
            tx.run(
                "UNWIND $rows AS row MATCH (n {id: row.id}) WHERE $label IN labels(n) "
                "SET n += row.values",
                rows=part,
                label=label,
            ).consume()
        changed += len(rows)
    tx.run("MERGE (c:Counter {name: 'flattened'}) SET c.value = 1").consume()
    return changed


# reads ---------------------------------------------------------------------------------------


def _consume(tx: neo4j.ManagedTransaction, query: LiteralString) -> None:
    tx.run(query).consume()


def _collect(tx: neo4j.ManagedTransaction, query: LiteralString, **params: Any) -> list[list[Any]]:
    rows: list[list[Any]] = tx.run(query, params).single(strict=True)["rows"]
    return rows


def _versions_by_id(tx: neo4j.ManagedTransaction, ids: list[str]) -> list[VersionRecord]:
    query: LiteralString = (
        "UNWIND $ids AS id MATCH (v:ArtifactVersion {id: id}) WHERE v.project IS NOT NULL "
        + VERSION_ROWS
    )
    rows = [row for part in chunks(sorted(ids), _LOOKUP) for row in _collect(tx, query, ids=part)]
    return _with_artifacts(tx, rows)


def _with_artifacts(tx: neo4j.ManagedTransaction, rows: list[list[Any]]) -> list[VersionRecord]:
    """Versions from VERSION_ROWS rows and one query for all their artifacts' types and
    aliases; a version without its artifact is no record, as in SQLite's join."""
    keys = sorted({f"{row[0]}/{row[1]}" for row in rows})
    types, aliases = _artifact_maps(_collect(tx, ARTIFACT_ALIASES, keys=keys))
    return list(codec.decode_version_map(rows, types, aliases).values())


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(VersionRecord)}


def _version_columns(
    columns: list[list[Any]], artifacts: list[list[Any]]
) -> dict[str, VersionRecord]:
    """Version records from a walk's ``versions`` columns and ``artifacts`` (cypher.py's
    walk_records_query): the ids, a column per dense field, then ``[id, value]`` pairs
    per sparse field; project, name and index parsed from the ids."""
    ids = columns[0]
    split = 1 + len(VERSION_DENSE_FIELDS)
    dense = dict(zip(VERSION_DENSE_FIELDS, columns[1:split], strict=True))
    sparse = columns[split:]
    for field, pairs in zip(SPARSE_VERSION_FIELDS, sparse, strict=True):
        given = dict(pairs)
        default = _DEFAULTS[field]
        dense[field] = [given.get(ref, default) for ref in ids] if given else [default] * len(ids)
    keys, _, indexes = (
        zip(*(ref.rpartition(":v") for ref in ids), strict=True) if ids else ((),) * 3
    )
    parts = [key.partition("/") for key in keys]
    dense["project"] = [part[0] for part in parts]
    dense["name"] = [part[2] for part in parts]
    dense["index"] = [int(index) for index in indexes]
    unknown = [None] * len(ids)  # the type and aliases come from ``artifacts``
    rows = list(zip(*(dense.get(f, unknown) for f in VERSION_FIELDS), ids, strict=True))
    types, aliases = _artifact_maps(artifacts)
    return codec.decode_version_map(rows, types, aliases)


def _artifact_maps(
    artifacts: list[list[Any]],
) -> tuple[dict[tuple[str, str], str], dict[str, list[str]]]:
    """From ``[key, type, [[version, alias], ...]]`` rows: types by ``(project, name)``,
    aliases by version id."""
    types: dict[tuple[str, str], str] = {}
    aliases: dict[str, list[str]] = {}
    for key, artifact_type, held in artifacts:
        project, _, name = key.partition("/")
        types[project, name] = artifact_type
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


_RUN_COLUMNS = {f: f"r.{f}" for f in (*codec.RUN_FIELDS, "user")}
_VERSION_COLUMNS = {
    **{f: f"v.{f}" for f in codec.VERSION_STORED},
    "id": "v.id",
    "type": "COLLECT { MATCH (a:Artifact {key: v.project + '/' + v.name}) RETURN a.type }[0]",
    "made_at": "coalesce(v.event_at, v.created_at)",  # VersionRecord.made_at: filter "created"
}


def _hinted(page: Callable[[bool], list[T]]) -> list[T]:
    """``page(True)``, or ``page(False)`` when the planner cannot fulfil an index hint (a
    filter it finds false whatever the node, say): then the planner picks the plan."""
    try:
        return page(True)
    except CypherSyntaxError as exc:
        if "hint" not in str(exc).lower():
            raise
        return page(False)


def _versions_found(
    tx: neo4j.ManagedTransaction, query: LiteralString, params: dict[str, Any]
) -> list[VersionRecord]:
    return _with_artifacts(tx, _collect(tx, query + " " + VERSION_ROWS, **params))


def _find_query(
    match: LiteralString,
    var: LiteralString,
    columns: Mapping[str, str],
    project: str | None,
    where: Filter | None,
    order: Order,
    limit: int | None,
    after: Sequence[Any] | None,
    *,
    rank: int | None = None,
    bare: LiteralString | None = None,
) -> tuple[LiteralString, dict[str, Any]]:
    """The query of a page; with ``rank``, of the nodes of that rank alone (and with
    ``bare``, the property holding their value: ordered by it, an index can serve)."""
    params: dict[str, Any] = {"project": project, "limit": limit}
    query = match
    if project is not None:
        query += f" AND {var}.project = $project"
    if where is not None:
        query += " AND " + where_cypher(where, var, columns, params)
    rank_of, value = order_cypher(order, var, columns, params)
    way: LiteralString = " DESC" if order.descending else ""
    beyond: LiteralString = "<" if order.descending else ">"
    if bare is not None:  # the nodes of one rank, whose value is the property itself
        rank_of, value = str(rank), bare
    if rank_of.isdigit():  # one rank: the property alone orders (lineage.storage.sqlfilter)
        if after is not None:
            if after[0] != int(rank_of):
                query += " AND true" if (after[0] < int(rank_of)) != bool(way) else " AND false"
            else:
                params.update(a_value=after[1], a_id=after[2])
                query += (
                    f" AND ({value} {beyond} $a_value OR "
                    f"({value} = $a_value AND {var}.id {beyond} $a_id))"
                )
        query += f" WITH {var} ORDER BY {value}{way}, {var}.id{way}" + limit_clause(limit)
        return query, params
    query += f" WITH {var}, {rank_of} AS rk, {value} AS vl"
    if after is not None:
        params.update(a_rank=after[0], a_value=after[1], a_id=after[2])
        query += (
            f" WHERE (rk {beyond} $a_rank OR (rk = $a_rank AND (vl {beyond} $a_value "
            f"OR (vl = $a_value AND {var}.id {beyond} $a_id))))"
        )
    if rank is not None:
        params["only_rank"] = rank
        query += (" AND" if after is not None else " WHERE") + " rk = $only_rank"
    query += f" ORDER BY rk{way}, vl{way}, {var}.id{way}" + limit_clause(limit)
    return query, params


# small helpers ------------------------------------------------------------------------------


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


def _line(exc: BaseException) -> str:
    """The driver's message on one line (it spreads the reason over several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
