"""Moving history between stores: push, pull, sync."""

from __future__ import annotations

import click

from lineage.cli.main import Context, cli, errors, pass_ctx, size
from lineage.client import check_store
from lineage.columns import counted
from lineage.errors import InvalidInput


def _copy(ctx: Context, other: str, other_blobs: str | None, *, pushing: bool) -> None:
    """Copy between this store (``--store``, ``--blobs``) and ``other``, whose blob store is
    ``other_blobs``, else its own default (``<dir>/blobs``), else (a graph server keeps no
    bytes) this store's blob store, shared."""
    from lineage.storage import open_stores
    from lineage.transfer import copy_project, default_blobs

    check_store(ctx.store if pushing else other)  # the source must be there; the target may not
    here = open_stores(ctx.store, ctx.blobs)
    try:
        there = open_stores(other, other_blobs or default_blobs(other) or here.blobs.url)
    except BaseException:
        here.close()
        raise
    src, dst = (here, there) if pushing else (there, here)
    try:
        shared = src.blobs.url == dst.blobs.url
        projects = [ctx.project] if ctx.project else src.graph.list_projects()
        for name in projects:
            report = copy_project(src, dst, name)
            blobs = (
                f"blobs not copied: both stores read them from {src.blobs.url}"
                if shared
                else f"{counted(report.blobs, 'blob')} ({size(report.blob_bytes)}) copied to "
                f"{dst.blobs.url}"
            )
            made = [
                counted(n, noun)
                for n, noun in (
                    (report.runs, "run"),
                    (report.versions, "version"),
                    (report.edges, "edge"),
                    (report.events, "event"),
                )
            ]
            click.echo(f"{name}: {', '.join(made)} new; {blobs}")
    finally:
        src.close()
        dst.close()


@cli.command()
@click.option("--to", "to", required=True, help="Target graph store URL.")
@click.option(
    "--to-blobs",
    help="Target blob store (default: TO/blobs for a directory; for a graph server, this "
    "store's blob store, shared).",
)
@pass_ctx
@errors
def push(ctx: Context, to: str, to_blobs: str | None) -> None:
    """Copy a project's history (all projects without -p) and its blobs to another store,
    idempotently."""
    _copy(ctx, to, to_blobs, pushing=True)


@cli.command()
@click.option("--from", "from_", required=True, help="Source graph store URL.")
@click.option(
    "--from-blobs",
    help="Source blob store (default: FROM/blobs for a directory; for a graph server, this "
    "store's blob store, shared).",
)
@pass_ctx
@errors
def pull(ctx: Context, from_: str, from_blobs: str | None) -> None:
    """Copy a project's history (all projects without -p) and its blobs from another store
    into this one, idempotently."""
    _copy(ctx, from_, from_blobs, pushing=False)


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
    check_store(store)
    # closed on every way out: a server that cannot be reached, or lost in the middle
    with open_stores(store, ctx.blobs) as local, RemoteService(to, token=token) as remote:
        projects = [ctx.project] if ctx.project else local.graph.list_projects()
        for project in projects:
            report = sync_project(local, remote, project, state_path(home, to), click.echo)
            runs, versions = counted(report.runs, "run"), counted(report.versions, "version")
            click.echo(
                f"{project}: {runs}, {versions}, {counted(report.edges, 'input')} and "
                f"{counted(report.blobs, 'blob')} ({size(report.blob_bytes)}) sent to {to}"
            )
            for old, new in sorted(report.renumbered.items()):
                click.echo(f"  {old} is {new} on the server")
