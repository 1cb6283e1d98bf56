"""The one encoding of records into the flat values a graph store keeps, and back.

Both stores keep a record as one row (SQLite) or node (Neo4j) holding one *flat* value per
field, named as the field: a str, int, float, bool, None, or a list of str (``tags``). What
is not flat travels as JSON text: ``config``, ``summary``, ``code``, ``metadata`` and an
event's ``old`` and ``new``. A version's ``type`` is its artifact's and its ``aliases`` are
alias rows (nodes) of their own: a store fills them in when it reads.

Stores build their column lists and queries from the ``*_FIELDS`` tuples here, write the
values of ``encode_*`` and read with ``decode_*``, which take values in field order. So a
field added to a record in :mod:`lineage.records` is a change here and a column (SQLite's
schema; a Neo4j property needs none), not one in each store.

JSON keeps what ML code logs: ``NaN``, ``Infinity`` and ``-Infinity`` are written as Python's
``json`` writes them (and JSON5 reads them) and read back as the same floats.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any

from lineage.records import (
    ArtifactRecord,
    CodeVersion,
    Event,
    RunRecord,
    TokenRecord,
    VersionRecord,
    run_record,
    version_record,
)

__all__ = [
    "ARTIFACT_FIELDS",
    "EVENT_FIELDS",
    "RUN_FIELDS",
    "RUN_LISTS",
    "RUN_UPDATES",
    "RUN_UPDATES_ON_IMPORT",
    "TOKEN_FIELDS",
    "VERSION_FIELDS",
    "VERSION_STORED",
    "VERSION_UPDATES",
    "VERSION_UPDATES_ON_IMPORT",
    "decode_artifact",
    "decode_events",
    "decode_runs",
    "decode_token",
    "decode_version_map",
    "decode_versions",
    "dumps",
    "encode_artifact",
    "encode_event",
    "encode_run",
    "encode_run_changes",
    "encode_token",
    "encode_version",
    "encode_version_changes",
    "loads_many",
]


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


RUN_FIELDS = _names(RunRecord)
VERSION_FIELDS = _names(VersionRecord)
# what a version row or node holds itself: not its artifact's type, not its aliases
VERSION_STORED = tuple(name for name in VERSION_FIELDS if name not in ("type", "aliases"))
ARTIFACT_FIELDS = _names(ArtifactRecord)
EVENT_FIELDS = _names(Event)  # seq is the store's to assign
TOKEN_FIELDS = _names(TokenRecord)

# what may change after creation: update_run / update_version, and an import of a record
# the store already holds (a run that finished since, a version edited or deleted since)
RUN_UPDATES = frozenset(
    {"state", "summary", "finished_at", "error", "notes", "tags", "config"}
    | {"started_at", "parent", "facets"}  # what a late OpenLineage event of a run may say
)
RUN_UPDATES_ON_IMPORT = ("state", "summary", "finished_at", "error")
VERSION_UPDATES = frozenset({"metadata", "description", "tags"} | {"event_at"})
VERSION_UPDATES_ON_IMPORT = ("metadata", "description", "state", "tags")

_RUN_JSON = frozenset({"config", "summary", "code", "facets"})
RUN_LISTS = frozenset({"tags"})  # flat as a list of str (SQLite keeps it as JSON text)
_TIMES = frozenset({"started_at", "finished_at", "created_at", "at", "event_at"})
# positions in field order, for the decoders (whose record constructors name every field)
_R = {name: i for i, name in enumerate(RUN_FIELDS)}
_V = {name: i for i, name in enumerate(VERSION_FIELDS)}
_TAGS = _R["tags"]
_METADATA, _ALIASES, _VTAGS = _V["metadata"], _V["aliases"], _V["tags"]
_ID = len(VERSION_FIELDS)  # where decode_version_map's rows carry the version's id
_EVENT_AT = _V["event_at"]
_OLD, _NEW = EVENT_FIELDS.index("old"), EVENT_FIELDS.index("new")


# JSON --------------------------------------------------------------------------------------


# ``json.dumps`` builds a new C encoder on every call: half its cost for a run's small config
# (a bulk import encodes three documents a run). One encoder with json.dumps's defaults,
# made once, writes the same text; without markers (no circular-reference check: records hold
# JSON trees, checked when they are made).
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE: Callable[[Any, int], Any] | None = (
    _c_make_encoder(
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )
    if _c_make_encoder is not None
    else None
)


def dumps(value: Any) -> str:
    """JSON text of a mapping, sequence or scalar; NaN and infinities as ``NaN``,
    ``Infinity``, ``-Infinity`` (``json``'s default, said here because it is relied on)."""
    kind = type(value)
    if kind is dict or kind is list:  # what records hold: no ABC checks on the way
        if not value:
            return "{}" if kind is dict else "[]"
        return "".join(_ENCODE(value, 0)) if _ENCODE is not None else json.dumps(value)
    if isinstance(value, Mapping):
        value = dict(value)
    elif isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, allow_nan=True)


def loads_many(texts: Iterable[str | None]) -> list[Any]:
    """Many stored JSON texts (None: null) with one parse: on a traversal answer of 100,000
    records one ``json.loads`` per field costs seconds, a single C-level parse a fraction."""
    joined = ",".join("null" if text is None else text for text in texts)
    decoded: list[Any] = json.loads(f"[{joined}]")
    return decoded


def _time(value: float | None) -> float | None:
    # a float always: Neo4j compares an int property and a float one as different types
    return None if value is None else float(value)


# runs --------------------------------------------------------------------------------------


_CODE_FIELDS = _names(CodeVersion)


def _code(code: CodeVersion | None) -> str | None:
    # not dataclasses.asdict, which deep-copies: ten times the cost
    return None if code is None else dumps({name: getattr(code, name) for name in _CODE_FIELDS})


def _run_encoder(name: str) -> Callable[[Any], Any] | None:
    """How a run field becomes a flat value (None: as it is)."""
    if name == "code":
        return _code
    if name in _RUN_JSON:
        return dumps
    if name in RUN_LISTS:
        return list
    return _time if name in _TIMES else None


def _encode_run_field(name: str, value: Any) -> Any:
    encode = _run_encoder(name)
    return value if encode is None else encode(value)


# (position, encoder) of each field that needs one: a bulk import encodes every run, and one
# call per field would cost it ~5%
_RUN_VALUES = attrgetter(*RUN_FIELDS)
_RUN_ENCODERS = [(i, f) for i, name in enumerate(RUN_FIELDS) if (f := _run_encoder(name))]


def encode_run(run: RunRecord) -> list[Any]:
    """A run's values in ``RUN_FIELDS`` order."""
    values = list(_RUN_VALUES(run))
    for i, encode in _RUN_ENCODERS:
        values[i] = encode(values[i])
    return values


def encode_run_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``update_run``'s changes as flat values; refuses a field that cannot change."""
    unknown = set(changes) - RUN_UPDATES
    if unknown:
        raise ValueError(f"cannot update run fields {sorted(unknown)}")
    return {name: _encode_run_field(name, value) for name, value in changes.items()}


def decode_runs(rows: Iterable[Sequence[Any]]) -> list[RunRecord]:
    """Runs from values in ``RUN_FIELDS`` order (``tags``: a list, or JSON text of one)."""
    rows = rows if isinstance(rows, list) else list(rows)
    texts = loads_many(
        [t for row in rows for t in (row[5], row[6], row[9], _json_tags(row), _facets(row))]
    )
    runs = []
    for i, row in enumerate(rows):
        code = texts[5 * i + 2]
        tags = row[7] if isinstance(row[7], list) else texts[5 * i + 3]
        runs.append(
            run_record(
                row[0], row[1], row[2], row[3], row[4], texts[5 * i], texts[5 * i + 1],
                tuple(tags) if tags else (), row[8], CodeVersion(**code) if code else None,
                row[10], row[11], row[12], row[13], row[14],
                row[_R["user"]] if len(row) > _R["user"] else None,
                row[_R["parent"]] if len(row) > _R["parent"] else None,
                texts[5 * i + 4] or {},
            )
        )  # fmt: skip
    return runs


def _facets(row: Sequence[Any]) -> str | None:
    # a run stored before runs had facets has none (a NULL column, a missing property)
    return row[_R["facets"]] if len(row) > _R["facets"] else None


def _json_tags(row: Sequence[Any]) -> str | None:
    tags = row[_TAGS]
    return tags if isinstance(tags, str) else None


# versions ----------------------------------------------------------------------------------


def _version_encoder(name: str) -> Callable[[Any], Any] | None:
    if name == "metadata":
        return dumps
    if name == "tags":
        return list
    return _time if name in _TIMES else None


def _encode_version_field(name: str, value: Any) -> Any:
    encode = _version_encoder(name)
    return value if encode is None else encode(value)


_VERSION_VALUES = attrgetter(*VERSION_STORED)
_VERSION_ENCODERS = [
    (i, f) for i, name in enumerate(VERSION_STORED) if (f := _version_encoder(name))
]


def encode_version(version: VersionRecord) -> list[Any]:
    """A version's own values in ``VERSION_STORED`` order."""
    values = list(_VERSION_VALUES(version))
    for i, encode in _VERSION_ENCODERS:
        values[i] = encode(values[i])
    return values


def encode_version_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``update_version``'s changes as flat values; refuses a field that cannot change."""
    unknown = set(changes) - VERSION_UPDATES
    if unknown:
        raise ValueError(f"cannot update version fields {sorted(unknown)}")
    return {name: _encode_version_field(name, value) for name, value in changes.items()}


def decode_versions(rows: Iterable[Sequence[Any]]) -> list[VersionRecord]:
    """Versions from values in ``VERSION_FIELDS`` order, ``metadata`` as JSON text and
    ``aliases`` a list or JSON text of one (or None: none). Values after those are ignored."""
    rows = rows if isinstance(rows, list) else list(rows)
    texts = loads_many(
        [t for row in rows for t in (row[_METADATA], _json_aliases(row), _json_vtags(row))]
    )
    versions = []
    for row, meta, held_text, tag_text in zip(
        rows, texts[0::3], texts[1::3], texts[2::3], strict=True
    ):
        held = row[_ALIASES] if isinstance(row[_ALIASES], list) else held_text
        tags = row[_VTAGS] if isinstance(row[_VTAGS], list) else tag_text
        versions.append(
            version_record(
                row[0], row[1], row[2], row[3], row[4], row[5], row[6], meta, row[8],
                tuple(sorted(held)) if held else (), row[10], row[11], row[12],
                tuple(tags) if tags else (), row[_EVENT_AT] if len(row) > _EVENT_AT else None,
            )
        )  # fmt: skip
    return versions


def decode_version_map(
    rows: Iterable[Sequence[Any]],
    types: Mapping[tuple[str, str], str],
    aliases: Mapping[str, Collection[str]],
) -> dict[str, VersionRecord]:
    """Versions by id from rows of values in ``VERSION_FIELDS`` order then the version's id,
    whose ``type`` and ``aliases`` are not in the row but in ``types`` (by ``(project,
    name)``) and ``aliases`` (by version id). A row whose artifact is not in ``types`` is no
    record, as an inner join would drop it."""
    rows = rows if isinstance(rows, list) else list(rows)
    versions = {}
    # the one loop a 130,000-version tree answer spends its decoding in: no string built,
    # no global looked up per row
    at, new, made = _ID, version_record, _EVENT_AT
    for row, meta in zip(rows, loads_many([row[_METADATA] for row in rows]), strict=True):
        kind = types.get((row[0], row[1]))
        if kind is not None:
            ref = row[at]
            held = aliases.get(ref)
            tags = row[_VTAGS]
            versions[ref] = new(
                row[0], row[1], kind, row[3], row[4], row[5], row[6], meta, row[8],
                tuple(sorted(held)) if held else (), row[10], row[11], row[12],
                _tag_tuple(tags) if tags else (), row[made],
            )  # fmt: skip
    return versions


def _json_vtags(row: Sequence[Any]) -> str | None:
    tags = row[_VTAGS]
    return tags if isinstance(tags, str) else None


def _tag_tuple(tags: Any) -> tuple[str, ...]:
    """Tags kept as a list (Neo4j) or as JSON text of one (SQLite)."""
    return tuple(json.loads(tags) if isinstance(tags, str) else tags)


def _json_aliases(row: Sequence[Any]) -> str | None:
    held = row[_ALIASES]
    return held if isinstance(held, str) else None


# artifacts, events, tokens -----------------------------------------------------------------


def encode_artifact(artifact: ArtifactRecord) -> tuple[Any, ...]:
    """An artifact's values in ``ARTIFACT_FIELDS`` order."""
    return tuple(
        _time(value) if name in _TIMES else value
        for name, value in ((name, getattr(artifact, name)) for name in ARTIFACT_FIELDS)
    )


def decode_artifact(values: Sequence[Any]) -> ArtifactRecord:
    """An artifact from values in ``ARTIFACT_FIELDS`` order."""
    return ArtifactRecord(**dict(zip(ARTIFACT_FIELDS, values, strict=True)))


def encode_event(event: Event) -> dict[str, Any]:
    """An event's flat values by field name, without ``seq`` and with a ``uid``: one is
    drawn here when the event has none, before any attempt, so a retried write reuses it."""
    values = {name: getattr(event, name) for name in EVENT_FIELDS if name != "seq"}
    values["at"] = _time(event.at)
    values["old"] = None if event.old is None else dumps(event.old)
    values["new"] = None if event.new is None else dumps(event.new)
    values["uid"] = event.uid or uuid.uuid4().hex
    return values


def decode_events(rows: Iterable[Sequence[Any]]) -> list[Event]:
    """Events from values in ``EVENT_FIELDS`` order (``old``, ``new`` as JSON text)."""
    rows = rows if isinstance(rows, list) else list(rows)
    texts = loads_many([t for row in rows for t in (row[_OLD], row[_NEW])])
    events = []
    for i, row in enumerate(rows):
        values = dict(zip(EVENT_FIELDS, row, strict=True))
        values.update(old=texts[2 * i], new=texts[2 * i + 1])
        events.append(Event(**values))
    return events


def encode_token(token: TokenRecord) -> tuple[Any, ...]:
    """A token's values in ``TOKEN_FIELDS`` order."""
    return tuple(
        _time(value) if name in _TIMES else value
        for name, value in ((name, getattr(token, name)) for name in TOKEN_FIELDS)
    )


def decode_token(values: Sequence[Any]) -> TokenRecord:
    """A token from values in ``TOKEN_FIELDS`` order (``revoked``: any truth value)."""
    token = dict(zip(TOKEN_FIELDS, values, strict=True))
    token["revoked"] = bool(token["revoked"])
    return TokenRecord(**token)
