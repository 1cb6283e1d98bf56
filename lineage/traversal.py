"""Traversals over any GraphStore, by node id: ancestors, descendants, derivation tree, path,
impact.

:class:`Traversal` knows node ids only (a run id, or a version's ``project/name:vN``: the
ones with a colon); turning a user's ref into one is the service's job
(:meth:`lineage.service.Service.lineage` resolves, then calls in here).

Every walk is breadth-first, one ``expand`` round trip per level, with a visited set: on a
DAG with shared inputs (one dataset consumed by thousands of runs, diamonds) it costs about
the size of its answer, never the number of paths. A store may do better with the optional
fast paths of :mod:`lineage.storage.graph` (``ExpandRows``, ``WalkRows``, ``WalkRecords``,
``TreeRows``, ``Reaches``); the answers are the same.

``depth`` counts generations. One generation is a run plus the versions on its far side, so
from a version ``depth`` is ``2 * depth`` hops, and from a run ``2 * depth - 1``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import starmap

from lineage.errors import InvalidInput
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
from lineage.storage.graph import (
    Direction,
    ExpandRows,
    GraphStore,
    Reaches,
    Row,
    TreeRows,
    WalkRecords,
    WalkRows,
)

__all__ = ["DIRECTIONS", "MAX_DEPTH", "Traversal", "Walk", "check_depth", "check_direction"]

MAX_DEPTH = 1000
# objects allocated (the collector's young count) past which paused_gc moves what an answer
# made to the oldest generation: below it the next young collection is cheap anyway
_BIG_ANSWER = 50_000
Expand = Callable[[Collection[str], Direction], list[Row]]
# what a lineage question asks for -> the ways it walks
DIRECTIONS: dict[str, tuple[Direction, ...]] = {
    "upstream": ("up",),
    "downstream": ("down",),
    "both": ("up", "down"),
}


def is_version(node: str) -> bool:
    """Whether a node id names a version (``project/name:vN``) rather than a run."""
    return ":" in node


class Walk:
    """The raw result of one breadth-first walk: node ids, edges as ``(source, target, kind)``,
    whether depth cut it. Edges stay tuples until an answer is assembled: a walk of a
    100,000-run tree meets about 400,000 of them."""

    def __init__(self, start: Iterable[str]) -> None:
        self.nodes: set[str] = set(start)
        self.edges: set[Row] = set()
        self.truncated = False


class Traversal:
    """The lineage questions over one GraphStore, asked with node ids.

    >>> Traversal(graph).lineage("surgery/policy:v4", "upstream", depth=20)
    """

    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph

    # the primitives ------------------------------------------------------------------------

    def expand_rows(self, ids: Collection[str], direction: Direction) -> list[Row]:
        """``graph.expand`` as tuples: the store's ``expand_rows`` when it has one."""
        if isinstance(self.graph, ExpandRows):
            return self.graph.expand_rows(ids, direction)
        return [(e.source, e.target, e.kind) for e in self.graph.expand(ids, direction)]

    def walk(self, start: Collection[str], direction: Direction, hops: int | None) -> Walk:
        """Every node within ``hops`` edges of ``start`` (None: no limit), and the edges
        between them."""
        walk = Walk(start)
        if isinstance(self.graph, WalkRows):  # the store walks in one round trip
            with paused_gc():
                walk.nodes, walk.edges, walk.truncated = self.graph.walk_rows(
                    start, direction, hops
                )
            return walk
        expand = self._expander()
        nodes, edges = walk.nodes, walk.edges
        far = 1 if direction == "down" else 0
        frontier = set(start)
        done = 0
        with paused_gc():
            while frontier:
                found = expand(frontier, direction)
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
        if isinstance(self.graph, Reaches):
            return self.graph.reaches(source, target, direction)
        expand = self._expander()
        far = 1 if direction == "down" else 0
        seen = {source}
        frontier = {source}
        while frontier:
            following = set()
            for row in expand(frontier, direction):
                if row[far] == target:
                    return True
                if row[far] not in seen:
                    following.add(row[far])
            seen |= following
            frontier = following
        return False

    def _expander(self) -> Expand:
        """``expand_rows`` of the store, or the fallback, decided once for a whole walk."""
        if isinstance(self.graph, ExpandRows):
            return self.graph.expand_rows
        return self.expand_rows

    # the questions -------------------------------------------------------------------------

    def lineage(self, node: str, direction: str = "upstream", depth: int | None = 20) -> Subgraph:
        """Runs and versions upstream, downstream or both ways of a node."""
        ways = check_direction(direction)
        depth = check_depth(depth)
        hops = None if depth is None else 2 * depth - (0 if is_version(node) else 1)
        if isinstance(self.graph, WalkRecords):  # walks and reads the records in one trip
            with paused_gc():
                versions: dict[str, VersionRecord] = {}
                runs: dict[str, RunRecord] = {}
                nodes: set[str] = set()
                edges: set[Row] = set()
                truncated = False
                for way in ways:
                    found, rows, cut, held, ran = self.graph.walk_records([node], way, hops)
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

    def impact(self, node: str) -> Subgraph:
        """Every run and version downstream of a node: what a bad dataset touched."""
        return self.lineage(node, "downstream", None)

    def tree(self, node: str, depth: int | None = 20) -> Subgraph:
        """The derivation view under a version: ``a -> b`` labelled by the run that did it."""
        depth = check_depth(depth)
        if not is_version(node):
            raise InvalidInput(f"a derivation tree starts at a version, not run {node!r}")
        if isinstance(self.graph, TreeRows):  # the store walks and fetches records in one pass
            with paused_gc():
                versions, triples, truncated = self.graph.tree_rows(node, depth)
                return derived_answer(versions, triples, truncated=truncated, root=node)
        walk = self.walk([node], "down", None if depth is None else 2 * depth)
        return self.subgraph(
            walk.nodes, walk.edges, truncated=walk.truncated, root=node, derived=True
        )

    def path(self, a: str, b: str) -> Subgraph | None:
        """Every node on some path between two nodes (either way round), or None."""
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
        """The answer for these nodes and edges, with the store's records of the nodes."""
        with paused_gc():
            versions = self.graph.get_versions([i for i in ids if is_version(i)])
            if derived:  # runs become edge labels: their records are not needed
                return derived_answer(
                    versions, derived_triples(edges), truncated=truncated, root=root
                )
            runs = self.graph.get_runs([i for i in ids if not is_version(i)])
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
    refs = sorted(versions)
    # map and starmap call the constructors without a loop of bytecode around them
    nodes = tuple(map(version_node, refs, map(versions.__getitem__, refs)))
    edges = tuple(starmap(derived_edge, triples))
    return Subgraph(nodes=nodes, edges=edges, truncated=truncated, root=root)


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
            # only after a big answer, and asked in this order: get_freeze_count walks the
            # whole frozen generation (0.1 s a call for a process that froze 20 million
            # objects: that was most of an upstream query's time in the 1M-run benchmark)
            if gc.get_count()[0] > _BIG_ANSWER and gc.get_freeze_count() == 0:
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


def check_direction(direction: object) -> tuple[Direction, ...]:
    """The ways a lineage question walks; InvalidInput for anything but upstream,
    downstream or both."""
    ways = DIRECTIONS.get(direction) if isinstance(direction, str) else None
    if ways is None:
        raise InvalidInput(f"direction must be upstream, downstream or both, not {direction!r}")
    return ways


def check_depth(depth: object) -> int | None:
    if depth is None:
        return None
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be an integer from 0 to {MAX_DEPTH}, got {depth!r}")
    return depth
