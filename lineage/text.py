"""Plain-text pictures of lineage for the terminal: generations and derivation trees."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lineage.records import Node, RunRecord, Subgraph, VersionRecord

__all__ = ["dead_ends", "lineage_lines", "tree_lines"]


def _short(version: VersionRecord | None, fallback: str) -> str:
    if version is None:
        return fallback
    aliases = [a for a in version.aliases if a != "latest"]
    return f"{version.name}:v{version.index}" + (f" [{', '.join(aliases)}]" if aliases else "")


def lineage_lines(graph: Subgraph, direction: str) -> list[str]:
    """One line per run, grouped by generation away from the root.

    Upstream, each run is listed with the versions it consumed; downstream, with the versions
    it produced. A version reached by several paths appears at its nearest generation only.
    """
    nodes = {node.id: node for node in graph.nodes}
    upstream = direction != "downstream"
    step: dict[str, list[str]] = {}
    for edge in graph.edges:
        near, far = (edge.target, edge.source) if upstream else (edge.source, edge.target)
        step.setdefault(near, []).append(far)
    root = graph.root
    if root is None:
        return []
    root_node = nodes.get(root)
    lines = [_node_text(root_node, root)]
    seen = {root}
    frontier = [root]
    generation = 0
    arrow = "<-" if upstream else "->"
    while frontier:
        runs = sorted({r for n in frontier for r in step.get(n, ()) if r not in seen})
        if root_node is not None and root_node.kind == "run" and generation == 0:
            runs, frontier = [root], [root]
        else:
            seen.update(runs)
        generation += 1 if runs else 0
        following: list[str] = []
        for run_id in runs:
            versions = sorted(step.get(run_id, ()))
            run = nodes.get(run_id)
            label = _run_text(run.run if run else None, run_id)
            names = ", ".join(_short(_version(nodes, v), v) for v in versions) or "nothing"
            lines.append(f"  {generation:>3}  {label:<36} {arrow} {names}")
            following += [v for v in versions if v not in seen]
        seen.update(following)
        frontier = sorted(set(following))
        if not runs:
            break
    return lines


def _order(nodes: Mapping[str, Node], node_id: str) -> tuple[str, int, str]:
    version = _version(nodes, node_id)
    return (version.name, version.index, "") if version else ("", 0, node_id)


def _version(nodes: Mapping[str, Node], node_id: str) -> VersionRecord | None:
    node = nodes.get(node_id)
    return node.version if node else None


def _node_text(node: Node | None, fallback: str) -> str:
    if node is not None and node.version is not None:
        return node.version.ref + _alias_text(node.version)
    if node is not None and node.run is not None:
        return "run " + _run_text(node.run, fallback)
    return fallback


def _alias_text(version: VersionRecord) -> str:
    aliases = [a for a in version.aliases if a != "latest"]
    return f" [{', '.join(aliases)}]" if aliases else ""


def _run_text(run: RunRecord | None, fallback: str) -> str:
    if run is None:
        return fallback
    state = "" if run.state == "finished" else f", {run.state}"
    return f"{run.name} ({run.job_type or 'run'}{state})"


def dead_ends(graph: Subgraph) -> set[str]:
    """Versions of the root's type that nothing of that type was derived from: abandoned
    branches. A version holding an alias other than ``latest`` is a destination, not a dead end.
    """
    nodes = {node.id: node for node in graph.nodes}
    root = nodes.get(graph.root or "")
    if root is None or root.version is None:
        return set()
    kind = root.version.type
    parents = {e.source for e in graph.edges if (v := _version(nodes, e.target)) and v.type == kind}
    return {
        node.id
        for node in graph.nodes
        if node.version is not None
        and node.version.type == kind
        and node.id not in parents
        and not [a for a in node.version.aliases if a != "latest"]
    }


def tree_lines(graph: Subgraph, runs: Mapping[str, RunRecord]) -> list[str]:
    """A derivation tree: each version under the one it came from, with the run that made it.

    Leaves of other types (evaluation results) are folded into their parent's line.
    """
    nodes = {node.id: node for node in graph.nodes}
    root = nodes.get(graph.root or "")
    kind = root.version.type if root is not None and root.version is not None else None
    children: dict[str, list[tuple[str, str | None]]] = {}
    for edge in graph.edges:
        children.setdefault(edge.source, []).append((edge.target, edge.run))
    ends = dead_ends(graph)
    seen: set[str] = set()
    lines: list[str] = []

    def folded(node_id: str) -> bool:
        version = _version(nodes, node_id)
        return version is not None and version.type != kind and not children.get(node_id)

    def visit(node_id: str, prefix: str, last: bool, via: str | None, top: bool) -> None:
        text = _short(_version(nodes, node_id), node_id)
        if via is not None:
            run = runs.get(via)
            text += f"  <- {run.name if run else via}"
        kids = sorted(children.get(node_id, ()), key=lambda kid: _order(nodes, kid[0]))
        leaves = [k for k, _ in kids if folded(k)]
        if leaves:
            text += "  => " + ", ".join(_short(_version(nodes, k), k) for k in leaves)
        if node_id in ends:
            text += "  (dead end)"
        again = node_id in seen and bool(kids)
        connector = "" if top else ("`- " if last else "|- ")
        lines.append(prefix + connector + text + ("  (see above)" if again else ""))
        if again:
            return
        seen.add(node_id)
        inner = prefix + ("" if top else ("   " if last else "|  "))
        rest = [(k, r) for k, r in kids if not folded(k)]
        for i, (child, run_id) in enumerate(rest):
            visit(child, inner, i == len(rest) - 1, run_id, False)

    if graph.root is not None:
        visit(graph.root, "", True, None, True)
    return lines


def print_subgraph_summary(graph: Subgraph, echo: Callable[[str], None]) -> None:
    runs = sum(1 for n in graph.nodes if n.kind == "run")
    echo(
        f"{len(graph.nodes) - runs} versions, {runs} runs, {len(graph.edges)} edges"
        + ("  (truncated by depth)" if graph.truncated else "")
    )
