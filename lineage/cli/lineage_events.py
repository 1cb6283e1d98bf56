"""OpenLineage out and in: ``lineage export --openlineage`` and ``lineage import``; a big
lineage answer out as NDJSON: ``lineage export --lineage REF`` or ``--tree REF``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from lineage import sent
from lineage.cli.main import Context, cli, errors, pass_ctx
from lineage.errors import InvalidInput, from_os_error
from lineage.pages import MAX_PAGE, Page
from lineage.records import Edge, Node
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
@click.option("--openlineage", "openlineage", is_flag=True, help="As OpenLineage RunEvents.")
@click.option("--lineage", "lineage_ref", metavar="REF", help="The lineage of REF, as NDJSON.")
@click.option("--tree", "tree_ref", metavar="REF", help="The derivation tree under REF.")
@click.option("--up", "direction", flag_value="upstream", default=True, help="Ancestors (default).")
@click.option("--down", "direction", flag_value="downstream", help="Descendants.")
@click.option("--both", "direction", flag_value="both", help="Both ways.")
@click.option("--depth", type=int, help="Generations to follow (default: no limit).")
@click.option("--since", help="Only runs started at or after this (ISO date or epoch seconds).")
@click.option("-o", "--output", "output", required=True, type=click.Path(), help="NDJSON file.")
@pass_ctx
@errors
def export(
    ctx: Context,
    openlineage: bool,
    lineage_ref: str | None,
    tree_ref: str | None,
    direction: str,
    depth: int | None,
    since: str | None,
    output: str,
) -> None:
    """Write NDJSON, one JSON object a line.

    --openlineage: the runs of a project (all projects without -p) as OpenLineage RunEvents:
    START, and COMPLETE, FAIL or ABORT, with inputs and outputs.

    --lineage REF (--up, --down or --both) or --tree REF: a lineage answer, page by page,
    holding the ids walked and one page's records, never the whole answer (a million-version
    tree too): a {"type": "node"} line per node, by generation then id, each followed by the
    {"type": "edge"} lines it completes, then one {"type": "end"} line with the counts and
    whether --depth cut the walk.
    """
    asked = [name for name, on in (("--openlineage", openlineage), ("--lineage", lineage_ref),
                                   ("--tree", tree_ref)) if on]  # fmt: skip
    if len(asked) != 1:
        raise click.UsageError(
            "say one of --openlineage, --lineage REF or --tree REF"
            + (f" (not {' and '.join(asked)})" if asked else "")
        )
    if lineage_ref is not None or tree_ref is not None:
        _export_lineage(ctx, lineage_ref, tree_ref, direction, depth, output)
        return
    from lineage.openlineage.export import export_events

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


def _export_lineage(
    ctx: Context,
    lineage_ref: str | None,
    tree_ref: str | None,
    direction: str,
    depth: int | None,
    output: str,
) -> None:
    api = ctx.reader
    if tree_ref is not None:
        pages = api.tree_pages(tree_ref, depth, first=MAX_PAGE)
    else:
        assert lineage_ref is not None
        pages = api.lineage_pages(lineage_ref, direction, depth, first=MAX_PAGE)
    target = Path(output)
    partial = target.with_name(target.name + ".partial")
    nodes = edges = 0
    truncated: bool | None = False
    try:
        with partial.open("w", encoding="utf-8") as out:
            for page in pages:  # a bad ref is refused here, before anything is written
                for line in page_lines(page):
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
                nodes += len(page.nodes)
                edges += len(page.edges)
                truncated = page.truncated
            end = {"type": "end", "nodes": nodes, "edges": edges, "truncated": truncated}
            out.write(json.dumps(end) + "\n")
        partial.replace(target)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise from_os_error(error, output) from None
        raise
    click.echo(f"{nodes} nodes and {edges} edges written to {output}")


def page_lines(page: Page) -> Iterator[dict[str, Any]]:
    """A page as NDJSON objects: each node, then the edges that node completes (the edges
    of a page whose later endpoint it is, in the page's order)."""
    position = {node.id: i for i, node in enumerate(page.nodes)}
    completed: dict[int, list[Edge]] = {}
    for edge in page.edges:
        at = max(position.get(edge.source, -1), position.get(edge.target, -1))
        completed.setdefault(at, []).append(edge)
    for i, node in enumerate(page.nodes):
        yield node_line(node)
        for edge in completed.get(i, ()):
            yield edge_line(edge)
    for edge in completed.get(-1, ()):  # between nodes without a record (none in practice)
        yield edge_line(edge)


def node_line(node: Node) -> dict[str, Any]:
    """A node as a line; its ``label`` whole, from anywhere (lineage.sent: a dataset or a
    job from OpenLineage as it was sent), as ``--json`` labels its nodes."""
    line: dict[str, Any] = {"type": "node", "id": node.id, "kind": node.kind}
    version, run = node.version, node.run
    if version is not None:
        line["label"] = sent.full_label(version)
        line |= {
            "project": version.project, "name": version.name, "index": version.index,
            "artifact_type": version.type, "digest": version.digest, "size": version.size,
            "aliases": list(version.aliases), "created_by": version.created_by,
            "created_at": version.made_at, "state": version.state,  # when made (lineage.made)
            "metadata": version.metadata, "description": version.description,
            "event_at": version.event_at,  # its OpenLineage event's time (None: the SDK's)
            "stored_at": version.created_at,  # when lineage stored it
        }  # fmt: skip
    if run is not None:
        line["label"] = sent.full_run_label(run)
        line |= {
            "project": run.project, "name": run.name, "job_type": run.job_type,
            "state": run.state, "started_at": run.started_at, "finished_at": run.finished_at,
        }  # fmt: skip
    return line


def edge_line(edge: Edge) -> dict[str, Any]:
    line: dict[str, Any] = {
        "type": "edge", "source": edge.source, "target": edge.target, "kind": edge.kind
    }  # fmt: skip
    if edge.run is not None:
        line["run"] = edge.run
    return line


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
