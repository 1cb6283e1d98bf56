"""Generations of a picture: the rank of every drawn node, top to bottom, and the versions
drawn again beside the runs that consume them.

A version consumed by runs of many generations (the training dataset of every fine-tuning
stage) would otherwise be one node with edges running the whole height of the picture. Here
each version keeps its place one rank under its producer (a version nothing in the picture
made sits just above its first consumer), and every later generation that consumes it gets
a copy of it one rank above its consumers: every edge is then one rank long, and Graphviz,
which minimises the total edge length, keeps exactly these ranks.

>>> ranks = generations(["a", "r1", "r2"], [("a", "r1"), ("r1", "x"), ("x", "r2"), ("a", "r2")])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Repeat", "generations", "repeats"]


def generations(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, int] | None:
    """The rank of every node, from 0 at the top, or None when the edges hold a cycle.

    Every node with a producer sits one rank under its lowest producer; a node with none
    sits one rank above its nearest consumer (so that a dataset made long ago by a run that
    read nothing is drawn where it is first used, not at the top)."""
    import networkx as nx  # here: a process that draws no graph does not load it

    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(g):
        return None
    order = list(nx.topological_sort(g))
    rank: dict[str, int] = {}
    for node in order:
        rank[node] = max((rank[p] + 1 for p in g.predecessors(node)), default=0)
    # pull every node down as far as its consumers allow, then let the nodes that have a
    # producer follow it again: only the sources keep the lower place
    low = dict(rank)
    for node in reversed(order):
        following = [low[s] for s in g.successors(node)]
        if following:
            low[node] = max(low[node], min(following) - 1)
    for node in order:
        before = [rank[p] for p in g.predecessors(node)]
        rank[node] = max(before) + 1 if before else low[node]
    top = min(rank.values(), default=0)
    return {node: value - top for node, value in rank.items()}


@dataclass(frozen=True, kw_only=True)
class Repeat:
    """A copy of ``original`` drawn at ``rank``, feeding the consumers in ``targets``."""

    id: str
    original: str
    rank: int
    targets: tuple[str, ...]


def repeats(
    rank: Mapping[str, int],
    edges: Iterable[tuple[str, str]],
    repeatable: Iterable[str],
) -> list[Repeat]:
    """The copies that keep the edges out of ``repeatable`` nodes one rank long: one a
    generation that consumes the node more than one rank below it."""
    allowed = set(repeatable)
    wanted: dict[tuple[str, int], list[str]] = {}
    for source, target in edges:
        if source in allowed and rank[target] > rank[source] + 1:
            wanted.setdefault((source, rank[target] - 1), []).append(target)
    return [
        Repeat(id=f"copy:{at}:{source}", original=source, rank=at, targets=tuple(targets))
        for (source, at), targets in sorted(wanted.items(), key=lambda item: item[0][1])
    ]
