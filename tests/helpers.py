"""Test helpers: a networkx oracle over the same edges, and whole-store snapshots."""

from __future__ import annotations

from typing import Any

import networkx as nx

from lineage.records import Edge
from lineage.storage.blobs import BlobStore
from lineage.storage.graph import GraphStore


def oracle(edges: list[Edge] | list[tuple[str, str]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for edge in edges:
        if isinstance(edge, Edge):
            graph.add_edge(edge.source, edge.target)
        else:
            graph.add_edge(*edge)
    return graph


def import_tree(graph: GraphStore, tree: Any, batch: int = 200) -> None:
    """A generated fine-tuning tree (bench/gen_tree.py) into ``graph``, in batches."""
    for start in range(0, len(tree.steps), batch):
        steps = tree.steps[start : start + batch]
        graph.import_records(
            runs=[s.run for s in steps],
            artifacts=tree.artifacts if start == 0 else (),
            versions=[v for s in steps for v in s.outputs],
            edges=[e for s in steps for e in s.edges],
        )


def within(graph: nx.DiGraph, start: str, hops: int | None, upstream: bool) -> set[str]:
    view = graph.reverse(copy=False) if upstream else graph
    if start not in view:
        return {start}
    lengths = nx.single_source_shortest_path_length(view, start, cutoff=hops)
    return set(lengths)


def expected_lineage(
    graph: nx.DiGraph, start: str, hops: int | None, upstream: bool
) -> tuple[set[str], set[tuple[str, str]], bool]:
    nodes = within(graph, start, hops, upstream)
    edges = {(u, v) for u, v in graph.edges if u in nodes and v in nodes}
    if upstream:
        truncated = any(u not in nodes for v in nodes if v in graph for u in graph.predecessors(v))
    else:
        truncated = any(v not in nodes for u in nodes if u in graph for v in graph.successors(u))
    return nodes, edges, truncated


def snapshot(graph: GraphStore, blobs: BlobStore) -> dict[str, Any]:
    """Everything a store holds, comparable with ==: what 'changes nothing' is checked against."""
    runs = graph.list_runs()
    artifacts = graph.list_artifacts()
    versions = [
        v for a in artifacts for v in graph.list_versions(a.project, a.name, include_deleted=True)
    ]
    ids = [r.id for r in runs] + [v.id for v in versions]
    edges = sorted((e.source, e.target, e.kind) for e in graph.expand(ids, "down"))
    events = [e for p in graph.list_projects() for e in graph.events(p)]
    return {
        "runs": runs,
        "artifacts": artifacts,
        "versions": versions,
        "edges": edges,
        "events": events,
        "blobs": sorted(blobs.digests()),
    }
