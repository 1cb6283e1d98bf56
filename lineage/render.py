"""Pictures of lineage: a classified answer (:class:`~lineage.view.View`) as Graphviz DOT,
drawn by ``dot``.

Two pictures of one answer, both laid out top to bottom, one generation a rank:

- a lineage walk: runs as boxes, artifact versions as ellipses coloured by type with their
  aliases; an arrow into a box is "consumed", out of it "produced" (the words are the edges'
  tooltips, not labels: labels would double the height of the picture); a version consumed
  in several generations is drawn again beside each (class ``copy``);
- a derivation tree: versions only, each edge labelled with the run that made the child and
  its job type.

In both, every node is drawn as the view says it is: dead ends greyed and dashed, truncated
versions dotted, deleted ones dotted in red with "(deleted)"; nodes of another project carry
their project. :func:`lineage.plan.build` decides what is drawn (highlighted path, collapsed
siblings, hidden datasets or evaluations, generations folded past ``max_nodes``),
:func:`to_dot` writes it, and :func:`render` runs Graphviz's ``dot`` program (the
``graphviz`` OS package) under :data:`DOT_TIMEOUT`. Labels are never shrunk to fit: every
node label is drawn at :data:`FONT_SIZE` points, and the picture is never scaled down.

>>> svg = render_ref(lineage.Api(), "base:v0", mode="tree", highlight="production")
"""

from __future__ import annotations

import html
import logging
import shutil
import subprocess
import zlib
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Literal, TypedDict, Unpack
from urllib.parse import quote

import graphviz

from lineage.errors import InvalidInput, LineageError
from lineage.plan import MAX_NODES, VIA, Mode, PlanEdge, PlanNode, RenderPlan, build
from lineage.records import Node
from lineage.view import DELETED, TRUNCATED, View, ask
from lineage.view import Mode as ViewMode

if TYPE_CHECKING:
    from lineage.api import Api

__all__ = [
    "FONT_SIZE",
    "FORMATS",
    "MAX_NODES",
    "Mode",
    "Options",
    "PlanEdge",
    "PlanNode",
    "RenderPlan",
    "build",
    "plan_notes",
    "plan_ref",
    "plan_to_dot",
    "quote_id",
    "render",
    "render_ref",
    "to_dot",
    "to_svg",
    "type_colour",
]

logger = logging.getLogger(__name__)

Format = Literal["svg", "png", "pdf", "dot"]
FORMATS: tuple[Format, ...] = ("svg", "png", "pdf", "dot")
DOT_TIMEOUT = 120.0

TYPE_COLOURS = {"dataset": "#a6cee3", "model": "#b2df8a", "result": "#fdbf6f"}
OTHER_COLOURS = ("#cab2d6", "#fb9a99", "#8dd3c7", "#ffffb3", "#bebada", "#fccde5", "#ccebc5")
STATE_COLOURS = {"finished": "#ffffff", "running": "#deebf7", "failed": "#f4cccc"}
CRASHED_COLOUR = "#fce5cd"
HIGHLIGHT = "#d62728"
DEAD_FILL, DEAD_LINE, DEAD_TEXT = "#eeeeee", "#bbbbbb", "#999999"
DELETED_LINE = "#a05050"
EDGE_COLOUR = "#666666"
FONT_SIZE = 11  # points, every node label; a derivation tree's edge labels: EDGE_FONT_SIZE
EDGE_FONT_SIZE = 9
CHAIN_WEIGHT = 8  # Graphviz's pull towards a straight edge; a copy's edge has 1
Attrs = Mapping[str, str | float | None]
GRAPH_ATTRS: Attrs = {
    "fontname": "Helvetica",
    "fontsize": FONT_SIZE,
    "nodesep": 0.18,
    "ranksep": 0.22,
    "margin": 0.1,
}
NODE_ATTRS: Attrs = {
    "fontname": "Helvetica",
    "fontsize": FONT_SIZE,
    "height": 0.3,
    "margin": "0.08,0.03",
}
EDGE_ATTRS: Attrs = {
    "fontname": "Helvetica",
    "fontsize": EDGE_FONT_SIZE,
    "arrowsize": 0.6,
    "color": EDGE_COLOUR,
}


def type_colour(artifact_type: str) -> str:
    """A stable fill colour per artifact type: fixed for the common ones, hashed otherwise."""
    if artifact_type in TYPE_COLOURS:
        return TYPE_COLOURS[artifact_type]
    return OTHER_COLOURS[zlib.crc32(artifact_type.encode()) % len(OTHER_COLOURS)]


def _fill(node: PlanNode) -> str:
    if node.state == DELETED:
        return "#ffffff"
    if node.dead:
        return DEAD_FILL
    if node.kind == "artifact_version":
        return type_colour(node.type)
    if node.kind == "run":
        return STATE_COLOURS.get(node.run_state or "", CRASHED_COLOUR)
    return "#ffffff"


# writing DOT ---------------------------------------------------------------------------------


def quote_id(text: str) -> str:
    """A DOT double-quoted string: safe for any text, including refs with '/' and ':'."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


def _attrs(values: Attrs) -> str:
    items = [f"{key}={quote_id(str(value))}" for key, value in values.items() if value is not None]
    return "[" + ", ".join(items) + "]"


def _url(url: str) -> str:
    # Graphviz (2.43) copies URLs into SVG unescaped: keep them valid XML and valid URLs.
    return html.escape(quote(url, safe="/:?#[]@!$&'()*+,;=%~-._"), quote=True)


def _node_attrs(node: PlanNode) -> dict[str, str | float | None]:
    classes = [node.kind.replace("artifact_version", "version")]
    style = ["filled"]
    attrs: dict[str, str | float | None] = {"label": node.label, "tooltip": node.tooltip}
    if node.kind == "run":
        attrs["shape"] = "box"
        style.append("rounded")
    elif node.kind == "more":
        # the SVG element's id is the group's: what a click asks to expand (build's expand)
        attrs.update(shape="box", color=EDGE_COLOUR, fontcolor=EDGE_COLOUR, id=node.id)
        style += ["rounded", "dashed"]
    else:
        attrs["shape"] = "ellipse"
    if node.copy_of is not None:
        classes.append("copy")
    attrs["fillcolor"] = _fill(node)
    if node.dead:
        attrs.update(color=DEAD_LINE, fontcolor=DEAD_TEXT)
        style.append("dashed")
        classes.append("dead")
    elif node.state == TRUNCATED:
        style.append("dotted")
        classes.append("truncated")
    elif node.state == DELETED:
        attrs.update(color=DELETED_LINE, fontcolor=DELETED_LINE)
        style.append("dotted")
        classes.append("deleted")
    if node.highlighted:
        attrs.update(color=HIGHLIGHT, penwidth=2.5)
        style.append("bold")
        classes.append("highlighted")
    if node.target:
        attrs["peripheries"] = 2
        classes.append("target")
    if node.url is not None:
        attrs.update(URL=_url(node.url), target="_top")
    attrs.update(style=",".join(style), **{"class": " ".join(classes)})
    return attrs


def _edge_attrs(edge: PlanEdge, mode: Mode) -> dict[str, str | float | None]:
    attrs: dict[str, str | float | None] = {"label": edge.label, "fontcolor": EDGE_COLOUR}
    if mode == "lineage":
        # "consumed" into a run's box, "produced" out of it: the shapes say it, and edge
        # labels would give every edge a rank of its own
        attrs.update(label=None, tooltip=edge.label)
    if edge.kind in ("more", VIA):
        attrs["style"] = "dashed"
    if edge.kind == VIA:
        attrs["tooltip"] = "through hidden nodes"
    if edge.dead:
        attrs.update(color=DEAD_LINE, fontcolor=DEAD_TEXT)
    if edge.highlighted:
        attrs.update(color=HIGHLIGHT, fontcolor=HIGHLIGHT, penwidth=2.5)
        attrs["class"] = "highlighted"
    return attrs


def _dot_text(value: str | float) -> str:
    # graphviz.Digraph quotes what it is given; a line break is DOT's escape \n
    return str(value).replace("\\", "\\\\").replace("\r", "").replace("\n", "\\n")


def _dot_attrs(values: Attrs) -> dict[str, str]:
    return {key: _dot_text(value) for key, value in values.items() if value is not None}


def _chain(plan: RenderPlan) -> set[tuple[str, str]]:
    """The edges Graphviz should draw straight: what carries a line of work on (a run to its
    outputs, a model into the run that makes the next model, a model to the next model in a
    tree), not a copy, a side input (a dataset into a fine-tuning) or an evaluation result."""
    nodes = {node.id: node for node in plan.nodes}
    made: dict[str, set[str]] = {}
    for edge in plan.edges:
        made.setdefault(edge.source, set()).add(nodes[edge.target].type)
    chain = set()
    for edge in plan.edges:
        source, target = nodes[edge.source], nodes[edge.target]
        if source.copy_of is not None:
            continue
        carried = target.kind == "run" and source.type in made.get(target.id, ())
        if source.kind != "artifact_version" or source.type == target.type or carried:
            chain.add((edge.source, edge.target))
    return chain


def plan_notes(plan: RenderPlan) -> list[str]:
    """What a picture leaves out, as its caption says it: the depth limit, the folded nodes,
    the hidden kinds (the CLI prints the same lines beside the file it wrote)."""
    notes = []
    if plan.truncated:
        notes.append("depth limit reached: the graph goes on")
    if plan.of:  # drawn from the nearest generations of a bigger answer
        part = plan.total + len(plan.hidden)
        notes.append(
            f"drawn from the nearest {part:,} of {plan.of} versions (by generation): "
            "'+k more' counts what is folded of those"
        )
    elif plan.folded:
        notes.append(
            f"{plan.total:,} nodes, too many to draw whole: '+k more' stands for what is folded"
        )
    if plan.hidden:
        notes.append(f"{' and '.join(plan.hid)} hidden ({len(plan.hidden)} nodes)")
    return notes


def plan_to_dot(plan: RenderPlan) -> str:
    """The DOT text of a plan, built by :class:`graphviz.Digraph` (which quotes ids and
    values; the dot program runs apart, under :data:`DOT_TIMEOUT`)."""
    dot = graphviz.Digraph(
        "lineage",
        graph_attr=_dot_attrs({"rankdir": "TB", **GRAPH_ATTRS}),
        node_attr=_dot_attrs(NODE_ATTRS),
        edge_attr=_dot_attrs(EDGE_ATTRS),
    )
    notes = plan_notes(plan)
    if notes:
        dot.attr("graph", label=_dot_text("\n".join(notes)), labelloc="b")
    for node in plan.nodes:
        dot.node(_dot_text(node.id), **_dot_attrs(_node_attrs(node)))
    # Digraph.edge reads "a:b" as node a, port b, and every version id holds a ':': edge
    # statements are written with ids quoted whole
    chain = _chain(plan)
    for edge in plan.edges:
        ends = f"{quote_id(edge.source)} -> {quote_id(edge.target)}"
        attrs = _edge_attrs(edge, plan.mode)
        # the highlighted path straightest of all, then the chain; copies and side inputs lean
        chained = (edge.source, edge.target) in chain
        attrs["weight"] = CHAIN_WEIGHT * (1 + edge.highlighted) if chained else 1
        dot.body.append(f"\t{ends} {_attrs(attrs)}\n")
    return str(dot.source)


class Options(TypedDict, total=False):
    """The options of :func:`build`, :func:`to_dot`, :func:`to_svg` and :func:`render_ref`
    (``depth`` is the answer's own: ``render_ref(depth=...)`` or ``api.view(..., depth)``)."""

    highlight: str | None
    collapse: int
    link: Callable[[Node], str] | None
    hide_datasets: bool
    hide_evaluations: bool
    max_nodes: int
    expand: Collection[str]
    expand_link: Callable[[str], str] | None


def to_dot(view: View, **options: Unpack[Options]) -> str:
    """The DOT text of a classified lineage graph or derivation tree (options as for
    :func:`build`).

    >>> dot = to_dot(api.view("base:v0", "tree"), highlight="production", hide_evaluations=True)
    """
    return plan_to_dot(build(view, **options))


# running dot ---------------------------------------------------------------------------------


def render(dot: str, fmt: Format = "svg") -> bytes:
    """Lay out and draw DOT text with Graphviz's ``dot`` program; ``"dot"`` returns the text."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "dot":
        return dot.encode()
    program = shutil.which("dot")
    if program is None:
        raise LineageError(
            "rendering needs Graphviz's `dot` program, which is not on PATH: install the "
            "graphviz OS package (apt-get install graphviz, dnf install graphviz, "
            "brew install graphviz), or use --format dot",
            program="dot",
        )
    try:
        done = subprocess.run(
            [program, f"-T{fmt}"],
            input=dot.encode(),
            capture_output=True,
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LineageError(
            f"dot took more than {DOT_TIMEOUT:.0f}s: lower --depth or --collapse",
            program="dot",
        ) from None
    message = done.stderr.decode(errors="replace").strip()
    if done.returncode != 0:
        raise LineageError(f"dot failed (exit {done.returncode}): {message}", program="dot")
    if message:
        logger.debug("dot: %s", message)
    return done.stdout


def to_svg(view: View, **options: Unpack[Options]) -> str:
    """The SVG picture of a classified answer, as text (options as for :func:`to_dot`).

    >>> svg = to_svg(api.view("policy:v4"), link=lambda node: f"/nodes/{node.id}")
    """
    return render(to_dot(view, **options), "svg").decode()


_MODES: dict[str, ViewMode] = {"up": "upstream", "down": "downstream", "tree": "tree"}


def render_ref(
    api: Api,
    ref: str,
    *,
    mode: Literal["up", "down", "tree"] = "up",
    depth: int | None = 20,
    fmt: Format = "svg",
    **options: Unpack[Options],
) -> bytes:
    """Fetch, classify and draw the lineage (``up`` / ``down``) or the derivation tree of a ref
    (options as for :func:`build`: ``highlight``, ``collapse``, ``link``, ``hide_datasets``,
    ``hide_evaluations``, ``max_nodes``, ``expand``, ``expand_link``).

    What ``lineage render REF [--up|--down|--tree] --format svg -o FILE`` calls.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return render(plan_to_dot(plan_ref(api, ref, mode=mode, depth=depth, **options)), fmt)


def plan_ref(
    api: Api,
    ref: str,
    *,
    mode: Literal["up", "down", "tree"] = "up",
    depth: int | None = 20,
    **options: Unpack[Options],
) -> RenderPlan:
    """What :func:`render_ref` draws, before it is drawn (:func:`plan_notes` says what the
    picture leaves out)."""
    if mode not in _MODES:
        raise InvalidInput(f"mode must be up, down or tree, not {mode!r}")
    return build(ask(api, ref, _MODES[mode], depth), **options)  # bad options: before dot
