"""The ``lineage`` command. Every verb is thin: parse, call the service layer, print.

Errors print one line (``error: ...``) on stderr and exit with the error's code (see
:mod:`lineage.errors`); usage errors exit 2.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lineage.api import Api
from lineage.errors import InvalidInput, LineageError
from lineage.records import RunRecord, Subgraph
from lineage.service import Service
from lineage.text import dead_ends, lineage_lines, print_subgraph_summary, tree_lines

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def _errors(func: F) -> F:
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


# -- reading ------------------------------------------------------------------------------


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@cli.command("ls")
@click.option("--type", "type_", help="Only artifacts of this type.")
@pass_ctx
@_errors
def ls(ctx: Context, type_: str | None) -> None:
    """List artifacts with their latest version and aliases."""
    api = ctx.api
    artifacts = api.artifacts(ctx.project, type=type_)
    if not artifacts:
        click.echo("no artifacts")
        return
    for artifact in artifacts:
        versions = api.service.versions(artifact.project, artifact.name)
        latest = versions[-1] if versions else None
        aliases = sorted({a for v in versions for a in v.aliases if a != "latest"})
        click.echo(
            f"{artifact.project}/{artifact.name:<24} {artifact.type:<10} "
            f"{len(versions):>4} versions  latest "
            f"{'v' + str(latest.index) if latest else '-':<5} "
            f"{_size(latest.size) if latest else '':>10}  {' '.join(aliases)}"
        )


@cli.command()
@click.argument("ref")
@click.option("--files/--no-files", default=True, help="List the version's files.")
@pass_ctx
@_errors
def show(ctx: Context, ref: str, files: bool) -> None:
    """Show one version: digest, size, aliases, metadata, producing and consuming runs."""
    version = ctx.api.artifact_version(ref)
    record = version.record
    click.echo(f"{record.ref}  ({record.type})")
    click.echo(f"  digest       {record.digest}")
    click.echo(f"  size         {_size(record.size)} in {record.file_count} files")
    click.echo(f"  aliases      {', '.join(record.aliases) or '-'}")
    click.echo(f"  created      {_when(record.created_at)} by run {record.created_by}")
    if record.description:
        click.echo(f"  description  {record.description}")
    if record.metadata:
        click.echo(f"  metadata     {json.dumps(dict(record.metadata), sort_keys=True)}")
    for label, runs in (("logged by", version.logged_by()), ("used by", version.used_by())):
        click.echo(f"  {label:<12} " + (", ".join(_run_label(r) for r in runs) or "-"))
    if files:
        click.echo("  files")
        for entry in version.files():
            where = entry.uri if entry.is_reference else (entry.digest or "")[:16]
            click.echo(f"    {entry.path:<40} {_size(entry.size):>10}  {where}")


def _run_label(run: RunRecord) -> str:
    return f"{run.name} ({run.id}, {run.state})"


@cli.command("lineage")
@click.argument("ref")
@click.option("--up", "direction", flag_value="upstream", default=True, help="Ancestors (default).")
@click.option("--down", "direction", flag_value="downstream", help="Descendants.")
@click.option("--both", "direction", flag_value="both", help="Both ways.")
@click.option("--depth", type=int, default=20, show_default=True, help="Generations to follow.")
@click.option("--json", "as_json", is_flag=True, help="Print nodes and edges as JSON.")
@pass_ctx
@_errors
def lineage_cmd(ctx: Context, ref: str, direction: str, depth: int, as_json: bool) -> None:
    """Runs and versions upstream or downstream of a version (or run id)."""
    graph = ctx.api.lineage(ref, direction=direction, depth=depth)
    if as_json:
        click.echo(json.dumps(subgraph_json(graph), indent=2))
        return
    print_lineage(graph, direction, click.echo)


def subgraph_json(graph: Subgraph) -> dict[str, Any]:
    return {
        "root": graph.root,
        "truncated": graph.truncated,
        "nodes": [
            {"id": n.id, "kind": n.kind, "ref": n.ref, "label": n.label} for n in graph.nodes
        ],
        "edges": [
            {"source": e.source, "target": e.target, "kind": e.kind, "run": e.run}
            for e in graph.edges
        ],
    }


def print_lineage(graph: Subgraph, direction: str, echo: Callable[[str], None]) -> None:
    for line in lineage_lines(graph, direction):
        echo(line)
    print_subgraph_summary(graph, echo)


def print_tree(graph: Subgraph, echo: Callable[[str], None], runs: dict[str, RunRecord]) -> None:
    for line in tree_lines(graph, runs):
        echo(line)
    echo(
        f"{len(graph.nodes)} versions, {len(graph.edges)} derivations, "
        f"{len(dead_ends(graph))} dead ends"
        + ("  (truncated by --depth)" if graph.truncated else "")
    )


@cli.command()
@click.argument("ref")
@click.option("--depth", type=int, default=20, show_default=True)
@pass_ctx
@_errors
def tree(ctx: Context, ref: str, depth: int) -> None:
    """The derivation tree under a version (version -> version, labelled by run)."""
    graph = ctx.api.tree(ref, depth=depth)
    runs = ctx.api.service.get_runs({e.run for e in graph.edges if e.run})
    print_tree(graph, click.echo, runs)


@cli.command()
@click.argument("ref")
@click.option("-o", "--output", "root", type=click.Path(path_type=Path), help="Target directory.")
@pass_ctx
@_errors
def get(ctx: Context, ref: str, root: Path | None) -> None:
    """Download a version's files, each verified against its digest."""
    version = ctx.api.artifact_version(ref)
    path = version.download(root)
    click.echo(f"{version.ref}: {version.record.file_count} files in {path}")


@cli.command()
@click.argument("ref")
@pass_ctx
@_errors
def verify(ctx: Context, ref: str) -> None:
    """Re-hash every byte of a version and name each file that does not match."""
    version = ctx.api.artifact_version(ref)
    version.verify()
    click.echo(f"{version.ref}: {version.record.file_count} files verified")


@cli.command("log")
@click.argument("ref")
@pass_ctx
@_errors
def log_cmd(ctx: Context, ref: str) -> None:
    """The event log of a version (name:vN) or a whole artifact (name)."""
    events = ctx.api.events(ref)
    if not events:
        click.echo("no events")
    for event in events:
        change = ""
        if event.old is not None:
            change += f" from {json.dumps(event.old, sort_keys=True)}"
        if event.new is not None:
            change += f" to {json.dumps(event.new, sort_keys=True)}"
        click.echo(
            f"#{event.seq} {_when(event.at)} {event.kind:<20} {event.target}"
            f" by {event.actor or '-'}{change}"
        )


@cli.command()
@click.option("--stale", is_flag=True, help="Mark runs whose process died as crashed.")
@click.option("--state", help="Only runs in this state.")
@click.option("--job-type", help="Only runs of this job type.")
@pass_ctx
@_errors
def runs(ctx: Context, stale: bool, state: str | None, job_type: str | None) -> None:
    """List runs (and reap dead ones with --stale)."""
    if stale:
        for run in ctx.api.reap_stale():
            click.echo(f"marked crashed: {_run_label(run)}")
    for run in ctx.api.runs(ctx.project, job_type=job_type, state=state):
        click.echo(
            f"{run.id}  {run.project}/{run.name:<28} {run.job_type or '-':<10} "
            f"{run.state:<9} {_when(run.started_at)}"
        )


@cli.command()
@click.argument("ref")
@click.option("--force", is_flag=True, help="Delete even if the version holds aliases.")
@pass_ctx
@_errors
def delete(ctx: Context, ref: str, force: bool) -> None:
    """Delete a version (its lineage stays; its bytes go at the next gc)."""
    version = ctx.api.artifact_version(ref)
    ctx.api.delete(version.ref, force=force)
    click.echo(f"deleted {version.ref}")


@cli.command()
@click.argument("ref")
@click.argument("alias")
@click.option("--remove", is_flag=True, help="Remove the alias instead of moving it here.")
@pass_ctx
@_errors
def alias(ctx: Context, ref: str, alias: str, remove: bool) -> None:
    """Move ALIAS to the version REF (recorded in the event log)."""
    version = ctx.api.artifact_version(ref)
    if remove:
        version.remove_alias(alias)
        click.echo(f"removed {alias} from {version.project}/{version.name}")
    else:
        version.set_alias(alias)
        click.echo(f"{alias} -> {version.ref}")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Count what would go, delete nothing.")
@click.option(
    "--grace",
    type=float,
    default=3600.0,
    show_default=True,
    help="Keep blobs younger than this (s).",
)
@pass_ctx
@_errors
def gc(ctx: Context, dry_run: bool, grace: float) -> None:
    """Delete blobs that no live version references."""
    report = ctx.api.gc(dry_run=dry_run, grace=grace)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{report.blobs_total} blobs checked, {report.blobs_live} live, "
        f"{verb} {report.blobs_removed}"
    )


@cli.command()
@click.argument("ref")
@click.option("--up", "mode", flag_value="up", default=True, help="Upstream lineage (default).")
@click.option("--down", "mode", flag_value="down", help="Downstream lineage.")
@click.option("--tree", "mode", flag_value="tree", help="Derivation tree (versions only).")
@click.option("--depth", type=int, default=20, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot"]), default=None,
    help="Output format (default: from the file name, else svg).",
)  # fmt: skip
@click.option("--highlight", help="Highlight the path to the version holding this alias.")
@click.option(
    "--collapse",
    type=int,
    default=5,
    show_default=True,
    help="Siblings shown before '+k more' (0: all).",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@pass_ctx
@_errors
def render(
    ctx: Context,
    ref: str,
    mode: str,
    depth: int,
    fmt: str | None,
    highlight: str | None,
    collapse: int,
    output: Path,
) -> None:
    """Draw a lineage graph or derivation tree with graphviz."""
    from lineage.render import render_ref

    chosen = fmt or (
        output.suffix.lstrip(".") if output.suffix in (".svg", ".png", ".pdf", ".dot") else "svg"
    )
    data = render_ref(
        ctx.api,
        ref,
        mode=mode,  # type: ignore[arg-type]  # click.Choice/flag_value checked it
        depth=depth,
        fmt=chosen,  # type: ignore[arg-type]
        highlight=highlight,
        collapse=collapse,
    )
    output.write_bytes(data)
    click.echo(f"wrote {output} ({_size(len(data))})")


# -- moving history between stores -------------------------------------------------------


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
                f"{report.blobs} blobs ({_size(report.blob_bytes)}) copied"
            )
    finally:
        src.close()
        dst.close()


@cli.command()
@click.option("--to", "to", required=True, help="Target graph store URL.")
@click.option("--to-blobs", help="Target blob store (default: the source's blob store).")
@pass_ctx
@_errors
def push(ctx: Context, to: str, to_blobs: str | None) -> None:
    """Copy a project's history (all projects without -p) to another store, idempotently."""
    source_blobs = ctx.blobs or _default_blobs(ctx.store)
    _copy(ctx, (ctx.store, ctx.blobs), (to, to_blobs or source_blobs), ctx.project)


@cli.command()
@click.option("--from", "from_", required=True, help="Source graph store URL.")
@click.option("--from-blobs", help="Source blob store (default: this store's blob store).")
@pass_ctx
@_errors
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
@_errors
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
                f" and {report.blobs} blobs ({_size(report.blob_bytes)}) sent to {to}"
            )
            for old, new in sorted(report.renumbered.items()):
                click.echo(f"  {old} is {new} on the server")
    finally:
        local.close()
        remote.close()


# -- the server --------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Server processes.")
@click.option("--require-token", is_flag=True, help="Refuse anonymous reads, even on loopback.")
@click.option("--max-upload", type=int, default=None, help="Largest blob upload, in bytes.")
@pass_ctx
@_errors
def server(
    ctx: Context, host: str, port: int, workers: int, require_token: bool, max_upload: int | None
) -> None:
    """Serve the GraphQL API, blob transfer and dashboard over HTTP.

    Bound to loopback, anonymous reads are allowed unless --require-token; bound to anything
    else, every request needs a token (`lineage token create`). Writes always need a write token.
    """
    from lineage.server import serve

    options = {} if max_upload is None else {"max_upload": max_upload}
    serve(ctx.store, ctx.blobs, host, port, workers, require_token, **options)


@cli.group()
def token() -> None:
    """API tokens for the server (stored hashed in the graph store)."""


@token.command("create")
@click.option("--scope", type=click.Choice(["read", "write"]), required=True)
@click.option("--description", help="What the token is for.")
@pass_ctx
@_errors
def token_create(ctx: Context, scope: str, description: str | None) -> None:
    """Create a token and print its secret (shown once: store it now)."""
    from lineage.auth import create_token, token_id

    secret = create_token(_local_service(ctx), scope, description)
    click.echo(secret)
    click.echo(
        f"token {token_id(secret)} ({scope}) created; the secret is not shown again", err=True
    )


@token.command("revoke")
@click.argument("token_id")
@pass_ctx
@_errors
def token_revoke(ctx: Context, token_id: str) -> None:
    """Revoke a token by its id (the 8 characters after lin_)."""
    from lineage.auth import revoke_token
    from lineage.errors import NotFound

    if not revoke_token(_local_service(ctx), token_id):
        raise NotFound(f"no token with id {token_id!r}")
    click.echo(f"token {token_id} revoked")


def _local_service(ctx: Context) -> Service:
    service = ctx.api.service
    if not isinstance(service, Service):
        raise InvalidInput("tokens are managed where the server's graph store is, not through it")
    return service


# -- the demo -----------------------------------------------------------------------------


@cli.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Where the demo keeps its store, files and pictures.",
)
@click.option("--stages", type=int, default=20, show_default=True)
@click.option("--serve/--no-serve", default=True, help="Query the demo over a real HTTP server.")
@pass_ctx
@_errors
def demo(ctx: Context, out: Path, stages: int, serve: bool) -> None:
    """Log a 20-stage model-surgery history through the SDK, then query and render it."""
    from lineage.demo import run_demo

    run_demo(out, stages=stages, store=ctx.store, blobs=ctx.blobs, serve=serve, echo=click.echo)
