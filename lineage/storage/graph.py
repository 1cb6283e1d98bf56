"""The GraphStore protocol: what a backend must do to hold lineage.

Rules (naming, validation, cycle checks, dedup decisions, traversal semantics) live in
:mod:`lineage.service`; a store only keeps facts and answers small questions about them.
The contract every backend honours, checked by ``tests/storage/``:

- Writes are atomic per call: after a failure or a retry nothing is half-written, and
  re-running the same call is harmless (edges and events are idempotent by key).
- ``commit_version`` is the one place a version index is assigned: ``v0, v1, ...`` per
  artifact, consecutive and without duplicates even with concurrent writers in several
  processes. A live version with the same digest is returned instead of a new one.
- ``latest`` always names the newest live version; other aliases are unique per artifact.
- Deleting a version is a tombstone: the node and its edges stay (history is not rewritten),
  its aliases go, and its manifest no longer keeps blobs alive.
- ``import_records`` copies facts from another store keeping their identity (run ids,
  version indexes, event uids): running it twice changes nothing the second time.
- ``expand`` returns every edge leaving (``down``) or entering (``up``) the given nodes, in one
  round trip, costing about the size of its answer.

Optional fast paths, each a one-method protocol below (``isinstance`` tells whether a store
has it; mypy checks its signature). :mod:`lineage.traversal` uses them when a store has them
and falls back to ``expand`` otherwise; each must give exactly the answer of that fallback:

- :class:`ExpandRows` ``expand_rows(ids, direction) -> list[(source, target, kind)]``:
  ``expand`` without building an ``Edge`` per edge (a 100,000-run tree walk meets ~400,000).
- :class:`WalkRows` ``walk_rows(start, direction, hops) -> (nodes, edges, truncated)``: a
  whole breadth-first walk in one round trip, for a server where a round trip per level
  costs more than the level (``edges``: every edge between two found nodes; ``truncated``
  when an edge leads from a found node to one beyond ``hops``).
- :class:`Reaches` ``reaches(source, target, direction) -> bool``: the cycle check, likewise
  in one trip.
- :class:`WalkRecords` ``walk_records(start, direction, hops, runs=True) -> (nodes, edges,
  truncated, versions, runs)``: ``walk_rows`` and the records of the nodes found
  (``get_versions``/``get_runs`` of them) in one round trip; ``runs`` empty when not asked.
- :class:`TreeRows` ``tree_rows(root, generations) -> (versions, triples, truncated)``: the
  derivation tree under a version: the records of the versions within ``2 * generations``
  hops (``None``: no limit) and a ``(version, output, run)`` triple per run among them
  consuming one and producing the other (what ``lineage.traversal.derived_triples`` makes
  of the walk's edges).
- :class:`DeriveRows` ``derive_rows(ids) -> list[(version, output or None, run)]``: one
  generation of a derivation tree in one round trip, not two ``expand`` calls: per run
  consuming one of ``ids``, per version it produced, a triple (``None``: no outputs). What
  pages of a tree (:mod:`lineage.pages`) walk.
- :class:`GroupState` ``artifact_states(keys)``, ``versions_with_digests(wanted)``,
  ``update_runs(changes)``: a group of OpenLineage events read and written set-based
  (:mod:`lineage.openlineage.plan`; without them, event by event): ``(type, next index,
  newest index, its created_at)`` of each stored artifact of ``(project, name)`` keys (within
  a transaction, what a concurrent ``commit_version`` cannot change before the commit); the
  committed version of lowest index of each ``(project, name, digest)``, as
  ``commit_version`` finds it; ``update_run`` of many runs, without reading them back.
- :class:`WriteRun` ``write_run(run, edges, commits) -> [(version, fresh)]``: a run, its edges
  and its commits (one an artifact) as one write, all or nothing: what ``create_run``,
  ``add_edges`` and a ``commit_version`` each give, in one transaction, shared with
  concurrent callers' on a store that group-commits (Neo4j). :func:`write_run` takes it
  when a store has it, else makes the three calls in one ``transaction()`` (SQLite).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from lineage.filters import Filter, Order
from lineage.records import ArtifactRecord, Edge, Event, RunRecord, TokenRecord, VersionRecord

__all__ = [
    "DeriveRows",
    "Direction",
    "ExpandRows",
    "GraphStore",
    "GroupState",
    "NewVersion",
    "Reaches",
    "Row",
    "TreeRows",
    "WalkRecords",
    "WalkRows",
    "WriteRun",
    "check_run_write",
    "write_run",
]

Direction = Literal["down", "up"]
Row = tuple[str, str, str]  # an edge as (source, target, kind)


@dataclass(frozen=True, kw_only=True)
class NewVersion:
    """A validated version about to be committed by ``run_id``."""

    project: str
    name: str
    type: str
    digest: str
    size: int
    file_count: int
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    run_id: str
    at: float
    event_at: float | None = None  # the producing OpenLineage event's time


class GraphStore(Protocol):
    url: str

    def close(self) -> None: ...

    # runs
    def create_run(self, run: RunRecord) -> None: ...
    def update_run(self, run_id: str, changes: Mapping[str, Any]) -> RunRecord | None: ...
    def get_runs(self, ids: Collection[str]) -> dict[str, RunRecord]: ...
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
        """Runs by ``(started_at, id)``, ascending (``newest_first``: descending), from the
        one after ``after`` in that order."""
        ...

    def count_runs(
        self, project: str, *, job_type: str | None = None, state: str | None = None
    ) -> int: ...
    def count_project_runs(
        self, projects: Collection[str], *, job_type: str | None = None, state: str | None = None
    ) -> dict[str, int]:
        """:meth:`count_runs` of each of ``projects`` (0 for a project of none), in one round
        trip for all of them."""
        ...

    def child_runs(self, run_id: str) -> list[RunRecord]:
        """The runs whose ``parent`` is ``run_id``, oldest first."""
        ...

    def find_runs(
        self,
        project: str | None,
        where: Filter | None,
        order: Order,
        *,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[RunRecord]:
        """Runs passing ``where`` (as :func:`lineage.filters.matches` says), sorted by
        ``order`` (:func:`lineage.filters.order_key`) then id, after the key ``after``
        (``[rank, value, id]``)."""
        ...

    def find_versions(
        self,
        project: str | None,
        where: Filter | None,
        order: Order,
        *,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[VersionRecord]:
        """Versions (deleted ones too) as :meth:`find_runs`."""
        ...

    def count_found_runs(self, project: str | None, where: Filter | None) -> int:
        """How many runs :meth:`find_runs` returns without a limit, counted by the store."""
        ...

    def count_found_versions(self, project: str | None, where: Filter | None) -> int:
        """How many versions :meth:`find_versions` returns without a limit."""
        ...

    # artifacts and versions
    def list_projects(self) -> list[str]: ...
    def project_samples(self, projects: Collection[str]) -> dict[str, RunRecord | VersionRecord]:
        """For each of ``projects``, a record that says where it came from (an OpenLineage
        job's or dataset's namespace): one of its runs (the smallest id), else the latest
        version of its first artifact by name; none for a project of neither. One round trip
        for all of them."""
        ...

    def get_artifact(self, project: str, name: str) -> ArtifactRecord | None: ...
    def list_artifacts(
        self,
        project: str | None = None,
        *,
        type: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[ArtifactRecord]: ...
    def commit_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        """Create the artifact if new, then the version, its PRODUCED edge and ``latest``.

        Returns ``(version, True)``; or ``(existing, False)`` and writes nothing when a live
        version of the artifact already has ``new.digest``. Raises TypeMismatch when the
        artifact exists with another type.
        """
        ...

    def get_versions(self, ids: Collection[str]) -> dict[str, VersionRecord]: ...
    def find_alias(self, project: str, name: str, alias: str) -> VersionRecord | None: ...
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
        """An artifact's versions by index, from the one after index ``after`` in that order
        (``newest_first``: by descending index, from the one below ``after``)."""
        ...

    def count_versions(self, project: str, name: str, *, include_deleted: bool = False) -> int: ...
    def list_aliases(self, project: str, name: str) -> list[tuple[str, VersionRecord]]:
        """An artifact's aliases, by name, each with the version it names."""
        ...

    def artifact_summaries(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, list[tuple[str, VersionRecord]]]]:
        """Of each artifact of ``keys`` (project, name): :meth:`count_versions` (live ones)
        and :meth:`list_aliases`, for all of them in one or two round trips (an artifact
        that is not stored: 0 and no alias)."""
        ...

    def set_alias(
        self, project: str, name: str, alias: str, index: int | None, event: Event | None
    ) -> None:
        """Point ``alias`` at version ``index`` (None removes it), appending ``event``."""
        ...

    def update_version(
        self, version_id: str, changes: Mapping[str, Any], events: Sequence[Event]
    ) -> VersionRecord: ...
    def delete_version(self, version_id: str, event: Event) -> None: ...
    def manifest_digests(self) -> set[str]:
        """Digests of the manifests of every live version (what keeps blobs alive)."""
        ...

    # edges and traversal
    def add_edges(self, edges: Iterable[Edge]) -> None: ...
    def expand(self, ids: Collection[str], direction: Direction) -> list[Edge]: ...

    # the event log
    def append_events(self, events: Iterable[Event]) -> None: ...
    def events(
        self, project: str, *, target_prefix: str | None = None, after: int | None = None
    ) -> list[Event]: ...

    # copying between stores (push, pull, sync)
    def import_records(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        artifacts: Sequence[ArtifactRecord] = (),
        versions: Sequence[VersionRecord] = (),
        edges: Sequence[Edge] = (),
        events: Sequence[Event] = (),
    ) -> dict[str, int]:
        """Merge records as they are; return how many of each kind were new.

        Versions keep their index and state; ``versions[i].aliases`` are applied (an alias held
        elsewhere moves); the artifact's next index stays above every imported index. Events
        are deduplicated by ``uid``.
        """
        ...

    # storage locations: which artifact a storage URI is (a reference the SDK logged, a
    # dataset an OpenLineage job named); the first artifact to claim a URI keeps it
    def add_locations(self, locations: Iterable[tuple[str, str, str]]) -> None:
        """Record ``(uri, project, name)`` triples; a URI already recorded is left as it is."""
        ...

    def find_locations(self, uris: Collection[str]) -> dict[str, tuple[str, str]]:
        """``uri -> (project, artifact name)`` of the URIs recorded."""
        ...

    # API tokens (the server's; stored hashed)
    def create_token(self, token: TokenRecord) -> None: ...
    def find_token(self, digest: str) -> TokenRecord | None: ...
    def revoke_token(self, token_id: str) -> bool: ...


# optional fast paths (see the module docstring) ---------------------------------------------


@runtime_checkable
class ExpandRows(Protocol):
    def expand_rows(self, ids: Collection[str], direction: Direction) -> list[Row]: ...


@runtime_checkable
class WalkRows(Protocol):
    def walk_rows(
        self, start: Collection[str], direction: Direction, hops: int | None
    ) -> tuple[set[str], set[Row], bool]: ...


@runtime_checkable
class WalkRecords(Protocol):
    def walk_records(
        self, start: Collection[str], direction: Direction, hops: int | None, *, runs: bool = True
    ) -> tuple[set[str], set[Row], bool, dict[str, VersionRecord], dict[str, RunRecord]]: ...


@runtime_checkable
class TreeRows(Protocol):
    def tree_rows(
        self, root: str, generations: int | None
    ) -> tuple[dict[str, VersionRecord], list[Row], bool]: ...


@runtime_checkable
class Reaches(Protocol):
    def reaches(self, source: str, target: str, direction: Direction) -> bool: ...


@runtime_checkable
class DeriveRows(Protocol):
    def derive_rows(self, ids: Collection[str]) -> list[tuple[str, str | None, str]]: ...


@runtime_checkable
class GroupState(Protocol):
    def artifact_states(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int, int | None, float | None]]: ...
    def versions_with_digests(
        self, wanted: Collection[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], VersionRecord]: ...
    def update_runs(self, changes: Mapping[str, Mapping[str, Any]]) -> None: ...


@runtime_checkable
class WriteRun(Protocol):
    def write_run(
        self, run: RunRecord, edges: Iterable[Edge], commits: Sequence[NewVersion]
    ) -> list[tuple[VersionRecord, bool]]: ...


def check_run_write(
    run: RunRecord, commits: Sequence[NewVersion], edges: Sequence[Edge] = ()
) -> None:
    """Refuse (ValueError) what ``write_run`` cannot write as one: an edge that does not join
    ``run``, a commit made by another run, two commits to one artifact (a group numbers one
    commit an artifact)."""
    for edge in edges:
        if run.id not in (edge.source, edge.target):
            raise ValueError(f"write_run of run {run.id!r} takes its own edges, not {edge}")
    keys = set()
    for new in commits:
        if new.run_id != run.id:
            raise ValueError(f"write_run of run {run.id!r} got a commit by run {new.run_id!r}")
        key = (new.project, new.name)
        if key in keys:
            raise ValueError(
                f"write_run commits one version an artifact; two of {new.project}/{new.name}"
            )
        keys.add(key)


def write_run(
    graph: GraphStore, run: RunRecord, edges: Iterable[Edge], commits: Sequence[NewVersion]
) -> list[tuple[VersionRecord, bool]]:
    """A run, its edges and its commits stored as one write (all or nothing), each commit's
    ``(version, fresh)`` in order: the store's WriteRun fast path, else ``create_run``,
    ``add_edges`` and ``commit_version`` in one ``transaction()`` (a store without one: in
    turn)."""
    edges = list(edges)
    check_run_write(run, commits, edges)
    if isinstance(graph, WriteRun):
        return graph.write_run(run, edges, commits)
    transaction = getattr(graph, "transaction", None)
    with transaction() if transaction is not None else contextlib.nullcontext():
        graph.create_run(run)
        if edges:
            graph.add_edges(edges)
        return [graph.commit_version(new) for new in commits]
