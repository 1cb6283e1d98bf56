"""OpenLineage out and in: ``lineage export --openlineage`` and ``lineage import``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from lineage.cli.main import Context, cli, errors, pass_ctx
from lineage.errors import InvalidInput, from_os_error
from lineage.service import Service


def _service(ctx: Context) -> Service:
    service = ctx.api.service
    if not isinstance(service, Service):
        raise InvalidInput(
            "export and import work on a graph store (a directory, sqlite:// or neo4j://); "
            "to send events to a server, POST them to its /api/v1/lineage"
        )
    return service


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--since {text!r} is neither an ISO date (2024-05-01, 2024-05-01T10:00:00Z) nor "
            "seconds since the epoch"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@cli.command(name="export")
@click.option(
    "--openlineage", "openlineage", is_flag=True, required=True, help="As OpenLineage RunEvents."
)
@click.option("--since", help="Only runs started at or after this (ISO date or epoch seconds).")
@click.option("-o", "--output", "output", required=True, type=click.Path(), help="NDJSON file.")
@pass_ctx
@errors
def export(ctx: Context, openlineage: bool, since: str | None, output: str) -> None:
    """Write the runs of a project (all projects without -p) as OpenLineage RunEvents, one
    JSON object a line: START, and COMPLETE, FAIL or ABORT, with inputs and outputs."""
    from lineage.openlineage.export import export_events

    if not openlineage:
        raise InvalidInput("say the format: lineage export --openlineage -o FILE")
    service = _service(ctx)
    start = _since(since)
    count = 0
    target = Path(output)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            for event in export_events(service, ctx.project, since=start):
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
                count += 1
        partial.replace(target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise from_os_error(error, output) from None
    click.echo(f"{count} events written to {output}")


@cli.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
@errors
def import_(ctx: Context, file: str) -> None:
    """Store OpenLineage events from an NDJSON file (one event a line): what `lineage export
    --openlineage` writes, or what any OpenLineage emitter sent. Every line is checked before
    anything is stored; sending the same file again changes nothing."""
    from lineage.openlineage import InvalidEvent, check_event, ingest

    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        if isinstance(error, UnicodeDecodeError):
            raise InvalidInput(f"{file} is not UTF-8 text: {error.reason}") from None
        raise from_os_error(error, file) from None
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(check_event(json.loads(line)))
        except ValueError as error:
            raise InvalidInput(f"{file}, line {number}: not JSON ({error})") from None
        except InvalidEvent as error:
            raise InvalidInput(f"{file}, line {number}: {error.message}") from None
    service = _service(ctx)
    runs = set()
    for event in events:
        stored = ingest(service, event)
        if stored.run is not None:
            runs.add(stored.run.id)
    click.echo(f"{len(events)} events of {len(runs)} runs imported from {file}")
