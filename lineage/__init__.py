"""lineage: record how every model was made.

>>> import lineage
>>> with lineage.init(project="surgery", job_type="finetune") as run:
...     base = run.use_artifact("policy:latest")
...     art = lineage.Artifact("policy", type="model")
...     art.add_file("weights.bin")
...     v = run.log_artifact(art, aliases=["candidate"])
"""

from __future__ import annotations

from lineage.api import Api
from lineage.artifact import Artifact
from lineage.diff import LineageDiff
from lineage.errors import (
    AliasedVersion,
    Conflict,
    CycleError,
    DigestMismatch,
    IntegrityError,
    InvalidInput,
    InvalidMetadata,
    InvalidName,
    InvalidPath,
    InvalidRef,
    LineageError,
    LineageWarning,
    NotFound,
    RunNotActive,
    RunNotFound,
    StoreUnavailable,
    UnsupportedScheme,
    VersionNotFound,
)
from lineage.pages import Page
from lineage.records import Edge, Node, Subgraph
from lineage.run import Run, init
from lineage.versions import ArtifactVersion, VersionFile
from lineage.view import View

__version__ = "0.1.0"

__all__ = [
    "AliasedVersion",
    "Api",
    "Artifact",
    "ArtifactVersion",
    "Conflict",
    "CycleError",
    "DigestMismatch",
    "Edge",
    "IntegrityError",
    "InvalidInput",
    "InvalidMetadata",
    "InvalidName",
    "InvalidPath",
    "InvalidRef",
    "LineageDiff",
    "LineageError",
    "LineageWarning",
    "Node",
    "NotFound",
    "Page",
    "Run",
    "RunNotActive",
    "RunNotFound",
    "StoreUnavailable",
    "Subgraph",
    "UnsupportedScheme",
    "VersionFile",
    "VersionNotFound",
    "View",
    "init",
]
