"""The derivation tree under a version, walked in SQLite: one query a generation.

Each generation's query takes the frontier's version ids (one JSON array) and returns, per
run consuming one of them and per version that run produced, the output's record beside
``(the frontier position, run, output)``. The walk, the records and the derived edges of
:mod:`lineage.traversal`'s generic path come from the same queries, in one read snapshot.

What a tree of 130,000 versions costs is mostly values: the ``sqlite3`` module takes two or
three library calls (each behind the connection's mutex) and a new Python object for each
value of each row, about as much as the B-tree seeks themselves. So a row carries only what
its neighbours do not say already:

- the consumed version as its position in the frontier (``json_each``'s key: a small int),
  not its id again;
- ``project`` and ``name`` as NULL when they are the root's (a tree mostly stays in its
  artifact), ``state`` as NULL when ``committed``, ``created_by`` as ``1`` when it is the
  row's run (the usual case: the run that produced it made it; a reproduction's is another
  run). NULL can stand for a value only in columns that are never NULL; ``created_by`` may
  be, and ``1`` cannot be a text column's value. A version without a record (no row in
  ``versions``) has a NULL ``digest``.

The artifacts' types and aliases are few: fetched once for the whole tree, not once a row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping
from typing import Any

from lineage.records import VersionRecord, version_record
from lineage.storage.codec import loads_many

__all__ = ["tree_rows"]

# ? (1) = the frontier as a JSON array, (2), (3) = the root's project and name
_LEVEL = (
    "SELECT i.at, c.dst, p.dst, "
    "CASE WHEN v.project = ?2 THEN NULL ELSE v.project END, "
    "CASE WHEN v.name = ?3 THEN NULL ELSE v.name END, "
    "v.idx, v.digest, v.size, v.file_count, v.metadata, v.description, "
    "CASE WHEN v.created_by = c.dst THEN 1 ELSE v.created_by END, v.created_at, "
    "CASE WHEN v.state = 'committed' THEN NULL ELSE v.state END, v.tags, v.event_at "
    "FROM (SELECT key AS at, value AS want FROM json_each(?1)) i "
    "CROSS JOIN edges c ON c.src = i.want AND c.kind = 'consumed_by' "
    "LEFT JOIN edges p ON p.src = c.dst AND p.kind = 'produced' "
    "LEFT JOIN versions v ON v.id = p.dst"
)
_RUN, _OUT, _PROJECT, _NAME, _DIGEST, _METADATA = 1, 2, 3, 4, 6, 9
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
) -> tuple[dict[str, VersionRecord], list[tuple[str, str, str]], bool]:
    """``GraphStore.tree_rows`` on a connection: ``(records by id, (version, output, run)
    triples, truncated)``. ``get_versions`` reads the root's record (in the same snapshot)."""
    db.execute("BEGIN")  # one read snapshot for every level
    try:
        versions = get_versions([root])
        top = versions.get(root)
        project, name = (top.project, top.name) if top is not None else (None, None)
        triples: list[tuple[str, str, str]] = []
        seen = {root}  # versions, with a record or not (the walk goes on either way)
        runs: set[str] = set()
        found: list[Row] = []
        frontier = [root]
        done = 0
        truncated = False
        while frontier:
            rows = db.execute(_LEVEL, (json.dumps(frontier), project, name)).fetchall()
            parents = frontier
            if generations is not None and done >= generations:
                # at the depth limit: only runs already in the tree are followed
                for row in rows:
                    if row[_RUN] not in runs:
                        truncated = True
                    elif row[_OUT] is not None:
                        triples.append((parents[row[0]], row[_OUT], row[_RUN]))
                break
            if generations is not None:  # the runs matter at the depth limit only
                runs.update([row[_RUN] for row in rows])
            frontier = []
            add, grow, keep, met = triples.append, frontier.append, found.append, seen.add
            for row in rows:
                out = row[_OUT]
                if out is None:  # a run without outputs
                    continue
                add((parents[row[0]], out, row[_RUN]))
                if out not in seen:
                    met(out)
                    grow(out)
                    if row[_DIGEST] is not None:
                        keep(row)
            done += 1
        # the artifacts' types and aliases: few, fetched once rather than once a row
        keys = json.dumps(
            list(
                {
                    (project if p is None else p, name if n is None else n)
                    for p, n in [(row[_PROJECT], row[_NAME]) for row in found]
                }
            )
        )
        types = {(p, n): t for p, n, t in db.execute(_TYPES_OF, (keys,))}
        aliases: dict[str, list[str]] = {}
        for ref, alias in db.execute(_ALIASES_OF, (keys,)):
            aliases.setdefault(ref, []).append(alias)
    finally:
        db.execute("COMMIT")
    versions.update(_records(found, project, name, types, aliases))
    return versions, triples, truncated


def _records(
    rows: list[Row],
    project: str | None,
    name: str | None,
    types: Mapping[tuple[str, str], str],
    aliases: Mapping[str, list[str]],
) -> dict[str, VersionRecord]:
    """The records of ``_LEVEL``'s rows, by id. A row whose artifact is not in ``types`` is
    no record, as the other reads' join with ``artifacts`` would drop it."""
    records = {}
    new, kind_of, held_by = version_record, types.get, aliases.get
    metadata = loads_many([row[_METADATA] for row in rows])  # one parse for all
    for row, meta in zip(rows, metadata, strict=True):
        # locals: names as SQLite wrote them here, and their fill-ins
        _at, run, ref, p, n, index, digest, size, files, _, about, by, made, state, tags, when = row
        if p is None:
            p = project
        if n is None:
            n = name
        kind = kind_of((p, n))
        if kind is None:
            continue
        held = held_by(ref)
        records[ref] = new(
            p, n, kind, index, digest, size, files, meta, about,
            tuple(sorted(held)) if held else (), run if by == 1 else by, made,
            "committed" if state is None else state, tuple(json.loads(tags)) if tags else (),
            when,
        )  # fmt: skip
    return records
