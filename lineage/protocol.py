"""The LineageService protocol: what the SDK, the CLI and :class:`lineage.Api` call.

Two implementations: :class:`lineage.service.Service` applies every rule in this process, over
a GraphStore and a BlobStore; :class:`lineage.remote.RemoteService` sends each call to a
lineage server, whose ``Service`` applies them. :class:`lineage.client.Client` picks one by the
store URL; code above it is typed against this protocol only, and mypy checks that both
classes satisfy it (the assignments at the bottom), with the same signatures (a test compares
them with ``inspect.signature``).

The contract both honour:

- The same answer for the same question: the same records (``RunRecord``, ``VersionRecord``,
  ``Subgraph``, ...), and the same refusal, a :class:`lineage.errors.LineageError` subclass
  (a remote refusal is raised from the server's ``extensions.code``).
- Refs are ``name``, ``name:v3``, ``name:alias`` or ``project/name:...``; a ref without a
  project uses ``default_project`` where the method takes one. Traversals also start from a
  run id.
- Writes are validated before anything is written; a refused call changes nothing.
- A method that cannot work through a server (``gc``: the blobs are the server's to collect)
  raises a LineageError saying where to run it instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lineage.manifest import Manifest
from lineage.names import Ref
from lineage.pages import DEFAULT_PAGE, Page
from lineage.records import (
    ArtifactRecord,
    CodeVersion,
    Event,
    RunRecord,
    Subgraph,
    VersionRecord,
)
from lineage.storage.blobs import BlobStore

if TYPE_CHECKING:
    from lineage.service import GcReport

__all__ = ["LineageService"]


class LineageService(Protocol):
    @property
    def blobs(self) -> BlobStore:
        """Where the bytes of versions are (the server's, through HTTP, for a remote one)."""
        ...

    # runs
    def start_run(
        self,
        *,
        project: str,
        job_type: str | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        code: CodeVersion | None = None,
        host: str | None = None,
        pid: int | None = None,
        run_id: str | None = None,
        started_at: float | None = None,
        user: str | None = None,
    ) -> RunRecord: ...
    def tag(
        self,
        target: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        default_project: str | None = None,
        actor: str | None = None,
    ) -> RunRecord | VersionRecord:
        """Add and remove tags of a run (by id) or a version (by ref); logged."""
        ...

    def get_run(self, run_id: str) -> RunRecord: ...
    def get_runs(self, ids: Iterable[str]) -> dict[str, RunRecord]: ...
    def child_runs(self, run_id: str) -> list[RunRecord]:
        """The runs whose parent is ``run_id``, oldest first."""
        ...

    def active_run(self, run_id: str) -> RunRecord:
        """The run, if it is still running; RunNotActive otherwise."""
        ...

    def finish_run(
        self,
        run_id: str,
        *,
        state: str = "finished",
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
        at: float | None = None,
    ) -> RunRecord: ...
    def update_summary(self, run_id: str, summary: Mapping[str, Any]) -> RunRecord: ...
    def reap_stale(self, project: str | None = None) -> list[RunRecord]:
        """Mark ``crashed`` every running run of this host whose process is gone."""
        ...

    def runs(
        self,
        project: str | None = None,
        *,
        job_type: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        """Runs oldest first; ``after`` the ``(started_at, id)`` of the previous page's last."""
        ...

    def count_runs(
        self, project: str, *, job_type: str | None = None, state: str | None = None
    ) -> int: ...
    def find_runs(
        self,
        project: str | None = None,
        *,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[RunRecord]:
        """Runs passing a filter (:mod:`lineage.filters`), in ``order_by`` then by id."""
        ...

    def find_versions(
        self,
        project: str | None = None,
        *,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[VersionRecord]:
        """Versions passing a filter, in ``order_by`` then by id."""
        ...

    def count_found_runs(self, project: str | None = None, *, filter: str | None = None) -> int:
        """How many runs :meth:`find_runs` finds."""
        ...

    def count_found_versions(self, project: str | None = None, *, filter: str | None = None) -> int:
        """How many versions :meth:`find_versions` finds."""
        ...

    def projects(self) -> list[str]: ...

    # versions
    def resolve(
        self,
        ref: str | Ref,
        default_project: str | None = None,
        *,
        include_deleted: bool = False,
    ) -> VersionRecord:
        """The version a ref names; a deleted version only with ``include_deleted``."""
        ...

    def latest(self, project: str, name: str) -> VersionRecord | None:
        """The newest live version of an artifact, or None."""
        ...

    def use(self, run_id: str, ref: str | Ref, role: str | None = None) -> VersionRecord:
        """Record that a running run consumed a version (refused if it would close a cycle);
        ``role="base"``: the base model of a merge (kept in the run's facets)."""
        ...

    def check_manifest(self, digest: str) -> Manifest:
        """The manifest, once it and every blob it needs are stored (IntegrityError if not)."""
        ...

    def commit(
        self,
        run_id: str,
        *,
        name: str,
        type: str,
        manifest: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
    ) -> tuple[VersionRecord, bool]:
        """Commit a version whose manifest and blobs are stored; ``(version, created)``."""
        ...

    def set_alias(self, ref: str, alias: str, *, actor: str | None = None) -> VersionRecord: ...
    def remove_alias(
        self, project: str, name: str, alias: str, *, actor: str | None = None
    ) -> None: ...
    def update_version(
        self,
        ref: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> VersionRecord: ...
    def delete_version(
        self, ref: str, *, force: bool = False, actor: str | None = None
    ) -> VersionRecord: ...
    def alias_history(self, ref: str, default_project: str | None = None) -> list[Event]:
        """Every move of an alias (``name:production``), oldest first."""
        ...

    def events(self, ref: str, default_project: str | None = None) -> list[Event]:
        """The event log of a version (``name:v3``) or of a whole artifact (``name``)."""
        ...

    def manifest(self, version: VersionRecord) -> Manifest: ...

    # artifacts
    def artifacts(
        self, project: str | None = None, *, type: str | None = None
    ) -> list[ArtifactRecord]: ...
    def get_artifact(self, project: str, name: str) -> ArtifactRecord: ...
    def versions(
        self,
        project: str,
        name: str,
        *,
        include_deleted: bool = False,
        limit: int | None = None,
        after: int | None = None,
        newest_first: bool = False,
    ) -> list[VersionRecord]:
        """An artifact's versions, oldest (or newest) first; ``after`` the index of the last
        one of the previous page."""
        ...

    def count_versions(self, project: str, name: str, *, include_deleted: bool = False) -> int: ...
    def aliases(self, project: str, name: str) -> list[tuple[str, VersionRecord]]:
        """An artifact's aliases, by name, each with the version it names."""
        ...

    # the runs around a version, the versions around a run
    def producers(self, version: VersionRecord) -> list[RunRecord]: ...
    def consumers(self, version: VersionRecord) -> list[RunRecord]: ...
    def consumed(self, ids: Sequence[str]) -> set[str]:
        """Which of these versions some run consumed."""
        ...

    def run_io(self, run_id: str) -> tuple[list[VersionRecord], list[VersionRecord]]:
        """The versions a run consumed and produced."""
        ...

    # traversals
    def lineage(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        default_project: str | None = None,
    ) -> Subgraph: ...
    def impact(self, ref: str, *, default_project: str | None = None) -> Subgraph: ...
    def tree(
        self, ref: str, depth: int | None = 20, *, default_project: str | None = None
    ) -> Subgraph: ...
    def path(
        self, source: str, target: str, *, default_project: str | None = None
    ) -> Subgraph | None: ...

    # big answers in pages (lineage.pages: order, cursors, edges, truncated)
    def lineage_page(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Page:
        """``first`` nodes of :meth:`lineage` after the cursor ``after``."""
        ...

    def lineage_pages(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Iterator[Page]:
        """Every page of :meth:`lineage` from ``after`` on."""
        ...

    def lineage_count(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        default_project: str | None = None,
        cap: int | None = None,
    ) -> int:
        """How many nodes the pages of this lineage hold (past ``cap``: ``cap + 1``)."""
        ...

    def tree_page(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Page:
        """``first`` versions of :meth:`tree` after the cursor ``after``."""
        ...

    def tree_pages(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Iterator[Page]:
        """Every page of :meth:`tree` from ``after`` on."""
        ...

    def tree_count(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        default_project: str | None = None,
        cap: int | None = None,
    ) -> int:
        """How many versions the pages of this derivation tree hold (past ``cap``: ``cap + 1``)."""
        ...

    # garbage
    def gc(self, *, dry_run: bool = False, grace: float = 3600.0) -> GcReport: ...


if TYPE_CHECKING:  # mypy checks that both services satisfy the protocol
    from typing import cast

    from lineage.remote import RemoteService
    from lineage.service import Service

    _local: LineageService = cast(Service, None)
    _remote: LineageService = cast(RemoteService, None)
