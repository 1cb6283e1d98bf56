"""The derivation tree under a version, walked in SQLite: one query a generation.

Each generation's query takes the frontier's version ids (one JSON array) and makes, per
run consuming one of them and per version that run produced, a row of the output's record
beside ``(the frontier position, run, output)``. The walk, the records and the derived
edges of :mod:`lineage.traversal`'s generic path come from the same queries, in one read
snapshot.

What a tree of 130,000 versions costs is mostly values. Fetched, each value of each row
costs the ``sqlite3`` module a release and a take of the GIL (around
``sqlite3_column_type``), a couple of library calls (each behind the connection's mutex)
and a new Python object; a NULL costs most of that too. So the rows are not fetched: the
query hands each one to a Python function of the walk's as SQLite makes it (a function's
arguments are converted with the GIL held: one take a row, not one a value), which does
what a loop over the fetched rows did. And a row carries only what its neighbours do not
say already:

- the consumed version as its position in the frontier (``json_each``'s key: a small int),
  not its id again;
- ``name`` as NULL when it is the root's (a tree mostly stays in its artifact);
- the fields that are almost always the same, in one column, ``odd``: NULL when the version
  is in the root's project, was made by the row's run, is ``committed`` and has neither a
  description nor tags (a reproduction's ``created_by`` is another run), else its rowid, and
  those rows' fields come from one more query by rowid. A version without a record (no row
  in ``versions``) has a NULL ``digest``.

The artifacts' types and aliases are few: fetched once for the whole tree, not once a row.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Collection, Mapping
from typing import Any

from lineage.records import VersionRecord, version_record
from lineage.storage.codec import loads_many

__all__ = ["RowSink", "install", "tree_rows"]

# the function _LEVEL hands its rows to: RowSink.row, registered once a connection
_ROW = "lineage_tree_row"
# the rows of a generation, each handed to _ROW: ? (1) = the frontier as a JSON array,
# (2), (3) = the root's project and name. The 100,000-run tree's 130,000 rows: 0.36 s
# handed over against 0.45 s fetched (CPU, the same queries).
_FROM = (
    "FROM (SELECT key AS at, value AS want FROM json_each(?1)) i "
    "CROSS JOIN edges c ON c.src = i.want AND c.kind = 'consumed_by' "
    "LEFT JOIN edges p ON p.src = c.dst AND p.kind = 'produced' "
)
_LEVEL = (
    f"SELECT count({_ROW}(i.at, c.dst, p.dst, CASE WHEN v.name = ?3 THEN NULL ELSE v.name END, "
    "v.idx, v.digest, v.size, v.file_count, v.metadata, v.created_at, v.event_at, "
    "CASE WHEN v.project = ?2 AND v.created_by = c.dst AND v.state = 'committed' "
    "AND v.description IS NULL AND v.tags IS NULL THEN NULL ELSE v.rowid END)) "
    f"{_FROM}LEFT JOIN versions v ON v.id = p.dst"
)
# the generation at the depth limit: its edges only
_EDGES = f"SELECT i.at, c.dst, p.dst {_FROM}"
# the fields kept of a new version's row: its run, its id, then _LEVEL's from the name on
_NAME, _METADATA, _ODD = 2, 7, 10
# the fields an odd row leaves out; ? = a JSON array of rowids
_ODD_FIELDS = (
    "SELECT v.rowid, v.project, v.name, v.description, v.created_by, v.state, v.tags "
    "FROM (SELECT value AS want FROM json_each(?)) i CROSS JOIN versions v ON v.rowid = i.want"
)
# ? = a JSON array of [project, name] pairs
_EACH_ARTIFACT = (
    "(SELECT json_extract(value, '$[0]') AS project, json_extract(value, '$[1]') AS name "
    "FROM json_each(?)) k"
)
_TYPES_OF = (
    f"SELECT a.project, a.name, a.type FROM {_EACH_ARTIFACT} "
    "CROSS JOIN artifacts a ON a.project = k.project AND a.name = k.name"
)
_ALIASES_OF = (
    f"SELECT l.project || '/' || l.name || ':v' || l.idx, l.alias FROM {_EACH_ARTIFACT} "
    "CROSS JOIN aliases l ON l.project = k.project AND l.name = k.name ORDER BY l.alias"
)

Row = tuple[Any, ...]


def tree_rows(
    db: sqlite3.Connection,
    root: str,
    generations: int | None,
    get_versions: Callable[[Collection[str]], dict[str, VersionRecord]],
    rows: RowSink,
) -> tuple[dict[str, VersionRecord], list[tuple[str, str, str]], bool]:
    """``GraphStore.tree_rows`` on a connection: ``(records by id, (version, output, run)
    triples, truncated)``. ``get_versions`` reads the root's record (in the same snapshot);
    ``rows`` is the connection's (:func:`install`)."""
    triples: list[tuple[str, str, str]] = []
    runs: set[str] = set()  # the runs met: they matter at the depth limit only
    # each new version that has a record: (run, output, then _LEVEL's fields from the name)
    found: list[Row] = []
    frontier = [root]
    db.execute("BEGIN")  # one read snapshot for every level
    try:
        rows.start(root, triples, found, runs if generations is not None else None)
        versions = get_versions([root])
        top = versions.get(root)
        project, name = (top.project, top.name) if top is not None else (None, None)
        done = 0
        truncated = False
        while frontier:
            ids = _json_ids(frontier)
            if generations is not None and done >= generations:
                # at the depth limit: only runs already in the tree are followed
                for at, run, out in db.execute(_EDGES, (ids,)):
                    if run not in runs:
                        truncated = True
                    elif out is not None:
                        triples.append((frontier[at], out, run))
                break
            frontier = rows.generation(frontier)
            db.execute(_LEVEL, (ids, project, name)).fetchone()
            done += 1
        odd = _odd_fields(db, [row[_ODD] for row in found if row[_ODD] is not None])
        # the artifacts' types and aliases: few, fetched once rather than once a row
        keys = json.dumps(
            list(
                {(project, name if n is None else n) for n in {row[_NAME] for row in found}}
                | {(fields[0], fields[1]) for fields in odd.values()}
            )
        )
        types = {(p, n): t for p, n, t in db.execute(_TYPES_OF, (keys,))}
        aliases: dict[str, list[str]] = {}
        for ref, alias in db.execute(_ALIASES_OF, (keys,)):
            aliases.setdefault(ref, []).append(alias)
    finally:
        rows.stop()
        db.execute("COMMIT")
    records = _records(found, odd, project, name, types, aliases)
    records.update(versions)  # the root's: one, where the other way round copies them all
    return records, triples, truncated


class RowSink:
    """What SQLite hands each row of ``_LEVEL`` to, on one connection, pointed at one walk
    at a time (``start`` ... ``stop``). The function is registered once a connection
    (:func:`install`): redefining one expires every statement prepared on the connection,
    and fails while one of them is running (a cursor read halfway)."""

    def __init__(self) -> None:
        self.stop()

    def start(
        self,
        root: str,
        triples: list[tuple[str, str, str]],
        found: list[Row],
        runs: set[str] | None,
    ) -> None:
        """Point at a walk from ``root``: its triples, its kept rows, and the runs met
        (None: not needed, no depth limit)."""
        self.seen = {root}  # versions, with a record or not (the walk goes on either way)
        self.met = self.seen.add
        self.add, self.keep = triples.append, found.append
        self.note = None if runs is None else runs.add

    def generation(self, frontier: list[str]) -> list[str]:
        """The next generation's rows come from ``frontier``: the list they add to."""
        self.parents: list[str] = frontier
        following: list[str] = []
        self.grow = following.append
        return following

    def stop(self) -> None:
        """Let go of the walk."""
        self.start("", [], [], None)
        self.generation([])

    def row(
        self, at: int, run: str, out: str | None, n: str | None, index: int,
        digest: str | None, size: int, files: int, meta: str, made: float,
        when: float | None, odd: int | None,
    ) -> None:  # fmt: skip
        """A row of ``_LEVEL``, handed over by SQLite as it makes it (the module's
        docstring)."""
        if self.note is not None:
            self.note(run)
        if out is None:  # a run without outputs
            return
        self.add((self.parents[at], out, run))
        if out not in self.seen:
            self.met(out)
            self.grow(out)
            if digest is not None:  # None: a version without a record
                self.keep((run, out, n, index, digest, size, files, meta, made, when, odd))


def install(db: sqlite3.Connection) -> RowSink:
    """Register on a new connection the function ``_LEVEL`` hands its rows to: the
    :class:`RowSink` that ``tree_rows`` on this connection takes."""
    rows = RowSink()
    db.create_function(_ROW, 12, rows.row)
    return rows


def _json_ids(ids: list[str]) -> str:
    """A JSON array of ids. Ids are names, so almost never need escaping: joined, they
    cost a tenth of ``json.dumps``."""
    joined = '","'.join(ids)
    if joined.count('"') != 2 * len(ids) - 2 or "\\" in joined or not joined.isprintable():
        return json.dumps(ids)  # a quote in an id, a backslash, a control character
    return f'["{joined}"]'


def _odd_fields(db: sqlite3.Connection, rowids: list[int]) -> dict[int, Row]:
    """``(project, name, description, created_by, state, tags)`` of the odd rows' versions,
    by rowid."""
    if not rowids:
        return {}
    return {row[0]: row[1:] for row in db.execute(_ODD_FIELDS, (json.dumps(rowids),))}


def _records(
    rows: list[Row],
    odd: Mapping[int, Row],
    project: str | None,
    name: str | None,
    types: Mapping[tuple[str | None, str | None], str],
    aliases: Mapping[str, list[str]],
) -> dict[str, VersionRecord]:
    """The records of ``_LEVEL``'s rows, by id. A row whose artifact is not in ``types`` is
    no record, as the other reads' join with ``artifacts`` would drop it."""
    records: dict[str, VersionRecord] = {}
    new, kind_of = version_record, types.get
    kind = kind_of((project, name))
    # a usual row's project and name: the root's (never None there: no root, no usual row)
    home: Any = project
    own: Any = name
    metadata = loads_many([row[_METADATA] for row in rows])  # one parse for all
    for row, meta in zip(rows, metadata, strict=True):
        # locals: names as SQLite wrote them here, and their fill-ins
        run, ref, n, index, digest, size, files, _, made, when, rowid = row
        if rowid is None and n is None and kind is not None:
            # the usual row: the root's artifact, made by this run, committed, nothing else
            records[ref] = new(
                home, own, kind, index, digest, size, files, meta, None, (), run, made,
                "committed", (), when,
            )  # fmt: skip
            continue
        p: Any
        if rowid is None:  # the root's project, made by this run, committed, nothing else set
            p, about, by, state, tags = project, None, run, "committed", ()
            if n is None:
                n = name
        else:
            p, n, about, by, state, text = odd[rowid]
            tags = tuple(json.loads(text)) if text else ()
        k = kind_of((p, n))
        if k is not None:
            records[ref] = new(
                p, n, k, index, digest, size, files, meta, about, (), by, made, state, tags, when
            )
    # aliases are few: the records that have some are made again with them
    for ref, held in aliases.items():
        record = records.get(ref)
        if record is not None:
            records[ref] = dataclasses.replace(record, aliases=tuple(sorted(held)))
    return records
