"""Traversals over any GraphStore: ancestors, descendants, derivation tree, path, impact.

Every walk is breadth-first, one ``expand`` round trip per level, with a visited set: on a
DAG with shared inputs (one dataset consumed by thousands of runs, diamonds) it costs about
the size of its answer, never the number of paths.

``depth`` counts generations. One generation is a run plus the versions on its far side, so
from a version ``depth`` is ``2 * depth`` hops, and from a run ``2 * depth - 1``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Literal

from lineage.errors import InvalidInput, RunNotFound
from lineage.names import parse_ref
from lineage.records import DERIVED, Edge, Node, Subgraph
from lineage.storage.graph import Direction, GraphStore

__all__ = ["MAX_DEPTH", "Traversal", "Walk"]

MAX_DEPTH = 1000
LineageDirection = Literal["upstream", "downstream", "both"]
_DIRECTIONS = {"upstream": "up", "downstream": "down", "up": "up", "down": "down"}


class Walk:
    """The raw result of one breadth-first walk: node ids, edges, whether depth cut it."""

    def __init__(self, start: Iterable[str]) -> None:
        self.nodes: set[str] = set(start)
        self.edges: dict[tuple[str, str], Edge] = {}
        self.truncated = False


class Traversal:
    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph

    # the primitive -------------------------------------------------------------------------

    def walk(self, start: Collection[str], direction: Direction, hops: int | None) -> Walk:
        walk = Walk(start)
        frontier = set(start)
        done = 0
        while frontier:
            found = self.graph.expand(frontier, direction)
            at_limit = hops is not None and done >= hops
            following: set[str] = set()
            for edge in found:
                far = edge.target if direction == "down" else edge.source
                if far in walk.nodes:
                    walk.edges[(edge.source, edge.target)] = edge
                elif at_limit:
                    walk.truncated = True
                else:
                    walk.edges[(edge.source, edge.target)] = edge
                    following.add(far)
            if at_limit:
                break
            walk.nodes |= following
            frontier = following
            done += 1
        return walk

    def reaches(self, source: str, target: str, direction: Direction) -> bool:
        """Whether ``target`` is reachable from ``source`` following ``direction``."""
        seen = {source}
        frontier = {source}
        while frontier:
            following = set()
            for edge in self.graph.expand(frontier, direction):
                far = edge.target if direction == "down" else edge.source
                if far == target:
                    return True
                if far not in seen:
                    following.add(far)
            seen |= following
            frontier = following
        return False

    # what users ask ------------------------------------------------------------------------

    def node_id(self, start: str, default_project: str | None = None) -> tuple[str, str]:
        """Resolve a ref or a run id to ``(node id, kind)``."""
        if ":" not in start and "/" not in start and self.graph.get_runs([start]):
            return start, "run"
        if ":" not in start and "/" not in start and default_project is None:
            try:
                parse_ref(start, default_project)
            except InvalidInput:
                raise RunNotFound(
                    f"{start!r} is neither a run id nor a ref with a project", run_id=start
                ) from None
        from lineage.service import Service

        assert isinstance(self, Service)
        return self.resolve(start, default_project, include_deleted=True).id, "artifact_version"

    def lineage(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        default_project: str | None = None,
    ) -> Subgraph:
        """Runs and versions upstream, downstream or both ways of a version or run."""
        if direction not in ("upstream", "downstream", "both"):
            raise InvalidInput(f"direction must be upstream, downstream or both, not {direction!r}")
        depth = check_depth(depth)
        node, kind = self.node_id(start, default_project)
        hops = None if depth is None else (2 * depth - (1 if kind == "run" else 0))
        walks = [
            self.walk([node], way, hops)
            for way in (("up", "down") if direction == "both" else (_DIRECTIONS[direction],))
        ]
        nodes = set().union(*(w.nodes for w in walks))
        edges = {key: edge for w in walks for key, edge in w.edges.items()}
        return self.subgraph(
            nodes, edges.values(), truncated=any(w.truncated for w in walks), root=node
        )

    def impact(self, ref: str, *, default_project: str | None = None) -> Subgraph:
        """Every run and version downstream of a version: what a bad dataset touched."""
        return self.lineage(ref, "downstream", None, default_project=default_project)

    def tree(
        self, ref: str, depth: int | None = 20, *, default_project: str | None = None
    ) -> Subgraph:
        """The derivation view under a version: ``a -> b`` labelled by the run that did it."""
        depth = check_depth(depth)
        node, kind = self.node_id(ref, default_project)
        if kind != "artifact_version":
            raise InvalidInput(f"a derivation tree starts at a version, not run {ref!r}")
        walk = self.walk([node], "down", None if depth is None else 2 * depth)
        return self.subgraph(
            walk.nodes, walk.edges.values(), truncated=walk.truncated, root=node, derived=True
        )

    def path(
        self, source: str, target: str, *, default_project: str | None = None
    ) -> Subgraph | None:
        """Every node on some path between two nodes (either way round), or None."""
        a, _ = self.node_id(source, default_project)
        b, _ = self.node_id(target, default_project)
        for start, end in ((a, b), (b, a)):
            ancestors = self.walk([end], "up", None)
            if start not in ancestors.nodes:
                continue
            # forward from start inside end's ancestry: the nodes on start -> end paths
            children: dict[str, list[Edge]] = {}
            for edge in ancestors.edges.values():
                children.setdefault(edge.source, []).append(edge)
            on_path, frontier, edges = {start}, [start], []
            while frontier:
                following = []
                for node in frontier:
                    for edge in children.get(node, ()):
                        edges.append(edge)
                        if edge.target not in on_path:
                            on_path.add(edge.target)
                            following.append(edge.target)
                frontier = following
            kept = [e for e in edges if e.source in on_path and e.target in on_path]
            return self.subgraph(on_path, kept, truncated=False, root=start)
        return None

    # assembling answers --------------------------------------------------------------------

    def subgraph(
        self,
        ids: Collection[str],
        edges: Iterable[Edge],
        *,
        truncated: bool,
        root: str | None,
        derived: bool = False,
    ) -> Subgraph:
        versions = self.graph.get_versions([i for i in ids if ":" in i])
        runs = self.graph.get_runs([i for i in ids if ":" not in i])
        edge_list = sorted(edges, key=lambda e: (e.source, e.target))
        if derived:
            edge_list = derive(edge_list)
            ids = [i for i in ids if i in versions]
        nodes = []
        for node_id in sorted(ids):
            if node_id in versions:
                version = versions[node_id]
                nodes.append(
                    Node(id=node_id, kind="artifact_version", ref=version.ref, version=version)
                )
            elif node_id in runs:
                nodes.append(Node(id=node_id, kind="run", run=runs[node_id]))
        return Subgraph(nodes=tuple(nodes), edges=tuple(edge_list), truncated=truncated, root=root)


def derive(edges: Iterable[Edge]) -> list[Edge]:
    """Collapse runs: ``a -consumed_by-> r -produced-> b`` becomes ``a -derived(r)-> b``."""
    inputs: dict[str, list[str]] = {}
    outputs: dict[str, list[str]] = {}
    for edge in edges:
        if edge.kind == "consumed_by":
            inputs.setdefault(edge.target, []).append(edge.source)
        else:
            outputs.setdefault(edge.source, []).append(edge.target)
    derived = {
        (a, b, run): Edge(source=a, target=b, kind=DERIVED, run=run)
        for run, sources in inputs.items()
        for a in sources
        for b in outputs.get(run, ())
    }
    return [derived[key] for key in sorted(derived)]


def check_depth(depth: object) -> int | None:
    if depth is None:
        return None
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be an integer from 0 to {MAX_DEPTH}, got {depth!r}")
    return depth
