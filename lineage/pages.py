"""Big lineage answers in pages: a walk delivered a level at a time, in a stable order.

The whole downstream tree of a base model can be a million versions: no client wants that as
one answer. :func:`walk_pages` yields it as :class:`Page` values instead, each holding at
most ``first`` nodes, built from a breadth-first walk that keeps one level (and the ids it
has seen) in memory, never the records of the whole answer.

Page semantics, the same on every store and surface:

- **Order.** Nodes come by *generation* (their breadth-first distance from the start, in
  hops for a lineage, in versions for a derivation tree), then by id. The order depends on
  the graph only, so a cursor stays meaningful between calls.
- **Cursor.** ``end_cursor`` is opaque (base64 JSON of the question and the last node's
  ``(generation, id)``); ``after=end_cursor`` asks for the nodes after it. A cursor from
  another question (another start, direction or depth) is refused (InvalidInput).
- **Edges.** Each edge is delivered once, on the page that delivers the later of its two
  endpoints in that order: when a page arrives, every edge between nodes delivered so far
  has arrived too. Concatenated, the pages are exactly the one-shot answer
  (``Service.lineage`` or ``Service.tree``).
- **truncated** says whether ``depth`` cut the walk: ``True`` as soon as it is known,
  ``False`` once the walk is complete, ``None`` on pages before either (it is decided when
  the last level is expanded). The last page always says ``True`` or ``False``.
- **total** is not on a page (it would cost the whole walk before the first page): ask
  ``Service.lineage_count`` / ``tree_count``, a walk of ids without records.

Resuming from a cursor walks again from the start to the cursor's generation (ids only, no
records); iterating (``Service.lineage_pages``) keeps the walk between pages instead, and so
does a client asking page after page (``Service.lineage_page``, GraphQL): the walk that made
a page waits in :class:`Paused` for the request of the page after it, a few at once.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lineage.cursors import cursor, cursor_key
from lineage.errors import InvalidInput
from lineage.records import (
    CONSUMED_BY,
    Edge,
    Node,
    RunRecord,
    Subgraph,
    VersionRecord,
    derived_edge,
    run_node,
    version_node,
)
from lineage.storage.graph import Direction

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "Page",
    "Paused",
    "Step",
    "answer_pages",
    "answer_steps",
    "capped",
    "check_first",
    "count_nodes",
    "first_part",
    "lineage_steps",
    "read_cursor",
    "split_ids",
    "tree_steps",
    "walk_pages",
]

DEFAULT_PAGE = 1000
MAX_PAGE = 10_000
# one expansion of a level: (near, far or None, what to deliver or None, gate) per edge met;
# at the depth limit an edge is followed only if its gate was met before (else: truncated)
Met = tuple[str, str | None, Any, str]
Step = Callable[[list[str]], list[Met]]


@dataclass(frozen=True, kw_only=True)
class Page:
    """One page of a lineage answer (see the module docstring for the semantics).

    >>> page = service.lineage_page("base:v0", "downstream", None, first=1000)
    >>> page = service.lineage_page("base:v0", "downstream", None, first=1000,
    ...                             after=page.end_cursor)
    """

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    truncated: bool | None
    has_next: bool
    end_cursor: str | None  # after the last node of this page; None on an empty page
    root: str | None = None
    #: the nodes of this page at which ``depth`` stopped a walk that could have gone on (the
    #: TRUNCATED state of :mod:`lineage.view`, decided by the walk itself)
    cut: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Level:
    generation: int
    ids: list[str]  # sorted
    items: dict[str, list[Any]]  # per node of this level: the edges delivered with it
    truncated: bool  # found so far
    last: bool  # no level follows
    cut: frozenset[str] = frozenset()  # nodes of this level the limit stopped the walk at


def _levels(start: Sequence[str], step: Step, limit: int | None, gated: bool) -> Iterator[_Level]:
    """Breadth-first levels from ``start``. A level is expanded before it is yielded, so its
    edges back to earlier nodes and its truncation are known when it is delivered.

    ``gated``: at the limit, an edge is followed when its gate (the run, for a derivation
    tree) was met before the limit, as ``TreeRows`` does; otherwise when its far node was.
    """
    seen: dict[str, int] = dict.fromkeys(start, 0)
    passed: set[str] = set()  # gates met before the limit (gated walks only)
    pending: dict[str, list[Any]] = {}
    level = sorted(seen)
    generation = 0
    truncated = False
    while level:
        at_limit = limit is not None and generation >= limit
        met = step(level)
        fresh: list[str] = []
        cut: set[str] = set()
        for near, far, item, gate in met:
            if at_limit and gate not in (passed if gated else seen):
                truncated = True
                cut.add(near)
                continue
            if far is None:
                continue
            at = seen.get(far)
            if at is None:
                at = seen[far] = generation + 1
                fresh.append(far)
            if item is not None:
                later = far if (at, far) > (generation, near) else near
                pending.setdefault(later, []).append(item)
        if gated and not at_limit:
            passed.update(m[3] for m in met)
        items = {node: pending.pop(node) for node in level if node in pending}
        following = sorted(fresh)
        yield _Level(generation, level, items, truncated, not following, frozenset(cut))
        level = following
        generation += 1


def lineage_steps(expand: Callable[[list[str], Direction], list[tuple[str, str, str]]],
                  direction: Direction) -> Step:  # fmt: skip
    """A lineage walk's step: the edges of ``expand`` (a store's ``expand_rows``)."""
    down = direction == "down"

    def step(level: list[str]) -> list[Met]:
        rows = expand(level, direction)
        if down:
            return [(row[0], row[1], row, row[1]) for row in rows]
        return [(row[1], row[0], row, row[0]) for row in rows]

    return step


def tree_steps(
    expand: Callable[[list[str], Direction], list[tuple[str, str, str]]],
    derive: Callable[[list[str]], list[tuple[str, str | None, str]]] | None = None,
) -> Step:
    """A derivation tree's step from a level of versions: per run consuming one and per
    version it produced, the ``(version, output, run)`` triple, gated by the run. With
    ``derive`` (a store's ``derive_rows``), one round trip a level instead of two."""
    if derive is not None:
        derived = derive

        def one_trip(level: list[str]) -> list[Met]:
            return [
                (version, out, None if out is None else (version, out, run), run)
                for version, out, run in derived(level)
            ]

        return one_trip

    def step(level: list[str]) -> list[Met]:
        consumed = [row for row in expand(level, "down") if row[2] == CONSUMED_BY]
        outputs: dict[str, list[str]] = {}
        for run, output, _ in expand(list({row[1] for row in consumed}), "down"):
            outputs.setdefault(run, []).append(output)
        met: list[Met] = []
        for version, run, _ in consumed:
            made = outputs.get(run)
            if not made:
                met.append((version, None, None, run))
            met += [(version, out, (version, out, run), run) for out in made or ()]
        return met

    return step


def answer_steps(answer: Subgraph, direction: Direction | None) -> Step:
    """A step over an answer already in hand (a server's, or one as of a time): pages cut
    from it in the same order. ``direction`` None: ``answer`` is a derivation tree."""
    adjacent: dict[str, list[Met]] = {}
    for e in answer.edges:
        if direction is None:
            adjacent.setdefault(e.source, []).append(
                (e.source, e.target, (e.source, e.target, e.run), e.target)
            )
        elif direction == "down":
            row = (e.source, e.target, e.kind)
            adjacent.setdefault(e.source, []).append((e.source, e.target, row, e.target))
        else:
            row = (e.source, e.target, e.kind)
            adjacent.setdefault(e.target, []).append((e.target, e.source, row, e.source))

    def step(level: list[str]) -> list[Met]:
        return [met for node in level for met in adjacent.get(node, ())]

    return step


class Paused:
    """Walks that delivered a page and wait for the request of the next one, by the question
    and the cursor they stopped at: a client paging over HTTP resumes the walk instead of
    walking again from the start to the cursor (the whole tree of a base model, each page).
    At most ``size`` wait, the least recently paused dropped first, none past ``ttl``
    seconds; each holds what iterating holds (the ids seen, one level). Thread-safe: a walk
    is handed to one caller."""

    def __init__(self, size: int = 4, ttl: float = 60.0) -> None:
        self.size, self.ttl = size, ttl
        self._walks: OrderedDict[tuple[Any, ...], tuple[float, Iterator[Page]]] = OrderedDict()
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def page(
        self, key: tuple[Any, ...], after: str | None, walk: Callable[[], Iterator[Page]]
    ) -> Page:
        """The page after ``after`` of the question ``key`` (its arguments but the cursor),
        from the walk paused there if one is, else from ``walk()``."""
        now = time.monotonic()
        with self._lock:
            for old in [k for k, (at, _) in self._walks.items() if now - at > self.ttl]:
                del self._walks[old]
            paused = self._walks.pop((*key, after), None) if after is not None else None
        pages = paused[1] if paused is not None else walk()
        page = next(pages)
        if page.has_next and page.end_cursor is not None and self.size:
            with self._lock:
                self._walks[(*key, page.end_cursor)] = (time.monotonic(), pages)
                while len(self._walks) > self.size:
                    self._walks.popitem(last=False)
        return page

    def count(self, after: str | None, page: Page, counting: Callable[[], int]) -> int:
        """The count of the whole answer for ``page`` (asked after the cursor ``after``):
        counted once a walk of pages, by ``counting()`` when its first page asks, then handed
        on from cursor to cursor (for ``ttl`` seconds at most), so that a client asking for
        the count on every page walks the whole answer once, not once a page. A first page
        (``after`` None) is a new walk: it counts afresh."""
        now = time.monotonic()
        with self._lock:
            for old in [c for c, (at, _) in self._counts.items() if now - at > self.ttl]:
                del self._counts[old]
            held = self._counts.get(after) if after is not None else None
        total = counting() if held is None else held[1]
        if page.has_next and page.end_cursor is not None:
            with self._lock:
                self._counts[page.end_cursor] = (now if held is None else held[0], total)
                while len(self._counts) > 16 * max(self.size, 1):
                    self._counts.popitem(last=False)
        return total


def walk_pages(
    question: list[Any],
    starts: Sequence[tuple[Sequence[str], Step]],
    limit: int | None,
    records: Callable[[list[str]], tuple[Mapping[str, VersionRecord], Mapping[str, RunRecord]]],
    *,
    first: int,
    after: str | None = None,
    derived: bool = False,
    gated: bool = False,
    truncated: bool | None = None,
    root: str | None = None,
    cut: Collection[str] | None = None,
) -> Iterator[Page]:
    """Pages of ``first`` nodes from the walks ``starts`` (``(start ids, step)`` each, merged
    level by level: a lineage "both" ways is two walks), after the cursor ``after``.

    ``question`` identifies the question in the cursor; ``records(ids)`` fetches the
    records of a page's nodes (a node without one is walked but not delivered, as in the
    one-shot answer); ``truncated`` and ``cut`` override what the walk finds (an answer in
    hand knows: its walk had no limit to meet).
    """
    first = check_first(first)
    resume = read_cursor(after, question) if after is not None else None
    walks = [_levels(start, step, limit, gated) for start, step in starts]
    ids: list[str] = []
    items: list[Any] = []
    stopped: set[str] = set()  # nodes of the page being filled at which the walk was cut
    known_cut = None if cut is None else frozenset(cut)
    was_cut = False
    last = (0, "")
    for level in _merged(walks):
        was_cut = was_cut or level.truncated
        level_cut = level.cut if known_cut is None else known_cut
        nodes = level.ids
        if resume is not None:
            if level.generation < resume[0]:
                continue
            if level.generation == resume[0]:
                nodes = nodes[bisect.bisect_right(nodes, resume[1]) :]
        for position, node in enumerate(nodes):
            ids.append(node)
            items += level.items.get(node, ())
            if node in level_cut:
                stopped.add(node)
            if len(ids) == first:
                last = (level.generation, node)
                more = position + 1 < len(nodes) or not level.last
                known = (
                    truncated if truncated is not None else (was_cut or (None if more else False))
                )
                yield _page(
                    question, ids, items, known, more, last, records, derived, root, stopped
                )
                if not more:
                    return
                ids, items, stopped = [], [], set()
        if ids:
            last = (level.generation, ids[-1])
    known = truncated if truncated is not None else was_cut
    yield _page(question, ids, items, known, False, last, records, derived, root, stopped)


def _merged(walks: list[Iterator[_Level]]) -> Iterator[_Level]:
    """Levels of several walks from the same start, merged generation by generation (the
    walks share only their start: lineage is acyclic)."""
    if len(walks) == 1:
        yield from walks[0]
        return
    live = list(walks)
    while live:
        parts, still = [], []
        for walk in live:
            level = next(walk, None)
            if level is not None:
                parts.append(level)
                if not level.last:
                    still.append(walk)
        if not parts:
            return
        items: dict[str, list[Any]] = {}
        for part in parts:
            for node, found in part.items.items():
                items.setdefault(node, []).extend(found)
        ids = sorted(set().union(*(part.ids for part in parts)))
        truncated = any(part.truncated for part in parts)
        cut = frozenset().union(*(part.cut for part in parts))
        yield _Level(parts[0].generation, ids, items, truncated, not still, cut)
        live = still


def _page(
    question: list[Any],
    ids: list[str],
    items: list[Any],
    truncated: bool | None,
    more: bool,
    last: tuple[int, str],
    records: Callable[[list[str]], tuple[Mapping[str, VersionRecord], Mapping[str, RunRecord]]],
    derived: bool,
    root: str | None,
    stopped: set[str],
) -> Page:
    versions, runs = records(ids)
    nodes = tuple(
        version_node(i, versions[i]) if i in versions else run_node(runs[i])
        for i in ids
        if i in versions or i in runs
    )
    if derived:
        edges = tuple(derived_edge(a, b, run) for a, b, run in items)
    else:
        edges = tuple(Edge(source=s, target=t, kind=k) for s, t, k in items)
    return Page(
        nodes=nodes,
        edges=edges,
        truncated=truncated,
        has_next=more,
        end_cursor=cursor([question, *last]) if ids else None,
        root=root,
        cut=frozenset(i for i in stopped if i in versions),
    )


def read_cursor(after: str, question: list[Any]) -> tuple[int, str]:
    """The ``(generation, id)`` a page cursor holds; InvalidInput when it is not one, or
    belongs to another question."""
    key = cursor_key(after)
    if len(key) != 3 or not isinstance(key[1], int) or not isinstance(key[2], str):
        raise InvalidInput(
            f"invalid cursor (after: {after[:40]!r}): pass the endCursor of a lineage page",
            argument="after",
        )
    if key[0] != question:
        raise InvalidInput(
            f"this cursor pages another question ({_said(key[0])}), not {_said(question)}: "
            "pass the endCursor of a page of this one",
            argument="after",
        )
    return key[1], key[2]


def _said(question: object) -> str:
    if isinstance(question, list) and len(question) == 3:
        what, start, depth = question
        return f"{what} of {start}, depth {'unlimited' if depth is None else depth}"
    return repr(question)[:60]


def check_first(first: object) -> int:
    if not isinstance(first, int) or isinstance(first, bool) or not 1 <= first <= MAX_PAGE:
        raise InvalidInput(
            f"first must be an integer from 1 to {MAX_PAGE}, got {first!r}", argument="first"
        )
    return first


def split_ids(ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(version ids, run ids)``: a version id has a colon."""
    versions: list[str] = []
    runs: list[str] = []
    for i in ids:
        (versions if ":" in i else runs).append(i)
    return versions, runs


def first_part(pages: Iterable[Page], most: int) -> tuple[Subgraph, bool]:
    """The first ``most`` nodes of an answer's pages (its nearest generations), with the
    edges between them, as one Subgraph; and whether the answer goes on past them. What a
    surface shows of an answer too big to show whole, in memory bounded by ``most``."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    page = None
    for page in pages:
        nodes += page.nodes
        edges += page.edges
        if len(nodes) >= most:
            break
    if page is None:
        raise InvalidInput("an answer without pages has no part to show")
    more = page.has_next or len(nodes) > most
    if len(nodes) > most:  # the last page went past: its edges to what is cut go too
        nodes = nodes[:most]
        kept = {n.id for n in nodes}
        edges = [e for e in edges if e.source in kept and e.target in kept]
    part = Subgraph(
        nodes=tuple(nodes), edges=tuple(edges), truncated=bool(page.truncated), root=page.root
    )
    return part, more


def capped(total: int, cap: int | None) -> int:
    """A count as :func:`count_nodes` says it with ``cap``: past ``cap``, ``cap + 1``."""
    return total if cap is None or total <= cap else cap + 1


def count_nodes(starts: Sequence[tuple[Sequence[str], Step]], limit: int | None, *,
                gated: bool = False, cap: int | None = None) -> int:  # fmt: skip
    """How many nodes the pages of these walks hold (ids only: no records are read). With
    ``cap``, the walk stops at the first level past it, and the count says ``cap + 1``: "more
    than ``cap``", known after walking about ``cap`` nodes, whatever the size of the answer."""
    counted = 0
    for level in _merged([_levels(s, t, limit, gated) for s, t in starts]):
        counted += len(level.ids)
        if cap is not None and counted > cap:
            return cap + 1
    return counted


def answer_pages(
    question: list[Any],
    answer: Subgraph,
    ways: Sequence[Direction] | None,
    *,
    first: int,
    after: str | None,
    cut: Collection[str] = (),
) -> Iterator[Page]:
    """Pages cut from an answer in hand (``ways`` None: a derivation tree), in the order
    and with the cursors of a walk: what a server's whole answer, or an answer as of a
    time, pages as. ``cut``: the answer's TRUNCATED versions (its view's), when known."""
    root = answer.root
    if root is None:
        raise InvalidInput("an answer without a root cannot be paged")
    versions = {n.id: n.version for n in answer.nodes if n.version is not None}
    runs = {n.id: n.run for n in answer.nodes if n.run is not None}

    def records(ids: list[str]) -> tuple[Mapping[str, VersionRecord], Mapping[str, RunRecord]]:
        return versions, runs

    directions: Sequence[Direction | None] = [None] if ways is None else ways
    starts = [([root], answer_steps(answer, way)) for way in directions]
    return walk_pages(
        question,
        starts,
        None,
        records,
        first=first,
        after=after,
        derived=ways is None,
        truncated=answer.truncated,
        root=root,
        cut=cut,
    )
