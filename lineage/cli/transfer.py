"""Moving history between stores: push, pull, sync."""

from __future__ import annotations

from pathlib import Path

import click

from lineage.cli.main import Context, cli, errors, pass_ctx, size
from lineage.errors import InvalidInput


def _copy(
    ctx: Context,
    source: tuple[str | None, str | None],
    target: tuple[str | None, str | None],
    project: str | None,
) -> None:
    from lineage.storage import open_stores
    from lineage.transfer import copy_project

    src = open_stores(*source)
    dst = open_stores(*target)
    try:
        projects = [project] if project else src.graph.list_projects()
        for name in projects:
            report = copy_project(src, dst, name)
            click.echo(
                f"{name}: {report.runs} runs, {report.versions} versions, {report.edges} edges, "
                f"{report.events} events new; "
                f"{report.blobs} blobs ({size(report.blob_bytes)}) copied"
            )
    finally:
        src.close()
        dst.close()


@cli.command()
@click.option("--to", "to", required=True, help="Target graph store URL.")
@click.option("--to-blobs", help="Target blob store (default: the source's blob store).")
@pass_ctx
@errors
def push(ctx: Context, to: str, to_blobs: str | None) -> None:
    """Copy a project's history (all projects without -p) to another store, idempotently."""
    source_blobs = ctx.blobs or _default_blobs(ctx.store)
    _copy(ctx, (ctx.store, ctx.blobs), (to, to_blobs or source_blobs), ctx.project)


@cli.command()
@click.option("--from", "from_", required=True, help="Source graph store URL.")
@click.option("--from-blobs", help="Source blob store (default: this store's blob store).")
@pass_ctx
@errors
def pull(ctx: Context, from_: str, from_blobs: str | None) -> None:
    """Copy a project's history from another store into this one, idempotently."""
    target_blobs = ctx.blobs or _default_blobs(ctx.store)
    _copy(ctx, (from_, from_blobs or target_blobs), (ctx.store, ctx.blobs), ctx.project)


def _default_blobs(store: str | None) -> str:
    import os

    from lineage.storage import DEFAULT_STORE, local_dir

    store = store or os.environ.get("LINEAGE_STORE") or DEFAULT_STORE
    home = local_dir(store) or Path(DEFAULT_STORE)
    return str(home / "blobs")


@cli.command()
@click.option("--to", "to", required=True, envvar="LINEAGE_SERVER", help="The lineage server URL.")
@click.option("--token", envvar="LINEAGE_TOKEN", help="A write token for the server.")
@pass_ctx
@errors
def sync(ctx: Context, to: str, token: str | None) -> None:
    """Send runs logged offline (LINEAGE_MODE=offline) to a lineage server; safe to repeat."""
    from lineage.client import is_remote
    from lineage.remote import RemoteService
    from lineage.storage import DEFAULT_STORE, local_dir, open_stores
    from lineage.sync import state_path, sync_project

    store = ctx.store if ctx.store and not is_remote(ctx.store) else DEFAULT_STORE
    home = local_dir(store)
    if home is None:
        raise InvalidInput(f"sync sends a local store, not {store}")
    local = open_stores(store, ctx.blobs)
    remote = RemoteService(to, token=token)
    try:
        projects = [ctx.project] if ctx.project else local.graph.list_projects()
        for project in projects:
            report = sync_project(local, remote, project, state_path(home, to), click.echo)
            click.echo(
                f"{project}: {report.runs} runs, {report.versions} versions, {report.edges} inputs"
                f" and {report.blobs} blobs ({size(report.blob_bytes)}) sent to {to}"
            )
            for old, new in sorted(report.renumbered.items()):
                click.echo(f"  {old} is {new} on the server")
    finally:
        local.close()
        remote.close()
