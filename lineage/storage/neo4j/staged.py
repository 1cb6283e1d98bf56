"""Blobs staged in Neo4j transactions (:mod:`lineage.storage.staging` over Neo4j).

An OpenLineage group names a few reference manifests an event. Made durable in a local blob
store before the commit that names them, they cost each group a wait on the disk (each
file's ``fsync`` and its folder's, 8 at once): 2-3 ms of a 13-19 ms group of 4 events under
load (bench/README.md). Staged instead, their bytes are ``:StagedBlob`` nodes created in the
group's own transaction, sent with its write statement (no round trip of their own): as
durable as the commit that names them. The files are written unsynced; the staging's thread
syncs the blob store a second later and deletes the nodes (one statement).

Neo4j is a server: writers on other machines, with other blob stores, stage in it too. Each
node carries the *scope* of its blob store (host name and URL): a writer syncs, recovers and
deletes only its own scope's nodes, never another machine's that its sync did not cover.
``seq`` is the writer's clock (``time.time_ns()``) when it staged the blob, after its file was
written: a node whose ``seq`` is at most the newest committed one read before a sync names a
file that the sync covered.

>>> staged = StagedBlobs(store, "host:/data/blobs")   # store.staging_for(blobs_url)

What the server or the driver refuses (a reader's account, a database that refuses writes, a
node something else linked) is a :class:`~lineage.errors.LineageError` naming it, as every
failure of the staging is: whoever opens the stores warns and reads on (``recover_stale``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, LiteralString

from neo4j.exceptions import DriverError, Neo4jError

from lineage.errors import LineageError

if TYPE_CHECKING:
    from lineage.storage.neo4j.store import Neo4jGraphStore

__all__ = ["CREATE", "StagedBlobs", "scope_of"]

# the rows of one group: {scope, seq, digest, data}; sent alone, or as a part of the
# group's write statement (lineage.storage.neo4j.state.WRITE)
CREATE: LiteralString = (
    "UNWIND $staged AS row CREATE (s:StagedBlob) "
    "SET s.scope = row.scope, s.seq = row.seq, s.digest = row.digest, s.data = row.data"
)


def scope_of(url: str) -> str:
    """The scope of the blob store at ``url`` on this machine."""
    return f"{socket.gethostname()}:{url}"


class StagedBlobs:
    """The staged blobs of one blob store (``scope``) in a Neo4j store: the graph side of
    :class:`~lineage.storage.staging.Staging`."""

    def __init__(self, store: Neo4jGraphStore, scope: str) -> None:
        self.store = store
        self.scope = scope

    def stage_blobs(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Stage ``(digest, data)`` blobs in this thread's open transaction: sent with its
        next write statement, else at its commit (outside a transaction: at once)."""
        seq = time.time_ns()
        rows = [
            {"scope": self.scope, "seq": seq, "digest": digest, "data": data}
            for digest, data in blobs
        ]
        self.store.stage_rows(rows)

    def staged_blobs(self, *, before: float | None = None) -> list[tuple[int, str, bytes]]:
        """This scope's staged blobs committed so far (``before``: staged before that time),
        oldest first: ``(seq, digest, data)``."""
        query: LiteralString = (
            "MATCH (s:StagedBlob {scope: $scope}) WHERE s.seq <= $before "
            "RETURN s.seq AS seq, s.digest AS digest, s.data AS data ORDER BY s.seq"
        )
        upto = time.time_ns() if before is None else int(before * 1e9)
        with self._refused("read"):
            rows = self.store.run_write(query, {"scope": self.scope, "before": upto})
        return [(row["seq"], row["digest"], bytes(row["data"])) for row in rows]

    def last_staged(self) -> int:
        """The ``seq`` of this scope's newest committed staged blob; 0 when none is."""
        query: LiteralString = (
            "MATCH (s:StagedBlob {scope: $scope}) RETURN coalesce(max(s.seq), 0) AS last"
        )
        with self._refused("read"):
            rows = self.store.run_write(query, {"scope": self.scope})
        last: Any = rows[0]["last"]
        return int(last)

    def unstage_blobs(self, upto: int) -> None:
        """Forget this scope's staged blobs up to ``seq`` ``upto`` (the blob store holds
        them durably)."""
        query: LiteralString = "MATCH (s:StagedBlob {scope: $scope}) WHERE s.seq <= $upto DELETE s"
        with self._refused("forget"):
            self.store.run_write(query, {"scope": self.scope, "upto": upto})

    def close_thread(self) -> None:
        """Nothing held by a thread (the driver's sessions are a call's)."""

    @contextmanager
    def _refused(self, doing: str) -> Iterator[None]:
        """The driver's errors as lineage's (a LineageError naming the server's code)."""
        try:
            yield
        except (Neo4jError, DriverError) as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            message = " ".join(str(getattr(exc, "message", None) or exc).split())
            text = f"{self.store!r} refused to {doing} the staged blobs of {self.scope}"
            raise LineageError(f"{text}: {code}: {message}") from exc
