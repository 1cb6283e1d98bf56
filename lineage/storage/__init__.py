"""Choosing stores by URL: the one factory for graph stores and blob stores.

Graph stores: a directory path or ``sqlite:///dir`` (the embedded default, ``<dir>/lineage.db``),
``neo4j://`` / ``bolt://`` (Neo4j). Blob stores: a path or ``file:///dir`` (local),
``s3://bucket/prefix`` (S3-compatible object store).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lineage.errors import UnsupportedScheme
from lineage.statcache import StatCache
from lineage.storage.blobs import BlobStore
from lineage.storage.graph import GraphStore
from lineage.storage.staging import recover_stale

__all__ = ["DEFAULT_STORE", "Stores", "open_blobs", "open_graph", "open_stores"]

DEFAULT_STORE = ".lineage"
_SERVER_SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")


@dataclass(frozen=True, kw_only=True)
class Stores:
    graph: GraphStore
    blobs: BlobStore
    cache: StatCache

    def close(self) -> None:
        try:
            self.graph.close()
        finally:
            self.cache.close()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    # a Windows drive letter or a plain path has no real scheme
    return "" if len(scheme) <= 1 else scheme


def local_dir(store: str) -> Path | None:
    """The local directory a store URL lives in, or None for a server."""
    scheme = _scheme(store)
    if scheme == "":
        return Path(store)
    if scheme in ("sqlite", "file"):
        return Path(urlsplit(store).path)
    return None


def open_graph(store: str) -> GraphStore:
    scheme = _scheme(store)
    directory = local_dir(store)
    if directory is not None:
        from lineage.storage.sqlite import SQLiteGraphStore

        return SQLiteGraphStore(directory / "lineage.db")
    if scheme in _SERVER_SCHEMES:
        from lineage.storage.neo4j import Neo4jGraphStore  # type: ignore[import-not-found,unused-ignore]

        graph: GraphStore = Neo4jGraphStore(store)
        return graph
    raise UnsupportedScheme(
        f"unsupported store {store!r}: use a directory, sqlite:///dir, neo4j://host:7687 "
        "or bolt://host:7687",
        url=store,
    )


def open_blobs(blobs: str) -> BlobStore:
    scheme = _scheme(blobs)
    if scheme in ("", "file"):
        from lineage.storage.local import LocalBlobStore

        path = urlsplit(blobs).path if scheme else blobs
        return LocalBlobStore(path)
    if scheme == "s3":
        from lineage.storage.s3 import S3BlobStore  # type: ignore[import-not-found,unused-ignore]

        store: BlobStore = S3BlobStore.from_url(blobs)
        return store
    raise UnsupportedScheme(
        f"unsupported blob store {blobs!r}: use a directory, file:///dir or s3://bucket/prefix",
        url=blobs,
    )


def open_stores(store: str | None = None, blobs: str | None = None) -> Stores:
    """Open the graph and blob stores named by arguments, else environment, else defaults.

    ``store``: ``LINEAGE_STORE`` or ``./.lineage``. ``blobs``: ``LINEAGE_BLOBS``, else
    ``<store dir>/blobs``, or ``./.lineage/blobs`` when the graph store is a server.
    """
    store = store or os.environ.get("LINEAGE_STORE") or DEFAULT_STORE
    directory = local_dir(store)
    home = directory if directory is not None else Path(DEFAULT_STORE)
    blobs = blobs or os.environ.get("LINEAGE_BLOBS") or str(home / "blobs")
    graph = open_graph(store)
    try:
        blob_store = open_blobs(blobs)
        cache = StatCache(home / "statcache.db")
    except BaseException:
        graph.close()
        raise
    recover_stale(graph, blob_store)
    return Stores(graph=graph, blobs=blob_store, cache=cache)
