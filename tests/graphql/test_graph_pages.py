"""GraphQL ``lineage`` and ``derivationTree`` in pages (``first``/``after``): concatenated, the
pages are the whole answer (nodes, edges, every node's state), ``totalCount`` counts it, and
``truncated`` on the last page is the whole answer's; on both stores. The whole answer is the
oracle: tests/test_pages.py checks it against networkx, test_surfaces.py its states."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import import_tree
from serving import Server

from lineage.service import Service

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gen_tree import generate

pytestmark = pytest.mark.anyio

GRAPH = """
  nodes { id kind label state }
  edges { source target kind }
  truncated root totalCount
  pageInfo { hasNextPage endCursor }
"""
LINEAGE = f"""
query($ref: String!, $direction: Direction!, $depth: Int!, $first: Int, $after: String) {{
  lineage(ref: $ref, direction: $direction, depth: $depth, first: $first, after: $after) {{
    {GRAPH}
  }}
}}"""
TREE = f"""
query($ref: String!, $depth: Int!, $first: Int, $after: String) {{
  derivationTree(ref: $ref, depth: $depth, first: $first, after: $after) {{ {GRAPH} }}
}}"""


def load_tree(service: Service, runs: int, seed: int) -> Any:
    tree = generate(runs, seed=seed)
    import_tree(service.graph, tree)
    return tree


async def paged(server: Server, query: str, key: str, first: int, **variables: Any) -> list[Any]:
    pages = []
    after = None
    while True:
        data = await server.data(query, {**variables, "first": first, "after": after})
        pages.append(data[key])
        info = data[key]["pageInfo"]
        if not info["hasNextPage"]:
            return pages
        assert len(data[key]["nodes"]) == first
        after = info["endCursor"]


def check(pages: list[Any], whole: Any) -> None:
    """The pages hold the whole answer: every node once with its state and label, every
    edge once, on the page of its later end; the count and truncation are the whole's."""
    nodes = [n for page in pages for n in page["nodes"]]
    assert len(nodes) == len({n["id"] for n in nodes})  # each node once
    assert sorted(nodes, key=lambda n: n["id"]) == sorted(whole["nodes"], key=lambda n: n["id"])
    edges = [tuple(e.values()) for page in pages for e in page["edges"]]
    assert sorted(edges) == sorted(tuple(e.values()) for e in whole["edges"])
    delivered: set[str] = set()
    for page in pages:
        delivered |= {n["id"] for n in page["nodes"]}
        assert all({e["source"], e["target"]} <= delivered for e in page["edges"])
        assert page["totalCount"] == len(whole["nodes"])
        assert page["root"] == whole["root"]
    assert pages[-1]["truncated"] is whole["truncated"]
    assert whole["pageInfo"] == {"hasNextPage": False, "endCursor": None}
    assert whole["totalCount"] == len(whole["nodes"])


async def test_lineage_and_tree_pages_are_the_whole_answer(
    server: Server, service: Service
) -> None:
    tree = load_tree(service, 300, seed=11)
    cases = [
        (tree.base, "DOWNSTREAM", 3),  # cut by depth: TRUNCATED nodes on the pages
        (tree.base, "DOWNSTREAM", 50),
        (tree.leaves[0], "UPSTREAM", 4),
        (tree.leaves[-1], "BOTH", 20),
    ]
    states: set[str] = set()
    for ref, direction, depth in cases:
        variables = {"ref": ref, "direction": direction, "depth": depth}
        whole = (await server.data(LINEAGE, variables))["lineage"]
        pages = await paged(server, LINEAGE, "lineage", 13, **variables)
        assert len(pages) > 1 or len(whole["nodes"]) <= 13
        check(pages, whole)
        states |= {n["state"] for n in whole["nodes"]}
    for depth in (2, 20):
        whole = (await server.data(TREE, {"ref": tree.base, "depth": depth}))["derivationTree"]
        pages = await paged(server, TREE, "derivationTree", 17, ref=tree.base, depth=depth)
        assert len(pages) > 1 or len(whole["nodes"]) <= 17
        check(pages, whole)
        states |= {n["state"] for n in whole["nodes"]}
    # the cases met the states a page decides on its own
    assert {"ALIVE", "DEAD_END", "TRUNCATED"} <= states


async def test_paging_refusals(server: Server, service: Service) -> None:
    tree = load_tree(service, 40, seed=5)
    variables = {"ref": tree.base, "direction": "DOWNSTREAM", "depth": 20}
    first = (await server.data(LINEAGE, {**variables, "first": 5}))["lineage"]
    cursor = first["pageInfo"]["endCursor"]
    # a cursor of another question
    error = await server.error(LINEAGE, {**variables, "depth": 3, "after": cursor})
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert "cursor pages another question" in error["message"]
    error = await server.error(LINEAGE, {**variables, "after": "not-a-cursor"})
    assert "cursor" in error["message"]
    error = await server.error(LINEAGE, {**variables, "first": 0})
    assert "first must be an integer from 1 to" in error["message"]
    # a page is not drawn: dot and svg are of whole answers
    error = await server.error(
        """query($ref: String!) { lineage(ref: $ref, direction: DOWNSTREAM, first: 5) { dot } }""",
        {"ref": tree.base},
    )
    assert "dot and svg draw a whole answer" in error["message"]


async def test_total_count_is_walked_once_a_walk_of_pages(
    server: Server, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``totalCount`` asked on every page counts the whole answer once (the first page asks
    it; later pages carry it on by their cursor), and a new first page counts again: on a big
    tree, each page re-walking everything to count made paging quadratic."""
    tree = load_tree(service, 200, seed=3)
    served: Service = server.app.state.lineage.service
    walks: list[str] = []
    for name in ("tree_count", "lineage_count"):
        counting = getattr(served, name)

        def counted(*args: Any, _counting: Any = counting, _name: str = name, **kw: Any) -> int:
            walks.append(_name)
            found: int = _counting(*args, **kw)
            return found

        monkeypatch.setattr(served, name, counted)
    whole = (await server.data(TREE, {"ref": tree.base, "depth": 20}))["derivationTree"]
    pages = await paged(server, TREE, "derivationTree", 23, ref=tree.base, depth=20)
    assert len(pages) > 3
    check(pages, whole)  # every page's totalCount is the whole's
    assert walks == ["tree_count"]
    pages = await paged(server, TREE, "derivationTree", 23, ref=tree.base, depth=20)
    assert walks == ["tree_count"] * 2 and len(pages) > 3
    variables = {"ref": tree.base, "direction": "DOWNSTREAM", "depth": 20}
    whole = (await server.data(LINEAGE, variables))["lineage"]
    pages = await paged(server, LINEAGE, "lineage", 97, **variables)
    assert len(pages) > 3
    check(pages, whole)
    assert walks == ["tree_count"] * 2 + ["lineage_count"]
