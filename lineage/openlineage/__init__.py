"""OpenLineage in and out: events checked against the bundled spec, mapped onto runs and
artifact versions, and the graph written back out as events.

- :mod:`lineage.openlineage.validation`: :func:`check_event`, the limits, :class:`InvalidEvent`
- :mod:`lineage.openlineage.naming`: internal names for any OpenLineage name
- :mod:`lineage.openlineage.ingest`: :func:`ingest`, the mapping and the event semantics
- :mod:`lineage.openlineage.group`: concurrent events stored as one group, one transaction
- :mod:`lineage.openlineage.plan`: a group's events mapped in memory, written set-based
"""

from __future__ import annotations

from lineage.openlineage.ingest import STATES, Ingested, dataset_ref, ingest
from lineage.openlineage.naming import internal_name, location
from lineage.openlineage.validation import (
    MAX_DATASETS,
    MAX_EVENT_BYTES,
    MAX_NAME,
    SCHEMA_URL,
    InvalidEvent,
    check_event,
    run_id,
)

__all__ = [
    "MAX_DATASETS",
    "MAX_EVENT_BYTES",
    "MAX_NAME",
    "SCHEMA_URL",
    "STATES",
    "Ingested",
    "InvalidEvent",
    "check_event",
    "dataset_ref",
    "ingest",
    "internal_name",
    "location",
    "run_id",
]
