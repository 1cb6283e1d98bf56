"""What a picture of a classified answer shows: a :class:`RenderPlan`.

:func:`build` takes a :class:`~lineage.view.View` (whose states and labels it never decides
again) and decides the drawing: the path to the version holding an alias (``highlight``), and
which siblings collapse: more than ``collapse`` siblings of one kind (same parent, same side,
same kind and type) fold into one "+k more" node, as W&B does from five. Nodes on the
highlighted path are always kept, then nodes that lead somewhere, then the oldest; a hidden
sibling takes with it whatever is reachable only through it, and an edge between a shown node
and a hidden one is kept, drawn to the group that stands for the hidden one.

:mod:`lineage.render` writes the plan as DOT and draws it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from lineage.errors import InvalidInput
from lineage.records import CONSUMED_BY, PRODUCED, Edge, Node
from lineage.view import DEAD_END, DELETED, TRUNCATED, NodeState, View

__all__ = ["Mode", "PlanEdge", "PlanNode", "RenderPlan", "build"]

logger = logging.getLogger(__name__)

Mode = Literal["lineage", "tree"]


@dataclass(frozen=True, kw_only=True)
class PlanNode:
    """One node to draw: a run, a version, or a "+k more" group standing for hidden siblings."""

    id: str  # the DOT node id: the subgraph's node id, or "more:..." for a group
    kind: Literal["run", "artifact_version", "more"]
    label: str
    type: str  # artifact type, run job type, or the type of the hidden siblings
    run_state: str | None = None  # a run's state
    aliases: tuple[str, ...] = ()
    state: NodeState = "alive"  # as decided by lineage.view
    highlighted: bool = False
    target: bool = False  # holds the highlighted alias
    url: str | None = None
    tooltip: str = ""
    hidden: tuple[str, ...] = ()  # a group: the siblings it stands for
    below: int = 0  # a group: how many nodes further on vanished with them

    @property
    def dead(self) -> bool:
        return self.state == DEAD_END


@dataclass(frozen=True, kw_only=True)
class PlanEdge:
    source: str
    target: str
    kind: str  # consumed_by, produced, derived, or "more" into or out of a group
    label: str
    highlighted: bool = False
    dead: bool = False  # leads into a dead end


@dataclass(frozen=True, kw_only=True)
class RenderPlan:
    """What will be drawn, in drawing order (roots first, siblings oldest first)."""

    mode: Mode
    nodes: tuple[PlanNode, ...]
    edges: tuple[PlanEdge, ...]
    root: str | None
    targets: tuple[str, ...]  # versions holding the highlighted alias
    path: frozenset[str]  # node ids on a path between the root and a target
    truncated: bool

    def node(self, node_id: str) -> PlanNode:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def groups(self) -> tuple[PlanNode, ...]:
        """The "+k more" nodes."""
        return tuple(node for node in self.nodes if node.kind == "more")


# deciding what to draw ---------------------------------------------------------------------


def build(
    view: View,
    *,
    highlight: str | None = None,
    collapse: int = 5,
    link: Callable[[Node], str] | None = None,
) -> RenderPlan:
    """Decide what to draw of a classified answer: its states and labels are the view's, a
    tree's edges are named by the view's runs. ``collapse=0`` keeps every sibling."""
    if isinstance(collapse, bool) or not isinstance(collapse, int) or collapse < 0:
        raise InvalidInput(f"collapse must be an integer >= 0 (0 keeps all), got {collapse!r}")
    graph = view.graph
    mode: Mode = "tree" if view.mode == "tree" else "lineage"
    nodes = {n.id: n for n in graph.nodes if mode == "lineage" or n.kind == "artifact_version"}
    edges = [e for e in graph.edges if e.source in nodes and e.target in nodes]
    down: dict[str, list[Edge]] = {node_id: [] for node_id in nodes}
    up: dict[str, list[Edge]] = {node_id: [] for node_id in nodes}
    for edge in edges:
        down[edge.source].append(edge)
        up[edge.target].append(edge)
    root = graph.root if graph.root in nodes else None

    targets = tuple(
        node_id
        for node_id, node in nodes.items()
        if highlight and node.version is not None and highlight in node.version.aliases
    )
    if highlight and not targets:
        logger.info("no version in the graph holds alias %r: nothing to highlight", highlight)
    path, path_edges = _path(root, targets, down, up)
    dead = view.dead_ends

    order = {node_id: _age(node) for node_id, node in nodes.items()}
    layers, depth = _layers(nodes, down, up, root, order)
    shown, groups = _collapse(layers, depth, nodes, down, up, path, dead, collapse, order)

    plan_nodes: list[PlanNode] = []
    plan_edges: list[PlanEdge] = []
    by_level: dict[int, list[_Group]] = {}
    for group in groups:
        by_level.setdefault(depth[group.parent] + 1, []).append(group)
    # Graphviz starts from the input order: roots first, siblings oldest first, groups last.
    for level, layer in enumerate(layers):
        for node_id in layer:
            if node_id in shown:
                plan_nodes.append(_plan_node(view, nodes[node_id], path, targets, link))
        for group in by_level.get(level, ()):
            plan_nodes.append(group.node(nodes))
            plan_edges.append(group.edge(view))
    # An edge between a shown node and a hidden one is drawn to the group that stands for the
    # hidden one: what a hidden run produced keeps its producer, its inputs their consumer.
    stands_for = {hidden: group.id for group in groups for hidden in group.hidden}
    group_edges: set[tuple[str, str]] = {(e.source, e.target) for e in plan_edges}
    for edge in edges:
        source = edge.source if edge.source in shown else stands_for.get(edge.source)
        target = edge.target if edge.target in shown else stands_for.get(edge.target)
        if source is None or target is None or source == target:
            continue
        if source != edge.source or target != edge.target:
            if (source, target) not in group_edges:
                group_edges.add((source, target))
                plan_edges.append(
                    PlanEdge(
                        source=source,
                        target=target,
                        kind="more",
                        label=_group_edge_label(edge, view),
                    )
                )
            continue
        plan_edges.append(
            PlanEdge(
                source=edge.source,
                target=edge.target,
                kind=edge.kind,
                label=_edge_label(edge, view),
                highlighted=(edge.source, edge.target) in path_edges,
                dead=edge.target in dead,
            )
        )
    position = {node.id: i for i, node in enumerate(plan_nodes)}
    plan_edges.sort(key=lambda e: (position[e.target], position[e.source]))
    return RenderPlan(
        mode=mode,
        nodes=tuple(plan_nodes),
        edges=tuple(plan_edges),
        root=root,
        targets=targets,
        path=path,
        truncated=graph.truncated,
    )


def _age(node: Node) -> tuple[float, int, str]:
    if node.version is not None:
        return (node.version.created_at, node.version.index, node.id)
    if node.run is not None:
        return (node.run.started_at, 0, node.id)
    return (0.0, 0, node.id)


def _project(node: Node) -> str:
    record = node.version or node.run
    return record.project if record is not None else ""


def _type(node: Node) -> str:
    if node.version is not None:
        return node.version.type
    if node.run is not None:
        return node.run.job_type or "run"
    return node.kind


def _reach(start: str, adjacency: Mapping[str, list[Edge]], forward: bool) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        following = []
        for node_id in frontier:
            for edge in adjacency[node_id]:
                far = edge.target if forward else edge.source
                if far not in seen:
                    seen.add(far)
                    following.append(far)
        frontier = following
    return seen


def _path(
    root: str | None,
    targets: Iterable[str],
    down: Mapping[str, list[Edge]],
    up: Mapping[str, list[Edge]],
) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """Nodes and edges on some directed path between the root and a target, either way round."""
    found: set[tuple[str, str]] = set()
    nodes: set[str] = set()
    for target in targets:
        if root is None:
            on = _reach(target, up, forward=False)  # no root: everything that led to it
        else:
            on = set()
            for start, end in ((root, target), (target, root)):
                after = _reach(start, down, forward=True)
                if end in after:
                    on = after & _reach(end, up, forward=False)
                    break
        nodes |= on
        found |= {(e.source, e.target) for n in on for e in down[n] if e.target in on}
    return frozenset(nodes), frozenset(found)


def _layers(
    nodes: Mapping[str, Node],
    down: Mapping[str, list[Edge]],
    up: Mapping[str, list[Edge]],
    root: str | None,
    order: Mapping[str, tuple[float, int, str]],
) -> tuple[list[list[str]], dict[str, int]]:
    """Breadth-first generations from the root (ignoring edge direction), oldest first."""
    depth: dict[str, int] = {}
    layers: list[list[str]] = []
    sources = sorted((n for n in nodes if not up[n]), key=order.__getitem__)
    seeds = ([root] if root is not None else []) + sources + sorted(nodes, key=order.__getitem__)
    for seed in seeds:
        if seed in depth:
            continue
        depth[seed] = 0
        queue = deque([seed])
        while queue:
            node_id = queue.popleft()
            level = depth[node_id]
            while len(layers) <= level:
                layers.append([])
            layers[level].append(node_id)
            near = [e.target for e in down[node_id]] + [e.source for e in up[node_id]]
            for far in sorted(set(near), key=order.__getitem__):
                if far not in depth:
                    depth[far] = level + 1
                    queue.append(far)
    return layers, depth


@dataclass(kw_only=True)
class _Group:
    parent: str
    downstream: bool
    kind: str
    type: str
    hidden: list[str]
    edges: list[Edge]  # between the parent and the hidden siblings
    below: int = 0

    @property
    def id(self) -> str:
        side = "down" if self.downstream else "up"
        return f"more:{self.parent}:{side}:{self.kind}:{self.type}"

    def node(self, nodes: Mapping[str, Node]) -> PlanNode:
        noun = f"{self.type} runs" if self.kind == "run" else f"{self.type} versions"
        label = f"+{len(self.hidden)} more {noun}"
        if self.below:
            label += f"\n({self.below} more beyond)"
        return PlanNode(
            id=self.id,
            kind="more",
            label=label,
            type=self.type,
            tooltip=", ".join(nodes[h].ref or nodes[h].label for h in self.hidden),
            hidden=tuple(self.hidden),
            below=self.below,
        )

    def edge(self, view: View) -> PlanEdge:
        labels = sorted({_group_edge_label(edge, view) for edge in self.edges})
        source, target = (self.parent, self.id) if self.downstream else (self.id, self.parent)
        return PlanEdge(source=source, target=target, kind="more", label=", ".join(labels))


def _group_edge_label(edge: Edge, view: View) -> str:
    if edge.kind in (CONSUMED_BY, PRODUCED):
        return _edge_label(edge, view)
    run = view.runs.get(edge.run or "")
    return (run.job_type if run is not None else None) or "run"


def _collapse(
    layers: list[list[str]],
    depth: Mapping[str, int],
    nodes: Mapping[str, Node],
    down: Mapping[str, list[Edge]],
    up: Mapping[str, list[Edge]],
    path: Collection[str],
    dead: Collection[str],
    collapse: int,
    order: Mapping[str, tuple[float, int, str]],
) -> tuple[set[str], list[_Group]]:
    """Which nodes stay visible, and the groups that stand for the hidden siblings."""

    def near(node_id: str) -> list[tuple[str, bool, Edge]]:
        return [(e.target, True, e) for e in down[node_id]] + [
            (e.source, False, e) for e in up[node_id]
        ]

    groups: list[_Group] = []
    hidden: set[str] = set()
    shown: set[str] = set()
    for level, layer in enumerate(layers):
        for node_id in layer:
            parents = [n for n, _, _ in near(node_id) if depth[n] == level - 1]
            if node_id not in hidden and (not parents or any(p in shown for p in parents)):
                shown.add(node_id)
        if not collapse:
            continue
        for parent in layer:
            if parent not in shown:
                continue
            buckets: dict[tuple[bool, str, str], list[str]] = {}
            links: dict[str, list[Edge]] = {}
            for child, downstream, edge in near(parent):
                if depth[child] != level + 1:
                    continue
                if {n for n, _, _ in near(child) if depth[n] == level} != {parent}:
                    continue  # a join of several parents stays: hiding it would cut the others
                key = (downstream, nodes[child].kind, _type(nodes[child]))
                if child not in links:
                    buckets.setdefault(key, []).append(child)
                links.setdefault(child, []).append(edge)
            for (downstream, kind, type_), kids in buckets.items():
                if len(kids) <= collapse:
                    continue
                kids.sort(
                    key=lambda k: (
                        k not in path,
                        not any(depth[n] > level + 1 for n, _, _ in near(k)),
                        k in dead,
                        order[k],
                    )
                )
                keep = max(collapse, sum(1 for k in kids if k in path))
                drop = kids[keep:]
                hidden.update(drop)
                groups.append(
                    _Group(
                        parent=parent,
                        downstream=downstream,
                        kind=kind,
                        type=type_,
                        hidden=drop,
                        edges=[edge for k in drop for edge in links[k]],
                    )
                )
    for group in groups:
        beyond: set[str] = set()
        frontier = list(group.hidden)
        while frontier:
            node_id = frontier.pop()
            for far, _, _ in near(node_id):
                if depth[far] > depth[node_id] and far not in shown and far not in beyond:
                    if far not in hidden:
                        beyond.add(far)
                    frontier.append(far)
        group.below = len(beyond)
    return shown, groups


def _plan_node(
    view: View,
    node: Node,
    path: Collection[str],
    targets: Collection[str],
    link: Callable[[Node], str] | None,
) -> PlanNode:
    url = link(node) if link is not None else None
    state = view.state(node.id)
    if node.version is not None:
        version = node.version
        label = view.label(node)
        if version.aliases:
            label += "\n" + ", ".join(version.aliases)
        if state in (TRUNCATED, DELETED):
            label += "\n(" + _STATE_WORDS[state] + ")"
        return PlanNode(
            id=node.id,
            kind="artifact_version",
            label=label,
            type=version.type,
            aliases=version.aliases,
            state=state,
            highlighted=node.id in path,
            target=node.id in targets,
            url=url,
            tooltip=f"{version.ref} ({version.type}, {_STATE_WORDS[state]})",
        )
    run = node.run
    run_state = run.state if run is not None else "unknown"
    job_type = _type(node)
    return PlanNode(
        id=node.id,
        kind="run",
        label=f"{view.label(node)}\n{job_type} · {run_state}",
        type=job_type,
        run_state=run_state,
        state=state,
        highlighted=node.id in path,
        url=url,
        tooltip=f"run {node.id}" + (f" ({run.project})" if run is not None else ""),
    )


_STATE_WORDS = {
    "alive": "alive",
    "dead_end": "dead end",
    "truncated": "truncated",
    "deleted": "deleted",
}


def _edge_label(edge: Edge, view: View) -> str:
    if edge.kind == CONSUMED_BY:
        return "consumed"
    if edge.kind == PRODUCED:
        return "produced"
    run = view.runs.get(edge.run or "")
    if run is None:
        return edge.run or edge.kind
    return f"{view.run_label(run.id)}\n{run.job_type or 'run'}"
