"""When things were made, as every surface shows it (the rule of issue 11's event times).

- A version was made at :attr:`~lineage.records.VersionRecord.made_at`: its OpenLineage
  event's time (``event_at``) where it has one, else when lineage stored it (``created_at``,
  the SDK's versions). Every surface shows that time as "created", and beside it, as
  "stored", :attr:`~lineage.records.VersionRecord.stored_apart` where the two differ.
- The filter field ``created`` (``find``, GraphQL ``filter``/``orderBy``) and answers as of a
  time (``--as-of``, ``asOf``, ``REF@TIME``) go by the made time; the filter field ``stored``
  by the stored one. The event log (alias moves, edits, deletions) keeps lineage's own clock.
- An artifact was created when its first version was made (:func:`first_made`).
- A run's times are its own: an OpenLineage run starts at its first event's ``eventTime``
  and ends at its terminal event's; nothing records when those events arrived.
"""

from __future__ import annotations

from lineage.filters import literal
from lineage.protocol import LineageService
from lineage.records import ArtifactRecord, VersionRecord

__all__ = ["artifact_times", "first_made"]


def first_made(service: LineageService, project: str, name: str) -> VersionRecord | None:
    """The version of artifact ``project/name`` made first (deleted ones too), whose made
    time is the artifact's "created"; None for an artifact without versions."""
    found = service.find_versions(
        project, filter=f"name = {literal(name)}", order_by="created", limit=1
    )
    return found[0] if found else None


def artifact_times(service: LineageService, artifact: ArtifactRecord) -> tuple[float, float]:
    """When ``artifact`` was created (its first version's made time) and when lineage stored
    its first version; without versions, the record's time twice. Both stores now keep the
    record's ``created_at`` as the first version's made time too, but a store an older
    lineage wrote holds the event's time (Neo4j) or the arrival's (SQLite): the versions'
    own times are what every surface goes by."""
    first = first_made(service, artifact.project, artifact.name)
    stored = service.versions(artifact.project, artifact.name, include_deleted=True, limit=1)
    return (
        artifact.created_at if first is None else first.made_at,
        stored[0].created_at if stored else artifact.created_at,
    )
