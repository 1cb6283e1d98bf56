"""From files on disk to a stored manifest: stat, hash (only what changed), copy (only what's new).

The cost model: a file whose stat key (size, mtime, ctime, inode) is cached costs a ``stat``
and is stored only if the blob store lacks it; a new or changed file is copied and hashed in
one pass. References are hashed in place, never copied.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lineage.artifact import PendingFile, PendingReference
from lineage.hashing import hash_file
from lineage.manifest import Entry, write_manifest
from lineage.progress import bar
from lineage.statcache import StatCache, StatKey, stat_key
from lineage.storage.blobs import BlobStore

__all__ = ["store_files"]

logger = logging.getLogger(__name__)


def store_files(
    entries: list[PendingFile | PendingReference],
    blobs: BlobStore,
    cache: StatCache,
    *,
    progress: bool | None = None,
) -> str:
    """Store every file's bytes and the manifest; return the manifest digest."""
    stats: dict[str, tuple[Path, StatKey]] = {}
    for entry in entries:
        if entry.source is None:
            continue
        st = os.stat(entry.source)
        stats[entry.name] = (entry.source, stat_key(st))
    known = cache.lookup((str(path), key) for path, key in stats.values())
    digests: dict[str, str] = {}
    sizes: dict[str, int] = {name: key[0] for name, (_, key) in stats.items()}
    to_hash: list[PendingReference] = []
    to_store: list[tuple[str, Path, str | None]] = []
    for entry in entries:
        cached = known.get(str(entry.source)) if entry.source else None
        if cached:
            digests[entry.name] = cached
        if isinstance(entry, PendingReference):
            if entry.checksum and not cached and entry.source is not None:
                to_hash.append(entry)
        elif not cached:
            to_store.append((entry.name, entry.source, None))
    cached_files = [e for e in entries if isinstance(e, PendingFile) and e.name in digests]
    absent = blobs.missing(digests[e.name] for e in cached_files)
    to_store += [
        (e.name, e.source, digests[e.name]) for e in cached_files if digests[e.name] in absent
    ]

    total = sum(stats[name][1][0] for name, _, _ in to_store) + sum(
        stats[e.name][1][0] for e in to_hash
    )
    fresh: list[tuple[str, StatKey, str]] = []
    with bar("storing", total, enabled=progress) as advance:
        if to_store:
            results = blobs.put_files([(src, expected) for _, src, expected in to_store], advance)
            for (name, src, _), (digest, size) in zip(to_store, results, strict=True):
                digests[name] = digest
                sizes[name] = size
                if stat_key(os.stat(src)) == stats[name][1]:  # unchanged while we read it
                    fresh.append((str(src), stats[name][1], digest))
        for ref in to_hash:
            assert ref.source is not None
            digest, size = hash_file(ref.source)
            advance(size)
            digests[ref.name] = digest
            sizes[ref.name] = size
            fresh.append((str(ref.source), stats[ref.name][1], digest))
    cache.store(fresh)
    logger.debug(
        "stored %d of %d files, hashed %d references", len(to_store), len(entries), len(to_hash)
    )

    manifest = []
    for entry in entries:
        size = sizes.get(entry.name, 0)
        if isinstance(entry, PendingReference):
            manifest.append(
                Entry(
                    path=entry.name,
                    size=size if entry.source is not None else entry.size,
                    uri=entry.uri,
                    digest=digests.get(entry.name),
                    etag=entry.etag,
                    version_id=entry.version_id,
                    last_modified=entry.last_modified,
                )
            )
        else:
            manifest.append(Entry(path=entry.name, size=size, digest=digests[entry.name]))
    return write_manifest(blobs, manifest)
