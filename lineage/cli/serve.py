"""The server and its tokens: server, token create, token revoke."""

from __future__ import annotations

import click

from lineage.cli.main import Context, cli, errors, pass_ctx
from lineage.errors import InvalidInput
from lineage.service import Service


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Server processes.")
@click.option("--require-token", is_flag=True, help="Refuse anonymous reads, even on loopback.")
@click.option("--max-upload", type=int, default=None, help="Largest blob upload, in bytes.")
@click.option(
    "--max-uploads",
    type=int,
    default=None,
    help="Blob uploads received at once, per worker (default 16); one more is answered 503 "
    "with Retry-After (clients retry), so stalled uploads never hold the threads reads use.",
)
@click.option(
    "--upload-idle-timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="An upload that sends no byte for this long ends with 408 and nothing is kept "
    "(default 60).",
)
@pass_ctx
@errors
def server(
    ctx: Context,
    host: str,
    port: int,
    workers: int,
    require_token: bool,
    max_upload: int | None,
    max_uploads: int | None,
    upload_idle_timeout: float | None,
) -> None:
    """Serve the GraphQL API, blob transfer and dashboard over HTTP.

    Bound to loopback, anonymous reads are allowed unless --require-token; bound to anything
    else, every request needs a token (`lineage token create`). Writes always need a write token.
    With -p (or LINEAGE_PROJECT), the dashboard's index opens on that project.
    """
    from lineage.server.serving import serve

    given = {
        "max_upload": max_upload,
        "max_uploads": max_uploads,
        "upload_idle_timeout": upload_idle_timeout,
    }
    options = {name: value for name, value in given.items() if value is not None}
    serve(ctx.store, ctx.blobs, host, port, workers, require_token, project=ctx.project, **options)  # type: ignore[arg-type]


@cli.group()
def token() -> None:
    """API tokens for the server (stored hashed in the graph store)."""


@token.command("create")
@click.option("--scope", type=click.Choice(["read", "write"]), required=True)
@click.option("--description", help="What the token is for.")
@pass_ctx
@errors
def token_create(ctx: Context, scope: str, description: str | None) -> None:
    """Create a token and print its secret (shown once: store it now)."""
    from lineage.server.auth import create_token, token_id

    secret = create_token(_local_service(ctx), scope, description)
    click.echo(secret)
    click.echo(
        f"token {token_id(secret)} ({scope}) created; the secret is not shown again", err=True
    )


@token.command("revoke")
@click.argument("token_id")
@pass_ctx
@errors
def token_revoke(ctx: Context, token_id: str) -> None:
    """Revoke a token by its id (the 8 characters after lin_)."""
    from lineage.errors import NotFound
    from lineage.server.auth import revoke_token

    ctx.reader  # noqa: B018  (a store to revoke in: refused if there is none, not created)
    if not revoke_token(_local_service(ctx), token_id):
        raise NotFound(
            f"no token with id {token_id!r} in this store: the id is the 8 characters after "
            "lin_ in the secret `lineage token create` printed"
        )
    click.echo(f"token {token_id} revoked")


def _local_service(ctx: Context) -> Service:
    service = ctx.api.service
    if not isinstance(service, Service):
        raise InvalidInput("tokens are managed where the server's graph store is, not through it")
    return service
