"""Find runs and versions by a filter: ``lineage find``, ``lineage runs --filter``."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from lineage import sent
from lineage.cli.main import Context, cli, errors, pass_ctx, size, stored, when
from lineage.columns import left, widest
from lineage.records import RunRecord, VersionRecord

__all__ = ["find", "print_runs"]


@cli.command()
@click.argument("words", nargs=-1, required=True)
@click.option("--versions", "versions", is_flag=True, help="Find versions, not runs.")
@click.option("--order-by", help="A field to order by; '-' before it for descending.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@pass_ctx
@errors
def find(
    ctx: Context,
    words: tuple[str, ...],
    versions: bool,
    order_by: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Runs (or --versions) passing a filter, in the project (-p) or every project.

    \b
    lineage find 'config.lr < 1e-4 and summary.accuracy >= 0.9 and tag = round3'
    lineage find --versions 'metadata.epochs = 3' --order-by -created
    """
    text = " ".join(words)
    service = ctx.api.service
    if versions:
        found_versions = service.find_versions(
            ctx.project, filter=text, order_by=order_by, limit=limit
        )
        print_versions(found_versions, as_json, f"no versions pass {text!r}")
    else:
        found = service.find_runs(ctx.project, filter=text, order_by=order_by, limit=limit)
        print_runs(found, as_json, f"no runs pass {text!r}")


def print_runs(runs: Sequence[RunRecord], as_json: bool, empty: str) -> None:
    if as_json:
        click.echo(json.dumps([_run_json(r) for r in runs], indent=2, sort_keys=True))
        return
    if not runs:
        click.echo(empty)
    names = [sent.full_run_label(run) for run in runs]  # a job from OpenLineage as sent
    width = widest(names)
    for name, run in zip(names, runs, strict=True):
        click.echo(
            f"{run.id}  {left(name, width)} {left(run.job_type or '-', 10)} "
            f"{run.state:<9} {when(run.started_at)}"
            + (f"  [{', '.join(run.tags)}]" if run.tags else "")
        )


def print_versions(versions: Sequence[VersionRecord], as_json: bool, empty: str) -> None:
    if as_json:
        click.echo(json.dumps([_version_json(v) for v in versions], indent=2, sort_keys=True))
        return
    if not versions:
        click.echo(empty)
    names = [sent.full_label(version) for version in versions]  # a dataset as sent
    width = widest(names)
    for name, version in zip(names, versions, strict=True):
        state = "" if version.state == "committed" else f" ({version.state})"
        click.echo(
            f"{left(name, width)} {left(version.type, 8)} {size(version.size):>10}  "
            f"{when(version.made_at)}{state}{stored(version)}"
            + (f"  [{', '.join(version.tags)}]" if version.tags else "")
        )


def _run_json(run: RunRecord) -> dict[str, object]:
    return {
        "id": run.id, "project": run.project, "name": run.name, "job_type": run.job_type,
        "state": run.state, "config": dict(run.config), "summary": dict(run.summary),
        "tags": list(run.tags), "user": run.user, "started_at": run.started_at,
        "finished_at": run.finished_at,
    }  # fmt: skip


def _version_json(version: VersionRecord) -> dict[str, object]:
    return {
        "ref": version.ref, "type": version.type, "digest": version.digest,
        "size": version.size, "files": version.file_count, "metadata": dict(version.metadata),
        "tags": list(version.tags), "aliases": list(version.aliases), "state": version.state,
        "created_at": version.made_at, "created_by": version.created_by,
        "stored_at": version.created_at, "event_at": version.event_at,
    }  # fmt: skip
