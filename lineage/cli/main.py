"""The ``lineage`` command. Every verb is thin: parse, call the service layer, print.

Errors print one line (``error: ...``) on stderr and exit with the error's code (see
:mod:`lineage.errors`); usage errors exit 2.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lineage.api import Api
from lineage.errors import LineageError
from lineage.records import RunRecord

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LineageError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


class Context:
    def __init__(self, store: str | None, blobs: str | None, project: str | None) -> None:
        self.store = store
        self.blobs = blobs
        self.project = project
        self._api: Api | None = None

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.store, self.blobs, project=self.project)
        return self._api


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store", envvar="LINEAGE_STORE", help="Graph store: a directory, or neo4j://host:7687."
)
@click.option(
    "--blobs", envvar="LINEAGE_BLOBS", help="Blob store: a directory, file:// or s3:// URL."
)
@click.option("--project", "-p", envvar="LINEAGE_PROJECT", help="Project for refs without one.")
@click.version_option(package_name="lineage")
@click.pass_context
def cli(ctx: click.Context, store: str | None, blobs: str | None, project: str | None) -> None:
    """Record and query how every model was made."""
    ctx.obj = Context(store, blobs, project)


def main() -> None:
    cli(prog_name="lineage")


def when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def run_label(run: RunRecord) -> str:
    return f"{run.name} ({run.id}, {run.state})"
