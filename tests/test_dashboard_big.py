"""The dashboard on a big store: a version page reads a bounded part of a big answer, says
what it left out, and links onwards (lineage.server.dashboard.Bounds, lowered here so that a
tree of a few thousand nodes is "big"), on both stores."""

from __future__ import annotations

import html
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import import_tree
from starlette.applications import Starlette
from test_dashboard import Page

from lineage.server import dashboard
from lineage.server.app import create_app
from lineage.service import Service

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from gen_tree import generate

pytestmark = pytest.mark.anyio

BOUNDS = dashboard.Bounds(tree_nodes=100, count=500, rows=20)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Big:
    def __init__(self, app: Starlette, tree: Any) -> None:
        self.app = app
        self.tree = tree
        self.service: Service = app.state.lineage.service

    async def get(self, url: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            response = await c.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        return response


@pytest.fixture
async def big(backend: Any) -> AsyncIterator[Big]:
    tree = generate(1000, seed=0)  # ~2,600 nodes; the base's tree: ~1,300 versions
    app = create_app(backend.store, backend.blobs, extra_routes=dashboard.routes(BOUNDS))
    import_tree(app.state.lineage.service.graph, tree)
    try:
        yield Big(app, tree)
    finally:
        app.state.lineage.close()


def _url(version_id: str) -> str:
    project, _, rest = version_id.partition("/")
    name, _, index = rest.partition(":v")
    return f"/versions/{project}/{name}/{index}"


def _next(text: str, which: str) -> str | None:
    found = re.search(rf'<a class="next" data-list="{which}" rel="next" href="([^"]+)"', text)
    return None if found is None else found.group(1).replace("&amp;", "&")


async def test_a_big_trees_page_draws_a_bounded_part_and_says_what_it_left_out(
    big: Big,
) -> None:
    svc = big.service
    whole = svc.tree(big.tree.base, 20)
    assert len(whole.nodes) > BOUNDS.count  # the tree is "big" for these bounds
    text = (await big.get(_url(big.tree.base))).text
    page = Page(text)
    # drawn from the nearest tree_nodes versions, folded to a screenful
    drawn = page.svg_nodes["tree"]
    assert 0 < len(drawn) <= BOUNDS.tree_nodes // 2  # folded: a part is never drawn whole
    assert any("more" in c.split() for c in drawn)
    # the picture's own caption says it is a part, of how much: not "100 nodes" as if whole
    figure = text[text.index('<figure class="graph" id="tree"') :]
    caption = html.unescape(
        " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", figure[: figure.index("</figure>")]))
    )
    said = f"drawn from the nearest {BOUNDS.tree_nodes:,} of {BOUNDS.count:,}+ versions"
    assert said in caption, caption
    assert "versions shown" not in caption  # it said "1,000 ... shown" over 28 nodes drawn
    assert f"{BOUNDS.tree_nodes} nodes" not in caption
    # what it left out, and how to see more: the count (bounded), the list, the CLI
    notice = re.search(r'<p class="notice bound"[^>]*id="tree-bound">(.*?)</p>', text, re.S)
    assert notice is not None
    said = notice.group(1)
    assert f"<strong>{BOUNDS.count:,}+ versions</strong>" in said
    assert f"the nearest {BOUNDS.tree_nodes:,}" in said
    assert 'href="#derived"' in said
    assert f"lineage export --tree {svc.resolve(big.tree.base).ref}" in said

    # the derived versions, a page of rows at a time, by generation then id, each once:
    # followed to the end, the pages are the whole tree (the root aside)
    order = [n.id for p in svc.tree_pages(big.tree.base, 20, first=1000) for n in p.nodes]
    seen: list[str] = []
    url: str | None = _url(big.tree.base)
    pages = 0
    while url is not None:
        text = (await big.get(url)).text
        rows = re.findall(r'<tr data-version="([^"]+)">', text)
        assert len(rows) <= BOUNDS.rows
        seen += rows
        pages += 1
        url = _next(text, "derived")
        if pages == 4:  # enough to prove the chain: then jump to the end with a big page
            break
    assert seen == order[1 : len(seen) + 1]
    assert pages == 4 and len(seen) == 4 * BOUNDS.rows - 1


async def test_a_small_trees_page_draws_it_whole_without_a_notice(big: Big) -> None:
    leaf = big.tree.leaves[0]
    parent = next(e.source for e in big.service.tree(big.tree.base, 20).edges if e.target == leaf)
    text = (await big.get(_url(parent))).text
    assert 'id="tree-bound"' not in text
    assert _next(text, "derived") is None


async def test_a_shared_datasets_consumers_are_paged(big: Big) -> None:
    svc = big.service
    dataset = next(
        v
        for v in svc.versions(big.tree.project, "dataset")
        if len(svc.consumers(v)) > 2 * BOUNDS.rows
    )
    everyone = sorted(r.id for r in svc.consumers(dataset))
    url: str | None = _url(dataset.id)
    seen: list[str] = []
    while url is not None:
        text = (await big.get(url)).text
        section = text[text.index('id="consumers"') : text.index("Event log")]
        rows = re.findall(r'<a href="/runs/([^"]+)">', section)
        assert len(rows) <= BOUNDS.rows
        assert f"{len(everyone):,} runs" in section
        assert f"lineage lineage {dataset.ref} --down --depth 1" in section
        seen += rows
        url = _next(text, "consumers")
    assert seen == everyone  # by id, each once


async def test_list_cursors_are_checked(big: Big) -> None:
    transport = httpx.ASGITransport(app=big.app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        bad = await c.get(_url(big.tree.base) + "?derived_after=nonsense")
        assert bad.status_code == 400 and "cursor" in bad.text
        bad = await c.get(_url(big.tree.base) + "?consumers_after=a%20b")
        assert bad.status_code == 400 and "consumers_after" in bad.text


def test_bounds_are_checked() -> None:
    with pytest.raises(Exception, match="rows must be a positive integer"):
        dashboard.Bounds(rows=0)


async def test_search_reads_a_bounded_number_of_runs_and_says_so(backend: Any) -> None:
    """A search reads the newest ``scan`` runs (and a run id among all), then says where it
    stopped and where to look further; text that no run name could hold reads none."""
    tree = generate(300, seed=2)
    bounds = dashboard.Bounds(scan=100)
    app = create_app(backend.store, backend.blobs, extra_routes=dashboard.routes(bounds))
    import_tree(app.state.lineage.service.graph, tree)
    big = Big(app, tree)
    try:
        svc = big.service
        newest_first = svc.graph.list_runs(limit=1000, newest_first=True)
        assert len(newest_first) > 300
        text = (await big.get("/search?q=finetune")).text
        found = re.findall(r'<a href="/runs/([^"]+)">', text)
        newest = [r.id for r in newest_first[:100] if "finetune" in r.name]
        assert found == newest  # among the newest 100 only
        notice = re.search(r'id="runs-bound">(.*?)</p>', text, re.S)
        assert notice is not None and "newest 100 only" in notice.group(1)
        assert "lineage find &#34;name contains finetune&#34;" in notice.group(1) or (
            'lineage find "name contains finetune"' in notice.group(1)
        )
        assert 'href="/runs?tag=finetune"' in notice.group(1)
        # an old run, by its id: found, whatever its age
        oldest = newest_first[-1]
        text = (await big.get(f"/search?q={oldest.id}")).text
        assert re.findall(r'<a href="/runs/([^"]+)">', text) == [oldest.id]
        # a ref: no run is read, and no notice
        text = (await big.get(f"/search?q={tree.base}")).text
        assert 'id="runs-bound"' not in text and "Runs <span" in text
    finally:
        app.state.lineage.close()


async def test_an_artifact_of_a_thousand_versions_groups_the_thousands(big: Big) -> None:
    project, _, rest = big.tree.base.partition("/")
    name = rest.partition(":")[0]
    count = big.service.count_versions(project, name)
    assert count >= 1000
    text = (await big.get(f"/artifacts/{project}/{name}")).text
    assert f" · {count:,} versions</p>" in text  # was "1001 versions"
