"""Group commit of the Neo4j store's single writes: concurrent callers, one transaction.

``create_run``, ``add_edges``, ``commit_version`` and ``write_run`` (a run, its edges and
its commits in one call) called from many threads of one process (an SDK's worker threads, a
server's handlers) each cost a transaction: round trips and a forced log flush.
:class:`GroupCommit` queues them; the first caller that finds no group being written becomes
the *leader*, takes everything queued (up to ``MAX_GROUP``) and writes
it in one transaction of one statement (:func:`group_query`: an ``UNWIND`` per kind of write,
each commit's lock, heads and write in one), its BEGIN sent with it. Callers that arrive
meanwhile wait, and form the next group. A lone caller is its own leader: no thread, no
timer, no delay. Callers that a group has just answered, on their way back with their next
write, are waited for (``GATHER``, 2 ms at most) so that they join the next group instead
of forming another.

The guarantees of a single write hold for each caller:

- it returns only after the transaction holding its write committed (durable);
- its input is validated in its own thread before it is queued (bad input changes nothing);
- an error reaches its own caller: a commit refused for its artifact's type is refused alone
  (the rest of the group commits); a write of several parts (``write_run``: a run, its edges,
  its commits) is all or nothing: when one of its commits is refused, the group's
  transaction is rolled back before it commits and written again without that write, whose
  caller gets the refusal with nothing of it stored; if the group's transaction fails
  otherwise, each write is tried again alone, in a transaction of its own, and gets its own
  outcome.

A group holds at most one commit per artifact (the next waits for the next group), so that
each commit numbers, dedups and moves ``latest`` exactly as alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, LiteralString

import neo4j

from lineage.errors import StoreUnavailable, TypeMismatch
from lineage.records import CONSUMED_BY, PRODUCED, VersionRecord
from lineage.storage import codec
from lineage.storage.graph import NewVersion
from lineage.storage.neo4j.bulk import version_props
from lineage.storage.neo4j.cypher import LOCK, VERSION_ROW

__all__ = [
    "GATHER",
    "MAX_GROUP",
    "GroupCommit",
    "Spoilt",
    "Write",
    "group_outcomes",
    "group_query",
    "group_statement",
    "write_group",
]

MAX_GROUP = 64  # writes in one transaction
GATHER = 0.002  # seconds a leader waits at most for the last group's callers to queue again
# one statement in a transaction of its own, with retries: its ``rows`` column given to the
# check, inside the transaction (the check raising rolls it back), and the check's answer
Writer = Callable[[LiteralString, dict[str, Any], Callable[[list[Any]], Any]], Any]


@dataclass(eq=False)
class Write:
    """One caller's write: ``runs`` (run_props rows), ``edges`` (``(kind, pairs)``, from
    bulk.edge_batches), ``commits`` (NewVersions, one an artifact), or several of them at
    once, all or nothing; its outcome once ``done`` (with commits: ``[(version, fresh)]``,
    one a commit, in order)."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    edges: list[tuple[str, list[list[str]]]] = field(default_factory=list)
    commits: list[NewVersion] = field(default_factory=list)
    done: bool = False
    result: Any = None
    error: BaseException | None = None

    @property
    def artifacts(self) -> list[str]:
        return [f"{new.project}/{new.name}" for new in self.commits]

    @property
    def whole(self) -> bool:
        """More than one part: what is refused of it must leave none of it stored."""
        return len(self.commits) > 1 or bool(self.commits and (self.runs or self.edges))


class Spoilt(Exception):
    """Raised inside a group's transaction (rolling it back) when a write of several parts
    had a commit refused: ``outcomes`` says which."""

    def __init__(self, outcomes: list[tuple[Any, BaseException | None]]) -> None:
        super().__init__("a write of the group was refused in part")
        self.outcomes = outcomes


class GroupCommit:
    """Writes queued by many threads, written a group per transaction by ``write`` (the
    store's ``_execute``: one statement, BEGIN sent with it, retries, StoreUnavailable)."""

    def __init__(self, write: Writer, max_group: int = MAX_GROUP, gather: float = GATHER) -> None:
        self._write = write
        self._max = max_group
        self._gather_for = gather
        self._queue: list[Write] = []
        self._busy = False
        lock = threading.Lock()
        self._changed = threading.Condition(lock)  # a group written: callers look again
        self._arrived = threading.Condition(lock)  # a write queued: a gathering leader looks
        self._last = 0  # callers of the last group

    def submit(self, write: Write) -> Any:
        """Queue ``write``, wait until it is stored (or refused); its result or its error."""
        with self._changed:
            self._queue.append(write)
            self._arrived.notify()
        while not write.done:
            with self._changed:
                while not write.done and self._busy:
                    self._changed.wait()
                if write.done:
                    break
                # no group being written: lead the next one (ours may wait for a later one,
                # behind an earlier commit to its artifact)
                self._busy = True
                self._gather()
                group = self._take()
            try:
                self._run(group)
            finally:
                for other in group:  # only if interrupted (KeyboardInterrupt): none is lost
                    if not other.done:
                        other.error = StoreUnavailable("interrupted while writing its group")
                        other.done = True
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
        if write.error is not None:
            raise write.error
        return write.result

    def _gather(self) -> None:
        """Before taking a group, wait (``gather`` seconds at most) until as many writes are
        queued as the last group had: the callers a group has just answered are on their way
        back with their next write (a run's edges, its commit), and without the wait they
        would miss this group and form the next one, half as big. A lone caller never waits,
        whichever thread it calls from (a server's requests come from a pool of threads);
        a caller of the last group that does not write again costs this group ``gather``,
        once. Counted, not named by thread: with a pool, the thread that answered a group
        is rarely the one that brings the next write."""
        deadline = time.monotonic() + self._gather_for
        while len(self._queue) < min(self._max, self._last):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.wait(left)

    def _take(self) -> list[Write]:
        """Up to ``max_group`` queued writes in order, one commit per artifact."""
        group: list[Write] = []
        artifacts: set[str] = set()
        rest: list[Write] = []
        for write in self._queue:
            keys = write.artifacts
            if len(group) >= self._max or not artifacts.isdisjoint(keys):
                rest.append(write)
                continue
            group.append(write)
            artifacts.update(keys)
        self._queue = rest
        self._last = len(group)
        return group

    def _run(self, group: list[Write]) -> None:
        try:
            try:
                outcomes = self._write(*group_statement(group), partial(_unspoilt, group))
            except Spoilt as spoilt:
                # rolled back: the writes refused in part fail alone, the rest is written again
                for write, (_, error) in zip(group, spoilt.outcomes, strict=True):
                    if error is not None and write.whole:
                        write.error, write.done = error, True
                rest = [write for write in group if not write.done]
                if rest:
                    self._run(rest)
                return
            except StoreUnavailable:
                raise  # the server is gone: every caller hears it
            except Exception:
                if len(group) == 1:
                    raise
                # one write spoilt the group (it should not: each was validated): each alone,
                # so that the error reaches its own caller
                for write in group:
                    self._run([write])
                return
            for write, (result, error) in zip(group, outcomes, strict=True):
                write.result, write.error, write.done = result, error, True
        except Exception as exc:  # noqa: BLE001 -- raised again in each caller's thread
            for write in group:
                if not write.done:
                    write.error, write.done = exc, True


def _unspoilt(
    group: Sequence[Write], answer: list[list[Any]]
) -> list[tuple[Any, BaseException | None]]:
    """``group_outcomes``, checked inside the transaction: Spoilt if a write of several
    parts had a commit refused (its other parts are in the transaction: it must not commit)."""
    outcomes = group_outcomes(group, answer)
    if any(
        error is not None and write.whole for write, (_, error) in zip(group, outcomes, strict=True)
    ):
        raise Spoilt(outcomes)
    return outcomes


def write_group(
    tx: neo4j.ManagedTransaction, group: Sequence[Write]
) -> list[tuple[Any, BaseException | None]]:
    """A group written in ``tx`` (a caller's open transaction): ``(result, error)`` per
    write, in order. A write of several parts refused in part leaves its other parts in
    ``tx``: the caller's error rolls the transaction back (Neo4j has no savepoints)."""
    query, params = group_statement(group)
    return group_outcomes(group, tx.run(query, params).single(strict=True)["rows"])


def group_statement(group: Sequence[Write]) -> tuple[LiteralString, dict[str, Any]]:
    """A group's one statement (:func:`group_query`) and its parameters. Sent again as it is
    on a retry: everything is MERGE, and the outcomes come from the answer."""
    runs = [row for write in group for row in write.runs]
    by_kind: dict[str, dict[tuple[str, str], list[str]]] = {}
    for write in group:
        for kind, pairs in write.edges:
            for pair in pairs:
                by_kind.setdefault(kind, {})[(pair[0], pair[1])] = pair
    rows = commit_rows([new for write in group for new in write.commits])
    query = group_query(bool(runs), CONSUMED_BY in by_kind, PRODUCED in by_kind, bool(rows))
    # nodes locked in one order by every group (of any process): fewer deadlocks to retry
    params = {
        "runs": sorted(runs, key=lambda row: str(row["id"])),
        "consumed": sorted(by_kind.get(CONSUMED_BY, {}).values()),
        "produced": sorted(by_kind.get(PRODUCED, {}).values()),
        "commits": rows,
    }
    return query, params


def group_outcomes(
    group: Sequence[Write], answer: list[list[Any]]
) -> list[tuple[Any, BaseException | None]]:
    """``(result, error)`` per write of ``group``, in order, from its statement's ``rows``:
    a write with commits gets ``[(version, fresh)]`` or its first commit's refusal."""
    commits = [new for write in group for new in write.commits]
    committed = iter(commit_outcomes(commits, answer))
    outcomes: list[tuple[Any, BaseException | None]] = []
    for write in group:
        mine = [next(committed) for _ in write.commits]
        error = next((error for _, error in mine if error is not None), None)
        if not write.commits:
            outcomes.append((None, None))
        elif error is not None:
            outcomes.append((None, error))
        else:
            outcomes.append(([result for result, _ in mine], None))
    return outcomes


def commit_rows(commits: Sequence[NewVersion]) -> list[dict[str, Any]]:
    """The commits' rows for :data:`COMMIT`, in key order (the order every writer locks
    artifacts in). A version's properties but its ``id`` and ``index``, which the statement
    sets from the index it reads under the lock."""
    now = time.time()  # a version is never older than its predecessor: COMMIT moves it up
    rows = []
    for new in commits:
        props = version_props(
            VersionRecord(
                project=new.project, name=new.name, type=new.type, index=0,
                digest=new.digest, size=new.size, file_count=new.file_count,
                metadata=new.metadata, description=new.description,
                created_by=new.run_id, created_at=max(new.at, now), event_at=new.event_at,
            )
        )  # fmt: skip
        del props["id"], props["index"]
        rows.append(
            {
                "key": f"{new.project}/{new.name}",
                "project": new.project,
                "name": new.name,
                "type": new.type,
                "description": new.description,
                "at": float(new.at),
                "digest": new.digest,
                "run": new.run_id,
                "props": props,
            }
        )
    return sorted(rows, key=lambda row: row["key"])


def commit_outcomes(
    commits: Sequence[NewVersion], answer: list[list[Any]]
) -> list[tuple[tuple[VersionRecord, bool] | None, BaseException | None]]:
    """Each commit's outcome from :data:`COMMIT`'s rows ``[key, type, fresh, version, index,
    created_at]``: its version and whether it is new, or TypeMismatch (nothing written for
    it). A found version comes whole (``version``); a new one is what its commit wrote."""
    rows = {row[0]: row for row in answer}
    by_key = {f"{new.project}/{new.name}": new for new in commits}
    known = [row for row in answer if row[2] or row[3] is not None]
    values = [_made(by_key[row[0]], row) if row[2] else row[3] for row in known]
    records = dict(zip([row[0] for row in known], codec.decode_versions(values), strict=True))
    outcomes: list[tuple[tuple[VersionRecord, bool] | None, BaseException | None]] = []
    for new in commits:
        key = f"{new.project}/{new.name}"
        _, type_, fresh, *_ = rows[key]
        if type_ != new.type:
            error = TypeMismatch(
                f"artifact {key} has type {type_!r}, not {new.type!r}", artifact=key
            )
            outcomes.append((None, error))
        else:
            outcomes.append(((records[key], fresh), None))
    return outcomes


def _made(new: NewVersion, row: list[Any]) -> list[Any]:
    """A new version's values in ``VERSION_FIELDS`` order, as a read of it would give them:
    the properties its commit set (commit_rows), the index and created_at the statement
    gave it, its artifact's type, and ``latest``, the one alias a version new this instant
    can have."""
    _, type_, _, _, index, at = row
    props = version_props(
        VersionRecord(
            project=new.project, name=new.name, type=new.type, index=index,
            digest=new.digest, size=new.size, file_count=new.file_count,
            metadata=new.metadata, description=new.description,
            created_by=new.run_id, created_at=at, event_at=new.event_at,
        )
    )  # fmt: skip
    return [
        type_ if f == "type" else ["latest"] if f == "aliases" else props.get(f)
        for f in codec.VERSION_FIELDS
    ]


_RUNS: LiteralString = (
    "CALL () { UNWIND $runs AS row MERGE (r:Run {id: row.id}) "
    "WITH r, row, r.project IS NULL AS fresh SET r += CASE WHEN fresh THEN row ELSE {} END } "
)
_CONSUMED: LiteralString = (
    "CALL () { UNWIND $consumed AS p MERGE (s:ArtifactVersion {id: p[0]}) "
    "MERGE (t:Run {id: p[1]}) MERGE (s)-[:CONSUMED_BY]->(t) } "
)
_PRODUCED: LiteralString = (
    "CALL () { UNWIND $produced AS p MERGE (s:Run {id: p[0]}) "
    "MERGE (t:ArtifactVersion {id: p[1]}) MERGE (s)-[:PRODUCED]->(t) } "
)
# A commit, as commit_version's three statements were, in one: the artifact's write lock
# first (its node written), and only in the clauses after it, under the lock, its type, next
# index and a committed version with the same digest; then the new version, its PRODUCED
# edge and `latest`, and the artifact's created_at: its earliest version's made time
# (lineage.made: a late event's version may have been made before the first one). A commit
# of another type writes nothing. A new version is not read back: it is what the commit
# wrote (commit_outcomes), but its index and created_at (measured: the read of every field
# and its aliases was a third of a group of commits' server CPU); a version found by its
# digest is read whole.
COMMIT: LiteralString = (
    "UNWIND $commits AS row MERGE (a:Artifact {key: row.key}) "
    "ON CREATE SET a.project = row.project, a.name = row.name, a.type = row.type, "
    "a.description = row.description, a.created_at = row.at, a.next_index = 0 "
    + LOCK
    + " WITH row, a "
    "OPTIONAL CALL (a, row) { MATCH (v:ArtifactVersion {digest: row.digest}) "
    "WHERE v.project = a.project AND v.name = a.name AND v.state = 'committed' "
    "RETURN v.id AS existing ORDER BY v.index LIMIT 1 } "
    "WITH row, a, existing, a.type AS type, a.next_index AS index "
    "OPTIONAL CALL (row, a, existing, type, index) { "
    "WITH * WHERE type = row.type AND existing IS NULL "
    "SET a.next_index = index + 1 "
    "MERGE (v:ArtifactVersion {id: row.key + ':v' + toString(index)}) "
    "SET v += row.props, v.index = index "
    "WITH row, v, index, a "
    "OPTIONAL MATCH (p:ArtifactVersion {id: row.key + ':v' + toString(index - 1)}) "
    "SET v.created_at = CASE WHEN p.created_at > v.created_at "
    "THEN p.created_at ELSE v.created_at END "
    "WITH row, v, index, a, coalesce(v.event_at, v.created_at) AS made "
    "SET a.created_at = CASE WHEN index = 0 OR made < a.created_at "
    "THEN made ELSE a.created_at END "
    "WITH DISTINCT row, v "
    "MERGE (r:Run {id: row.run}) MERGE (r)-[:PRODUCED]->(v) "
    "MERGE (l:Alias {key: row.key + '/latest'}) "
    "SET l.project = v.project, l.name = v.name, l.alias = 'latest', "
    "l.index = v.index, l.version = v.id "
    "RETURN v.id AS made, v.created_at AS made_at } "
    "WITH row, a, type, index, made, made_at, existing "
    "OPTIONAL CALL (a, existing) { MATCH (v:ArtifactVersion {id: existing}) RETURN "
    + VERSION_ROW
    + " AS version } "
    "RETURN collect([row.key, type, made IS NOT NULL, version, index, made_at]) AS rows"
)


def group_query(runs: bool, consumed: bool, produced: bool, commits: bool) -> LiteralString:
    """The one statement of a group: its runs, its edges of each kind, then its commits."""
    query: LiteralString = (
        (_RUNS if runs else "")
        + (_CONSUMED if consumed else "")
        + (_PRODUCED if produced else "")
        + (COMMIT if commits else "RETURN [] AS rows")
    )
    return query
