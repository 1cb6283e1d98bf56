"""Runs: list them, reap the dead."""

from __future__ import annotations

import click

from lineage.cli.find import print_runs
from lineage.cli.main import Context, cli, errors, pass_ctx, run_label, when
from lineage.records import RUN_STATES


@cli.command()
@click.option("--stale", is_flag=True, help="Mark runs whose process died as crashed.")
@click.option("--state", type=click.Choice(RUN_STATES), help="Only runs in this state.")
@click.option("--job-type", help="Only runs of this job type.")
@click.option("--filter", "filter_", help="Only runs passing this filter (see lineage find).")
@click.option("--order-by", help="A field to order by; '-' before it for descending.")
@pass_ctx
@errors
def runs(
    ctx: Context,
    stale: bool,
    state: str | None,
    job_type: str | None,
    filter_: str | None = None,
    order_by: str | None = None,
) -> None:
    """List runs (and reap dead ones with --stale)."""
    if stale:
        for run in ctx.api.reap_stale():
            click.echo(f"marked crashed: {run_label(run)}")
    if filter_ is not None or order_by is not None:
        found = ctx.api.runs(
            ctx.project, job_type=job_type, state=state, filter=filter_, order_by=order_by
        )
        print_runs(found, False, f"no runs pass {filter_!r}")
        return
    found = ctx.api.runs(ctx.project, job_type=job_type, state=state)
    if not found:
        where = [f"in project {ctx.project}" if ctx.project else "in any project"]
        where += [f"of job type {job_type}"] * bool(job_type) + [f"in state {state}"] * bool(state)
        click.echo("no runs " + ", ".join(where))
    for run in found:
        click.echo(
            f"{run.id}  {run.project}/{run.name:<28} {run.job_type or '-':<10} "
            f"{run.state:<9} {when(run.started_at)}"
        )
