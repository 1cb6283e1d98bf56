"""Names as an OpenLineage emitter sent them, for every surface to show.

A dataset or a job that came in through OpenLineage keeps its namespace and name verbatim
(``s3://lake`` and ``clean/orders``; ``airflow://prod`` and ``nightly.clean🕷``): a version's
``metadata.openlineage``, a run's ``facets.job``. Lineage refers to them by safe names derived
from them (:mod:`lineage.openlineage.naming`: ``s3-lake--00cf.../clean-orders--8814...``),
which refs, URLs and paths use; the labels of the text views, the pictures, the dashboard and
GraphQL show the names as sent (:func:`lineage.view.label`), the safe ref beside them where a
surface has room (a tooltip, a page's heading).

Kept free of the OpenLineage package (its JSON schema): the command line imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["dataset_name", "job_namespace", "joined"]


def dataset_name(metadata: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """The OpenLineage ``(namespace, name)`` a dataset's version came in with, or None for a
    version that did not come from OpenLineage."""
    came = (metadata or {}).get("openlineage")
    if isinstance(came, Mapping):
        namespace, name = came.get("namespace"), came.get("name")
        if isinstance(namespace, str) and isinstance(name, str):
            return namespace, name
    return None


def job_namespace(facets: Mapping[str, Any] | None) -> str | None:
    """The OpenLineage namespace of a run's job (its project, as sent), or None."""
    job = (facets or {}).get("job")
    namespace = job.get("namespace") if isinstance(job, Mapping) else None
    return namespace if isinstance(namespace, str) else None


def joined(namespace: str, name: str) -> str:
    """A name in its namespace, as one text: a URI namespace's dataset as its URI
    (``s3://lake`` + ``clean/orders``: ``s3://lake/clean/orders``; ``file`` + ``/data/x``:
    ``file:///data/x``), anything else ``namespace/name``."""
    if namespace == "file":
        return "file://" + ("" if name.startswith("/") else "/") + name
    if "://" in namespace:
        return namespace.rstrip("/") + "/" + name.lstrip("/")
    return f"{namespace}/{name}"
