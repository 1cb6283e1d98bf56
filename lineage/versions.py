"""``ArtifactVersion``: the SDK's handle on one committed version."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lineage.download import download, download_file, verify
from lineage.errors import IntegrityError, NotFound
from lineage.manifest import Entry, Manifest
from lineage.records import Event, RunRecord, VersionRecord
from lineage.storage.blobs import BlobStore

if TYPE_CHECKING:
    from lineage.client import Client

__all__ = ["ArtifactVersion", "VersionFile"]


class ArtifactVersion:
    """One immutable version. Attributes read the record as of when the handle was made."""

    def __init__(self, record: VersionRecord, client: Client) -> None:
        self._record = record
        self._client = client
        self._manifest: Manifest | None = None

    def __repr__(self) -> str:
        return f"<ArtifactVersion {self.ref} {self.type} {self.size} bytes>"

    @property
    def record(self) -> VersionRecord:
        return self._record

    @property
    def ref(self) -> str:
        return self._record.ref

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def type(self) -> str:
        return self._record.type

    @property
    def version(self) -> str:
        return f"v{self._record.index}"

    @property
    def index(self) -> int:
        return self._record.index

    @property
    def digest(self) -> str:
        return self._record.digest

    @property
    def size(self) -> int:
        return self._record.size

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._record.metadata

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def aliases(self) -> tuple[str, ...]:
        return self._record.aliases

    @property
    def tags(self) -> tuple[str, ...]:
        return self._record.tags

    @property
    def created_by(self) -> str | None:
        return self._record.created_by

    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = self._client.service.manifest(self._record)
        return self._manifest

    def files(self) -> list[Entry]:
        """Every file of the version, sorted by path."""
        return list(self.manifest())

    def file(self, path: str) -> VersionFile:
        """One file of the version, by its path in the version (NotFound if it has none).

        >>> api.artifact_version("policy:production").file("weights.bin").download("w.bin")
        """
        entry = self.manifest().entries.get(path)
        if entry is None:
            shown = path if len(path) <= 200 else path[:200] + "..."
            raise NotFound(f"{self.ref} has no file {shown!r}", ref=self.ref, path=shown)
        return VersionFile(entry, self, self._client.blobs)

    def download(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Write every file under ``root`` (default ``./artifacts/<project>/<name>:vN``), each
        verified, and return the folder.

        The folder ends up holding exactly the version's files. It may be new or empty, hold
        only paths of the version, or be a folder an earlier download of this same artifact
        (any version) wrote: then every other file in it is removed, files added by hand too.
        Any other folder (your files, another artifact's download) is refused (``Conflict``)
        before anything is written: a download never deletes what it did not download. The
        folder's ``.lineage-download.json`` says which version it holds (``add_dir`` skips it).
        """
        target = (
            Path(root)
            if root is not None
            else Path("artifacts") / self.project / f"{self.name}:{self.version}"
        )
        return download(
            self.manifest(), target, self._client.blobs, self._client.cache, ref=self.ref
        )

    def verify(self) -> None:
        """Re-hash every byte; raise IntegrityError naming each file that does not match."""
        problems = verify(self.manifest(), self._client.blobs)
        if problems:
            raise IntegrityError(
                f"{self.ref} failed verification: " + "; ".join(problems), ref=self.ref
            )

    def logged_by(self) -> list[RunRecord]:
        """Runs that produced this version (the creator first, then reproductions)."""
        return self._client.service.producers(self._record)

    def used_by(self) -> list[RunRecord]:
        return self._client.service.consumers(self._record)

    def events(self) -> list[Event]:
        return self._client.service.events(self.ref)

    def set_alias(self, alias: str) -> None:
        self._record = self._client.service.set_alias(self.ref, alias)

    def remove_alias(self, alias: str) -> None:
        self._client.service.remove_alias(self.project, self.name, alias)
        self.refresh()

    def update(
        self, *, metadata: Mapping[str, Any] | None = None, description: str | None = None
    ) -> None:
        """Edit metadata or description; the change goes to the event log."""
        self._record = self._client.service.update_version(
            self.ref, metadata=metadata, description=description
        )

    def refresh(self) -> None:
        self._record = self._client.service.resolve(self.ref)


class VersionFile:
    """One file of a version: ``.path .size .digest .uri``, and ``download``."""

    def __init__(self, entry: Entry, version: ArtifactVersion, blobs: BlobStore) -> None:
        self.entry = entry
        self.version = version
        self._blobs = blobs

    def __repr__(self) -> str:
        return f"<VersionFile {self.version.ref} {self.path} {self.size} bytes>"

    @property
    def path(self) -> str:
        return self.entry.path

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def digest(self) -> str | None:
        return self.entry.digest

    @property
    def uri(self) -> str | None:
        return self.entry.uri

    def download(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write this file alone to ``path`` (default: its name, in the working directory; an
        existing folder: its name inside it), streamed and verified against its digest
        before it takes that name. Only this file's bytes are fetched."""
        name = self.entry.path.rsplit("/", 1)[-1]
        target = Path(path) if path is not None else Path(name)
        if target.is_dir():
            target = target / name
        return download_file(self.entry, target, self._blobs)
