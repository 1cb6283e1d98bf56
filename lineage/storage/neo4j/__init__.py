"""The server GraphStore: Neo4j 5.26 through the official driver.

Graph model (ids as in :mod:`lineage.records`)::

    (:ArtifactVersion {id})-[:CONSUMED_BY]->(:Run {id})-[:PRODUCED]->(:ArtifactVersion {id})
    (:Artifact {key: "project/name", type, next_index})
    (:Alias {key: "project/name/alias", version})   (:Event {uid, seq})   (:Token {id, digest})
    (:Counter {name: "events", value})               the event sequence

A record's fields are properties of its node, as :mod:`lineage.storage.codec` encodes them
for both stores: JSON-ish fields (config, summary, code, metadata, event old/new) are JSON
strings, so a record reads back exactly as SQLite returns it. Their scalar leaves are also
kept as properties of their own (``config.lr``), each key range-indexed, for filters
(:mod:`lineage.storage.neo4j.filter`). An edge always has both nodes:
an edge imported before its endpoint creates a *stub* (a node with only ``id``); stubs have
no ``project``, every read skips them, and importing or creating the real record fills
them in.

Every call is one managed transaction (``execute_write``/``execute_read``) whose function is
idempotent (MERGE on unique keys, generated uids fixed before the first attempt), so the
driver's retries never duplicate a node or an edge. Batches go through ``UNWIND``. Besides
the protocol, ``walk_rows``, ``walk_records``, ``tree_rows`` and ``reaches`` answer a whole
traversal, records included, in one round trip (a pruning BFS on the server). Needs Neo4j
5.26 or later (``CALL () {...}``, ``OPTIONAL CALL``).

The modules: ``store`` (the store and its reads), ``cypher`` (every query text), ``bulk``
(the batched, idempotent writes that import and the single writes share), ``group`` (group
commit: ``create_run``, ``add_edges`` and ``commit_version`` of concurrent callers share one
transaction, each caller still answered on its own), ``state`` (a group of OpenLineage events:
its state read in one statement, its writes in another, within ``transaction()``). The token
lookup the server makes on every request is the one auto-commit read (one round trip, not
retried).
"""

from __future__ import annotations

from lineage.storage.neo4j.store import Neo4jGraphStore

__all__ = ["Neo4jGraphStore"]
