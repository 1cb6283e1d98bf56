"""The ``lineage`` command: :mod:`.main` holds the group and its global options, each other
module one group of verbs."""

from __future__ import annotations

import lineage.cli.cards  # verb: model-card
import lineage.cli.lineage_events  # noqa: F401  (verbs: export, import)
from lineage.cli import (  # noqa: F401  (verbs)
    artifacts,
    demo,
    diff,
    find,
    graphs,
    runs,
    serve,
    tags,
    transfer,
)
from lineage.cli.main import cli, main

__all__ = ["cli", "main"]
