"""``lineage model-card REF``: a version's model-card front matter."""

from __future__ import annotations

import click

from lineage.cli.main import Context, cli, errors, pass_ctx


@cli.command(name="model-card")
@click.argument("ref")
@pass_ctx
@errors
def model_card(ctx: Context, ref: str) -> None:
    """Print the Hugging Face model-card YAML front matter of a version: base_model (a list
    for a merge) and base_model_relation, from the run that made it."""
    from lineage.modelcard import model_card as card

    click.echo(card(ctx.api.service, ref, ctx.api.project), nl=False)
