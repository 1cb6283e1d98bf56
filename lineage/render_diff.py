"""A picture of a lineage diff: both upstreams in one graph, the shared part grey, what only
A has in blue and what only B has in orange, the merge bases outlined.

What ``lineage render --diff A B -o x.svg`` draws. The nodes and their states come from the
two upstream views (:func:`lineage.view.ask`), the sides from :func:`lineage.diff.ancestry`'s
reading of the same walks; :mod:`lineage.render` quotes the DOT and runs Graphviz.

>>> svg = render_diff(lineage.Api(), "policy:production", "policy:v33")
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from lineage.columns import counted
from lineage.diff import DEPTH, ancestry
from lineage.errors import InvalidInput
from lineage.records import Node
from lineage.render import FORMATS, Format, quote_id, render
from lineage.view import DEAD_END, DELETED, TRUNCATED, View, ask

if TYPE_CHECKING:
    from lineage.api import Api

__all__ = ["SIDE_COLOURS", "diff_dot", "render_diff"]

Side = Literal["shared", "a", "b"]
# (fill, line, text) per side: colour-blind safe blue and orange, and a quiet grey
SIDE_COLOURS: Mapping[Side, tuple[str, str, str]] = {
    "shared": ("#f2f2f2", "#a0a0a0", "#707070"),
    "a": ("#cfe2f3", "#1f6fb4", "#0b3d6b"),
    "b": ("#fde0c5", "#e0700f", "#7a3700"),
}
_MARKS = {DEAD_END: "dead end", TRUNCATED: "truncated", DELETED: "deleted"}


def _attrs(values: Mapping[str, str | float | None]) -> str:
    items = [f"{k}={quote_id(str(v))}" for k, v in values.items() if v is not None]
    return "[" + ", ".join(items) + "]"


def _label(view: View, node: Node, roots: Mapping[str, str]) -> str:
    lines = []
    if node.id in roots:
        lines.append(roots[node.id])
    lines.append(view.label(node))
    if node.run is not None:
        lines.append(f"({node.run.job_type or 'run'})")
    elif node.version is not None:
        aliases = [a for a in node.version.aliases if a != "latest"]
        if aliases:
            lines.append("[" + ", ".join(aliases) + "]")
    state = view.state(node.id)
    if state in _MARKS:
        lines.append(f"({_MARKS[state]})")
    return "\n".join(lines)


def diff_dot(a: View, b: View, *, context: int | None = 1) -> str:
    """The DOT text of two upstream views drawn as one graph, coloured by side.

    The shared part is drawn ``context`` steps (runs or versions) around what differs, and
    the merge bases; the older shared history folds into one box that counts it (``None``:
    draw it all).
    """
    if a.graph.root is None or b.graph.root is None:
        raise InvalidInput("a diff picture needs two rooted upstream views")
    found = ancestry(a.graph, b.graph)
    ids_a, ids_b = a.graph.ids, b.graph.ids
    nodes: dict[str, tuple[Node, View]] = {n.id: (n, b) for n in b.graph.nodes}
    nodes.update((n.id, (n, a)) for n in a.graph.nodes)
    edges = {(e.source, e.target) for g in (a.graph, b.graph) for e in g.edges}
    hidden = _folded(nodes, edges, ids_a ^ ids_b, set(found.merge_bases), context)
    nodes = {i: pair for i, pair in nodes.items() if i not in hidden}
    roots = {a.graph.root: "A", b.graph.root: "B"}
    if a.graph.root == b.graph.root:
        roots = {a.graph.root: "A = B"}
    bases = set(found.merge_bases)

    def side(node_id: str) -> Side:
        if node_id in ids_a and node_id in ids_b:
            return "shared"
        return "a" if node_id in ids_a else "b"

    lines = [
        "digraph diff {",
        # top to bottom, as every other picture: left to right, a 20-stage side was 4,487 px wide
        f"\tgraph {_attrs({'rankdir': 'TB', 'fontname': 'Helvetica', 'nodesep': 0.2, 'ranksep': 0.3})}",  # noqa: E501
        f"\tnode {_attrs({'fontname': 'Helvetica', 'fontsize': 11, 'style': 'filled'})}",
        f"\tedge {_attrs({'arrowsize': 0.6})}",
    ]
    for node_id in sorted(nodes):
        node, view = nodes[node_id]
        fill, line, text = SIDE_COLOURS[side(node_id)]
        style = ["filled"]
        attrs: dict[str, str | float | None] = {
            "label": _label(view, node, roots),
            "fillcolor": fill,
            "color": line,
            "fontcolor": text,
            "tooltip": node.ref or node_id,
        }
        if node.run is not None:
            attrs["shape"] = "box"
            style.append("rounded")
            attrs["fontsize"] = 10
        else:
            attrs["shape"] = "ellipse"
            version = node.version
            if side(node_id) != "shared" and version is not None:
                attrs["penwidth"] = 2.0
                if version.description:  # what it is: the noisy source, the surgery
                    wrapped = textwrap.wrap(version.description, 26, max_lines=3)
                    attrs["label"] = "\n".join([str(attrs["label"]), *wrapped])
        if view.state(node_id) in (DEAD_END, TRUNCATED, DELETED):
            style.append("dashed")
        if node_id in roots:
            attrs.update(peripheries=2, penwidth=2.5, fontsize=13)
        if node_id in bases:
            attrs.update(penwidth=3.0, color="#333333", fontcolor="#111111")
            attrs["label"] = f"merge base\n{attrs['label']}"
        attrs["style"] = ",".join(style)
        lines.append(f"\t{quote_id(node_id)} {_attrs(attrs)}")
    if hidden:
        versions = sum(1 for i in hidden if ":" in i)
        fold: dict[str, str | float | None] = {
            "shape": "box", "style": "rounded,dashed", "color": SIDE_COLOURS["shared"][1],
            "fontcolor": SIDE_COLOURS["shared"][2], "fontsize": 10,
            "label": "earlier shared history\n"
            f"{counted(versions, 'version')}, {counted(len(hidden) - versions, 'run')}",
        }  # fmt: skip
        lines.append(f"\t{quote_id(_FOLD)} {_attrs(fold)}")
        edges = {(_FOLD if s in hidden else s, t) for s, t in edges if t not in hidden}
    for source, target in sorted(edges):
        from_side: Side = "shared" if source == _FOLD else side(source)
        _, line, _ = SIDE_COLOURS[_edge_side(from_side, side(target))]
        width = 1.0 if line == SIDE_COLOURS["shared"][1] else 1.8
        lines.append(
            f"\t{quote_id(source)} -> {quote_id(target)} {_attrs({'color': line, 'penwidth': width})}"  # noqa: E501
        )
    lines.append(_legend(a, b, found.shared_inputs))
    lines.append("}")
    return "\n".join(lines) + "\n"


_FOLD = "(earlier shared history)"  # no node id looks like it: ids are refs or run ids


def _folded(
    nodes: Mapping[str, object],
    edges: set[tuple[str, str]],
    differing: frozenset[str],
    bases: set[str],
    context: int | None,
) -> set[str]:
    """The shared nodes more than ``context`` steps from anything that differs, bar the
    merge bases: what the picture folds away."""
    if context is None:
        return set()
    import networkx as nx  # here: a process that draws no graph does not load it

    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    near = set(differing) | bases
    if differing:
        g.add_node(_FOLD)
        g.add_edges_from((_FOLD, n) for n in differing)
        near |= set(nx.single_source_shortest_path_length(g, _FOLD, cutoff=context + 1))
        near.discard(_FOLD)
    return {n for n in nodes if n not in near}


def _edge_side(source: Side, target: Side) -> Side:
    if source == target:
        return source
    return target if target != "shared" else source


def _legend(a: View, b: View, shared: int) -> str:
    def name(view: View, letter: str) -> str:
        node = view.node(view.graph.root or "")
        return html.escape(view.label(node)) if node is not None else letter

    name_a, name_b = name(a, "A"), name(b, "B")
    rows = [
        (SIDE_COLOURS["a"], f"only in A ({name_a})'s upstream"),
        (SIDE_COLOURS["b"], f"only in B ({name_b})'s upstream"),
        (SIDE_COLOURS["shared"], f"shared by both ({counted(shared, 'version')})"),
    ]
    cells = "".join(
        f'<TR><TD BGCOLOR="{fill}" COLOR="{line}" WIDTH="18"> </TD>'
        f'<TD ALIGN="LEFT"><FONT COLOR="{text}">{label}</FONT></TD></TR>'
        for (fill, line, text), label in rows
    )
    table = f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="3" CELLPADDING="3">{cells}</TABLE>>'
    return f'\tlegend [shape=plaintext, style="", label={table}]'


def render_diff(
    api: Api,
    a: str,
    b: str,
    *,
    depth: int | None = DEPTH,
    fmt: Format = "svg",
) -> bytes:
    """Fetch both upstreams, classify them and draw them as one picture (module docstring).

    ``depth`` should reach past the merge bases on both sides: a node beyond one walk's
    depth would be drawn as the other side's alone.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return render(diff_dot(ask(api, a, "upstream", depth), ask(api, b, "upstream", depth)), fmt)
