"""Plain-text pictures of lineage for the terminal: generations and derivation trees.

Everything a line says about a node (its label, its project when it is another one, dead end,
truncated, deleted) comes from the :class:`~lineage.view.View`; this module only lays it out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from lineage.columns import counted, left
from lineage.modelcard import edge_kind
from lineage.records import Node, VersionRecord
from lineage.view import ALIVE, TRUNCATED, View, outcome_types

__all__ = ["lineage_lines", "path_lines", "print_view", "summary", "tree_lines"]

_MARKS = {"dead_end": "(dead end)", "truncated": "(truncated)", "deleted": "(deleted)"}


def _aliases(node: Node) -> str:
    aliases = [a for a in node.version.aliases if a != "latest"] if node.version else []
    return f" [{', '.join(aliases)}]" if aliases else ""


def _mark(view: View, node_id: str) -> str:
    state = view.state(node_id)
    return "" if state == ALIVE else "  " + _MARKS[state]


def _version_text(view: View, node_id: str) -> str:
    node = view.node(node_id)
    if node is None:
        return node_id
    return view.label(node) + _aliases(node) + _mark(view, node_id)


def _outcome_text(view: View, node_id: str) -> str:
    # a folded leaf is a dead end by nature: only the other states are worth a word
    node = view.node(node_id)
    if node is None:
        return node_id
    state = view.state(node_id)
    word = f" ({_MARKS[state][1:-1]})" if state in ("truncated", "deleted") else ""
    return view.label(node) + _aliases(node) + word


def _run_text(view: View, node_id: str) -> str:
    node = view.node(node_id)
    if node is None or node.run is None:
        return node_id
    run = node.run
    state = "" if run.state == "finished" else f", {run.state}"
    return f"{view.label(node)} ({run.job_type or 'run'}{state})"


def lineage_lines(view: View) -> list[str]:
    """One line per run, grouped by generation away from the root.

    Upstream, each run is listed with the versions it consumed; downstream, with the versions
    it produced; ``both`` prints the two halves one after the other. A version reached by
    several paths appears at its nearest generation only.
    """
    root = view.graph.root
    if root is None:
        return []
    root_node = view.node(root)
    head = (
        "run " + _run_text(view, root)
        if root_node is not None and root_node.kind == "run"
        else _version_text(view, root)
    )
    # a side with no run says so (unless depth stopped the walk at the root: "truncated")
    cut = view.state(root) == TRUNCATED
    if view.mode != "both":
        upstream = view.mode != "downstream"
        lines = _generations(view, root, upstream=upstream)
        said = [] if cut else [f"  nothing {'upstream' if upstream else 'downstream'}"]
        return [head, *(lines or said)]
    said = [] if cut else ["    nothing"]
    return [
        head,
        "  upstream",
        *(_generations(view, root, upstream=True) or said),
        "  downstream",
        *(_generations(view, root, upstream=False) or said),
    ]


def _generations(view: View, root: str, *, upstream: bool) -> list[str]:
    step: dict[str, list[str]] = {}
    for edge in view.graph.edges:
        near, far = (edge.target, edge.source) if upstream else (edge.source, edge.target)
        step.setdefault(near, []).append(far)
    root_node = view.node(root)
    lines: list[str] = []
    seen = {root}
    frontier = [root]
    generation = 0
    arrow = "<-" if upstream else "->"
    while frontier:
        if generation == 0 and root_node is not None and root_node.kind == "run":
            runs = [root]
        else:
            found = {r for n in frontier for r in step.get(n, ()) if r not in seen}
            runs = sorted(found, key=lambda r: (_run_text(view, r), r))
            seen.update(runs)
        if not runs:
            break
        generation += 1
        following: list[str] = []
        for run_id in runs:
            versions = sorted(step.get(run_id, ()))
            names = ", ".join(_version_text(view, v) for v in versions) or "nothing"
            lines.append(f"  {generation:>3}  {left(_run_text(view, run_id), 36)} {arrow} {names}")
            following += [v for v in versions if v not in seen]
        seen.update(following)
        frontier = sorted(set(following))
    return lines


def tree_lines(view: View, goes_on: Collection[str] = ()) -> list[str]:
    """A derivation tree: each version under the one it came from, with the run that made it.

    Leaves of outcome types (evaluation results: types whose versions are all leaves here) are
    folded into their parent's line. ``goes_on``: versions under which a tree printed in part
    goes on unprinted, marked ``...``.
    """
    graph = view.graph
    children: dict[str, list[tuple[str, str | None]]] = {}
    for edge in graph.edges:
        children.setdefault(edge.source, []).append((edge.target, edge.run))
    outcomes = outcome_types(view)
    seen: set[str] = set()
    lines: list[str] = []

    def order(node_id: str) -> tuple[str, str, int, str]:
        node = view.node(node_id)
        if node is None or node.version is None:
            return ("", "", 0, node_id)
        return (node.version.project, node.version.name, node.version.index, node_id)

    def folded(node_id: str) -> bool:
        node = view.node(node_id)
        return (
            node is not None
            and node.version is not None
            and node.version.type in outcomes
            and not children.get(node_id)
        )

    def visit(node_id: str, prefix: str, last: bool, via: str | None, top: bool, up: str) -> None:
        node = view.node(node_id)
        text = (view.label(node) + _aliases(node)) if node is not None else node_id
        if via is not None:
            text += f"  <- {view.run_label(via)}{_kind(view, via, up, node_id)}"
        kids = sorted(children.get(node_id, ()), key=lambda kid: order(kid[0]))
        leaves = [k for k, _ in kids if folded(k)]
        if leaves:
            text += "  => " + ", ".join(_outcome_text(view, k) for k in leaves)
        text += _mark(view, node_id) + ("  ..." if node_id in goes_on else "")
        again = node_id in seen and bool(kids)
        connector = "" if top else ("`- " if last else "|- ")
        lines.append(prefix + connector + text + ("  (see above)" if again else ""))
        if again:
            return
        seen.add(node_id)
        inner = prefix + ("" if top else ("   " if last else "|  "))
        rest = [(k, r) for k, r in kids if not folded(k)]
        for i, (child, run_id) in enumerate(rest):
            visit(child, inner, i == len(rest) - 1, run_id, False, node_id)

    if graph.root is not None:
        visit(graph.root, "", True, None, True, "")
    return lines


def _kind(view: View, run_id: str, source: str, target: str) -> str:
    """`` [merge]``: the derivation kind of a tree's edge, when its run names one."""
    run = view.runs.get(run_id)
    kind = edge_kind(run, _version(view, source), _version(view, target)) if run else None
    return f" [{kind}]" if kind else ""


def _version(view: View, node_id: str) -> VersionRecord | None:
    node = view.node(node_id)
    return node.version if node is not None else None


def path_lines(view: View) -> list[str]:
    """The nodes of a path answer in the order they came about (oldest first): a version, the
    run that consumed it, what that run produced... A node reached from more than one node of
    the path names them all."""
    parents: dict[str, list[str]] = {}
    for edge in view.graph.edges:
        parents.setdefault(edge.target, []).append(edge.source)
    order = {node.id: i for i, node in enumerate(view.graph.nodes)}
    import networkx as nx  # here: a process that draws no graph does not load it

    g = nx.DiGraph()
    g.add_nodes_from(order)
    g.add_edges_from((e.source, e.target) for e in view.graph.edges)
    # a parent before its children; ties broken by the order of the answer
    placed = list(nx.lexicographical_topological_sort(g, key=order.__getitem__))
    lines = []
    for node_id in placed:
        node = view.node(node_id)
        text = (
            "run " + _run_text(view, node_id)
            if node is not None and node.kind == "run"
            else _version_text(view, node_id)
        )
        sources = parents.get(node_id, ())
        if len(sources) > 1:
            names = [view.label(n) if (n := view.node(s)) else s for s in sorted(sources)]
            text += "  <- " + ", ".join(names)
        lines.append(("  -> " if sources else "") + text)
    return lines


def summary(view: View) -> str:
    """One line of counts: nodes, edges, and the states other than alive."""
    graph = view.graph
    runs = sum(1 for n in graph.nodes if n.kind == "run")
    versions = len(graph.nodes) - runs
    if view.mode == "tree":
        head = f"{counted(versions, 'version')}, {counted(len(graph.edges), 'derivation')}"
    else:
        edges = counted(len(graph.edges), "edge")
        head = f"{counted(versions, 'version')}, {counted(runs, 'run')}, {edges}"
    counts = [
        counted(len(view.dead_ends), "dead end"),
        f"{len(view.truncated):,} truncated",
        f"{len(view.deleted):,} deleted",
    ]
    note = "  (cut by --depth: the graph goes on)" if graph.truncated else ""
    return f"{head}; {', '.join(counts)}{note}"


def print_view(view: View, echo: Callable[[str], None], goes_on: Collection[str] = ()) -> None:
    """The text view of an answer (a tree, or generations), then its summary line
    (``goes_on`` as for :func:`tree_lines`)."""
    lines = tree_lines(view, goes_on) if view.mode == "tree" else lineage_lines(view)
    for line in lines:
        echo(line)
    echo(summary(view))
