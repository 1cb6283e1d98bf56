"""Runs: list them, show one, reap the dead."""

from __future__ import annotations

import json

import click

from lineage import sent
from lineage.cli.find import print_runs
from lineage.cli.main import Context, cli, emit_json, errors, pass_ctx, size, when
from lineage.errors import InvalidInput, RunNotFound
from lineage.records import RUN_STATES, RunRecord, VersionRecord


@cli.command()
@click.option("--stale", is_flag=True, help="Mark runs whose process died as crashed.")
@click.option("--state", type=click.Choice(RUN_STATES), help="Only runs in this state.")
@click.option("--job-type", help="Only runs of this job type.")
@click.option("--filter", "filter_", help="Only runs passing this filter (see lineage find).")
@click.option("--order-by", help="A field to order by; '-' before it for descending.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@pass_ctx
@errors
def runs(
    ctx: Context,
    stale: bool,
    state: str | None,
    job_type: str | None,
    as_json: bool,
    filter_: str | None = None,
    order_by: str | None = None,
) -> None:
    """List runs (and reap dead ones with --stale)."""
    api = ctx.reader
    if stale:  # said on stderr: stdout is the table (or the JSON) alone
        for line in stale_lines(api.reap_stale()):
            click.echo(line, err=True)
    if filter_ is not None or order_by is not None:
        found = api.runs(
            ctx.project, job_type=job_type, state=state, filter=filter_, order_by=order_by
        )
        if as_json:
            emit_json(found)
            return
        print_runs(found, False, f"no runs pass {filter_!r}")
        return
    found = api.runs(ctx.project, job_type=job_type, state=state)
    if as_json:
        emit_json(found)
        return
    where = [f"in project {ctx.project}" if ctx.project else "in any project"]
    where += [f"of job type {job_type}"] * bool(job_type) + [f"in state {state}"] * bool(state)
    print_runs(found, False, "no runs " + ", ".join(where))  # as `lineage find` lists them


# runs named one a line by --stale; past them, how many more
STALE_SHOWN = 20


def stale_lines(reaped: list[RunRecord]) -> list[str]:
    """What ``--stale`` says of the runs it marked crashed: how many, and which."""
    if not reaped:
        return ["no runs marked crashed: every running run of this host is alive"]
    noun = "run" if len(reaped) == 1 else "runs"
    lines = [f"marked {len(reaped)} {noun} crashed (their process is gone):"]
    lines += [f"  {run.id}  {run.project}/{run.name}" for run in reaped[:STALE_SHOWN]]
    if len(reaped) > STALE_SHOWN:
        more = len(reaped) - STALE_SHOWN
        lines.append(f"  and {more} more (`lineage runs --state crashed` lists them)")
    return lines


@cli.command("run")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@pass_ctx
@errors
def run_cmd(ctx: Context, run_id: str, as_json: bool) -> None:
    """Show one run: state, times, code, config, summary, error, inputs and outputs (a version:
    `lineage show REF`)."""
    api = ctx.reader
    if ":" in run_id or "/" in run_id:
        raise InvalidInput(f"{run_id} is a ref, not a run id: `lineage show {run_id}` shows it")
    try:
        run = api.run(run_id)
    except RunNotFound:
        raise RunNotFound(
            f"run {run_id!r} does not exist: `lineage runs` lists the runs", run_id=run_id
        ) from None
    inputs, outputs = api.service.run_io(run.id)
    if as_json:
        emit_json({"run": run, "inputs": inputs, "outputs": outputs})
        return
    for line in run_lines(run, inputs, outputs):
        click.echo(line)


def run_lines(
    run: RunRecord, inputs: list[VersionRecord], outputs: list[VersionRecord]
) -> list[str]:
    """The text of ``lineage run``: one fact a line, the run's own project left out of refs."""

    def ref(version: VersionRecord) -> str:
        name = version.ref if version.project != run.project else version.ref.split("/", 1)[1]
        shown = sent.version_label(version, run.project)  # an OpenLineage name as sent
        aliases = [a for a in version.aliases if a != "latest"]
        deleted = "" if version.state == "committed" else ", deleted"
        named = "" if shown == name else f"; ref {version.ref}"
        return f"{shown} ({version.type}, {size(version.size)}{deleted}{named})" + (
            f" [{', '.join(aliases)}]" if aliases else ""
        )

    def data(value: object) -> str:
        return json.dumps(value, sort_keys=True) if value else "-"

    project = sent.project_name(run)
    if project != run.project:  # an OpenLineage namespace: its project's safe name beside it
        project += f" (project {run.project})"
    ended = when(run.finished_at)
    if run.finished_at:
        ended += f" ({run.finished_at - run.started_at:.1f} s)"
    lines = [
        f"run {run.name} ({run.id}) in {project}",
        f"  state        {run.state}",
        f"  job type     {run.job_type or '-'}",
        f"  started      {when(run.started_at)}",
        f"  ended        {ended}",
    ]
    if run.host or run.pid:
        lines.append(f"  host         {run.host or '-'} pid {run.pid or '-'}")
    code = run.code
    if code is not None:
        dirty = " (dirty)" if code.dirty else ""
        lines.append(f"  code         {code.commit}{dirty}  {code.script or ''}".rstrip())
        if code.remote:
            lines.append(f"  remote       {code.remote}")
        if code.command:
            lines.append(f"  command      {' '.join(code.command)}")
    else:
        lines.append("  code         - (not in a git repository)")
    if run.tags:
        lines.append(f"  tags         {', '.join(run.tags)}")
    if run.notes:
        lines.append(f"  notes        {run.notes}")
    lines.append(f"  config       {data(run.config)}")
    lines.append(f"  summary      {data(run.summary)}")
    if run.error:
        error, *rest = run.error.splitlines() or [""]
        lines.append(f"  error        {error}")
        lines += [f"               {line}" for line in rest]
    for label, versions in (("inputs", inputs), ("outputs", outputs)):
        lines.append(f"  {label:<12} {ref(versions[0]) if versions else '-'}")
        lines += [f"               {ref(v)}" for v in versions[1:]]
    return lines
