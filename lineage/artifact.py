"""``lineage.Artifact``: the builder a run fills with files, then logs as a new version."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lineage import files
from lineage.errors import InvalidPath
from lineage.names import check_json, check_manifest_path, check_name, check_text

__all__ = ["Artifact", "PendingFile", "PendingReference"]

DEFAULT_MAX_OBJECTS = 10_000


@dataclass(frozen=True, kw_only=True)
class PendingFile:
    name: str
    source: Path


@dataclass(frozen=True, kw_only=True)
class PendingReference:
    name: str
    uri: str
    source: Path | None  # a local file (file://), hashed when logged
    checksum: bool
    size: int = 0
    etag: str | None = None
    version_id: str | None = None
    last_modified: str | None = None


def _check_encodable(path: str | Path) -> None:
    """Refuse a path that is not valid UTF-8 (undecodable bytes become surrogates on POSIX):
    no store could keep it faithfully, and the refusal comes before anything is written."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
        raise InvalidPath(
            f"file name {shown} is not valid UTF-8; rename it to log it", path=shown
        ) from None


class Artifact:
    """A new version in the making: name, type, files, and what to say about it.

    >>> art = Artifact("mnist", type="dataset", metadata={"rows": 60000})
    >>> art.add_dir("data/mnist")              # every file, named by its path inside the dir
    >>> art.add_file("README.md", name="docs/README.md")
    """

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = check_name(name, "artifact name")
        self.type = check_name(type, "artifact type")
        check_text(description, "description")
        self.description = description
        self.metadata: dict[str, Any] = check_json(metadata, "metadata")
        self._entries: dict[str, PendingFile | PendingReference] = {}

    @property
    def entries(self) -> list[PendingFile | PendingReference]:
        return [self._entries[name] for name in sorted(self._entries)]

    def _add(self, entry: PendingFile | PendingReference) -> None:
        if entry.name in self._entries:
            raise InvalidPath(
                f"{entry.name!r} is already in artifact {self.name!r}", path=entry.name
            )
        self._entries[entry.name] = entry

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None) -> str:
        """Add one file; ``name`` is its path inside the artifact (default: the file's name)."""
        source = Path(local_path)
        if not source.is_file():
            raise InvalidPath(f"{source} is not a file", path=str(source))
        _check_encodable(files.resolved(source))
        if name is not None:
            _check_encodable(name)
        target = check_manifest_path(name if name is not None else source.name)
        self._add(PendingFile(name=target, source=files.resolved(source)))
        return target

    def add_dir(self, local_path: str | os.PathLike[str], prefix: str = "") -> int:
        """Add every file under a directory; symlinks may not point outside it."""
        root = Path(local_path)
        if not root.is_dir():
            raise InvalidPath(f"{root} is not a directory", path=str(root))
        if prefix:
            check_manifest_path(prefix.rstrip("/"))
        found = files.walk(root)
        staged = []
        for rel, source in found:
            _check_encodable(source)
            name = f"{prefix.rstrip('/')}/{rel}" if prefix else rel
            check_manifest_path(name)
            if name in self._entries:
                raise InvalidPath(f"{name!r} is already in artifact {self.name!r}", path=name)
            staged.append(PendingFile(name=name, source=source))
        for entry in staged:
            self._entries[entry.name] = entry
        return len(staged)

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int = DEFAULT_MAX_OBJECTS,
    ) -> int:
        """Track bytes that stay where they are (``file://``, ``s3://``, ``http(s)://``).

        A directory or prefix expands to one entry per object, named below ``name`` (default:
        its last path part); more than ``max_objects`` objects is an error. Returns how many
        entries were added.
        """
        from lineage.references import locate

        check_text(uri, "reference")  # before anything is asked of its scheme's store
        found = locate(uri, max_objects)
        base = name if name is not None else Path(unquote(urlsplit(uri).path.rstrip("/"))).name
        staged = []
        for item in found:
            if item.source is not None:
                _check_encodable(item.source)
            if item.relative:
                target = f"{base.rstrip('/')}/{item.relative}" if base else item.relative
            else:
                target = base
            _check_encodable(target)
            staged.append(
                PendingReference(
                    name=check_manifest_path(target),
                    uri=item.uri,
                    source=item.source,
                    checksum=checksum,
                    size=item.size,
                    etag=item.etag,
                    version_id=item.version_id,
                    last_modified=item.last_modified,
                )
            )
        names = [entry.name for entry in staged]
        clash = next((n for n in names if n in self._entries), None)
        if clash is None and len(set(names)) != len(names):
            clash = next(n for n in names if names.count(n) > 1)
        if clash is not None:
            raise InvalidPath(f"{clash!r} is already in artifact {self.name!r}", path=clash)
        for entry in staged:
            self._entries[entry.name] = entry
        return len(staged)
