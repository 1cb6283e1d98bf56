"""``lineage.Api``: the read side of the SDK (and the few edits that need no run)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from lineage.client import Client, check_store
from lineage.diff import DEPTH, LineageDiff
from lineage.diff import diff as _diff
from lineage.errors import InvalidRef
from lineage.filters import literal, parse
from lineage.moments import parse_time
from lineage.names import check_name
from lineage.pages import DEFAULT_PAGE, Page
from lineage.protocol import LineageService
from lineage.records import ArtifactRecord, Event, RunRecord, Subgraph
from lineage.service import GcReport
from lineage.versions import ArtifactVersion
from lineage.view import Mode, View, ask

__all__ = ["Api", "at"]


def at(ref: str, as_of: str | float | None) -> str:
    """``ref`` as of a time: ``REF@SECONDS`` (a ref that has its ``@TIME`` keeps it)."""
    if as_of is None or "@" in ref:
        return ref
    return f"{ref}@{parse_time(as_of)!r}"


class Api:
    """Query what was recorded.

    >>> api = lineage.Api()
    >>> g = api.lineage("surgery/policy:v4", direction="upstream", depth=20)
    >>> [n.ref for n in g.nodes if n.kind == "artifact_version"]

    Refs without a project use ``project``, else ``LINEAGE_PROJECT``, else the store's only
    project. A local store directory that holds no store is refused (``NotFound``) rather
    than created empty; ``create=True`` creates it (the CLI's writing verbs do).
    """

    def __init__(
        self,
        store: str | None = None,
        blobs: str | None = None,
        project: str | None = None,
        *,
        token: str | None = None,
        mode: str | None = None,
        create: bool = False,
    ) -> None:
        project = project or os.environ.get("LINEAGE_PROJECT")
        # refused before any store is opened: a bad name must not read as an empty project
        self._project = None if project is None else check_name(project, "project")
        if not create:  # a typo in a path must not read as an empty history
            check_store(store, mode)
        self._client = Client.shared(store, blobs, token=token, mode=mode)
        self.service: LineageService = self._client.service  # local, or a server's

    @property
    def project(self) -> str | None:
        if self._project is None:
            projects = self.service.projects()
            if len(projects) == 1:
                return projects[0]
        return self._project

    def artifact_version(self, ref: str, as_of: str | float | None = None) -> ArtifactVersion:
        """The version ``ref`` names; with ``as_of`` (a time: ISO, ``"2 days ago"``, epoch
        seconds; or ``REF@TIME``) the one it named then, as it was then."""
        return ArtifactVersion(self.service.resolve(at(ref, as_of), self.project), self._client)

    __call__ = artifact_version

    def artifacts(
        self, project: str | None = None, type: str | None = None
    ) -> list[ArtifactRecord]:
        return self.service.artifacts(project or self.project, type=type)

    def versions(
        self,
        name: str | None = None,
        project: str | None = None,
        *,
        filter: str | None = None,
        order_by: str | None = None,
    ) -> list[ArtifactVersion]:
        """An artifact's live versions; or, with ``filter`` (:mod:`lineage.filters`), the
        versions of the project (of every project when none is set) that pass it, in
        ``order_by`` (default ``created``; ``-size`` descending)::

            api.versions(filter="metadata.epochs = 3 and type = model", order_by="-size")
        """
        project = project or self.project
        if filter is not None or order_by is not None:
            if name is not None:
                if filter is not None:
                    parse(filter, "versions")  # refused as written
                named = f"name = {literal(name)}"
                filter = f"({filter}) and {named}" if filter is not None else named
            found = self.service.find_versions(project, filter=filter, order_by=order_by)
            return [ArtifactVersion(record, self._client) for record in found]
        if name is None:
            raise InvalidRef("versions of which artifact? give a name, or a filter", ref="")
        if project is None:
            raise InvalidRef(f"artifact {name!r} names no project and none is set", ref=name)
        return [
            ArtifactVersion(record, self._client) for record in self.service.versions(project, name)
        ]

    def run(self, run_id: str) -> RunRecord:
        return self.service.get_run(run_id)

    def parent(self, run_id: str) -> RunRecord | None:
        """The run that ``run_id`` is a task of (OpenLineage's parent run facet), if known."""
        parent = self.service.get_run(run_id).parent
        return None if parent is None else self.service.get_runs([parent]).get(parent)

    def children(self, run_id: str) -> list[RunRecord]:
        """The runs whose parent is ``run_id`` (an Airflow DAG run's tasks), oldest first."""
        self.service.get_run(run_id)
        return self.service.child_runs(run_id)

    def runs(
        self,
        project: str | None = None,
        job_type: str | None = None,
        state: str | None = None,
        *,
        filter: str | None = None,
        order_by: str | None = None,
    ) -> list[RunRecord]:
        """Runs oldest first; with ``filter`` (:mod:`lineage.filters`) those that pass it, in
        ``order_by`` (default ``created``; ``-summary.accuracy`` descending)::

            api.runs(filter="config.lr < 1e-4 and summary.accuracy >= 0.9 and tag = round3")
        """
        project = project or self.project
        if filter is None and order_by is None:
            return self.service.runs(project, job_type=job_type, state=state)
        if job_type is None and state is None:
            return self.service.find_runs(project, filter=filter, order_by=order_by)
        if filter is not None:
            parse(filter, "runs")  # refused as the caller wrote it, columns and all
        parts = [f"({filter})"] if filter is not None else []
        parts += [f"job_type = {literal(job_type)}"] if job_type is not None else []
        parts += [f"state = {literal(state)}"] if state is not None else []
        joined = " and ".join(parts) or None
        return self.service.find_runs(project, filter=joined, order_by=order_by)

    def lineage(
        self,
        ref: str,
        direction: str = "upstream",
        depth: int | None = 20,
        as_of: str | float | None = None,
    ) -> Subgraph:
        """Runs and versions upstream (how it was made) or downstream (what it fed) of a node;
        with ``as_of``, only what existed then, each as it was then (:mod:`lineage.history`)."""
        return self.service.lineage(at(ref, as_of), direction, depth, default_project=self.project)

    def tree(self, ref: str, depth: int | None = 20, as_of: str | float | None = None) -> Subgraph:
        """The derivation tree under a version: version -> version edges labelled by run."""
        return self.service.tree(at(ref, as_of), depth, default_project=self.project)

    def lineage_pages(
        self,
        ref: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        as_of: str | float | None = None,
    ) -> Iterator[Page]:
        """:meth:`lineage` a page at a time, for answers too big to hold: nodes by
        generation then id, each page with the edges it completes (:mod:`lineage.pages`).

        >>> for page in api.lineage_pages("base:v0", "downstream", None, first=1000):
        ...     for node in page.nodes: ...
        """
        return self.service.lineage_pages(
            at(ref, as_of), direction, depth, first=first, after=after,
            default_project=self.project,
        )  # fmt: skip

    def tree_pages(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        as_of: str | float | None = None,
    ) -> Iterator[Page]:
        """:meth:`tree` a page at a time (see :meth:`lineage_pages`)."""
        return self.service.tree_pages(
            at(ref, as_of), depth, first=first, after=after, default_project=self.project
        )

    def alias_history(self, ref: str) -> list[Event]:
        """Every move of an alias (``policy:production``), oldest first."""
        return self.service.alias_history(ref, self.project)

    def view(
        self,
        ref: str,
        mode: Mode = "upstream",
        depth: int | None = 20,
        as_of: str | float | None = None,
    ) -> View:
        """The answer with every node's state and label, as every surface shows it.

        ``mode`` is ``upstream``, ``downstream``, ``both`` or ``tree``.

        >>> v = api.view("policy:v0", "tree", depth=2)
        >>> sorted(v.dead_ends), sorted(v.truncated), sorted(v.deleted)
        """
        return ask(self, at(ref, as_of), mode, depth)

    def path(self, source: str, target: str) -> Subgraph | None:
        return self.service.path(source, target, default_project=self.project)

    def impact(self, ref: str, as_of: str | float | None = None) -> Subgraph:
        return self.service.impact(at(ref, as_of), default_project=self.project)

    def diff(self, a: str, b: str, depth: int = DEPTH) -> LineageDiff:
        """Why are these two different? Two versions (refs) or two runs (ids) compared:
        files, metadata and description, how each was made (the producing runs' config,
        summary, code, job type) and ancestry (merge bases, the runs on each side since
        them, the upstream inputs that differ, aligned by artifact).

        >>> d = api.diff("policy:production", "policy:v33")
        >>> d.ancestry.merge_bases, d.to_json()["ancestry"]["inputs"]
        """
        return _diff(self.service, a, b, default_project=self.project, depth=depth)

    def events(self, ref: str) -> list[Event]:
        return self.service.events(ref, self.project)

    def tag(
        self, target: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> RunRecord | ArtifactVersion:
        """Add and remove tags of a run (by id) or a version (by ref); the event log keeps
        each change and who made it::

            api.tag("policy:v7", add=["round3"])
            api.runs(filter="tag = round3")
        """
        found = self.service.tag(target, add=add, remove=remove, default_project=self.project)
        if isinstance(found, RunRecord):
            return found
        return ArtifactVersion(found, self._client)

    def set_alias(self, ref: str, alias: str) -> ArtifactVersion:
        record = self.service.set_alias(self._qualify(ref), alias)
        return ArtifactVersion(record, self._client)

    def update(
        self,
        ref: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> ArtifactVersion:
        record = self.service.update_version(
            self._qualify(ref), metadata=metadata, description=description
        )
        return ArtifactVersion(record, self._client)

    def delete(self, ref: str, *, force: bool = False) -> None:
        """Delete a version (refused while it holds aliases other than latest, unless forced)."""
        self.service.delete_version(self._qualify(ref), force=force)

    def gc(self, *, dry_run: bool = False, grace: float = 3600.0) -> GcReport:
        return self.service.gc(dry_run=dry_run, grace=grace)

    def reap_stale(self) -> list[RunRecord]:
        return self.service.reap_stale(self.project)

    def _qualify(self, ref: str) -> str:
        return self.service.resolve(ref, self.project).ref
