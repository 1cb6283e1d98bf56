"""Runs: list them, reap the dead."""

from __future__ import annotations

import click

from lineage.cli.main import Context, cli, errors, pass_ctx, run_label, when


@cli.command()
@click.option("--stale", is_flag=True, help="Mark runs whose process died as crashed.")
@click.option("--state", help="Only runs in this state.")
@click.option("--job-type", help="Only runs of this job type.")
@pass_ctx
@errors
def runs(ctx: Context, stale: bool, state: str | None, job_type: str | None) -> None:
    """List runs (and reap dead ones with --stale)."""
    if stale:
        for run in ctx.api.reap_stale():
            click.echo(f"marked crashed: {run_label(run)}")
    for run in ctx.api.runs(ctx.project, job_type=job_type, state=state):
        click.echo(
            f"{run.id}  {run.project}/{run.name:<28} {run.job_type or '-':<10} "
            f"{run.state:<9} {when(run.started_at)}"
        )
