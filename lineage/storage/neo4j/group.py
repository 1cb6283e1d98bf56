"""Group commit of the Neo4j store's single writes: concurrent callers, one transaction.

``create_run``, ``add_edges`` and ``commit_version`` called from many threads of one process
(an SDK's worker threads, a server's handlers) each cost a transaction: round trips and a
forced log flush. :class:`GroupCommit` queues them; the first caller that finds no group
being written becomes the *leader*, takes everything queued (up to ``MAX_GROUP``) and writes
it in one transaction, one ``UNWIND`` statement per kind of write. Callers that arrive
meanwhile wait, and form the next group. A lone caller is its own leader: no thread, no
timer, no delay.

The guarantees of a single write hold for each caller:

- it returns only after the transaction holding its write committed (durable);
- its input is validated in its own thread before it is queued (bad input changes nothing);
- an error reaches its own caller: a commit refused for its artifact's type is refused alone
  (the rest of the group commits); if the group's transaction fails otherwise, each write is
  tried again alone, in a transaction of its own, and gets its own outcome.

A group holds at most one ``commit_version`` per artifact (the next waits for the next
group), so that each commit numbers, dedups and moves ``latest`` exactly as alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import neo4j

from lineage.errors import StoreUnavailable, TypeMismatch
from lineage.records import VersionRecord, version_id
from lineage.storage import codec
from lineage.storage.graph import NewVersion
from lineage.storage.neo4j.bulk import merge_edges, merge_runs, version_props
from lineage.storage.neo4j.cypher import COMMIT_HEADS, COMMIT_LOCKS, COMMIT_VERSIONS, VERSIONS

__all__ = ["MAX_GROUP", "GroupCommit", "Write", "write_group"]

MAX_GROUP = 64  # writes in one transaction
T = TypeVar("T")
Writer = Callable[[Callable[[neo4j.ManagedTransaction], T]], T]


@dataclass(eq=False)
class Write:
    """One caller's write: ``runs`` (run_props rows), ``edges`` (``(kind, pairs)``, from
    bulk.edge_batches) or ``commit`` (a NewVersion); its outcome once ``done``."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    edges: list[tuple[str, list[list[str]]]] = field(default_factory=list)
    commit: NewVersion | None = None
    done: bool = False
    result: Any = None
    error: BaseException | None = None

    @property
    def artifact(self) -> str | None:
        return None if self.commit is None else f"{self.commit.project}/{self.commit.name}"


class GroupCommit:
    """Writes queued by many threads, written a group per transaction by ``write`` (the
    store's ``_write``: managed transaction, retries, StoreUnavailable)."""

    def __init__(self, write: Writer[Any], max_group: int = MAX_GROUP) -> None:
        self._write = write
        self._max = max_group
        self._queue: list[Write] = []
        self._busy = False
        self._changed = threading.Condition()

    def submit(self, write: Write) -> Any:
        """Queue ``write``, wait until it is stored (or refused); its result or its error."""
        with self._changed:
            self._queue.append(write)
        while not write.done:
            with self._changed:
                while not write.done and self._busy:
                    self._changed.wait()
                if write.done:
                    break
                # no group being written: lead the next one (ours may wait for a later one,
                # behind an earlier commit to its artifact)
                self._busy = True
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

    def _take(self) -> list[Write]:
        """Up to ``max_group`` queued writes in order, one commit per artifact."""
        group: list[Write] = []
        artifacts: set[str] = set()
        rest: list[Write] = []
        for write in self._queue:
            key = write.artifact
            if len(group) >= self._max or (key is not None and key in artifacts):
                rest.append(write)
                continue
            group.append(write)
            if key is not None:
                artifacts.add(key)
        self._queue = rest
        return group

    def _run(self, group: list[Write]) -> None:
        try:
            try:
                outcomes = self._write(lambda tx: write_group(tx, group))
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


def write_group(
    tx: neo4j.ManagedTransaction, group: Sequence[Write]
) -> list[tuple[Any, BaseException | None]]:
    """The transaction body of a group: ``(result, error)`` per write, in order. Runs again
    from the start on a retry (everything is MERGE, the outcomes are computed afresh)."""
    runs = [row for write in group for row in write.runs]
    if runs:
        merge_runs(tx, runs)
    by_kind: dict[str, dict[tuple[str, str], list[str]]] = {}
    for write in group:
        for kind, pairs in write.edges:
            for pair in pairs:
                by_kind.setdefault(kind, {})[(pair[0], pair[1])] = pair
    for kind, unique_pairs in by_kind.items():
        merge_edges(tx, kind, list(unique_pairs.values()))
    commits = [write.commit for write in group if write.commit is not None]
    committed = commit_versions(tx, commits) if commits else []
    outcomes: list[tuple[Any, BaseException | None]] = []
    done = iter(committed)
    for write in group:
        if write.commit is None:
            outcomes.append((None, None))
        else:
            outcomes.append(next(done))
    return outcomes


def commit_versions(
    tx: neo4j.ManagedTransaction, commits: Sequence[NewVersion]
) -> list[tuple[tuple[VersionRecord, bool] | None, BaseException | None]]:
    """``commit_version`` for several artifacts (one commit each) in one transaction, as
    the store's commit_version does for one: each artifact's lock (in key order, as every
    writer takes them), then under the locks its type, next index and a committed version
    with the same digest, then the new versions. A commit refused for its type writes
    nothing and gets TypeMismatch; the others go on."""
    keys = [f"{new.project}/{new.name}" for new in commits]
    rows = [
        {
            "key": key,
            "project": new.project,
            "name": new.name,
            "type": new.type,
            "description": new.description,
            "at": float(new.at),
            "digest": new.digest,
        }
        for key, new in zip(keys, commits, strict=True)
    ]
    tx.run(COMMIT_LOCKS, rows=sorted(rows, key=lambda row: row["key"])).consume()
    heads = {
        key: (type_, index, existing)
        for key, type_, index, existing in tx.run(COMMIT_HEADS, rows=rows).single(strict=True)[
            "rows"
        ]
    }
    outcomes: list[tuple[tuple[VersionRecord, bool] | None, BaseException | None]] = []
    writes: list[dict[str, Any]] = []
    found: dict[str, str] = {}  # the version id each commit answers, new or existing
    now = time.time()  # read under the locks, as commit_version reads it
    for new, key in zip(commits, keys, strict=True):
        type_, index, existing = heads[key]
        if type_ != new.type:
            outcomes.append(
                (
                    None,
                    TypeMismatch(
                        f"artifact {key} has type {type_!r}, not {new.type!r}", artifact=key
                    ),
                )
            )
            continue
        outcomes.append((None, None))
        if existing is not None:
            found[key] = existing
            continue
        props = version_props(
            VersionRecord(
                project=new.project, name=new.name, type=new.type, index=index,
                digest=new.digest, size=new.size, file_count=new.file_count,
                metadata=new.metadata, description=new.description,
                created_by=new.run_id, created_at=max(new.at, now),
            )
        )  # fmt: skip
        found[key] = props["id"]
        writes.append(
            {
                "key": key,
                "index": index,
                "id": props["id"],
                "previous": version_id(new.project, new.name, index - 1) if index else None,
                "props": props,
                "run": new.run_id,
            }
        )
    records: dict[str, VersionRecord] = {}
    if writes:
        for version in codec.decode_versions(
            tx.run(COMMIT_VERSIONS, rows=writes).single(strict=True)["rows"]
        ):
            records[version.id] = version
    fresh = {write["id"] for write in writes}
    old = sorted(set(found.values()) - fresh)
    if old:
        query = "MATCH (v:ArtifactVersion) WHERE v.id IN $ids " + VERSIONS
        for version in codec.decode_versions(tx.run(query, ids=old).single(strict=True)["rows"]):
            records[version.id] = version
    answered: list[tuple[tuple[VersionRecord, bool] | None, BaseException | None]] = []
    for (_, error), key in zip(outcomes, keys, strict=True):
        if error is not None:
            answered.append((None, error))
        else:
            vid = found[key]
            answered.append(((records[vid], vid in fresh), None))
    return answered
