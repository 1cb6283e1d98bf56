"""Progress bars for long work (hashing, copying, downloading), silent unless on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Advance", "bar"]

Advance = Callable[[int], None]


def _noop(_: int) -> None:
    return None


@contextmanager
def bar(description: str, total: int, *, enabled: bool | None = None) -> Iterator[Advance]:
    """Yield ``advance(n_bytes)``; draws a rich bar only when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty() and total > 0
    if not enabled:
        yield _noop
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
