"""Tags of runs and versions: ``lineage tag``."""

from __future__ import annotations

import click

from lineage import sent
from lineage.cli.main import Context, cli, errors, pass_ctx
from lineage.errors import NotFound
from lineage.records import RunRecord

__all__ = ["tag"]

WHERE = (
    "`lineage runs` lists the runs (a run is tagged by its id), "
    "`lineage ls` the artifacts (a version by its ref, name:vN)"
)


@cli.command()
@click.argument("target")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove these tags instead of adding them.")
@pass_ctx
@errors
def tag(ctx: Context, target: str, tags: tuple[str, ...], remove: bool) -> None:
    """Tag a run (by id) or a version (REF); the event log keeps who did it.

    \b
    lineage tag policy:v7 round3 best
    lineage tag 3kq9x2ab round3 --remove
    """
    try:
        found = ctx.api.service.tag(
            target,
            add=() if remove else tags,
            remove=tags if remove else (),
            default_project=ctx.api.project,
        )
    except NotFound as error:  # where to find what can be tagged
        raise type(error)(f"{error.message}; {WHERE}", **error.context) from None
    name = f"run {found.id}" if isinstance(found, RunRecord) else sent.full_label(found)
    click.echo(f"{name}: tags {', '.join(found.tags) or '(none)'}")
