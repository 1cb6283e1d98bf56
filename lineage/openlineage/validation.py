"""OpenLineage events checked against the spec (2-0-2), lenient where real emitters need it.

The JSON schema of the spec and the schemas of the facets lineage reads (parent, schema,
column lineage, dataset version, job type) are bundled in ``spec/`` with the project's
licence (Apache 2.0, ``spec/LICENSE`` and ``spec/NOTICE.txt``). Lenient where Marquez is:

- an ``eventTime`` without a time zone is UTC; a missing ``schemaURL`` is the spec's own;
- a facet without ``_producer`` or ``_schemaURL`` gets the event's producer and the spec;
- a ``runId`` that is not a UUID is kept (in the run's facets) and mapped to a stable id
  (:func:`run_id`).

Limits: an event of at most :data:`MAX_EVENT_BYTES`, names (namespaces, job and dataset
names) of at most :data:`MAX_NAME` characters, at most :data:`MAX_DATASETS` inputs and outputs.
Every refusal is :class:`InvalidEvent` naming the field (``run.runId``, ``outputs[2].name``).

>>> event = check_event(json.loads(body))   # a normalised copy; raises InvalidEvent
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from lineage.errors import InvalidInput

if TYPE_CHECKING:  # both imported where first used: the writer process checks no event
    import jsonschema

__all__ = [
    "MAX_DATASETS",
    "MAX_EVENT_BYTES",
    "MAX_NAME",
    "SCHEMA_URL",
    "InvalidEvent",
    "check_event",
    "event_kind",
    "event_time",
    "run_id",
]

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
MAX_EVENT_BYTES = 5 * 1024**2
MAX_NAME = 4000
MAX_DATASETS = 100
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
# the facets lineage reads, each checked against its own bundled schema
_FACET_SCHEMAS = {
    ("run", "parent"): "ParentRunFacet",
    ("job", "jobType"): "JobTypeJobFacet",
    ("dataset", "schema"): "SchemaDatasetFacet",
    ("dataset", "columnLineage"): "ColumnLineageDatasetFacet",
    ("dataset", "version"): "DatasetVersionDatasetFacet",
}
_RUN_ID_NAMESPACE = uuid.UUID("6f1e7f4e-1d3c-4a8e-9a57-0c0b6c1d2e3f")


class InvalidEvent(InvalidInput):
    """An OpenLineage event the spec (or a limit) refuses; ``field`` names where."""

    code = "INVALID_EVENT"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message, field=field)
        self.field = field


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    folder = resources.files("lineage.openlineage") / "spec"
    names = ["OpenLineage", *_FACET_SCHEMAS.values()]
    return {name: json.loads((folder / f"{name}.json").read_text("utf-8")) for name in names}


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    """The validator of one event kind (``RunEvent``...) or of one facet schema."""
    import jsonschema
    import referencing
    import referencing.jsonschema

    schemas = _schemas()
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(
        (s["$id"], referencing.jsonschema.DRAFT202012.create_resource(s)) for s in schemas.values()
    )
    if name in schemas:
        schema = schemas[name]
    else:  # one kind of event: the spec's definition of it (errors then name the field)
        spec = {key: value for key, value in schemas["OpenLineage"].items() if key != "oneOf"}
        schema = {**spec, "$ref": f"#/$defs/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _compiled(name: str) -> Any:
    """The compiled validator of one event kind or facet schema (jsonschema-rs, its
    ``$ref``s resolved once), or None without it. Used only to pass valid events quickly:
    whatever it refuses is checked again by :func:`_validator`, which names the field."""
    try:  # the compiled validator: ~300x faster; jsonschema still words every refusal
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a dependency; without it, jsonschema alone
        return None
    schemas = _schemas()
    registry = jsonschema_rs.Registry([(s["$id"], s) for s in schemas.values()])
    if name in schemas:
        schema = schemas[name]
    else:
        spec = {key: value for key, value in schemas["OpenLineage"].items() if key != "oneOf"}
        schema = {**spec, "$ref": f"#/$defs/{name}"}
    return jsonschema_rs.Draft202012Validator(schema, registry=registry, validate_formats=False)


def _errors(name: str, instance: object) -> list[jsonschema.ValidationError]:
    """What the schema ``name`` finds wrong with ``instance`` (nothing: valid)."""
    compiled = _compiled(name)
    if compiled is not None and compiled.is_valid(instance):
        return []
    return list(_validator(name).iter_errors(instance))


def event_kind(event: Mapping[str, Any]) -> str:
    """``RunEvent``, ``DatasetEvent`` or ``JobEvent``, by the event's shape."""
    if "run" in event or "eventType" in event:
        return "RunEvent"
    if "dataset" in event:
        return "DatasetEvent"
    return "JobEvent" if "job" in event else "RunEvent"


def run_id(value: str) -> str:
    """The id lineage keeps for an OpenLineage ``runId``: the UUID itself (lower case), or a
    UUID derived from any other text, always the same for the same text."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.uuid5(_RUN_ID_NAMESPACE, value))


def event_time(event: Mapping[str, Any]) -> float:
    """The event's time as seconds since the epoch (a normalised event's)."""
    return datetime.fromisoformat(event["eventTime"]).timestamp()


def check_event(raw: object) -> dict[str, Any]:
    """A normalised copy of one OpenLineage event, or :class:`InvalidEvent`."""
    if not isinstance(raw, dict):
        raise InvalidEvent(f"an event is a JSON object, not {type(raw).__name__}")
    event: dict[str, Any] = _copied(raw)
    event.setdefault("schemaURL", SCHEMA_URL)
    producer = event.get("producer")
    kind = event_kind(event)
    if kind == "RunEvent":
        event.setdefault("eventType", "OTHER")
    _fill_facets(event, producer if isinstance(producer, str) else SCHEMA_URL)
    _fix_time(event)
    errors = sorted(_errors(kind, event), key=lambda e: e.path)
    if errors:
        error = _best(errors)
        raise InvalidEvent(_message(error), field=_where(error.absolute_path))
    _check_names(event)
    _check_facets(event)
    return event


def _best(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    from jsonschema.exceptions import best_match

    found = best_match(errors)
    assert found is not None  # never called with no error
    return found


def _copied(value: Any) -> Any:
    """A deep copy of JSON (what ``copy.deepcopy`` gives, several times faster)."""
    kind = type(value)
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(event)"


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return str(error.message)
    shown = json.dumps(error.instance)
    if len(shown) > 80:
        shown = shown[:80] + "..."
    said = str(error.message)
    return f"{shown} {said.split(' is ', 1)[-1]}" if " is " in said else said


def _fix_time(event: dict[str, Any]) -> None:
    value = event.get("eventTime")
    if not isinstance(value, str):
        return  # the schema says what is wrong
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEvent(
            f"{value!r:.80} is not an ISO 8601 date and time", field="eventTime"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # as Marquez reads it
    event["eventTime"] = when.isoformat()


def _facet_maps(event: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """``(owner kind, field path, facets object)`` of every facets object of the event."""
    found: list[tuple[str, str, Any]] = []
    for key in ("run", "job", "dataset"):
        part = event.get(key)
        if isinstance(part, dict) and "facets" in part:
            found.append((key, f"{key}.facets", part["facets"]))
    for key in ("inputs", "outputs"):
        items = event.get(key)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            for extra in ("facets", "inputFacets", "outputFacets"):
                if extra in item:
                    found.append(("dataset", f"{key}[{i}].{extra}", item[extra]))
    return found


def _fill_facets(event: dict[str, Any], producer: str) -> None:
    for _, _, facets in _facet_maps(event):
        if not isinstance(facets, dict):
            continue
        for facet in facets.values():
            if isinstance(facet, dict):
                facet.setdefault("_producer", producer)
                facet.setdefault("_schemaURL", SCHEMA_URL)


def _check_facets(event: dict[str, Any]) -> None:
    for owner, where, facets in _facet_maps(event):
        for name, facet in facets.items():
            schema = _FACET_SCHEMAS.get((owner, name))
            if schema is None or where.endswith(("inputFacets", "outputFacets")):
                continue
            errors = _errors(schema, {name: facet})
            if errors:
                error = _best(errors)
                raise InvalidEvent(_message(error), field=f"{where}.{_where(error.absolute_path)}")


def _check_names(event: dict[str, Any]) -> None:
    named: list[tuple[str, Any]] = []
    for key in ("job", "dataset"):
        if isinstance(event.get(key), dict):
            named += [(f"{key}.namespace", event[key]["namespace"])]
            named += [(f"{key}.name", event[key]["name"])]
    datasets = 0
    for key in ("inputs", "outputs"):
        items = event.get(key) or []
        datasets += len(items)
        for i, item in enumerate(items):
            named += [(f"{key}[{i}].namespace", item["namespace"])]
            named += [(f"{key}[{i}].name", item["name"])]
    parent = (event.get("run") or {}).get("facets", {}).get("parent")
    if isinstance(parent, dict):
        named += [
            ("run.facets.parent.job.namespace", parent["job"]["namespace"]),
            ("run.facets.parent.job.name", parent["job"]["name"]),
        ]
    if datasets > MAX_DATASETS:
        raise InvalidEvent(
            f"{datasets} inputs and outputs; at most {MAX_DATASETS} in one event",
            field="inputs",
        )
    for where, value in named:
        if not value:
            raise InvalidEvent("must not be empty", field=where)
        if len(value) > MAX_NAME:
            raise InvalidEvent(
                f"is {len(value):,} characters; at most {MAX_NAME:,} allowed", field=where
            )
        if "\x00" in value or not _encodable(value):
            raise InvalidEvent("holds a NUL character or a lone surrogate (not text)", field=where)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
