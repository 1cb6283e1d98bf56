"""The embedded default GraphStore: one SQLite file in WAL mode, stdlib ``sqlite3`` only.

Writers serialise on ``BEGIN IMMEDIATE`` (so version numbering is safe across processes);
readers never block. Each thread gets its own connection. Traversals are one query per
level: ``expand`` takes the whole frontier as a JSON array and uses the edge indexes in
both directions, so a level costs about the number of edges it returns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, KeysView, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

from lineage.errors import StorageFull, StoreUnavailable, TypeMismatch, VersionNotFound
from lineage.filters import And, Filter, Order, conjuncts
from lineage.records import (
    PRODUCED,
    ArtifactRecord,
    Edge,
    Event,
    RunRecord,
    TokenRecord,
    VersionRecord,
)
from lineage.storage import codec, sqltree
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
from lineage.storage.graph import Direction, NewVersion
from lineage.storage.sqlfilter import (
    BY_VALUE,
    BY_VALUE_DONE,
    DONE,
    LEAVES,
    Columns,
    by_value,
    drop_old_leaves,
    leaf_rows,
    leaves_schema,
    merge_sql,
    number_range,
    order_leaf_key,
    order_sql,
    seek_sql,
    string_range,
    where_sql,
)

__all__ = ["SQLiteGraphStore"]

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    job_type TEXT,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    summary TEXT NOT NULL,
    tags TEXT NOT NULL,
    notes TEXT,
    code TEXT,
    host TEXT,
    pid INTEGER,
    started_at REAL NOT NULL,
    finished_at REAL,
    error TEXT,
    user TEXT,
    parent TEXT,
    facets TEXT
);
CREATE INDEX IF NOT EXISTS runs_project ON runs (project, id);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at, id);
CREATE TABLE IF NOT EXISTS artifacts (
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    description TEXT,
    created_at REAL NOT NULL,
    next_index INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    idx INTEGER NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    description TEXT,
    created_by TEXT,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,
    tags TEXT,
    event_at REAL,
    UNIQUE (project, name, idx)
);
CREATE INDEX IF NOT EXISTS versions_digest_key ON versions
    (project, name, idx >> 16, substr(digest, 1, 16));
CREATE INDEX IF NOT EXISTS versions_created ON versions (created_at, id);
CREATE TABLE IF NOT EXISTS aliases (
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (project, name, alias)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_version ON aliases (project, name, idx);
CREATE TABLE IF NOT EXISTS edges (
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (src, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst, src);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    actor TEXT,
    old TEXT,
    new TEXT,
    uid TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS events_target ON events (project, target);
CREATE TABLE IF NOT EXISTS locations (
    uri TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    created_at REAL NOT NULL,
    description TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);
-- small blobs a transaction names before its blob store has them durably
-- (lineage.storage.staging): as durable as the commit, kept until the blob store is synced
CREATE TABLE IF NOT EXISTS staged_blobs (
    seq INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,
    data BLOB NOT NULL,
    at REAL NOT NULL
);
"""


def _column(field: str) -> str:
    """The column of a record field: every field is a column of its name but ``index``
    (an SQL keyword)."""
    return "idx" if field == "index" else field


def _slots(n: int) -> str:
    return ",".join("?" * n)


# Column lists follow the codec's field tuples: a record field is a column of its name.
_RUN_COLUMNS = ", ".join(RUN_FIELDS)
_RUN_INSERT = f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}) VALUES ({_slots(len(RUN_FIELDS))})"
_ALIASES_JSON = (
    "(SELECT json_group_array(alias) FROM (SELECT alias FROM aliases l "
    " WHERE l.project = v.project AND l.name = v.name AND l.idx = v.idx ORDER BY alias))"
)
# a version in VERSION_FIELDS order: its own columns, its artifact's type, its aliases
_VERSION_COLUMNS = ", ".join(
    "a.type" if f == "type" else _ALIASES_JSON if f == "aliases" else f"v.{_column(f)}"
    for f in VERSION_FIELDS
)
_VERSION_INSERT = (  # the codec's values, then the id
    f"INSERT OR IGNORE INTO versions ({', '.join(map(_column, VERSION_STORED))}, id) "
    f"VALUES ({_slots(len(VERSION_STORED) + 1)})"
)
_ARTIFACT_COLUMNS = ", ".join(ARTIFACT_FIELDS)
_EVENT_COLUMNS = ", ".join(EVENT_FIELDS)
_EVENT_INSERT = (
    f"INSERT OR IGNORE INTO events ({', '.join(f for f in EVENT_FIELDS if f != 'seq')}) "
    f"VALUES ({_slots(len(EVENT_FIELDS) - 1)})"
)
_TOKEN_COLUMNS = ", ".join(TOKEN_FIELDS)
# what an import changes in a record the store holds already, and where in its row it is
_RUN_ADVANCE = ", ".join(f"{f} = ?" for f in RUN_UPDATES_ON_IMPORT)
_RUN_ADVANCED = tuple(RUN_FIELDS.index(f) for f in RUN_UPDATES_ON_IMPORT)
_RUN_ID, _RUN_STATE = RUN_FIELDS.index("id"), RUN_FIELDS.index("state")
_RUN_LISTS = [i for i, f in enumerate(RUN_FIELDS) if f in codec.RUN_LISTS]  # kept as JSON
_VERSION_RESET = ", ".join(f"{_column(f)} = ?" for f in VERSION_UPDATES_ON_IMPORT)
_VERSION_RESET_AT = tuple(VERSION_STORED.index(f) for f in VERSION_UPDATES_ON_IMPORT)
_VERSION_FROM = "versions v JOIN artifacts a ON a.project = v.project AND a.name = v.name"
# pages of WAL between automatic checkpoints: ~40 MB, and ~160 MB during a big import (of at
# least _BULK records), see import_records
_CHECKPOINT, _BULK_CHECKPOINT, _BULK = 10_000, 40_000, 1_000
# Many ids go in as one JSON array. Joined from json_each (CROSS JOIN keeps it the outer
# loop), each id is one index seek; ``IN (SELECT ... json_each)`` would first copy the list
# into a temporary B-tree, 15-30% slower on a 100,000-id frontier.
_EACH_ID = "(SELECT value AS want FROM json_each(?)) i"  # ``want``: json_each has an ``id``
# One generation of a derivation tree: (version, output, run) per run consuming a version of
# the frontier and per version it produced (NULL: a run without outputs); what pages of a
# tree walk (the whole tree, records included: lineage.storage.sqltree)
_DERIVE_LEVEL = (
    f"SELECT c.src, p.dst, c.dst FROM {_EACH_ID} "
    "CROSS JOIN edges c ON c.src = i.want AND c.kind = 'consumed_by' "
    "LEFT JOIN edges p ON p.src = c.dst AND p.kind = 'produced'"
)
# The versions of an artifact with a digest: versions_digest_key is (project, name, epoch,
# first 16 characters of the digest), an epoch being 65,536 consecutive indexes. A digest is
# random, so an index keyed by it takes each new version at a random place: once it holds
# more pages than a batch of versions, each version of a batch dirties a page of its own (a
# 1M-run store's whole digest index rewritten every few batches). Within an epoch the new
# versions land in the newest epoch's few hundred pages, however big the store; a lookup
# seeks each epoch of the artifact (20 at 1.3M versions). The key is a 16-character prefix
# (half the size of the index, so more of it stays in the page cache); the whole digest is
# compared after. ``+v.digest``: a bare ``v.digest = ...`` lets SQLite's constant
# propagation rewrite ``substr(v.digest, ...)`` into ``substr(<the value>, ...)``, and the
# index is then sought on three columns, reading every version of the epoch.
# ? = a JSON array of [project, name, epoch, digest]; newest first.
_EPOCH = 16  # the shift in versions_digest_key's ``idx >> 16``
_BY_DIGEST = (
    f"SELECT {_VERSION_COLUMNS} FROM (SELECT json_extract(value, '$[0]') AS p, "
    "json_extract(value, '$[1]') AS n, json_extract(value, '$[2]') AS k, "
    "json_extract(value, '$[3]') AS d FROM json_each(?)) i "
    "CROSS JOIN versions v INDEXED BY versions_digest_key ON v.project = i.p "
    f"AND v.name = i.n AND v.idx >> {_EPOCH} = i.k AND substr(v.digest, 1, 16) = "
    "substr(i.d, 1, 16) AND +v.digest = i.d "
    "JOIN artifacts a ON a.project = v.project AND a.name = v.name "
    "WHERE v.state = 'committed' ORDER BY v.idx DESC"
)
_NEWEST_OF = (  # ? = [project, name, digest] each: those and the artifact's largest index
    "SELECT i.p, i.n, (SELECT idx FROM versions WHERE project = i.p AND name = i.n "
    "ORDER BY idx DESC LIMIT 1), i.d FROM (SELECT json_extract(value, '$[0]') AS p, "
    "json_extract(value, '$[1]') AS n, json_extract(value, '$[2]') AS d FROM json_each(?)) i"
)


# each project's run of the smallest id (the (project, id) index: one seek a project), and
# for those without runs the latest version of the first artifact by name
_SAMPLE_RUNS = (
    f"SELECT {_RUN_COLUMNS} FROM (SELECT value AS p FROM json_each(?)) i CROSS JOIN runs "
    "ON runs.project = i.p AND runs.id = (SELECT id FROM runs WHERE project = i.p "
    "ORDER BY project, id LIMIT 1)"
)
_SAMPLE_VERSIONS = (
    f"SELECT {_VERSION_COLUMNS} FROM (SELECT value AS p FROM json_each(?)) i "
    "CROSS JOIN aliases l ON l.project = i.p AND l.alias = 'latest' AND l.name = "
    "(SELECT name FROM artifacts WHERE project = i.p ORDER BY project, name LIMIT 1) "
    "CROSS JOIN versions v ON v.project = l.project AND v.name = l.name AND v.idx = l.idx "
    "JOIN artifacts a ON a.project = v.project AND a.name = v.name"
)


class SQLiteGraphStore:
    """GraphStore on one SQLite file. ``SQLiteGraphStore(":memory:")`` is not supported:
    every thread must see the same database."""

    # a first page walks its order's index unless one and-ed comparison of the filter holds
    # for fewer rows than this (lineage.storage.sqlfilter; tests move it to try both plans)
    broad = 2000

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path.resolve()}"
        self._timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closing: list[Callable[[], None]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db().executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
        self._migrate()

    def _migrate(self) -> None:
        """Additive changes for a store made by an older lineage: columns it lacks (an older
        store opens, and gains them)."""
        with self._write() as db:
            for table, column in _ADDED_COLUMNS:
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
            for table, column in _ADDED_REAL_COLUMNS:  # REAL: TEXT would store a time as text
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} REAL")
            db.execute("CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent)")
            # the order of the filter field `created` (lineage.made): when a version was made;
            # after event_at exists (an older store gains it above)
            db.execute(
                "CREATE INDEX IF NOT EXISTS versions_made ON versions "
                "(COALESCE(event_at, created_at), id)"
            )
            # the digest index keyed by the whole digest, before versions_digest_key (SCHEMA)
            db.execute("DROP INDEX IF EXISTS versions_digest")
            _add_leaves(db)

    # connections ---------------------------------------------------------------------------

    def _wal(self, db: sqlite3.Connection) -> None:
        """Switch to WAL (once per database file: it persists). Processes opening a new store
        at the same moment may each read the header, then all ask to write it: SQLite answers
        all but one "database is locked" at once, without waiting (its deadlock rule), so wait
        and ask again, up to the store's timeout (the make soak campaign of concurrent writers
        found this: 1 writer of ~1,300 over 20 minutes)."""
        deadline = time.monotonic() + self._timeout
        delay = 0.002
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
                )
                self._wal(db)
                db.execute("PRAGMA synchronous=NORMAL")
                # 64 MiB of page cache (allocated as used) instead of 2: bulk imports touch
                # every index page of a 100,000-run store
                db.execute("PRAGMA cache_size=-65536")
                # checkpoint (two fsyncs, and a copy of every page written since) every ~40 MB
                # of WAL, not every 4 MB: one logged run writes ~17 pages in 3 transactions
                db.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT}")
                db.execute("PRAGMA foreign_keys=OFF")
                rows = sqltree.install(db)  # the tree walk's function: once a connection
            except sqlite3.Error as exc:
                raise StoreUnavailable(
                    f"cannot open the SQLite store at {self.path}: {exc}", url=self.url
                ) from exc
            self._local.db = db
            self._local.rows = rows
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write of this thread within the block in one transaction, committed when
        the block ends (or none of them, when it raises). Nested, and in each write method
        within it, a savepoint: a write that fails is undone alone. Reads on this thread
        see the block's writes. (The OpenLineage endpoint group-commits concurrent events.)
        """
        with self._write():
            yield

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Every write of this thread within the block as one unit inside
        :meth:`transaction`: one savepoint for the block and none for each write in it, so
        a write that fails undoes the whole block (the caller's unit, an OpenLineage event
        of a group), at a third of the statements. Outside a transaction, a transaction."""
        outer = getattr(self._local, "atomic", False)
        with self._write():
            self._local.atomic = True
            try:
                yield
            finally:
                self._local.atomic = outer

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        if db.in_transaction and getattr(self._local, "atomic", False):
            yield db  # within atomic(): its savepoint undoes the block
            return
        if db.in_transaction:  # within transaction(): a savepoint
            with self._savepoint(db):
                yield db
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (a full disk)
                    db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            raise StorageFull(
                f"{self.path}: No space left on device ({exc}); nothing was written",
                path=str(self.path),
            ) from exc

    @staticmethod
    @contextmanager
    def _savepoint(db: sqlite3.Connection) -> Iterator[None]:
        db.execute("SAVEPOINT write")
        try:
            yield
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK TO write")
                db.execute("RELEASE write")
            raise
        db.execute("RELEASE write")

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, its reads within the block in one read transaction
        (or in the transaction already open)."""
        db = self._db()
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def before_close(self, call: Callable[[], None]) -> None:
        """Have ``call`` run when :meth:`close` starts, before any connection closes: a
        thread of this store's user that holds a connection of its own (the staged blobs'
        retirer) ends first. Closing a connection another thread is using crashes the
        process (sqlite3's C library), where Neo4j's driver raises."""
        self._closing.append(call)

    def close(self) -> None:
        closing, self._closing = self._closing, []
        for call in closing:
            call()
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def close_thread(self) -> None:
        """Close the calling thread's connection, before the thread ends (a connection is
        one a thread, kept until :meth:`close` otherwise): a thread started now and then,
        such as the staged blobs' retirer, leaves none open behind it."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            return
        self._local.db = None
        with self._lock:
            if db in self._connections:
                self._connections.remove(db)
        db.close()

    # runs ----------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> None:
        with self._write() as db:
            db.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_slots(len(RUN_FIELDS))})",
                _run_row(run),
            )
            _catch_up(db)

    def insert_run(self, run: RunRecord) -> bool:
        """Store ``run`` unless a run of its id is stored; whether it was. One statement:
        what ``import_records(runs=[run])`` does for a new run, without its dozen others
        (the OpenLineage ingest stores a run an event)."""
        with self._write() as db:
            inserted: bool = db.execute(_RUN_INSERT, _run_row(run)).rowcount == 1
            if inserted:
                _catch_up(db)  # its filter leaves, as every inserting writer
        return inserted

    def update_run(self, run_id: str, changes: Mapping[str, Any]) -> RunRecord | None:
        encoded = {key: _sql(value) for key, value in codec.encode_run_changes(changes).items()}
        with self._write() as db:
            if encoded:
                sets = ", ".join(f"{key} = ?" for key in encoded)
                db.execute(f"UPDATE runs SET {sets} WHERE id = ?", [*encoded.values(), run_id])
            row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return codec.decode_runs([row])[0] if row else None

    def get_runs(self, ids: Collection[str]) -> dict[str, RunRecord]:
        rows = self._db().execute(
            f"SELECT {_RUN_COLUMNS} FROM {_EACH_ID} CROSS JOIN runs ON runs.id = i.want",
            (_id_list(ids),),
        )
        return {run.id: run for run in codec.decode_runs(rows)}

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
        where, params = _filters(
            ("project = ?", project),
            ("job_type = ?", job_type),
            ("state = ?", state),
        )
        beyond, order = (
            ("<", "started_at DESC, id DESC") if newest_first else (">", "started_at, id")
        )
        if after is not None:  # keyset: the (started_at, id) of the last run seen
            where += (" AND " if where else "WHERE ") + f"(started_at, id) {beyond} (?, ?)"
            params += [float(after[0]), after[1]]
        params.append(-1 if limit is None else limit)
        rows = self._db().execute(
            f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY {order} LIMIT ?", params
        )
        return codec.decode_runs(rows)

    def count_runs(
        self, project: str, *, job_type: str | None = None, state: str | None = None
    ) -> int:
        where, params = _filters(
            ("project = ?", project), ("job_type = ?", job_type), ("state = ?", state)
        )
        count: int = self._db().execute(f"SELECT count(*) FROM runs {where}", params).fetchone()[0]
        return count

    def count_project_runs(
        self, projects: Collection[str], *, job_type: str | None = None, state: str | None = None
    ) -> dict[str, int]:
        where, params = _filters(("runs.job_type = ?", job_type), ("runs.state = ?", state))
        query = (  # CROSS JOIN: each project one seek into runs_project
            "SELECT i.p, count(*) FROM (SELECT value AS p FROM json_each(?)) i CROSS JOIN runs "
            f"ON runs.project = i.p {where} GROUP BY i.p"
        )
        counts = dict.fromkeys(projects, 0)
        counts.update(self._db().execute(query, [json.dumps(sorted(counts)), *params]))
        return counts

    def child_runs(self, run_id: str) -> list[RunRecord]:
        """The runs whose parent is ``run_id``, oldest first."""
        rows = self._db().execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE parent = ? ORDER BY started_at, id", (run_id,)
        )
        return codec.decode_runs(rows)

    # artifacts and versions ----------------------------------------------------------------

    def list_projects(self) -> list[str]:
        rows = self._db().execute(
            "SELECT project FROM runs UNION SELECT project FROM artifacts ORDER BY 1"
        )
        return [row[0] for row in rows]

    def project_samples(self, projects: Collection[str]) -> dict[str, RunRecord | VersionRecord]:
        db = self._db()
        wanted = json.dumps(sorted(set(projects)))
        found: dict[str, RunRecord | VersionRecord] = {}
        runs = db.execute(_SAMPLE_RUNS, (wanted,))
        found.update((run.project, run) for run in codec.decode_runs(runs))
        rest = sorted(set(projects) - set(found))
        for row in db.execute(_SAMPLE_VERSIONS, (json.dumps(rest),)) if rest else ():
            version = _version(row)
            found[version.project] = version
        return found

    def get_artifact(self, project: str, name: str) -> ArtifactRecord | None:
        row = (
            self._db()
            .execute(
                f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE project = ? AND name = ?",
                (project, name),
            )
            .fetchone()
        )
        return codec.decode_artifact(row) if row else None

    def list_artifacts(
        self,
        project: str | None = None,
        *,
        type: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[ArtifactRecord]:
        where, params = _filters(
            ("project = ?", project), ("type = ?", type), ("project || '/' || name > ?", after)
        )
        params.append(-1 if limit is None else limit)
        rows = self._db().execute(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts {where} ORDER BY project, name LIMIT ?",
            params,
        )
        return [codec.decode_artifact(row) for row in rows]

    def commit_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        with self._write() as db:
            # the time is read under the write lock and never before the previous version's:
            # createdAt follows the index even when writers race (new.at was read before)
            at = max(new.at, time.time())
            row = db.execute(
                "SELECT type, next_index FROM artifacts WHERE project = ? AND name = ?",
                (new.project, new.name),
            ).fetchone()
            if row is None:  # created when its first version was made (lineage.made)
                db.execute(
                    "INSERT INTO artifacts (project, name, type, description, created_at, "
                    "next_index) VALUES (?,?,?,?,?,0)",
                    (new.project, new.name, new.type, new.description, at),
                )
                index = 0
            else:
                if row[0] != new.type:
                    raise TypeMismatch(
                        f"artifact {new.project}/{new.name} has type {row[0]!r}, not {new.type!r}",
                        artifact=f"{new.project}/{new.name}",
                    )
                previous = db.execute(
                    "SELECT idx, created_at FROM versions WHERE project = ? AND name = ? "
                    "ORDER BY idx DESC LIMIT 1",
                    (new.project, new.name),
                ).fetchone()
                if previous is not None:
                    wanted = _by_digest([(new.project, new.name, previous[0], new.digest)])
                    existing = db.execute(_BY_DIGEST, (wanted,)).fetchall()
                    if existing:  # newest first: the lowest index is the last row
                        return _version(existing[-1]), False
                    at = max(at, previous[1])
                index = row[1]
            created = VersionRecord(
                project=new.project, name=new.name, type=new.type, index=index,
                digest=new.digest, size=new.size, file_count=new.file_count,
                metadata=new.metadata, description=new.description,
                created_by=new.run_id, created_at=at, event_at=new.event_at,
            )  # fmt: skip
            vid = created.id
            db.execute(_VERSION_INSERT, [*_version_row(created), vid])
            db.execute(  # a late event's version may have been made before the first one
                "UPDATE artifacts SET next_index = ?, created_at = "
                "CASE WHEN ? = 0 THEN ? ELSE MIN(created_at, ?) END "
                "WHERE project = ? AND name = ?",
                (index + 1, index, created.made_at, created.made_at, new.project, new.name),
            )
            db.execute(
                "INSERT OR IGNORE INTO edges (src, dst, kind) VALUES (?,?,?)",
                (new.run_id, vid, PRODUCED),
            )
            db.execute(
                "INSERT OR REPLACE INTO aliases (project, name, alias, idx) VALUES (?,?,?,?)",
                (new.project, new.name, "latest", index),
            )
            _catch_up(db)
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} WHERE v.id = ?", (vid,)
            ).fetchone()
        return _version(row), True

    def get_versions(self, ids: Collection[str]) -> dict[str, VersionRecord]:
        rows = (
            self._db()
            .execute(
                f"SELECT {_VERSION_COLUMNS}, v.id FROM {_EACH_ID} CROSS JOIN versions v "
                "ON v.id = i.want JOIN artifacts a ON a.project = v.project AND a.name = v.name",
                (_id_list(ids),),
            )
            .fetchall()
        )
        at = len(VERSION_FIELDS)  # v.id: the column after the version's
        return {
            row[at]: version for row, version in zip(rows, codec.decode_versions(rows), strict=True)
        }

    def find_alias(self, project: str, name: str, alias: str) -> VersionRecord | None:
        row = (
            self._db()
            .execute(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} JOIN aliases l "
                "ON l.project = v.project AND l.name = v.name AND l.idx = v.idx "
                "WHERE l.project = ? AND l.name = ? AND l.alias = ?",
                (project, name, alias),
            )
            .fetchone()
        )
        return _version(row) if row else None

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
        state = "" if include_deleted else "AND v.state = 'committed'"
        if newest_first:
            bound, order = "v.idx < ?", "v.idx DESC"
            start = (1 << 62) if after is None else after
        else:
            bound, order = "v.idx > ?", "v.idx"
            start = -1 if after is None else after
        rows = self._db().execute(
            f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} "
            f"WHERE v.project = ? AND v.name = ? AND {bound} {state} ORDER BY {order} LIMIT ?",
            (project, name, start, -1 if limit is None else limit),
        )
        return codec.decode_versions(rows)

    # staged blobs (lineage.storage.staging) -----------------------------------------------

    def stage_blobs(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Keep ``(digest, data)`` blobs in this store, in the current transaction (or one of
        their own): they are as durable as the commit that stores them."""
        at = time.time()
        with self._write() as db:
            db.executemany(
                "INSERT INTO staged_blobs (digest, data, at) VALUES (?, ?, ?)",
                [(digest, data, at) for digest, data in blobs],
            )

    def staged_blobs(self, *, before: float | None = None) -> list[tuple[int, str, bytes]]:
        """The staged blobs committed so far (``before``: those staged before that time), in
        the order they were staged: ``(seq, digest, data)``."""
        when, args = ("", ()) if before is None else (" WHERE at < ?", (before,))
        rows = self._db().execute(
            f"SELECT seq, digest, data FROM staged_blobs{when} ORDER BY seq", args
        )
        return [(seq, digest, bytes(data)) for seq, digest, data in rows]

    def last_staged(self) -> int:
        """The sequence number of the last staged blob committed so far; 0 when none is."""
        last: int | None = self._db().execute("SELECT max(seq) FROM staged_blobs").fetchone()[0]
        return last or 0

    def unstage_blobs(self, upto: int) -> None:
        """Forget the staged blobs up to sequence number ``upto`` (the blob store holds them
        durably now)."""
        with self._write() as db:
            db.execute("DELETE FROM staged_blobs WHERE seq <= ?", (upto,))

    def count_versions(self, project: str, name: str, *, include_deleted: bool = False) -> int:
        state = "" if include_deleted else "AND state = 'committed'"
        count: int = (
            self._db()
            .execute(
                f"SELECT count(*) FROM versions WHERE project = ? AND name = ? {state}",
                (project, name),
            )
            .fetchone()[0]
        )
        return count

    def list_aliases(self, project: str, name: str) -> list[tuple[str, VersionRecord]]:
        rows = (
            self._db()
            .execute(
                f"SELECT {_VERSION_COLUMNS}, h.alias FROM aliases h JOIN versions v "
                "ON v.project = h.project AND v.name = h.name AND v.idx = h.idx "
                "JOIN artifacts a ON a.project = v.project AND a.name = v.name "
                "WHERE h.project = ? AND h.name = ? ORDER BY h.alias",
                (project, name),
            )
            .fetchall()
        )
        alias = len(VERSION_FIELDS)  # the column after the version's
        versions = codec.decode_versions(rows)
        return [(row[alias], version) for row, version in zip(rows, versions, strict=True)]

    def artifact_summaries(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, list[tuple[str, VersionRecord]]]]:
        wanted = list(dict.fromkeys(keys))
        given = json.dumps([list(key) for key in wanted])
        keyed = (
            "(SELECT json_extract(value, '$[0]') AS p, json_extract(value, '$[1]') AS n "
            "FROM json_each(?)) k"
        )
        with self._snapshot() as db:  # the counts and the aliases of one moment
            counts = db.execute(
                f"SELECT k.p, k.n, (SELECT count(*) FROM versions WHERE project = k.p "
                f"AND name = k.n AND state = 'committed') FROM {keyed}",
                (given,),
            ).fetchall()
            rows = db.execute(
                f"SELECT {_VERSION_COLUMNS}, h.alias FROM {keyed} JOIN aliases h "
                "ON h.project = k.p AND h.name = k.n JOIN versions v "
                "ON v.project = h.project AND v.name = h.name AND v.idx = h.idx "
                "JOIN artifacts a ON a.project = v.project AND a.name = v.name "
                "ORDER BY h.alias",
                (given,),
            ).fetchall()
        found: dict[tuple[str, str], tuple[int, list[tuple[str, VersionRecord]]]] = {
            (p, n): (count, []) for p, n, count in counts
        }
        alias = len(VERSION_FIELDS)  # the column after the version's
        for row, version in zip(rows, codec.decode_versions(rows), strict=True):
            found[version.project, version.name][1].append((row[alias], version))
        return found

    def set_alias(
        self, project: str, name: str, alias: str, index: int | None, event: Event | None
    ) -> None:
        with self._write() as db:
            if index is None:
                db.execute(
                    "DELETE FROM aliases WHERE project = ? AND name = ? AND alias = ?",
                    (project, name, alias),
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO aliases (project, name, alias, idx) VALUES (?,?,?,?)",
                    (project, name, alias, index),
                )
            if event is not None:
                _insert_events(db, [event])

    def update_version(
        self, version_id: str, changes: Mapping[str, Any], events: Sequence[Event]
    ) -> VersionRecord:
        encoded = {k: _sql(v) for k, v in codec.encode_version_changes(changes).items()}
        with self._write() as db:
            for key, value in encoded.items():
                db.execute(f"UPDATE versions SET {key} = ? WHERE id = ?", (value, version_id))
            _insert_events(db, events)
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} WHERE v.id = ?", (version_id,)
            ).fetchone()
        if row is None:
            raise VersionNotFound(f"version {version_id} does not exist", ref=version_id)
        return _version(row)

    def delete_version(self, version_id: str, event: Event) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT project, name, idx FROM versions WHERE id = ?", (version_id,)
            ).fetchone()
            if row is None:
                return
            project, name, index = row
            db.execute("UPDATE versions SET state = 'deleted' WHERE id = ?", (version_id,))
            db.execute(
                "DELETE FROM aliases WHERE project = ? AND name = ? AND idx = ?",
                (project, name, index),
            )
            newest = db.execute(
                "SELECT max(idx) FROM versions WHERE project = ? AND name = ? "
                "AND state = 'committed'",
                (project, name),
            ).fetchone()[0]
            if newest is not None:
                db.execute(
                    "INSERT OR REPLACE INTO aliases (project, name, alias, idx) "
                    "VALUES (?, ?, 'latest', ?)",
                    (project, name, newest),
                )
            _insert_events(db, [event])

    def manifest_digests(self) -> set[str]:
        rows = self._db().execute("SELECT DISTINCT digest FROM versions WHERE state = 'committed'")
        return {row[0] for row in rows}

    # edges ---------------------------------------------------------------------------------

    def add_edges(self, edges: Iterable[Edge]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO edges (src, dst, kind) VALUES (?,?,?)",
                [(edge.source, edge.target, edge.kind) for edge in edges],
            )

    def expand(self, ids: Collection[str], direction: Direction) -> list[Edge]:
        return [Edge(source=s, target=t, kind=k) for s, t, k in self.expand_rows(ids, direction)]

    def expand_rows(self, ids: Collection[str], direction: Direction) -> list[tuple[str, str, str]]:
        """``expand`` as ``(source, target, kind)`` tuples, what traversals use."""
        if not ids:
            return []
        near = "src" if direction == "down" else "dst"
        rows: list[tuple[str, str, str]] = (
            self._db()
            .execute(
                f"SELECT src, dst, kind FROM {_EACH_ID} CROSS JOIN edges ON {near} = i.want",
                (_id_list(ids),),
            )
            .fetchall()
        )
        return rows

    def derive_rows(self, ids: Collection[str]) -> list[tuple[str, str | None, str]]:
        """One generation of a derivation tree: ``(version, output, run)`` per run consuming
        one of ``ids`` and per version it produced (``None``: a run without outputs)."""
        if not ids:
            return []
        rows: list[tuple[str, str | None, str]] = (
            self._db().execute(_DERIVE_LEVEL, (_id_list(ids),)).fetchall()
        )
        return rows

    def tree_rows(
        self, root: str, generations: int | None
    ) -> tuple[dict[str, VersionRecord], list[tuple[str, str, str]], bool]:
        """The derivation tree under a version, one query per generation, in one snapshot
        (:mod:`lineage.storage.sqltree`): the walk, the records and the derived edges of
        ``lineage.traversal``'s generic path in one pass."""
        db = self._db()
        return sqltree.tree_rows(db, root, generations, self.get_versions, self._local.rows)

    # events --------------------------------------------------------------------------------

    def append_events(self, events: Iterable[Event]) -> None:
        with self._write() as db:
            _insert_events(db, events)

    def events(
        self, project: str, *, target_prefix: str | None = None, after: int | None = None
    ) -> list[Event]:
        clauses: list[str] = ["project = ?"]
        params: list[Any] = [project]
        if target_prefix is not None:
            clauses.append("substr(target, 1, ?) = ?")
            params += [len(target_prefix), target_prefix]
        if after is not None:
            clauses.append("seq > ?")
            params.append(after)
        where = "WHERE " + " AND ".join(clauses)
        rows = self._db().execute(
            f"SELECT {_EVENT_COLUMNS} FROM events {where} ORDER BY seq", params
        )
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
        db = self._db()
        # A big import checkpoints four times less often: each checkpoint costs two fsyncs
        # (most of its wall time), and a page that several batches rewrite is copied once.
        # Durability is the same (a commit is in the WAL either way); the WAL grows to
        # ~160 MB instead of ~40 MB between checkpoints.
        bulk = len(runs) + len(versions) + len(edges) >= _BULK and not db.in_transaction
        if bulk:
            db.execute(f"PRAGMA wal_autocheckpoint={_BULK_CHECKPOINT}")
        try:
            return self._import(runs, artifacts, versions, edges, events)
        finally:
            if bulk:
                db.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT}")

    def _import(
        self,
        runs: Sequence[RunRecord],
        artifacts: Sequence[ArtifactRecord],
        versions: Sequence[VersionRecord],
        edges: Sequence[Edge],
        events: Sequence[Event],
    ) -> dict[str, int]:
        counts = {}
        version_ids = [v.id for v in versions]
        with self._write() as db:
            # Rows that exist already (or come twice) are updated after the insert; the rest
            # are only inserted, so a first import of 100,000 runs writes each row once.
            again = _present(db, "runs", [r.id for r in runs])
            marks = db.execute(_BEHIND).fetchone()
            # counts by each statement's rowcount: total_changes would count what the leaf
            # triggers write too
            rows = [_run_row(run) for run in runs]
            changed = _insert_many(db, _RUN_INSERT, rows)
            if not again:
                _leaves_from(db, "runs", runs, marks, changed)
            # a run that finished since an earlier import: take the newer state
            changed += db.executemany(
                f"UPDATE runs SET {_RUN_ADVANCE} "
                "WHERE id = ? AND state = 'running' AND ? != 'running'",
                [
                    (*(row[i] for i in _RUN_ADVANCED), row[_RUN_ID], row[_RUN_STATE])
                    for row in rows
                    if row[_RUN_ID] in again
                ],
            ).rowcount
            counts["runs"] = changed
            changed = db.executemany(
                f"INSERT OR IGNORE INTO artifacts ({_ARTIFACT_COLUMNS}, next_index) "
                f"VALUES ({_slots(len(ARTIFACT_FIELDS))}, 0)",
                [codec.encode_artifact(a) for a in artifacts],
            ).rowcount
            # an artifact known only from its versions, created when the earliest was made
            # (one row an artifact, not 130,000 ignored inserts for three artifacts)
            first: dict[tuple[str, str], tuple[str, float]] = {}
            for v in versions:
                kind, at = first.setdefault((v.project, v.name), (v.type, v.made_at))
                if v.made_at < at:
                    first[v.project, v.name] = (kind, v.made_at)
            changed += db.executemany(
                "INSERT OR IGNORE INTO artifacts (project, name, type, description, "
                "created_at, next_index) VALUES (?,?,?,NULL,?,0)",
                [(*key, kind, at) for key, (kind, at) in first.items()],
            ).rowcount
            counts["artifacts"] = changed
            again = _present(db, "versions", version_ids)
            version_rows = [_version_row(v) for v in versions]
            for row, vid in zip(version_rows, version_ids, strict=True):
                row.append(vid)
            # one row a statement: many a statement is slower here (measured: +20-60% CPU;
            # the expression indexes?), unlike for runs, edges and leaves
            counts["versions"] = db.executemany(_VERSION_INSERT, version_rows).rowcount
            if not again:
                _leaves_from(db, "versions", versions, marks, counts["versions"])
            db.executemany(
                f"UPDATE versions SET {_VERSION_RESET} WHERE id = ?",
                [
                    (*(row[i] for i in _VERSION_RESET_AT), row[-1])
                    for row in version_rows
                    if row[-1] in again
                ],
            )
            top: dict[tuple[str, str], int] = {}
            for v in versions:
                key = (v.project, v.name)
                top[key] = max(top.get(key, -1), v.index)
            db.executemany(
                "UPDATE artifacts SET next_index = max(next_index, ?) "
                "WHERE project = ? AND name = ?",
                [(index + 1, project, name) for (project, name), index in top.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO aliases (project, name, alias, idx) VALUES (?,?,?,?)",
                [(v.project, v.name, alias, v.index) for v in versions for alias in v.aliases],
            )
            counts["edges"] = _insert_many(
                db,
                "INSERT OR IGNORE INTO edges (src, dst, kind) VALUES (?,?,?)",
                [(e.source, e.target, e.kind) for e in edges],
            )
            counts["events"] = _insert_events(db, events)
            _catch_up(db)  # the leaves _leaves_from left, set-based; the merge by value
        return counts

    # tokens --------------------------------------------------------------------------------

    # storage locations -----------------------------------------------------------------

    def add_locations(self, locations: Iterable[tuple[str, str, str]]) -> None:
        rows = list(locations)
        if rows:
            with self._write() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO locations (uri, project, name) VALUES (?, ?, ?)", rows
                )

    def find_locations(self, uris: Collection[str]) -> dict[str, tuple[str, str]]:
        rows = self._db().execute(
            f"SELECT uri, project, name FROM {_EACH_ID} CROSS JOIN locations ON uri = i.want",
            (_id_list(uris),),
        )
        return {uri: (project, name) for uri, project, name in rows}

    # set-based reads and writes of a group of events (lineage.openlineage.plan) -------------

    def artifact_states(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int, int | None, float | None]]:
        """``(type, next_index, newest index, its created_at)`` of each stored artifact of
        ``keys`` (project, name), in one statement (the newest by index, deleted or not)."""
        rows = self._db().execute(
            "SELECT a.project, a.name, a.type, a.next_index, t.idx, t.created_at FROM "
            "(SELECT json_extract(value, '$[0]') AS p, json_extract(value, '$[1]') AS n "
            "FROM json_each(?)) i CROSS JOIN artifacts a ON a.project = i.p AND a.name = i.n "
            "LEFT JOIN versions t ON t.rowid = (SELECT rowid FROM versions "
            "WHERE project = a.project AND name = a.name ORDER BY idx DESC LIMIT 1)",
            (json.dumps([list(key) for key in dict.fromkeys(keys)]),),
        )
        return {(p, n): (t, i, top, at) for p, n, t, i, top, at in rows}

    def versions_with_digests(
        self, wanted: Collection[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], VersionRecord]:
        """The committed version of each ``(project, name, digest)`` that has one (of several,
        the lowest index: what ``commit_version`` finds), in one statement."""
        keys = json.dumps([list(key) for key in dict.fromkeys(wanted)])
        with self._snapshot() as db:  # one for both reads: the epochs, then the versions
            epochs = _by_digest(db.execute(_NEWEST_OF, (keys,)))
            rows = db.execute(_BY_DIGEST, (epochs,)).fetchall()
        # newest first: the lowest index of a (project, name, digest) is written last
        return {(v.project, v.name, v.digest): v for v in codec.decode_versions(rows)}

    def update_runs(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """``update_run`` of many runs (id: its changes), one statement a set of fields."""
        by_fields: dict[tuple[str, ...], list[list[Any]]] = {}
        for run_id, change in changes.items():
            encoded = codec.encode_run_changes(change)
            if encoded:
                row = [_sql(value) for value in encoded.values()]
                by_fields.setdefault(tuple(encoded), []).append([*row, run_id])
        if by_fields:
            with self._write() as db:
                for fields, rows in by_fields.items():
                    sets = ", ".join(f"{key} = ?" for key in fields)
                    db.executemany(f"UPDATE runs SET {sets} WHERE id = ?", rows)

    def create_token(self, token: TokenRecord) -> None:
        with self._write() as db:
            db.execute(
                f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES ({_slots(len(TOKEN_FIELDS))})",
                codec.encode_token(token),
            )

    def find_token(self, digest: str) -> TokenRecord | None:
        row = (
            self._db()
            .execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE digest = ?", (digest,))
            .fetchone()
        )
        return None if row is None else codec.decode_token(row)

    def revoke_token(self, token_id: str) -> bool:
        with self._write() as db:
            return (
                db.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,)).rowcount > 0
            )

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
        ``after`` (``(rank, value, id)``, :func:`lineage.filters.order_key` and the id)."""
        with self._leaves_ready():
            rows = self._find(
                f"SELECT {_RUN_QUALIFIED}", "runs", "runs.id", _RUN_FILTER_COLUMNS,
                project, where, order, limit, after,
            )  # fmt: skip
        return codec.decode_runs(rows)

    def find_versions(
        self,
        project: str | None,
        where: Filter | None,
        order: Order,
        *,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[VersionRecord]:
        """Versions (deleted ones too: ``state = committed`` says otherwise) passing
        ``where``, as :meth:`find_runs`."""
        with self._leaves_ready():
            rows = self._find(
                f"SELECT {_VERSION_COLUMNS}", _VERSION_FROM, "v.id", _VERSION_FILTER_COLUMNS,
                project, where, order, limit, after,
            )  # fmt: skip
        return codec.decode_versions(rows)

    def count_found_runs(self, project: str | None, where: Filter | None) -> int:
        """How many runs :meth:`find_runs` would return without a limit (no record read)."""
        return self._count_found("runs", _RUN_FILTER_COLUMNS, project, where)

    def count_found_versions(self, project: str | None, where: Filter | None) -> int:
        """How many versions :meth:`find_versions` would return without a limit."""
        return self._count_found(_VERSION_FROM, _VERSION_FILTER_COLUMNS, project, where)

    @contextmanager
    def _leaves_ready(self) -> Iterator[None]:
        """A snapshot for a filter's reads in which every row has its leaves in the side
        tables and their copies by value. Lineage's writers give new rows their leaves in
        their transaction, but merge them into the copies by value only every ``_MERGE``
        rows (one ordered pass instead of a random page a leaf); the rows since, and rows
        another program inserted without leaves (an older lineage), are caught up here, and
        the filter reads within that write transaction. Otherwise (nearly always) one read
        tells, and the filter reads in the same read transaction."""
        db = self._db()
        if not db.in_transaction:
            db.execute("BEGIN")
            try:
                if not _behind(db.execute(_BEHIND).fetchone(), merged=True):
                    yield
                    return
            finally:
                db.execute("COMMIT")
        with self._write() as db:
            _catch_up(db, merge=True)
            yield

    def _count_found(
        self, table: str, columns: Columns, project: str | None, where: Filter | None
    ) -> int:
        with self._leaves_ready():
            source, clauses, params = self._found_rows(table, columns, project, where, None)
            text = f"SELECT count(*) FROM {source} {_where(clauses)}"
            count: int = self._db().execute(text, params).fetchone()[0]
        return count

    def _found_rows(
        self,
        table: str,
        columns: Columns,
        project: str | None,
        where: Filter | None,
        broad: int | None,
    ) -> tuple[str, list[str], list[Any]]:
        """``(source, clauses, params)``: the rows passing ``where``. When one of the
        filter's ``and``-ed comparisons on a key or a tag holds for fewer rows than
        ``broad`` (None: any number), the source is those rows' ids, read from the side
        table's index (the fewest of them), joined to the table: a filter reads only the
        rows that may pass. Otherwise the source is the table, each row tested."""
        clauses: list[str] = []
        params: list[Any] = []
        source = table
        tested = columns
        if where is not None:
            driver = self._driver(where, columns, broad)
            if driver is not None:
                seek, seek_params, rest = driver
                source = f"(SELECT DISTINCT rid AS want FROM ({seek})) d CROSS JOIN {table}"
                params += seek_params
                # the other comparisons' probes of the side table name d.want, so that they
                # run before the row itself is read; the driver's own is not tested again
                where, tested = rest, {**columns, "rowid": "d.want"}
                clauses.append(f"{columns['rowid']} = d.want")
        if project is not None:
            clauses.append(f"{columns['project']} = ?")
            params.append(project)
        if where is not None:
            sql, where_params = where_sql(where, tested)
            clauses.append(sql)
            params += where_params
        return source, clauses, params

    def _driver(
        self, where: Filter, columns: Columns, broad: int | None
    ) -> tuple[str, list[Any], Filter | None] | None:
        """The index range (of one ``and``-ed comparison) holding the fewest rows, if it
        holds fewer than ``broad``, and the rest of the filter; each range is counted up to
        the fewest found so far."""
        best: tuple[int, str, list[Any], int] | None = None
        db = self._db()
        parts = conjuncts(where)
        for at, part in enumerate(parts):
            seek = seek_sql(part, columns)
            if seek is None:
                continue
            cap = min(_DRIVE if broad is None else broad, _DRIVE if best is None else best[0])
            counted: int = db.execute(
                f"SELECT count(*) FROM ({seek[0]} LIMIT ?)", [*seek[1], cap]
            ).fetchone()[0]
            if best is None or counted < best[0]:
                best = (counted, *seek, at)
        if best is None or (broad is not None and best[0] >= broad):
            return None
        rest = [part for at, part in enumerate(parts) if at != best[3]]
        return (
            best[1],
            best[2],
            (None if not rest else rest[0] if len(rest) == 1 else And(parts=tuple(rest))),
        )

    def _find(
        self,
        select: str,
        table: str,
        id_column: str,
        columns: Columns,
        project: str | None,
        where: Filter | None,
        order: Order,
        limit: int | None,
        after: Sequence[Any] | None,
    ) -> list[Any]:
        # A first page of a broad filter walks the order's index and tests each row until
        # the page is full; anything else starts from the filter's narrowest index range.
        walk = limit is not None and (
            order.field.document is not None or order.field.attribute in _WALKABLE
        )
        broad = self.broad if walk else None
        source, clauses, params = self._found_rows(table, columns, project, where, broad)
        if walk and source == table and order.field.document is not None:
            assert limit is not None
            return self._walk_leaves(select, table, columns, clauses, params, order, limit, after)
        rank, value, order_params = order_sql(order, columns)
        way = "DESC" if order.descending else ""
        beyond = "<" if way else ">"
        if rank.isdigit():  # one rank (lineage.storage.sqlfilter.order_sql): the column alone
            if after is not None:
                if after[0] != int(rank):  # a key of another rank: all rows or none beyond it
                    clauses.append("1" if (after[0] < int(rank)) != bool(way) else "0")
                else:
                    clauses.append(f"({value}, {id_column}) {beyond} (?, ?)")
                    params += [after[1], after[2]]
            ordering = f"{value} {way}, {id_column} {way}"
        else:
            if after is not None:
                clauses.append(f"({rank}, {value}, {id_column}) {beyond} (?, ?, ?)")
                params += [*order_params, *after]
            ordering = f"{rank} {way}, {value} {way}, {id_column} {way}"
            params += order_params
        text = f"{select} FROM {source} {_where(clauses)} ORDER BY {ordering} LIMIT ?"
        params.append(-1 if limit is None else limit)
        return self._db().execute(text, params).fetchall()

    def _walk_leaves(
        self,
        select: str,
        table: str,
        columns: Columns,
        clauses: list[str],
        params: list[Any],
        order: Order,
        limit: int,
        after: Sequence[Any] | None,
    ) -> list[Any]:
        """A page in the order of a key: its numbers from the side table's ``(key, value,
        rid)`` index, then its strings, in that index's order (ties by id, sorted a value at
        a time), each row tested as it comes; then (only if the page is not full yet) the
        rows with neither, by id. Both directions take the parts in that order (the rest is
        last)."""
        way = "DESC" if order.descending else ""
        beyond = "<" if way else ">"
        key = order_leaf_key(order)
        ident = columns["id"]
        db = self._db()
        found: list[Any] = []
        seen: set[str] = set()
        position = None if after is None else (2 - after[0] if way else after[0])
        for part, kind in enumerate((number_range("o.value"), string_range("o.value"), None)):
            if position is not None and part < position:
                continue  # the cursor is past this part
            more = list(clauses)
            extra: list[Any] = []
            if kind is None:
                more.append(
                    f"NOT EXISTS (SELECT 1 FROM {columns['leaves']} o "
                    f"WHERE o.rid = {columns['rowid']} AND o.key = ? AND o.value < x'')"
                )
                extra.append(key)
                if position == part:
                    assert after is not None
                    more.append(f"{ident} {beyond} ?")
                    extra.append(after[2])
                text = (
                    f"{select}, {ident} FROM {table} {_where(more)} ORDER BY {ident} {way} LIMIT ?"
                )
                rows = db.execute(text, [*params, *extra, limit - len(found)]).fetchall()
            else:
                if position == part:
                    assert after is not None
                    # the value bound alone seeks the index; the pair decides the ties
                    more.append(f"o.value {beyond}= ?")
                    more.append(f"(o.value, {ident}) {beyond} (?, ?)")
                    extra += [after[1], after[1], after[2]]
                joined = f"{columns['rowid']} = o.rid"
                text = (
                    f"{select}, {ident} FROM {by_value(columns)} o CROSS JOIN {table} "
                    f"{_where(['o.key = ?', kind, joined, *more])} "
                    f"ORDER BY o.value {way}, {ident} {way} LIMIT ?"
                )
                rows = db.execute(text, [key, *params, *extra, limit - len(found)]).fetchall()
            for row in rows:
                if row[-1] not in seen:
                    seen.add(row[-1])
                    found.append(row[:-1])
            if len(found) >= limit:
                break
        return found[:limit]


_RUN_FILTER_COLUMNS: Columns = {
    **{f: f"runs.{f}" for f in RUN_FIELDS},
    "user": "runs.user",
    "leaves": LEAVES["runs"][0],
    "rowid": "runs.rowid",
}
_VERSION_FILTER_COLUMNS: Columns = {
    **{f: f"v.{_column(f)}" for f in VERSION_STORED},
    "type": "a.type",
    "id": "v.id",
    "tags": "v.tags",
    "leaves": LEAVES["versions"][0],
    "rowid": "v.rowid",
    "made_at": "COALESCE(v.event_at, v.created_at)",  # VersionRecord.made_at: filter "created"
}


def _add_leaves(db: sqlite3.Connection) -> None:
    """The side tables of filterable leaves (lineage.storage.sqlfilter) and their triggers;
    a store made before them gets them filled from its rows, in the same transaction, and
    loses the first side tables (keyed by text ids), if it has them."""
    triggers = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    for target in LEAVES:
        for statement in drop_old_leaves(target):
            db.execute(statement)
        for statement in leaves_schema(target)[0]:
            name = statement.split()[5] if statement.startswith("CREATE TRIGGER") else None
            if name in triggers and BY_VALUE[target] not in triggers[name]:
                db.execute(f"DROP TRIGGER {name}")  # from before the copies by value
            db.execute(statement)
    _catch_up(db)


# (largest rowid with leaves, largest rowid, largest rowid merged by value) of runs, then
# of versions
_BEHIND = "SELECT " + ", ".join(
    f"(SELECT CAST(value AS INTEGER) FROM meta WHERE key = '{DONE[target]}'), "
    f"(SELECT max(rowid) FROM {table}), "
    f"(SELECT CAST(value AS INTEGER) FROM meta WHERE key = '{BY_VALUE_DONE[target]}')"
    for target, (_, table, *_) in LEAVES.items()
)
_CATCH_UP = {target: leaves_schema(target)[1] for target in LEAVES}
_MERGE_SQL = {target: merge_sql(target) for target in LEAVES}
# Rows whose leaves wait for the next merge into the copies by value. Their values are
# random (a loss, an accuracy): merged a batch at a time, each batch rewrote a page of the
# copy a leaf, all over a tree that outgrows the page cache and ends up in every checkpoint
# (a 1M-run import slowed batch after batch); merged 50,000 rows at a time, in key order,
# each page is written once a merge.
_MERGE = 50_000


def _behind(row: Sequence[Any], *, merged: bool = False) -> list[tuple[str, int, int, int]]:
    """``(target, done, top, merged)`` of each table of ``_BEHIND``'s row with rows lacking
    leaves or ``_MERGE`` rows waiting for the merge by value, or (``merged``) any leaves not
    merged by value yet."""
    found = []
    for at, target in enumerate(LEAVES):
        done, top, copied = (v or 0 for v in row[3 * at : 3 * at + 3])
        if top > done or top - copied >= _MERGE or (merged and top > copied):
            found.append((target, done, top, copied))
    return found


def _catch_up(db: sqlite3.Connection, *, merge: bool = False) -> None:
    """Leaves for the rows inserted since the last catch-up (rowids past ``DONE``), in one
    set-based pass a table, within the caller's write transaction: an import of 5,000 runs
    writes its leaves at once, in rowid order, not row by row from a trigger. Then the
    leaves not yet in the copies by value are merged into them, when ``_MERGE`` rows or
    more wait (or ``merge``: all of them, for a filter)."""
    for target, done, top, merged in _behind(db.execute(_BEHIND).fetchone(), merged=merge):
        if top > done:
            for statement in _CATCH_UP[target]:
                db.execute(statement, (done,))
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (DONE[target], top)
            )
        if merge or top - merged >= _MERGE:
            db.execute(_MERGE_SQL[target], (merged,))
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (BY_VALUE_DONE[target], top),
            )


def _leaves_from(
    db: sqlite3.Connection,
    target: str,
    records: Sequence[RunRecord] | Sequence[VersionRecord],
    marks: Sequence[Any],
    inserted: int,
) -> None:
    """The leaves of ``records``, which the import just inserted (every one of them, in
    order: none was in the table), from the records it holds (``leaf_rows``) rather than
    from a parse of their JSON in SQL; then the mark moves past them, and the catch-up has
    nothing left to do for them. Only when the table had no row waiting for its leaves
    before (``marks``: ``_BEHIND``'s row, read in this transaction) and the rows took the
    rowids that follow (SQLite gives a new row the largest rowid plus one, unless that is
    2**63 - 1): else, or for a record ``leaf_rows`` leaves to SQL, the catch-up does it."""
    at = 3 * list(LEAVES).index(target)
    done, top = (v or 0 for v in marks[at : at + 2])
    if not records or done != top or inserted != len(records):
        return
    rows = leaf_rows(target, records, top + 1)
    leaves, table = LEAVES[target][:2]
    if rows is None:
        return
    if db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] != top + inserted:
        return
    _insert_many(db, f"INSERT OR IGNORE INTO {leaves} (rid, key, value) VALUES (?,?,?)", rows)
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (DONE[target], top + inserted)
    )


_RUN_QUALIFIED = ", ".join(f"runs.{f}" for f in RUN_FIELDS)  # beside other tables' ids
# orders whose column has an index (a first page walks it): started_at, created_at
_WALKABLE = frozenset({"started_at", "created_at", "made_at"})
_DRIVE = 1 << 62  # without a page: always from the narrowest range, however broad


def _where(clauses: Sequence[str]) -> str:
    return "WHERE " + " AND ".join(clauses) if clauses else ""


# Rows a statement of a bulk insert: an INSERT runs its statement's opening of the table's and
# each index's cursor, and a seek from each root, once a statement, where an executemany of
# one row a statement runs them once a row: 100,000 runs' rows in 30% less CPU this way
# (runs, 6 B-trees; edges, 2). At most 999 values a statement: SQLite's limit before 3.32.
_VALUES = 999


def _insert_many(db: sqlite3.Connection, insert: str, rows: Sequence[Sequence[Any]]) -> int:
    """``db.executemany(insert, rows).rowcount``, in statements of many rows each (the same
    rows inserted, in the same order: each row's ``OR IGNORE`` is its own). ``insert`` ends
    with its one ``VALUES (?,...)`` group."""
    if not rows:
        return 0
    width = len(rows[0])
    per = max(1, _VALUES // width)
    whole = len(rows) // per * per
    changed = 0
    if whole:
        head, group = insert.rsplit("VALUES", 1)
        many = f"{head}VALUES {','.join([group.strip()] * per)}"
        chunks = [list(chain.from_iterable(rows[i : i + per])) for i in range(0, whole, per)]
        changed += db.executemany(many, chunks).rowcount
    if whole < len(rows):
        changed += db.executemany(insert, rows[whole:]).rowcount
    return changed


def _present(db: sqlite3.Connection, table: str, ids: Sequence[str]) -> set[str]:
    """The ``ids`` already in ``table``, plus any that ``ids`` holds twice."""
    if not ids:
        return set()
    rows = db.execute(
        f"SELECT id FROM {_EACH_ID} CROSS JOIN {table} ON id = i.want", (_id_list(ids),)
    )
    twice = {i for i, n in Counter(ids).items() if n > 1} if len(set(ids)) < len(ids) else set()
    return {row[0] for row in rows} | twice


def _by_digest(wanted: Iterable[Sequence[Any]]) -> str:
    """``_BY_DIGEST``'s parameter for ``(project, name, largest index, digest)`` each: a
    row an epoch up to the largest index's (an artifact without versions: none)."""
    return json.dumps(
        [
            [project, name, epoch, digest]
            for project, name, top, digest in wanted
            if top is not None
            for epoch in range((top >> _EPOCH) + 1)
        ]
    )


def _sql(value: Any) -> Any:
    """A flat value as SQLite keeps it: a list (``tags``) as JSON text."""
    return codec.dumps(value) if isinstance(value, list) else value


def _id_list(ids: Collection[str]) -> str:
    """A JSON array of distinct ids, for ``_EACH_ID``."""
    unique = ids if isinstance(ids, set | frozenset | KeysView) else dict.fromkeys(ids)
    return json.dumps(list(unique))


def _filters(*pairs: tuple[str, object]) -> tuple[str, list[Any]]:
    clauses = [clause for clause, value in pairs if value is not None]
    params = [value for _, value in pairs if value is not None]
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _insert_events(db: sqlite3.Connection, events: Iterable[Event]) -> int:
    rows = [tuple(codec.encode_event(e).values()) for e in events]
    return db.executemany(_EVENT_INSERT, rows).rowcount


def _run_row(run: RunRecord) -> list[Any]:
    values = codec.encode_run(run)
    for i in _RUN_LISTS:
        values[i] = codec.dumps(values[i])
    return values


_VERSION_TAGS = VERSION_STORED.index("tags")
# columns added since the first schema (ALTER TABLE ADD COLUMN when a store lacks them)
_ADDED_COLUMNS = (
    ("runs", "user"),
    ("versions", "tags"),
    ("runs", "parent"),
    ("runs", "facets"),
)
_ADDED_REAL_COLUMNS = (("versions", "event_at"),)


def _version_row(version: VersionRecord) -> list[Any]:
    values = codec.encode_version(version)
    values[_VERSION_TAGS] = codec.dumps(values[_VERSION_TAGS]) if values[_VERSION_TAGS] else None
    return values


def _version(row: Sequence[Any]) -> VersionRecord:
    return codec.decode_versions([row])[0]
