"""Per-request state of the GraphQL API: the service, the caller, and the DataLoaders.

Every loader batches the keys requested in one turn of the event loop into one GraphStore
call (``get_runs``, ``get_versions``, ``expand``), and remembers what it fetched for the rest
of the request, so a query for 100 versions with their producing runs costs a handful of
store calls, not hundreds. Store calls are blocking; they run in worker threads so that one
slow query does not stall the others. Over a store whose lookups by key take microseconds in
this process (SQLite: :func:`quick_reads`), the loaders' lookups of a few keys run on the
event loop instead: a thread hop costs more than the lookup. Traversals, and lookups whose
answer has no bound (the consumers of a version), keep their thread.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
from strawberry.dataloader import DataLoader

from lineage.errors import InvalidInput
from lineage.locations import is_location
from lineage.names import parse_ref
from lineage.records import ArtifactRecord, Edge, RunRecord, Subgraph, VersionRecord
from lineage.server.auth import ANONYMOUS_READ, Principal
from lineage.service import Service
from lineage.storage.graph import GraphStore
from lineage.storage.sqlite import SQLiteGraphStore

__all__ = ["INLINE_KEYS", "Context", "Limits", "Loaders", "call", "quick_reads"]

P = ParamSpec("P")
T = TypeVar("T")

INLINE_KEYS = 100  # at most this many keys a lookup on the event loop (quick_reads stores)


def quick_reads(graph: object) -> bool:
    """Whether ``graph`` answers a lookup by key in microseconds, in this process, without
    waiting on a network (SQLite: a local file, readers never blocked by a writer in WAL
    mode), so that such lookups may run on the event loop rather than in a worker thread."""
    return isinstance(graph, SQLiteGraphStore)


async def call(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking service or store call in a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one request may ask for beyond the query-shape limits of the schema."""

    max_lineage_depth: int = 100
    max_page: int = 500

    def depth(self, depth: int) -> int:
        if depth > self.max_lineage_depth:
            raise InvalidInput(
                f"depth {depth} is over this server's limit of {self.max_lineage_depth} "
                "generations; ask for less, or page through with several queries",
                depth=depth,
            )
        return depth

    def first(self, first: int) -> int:
        if not 0 <= first <= self.max_page:
            raise InvalidInput(f"first must be from 0 to {self.max_page}, got {first}")
        return first


class Loaders:
    """DataLoaders over one service, for one request."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.inline = quick_reads(service.graph)  # lookups of a few keys on the event loop
        self._unprimed: list[Subgraph] = []  # answers whose records are not in the loaders yet

    # each loader is made when first used: most requests use one or two of them. Their
    # load functions hold the store, not these loaders: a loader calling a method of the
    # object that holds it would be a reference cycle, and the request's records would wait
    # for the garbage collector instead of going when the request does.

    @functools.cached_property
    def _run_loader(self) -> DataLoader[str, RunRecord | None]:
        return DataLoader(functools.partial(_runs, self.service.graph, self.inline))

    @functools.cached_property
    def _version_loader(self) -> DataLoader[str, VersionRecord | None]:
        return DataLoader(functools.partial(_versions, self.service.graph, self.inline))

    @functools.cached_property
    def upstream(self) -> DataLoader[str, list[Edge]]:
        """The edges into each node (a version's producing runs, a run's inputs)."""
        return DataLoader(functools.partial(_expand, self.service.graph, self.inline, "up"))

    @functools.cached_property
    def downstream(self) -> DataLoader[str, list[Edge]]:
        """The edges out of each node (a version's consumers, a run's outputs)."""
        return DataLoader(functools.partial(_expand, self.service.graph, self.inline, "down"))

    @functools.cached_property
    def artifacts(self) -> DataLoader[tuple[str, str], ArtifactRecord | None]:
        """Artifacts by (project, name)."""
        graph = self.service.graph
        return DataLoader(self._each(lambda key: graph.get_artifact(*key), inline=self.inline))

    @functools.cached_property
    def run_counts(self) -> DataLoader[tuple[str, str | None, str | None], int]:
        """How many runs each (project, job_type, state) holds: the projects of a listing
        counted in one store call (``count_project_runs``), not one call a project."""
        return DataLoader(functools.partial(_run_counts, self.service))

    @property
    def runs(self) -> DataLoader[str, RunRecord | None]:
        """Runs by id."""
        if self._unprimed:
            self._prime()
        return self._run_loader

    @property
    def versions(self) -> DataLoader[str, VersionRecord | None]:
        """Versions by id."""
        if self._unprimed:
            self._prime()
        return self._version_loader

    @staticmethod
    def _each(
        fetch: Callable[[tuple[str, str]], Any], *, inline: bool
    ) -> Callable[[list[tuple[str, str]]], Any]:
        # no batch call exists for these: one thread hop for the lot, one store call a key
        async def load(keys: list[tuple[str, str]]) -> Sequence[Any]:
            if inline and len(keys) <= INLINE_KEYS:
                return [fetch(key) for key in keys]
            return await call(lambda: [fetch(key) for key in keys])

        return load

    async def version(self, ref: str) -> VersionRecord:
        """What ``Service.resolve`` returns, with refs by index batched into one store call."""
        if is_location(ref):  # a storage URI, the service finds what is recorded there
            record = await call(self.service.resolve, ref)
            self.versions.prime(record.id, record)
            return record
        parsed = parse_ref(ref)
        if parsed.index is not None:
            found = await self.versions.load(str(parsed))
            if found is not None and found.state == "committed":
                return found
        # by alias, or not found: the service resolves it, or explains what is missing
        if self.inline and parsed.as_of is None:  # one lookup by key (as of a time: more)
            record = self.service.resolve(parsed)
        else:
            record = await call(self.service.resolve, parsed)
        self.versions.prime(record.id, record)
        return record

    def prime(self, graph: Subgraph) -> None:
        """Remember the records a traversal already fetched (put in the loaders when one is
        next used: most answers never need them)."""
        self._unprimed.append(graph)

    def _prime(self) -> None:
        graphs, self._unprimed = self._unprimed, []
        for graph in graphs:
            for node in graph.nodes:
                if node.run is not None:
                    self._run_loader.prime(node.id, node.run)
                if node.version is not None:
                    self._version_loader.prime(node.id, node.version)


async def _runs(graph: GraphStore, inline: bool, ids: list[str]) -> list[RunRecord | None]:
    if inline and len(ids) <= INLINE_KEYS:
        found = graph.get_runs(ids)
    else:
        found = await call(graph.get_runs, ids)
    return [found.get(i) for i in ids]


async def _versions(graph: GraphStore, inline: bool, ids: list[str]) -> list[VersionRecord | None]:
    if inline and len(ids) <= INLINE_KEYS:
        found = graph.get_versions(ids)
    else:
        found = await call(graph.get_versions, ids)
    return [found.get(i) for i in ids]


async def _run_counts(
    service: Service, keys: list[tuple[str, str | None, str | None]]
) -> list[int]:
    filters: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
    for project, job_type, state in keys:
        filters[job_type, state].append(project)
    counts = {}
    for (job_type, state), projects in filters.items():
        found = await call(service.count_project_runs, projects, job_type=job_type, state=state)
        counts.update({(p, job_type, state): n for p, n in found.items()})
    return [counts.get(key, 0) for key in keys]


async def _expand(
    graph: GraphStore, inline: bool, direction: str, ids: list[str]
) -> list[list[Edge]]:
    if inline and direction == "up" and len(ids) <= INLINE_KEYS:
        # upstream of a few nodes: a version's producers, a run's inputs (a handful);
        # downstream may be thousands of consumers of a dataset, so it keeps its thread
        edges = graph.expand(ids, "up")
    else:
        edges = await call(graph.expand, ids, "up" if direction == "up" else "down")
    near: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges:
        near[edge.target if direction == "up" else edge.source].append(edge)
    return [sorted(near.get(i, ()), key=lambda e: (e.source, e.target)) for i in ids]


@dataclass(kw_only=True)
class Context:
    """``info.context`` of every resolver."""

    service: Service
    principal: Principal = ANONYMOUS_READ
    limits: Limits = field(default_factory=Limits)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.service)
