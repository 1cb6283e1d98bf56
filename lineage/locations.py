"""Storage locations: the URIs that make two records of the same data the same node.

A version logged with references (``add_reference("s3://bucket/train")``) claims the URIs
it names, and an OpenLineage dataset names a URI by its namespace and name
(``s3://bucket`` + ``train``). The graph store keeps ``uri -> artifact`` (the first claim
wins), so an OpenLineage job reading or writing ``s3://bucket/train`` reads or writes the
SDK's artifact, and ``run.use_artifact("s3://bucket/train")`` consumes the newest version
of whatever artifact is at that location.

URIs are compared in one form (:func:`canonical`): percent-escapes decoded (``Path.as_uri``
writes them, emitters do not), no trailing ``/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import unquote

from lineage.manifest import Manifest

__all__ = ["canonical", "is_location", "reference_locations"]


def is_location(text: str) -> bool:
    """Whether a ref is a storage URI rather than ``[project/]name[:selector]``."""
    return "://" in text


def canonical(uri: str) -> str:
    """The one form a location is compared in."""
    text = unquote(uri)
    return text.rstrip("/") if not text.endswith("://") else text


def reference_locations(manifest: Manifest | Iterable[object]) -> list[str]:
    """The locations a version's references claim: each referenced object, and the folder
    a multi-object reference was made from (what ``add_reference`` was given)."""
    found: set[str] = set()
    uris: list[str] = []
    for entry in manifest:
        uri = getattr(entry, "uri", None)
        path = getattr(entry, "path", "")
        if not uri:
            continue
        uris.append(uri)
        found.add(canonical(uri))
        # the reference's root: the entry's uri without its path inside the artifact
        tail = "/" + str(path).split("/", 1)[-1]
        if "/" in str(path) and canonical(uri).endswith(tail):
            found.add(canonical(uri)[: -len(tail)])
    if len(uris) > 1:
        prefix = os.path.commonprefix([canonical(u) for u in uris])  # noqa: RUF071 - cut at "/"
        folder = prefix[: prefix.rfind("/")]
        if "://" in folder and not folder.endswith(":/"):
            found.add(folder)
    return sorted(found)
