"""From a manifest to files on disk, every byte checked against its digest.

Files already present with the right digest (by the stat cache, else by hashing them) are
left alone: downloading into a directory that holds the version costs a ``stat`` per file
(an ``lstat``, which also shows that no symlink leads the write outside the directory).
Missing files are copied and hashed in one pass by a few threads, written under a
temporary name beside the target and renamed into place only when their digest matches.
References are fetched from their source and refused when the source no longer matches.

What else a folder may hold, so that two artifacts' files never mix in one folder:

- an absent or empty folder, or one holding only paths of the version: the download goes ahead;
- a folder that a download of the *same artifact* (project and name, any version) left,
  known by the marker file it wrote at its root (``.lineage-download.json``): it is
  lineage's, and every file in it that is not in the version is removed first (files added
  there by hand too), with the folders left empty;
- anything else (your own files; a folder marked as another artifact's download, even if
  its paths match): refused with ``Conflict`` naming what is there, before anything is
  written. Nothing outside a previous download of the same artifact is ever deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from lineage.errors import (
    BlobNotFound,
    Conflict,
    DigestMismatch,
    IntegrityError,
    StoreUnavailable,
    from_os_error,
)
from lineage.files import DOWNLOAD_MARKER
from lineage.hashing import copy_and_hash, hash_fd, hash_file, hash_stream
from lineage.manifest import Entry, Manifest
from lineage.progress import bar
from lineage.references import check, open_reference
from lineage.statcache import StatCache, StatKey, stat_key
from lineage.storage.blobs import BlobStore

__all__ = ["download", "download_file", "verify"]

THREADS = min(4, (os.cpu_count() or 1) + 1)


def download(
    manifest: Manifest,
    root: Path,
    blobs: BlobStore,
    cache: StatCache,
    *,
    progress: bool | None = None,
    ref: str | None = None,
) -> Path:
    """Write every file of ``manifest`` under ``root``, each verified; return ``root``.

    ``ref`` (``project/name:vN``) names the version: the folder is marked as a download of
    its artifact, which lets a later download of that artifact clean it (module docstring).
    """
    try:
        return _download(manifest, root, blobs, cache, progress=progress, ref=ref)
    except OSError as exc:  # the target cannot be written: one error naming the path
        raise from_os_error(exc, root) from exc


def download_file(entry: Entry, target: Path, blobs: BlobStore) -> Path:
    """Write one file of a version to ``target``, streamed from its blob (or its reference's
    source) under a temporary name and renamed into place only once its digest matches.
    Nothing else of the version is fetched. Returns ``target``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _fetch(entry, str(target), blobs)
    except OSError as exc:
        raise from_os_error(exc, target) from exc
    return target


def _download(
    manifest: Manifest,
    root: Path,
    blobs: BlobStore,
    cache: StatCache,
    *,
    progress: bool | None,
    ref: str | None,
) -> Path:
    if root.exists() and not root.is_dir():  # mkdir would say "File exists", and no more
        raise Conflict(
            f"{root} is a file: a version downloads into a folder (one file of it: "
            "version.file(PATH).download(TARGET), lineage get REF PATH -o TARGET)",
            path=str(root),
        )
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    entries = list(manifest)
    _claim(real_root, root, {entry.path for entry in entries}, ref)
    targets = {entry.path: os.path.join(real_root, entry.path) for entry in entries}
    present = _inspect(targets, real_root, root)
    known = cache.lookup((targets[name], key) for name, key in present.items())
    todo = [e for e in entries if e.digest is None or known.get(targets[e.path]) != e.digest]
    for folder in sorted({os.path.dirname(targets[e.path]) for e in todo}):
        os.makedirs(folder, exist_ok=True)

    fresh: list[tuple[str, StatKey, str]] = []

    def place(entry: Entry) -> tuple[str, StatKey, str]:
        target = targets[entry.path]
        if entry.path in present and entry.digest is not None:
            digest, _ = hash_file(target)  # there, but not in the cache: hash, don't copy
            if digest == entry.digest:
                return target, present[entry.path], digest
        digest = _fetch(entry, target, blobs)
        return target, stat_key(os.stat(target)), digest

    with bar("downloading", sum(e.size for e in todo), enabled=progress) as advance:
        try:
            _each(todo, place, fresh.append, advance)
        finally:
            cache.store(fresh)
    return root


def _claim(real_root: Path, root: Path, paths: set[str], ref: str | None) -> None:
    """Make ``root`` a folder for ``ref``'s files alone, or refuse (module docstring)."""
    artifact = None if ref is None else ref.rpartition(":")[0]
    marked = _marked(real_root)
    strays = _strays(real_root, paths)
    ours = artifact is not None and marked == artifact
    if not ours and (strays or (marked is not None and artifact is not None)):
        shown = ", ".join(strays[:3]) + (f" and {len(strays) - 3} more" if len(strays) > 3 else "")
        what = f"a download of {marked}" if marked else "files that no download put there"
        raise Conflict(
            f"cannot download {ref or 'the version'} into {root}: it holds {what}"
            + (f" ({shown})" if shown else "")
            + "; download into a new or empty folder, or remove them",
            path=str(root),
        )
    _remove(real_root, strays)
    if artifact is not None and DOWNLOAD_MARKER not in paths:
        marker = real_root / DOWNLOAD_MARKER
        temp = marker.with_name(f"{DOWNLOAD_MARKER}.{os.urandom(6).hex()}")
        temp.write_text(json.dumps({"artifact": artifact, "version": ref}) + "\n")
        os.replace(temp, marker)


def _strays(real_root: Path, paths: set[str]) -> list[str]:
    """Files (and symlinks) under the folder that are not among ``paths``, sorted."""
    strays = []
    for folder, dirs, names in os.walk(real_root):
        rel = os.path.relpath(folder, real_root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        dirs[:] = sorted(d for d in dirs if d not in links)
        for name in [*names, *links]:
            path = prefix + name
            if path not in paths and path != DOWNLOAD_MARKER:
                strays.append(path)
    return sorted(strays)


def _marked(real_root: Path) -> str | None:
    """The artifact (``project/name``) whose download left this folder, if one did."""
    try:
        found = json.loads((real_root / DOWNLOAD_MARKER).read_text())
    except (OSError, ValueError):
        return None
    artifact = found.get("artifact") if isinstance(found, dict) else None
    return artifact if isinstance(artifact, str) else None


def _remove(real_root: Path, strays: list[str]) -> None:
    """Delete these files (a symlink itself, never its target), then the folders they emptied."""
    folders: set[Path] = set()
    for path in strays:
        target = real_root / path
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        folders.update(parent for parent in target.parents if parent.is_relative_to(real_root))
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        if folder != real_root:
            with contextlib.suppress(OSError):  # not empty: it holds files of the version
                folder.rmdir()


def _inspect(targets: dict[str, str], real_root: Path, root: Path) -> dict[str, StatKey]:
    """Stat keys of the targets that exist; refuse any whose path leaves ``real_root``.

    Entry paths are relative and free of ``..`` (checked when the manifest is read), so only
    a symlink already in the directory can lead outside it: ``lstat`` finds those, and only
    those are resolved. Each folder is looked at once.
    """
    folders: dict[str, bool] = {str(real_root): True}

    def inside(path: str) -> bool:
        return Path(path).resolve().is_relative_to(real_root)

    def folder_ok(folder: str) -> bool:
        ok = folders.get(folder)
        if ok is None:
            ok = folder_ok(os.path.dirname(folder))
            if ok:
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    ok = not stat.S_ISLNK(os.lstat(folder).st_mode) or inside(folder)
            folders[folder] = ok
        return ok

    present: dict[str, StatKey] = {}
    for name, target in targets.items():
        try:
            if not folder_ok(os.path.dirname(target)):
                raise IntegrityError(f"{target} would be written outside {root}", path=target)
            st = os.lstat(target)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISLNK(st.st_mode):
            if not inside(target):
                raise IntegrityError(f"{target} would be written outside {root}", path=target)
            try:
                st = os.stat(target)
            except FileNotFoundError:
                continue
        present[name] = stat_key(st)
    return present


def _each(
    todo: list[Entry],
    place: Callable[[Entry], tuple[str, StatKey, str]],
    done: Callable[[tuple[str, StatKey, str]], None],
    advance: Callable[[int], None],
) -> None:
    """``place`` every entry on a few threads; stop at the first error and raise it."""
    errors: list[BaseException] = []
    work = iter(todo)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                entry = None if errors else next(work, None)
            if entry is None:
                return
            try:
                result = place(entry)
            except BaseException as exc:  # noqa: BLE001 - raised by the caller's thread
                with lock:
                    errors.append(exc)
                return
            with lock:
                done(result)
            advance(entry.size)

    threads = min(THREADS, len(todo))
    if threads <= 1:
        worker()
    else:
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(worker) for _ in range(threads)]:
                future.result()
    if errors:
        raise errors[0]


def _fetch(entry: Entry, target: str, blobs: BlobStore) -> str:
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
    folder, name = os.path.split(target)
    fd, temp = _create(folder, name)
    try:
        with source:
            digest = _copy(source, fd)
        if entry.digest is not None and digest != entry.digest:
            where = entry.uri if entry.is_reference else f"blob {entry.digest[:16]}..."
            raise DigestMismatch(
                f"{entry.path}: content of {where} hashes to {digest[:16]}..., "
                f"expected {entry.digest[:16]}... (corrupt or changed since it was logged)",
                path=entry.path,
                digest=entry.digest,
            )
        os.close(fd)
        fd = -1
        os.replace(temp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return digest


def _create(folder: str, name: str) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        temp = os.path.join(folder, f".lineage-{os.urandom(6).hex()}-{name[:64]}")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def _copy(source: BinaryIO, fd: int) -> str:
    """Copy ``source`` into ``fd``, returning the digest of exactly the bytes written."""
    try:
        src = source.fileno()
    except (AttributeError, OSError, ValueError):
        with os.fdopen(os.dup(fd), "wb") as out:
            return hash_stream(source, out)[0]
    return copy_and_hash(src, fd)[0]


def _hash(source: BinaryIO) -> tuple[str, int]:
    try:
        return hash_fd(source.fileno())
    except (AttributeError, OSError, ValueError):
        return hash_stream(source)


def _open_reference(entry: Entry) -> BinaryIO:
    """The referenced bytes, refused (naming the file) when the source changed."""
    assert entry.uri is not None
    return open_reference(
        entry.uri,
        name=entry.path,
        etag=entry.etag,
        version_id=entry.version_id,
        last_modified=entry.last_modified,
    )


def verify(manifest: Manifest, blobs: BlobStore, *, progress: bool | None = None) -> list[str]:
    """Re-hash every stored blob and reference of a version; return the problems found."""
    problems = []
    with bar("verifying", manifest.size, enabled=progress) as advance:
        for entry in manifest:
            try:
                if entry.is_reference and entry.digest is None:
                    # s3:// and http(s)://: the source's identity, asked without downloading
                    assert entry.uri is not None
                    problem = check(
                        entry.uri,
                        name=entry.path,
                        size=entry.size,
                        etag=entry.etag,
                        version_id=entry.version_id,
                        last_modified=entry.last_modified,
                    )
                    if problem:
                        problems.append(problem)
                    advance(entry.size)
                    continue
                if entry.is_reference:
                    source = _open_reference(entry)
                else:
                    assert entry.digest is not None
                    source = blobs.open(entry.digest)
                with source:
                    digest, size = _hash(source)
                if entry.digest is not None and digest != entry.digest:
                    problems.append(f"{entry.path}: content does not match digest {entry.digest}")
                elif size != entry.size:
                    problems.append(f"{entry.path}: size {size}, expected {entry.size}")
            except (BlobNotFound, IntegrityError, StoreUnavailable) as exc:
                problems.append(f"{entry.path}: {exc}")
            advance(entry.size)
    return problems
