"""Lineage graphs in GraphQL: the answer of lineage, derivationTree, path and impact."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import strawberry

from lineage import render, view
from lineage.errors import InvalidInput
from lineage.modelcard import edge_kind
from lineage.pages import DEFAULT_PAGE, Page
from lineage.records import Edge, Node, Subgraph
from lineage.server.graphql import bulk
from lineage.server.graphql.loaders import Context, call
from lineage.server.graphql.pagination import PageInfo
from lineage.server.graphql.types import ArtifactVersion, Info, Run, field

__all__ = [
    "Direction",
    "EdgeKind",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "NodeKind",
    "NodeState",
    "lineage_graph",
    "lineage_page",
]


@strawberry.enum(description="Which way a lineage query walks from its start.")
class Direction(enum.Enum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"
    BOTH = "both"


@strawberry.enum
class NodeKind(enum.Enum):
    RUN = "run"
    ARTIFACT_VERSION = "artifact_version"


@strawberry.enum(description="Edges point downstream, the way data flows.")
class EdgeKind(enum.Enum):
    CONSUMED_BY = "consumed_by"
    PRODUCED = "produced"
    DERIVED = "derived"


@strawberry.enum(description="What a node of an answer is (the same on every surface).")
class NodeState(enum.Enum):
    ALIVE = "alive"
    DEAD_END = "dead_end"
    TRUNCATED = "truncated"
    DELETED = "deleted"


@dataclass
class _Answer:
    """One answer's subgraph and, once a field asks for it, its classification (computed once
    for every node that asks, with one round trip to the store)."""

    graph: Subgraph
    mode: view.Mode
    depth: int | None
    project: str | None = None
    task: asyncio.Task[view.View] | None = dataclass_field(default=None)
    #: a page of a paged answer (its graph holds the page's nodes and edges), and how to
    #: count the whole answer's nodes
    page: Page | None = None
    count: Callable[[], Awaitable[int]] | None = None
    page_task: asyncio.Task[dict[str, view.NodeState]] | None = dataclass_field(default=None)

    async def state(self, context: Context, node_id: str) -> view.NodeState:
        """A node's state: from the classified answer, or on a page by the same rules from
        what the walk found (``Page.cut``) and one question to the store per page."""
        if self.page is None:
            return (await self.view(context)).state(node_id)
        if self.page_task is None:
            self.page_task = asyncio.ensure_future(
                call(view.page_states, self.graph.nodes, self.page.cut, context.service)
            )
        return (await self.page_task)[node_id]

    async def view(self, context: Context) -> view.View:
        if self.task is None:
            self.task = asyncio.ensure_future(
                call(
                    view.classify,
                    self.graph,
                    store=context.service,
                    mode=self.mode,
                    depth=self.depth,
                )
            )
        return await self.task


@strawberry.type(description="A run or an artifact version in a lineage graph.")
class LineageNode:
    node: strawberry.Private[Node]
    answer: strawberry.Private[_Answer]

    @field("A run id, or a version's project/name:vN.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.node.id)

    @strawberry.field
    def kind(self) -> NodeKind:
        return NodeKind(self.node.kind)

    @field("The ref of a version; null for a run.")
    def ref(self) -> str | None:
        return self.node.ref

    @field(
        "name:vN for a version, the run's name for a run; prefixed with the node's project "
        "when it is not the project of the root. What came in through OpenLineage shows the "
        "names it was sent with (`s3://lake/clean/orders:v0`), not the safe names of its ref."
    )
    def label(self) -> str:
        return view.label(self.node, self.answer.project)

    @field("The project the node belongs to.")
    def project(self) -> str | None:
        return _project(self.node)

    @field(
        "DEAD_END: a version no run anywhere consumed; TRUNCATED: depth stopped the walk "
        "here and the graph goes on; DELETED: a deleted version (its lineage stays); ALIVE: "
        "anything else (every run)."
    )
    async def state(self, info: Info) -> NodeState:
        return NodeState(await self.answer.state(info.context, self.node.id))

    @strawberry.field
    def run(self) -> Run | None:
        return None if self.node.run is None else Run(record=self.node.run)

    @strawberry.field
    def artifact_version(self) -> ArtifactVersion | None:
        return None if self.node.version is None else ArtifactVersion(record=self.node.version)


def _project(node: Node) -> str | None:
    record = node.version or node.run
    return None if record is None else record.project


# the plain fields of nodes, edges and graphs, read from the records in bulk (see bulk.py):
# a whole list of nodes is one comprehension over the traversal's records
bulk.shape(
    LineageNode,
    {"node": "node", "answer": "answer"},
    id=bulk.ident("$node.id"),
    kind=bulk.enumeration(NodeKind, "$node.kind"),
    ref=bulk.maybe_text("$node.ref"),
    label=bulk.column(
        "($tmp if type($tmp := _label($node, $answer.project)) is _str else _slow())",
        "String!",
        _label=view.label,
    ),
    project=bulk.column(
        "(None if ($tmp := _project($node)) is None else $tmp if type($tmp) is _str else _slow())",
        "String",
        _project=_project,
    ),
    run=bulk.One(type=Run, value="$node.run", part="record"),
    artifactVersion=bulk.One(type=ArtifactVersion, value="$node.version", part="record"),
)


@strawberry.type(description="A downstream-pointing edge of a lineage graph.")
class LineageEdge:
    edge: strawberry.Private[Edge]

    @strawberry.field
    def source(self) -> strawberry.ID:
        return strawberry.ID(self.edge.source)

    @strawberry.field
    def target(self) -> strawberry.ID:
        return strawberry.ID(self.edge.target)

    @strawberry.field
    def kind(self) -> EdgeKind:
        return EdgeKind(self.edge.kind)

    @field(
        "The run a DERIVED edge stands for (it consumed source and produced "
        "target); for CONSUMED_BY and PRODUCED, the run at either end."
    )
    async def run(self, info: Info) -> Run | None:
        if self.edge.run is not None:
            run_id = self.edge.run
        elif self.edge.kind == "consumed_by":
            run_id = self.edge.target
        else:
            run_id = self.edge.source
        found = await info.context.loaders.runs.load(run_id)
        return None if found is None else Run(record=found)

    @field(
        "For a DERIVED edge, the kind of derivation its run names (finetune, adapter, merge, "
        "quantized, distillation, pruning, surgery: its jobType or derivation facet); null "
        "for other edges, when the run does not say, or when source is not of target's type "
        "(a model trained on a dataset is no fine-tune of it)."
    )
    async def derivation(self, info: Info) -> str | None:
        if self.edge.run is None:
            return None
        found = await info.context.loaders.runs.load(self.edge.run)
        if found is None:
            return None
        ends = [self.edge.source, self.edge.target]
        source, target = await info.context.loaders.versions.load_many(ends)
        return edge_kind(found, source, target)


@strawberry.type(
    description="The answer of every traversal: nodes, edges, and whether depth cut it."
)
class LineageGraph:
    answer: strawberry.Private[_Answer]

    @property
    def graph(self) -> Subgraph:
        return self.answer.graph

    @strawberry.field
    def nodes(self) -> list[LineageNode]:
        return [LineageNode(node=node, answer=self.answer) for node in self.graph.nodes]

    @strawberry.field
    def edges(self) -> list[LineageEdge]:
        return [LineageEdge(edge=edge) for edge in self.graph.edges]

    @field(
        "Whether the depth limit cut the walk short. On a page (`first`/`after`): whether it "
        "is known to have by this page; final on the last page (hasNextPage false)."
    )
    def truncated(self) -> bool:
        if self.answer.page is not None:
            return bool(self.answer.page.truncated)
        return self.graph.truncated

    @field("Where the walk started.")
    def root(self) -> strawberry.ID | None:
        return None if self.graph.root is None else strawberry.ID(self.graph.root)

    @field(
        "Paging of a big answer asked for with `first`/`after`: pass endCursor as `after` for "
        "the next page. Nodes come by generation (distance from the root), then id; each edge "
        "comes on the page of the later of its two ends. A whole answer is one page."
    )
    def page_info(self) -> PageInfo:
        page = self.answer.page
        if page is None:
            return PageInfo(has_next_page=False, end_cursor=None)
        return PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor)

    @field(
        "How many nodes the whole answer holds, every page together (on a paged answer, a "
        "walk of its own, made only when asked for)."
    )
    async def total_count(self) -> int:
        if self.answer.count is None:
            return len(self.graph.nodes)
        return await self.answer.count()

    @field("The graph as Graphviz DOT text (see `lineage render`).")
    async def dot(self, info: Info, highlight: str | None = None, collapse: int = 5) -> str:
        refuse_picture_of_page(self.answer)
        found = await self.answer.view(info.context)
        return await call(render.to_dot, found, highlight=highlight, collapse=collapse)

    @field("The graph drawn by Graphviz, as SVG text.")
    async def svg(self, info: Info, highlight: str | None = None, collapse: int = 5) -> str:
        refuse_picture_of_page(self.answer)
        found = await self.answer.view(info.context)
        return await call(render.to_svg, found, highlight=highlight, collapse=collapse)


bulk.shape(
    LineageEdge,
    {"edge": "edge"},
    source=bulk.ident("$edge.source"),
    target=bulk.ident("$edge.target"),
    kind=bulk.enumeration(EdgeKind, "$edge.kind"),
)
bulk.shape(
    LineageGraph,
    {"answer": "answer"},
    nodes=bulk.Many(
        type=LineageNode, items="$answer.graph.nodes", part="node", others={"answer": "$answer"}
    ),
    edges=bulk.Many(type=LineageEdge, items="$answer.graph.edges", part="edge"),
    root=bulk.maybe_ident("$answer.graph.root"),
    truncated=bulk.column(
        "(_bool($answer.graph.truncated) if $answer.page is None "
        "else bool($answer.page.truncated))",
        "Boolean!",
    ),
)


def lineage_graph(
    graph: Subgraph, context: Context, mode: view.Mode = "both", depth: int | None = None
) -> LineageGraph:
    """An answer for GraphQL: ``mode`` and ``depth`` are how it was asked for."""
    context.loaders.prime(graph)
    answer = _Answer(graph=graph, mode=mode, depth=depth, project=view.asked_project(graph))
    return LineageGraph(answer=answer)


async def lineage_page(
    context: Context,
    mode: view.Mode,
    depth: int | None,
    page_of: Callable[..., Page],
    count_of: Callable[[], int],
    first: int | None,
    after: str | None,
) -> LineageGraph:
    """One page of a paged answer for GraphQL: ``page_of(first=, after=)`` is the service's
    page of the question, ``count_of()`` its count of the whole answer's nodes (asked only
    when ``totalCount`` is)."""
    page = await call(page_of, first=DEFAULT_PAGE if first is None else first, after=after)

    async def count() -> int:
        # once a walk of pages, not once a page: the count is handed on from cursor to cursor
        return await call(context.service.paused.count, after, page, count_of)

    graph = Subgraph(nodes=page.nodes, edges=page.edges, root=page.root)
    context.loaders.prime(graph)
    project = view.asked_project(graph)  # the root's, on the first page
    if project is None and page.root is not None and "/" in page.root:
        project = page.root.partition("/")[0]  # a version's id: project/name:vN
    answer = _Answer(
        graph=graph,
        mode=mode,
        depth=depth,
        project=project,
        page=page,
        count=count,
    )
    return LineageGraph(answer=answer)


def refuse_picture_of_page(answer: _Answer) -> None:
    if answer.page is not None:
        raise InvalidInput(
            "dot and svg draw a whole answer: ask without first/after (or render the page "
            "with `lineage render`)",
            argument="first",
        )
