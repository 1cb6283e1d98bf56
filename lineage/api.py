"""``lineage.Api``: the read side of the SDK (and the few edits that need no run)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lineage.client import Client
from lineage.errors import InvalidRef
from lineage.names import check_name
from lineage.protocol import LineageService
from lineage.records import ArtifactRecord, Event, RunRecord, Subgraph
from lineage.service import GcReport
from lineage.versions import ArtifactVersion
from lineage.view import Mode, View, ask

__all__ = ["Api"]


class Api:
    """Query what was recorded.

    >>> api = lineage.Api()
    >>> g = api.lineage("surgery/policy:v4", direction="upstream", depth=20)
    >>> [n.ref for n in g.nodes if n.kind == "artifact_version"]

    Refs without a project use ``project``, else ``LINEAGE_PROJECT``, else the store's only
    project.
    """

    def __init__(
        self,
        store: str | None = None,
        blobs: str | None = None,
        project: str | None = None,
        *,
        token: str | None = None,
        mode: str | None = None,
    ) -> None:
        project = project or os.environ.get("LINEAGE_PROJECT")
        # refused before any store is opened: a bad name must not read as an empty project
        self._project = None if project is None else check_name(project, "project")
        self._client = Client.shared(store, blobs, token=token, mode=mode)
        self.service: LineageService = self._client.service  # local, or a server's

    @property
    def project(self) -> str | None:
        if self._project is None:
            projects = self.service.projects()
            if len(projects) == 1:
                return projects[0]
        return self._project

    def artifact_version(self, ref: str) -> ArtifactVersion:
        return ArtifactVersion(self.service.resolve(ref, self.project), self._client)

    __call__ = artifact_version

    def artifacts(
        self, project: str | None = None, type: str | None = None
    ) -> list[ArtifactRecord]:
        return self.service.artifacts(project or self.project, type=type)

    def versions(self, name: str, project: str | None = None) -> list[ArtifactVersion]:
        project = project or self.project
        if project is None:
            raise InvalidRef(f"artifact {name!r} names no project and none is set", ref=name)
        return [
            ArtifactVersion(record, self._client) for record in self.service.versions(project, name)
        ]

    def run(self, run_id: str) -> RunRecord:
        return self.service.get_run(run_id)

    def runs(
        self, project: str | None = None, job_type: str | None = None, state: str | None = None
    ) -> list[RunRecord]:
        return self.service.runs(project or self.project, job_type=job_type, state=state)

    def lineage(self, ref: str, direction: str = "upstream", depth: int | None = 20) -> Subgraph:
        """Runs and versions upstream (how it was made) or downstream (what it fed) of a node."""
        return self.service.lineage(ref, direction, depth, default_project=self.project)

    def tree(self, ref: str, depth: int | None = 20) -> Subgraph:
        """The derivation tree under a version: version -> version edges labelled by run."""
        return self.service.tree(ref, depth, default_project=self.project)

    def view(self, ref: str, mode: Mode = "upstream", depth: int | None = 20) -> View:
        """The answer with every node's state and label, as every surface shows it.

        ``mode`` is ``upstream``, ``downstream``, ``both`` or ``tree``.

        >>> v = api.view("policy:v0", "tree", depth=2)
        >>> sorted(v.dead_ends), sorted(v.truncated), sorted(v.deleted)
        """
        return ask(self, ref, mode, depth)

    def path(self, source: str, target: str) -> Subgraph | None:
        return self.service.path(source, target, default_project=self.project)

    def impact(self, ref: str) -> Subgraph:
        return self.service.impact(ref, default_project=self.project)

    def events(self, ref: str) -> list[Event]:
        return self.service.events(ref, self.project)

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
