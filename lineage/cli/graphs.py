"""Lineage questions on the command line: lineage, tree, render."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lineage.cli.main import Context, cli, errors, pass_ctx, size
from lineage.records import RunRecord, Subgraph
from lineage.text import dead_ends, lineage_lines, print_subgraph_summary, tree_lines


@cli.command("lineage")
@click.argument("ref")
@click.option("--up", "direction", flag_value="upstream", default=True, help="Ancestors (default).")
@click.option("--down", "direction", flag_value="downstream", help="Descendants.")
@click.option("--both", "direction", flag_value="both", help="Both ways.")
@click.option("--depth", type=int, default=20, show_default=True, help="Generations to follow.")
@click.option("--json", "as_json", is_flag=True, help="Print nodes and edges as JSON.")
@pass_ctx
@errors
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
@errors
def tree(ctx: Context, ref: str, depth: int) -> None:
    """The derivation tree under a version (version -> version, labelled by run)."""
    graph = ctx.api.tree(ref, depth=depth)
    runs = ctx.api.service.get_runs({e.run for e in graph.edges if e.run})
    print_tree(graph, click.echo, runs)


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
@errors
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
    click.echo(f"wrote {output} ({size(len(data))})")
