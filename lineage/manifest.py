"""Manifests: the path -> content table of one artifact version, stored as content-addressed pages.

A version's manifest is split into pages at content-defined boundaries (an entry ends a page
when the hash of its path says so, about one in 64, and at most 256 entries make a page),
each page a blob, plus a small root blob listing the pages. The root's digest is the
version's digest, so identical content always has the same digest, and a new version that
changes one file writes one page and one root. For the 10,000 files of ``bench/``: 158
pages of 5 KB (median; 29 KB at most) and an 11 KB root, so a one-file change stores about
16 KB of manifest (40 KB at worst) instead of the 1.1 MB a flat manifest would rewrite.

The cap of 256 entries bounds the worst case (it was 1,024: a 49 KB page); 64 entries a
page is near the optimum of page bytes plus root bytes per change for 10,000 entries.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lineage.errors import IntegrityError
from lineage.hashing import check_digest, hash_bytes
from lineage.names import check_manifest_path
from lineage.storage.blobs import BlobStore

__all__ = ["FORMAT", "Entry", "Manifest", "read_manifest", "write_manifest"]

FORMAT = "lineage.manifest/1"
_BOUNDARY = 64
_MAX_PAGE = 256


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One file of a version: stored bytes (``digest``), or a reference to bytes elsewhere."""

    path: str
    size: int
    digest: str | None = None
    uri: str | None = None
    etag: str | None = None
    version_id: str | None = None
    last_modified: str | None = None

    def __post_init__(self) -> None:
        check_manifest_path(self.path)
        if self.digest is not None:
            check_digest(self.digest)
        if self.digest is None and self.uri is None:
            raise ValueError(f"entry {self.path!r} has neither a digest nor a uri")

    @property
    def is_reference(self) -> bool:
        return self.uri is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size}
        for key in _OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


_OPTIONAL = ("digest", "uri", "etag", "version_id", "last_modified")


@dataclass(frozen=True, kw_only=True)
class Manifest:
    entries: Mapping[str, Entry]
    digest: str | None = None

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.entries.values())

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries[path] for path in sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def blob_digests(self) -> set[str]:
        return {e.digest for e in self.entries.values() if e.digest and not e.is_reference}


def _encode(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _pages(entries: Iterable[Entry]) -> Iterator[list[Entry]]:
    page: list[Entry] = []
    for entry in sorted(entries, key=lambda e: e.path):
        page.append(entry)
        cut = int(hash_bytes(entry.path.encode())[:8], 16) % _BOUNDARY == 0
        if cut or len(page) >= _MAX_PAGE:
            yield page
            page = []
    if page:
        yield page


def encode_manifest(entries: Iterable[Entry]) -> tuple[bytes, list[bytes]]:
    """The root blob and the page blobs of a manifest, without storing them."""
    encoded = encode(entries)
    return encoded.root, [page for _, page in encoded.pages]


def _encode_pages(groups: list[list[Entry]]) -> tuple[bytes, list[tuple[str, bytes]]]:
    pages = [_encode({"entries": [e.to_json() for e in group]}) for group in groups]
    hashed = [(hash_bytes(page), page) for page in pages]
    root = {
        "format": FORMAT,
        "pages": [[digest, len(group)] for (digest, _), group in zip(hashed, groups, strict=True)],
    }
    return _encode(root), hashed


@dataclass(frozen=True)
class Encoded:
    """A manifest encoded and hashed, not stored yet: :func:`store_encoded` stores it."""

    digest: str  # the root's: the version's digest
    root: bytes
    pages: tuple[tuple[str, bytes], ...]  # (digest, page) of each page, in order
    groups: tuple[list[Entry], ...]  # each page's entries, in the same order


def encode(entries: Iterable[Entry]) -> Encoded:
    """The manifest of ``entries``, encoded and hashed once: its digest is known before
    anything is stored, and :func:`store_encoded` need not encode it again."""
    groups = list(_pages(entries))
    root, pages = _encode_pages(groups)
    return Encoded(hash_bytes(root), root, tuple(pages), tuple(groups))


def encode_one(entry: Entry) -> Encoded:
    """``encode([entry])``: a manifest of one entry is one page, whatever its path's hash."""
    root, pages = _encode_pages([[entry]])
    return Encoded(hash_bytes(root), root, tuple(pages), ([entry],))


def store_encoded(blobs: BlobStore, encoded: Encoded, *, every_page: bool = False) -> str:
    """Store the pages of an :func:`encode` result (only those the store lacks; with
    ``every_page``, each one: a put makes a file that may be unsynced durable, where a look
    would trust it), then its root; return the digest."""
    by_digest = dict(encoded.pages)
    for digest in by_digest if every_page else blobs.missing(by_digest):
        blobs.put_bytes(by_digest[digest])
    remember_encoded(encoded)
    return blobs.put_bytes(encoded.root)


def remember_encoded(encoded: Encoded) -> None:
    """Keep the entries of an encoded manifest's pages in this process's memory, as storing
    it does (:func:`read_page` reads them there)."""
    _written.remember(zip((d for d, _ in encoded.pages), encoded.groups, strict=True))


def write_manifest(blobs: BlobStore, entries: Iterable[Entry]) -> str:
    """Store the manifest's pages (only those the store lacks), then its root; return the digest."""
    return store_encoded(blobs, encode(entries))


def manifest_digests(blobs: BlobStore, digest: str) -> set[str]:
    """The root digest and its page digests: every blob the manifest itself occupies."""
    root = _load(blobs, digest)
    return {digest, *(page for page, _ in root["pages"])}


def manifest_pages(blobs: BlobStore, digest: str) -> list[tuple[str, int]]:
    """The pages of a manifest, in path order: ``(page digest, entry count)`` each."""
    return [(page, count) for page, count in _load(blobs, digest)["pages"]]


def read_page(blobs: BlobStore, digest: str) -> tuple[Entry, ...]:
    """The entries of one manifest page (from this process's memory when it wrote them)."""
    known = _written.recall([digest])
    if known and not blobs.missing(known):
        return known[digest]
    return tuple(Entry(**item) for item in _load(blobs, digest)["entries"])


def read_manifest(blobs: BlobStore, digest: str) -> Manifest:
    root = _load(blobs, digest)
    page_digests = [page for page, _ in root["pages"]]
    known = _written.recall(page_digests)
    for page in blobs.missing(known) if known else ():
        del known[page]
    entries: dict[str, Entry] = {}
    for page_digest in page_digests:
        group: Iterable[Entry] | None = known.get(page_digest)
        if group is None:
            group = [Entry(**item) for item in _load(blobs, page_digest)["entries"]]
        for entry in group:
            entries[entry.path] = entry
    return Manifest(entries=entries, digest=digest)


class _Written:
    """Pages this process has just written, as entries: the commit that follows a
    ``write_manifest`` reads the manifest back, and need not parse and re-check 10,000
    entries it built itself. Keyed by page digest (content-addressed, so never stale);
    bounded by entry count, least recently used first out. Only pages still present in
    the store are recalled.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._pages: OrderedDict[str, tuple[Entry, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, pages: Iterable[tuple[str, list[Entry]]]) -> None:
        with self._lock:
            for digest, group in pages:
                if digest in self._pages:
                    self._pages.move_to_end(digest)
                    continue
                self._pages[digest] = tuple(group)
                self._size += len(group)
            while self._size > self._limit and self._pages:
                self._size -= len(self._pages.popitem(last=False)[1])

    def recall(self, digests: Iterable[str]) -> dict[str, tuple[Entry, ...]]:
        with self._lock:
            found = {d: self._pages[d] for d in digests if d in self._pages}
            for digest in found:
                self._pages.move_to_end(digest)
            return found


_written = _Written(limit=32_768)  # about 12 MB of entries at most


def _load(blobs: BlobStore, digest: str) -> Any:
    data = blobs.get_bytes(digest)
    if hash_bytes(data) != digest:
        raise IntegrityError(f"manifest blob {digest} is corrupt in {blobs.url}", digest=digest)
    return json.loads(data)
