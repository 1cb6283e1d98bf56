"""From a manifest to files on disk, every byte checked against its digest.

Files already present with the right digest (by the stat cache, else by hashing them) are
left alone: downloading into a directory that holds the version costs a ``stat`` per file.
References are fetched from their source and refused when the source no longer matches.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lineage.errors import BlobNotFound, DigestMismatch, IntegrityError, UnsupportedScheme
from lineage.hashing import CHUNK, Hasher, hash_file
from lineage.manifest import Entry, Manifest
from lineage.progress import bar
from lineage.statcache import StatCache, stat_key
from lineage.storage.blobs import BlobStore

__all__ = ["download", "verify"]


def download(
    manifest: Manifest,
    root: Path,
    blobs: BlobStore,
    cache: StatCache,
    *,
    progress: bool | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    targets = {entry.path: real_root / entry.path for entry in manifest}
    for path in targets.values():
        if not path.resolve().is_relative_to(real_root):
            raise IntegrityError(f"{path} would be written outside {root}", path=str(path))
    present: dict[str, tuple[int, int, int, int]] = {}
    for name, path in targets.items():
        with contextlib.suppress(FileNotFoundError):
            present[name] = stat_key(os.stat(path))
    known = cache.lookup((str(targets[name]), key) for name, key in present.items())
    todo = [
        entry
        for entry in manifest
        if known.get(str(targets[entry.path])) != _expected(entry) or _expected(entry) is None
    ]
    fresh = []
    with bar("downloading", sum(e.size for e in todo), enabled=progress) as advance:
        for entry in todo:
            target = targets[entry.path]
            if entry.path in present and _expected(entry) is not None:
                digest, _ = hash_file(target)
                if digest == entry.digest:
                    fresh.append((str(target), present[entry.path], digest))
                    advance(entry.size)
                    continue
            digest = _fetch(entry, target, blobs)
            fresh.append((str(target), stat_key(os.stat(target)), digest))
            advance(entry.size)
    cache.store(fresh)
    return root


def _expected(entry: Entry) -> str | None:
    return entry.digest


def _fetch(entry: Entry, target: Path, blobs: BlobStore) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    if entry.is_reference:
        source = _open_reference(entry)
    else:
        assert entry.digest is not None
        try:
            source = blobs.open(entry.digest)
        except BlobNotFound:
            raise BlobNotFound(
                f"{entry.path}: blob {entry.digest} is missing from {blobs.url}",
                path=entry.path,
                digest=entry.digest,
            ) from None
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".lineage-")
    try:
        hasher = Hasher()
        with source, os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        digest: str = hasher.hexdigest()
        if entry.digest is not None and digest != entry.digest:
            where = entry.uri if entry.is_reference else f"blob {entry.digest[:16]}..."
            raise DigestMismatch(
                f"{entry.path}: content of {where} hashes to {digest[:16]}..., "
                f"expected {entry.digest[:16]}... (corrupt or changed since it was logged)",
                path=entry.path,
                digest=entry.digest,
            )
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return digest


def _open_reference(entry: Entry):  # type: ignore[no-untyped-def]
    assert entry.uri is not None
    parts = urlsplit(entry.uri)
    if parts.scheme != "file":
        raise UnsupportedScheme(f"{entry.path}: cannot fetch {entry.uri}", uri=entry.uri)
    path = Path(unquote(parts.path))
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise IntegrityError(
            f"{entry.path}: referenced file {path} no longer exists", path=entry.path
        ) from None


def verify(manifest: Manifest, blobs: BlobStore, *, progress: bool | None = None) -> list[str]:
    """Re-hash every stored blob and reference of a version; return the problems found."""
    problems = []
    with bar("verifying", manifest.size, enabled=progress) as advance:
        for entry in manifest:
            try:
                source = _open_reference(entry) if entry.is_reference else None
                if source is None:
                    assert entry.digest is not None
                    source = blobs.open(entry.digest)
                hasher = Hasher()
                size = 0
                with source:
                    while chunk := source.read(CHUNK):
                        hasher.update(chunk)
                        size += len(chunk)
                if entry.digest is not None and hasher.hexdigest() != entry.digest:
                    problems.append(f"{entry.path}: content does not match digest {entry.digest}")
                elif size != entry.size:
                    problems.append(f"{entry.path}: size {size}, expected {entry.size}")
            except (BlobNotFound, IntegrityError) as exc:
                problems.append(f"{entry.path}: {exc}")
            advance(entry.size)
    return problems
