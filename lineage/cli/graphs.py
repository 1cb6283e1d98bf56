"""Lineage questions on the command line: lineage, tree, path, impact, render.

Each asks :func:`lineage.view.ask` once and prints what the view says; ``--json`` prints the
same view (nodes with their state and label, edges) as :meth:`lineage.view.View.to_json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from lineage.api import at
from lineage.cli.main import Context, cli, emit_json, errors, pass_ctx, size
from lineage.errors import InvalidInput
from lineage.pages import MAX_PAGE, first_part
from lineage.plan import MAX_NODES
from lineage.text import path_lines, print_view, summary
from lineage.view import ALIVE, Mode, View, ask, classify


def _show(view: View, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2, sort_keys=True))
    else:
        print_view(view, click.echo)


@cli.command("lineage")
@click.argument("ref")
@click.option("--up", "direction", flag_value="upstream", default=True, help="Ancestors (default).")
@click.option("--down", "direction", flag_value="downstream", help="Descendants.")
@click.option("--both", "direction", flag_value="both", help="Both ways.")
@click.option("--depth", type=int, default=20, show_default=True, help="Generations to follow.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print nodes (with states) and edges as JSON."
)
@click.option("--as-of", help='Only what existed then, as it was (ISO time or "2 days ago").')
@pass_ctx
@errors
def lineage_cmd(
    ctx: Context, ref: str, direction: Mode, depth: int, as_json: bool, as_of: str | None = None
) -> None:
    """Runs and versions upstream or downstream of a version (or run id)."""
    _show(ask(ctx.reader, at(ref, as_of), direction, depth), as_json)


TREE_VERSIONS = 10_000  # versions `lineage tree` prints before it stops and says so


@cli.command()
@click.argument("ref")
@click.option("--depth", type=int, default=20, show_default=True, help="Generations to follow.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print nodes (with states) and edges as JSON: the whole tree, held in memory "
    "(a big tree: lineage export --tree, NDJSON in constant memory).",
)
@click.option("--as-of", help='Only what existed then, as it was (ISO time or "2 days ago").')
@click.option(
    "--max-versions",
    type=int,
    default=TREE_VERSIONS,
    show_default=True,
    help="Print at most this many versions, the nearest generations first, then say how to "
    "get the rest (0: the whole tree, held in memory). Not with --json or --as-of.",
)
@pass_ctx
@errors
def tree(
    ctx: Context,
    ref: str,
    depth: int,
    as_json: bool,
    as_of: str | None = None,
    max_versions: int = TREE_VERSIONS,
) -> None:
    """The derivation tree under a version (version -> version, labelled by run), with dead
    ends, truncated and deleted versions marked. A tree of more than --max-versions versions
    is printed in part (its nearest generations), in memory bounded by that number."""
    if max_versions < 0:
        raise InvalidInput(f"--max-versions must be 0 (all) or more, got {max_versions}")
    if as_json or as_of or max_versions == 0:
        _show(ask(ctx.reader, at(ref, as_of), "tree", depth), as_json)
        return
    api = ctx.reader
    pages = api.tree_pages(ref, depth, first=min(max_versions, MAX_PAGE))
    graph, more = first_part(pages, max_versions)
    view = classify(graph, store=api.service, mode="tree", depth=depth)
    # a version some run consumed, with nothing under it printed: the tree goes on there
    parents = {e.source for e in graph.edges}
    goes_on = (
        {n.id for n in graph.nodes if view.state(n.id) == ALIVE and n.id not in parents}
        if more
        else set()
    )
    print_view(view, click.echo, goes_on)
    if more:
        click.echo(
            f"printed the nearest {len(graph.nodes):,} versions (--max-versions {max_versions:,}); "
            "the tree goes on under the versions marked '...'. All of it: "
            f"lineage export --tree {ref} --depth {depth} -o tree.ndjson (constant memory), "
            "or --max-versions 0 (held in memory)"
        )


@cli.command()
@click.argument("source")
@click.argument("target")
@click.option(
    "--json", "as_json", is_flag=True, help="Print nodes (with states) and edges as JSON."
)
@pass_ctx
@errors
def path(ctx: Context, source: str, target: str, as_json: bool) -> None:
    """Every run and version on the way between two versions (or run ids), either way round:
    how one came from the other."""
    api = ctx.reader
    graph = api.path(source, target)
    if graph is None:
        if as_json:
            emit_json(None)
        else:
            click.echo(f"no path between {source} and {target}: neither came from the other")
        return
    view = classify(graph, store=api.service, mode="both", depth=None)
    if as_json:
        emit_json({**view.to_json(), "mode": "path"})
        return
    for line in path_lines(view):
        click.echo(line)
    click.echo(summary(view))


@cli.command()
@click.argument("ref")
@click.option(
    "--json", "as_json", is_flag=True, help="Print nodes (with states) and edges as JSON."
)
@pass_ctx
@errors
def impact(ctx: Context, ref: str, as_json: bool) -> None:
    """Everything downstream of a version, at any depth: which runs and versions a bad dataset
    touched."""
    api = ctx.reader
    _show(classify(api.impact(ref), store=api.service, mode="downstream", depth=None), as_json)


SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}


@cli.command()
@click.argument("ref")
@click.option("--up", "mode", flag_value="up", default=True, help="Upstream lineage (default).")
@click.option("--down", "mode", flag_value="down", help="Downstream lineage.")
@click.option("--tree", "mode", flag_value="tree", help="Derivation tree (versions only).")
@click.option("--depth", type=int, default=20, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot"]), default=None,
    help="Output format (default: from the file name: .svg .png .pdf .dot).",
)  # fmt: skip
@click.option("--highlight", help="Highlight the path to the version holding this alias.")
@click.option(
    "--collapse",
    type=int,
    default=5,
    show_default=True,
    help="Siblings shown before '+k more' (0: all).",
)
@click.option(
    "--diff", "other", metavar="A",
    help="`--diff A B`: both upstreams in one picture, shared grey, A-only and B-only coloured.",
)  # fmt: skip
@click.option("--hide-datasets", is_flag=True, help="Leave out dataset versions and their runs.")
@click.option(
    "--hide-evaluations", is_flag=True, help="Leave out evaluation runs (job type eval...)."
)
@click.option(
    "--max-nodes",
    type=int,
    default=MAX_NODES,
    show_default=True,
    help="Nodes drawn before the furthest generations fold into '+k more' (0: no limit).",
)
@click.option(
    "--expand", multiple=True, metavar="GROUP", help="Open a '+k more' group (its id, more:...)."
)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option("--as-of", help='Only what existed then, as it was (ISO time or "2 days ago").')
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
    hide_datasets: bool,
    hide_evaluations: bool,
    max_nodes: int,
    expand: tuple[str, ...],
    other: str | None,
    output: Path,
    as_of: str | None = None,
) -> None:
    """Draw a lineage graph or derivation tree with graphviz, top to bottom, one generation a
    rank (or, with --diff A B, the upstreams of A and B in one picture)."""
    from lineage.render import plan_notes, plan_ref, plan_to_dot
    from lineage.render import render as draw

    api = ctx.reader
    suffix = output.suffix.lower()
    if fmt is None and suffix not in SUFFIXES:
        raise InvalidInput(
            f"cannot tell the format of {output.name!r} from its name: name it .svg, .png, "
            ".pdf or .dot, or say --format svg|png|pdf|dot"
        )
    chosen = fmt or SUFFIXES[suffix]
    if other is not None:
        if mode != "up" or highlight is not None:
            raise InvalidInput(
                "--diff A B draws two upstreams: it takes no --down, --tree or --highlight"
            )
        from lineage.diff import DEPTH
        from lineage.render_diff import render_diff

        source = click.get_current_context().get_parameter_source("depth")
        if source == click.core.ParameterSource.DEFAULT:
            depth = DEPTH  # deep enough to reach the merge bases
        data = render_diff(api, other, ref, depth=depth, fmt=chosen)  # type: ignore[arg-type]
        output.write_bytes(data)
        click.echo(f"wrote {output} ({chosen}, {size(len(data))})")
        return
    plan = plan_ref(
        api,
        at(ref, as_of),
        mode=mode,  # type: ignore[arg-type]  # flag_value checked it
        depth=depth,
        highlight=highlight,
        collapse=collapse,
        hide_datasets=hide_datasets,
        hide_evaluations=hide_evaluations,
        max_nodes=max_nodes,
        expand=expand,
    )
    data = draw(plan_to_dot(plan), chosen)  # type: ignore[arg-type]  # click.Choice checked it
    output.write_bytes(data)
    click.echo(f"wrote {output} ({chosen}, {size(len(data))})")
    for note in plan_notes(plan):  # what the picture's caption says it leaves out
        click.echo(f"  {note}")
