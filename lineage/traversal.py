"""Traversals over any GraphStore: ancestors, descendants, derivation tree, path, impact.

Every walk is breadth-first, one ``expand`` round trip per level, with a visited set: on a
DAG with shared inputs (one dataset consumed by thousands of runs, diamonds) it costs about
the size of its answer, never the number of paths. A store may do better with the optional
methods described in :mod:`lineage.storage.graph` (``expand_rows``, ``walk_rows``,
``reaches``); the answers are the same.

``depth`` counts generations. One generation is a run plus the versions on its far side, so
from a version ``depth`` is ``2 * depth`` hops, and from a run ``2 * depth - 1``.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

from lineage.errors import InvalidInput, RunNotFound
from lineage.names import parse_ref
from lineage.records import (
    CONSUMED_BY,
    Edge,
    RunRecord,
    Subgraph,
    VersionRecord,
    derived_edge,
    run_node,
    version_node,
)
from lineage.storage.graph import Direction, GraphStore

__all__ = ["MAX_DEPTH", "Traversal", "Walk"]

MAX_DEPTH = 1000
LineageDirection = Literal["upstream", "downstream", "both"]
_DIRECTIONS: dict[str, Direction] = {
    "upstream": "up",
    "downstream": "down",
    "up": "up",
    "down": "down",
}
Row = tuple[str, str, str]  # an edge as (source, target, kind)


class Walk:
    """The raw result of one breadth-first walk: node ids, edges as ``(source, target, kind)``,
    whether depth cut it. Edges stay tuples until an answer is assembled: a walk of a
    100,000-run tree meets about 400,000 of them."""

    def __init__(self, start: Iterable[str]) -> None:
        self.nodes: set[str] = set(start)
        self.edges: set[Row] = set()
        self.truncated = False


class Traversal:
    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph

    # the primitive -------------------------------------------------------------------------

    def _expand_rows(self, ids: Collection[str], direction: Direction) -> list[Row]:
        """``graph.expand`` as tuples: the store's ``expand_rows`` when it has one."""
        rows = getattr(self.graph, "expand_rows", None)
        if rows is not None:
            found: list[Row] = rows(ids, direction)
            return found
        return [(e.source, e.target, e.kind) for e in self.graph.expand(ids, direction)]

    def walk(self, start: Collection[str], direction: Direction, hops: int | None) -> Walk:
        walk = Walk(start)
        whole = getattr(self.graph, "walk_rows", None)
        if whole is not None:  # the store walks in one round trip
            with paused_gc():
                walk.nodes, walk.edges, walk.truncated = whole(start, direction, hops)
            return walk
        nodes, edges = walk.nodes, walk.edges
        far = 1 if direction == "down" else 0
        frontier = set(start)
        done = 0
        with paused_gc():
            while frontier:
                found = self._expand_rows(frontier, direction)
                if hops is not None and done >= hops:
                    # at the depth limit: keep edges between found nodes, note any beyond
                    for row in found:
                        if row[far] in nodes:
                            edges.add(row)
                        else:
                            walk.truncated = True
                    break
                edges.update(found)
                frontier = {row[far] for row in found}
                frontier -= nodes
                nodes |= frontier
                done += 1
        return walk

    def reaches(self, source: str, target: str, direction: Direction) -> bool:
        """Whether ``target`` is reachable from ``source`` following ``direction``."""
        own = getattr(self.graph, "reaches", None)
        if own is not None:
            found: bool = own(source, target, direction)
            return found
        far = 1 if direction == "down" else 0
        seen = {source}
        frontier = {source}
        while frontier:
            following = set()
            for row in self._expand_rows(frontier, direction):
                if row[far] == target:
                    return True
                if row[far] not in seen:
                    following.add(row[far])
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
        ways: tuple[Direction, ...] = (
            ("up", "down") if direction == "both" else (_DIRECTIONS[direction],)
        )
        own = getattr(self.graph, "walk_records", None)
        if own is not None:  # the store walks and reads the records in one round trip
            with paused_gc():
                versions: dict[str, VersionRecord] = {}
                runs: dict[str, RunRecord] = {}
                nodes: set[str] = set()
                edges: set[Row] = set()
                truncated = False
                for way in ways:
                    found, rows, cut, held, ran = own([node], way, hops)
                    nodes |= found
                    edges |= rows
                    truncated = truncated or cut
                    versions.update(held)
                    runs.update(ran)
                return answer(nodes, edges, versions, runs, truncated=truncated, root=node)
        walks = [self.walk([node], way, hops) for way in ways]
        nodes = set().union(*(w.nodes for w in walks))
        edges = set().union(*(w.edges for w in walks))
        return self.subgraph(nodes, edges, truncated=any(w.truncated for w in walks), root=node)

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
        own = getattr(self.graph, "tree_rows", None)
        if own is not None:  # the store walks and fetches records in one pass
            with paused_gc():
                versions, triples, truncated = own(node, depth)
                return derived_answer(versions, triples, truncated=truncated, root=node)
        walk = self.walk([node], "down", None if depth is None else 2 * depth)
        return self.subgraph(
            walk.nodes, walk.edges, truncated=walk.truncated, root=node, derived=True
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
            children: dict[str, list[Row]] = {}
            for row in ancestors.edges:
                children.setdefault(row[0], []).append(row)
            on_path, frontier, edges = {start}, [start], []
            while frontier:
                following = []
                for node in frontier:
                    for row in children.get(node, ()):
                        edges.append(row)
                        if row[1] not in on_path:
                            on_path.add(row[1])
                            following.append(row[1])
                frontier = following
            kept = [row for row in edges if row[0] in on_path and row[1] in on_path]
            return self.subgraph(on_path, kept, truncated=False, root=start)
        return None

    # assembling answers --------------------------------------------------------------------

    def subgraph(
        self,
        ids: Collection[str],
        edges: Iterable[Row],
        *,
        truncated: bool,
        root: str | None,
        derived: bool = False,
    ) -> Subgraph:
        with paused_gc():
            versions = self.graph.get_versions([i for i in ids if ":" in i])
            if derived:  # runs become edge labels: their records are not needed
                return derived_answer(
                    versions, derived_triples(edges), truncated=truncated, root=root
                )
            runs = self.graph.get_runs([i for i in ids if ":" not in i])
            return answer(ids, edges, versions, runs, truncated=truncated, root=root)


def answer(
    ids: Collection[str],
    edges: Iterable[Row],
    versions: Mapping[str, VersionRecord],
    runs: Mapping[str, RunRecord],
    *,
    truncated: bool,
    root: str | None,
) -> Subgraph:
    """A lineage answer: the nodes that have a record, the edges, both sorted."""
    edge_list = [Edge(source=s, target=t, kind=k) for s, t, k in sorted(edges)]
    nodes = [
        version_node(i, versions[i]) if i in versions else run_node(runs[i])
        for i in sorted(ids)
        if i in versions or i in runs
    ]
    return Subgraph(nodes=tuple(nodes), edges=tuple(edge_list), truncated=truncated, root=root)


def derived_answer(
    versions: dict[str, VersionRecord],
    triples: list[tuple[str, str, str]],
    *,
    truncated: bool,
    root: str | None,
) -> Subgraph:
    """A derivation tree: its versions as nodes, ``(a, b, run)`` triples as derived edges,
    both sorted. ``triples`` is sorted in place."""
    triples.sort()
    nodes = [version_node(ref, versions[ref]) for ref in sorted(versions)]
    edges = [derived_edge(a, b, run) for a, b, run in triples]
    return Subgraph(nodes=tuple(nodes), edges=tuple(edges), truncated=truncated, root=root)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Keep the cyclic collector off while a big answer is built.

    An answer of 100,000 records allocates about a million acyclic objects; with the
    collector on, that triggers full collections of the whole heap, which cost more than
    building the answer. The collector is switched back on only if it was on before.

    Switched back on, it would still examine every one of those objects once, in the next
    young collection (0.12-0.16 s for a 130,000-version tree, to find nothing: an answer
    holds no cycles). So what was allocated meanwhile moves straight to the oldest
    generation (``freeze`` then ``unfreeze``: two list splices), unless the process keeps
    objects frozen itself, which ``unfreeze`` would undo.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def derived_triples(edges: Iterable[Row]) -> list[tuple[str, str, str]]:
    """Collapse runs: ``a -consumed_by-> r -produced-> b`` becomes ``(a, b, r)``."""
    rows = edges if isinstance(edges, set | frozenset) else set(edges)
    consumed: list[Row] = []
    outputs: dict[str, list[str]] = {}
    for row in rows:
        if row[2] == CONSUMED_BY:
            consumed.append(row)
        else:
            outputs.setdefault(row[0], []).append(row[1])
    # unique rows make unique (a, b, run) triples: no dedup needed
    return [(a, b, run) for a, run, _ in consumed if run in outputs for b in outputs[run]]


def check_depth(depth: object) -> int | None:
    if depth is None:
        return None
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be an integer from 0 to {MAX_DEPTH}, got {depth!r}")
    return depth
