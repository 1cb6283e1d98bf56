"""Lineage graphs in GraphQL: the answer of lineage, derivationTree, path and impact."""

from __future__ import annotations

import enum
from typing import Any

import strawberry

from lineage import render
from lineage.records import Edge, Node, Subgraph
from lineage.render import Mode
from lineage.server.graphql.loaders import Context, call
from lineage.server.graphql.types import ArtifactVersion, Info, Run, field

__all__ = [
    "Direction",
    "EdgeKind",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "NodeKind",
    "lineage_graph",
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


@strawberry.type(description="A run or an artifact version in a lineage graph.")
class LineageNode:
    node: strawberry.Private[Node]

    @field("A run id, or a version's project/name:vN.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.node.id)

    @strawberry.field
    def kind(self) -> NodeKind:
        return NodeKind(self.node.kind)

    @field("The ref of a version; null for a run.")
    def ref(self) -> str | None:
        return self.node.ref

    @field("name:vN for a version, the run's name for a run.")
    def label(self) -> str:
        return self.node.label

    @strawberry.field
    def run(self) -> Run | None:
        return None if self.node.run is None else Run(record=self.node.run)

    @strawberry.field
    def artifact_version(self) -> ArtifactVersion | None:
        return None if self.node.version is None else ArtifactVersion(record=self.node.version)


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


@strawberry.type(
    description="The answer of every traversal: nodes, edges, and whether depth cut it."
)
class LineageGraph:
    graph: strawberry.Private[Subgraph]
    mode: strawberry.Private[Mode] = "lineage"

    @strawberry.field
    def nodes(self) -> list[LineageNode]:
        return [LineageNode(node=node) for node in self.graph.nodes]

    @strawberry.field
    def edges(self) -> list[LineageEdge]:
        return [LineageEdge(edge=edge) for edge in self.graph.edges]

    @field("Whether the depth limit cut the walk short.")
    def truncated(self) -> bool:
        return self.graph.truncated

    @field("Where the walk started.")
    def root(self) -> strawberry.ID | None:
        return None if self.graph.root is None else strawberry.ID(self.graph.root)

    @field("The graph as Graphviz DOT text (see `lineage render`).")
    async def dot(self, info: Info, highlight: str | None = None, collapse: int = 5) -> str:
        options = await self._render_options(info)
        return await call(
            render.to_dot,
            self.graph,
            mode=self.mode,
            highlight=highlight,
            collapse=collapse,
            **options,
        )

    @field("The graph drawn by Graphviz, as SVG text.")
    async def svg(self, info: Info, highlight: str | None = None, collapse: int = 5) -> str:
        options = await self._render_options(info)
        return await call(
            render.to_svg,
            self.graph,
            mode=self.mode,
            highlight=highlight,
            collapse=collapse,
            **options,
        )

    async def _render_options(self, info: Info) -> dict[str, Any]:
        if self.mode != "tree":
            return {}
        loaders = info.context.loaders
        run_ids = sorted({edge.run for edge in self.graph.edges if edge.run})
        runs = {r.id: r for r in await loaders.runs.load_many(run_ids) if r is not None}
        # a leaf some run consumed (an evaluation that logged nothing) is not a dead end
        sources = {edge.source for edge in self.graph.edges}
        leaves = [node.id for node in self.graph.nodes if node.id not in sources]
        below = await loaders.downstream.load_many(leaves)
        consumed = [leaf for leaf, edges in zip(leaves, below, strict=True) if edges]
        return {"runs": runs, "consumed": consumed}


def lineage_graph(graph: Subgraph, context: Context, mode: Mode = "lineage") -> LineageGraph:
    context.loaders.prime(graph)
    return LineageGraph(graph=graph, mode=mode)
