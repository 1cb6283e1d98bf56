"""What each node of a lineage answer is, decided once for every surface.

A :class:`View` wraps one :class:`~lineage.records.Subgraph` (a lineage walk, or a derivation
tree) with the facts that the text views, ``--json``, the pictures, the dashboard and GraphQL
all show, so that none of them decides them for itself:

- the state of every node (see ``../DESIGN.md``), exactly one of
  ``dead_end``  a version that no run anywhere consumed (any project), and not deleted;
  ``truncated`` a version where ``depth`` stopped the walk although the graph goes on;
  ``deleted``   a tombstoned version (its lineage stays);
  ``alive``     everything else (runs are always ``alive``);
- the label of every node: ``name:vN`` (a run: its name), with the project in front for a node
  outside the project that was asked about;
- in a derivation tree, the runs named on its edges.

:func:`classify` decides, on the fetched subgraph plus one round trip to the store (which of its
leaves some run consumed, beyond the picture or in a run that logged nothing); the in-memory
graph work is done with networkx.

>>> v = view.classify(api.tree("base:v0", depth=2), store=api.service, depth=2, mode="tree")
>>> sorted(v.dead_ends), sorted(v.truncated)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

from lineage import sent
from lineage.errors import InvalidInput
from lineage.history import LookupsThen
from lineage.moments import parse_time
from lineage.records import Node, RunRecord, Subgraph, VersionRecord

__all__ = [
    "ALIVE",
    "DEAD_END",
    "DELETED",
    "STATES",
    "TRUNCATED",
    "Asker",
    "Lookups",
    "Mode",
    "NodeState",
    "View",
    "ask",
    "asked_project",
    "classify",
    "label",
    "outcome_types",
    "page_states",
]

NodeState = Literal["alive", "dead_end", "truncated", "deleted"]
ALIVE: NodeState = "alive"
DEAD_END: NodeState = "dead_end"
TRUNCATED: NodeState = "truncated"
DELETED: NodeState = "deleted"
STATES: tuple[NodeState, ...] = (ALIVE, DEAD_END, TRUNCATED, DELETED)

Mode = Literal["upstream", "downstream", "both", "tree"]
MODES: tuple[Mode, ...] = ("upstream", "downstream", "both", "tree")


class Lookups(Protocol):
    """What :func:`classify` asks of the store: the local and the remote service both answer."""

    def consumed(self, ids: Sequence[str]) -> set[str]: ...

    def consumers(self, version: VersionRecord) -> list[RunRecord]: ...

    def get_runs(self, ids: Iterable[str]) -> dict[str, RunRecord]: ...


@dataclass(frozen=True, kw_only=True)
class View:
    """A subgraph with the state and label of each node (see the module docstring)."""

    graph: Subgraph
    mode: Mode
    project: str | None
    states: Mapping[str, NodeState]
    runs: Mapping[str, RunRecord] = field(default_factory=dict)

    @cached_property
    def by_id(self) -> Mapping[str, Node]:
        return {node.id: node for node in self.graph.nodes}

    def node(self, node_id: str) -> Node | None:
        return self.by_id.get(node_id)

    def state(self, node_id: str) -> NodeState:
        return self.states.get(node_id, ALIVE)

    def _of(self, state: NodeState) -> frozenset[str]:
        return frozenset(i for i, s in self.states.items() if s == state)

    @property
    def dead_ends(self) -> frozenset[str]:
        return self._of(DEAD_END)

    @property
    def truncated(self) -> frozenset[str]:
        return self._of(TRUNCATED)

    @property
    def deleted(self) -> frozenset[str]:
        return self._of(DELETED)

    def foreign(self, node: Node) -> bool:
        """Whether the node is outside the project that was asked about."""
        project = _project(node)
        return self.project is not None and project is not None and project != self.project

    def label(self, node: Node) -> str:
        """``name:vN`` or a run's name, prefixed with its project when it is another one."""
        return label(node, self.project)

    def run_label(self, run_id: str | None) -> str:
        """The name of the run on a derived edge (its id when its record is missing)."""
        run = self.runs.get(run_id or "")
        return run_id or "?" if run is None else sent.run_label(run, self.project)

    def to_json(self) -> dict[str, Any]:
        """The answer as plain JSON: what ``--json`` prints and the cross-surface tests read."""
        graph = self.graph
        return {
            "root": graph.root,
            "mode": self.mode,
            "project": self.project,
            "truncated": graph.truncated,
            "nodes": [
                {
                    "id": node.id,
                    "kind": node.kind,
                    "ref": node.ref,
                    "project": _project(node),
                    "label": self.label(node),
                    "state": self.state(node.id),
                    **(
                        {"type": node.version.type, "aliases": list(node.version.aliases)}
                        if node.version is not None
                        else {}
                    ),
                    **(
                        {"job_type": node.run.job_type, "run_state": node.run.state}
                        if node.run is not None
                        else {}
                    ),
                }
                for node in graph.nodes
            ],
            "edges": [
                {"source": e.source, "target": e.target, "kind": e.kind, "run": e.run}
                for e in graph.edges
            ],
        }


def label(node: Node, project: str | None) -> str:
    """A node's label seen from ``project``: ``name:vN`` (a run: its name), prefixed with the
    node's own project when that is another one. What came in through OpenLineage is labelled
    with the names it was sent with (:mod:`lineage.sent`), not the safe names of its ref:
    ``s3://lake/clean/orders:v0``, ``airflow://prod/nightly.clean``."""
    version = node.version
    if version is not None:
        return _version_label(version, project)
    if node.run is not None:
        return sent.run_label(node.run, project)
    return node.label


_version_label = sent.version_label  # (every node of an answer is labelled)


def asked_project(graph: Subgraph) -> str | None:
    """The project an answer was asked about: its root's."""
    for node in graph.nodes:
        if node.id == graph.root:
            return _project(node)
    return None


def _project(node: Node) -> str | None:
    record = node.version or node.run
    return record.project if record is not None else None


def classify(
    graph: Subgraph,
    *,
    store: Lookups,
    mode: Mode,
    depth: int | None,
    project: str | None = None,
) -> View:
    """Decide the state and label of every node of ``graph``.

    ``mode`` says how ``graph`` was asked for (``upstream``, ``downstream``, ``both`` or
    ``tree``), ``depth`` the generations it was cut at; ``project`` is the project asked about
    (default: the root's), whose nodes are labelled without it.
    """
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    nodes = {node.id: node for node in graph.nodes}
    if project is None:
        project = asked_project(graph)
    import networkx as nx  # here: a process that draws no graph does not load it

    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((e.source, e.target) for e in graph.edges)
    versions = [i for i, n in nodes.items() if n.version is not None]

    # A version with no consumer in the answer may still have one outside it: one question
    # to the store for all of them (a derivation tree does not show runs that logged nothing).
    def has_consumer(node_id: str) -> bool:
        return bool(g.out_degree(node_id) > 0)

    unknown = [v for v in versions if not has_consumer(v)]
    consumed = store.consumed(unknown) if unknown else set()

    cut = _cut(g, nodes, graph, mode, depth, consumed, store)
    states: dict[str, NodeState] = {}
    for node_id in versions:
        version = nodes[node_id].version
        assert version is not None
        if version.state != "committed":
            states[node_id] = DELETED
        elif node_id in cut:
            states[node_id] = TRUNCATED
        elif node_id in consumed or has_consumer(node_id):
            states[node_id] = ALIVE
        else:
            states[node_id] = DEAD_END
    for node_id, node in nodes.items():
        if node.kind == "run":
            states[node_id] = ALIVE
    runs: dict[str, RunRecord] = {}
    if mode == "tree":
        runs = store.get_runs(sorted({e.run for e in graph.edges if e.run}))
    return View(graph=graph, mode=mode, project=project, states=states, runs=runs)


def page_states(
    nodes: Sequence[Node], cut: Collection[str], store: Lookups
) -> dict[str, NodeState]:
    """The state of every node of one page of a paged answer (:mod:`lineage.pages`), by
    :func:`classify`'s rules, without the rest of the answer: ``cut`` holds the versions
    the walk itself found depth stopping at (``Page.cut``), and whether a version has a
    consumer is asked of the store (a consumer inside the answer is one anywhere)."""
    versions = [n.id for n in nodes if n.version is not None]
    consumed = store.consumed(versions) if versions else set()
    states: dict[str, NodeState] = {}
    for node in nodes:
        if node.version is None:
            states[node.id] = ALIVE
        elif node.version.state != "committed":
            states[node.id] = DELETED
        elif node.id in cut:
            states[node.id] = TRUNCATED
        elif node.id in consumed:
            states[node.id] = ALIVE
        else:
            states[node.id] = DEAD_END
    return states


def _cut(
    g: Any,
    nodes: Mapping[str, Node],
    graph: Subgraph,
    mode: Mode,
    depth: int | None,
    consumed: Collection[str],
    store: Lookups,
) -> set[str]:
    """The versions at which ``depth`` stopped a walk that could have gone on."""
    import networkx as nx  # here: a process that draws no graph does not load it

    root = graph.root
    if not graph.truncated or root is None or root not in nodes:
        return set()
    cut: set[str] = set()
    if mode in ("downstream", "both", "tree"):
        # Only the last generation can have consumers beyond the answer. Most of it has none
        # in the answer (the consumed lookup answers for those); one that has some (a run
        # that also consumed something nearer the root) is asked about its other consumers.
        far = nx.single_source_shortest_path_length(g, graph.root)
        if depth is None:
            last = max(far.values(), default=0)
        elif mode == "tree":
            last = depth
        else:  # hops: a generation is a run and the versions beyond it
            last = 2 * depth - (1 if nodes[root].kind == "run" else 0)
        runs_in = {e.run for e in graph.edges if e.run} if mode == "tree" else set(nodes)
        for node_id, distance in far.items():
            node = nodes[node_id]
            if node.version is None or distance < last:
                continue
            if g.out_degree(node_id) == 0:
                if node_id in consumed:
                    cut.add(node_id)
            elif any(run.id not in runs_in for run in store.consumers(node.version)):
                cut.add(node_id)
    if mode in ("upstream", "both"):
        # made by a run that is not in the answer
        for node_id in nx.ancestors(g, graph.root) | {graph.root}:
            version = nodes[node_id].version
            if version is not None and version.created_by and g.in_degree(node_id) == 0:
                cut.add(node_id)
    return cut


def outcome_types(view: View) -> frozenset[str]:
    """Artifact types whose versions are all leaves of this derivation view (evaluation
    results, reports): the text tree folds them into their parent's line. A type with one
    version that something derives from (a model, when the tree starts at a dataset) is not."""
    parents = {e.source for e in view.graph.edges}
    types: dict[str, bool] = {}
    for node in view.graph.nodes:
        if node.version is None or node.id == view.graph.root:
            continue
        leafy = node.id not in parents and view.state(node.id) != TRUNCATED
        types[node.version.type] = types.get(node.version.type, True) and leafy
    return frozenset(t for t, leaf in types.items() if leaf)


class Asker(Protocol):
    """What :func:`ask` needs: :class:`lineage.Api` answers it."""

    @property
    def service(self) -> Any: ...

    def lineage(self, ref: str, direction: str = ..., depth: int | None = ...) -> Subgraph: ...

    def tree(self, ref: str, depth: int | None = ...) -> Subgraph: ...


def ask(api: Asker, ref: str, mode: Mode = "upstream", depth: int | None = 20) -> View:
    """Fetch and classify: the lineage (``upstream``, ``downstream``, ``both``) or the
    derivation ``tree`` of a ref or run id. What ``Api.view`` and every surface call."""
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    graph = api.tree(ref, depth) if mode == "tree" else api.lineage(ref, mode, depth)
    lookups: Lookups = api.service
    if "@" in ref:  # as of a time: consumers that came later do not count
        lookups = LookupsThen(api.service, parse_time(ref.partition("@")[2]))
    return classify(graph, store=lookups, mode=mode, depth=depth)
