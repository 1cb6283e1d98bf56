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

from lineage.records import RunRecord, VersionRecord

__all__ = [
    "artifact_label",
    "dataset_name",
    "full_label",
    "full_run_label",
    "job_namespace",
    "joined",
    "project_name",
    "run_label",
    "version_label",
]


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


def artifact_label(project: str, name: str, metadata: Mapping[str, Any] | None) -> str:
    """An artifact's name whole, from anywhere, given one of its versions' ``metadata``:
    ``project/name``, a dataset from OpenLineage as it was sent (``s3://lake/clean/orders``)."""
    came = dataset_name(metadata)
    return joined(*came) if came is not None else f"{project}/{name}"


def version_label(version: VersionRecord, project: str | None) -> str:
    """A version's label seen from ``project``: ``name:vN``, prefixed with its own project
    when that is another one; a dataset version from OpenLineage with the name it was sent
    with, whole (``s3://lake/clean/orders:v0``: its storage URI, which every command takes
    as a ref, with the version after it)."""
    metadata = version.metadata
    if metadata and "openlineage" in metadata:  # (a label a node: the common case is quick)
        came = dataset_name(metadata)
        if came is not None:  # whole, from anywhere: a ref a command takes back
            return f"{joined(*came)}:v{version.index}"
    if project is None or version.project == project:
        return f"{version.name}:v{version.index}"
    return f"{version.project}/{version.name}:v{version.index}"


def full_label(version: VersionRecord) -> str:
    """A version's label whole, from anywhere: its ref, or a dataset version from OpenLineage
    as it was sent (``s3://lake/clean/orders:v0``)."""
    return version.ref if dataset_name(version.metadata) is None else version_label(version, None)


def full_run_label(run: RunRecord) -> str:
    """A run's label whole, from anywhere: ``project/name``, a job from OpenLineage in its
    namespace as sent (``airflow://prod/nightly.clean``)."""
    namespace = job_namespace(run.facets)
    return joined(namespace, run.name) if namespace is not None else f"{run.project}/{run.name}"


def run_label(run: RunRecord, project: str | None) -> str:
    """A run's label seen from ``project``: its name, prefixed with its project (a job's
    namespace as sent) when that is another one."""
    if project is None or run.project == project:
        return run.name
    return full_run_label(run)


def project_name(run: RunRecord) -> str:
    """A run's project as sent: its job's OpenLineage namespace, else the project itself."""
    return job_namespace(run.facets) or run.project
