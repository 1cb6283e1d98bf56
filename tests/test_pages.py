"""Big answers in pages (lineage.pages): concatenated, the pages are the one-shot answer, in
the order networkx gives (breadth-first distance, then id), on both stores."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from click.testing import CliRunner
from helpers import import_tree, oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_traversal import dags, load

from lineage.cli.main import cli as main
from lineage.errors import InvalidInput
from lineage.pages import MAX_PAGE, Page
from lineage.records import RunRecord, Subgraph, VersionRecord
from lineage.service import Service
from lineage.storage import open_stores
from lineage.storage.graph import DeriveRows
from lineage.storage.sqlite import SQLiteGraphStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from gen_tree import generate


@pytest.fixture
def service(backend) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    stores = open_stores(backend.store, backend.blobs)
    yield Service(stores.graph, stores.blobs)
    stores.close()


def distances(graph: nx.DiGraph, start: str, ways: list[str]) -> dict[str, int]:
    """Breadth-first distance of each node from ``start``, the nearer of the ways walked."""
    found: dict[str, int] = {start: 0}
    for way in ways:
        view = graph.reverse(copy=False) if way == "upstream" else graph
        if start in view:
            for node, d in nx.single_source_shortest_path_length(view, start).items():
                found[node] = min(d, found.get(node, d))
    return found


def check_pages(pages: list[Page], whole: Subgraph, order: dict[str, int]) -> None:
    """The pages are ``whole`` in (distance, id) order, each edge on the page of its later
    endpoint, ``truncated`` right where it is said."""
    ids = [n.id for page in pages for n in page.nodes]
    assert ids == sorted(whole.ids, key=lambda i: (order[i], i))
    assert [n for page in pages for n in page.nodes] == sorted(
        whole.nodes, key=lambda n: (order[n.id], n.id)
    )
    delivered: set[str] = set()
    edges = []
    for page in pages:
        on_page = {n.id for n in page.nodes}
        delivered |= on_page
        for e in page.edges:
            assert e.source in delivered and e.target in delivered
            # ... and not both before this page
            assert e.source in on_page or e.target in on_page
        edges += page.edges
    assert sorted(edges, key=repr) == sorted(whole.edges, key=repr)  # each once
    assert [p.has_next for p in pages] == [True] * (len(pages) - 1) + [False]
    assert pages[-1].truncated is whole.truncated
    assert all(p.truncated in (None, whole.truncated) for p in pages)
    assert all(p.root == whole.root for p in pages)


def chain(ask: Any, first: int, pages: int = 3) -> list[Page]:
    """The first ``pages`` pages asked one by one, each after the previous one's cursor (a
    stateless client)."""
    got = [ask(first=first, after=None)]
    while got[-1].has_next and len(got) < pages:
        got.append(ask(first=first, after=got[-1].end_cursor))
    return got


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=dags(), data=st.data())
def test_lineage_pages_are_the_answer_in_order(service: Service, runs, data) -> None:  # type: ignore[no-untyped-def]
    project, edges = load(service, runs)
    graph = oracle(edges)
    start = data.draw(st.sampled_from(sorted(graph.nodes)))
    depth = data.draw(st.one_of(st.none(), st.integers(0, 5)))
    direction = data.draw(st.sampled_from(["upstream", "downstream", "both"]))
    first = data.draw(st.integers(2, 8))
    whole = service.lineage(start, direction, depth, default_project=project)
    ways = ["upstream", "downstream"] if direction == "both" else [direction]
    order = distances(graph, start, ways)

    pages = list(
        service.lineage_pages(start, direction, depth, first=first, default_project=project)
    )
    check_pages(pages, whole, order)
    assert all(len(p.nodes) == first for p in pages[:-1])
    # a client that pages with cursors gets the same pages
    assert (
        chain(
            lambda **k: service.lineage_page(start, direction, depth, default_project=project, **k),
            first,
        )
        == pages[:3]
    )
    assert service.lineage_count(start, direction, depth, default_project=project) == len(
        whole.nodes
    )


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=dags(), data=st.data())
def test_tree_pages_are_the_answer_in_order(service: Service, runs, data) -> None:  # type: ignore[no-untyped-def]
    project, edges = load(service, runs)
    graph = oracle(edges)
    root = data.draw(st.sampled_from(sorted(n for n in graph.nodes if ":" in n)))
    depth = data.draw(st.one_of(st.none(), st.integers(0, 4)))
    first = data.draw(st.integers(2, 6))
    whole = service.tree(root, depth, default_project=project)
    # a version's generation: half its distance in the run-and-version graph
    order = {n: d // 2 for n, d in distances(graph, root, ["downstream"]).items()}

    pages = list(service.tree_pages(root, depth, first=first, default_project=project))
    check_pages(pages, whole, order)
    assert (
        chain(lambda **k: service.tree_page(root, depth, default_project=project, **k), first)
        == pages[:3]
    )
    assert service.tree_count(root, depth, default_project=project) == len(whole.nodes)


def test_a_generated_tree_in_pages(service: Service) -> None:
    """A fine-tuning tree of the benchmark's shape (20 generations, shared datasets)."""
    tree = generate(400, seed=3)
    import_tree(service.graph, tree)
    graph = oracle([e for s in tree.steps for e in s.edges])
    whole = service.tree(tree.base, None)
    order = {n: d // 2 for n, d in distances(graph, tree.base, ["downstream"]).items()}
    check_pages(list(service.tree_pages(tree.base, None, first=97)), whole, order)
    assert service.tree_count(tree.base, None) == len(whole.nodes) > 500

    # the store's one-trip generation is what two expand calls give
    from lineage.pages import tree_steps

    level = sorted({s.outputs[0].id for s in tree.steps[:60] if s.outputs})
    fallback = tree_steps(service.traversal.expand_rows)(level)
    assert isinstance(service.graph, DeriveRows)
    assert sorted(tree_steps(service.traversal.expand_rows, service.graph.derive_rows)(level),
                  key=repr) == sorted(fallback, key=repr)  # fmt: skip
    assert fallback and all(m[1] for m in fallback)  # every run here produced

    leaf = tree.leaves[0]
    whole = service.lineage(leaf, "upstream", 5)
    assert whole.truncated
    pages = list(service.lineage_pages(leaf, "upstream", 5, first=7))
    check_pages(pages, whole, distances(graph, leaf, ["upstream"]))
    assert pages[0].truncated is None  # not known before the last level is walked


def test_page_after_page_resumes_the_walk(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client asking page after page (``lineage_page``, as GraphQL does) walks the graph
    once, as iterating does: the walk waits for the next request. It walked again from the
    start to the cursor each page: 131 requests of the 130,075-version tree took 309 s over
    HTTP against 19 s iterated."""
    tree = generate(400, seed=3)
    import_tree(service.graph, tree)
    graph = oracle([e for s in tree.steps for e in s.edges])
    expanded: list[int] = []
    expand = service.traversal.expand_rows

    def counted(ids: list[str], direction: Any) -> Any:
        expanded.append(len(ids))
        return expand(ids, direction)

    monkeypatch.setattr(service.traversal, "expand_rows", counted)
    iterated = list(service.lineage_pages(tree.base, "downstream", None, first=50))
    once = len(expanded)
    expanded.clear()
    pages, after = [], None
    while not pages or pages[-1].has_next:
        pages.append(service.lineage_page(tree.base, "downstream", None, first=50, after=after))
        after = pages[-1].end_cursor
    assert len(pages) == len(iterated) > 10
    assert pages == iterated
    assert len(expanded) == once  # was once per level per page
    check_pages(pages, service.lineage(tree.base, "downstream", None),
                distances(graph, tree.base, ["downstream"]))  # fmt: skip

    # a cursor asked for twice (a retried request) walks again to it: the same page
    again = service.lineage_page(tree.base, "downstream", None, first=50,
                                 after=pages[3].end_cursor)  # fmt: skip
    assert again == pages[4]
    # the derivation tree too, and its pages are the answer
    tree_pages, after = [], None
    while not tree_pages or tree_pages[-1].has_next:
        tree_pages.append(service.tree_page(tree.base, None, first=40, after=after))
        after = tree_pages[-1].end_cursor
    assert tree_pages == list(service.tree_pages(tree.base, None, first=40))


def test_bad_cursors_and_sizes_are_refused(service: Service) -> None:
    tree = generate(40, seed=1)
    service.graph.import_records(
        runs=[s.run for s in tree.steps],
        artifacts=tree.artifacts,
        versions=[v for s in tree.steps for v in s.outputs],
        edges=[e for s in tree.steps for e in s.edges],
    )
    page = service.lineage_page(tree.base, "downstream", None, first=5)
    assert page.has_next and page.end_cursor
    with pytest.raises(InvalidInput, match="invalid cursor"):
        service.lineage_page(tree.base, "downstream", None, first=5, after="not a cursor")
    with pytest.raises(InvalidInput, match="invalid cursor"):  # a cursor of another listing
        service.lineage_page(tree.base, "downstream", None, first=5, after="WzEsMl0=")
    with pytest.raises(InvalidInput, match=r"pages another question .*downstream of "):
        service.lineage_page(tree.base, "downstream", 3, first=5, after=page.end_cursor)
    with pytest.raises(InvalidInput, match="pages another question"):
        service.tree_page(tree.base, None, first=5, after=page.end_cursor)
    for first in (0, -1, MAX_PAGE + 1, True, "5"):
        with pytest.raises(InvalidInput, match=f"first must be an integer from 1 to {MAX_PAGE}"):
            service.lineage_page(tree.base, "downstream", None, first=first)
    with pytest.raises(InvalidInput, match="direction must be"):
        service.lineage_page(tree.base, "sideways", None, first=5)
    with pytest.raises(InvalidInput, match="starts at a version"):
        service.tree_page(tree.steps[0].run.id, None, first=5)


class CountingStore(SQLiteGraphStore):
    """A real SQLite store that counts the records it is asked for."""

    fetched = 0

    def get_versions(self, ids: Collection[str]) -> dict[str, VersionRecord]:
        self.fetched += len(ids)
        return super().get_versions(ids)

    def get_runs(self, ids: Collection[str]) -> dict[str, RunRecord]:
        self.fetched += len(ids)
        return super().get_runs(ids)


def test_pages_are_lazy(tmp_path: Path) -> None:
    """Iterating reads the records of the pages taken, not of the whole answer."""
    from lineage.storage.local import LocalBlobStore

    store = CountingStore(tmp_path / "lineage.db")
    service = Service(store, LocalBlobStore(tmp_path / "blobs"))
    tree = generate(2000, seed=2)
    store.import_records(
        runs=[s.run for s in tree.steps],
        artifacts=tree.artifacts,
        versions=[v for s in tree.steps for v in s.outputs],
        edges=[e for s in tree.steps for e in s.edges],
    )
    pages = service.lineage_pages(tree.base, "downstream", None, first=100)
    resolved = store.fetched  # the ref's version, resolved before the first page
    assert resolved <= 1
    first = next(pages)
    assert len(first.nodes) == 100 and store.fetched == resolved + 100
    next(pages)
    assert store.fetched == resolved + 200
    assert service.lineage_count(tree.base, "downstream", None) > 5000
    assert store.fetched == 2 * resolved + 200  # counting reads no records but the start


def test_lineage_export_writes_ndjson(workdir: Path) -> None:
    """``lineage export --lineage REF``: one JSON object a line, nodes then the edges they
    complete, page after page; the same nodes and edges as ``lineage --json``."""
    runner = CliRunner()
    tree = generate(60, seed=4)
    api_store = workdir / ".lineage"
    from lineage.storage.sqlite import SQLiteGraphStore as Store

    graph = Store(api_store / "lineage.db")
    graph.import_records(
        runs=[s.run for s in tree.steps],
        artifacts=tree.artifacts,
        versions=[v for s in tree.steps for v in s.outputs],
        edges=[e for s in tree.steps for e in s.edges],
    )
    graph.close()
    out = workdir / "down.ndjson"
    result = runner.invoke(
        main, ["export", "--lineage", tree.base, "--down", "--depth", "30", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    shown = runner.invoke(main, ["lineage", tree.base, "--down", "--depth", "30", "--json"])
    assert shown.exit_code == 0, shown.output
    want = json.loads(shown.output)
    nodes = [line for line in lines if line["type"] == "node"]
    edges = [line for line in lines if line["type"] == "edge"]
    assert sorted(n["id"] for n in nodes) == sorted(n["id"] for n in want["nodes"])
    assert sorted((e["source"], e["target"], e["kind"]) for e in edges) == sorted(
        (e["source"], e["target"], e["kind"]) for e in want["edges"]
    )
    assert lines[0]["type"] == "node" and lines[0]["id"] == tree.base
    assert lines[-1] == {"type": "end", "nodes": len(nodes), "edges": len(edges),
                         "truncated": False}  # fmt: skip
    assert f"{len(nodes)} nodes and {len(edges)} edges written to {out}" in result.output

    tree_out = workdir / "tree.ndjson"
    result = runner.invoke(main, ["export", "--tree", tree.base, "-o", str(tree_out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in tree_out.read_text().splitlines()]
    assert {line["type"] for line in lines} == {"node", "edge", "end"}
    assert all(line["kind"] == "derived" for line in lines if line["type"] == "edge")

    bad = runner.invoke(main, ["export", "--lineage", "nope:v0", "-o", str(workdir / "x")])
    assert bad.exit_code != 0 and not (workdir / "x").exists()
    both = runner.invoke(main, ["export", "--openlineage", "--tree", tree.base, "-o", "y"])
    assert both.exit_code == 2 and "one of" in both.output


def test_the_graph_benchmark_can_leave_its_store_behind(tmp_path: Path) -> None:
    """``bench_graph.py --keep --scratch DIR`` leaves DIR/sqlite-RUNS, a store the CLI
    exports whole: the way to a big history to try the pages on (it was always removed). At
    300 runs the tree has fewer than a page of versions (it failed, counting runs too)."""
    import bench_graph

    scratch = tmp_path / "scratch"
    argv = ["--runs", "300", "--stores", "sqlite", "--no-networkx", "--writers", "0"]
    argv += ["--sdk-writer-runs", "0", "--sdk-runs", "20", "--warm-up", "0", "--queries", "2"]
    assert bench_graph.main([*argv, "--repeat", "1", "--scratch", str(scratch), "--keep"]) == 0
    tree = generate(300, seed=0)
    out = tmp_path / "tree.ndjson"
    store = str(scratch / "sqlite-300")
    result = CliRunner().invoke(
        main, ["--store", store, "export", "--tree", tree.base, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    end = json.loads(out.read_text().splitlines()[-1])
    assert end["type"] == "end" and end["nodes"] >= 301  # the base and its 300 models at least
    with pytest.raises(SystemExit):
        bench_graph.main([*argv, "--keep"])  # where would it be left?


def test_pages_through_a_server(tmp_path: Path, workdir: Path) -> None:
    """RemoteService pages the server's answer the same way, cursors and all (the server
    pages it: GraphQL first/after, one request a page)."""
    from lineage.remote import RemoteService
    from lineage.server.app import open_service
    from lineage.server.auth import create_token
    from lineage.server.serving import background

    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    local = open_service(store, blobs)
    tree = generate(80, seed=5)
    local.graph.import_records(
        runs=[s.run for s in tree.steps],
        artifacts=tree.artifacts,
        versions=[v for s in tree.steps for v in s.outputs],
        edges=[e for s in tree.steps for e in s.edges],
    )
    token = create_token(local, "read", "reader")
    try:
        with background(store, blobs) as url:
            remote = RemoteService(url, token=token)
            try:
                for ask in (
                    lambda s, **k: s.lineage_pages(tree.base, "downstream", 6, **k),
                    lambda s, **k: s.lineage_pages(tree.leaves[0], "upstream", 20, **k),
                    lambda s, **k: s.tree_pages(tree.base, None, **k),
                ):
                    near, far = list(ask(local, first=9)), list(ask(remote, first=9))
                    assert [[n.id for n in p.nodes] for p in far] == [
                        [n.id for n in p.nodes] for p in near
                    ]
                    assert [set(p.edges) for p in far] == [set(p.edges) for p in near]
                    assert [p.truncated for p in far][-1] == near[-1].truncated
                    resumed = next(ask(remote, first=9, after=far[0].end_cursor))
                    assert resumed.nodes == far[1].nodes
                assert remote.tree_count(tree.base, None) == local.tree_count(tree.base, None)
                assert remote.lineage_count(tree.base, "downstream", 6) == local.lineage_count(
                    tree.base, "downstream", 6
                )
                whole = local.tree_count(tree.base, None)
                for cap in (1, 40, whole):  # past the cap, both say cap + 1
                    said = remote.tree_count(tree.base, None, cap=cap)
                    assert said == local.tree_count(tree.base, None, cap=cap) == min(whole, cap + 1)
                    far_count = remote.lineage_count(tree.base, "downstream", 6, cap=cap)
                    assert far_count == local.lineage_count(tree.base, "downstream", 6, cap=cap)
            finally:
                remote.close()
    finally:
        local.graph.close()


def test_lineage_tree_prints_a_big_tree_in_part_and_says_so(workdir: Path) -> None:
    """``lineage tree`` past --max-versions prints the nearest generations only (memory
    bounded by the option, not by the tree), marks where it goes on, and names the command
    that gives all of it; --max-versions 0 prints the whole tree, as before."""
    tree = generate(300, seed=4)
    graph = SQLiteGraphStore(workdir / ".lineage" / "lineage.db")
    import_tree(graph, tree)
    graph.close()
    runner = CliRunner()
    whole = runner.invoke(main, ["tree", tree.base, "--depth", "100", "--max-versions", "0"])
    assert whole.exit_code == 0, whole.output
    versions = len(whole.output.splitlines()) - 1  # the summary line aside
    assert versions > 300 and "..." not in whole.output
    part = runner.invoke(main, ["tree", tree.base, "--depth", "100", "--max-versions", "50"])
    assert part.exit_code == 0, part.output
    lines = part.output.splitlines()
    assert lines[-2].startswith("50 versions, 49 derivations")
    assert lines[-1].startswith("printed the nearest 50 versions (--max-versions 50)")
    assert f"lineage export --tree {tree.base} --depth 100 -o tree.ndjson" in lines[-1]
    printed = lines[:-2]
    assert len(printed) <= 50 and printed[0] == whole.output.splitlines()[0]
    assert any(line.endswith("  ...") for line in printed)  # where it goes on
    # the nearest generations: the 50 first versions of the pages, by generation then id
    service = Service(SQLiteGraphStore(workdir / ".lineage" / "lineage.db"), None)  # type: ignore[arg-type]
    nearest = [n for p in service.tree_pages(tree.base, 100, first=50) for n in p.nodes][:50]
    service.graph.close()
    for node in nearest:
        assert any(node.label in line for line in printed), node.id
    # a tree smaller than the bound is printed whole, without a word more
    small = runner.invoke(main, ["tree", tree.leaves[0], "--depth", "100"])
    assert small.exit_code == 0 and "printed the nearest" not in small.output
    bad = runner.invoke(main, ["tree", tree.base, "--max-versions", "-1"])
    assert bad.exit_code != 0 and "--max-versions must be 0 (all) or more" in bad.output
