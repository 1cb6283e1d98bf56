"""What a picture of a classified answer shows: a :class:`RenderPlan`.

:func:`build` takes a :class:`~lineage.view.View` (whose states and labels it never decides
again) and decides the drawing, in this order:

- what the reader chose not to see (:mod:`lineage.hiding`): ``hide_datasets``,
  ``hide_evaluations``; a path through hidden nodes between two drawn ones is kept as one
  dashed ``via`` edge, and what is no longer connected to the root goes;
- the path to the version holding an alias (``highlight``);
- which siblings collapse: more than ``collapse`` siblings of one kind (same parent, same side,
  same kind and type) fold into one "+k more" node, as W&B does from five. Nodes on the
  highlighted path are always kept, then nodes that lead somewhere, then the oldest; a hidden
  sibling takes with it whatever is reachable only through it, and an edge between a shown
  node and a hidden one is kept, drawn to the group that stands for the hidden one;
- past ``max_nodes`` drawn nodes, the generations furthest from the root fold too, each into
  a "+k more" node under the last node drawn (the highlighted path stays whole), until at
  most :data:`FOLD_WIDTH` nodes stand side by side: the picture is never an unreadable
  wall. Every node of the answer is then drawn, hidden by choice, or counted by exactly one
  group (``len(hidden) + below``). ``expand`` names groups to open (their ids, as drawn),
  which is what a click on one asks for;
- the generations (:mod:`lineage.ranks`): a version consumed in several generations is drawn
  again, once a generation, beside its consumers.

:mod:`lineage.render` writes the plan as DOT and draws it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import Literal

from lineage.errors import InvalidInput
from lineage.hiding import VIA, contract, hidden_nodes, is_evaluation
from lineage.modelcard import edge_kind
from lineage.ranks import generations, repeats
from lineage.records import CONSUMED_BY, PRODUCED, Edge, Node
from lineage.view import DEAD_END, DELETED, TRUNCATED, NodeState, View

__all__ = [
    "MAX_NODES",
    "VIA",
    "Mode",
    "PlanEdge",
    "PlanNode",
    "RenderPlan",
    "build",
    "is_evaluation",
]

logger = logging.getLogger(__name__)

Mode = Literal["lineage", "tree"]
MAX_NODES = 500  # drawn nodes ("+k more" groups included) before generations fold
FOLD_WIDTH = 12  # once folding, at most this many nodes side by side: a screen's width


@dataclass(frozen=True, kw_only=True)
class PlanNode:
    """One node to draw: a run, a version, or a "+k more" group standing for hidden siblings."""

    id: str  # the DOT node id: the subgraph's node id, "more:..." a group, "copy:..." a copy
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
    copy_of: str | None = None  # a version drawn again beside a later generation's consumers
    rank: int | None = None  # its generation, top to bottom (None: left to Graphviz)

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
    hidden: frozenset[str] = frozenset()  # hidden by choice (hide_datasets, hide_evaluations)
    hid: tuple[str, ...] = ()  # what was chosen to hide: "datasets", "evaluations"
    folded: bool = False  # generations folded to stay under max_nodes
    total: int = 0  # nodes of the answer left after hiding: drawn or counted by a group
    of: str = ""  # the answer was a part of a bigger one: how many the whole holds ("10,000+")

    def node(self, node_id: str) -> PlanNode:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def groups(self) -> tuple[PlanNode, ...]:
        """The "+k more" nodes."""
        return tuple(node for node in self.nodes if node.kind == "more")

    @property
    def copies(self) -> tuple[PlanNode, ...]:
        """Versions drawn again beside a later generation's consumers."""
        return tuple(node for node in self.nodes if node.copy_of is not None)

    def shown(self) -> frozenset[str]:
        """The ids of the answer's nodes that are drawn (copies count as their original)."""
        return frozenset(node.copy_of or node.id for node in self.nodes if node.kind != "more")


# deciding what to draw ---------------------------------------------------------------------


def build(
    view: View,
    *,
    highlight: str | None = None,
    collapse: int = 5,
    link: Callable[[Node], str] | None = None,
    hide_datasets: bool = False,
    hide_evaluations: bool = False,
    max_nodes: int = MAX_NODES,
    expand: Collection[str] = (),
    expand_link: Callable[[str], str] | None = None,
) -> RenderPlan:
    """Decide what to draw of a classified answer: its states and labels are the view's, a
    tree's edges are named by the view's runs. ``collapse=0`` keeps every sibling,
    ``max_nodes=0`` every generation; ``expand`` lists "+k more" group ids to open (one no
    longer in the picture is ignored: the graph may have changed since it was drawn), and
    ``expand_link(group_id)`` gives each group a link (what a click on it opens)."""
    for name, value in (("collapse", collapse), ("max_nodes", max_nodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be an integer >= 0 (0 keeps all), got {value!r}")
    if isinstance(expand, str) or not all(
        isinstance(group, str) and group.startswith("more:") for group in expand
    ):
        raise InvalidInput(
            f"expand takes the ids of '+k more' groups (more:...), got {list(expand)[:3]!r}"
        )
    graph = view.graph
    mode: Mode = "tree" if view.mode == "tree" else "lineage"
    nodes = {n.id: n for n in graph.nodes if mode == "lineage" or n.kind == "artifact_version"}
    edges = [e for e in graph.edges if e.source in nodes and e.target in nodes]
    root = graph.root if graph.root in nodes else None
    hidden = hidden_nodes(view, nodes, edges, root, hide_datasets, hide_evaluations)
    if hidden:
        nodes, edges, hidden = contract(nodes, edges, hidden, root)
    down: dict[str, list[Edge]] = {node_id: [] for node_id in nodes}
    up: dict[str, list[Edge]] = {node_id: [] for node_id in nodes}
    for edge in edges:
        down[edge.source].append(edge)
        up[edge.target].append(edge)

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
    near = _Near(down, up)
    opened = frozenset(expand)
    # the nodes each side of the root: a group folds what leads away from it, never a node
    # between it and the root (an upstream picture's hub run folding the datasets the
    # root's own chain reads, and that chain with them)
    sides = (_reach(root, up, False), _reach(root, down, True)) if root is not None else None
    shown, groups = _collapse(
        layers, depth, nodes, near, path, dead, collapse, order, opened, sides
    )
    folded = False
    if max_nodes and len(shown) + len(groups) > max_nodes:
        shown, groups = _fit(
            layers, depth, nodes, near, shown, groups, path, root, max_nodes, opened
        )
        folded = True
    _count_below(groups, depth, near, shown)

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
            plan_nodes.append(group.node(nodes, expand_link))
            plan_edges.append(group.edge(view))
    # An edge between a shown node and a hidden one is drawn to the group that stands for the
    # hidden one: what a hidden run produced keeps its producer, its inputs their consumer.
    stands_for = {n: group.id for group in groups for n in (*group.hidden, *group.beyond)}
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
    plan_nodes, plan_edges = _by_generation(plan_nodes, plan_edges)
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
        hidden=frozenset(hidden),
        hid=tuple(
            w for w, on in (("datasets", hide_datasets), ("evaluations", hide_evaluations)) if on
        ),
        folded=folded,
        total=len(nodes),
    )


# generations ---------------------------------------------------------------------------------


def _by_generation(
    plan_nodes: list[PlanNode], plan_edges: list[PlanEdge]
) -> tuple[list[PlanNode], list[PlanEdge]]:
    """Rank every node by generation, and draw a version again beside each later generation
    that consumes it (see :mod:`lineage.ranks`)."""
    rank = generations((n.id for n in plan_nodes), ((e.source, e.target) for e in plan_edges))
    if rank is None:  # a cycle through "+k more" groups: Graphviz ranks it alone
        return plan_nodes, plan_edges
    versions = [n.id for n in plan_nodes if n.kind == "artifact_version"]
    extra = repeats(rank, ((e.source, e.target) for e in plan_edges), versions)
    by_id = {n.id: n for n in plan_nodes}
    moved = {(r.original, t): r.id for r in extra for t in r.targets}
    edges = []
    for edge in plan_edges:
        source = moved.get((edge.source, edge.target))
        edges.append(edge if source is None else replace(edge, source=source))
    copies = []
    for r in extra:
        original = by_id[r.original]
        highlighted = any(
            e.highlighted for e in plan_edges if e.source == r.original and e.target in r.targets
        )
        copies.append(
            replace(
                original,
                id=r.id,
                copy_of=r.original,
                rank=r.rank,
                highlighted=highlighted,
                target=False,
                tooltip=original.tooltip + ", drawn again beside its consumers",
            )
        )
    nodes = [replace(n, rank=rank[n.id]) for n in plan_nodes] + copies
    return nodes, edges


def _age(node: Node) -> tuple[float, int, str]:
    if node.version is not None:
        return (node.version.made_at, node.version.index, node.id)
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


class _Near:
    """Both sides of every node: (neighbour, whether it is downstream, the edge)."""

    def __init__(self, down: Mapping[str, list[Edge]], up: Mapping[str, list[Edge]]) -> None:
        self.down = down
        self.up = up

    def __call__(self, node_id: str) -> list[tuple[str, bool, Edge]]:
        return [(e.target, True, e) for e in self.down[node_id]] + [
            (e.source, False, e) for e in self.up[node_id]
        ]


@dataclass(kw_only=True)
class _Group:
    parent: str
    downstream: bool
    kind: str  # the hidden siblings' kind, or "" for a folded generation of any kinds
    type: str
    hidden: list[str]
    edges: list[Edge]  # between the parent and the hidden siblings
    beyond: list[str] = dataclass_field(default_factory=list)  # counted by this group only

    @property
    def below(self) -> int:
        return len(self.beyond)

    @property
    def id(self) -> str:
        side = "down" if self.downstream else "up"
        if not self.kind:
            return f"more:{self.parent}:{side}"
        return f"more:{self.parent}:{side}:{self.kind}:{self.type}"

    def node(self, nodes: Mapping[str, Node], expand_link: Callable[[str], str] | None) -> PlanNode:
        if self.kind:
            noun = f" {self.type} run" if self.kind == "run" else f" {self.type} version"
        else:
            noun = _noun([nodes[h] for h in self.hidden])
        count = len(self.hidden)
        label = f"+{count:,} more{noun}{'s' if noun and count != 1 else ''}"
        if self.below:
            label += f"\n({self.below:,} more beyond)"
        return PlanNode(
            id=self.id,
            kind="more",
            label=label,
            type=self.type,
            url=expand_link(self.id) if expand_link is not None else None,
            tooltip=_names([nodes[h] for h in self.hidden]),
            hidden=tuple(self.hidden),
            below=self.below,
        )

    def edge(self, view: View) -> PlanEdge:
        labels = sorted({_group_edge_label(edge, view) for edge in self.edges})
        source, target = (self.parent, self.id) if self.downstream else (self.id, self.parent)
        return PlanEdge(source=source, target=target, kind="more", label=", ".join(labels))


def _noun(hidden: list[Node]) -> str:
    kinds = {n.kind for n in hidden}
    types = {_type(n) for n in hidden}
    if len(kinds) != 1:
        return ""
    noun = " run" if kinds == {"run"} else " version"  # made plural by its count
    return f" {types.pop()}{noun}" if len(types) == 1 else noun


def _names(hidden: list[Node], most: int = 40) -> str:
    names = [n.ref or n.label for n in hidden]
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _group_edge_label(edge: Edge, view: View) -> str:
    if edge.kind in (CONSUMED_BY, PRODUCED, VIA):
        return _edge_label(edge, view)
    run = view.runs.get(edge.run or "")
    return (run.job_type if run is not None else None) or "run"


def _collapse(
    layers: list[list[str]],
    depth: Mapping[str, int],
    nodes: Mapping[str, Node],
    near: _Near,
    path: Collection[str],
    dead: Collection[str],
    collapse: int,
    order: Mapping[str, tuple[float, int, str]],
    opened: Collection[str],
    sides: tuple[set[str], set[str]] | None = None,
) -> tuple[set[str], list[_Group]]:
    """Which nodes stay visible, and the groups that stand for the hidden siblings.
    ``sides``: the root's ancestors and descendants (each with the root), whose links
    towards the root are never folded."""
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
                if sides is not None and child in sides[0 if downstream else 1]:
                    continue  # on the way to the root from the parent: it stays
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
                group = _Group(
                    parent=parent,
                    downstream=downstream,
                    kind=kind,
                    type=type_,
                    hidden=kids[keep:],
                    edges=[edge for k in kids[keep:] for edge in links[k]],
                )
                if group.id in opened:
                    continue
                hidden.update(group.hidden)
                groups.append(group)
    return shown, groups


def _fit(
    layers: list[list[str]],
    depth: Mapping[str, int],
    nodes: Mapping[str, Node],
    near: _Near,
    shown: set[str],
    groups: list[_Group],
    path: Collection[str],
    root: str | None,
    max_nodes: int,
    opened: Collection[str],
) -> tuple[set[str], list[_Group]]:
    """Fold the generations furthest from the root, each into a "+k more" group under the last
    node drawn, until at most ``max_nodes`` nodes are drawn (groups included). The path, and
    what an opened group holds, stay."""

    def parent_of(node_id: str, among: Collection[str]) -> str | None:
        for far, _, _ in near(node_id):
            if depth[far] == depth[node_id] - 1 and far in among:
                return far
        return None

    def cut_groups(kept: set[str]) -> list[_Group]:
        cut: dict[tuple[str, bool], _Group] = {}
        for node_id in sorted(shown - kept, key=lambda n: (depth[n], n)):
            parent = parent_of(node_id, kept)
            if parent is None:
                continue  # further down: counted beyond a group nearer the root
            downstream = any(e.target == node_id for e in near.down[parent])
            edges = [e for far, _, e in near(parent) if far == node_id]
            key = (parent, downstream)
            if key not in cut:
                cut[key] = _Group(
                    parent=parent, downstream=downstream, kind="", type="", hidden=[], edges=[]
                )
            cut[key].hidden.append(node_id)
            cut[key].edges.extend(edges)
        for group in cut.values():
            types = {_type(nodes[h]) for h in group.hidden}
            group.type = types.pop() if len(types) == 1 else "mixed"
        return list(cut.values())

    pinned = {n for n in path if n in shown} | ({root} & shown if root else set())
    for group_id in opened:
        for parent in shown:
            for downstream in (True, False):
                probe = _Group(parent=parent, downstream=downstream, kind="", type="",
                               hidden=[], edges=[])  # fmt: skip
                if probe.id == group_id:
                    pinned |= {
                        far
                        for far, side, _ in near(parent)
                        if side == downstream and far in shown and depth[far] == depth[parent] + 1
                    }
    for node_id in sorted(pinned, key=depth.__getitem__, reverse=True):  # and their parents
        up_to = parent_of(node_id, shown)
        while up_to is not None and up_to not in pinned:
            pinned.add(up_to)
            up_to = parent_of(up_to, shown)

    def widest(kept: set[str], kept_groups: list[_Group]) -> int:
        width: dict[int, int] = {}
        for level in [depth[n] for n in kept] + [depth[g.parent] + 1 for g in kept_groups]:
            width[level] = width.get(level, 0) + 1
        return max(width.values(), default=0)

    # A tree this large is drawn as a screenful to open from: its nearest generations, at
    # most FOLD_WIDTH nodes side by side, and never more than max_nodes in all.
    best: tuple[set[str], list[_Group]] | None = None
    for level in range(len(layers) - 1, -2, -1):
        kept = {n for n in shown if depth[n] <= level} | pinned
        kept_groups = [g for g in groups if g.parent in kept] + cut_groups(kept)
        best = kept, kept_groups
        if len(kept) + len(kept_groups) <= max_nodes and widest(*best) <= FOLD_WIDTH:
            break
    else:
        logger.info("the path and what was opened are over the budget: drawn anyway")
    assert best is not None
    return best


def _count_below(
    groups: list[_Group], depth: Mapping[str, int], near: _Near, shown: Collection[str]
) -> None:
    """Give each group the nodes further on that vanished with its own (each node to one
    group only, so that the groups' counts add up to everything not drawn)."""
    taken = set(shown) | {n for group in groups for n in group.hidden}
    for group in groups:
        frontier = list(group.hidden)
        while frontier:
            node_id = frontier.pop()
            for far, _, _ in near(node_id):
                if depth[far] > depth[node_id] and far not in taken:
                    taken.add(far)
                    group.beyond.append(far)
                    frontier.append(far)


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
    if edge.kind == VIA:
        return "via"
    run = view.runs.get(edge.run or "")
    if run is None:
        return edge.run or edge.kind
    said = run.job_type or "run"
    ends = [view.node(end) for end in (edge.source, edge.target)]
    source, target = (None if n is None else n.version for n in ends)
    kind = edge_kind(run, source, target)  # the derivation kind, where the job type does not say it
    return f"{view.run_label(run.id)}\n{said}" + (f" · {kind}" if kind and kind != said else "")
