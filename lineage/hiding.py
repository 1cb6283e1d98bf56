"""What a reader chose not to see in a picture: datasets, evaluations.

- hiding datasets takes out the versions of type ``dataset``, and the runs that made nothing
  else (a dataset's preparation);
- hiding evaluations takes out the runs whose job type starts with ``eval`` (eval, evaluate,
  evaluation), and the versions that only such runs made (in a derivation tree: the versions
  whose every edge in is named by such a run).

:func:`contract` then keeps what the hidden nodes connected: a path through hidden nodes
between two kept ones becomes one :data:`VIA` edge, and what no longer connects to the root
goes too. :func:`lineage.plan.build` calls both; the root is never hidden.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from lineage.records import CONSUMED_BY, PRODUCED, Edge, Node
from lineage.view import View

__all__ = ["VIA", "contract", "hidden_nodes", "is_evaluation"]

VIA = "via"  # an edge standing for a path through hidden nodes


def is_evaluation(job_type: str | None) -> bool:
    """Whether a run of this job type is an evaluation (eval, evaluate, evaluation, ...)."""
    return bool(job_type) and str(job_type).lower().startswith("eval")


def hidden_nodes(
    view: View,
    nodes: Mapping[str, Node],
    edges: Iterable[Edge],
    root: str | None,
    datasets: bool,
    evaluations: bool,
) -> set[str]:
    """What ``hide_datasets`` (``datasets``) and ``hide_evaluations`` (``evaluations``) take
    out of a picture's ``nodes`` (never the root)."""
    if not datasets and not evaluations:
        return set()
    made_by: dict[str, list[str | None]] = {}  # version -> the job types that made it here
    outputs: dict[str, list[str]] = {}  # run -> its versions here
    for edge in edges:
        if edge.kind == PRODUCED:
            run = nodes[edge.source].run
            made_by.setdefault(edge.target, []).append(run.job_type if run else None)
            outputs.setdefault(edge.source, []).append(edge.target)
        elif edge.kind not in (CONSUMED_BY, PRODUCED):
            record = view.runs.get(edge.run or "")
            made_by.setdefault(edge.target, []).append(record.job_type if record else None)
    hidden: set[str] = set()
    for node_id, node in nodes.items():
        if node.version is not None:
            makers = made_by.get(node_id, [])
            evaluated = bool(makers) and all(is_evaluation(job) for job in makers)
            if (datasets and node.version.type == "dataset") or (evaluations and evaluated):
                hidden.add(node_id)
        elif evaluations and node.run is not None and is_evaluation(node.run.job_type):
            hidden.add(node_id)
    # a run that made only hidden versions goes with them (a dataset's preparation)
    for run_id, made in outputs.items():
        if all(version in hidden for version in made):
            hidden.add(run_id)
    hidden.discard(root or "")
    return hidden


def contract(
    nodes: Mapping[str, Node], edges: list[Edge], hidden: set[str], root: str | None
) -> tuple[dict[str, Node], list[Edge], set[str]]:
    """The graph without ``hidden``: a path through hidden nodes between two kept ones becomes
    one ``via`` edge, and what no longer connects to the root goes too."""
    kept = {node_id: node for node_id, node in nodes.items() if node_id not in hidden}
    out: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for edge in edges:
        out[edge.source].append(edge.target)
    result = [e for e in edges if e.source in kept and e.target in kept]
    pairs = {(e.source, e.target) for e in result}
    for start in kept:
        seen: set[str] = set()
        frontier = [n for n in out[start] if n in hidden]
        while frontier:
            node_id = frontier.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            for far in out[node_id]:
                if far in hidden:
                    frontier.append(far)
                elif (start, far) not in pairs:
                    pairs.add((start, far))
                    result.append(Edge(source=start, target=far, kind=VIA))
    if root is not None:
        around: dict[str, set[str]] = {node_id: set() for node_id in kept}
        for edge in result:
            around[edge.source].add(edge.target)
            around[edge.target].add(edge.source)
        reached = _reach_all(root, around)
        gone = set(kept) - reached
        kept = {node_id: node for node_id, node in kept.items() if node_id in reached}
        result = [e for e in result if e.source in kept and e.target in kept]
        hidden = hidden | gone
    return kept, result, hidden


def _reach_all(start: str, around: Mapping[str, Collection[str]]) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for far in around[frontier.pop()]:
            if far not in seen:
                seen.add(far)
                frontier.append(far)
    return seen
