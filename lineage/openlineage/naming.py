"""Internal names for OpenLineage names, and the storage location a dataset names.

An OpenLineage namespace or name may be any text (``s3://bucket``, ``postgres://db:5432``,
``myjob.buggy_task🕷``); a lineage project or artifact name is ``[A-Za-z0-9_.-]``, at most
128 characters. :func:`internal_name` keeps a name that already is one, and otherwise
derives ``<readable part>--<16 hex digits of its hash>``. A kept name never ends like a
derived one (such a name is derived too), so two different names never get the same
internal name (short of a 64-bit hash collision), and an internal name never breaks a ref,
a URL or a file path. The original text is kept beside it (run facets, version metadata).

>>> internal_name("s3://bucket")
's3-bucket--5b1f...'
"""

from __future__ import annotations

import functools
import re

from lineage.hashing import hash_bytes
from lineage.locations import canonical

__all__ = ["internal_name", "location"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_DERIVED = re.compile(r".*--[0-9a-f]{16}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")


# a group's events name the same namespaces, jobs and datasets again and again: each name
# derived once (bench_openlineage.py's events: 18-20 us of CPU an event for their names and
# locations, 1.6-1.7 us cached)
@functools.lru_cache(maxsize=4096)
def internal_name(text: str) -> str:
    """A project or artifact name standing for ``text``, different for every ``text``."""
    if _NAME.fullmatch(text) and not _DERIVED.fullmatch(text) and text.strip(".") != "":
        return text
    readable = _UNSAFE.sub("-", text).strip("-.")[:80].rstrip("-.") or "x"
    digest = hash_bytes(text.encode("utf-8", "surrogatepass"))[:16]
    return f"{readable}--{digest}"


@functools.lru_cache(maxsize=4096)
def location(namespace: str, name: str) -> str | None:
    """The URI of the storage a dataset names, when its namespace is one: ``s3://bucket`` +
    ``path/x`` is ``s3://bucket/path/x``; ``file`` + ``/data/x`` is ``file:///data/x``."""
    if namespace == "file":
        return canonical("file://" + ("" if name.startswith("/") else "/") + name)
    if "://" in namespace:
        return canonical(namespace.rstrip("/") + "/" + name.lstrip("/"))
    return None
