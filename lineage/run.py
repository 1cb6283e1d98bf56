"""``lineage.init`` and ``Run``: the write side of the SDK."""

from __future__ import annotations

import atexit
import logging
import os
import socket
import traceback
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from lineage.artifact import Artifact
from lineage.client import Client
from lineage.errors import InvalidInput, LineageError, RunNotActive
from lineage.gitinfo import code_version
from lineage.ingest import store_files
from lineage.records import RunRecord
from lineage.versions import ArtifactVersion

__all__ = ["Run", "init"]

logger = logging.getLogger(__name__)


class Run:
    """One execution of a process. Use as a context manager, or call :meth:`finish`.

    An exception inside the ``with`` block marks the run ``failed`` with the error recorded;
    a process that exits without finishing marks it ``finished``; a process that dies leaves
    it ``running`` until ``lineage runs --stale`` or the next ``init`` on this host marks it
    ``crashed``.
    """

    def __init__(self, record: RunRecord, client: Client) -> None:
        self._record = record
        self._client = client
        self._outcome: tuple[str, str | None] = ("finished", None)  # what exit records
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.name} ({self.id}) {self.state}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.state != "running":
            return
        if exc is None:
            self.finish()
            return
        detail = "".join(traceback.format_exception_only(exc_type, exc)).strip()
        self._outcome = ("failed", detail)
        try:
            self.finish(state="failed", error=detail)
        except LineageError as failure:  # the store is gone too: the user's error comes first
            logger.warning("could not mark run %s failed (will try at exit): %s", self.id, failure)

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def state(self) -> str:
        return self._record.state

    @property
    def config(self) -> Mapping[str, Any]:
        return self._record.config

    @property
    def summary(self) -> Mapping[str, Any]:
        return self._record.summary

    @property
    def record(self) -> RunRecord:
        return self._record

    def _check_active(self) -> None:
        if self._record.state != "running":
            raise RunNotActive(
                f"run {self.name} ({self.id}) is {self.state}; start a new run to log more",
                run_id=self.id,
            )

    def use_artifact(self, ref: str | ArtifactVersion) -> ArtifactVersion:
        """Record that this run consumes a version; return it (call ``.download()`` for files)."""
        self._check_active()
        target = ref.ref if isinstance(ref, ArtifactVersion) else ref
        record = self._client.service.use(self.id, target)
        return ArtifactVersion(record, self._client)

    def log_artifact(
        self, artifact: Artifact, aliases: Sequence[str] | None = None
    ) -> ArtifactVersion:
        """Store the artifact's files, then commit them as a version produced by this run.

        Byte-identical content returns the existing version. Blobs are durable before the
        version exists, so a crash in between leaves no visible version (``lineage gc``
        reclaims the bytes).
        """
        self._check_active()
        if not isinstance(artifact, Artifact):
            raise InvalidInput(f"log_artifact takes a lineage.Artifact, not {type(artifact)!r}")
        if isinstance(aliases, str):
            aliases = [aliases]
        from lineage.names import check_alias, check_json

        wanted = [check_alias(alias) for alias in aliases or ()]
        metadata = check_json(artifact.metadata, "metadata")
        digest = store_files(artifact.entries, self._client.blobs, self._client.cache)
        record, _created = self._client.service.commit(
            self.id,
            name=artifact.name,
            type=artifact.type,
            manifest=digest,
            description=artifact.description,
            metadata=metadata,
            aliases=wanted,
        )
        return ArtifactVersion(record, self._client)

    def log(self, summary: Mapping[str, Any]) -> None:
        """Merge values into the run's summary (final metrics)."""
        self._check_active()
        self._record = self._client.service.update_summary(self.id, summary)

    def finish(
        self,
        state: str = "finished",
        *,
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        self._check_active()
        self._record = self._client.service.finish_run(
            self.id, state=state, summary=summary, error=error
        )
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        if self._record.state == "running":
            state, error = self._outcome
            try:
                self.finish(state=state, error=error)
            except Exception:
                logger.exception("could not finish run %s at exit", self.id)


def init(
    project: str,
    job_type: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    notes: str | None = None,
    store: str | None = None,
    blobs: str | None = None,
    token: str | None = None,
    mode: str | None = None,
) -> Run:
    """Start a run.

    >>> with lineage.init(project="surgery", job_type="finetune", config={"lr": 3e-5}) as run:
    ...     base = run.use_artifact("policy:latest")

    ``store`` defaults to ``LINEAGE_STORE`` or ``./.lineage``; ``blobs`` to ``LINEAGE_BLOBS`` or
    the ``blobs`` folder beside the graph store. ``store="http://host:8000"`` logs to a lineage
    server (``token`` or ``LINEAGE_TOKEN``); ``mode="offline"`` (or ``LINEAGE_MODE``) logs to the
    local default store even then, for ``lineage sync`` to send later.
    """
    client = Client.shared(store, blobs, token=token, mode=mode)
    service = client.service
    for crashed in service.reap_stale():
        logger.warning("run %s (%s) had died; marked crashed", crashed.name, crashed.id)
    record = service.start_run(
        project=project,
        job_type=job_type,
        name=name,
        config=config,
        tags=tags,
        notes=notes,
        code=code_version(),
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    return Run(record, client)
