"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

No browser is downloaded: Playwright drives the system chromium (``apt-get install chromium``,
which ``make test`` does when it is missing). Without it this test fails; it never skips.
The screenshots land in ``test-artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

import lineage
from lineage import render
from lineage.server.auth import create_token
from lineage.server.dashboard import DEPTH
from lineage.server.serving import background

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TREE_SHOT = Path("/tmp/browser-tree.png")  # the derivation tree with a dead and a deleted node
PROJECT = "robot"
SHARDS = 7  # more than render's default of 5 siblings: the picture collapses two of them


def log_history(store: str, blobs: str, root: Path) -> dict[str, str]:
    """ingest -> 7 shards -> train -> policy:v0 -> finetune -> policy:v1 -> evaluate -> report."""
    runs: dict[str, str] = {}

    def step(job_type: str, inputs: list[str], outputs: list[tuple[str, str]]) -> None:
        with lineage.init(
            project=PROJECT, job_type=job_type, name=job_type, store=store, blobs=blobs
        ) as run:
            runs[job_type] = run.id
            for ref in inputs:
                run.use_artifact(ref)
            for name, kind in outputs:
                path = root / f"{name}-{job_type}.txt"
                path.write_text(f"{name} made by {job_type}")
                artifact = lineage.Artifact(
                    name, type=kind, description=f"{name} <from> {job_type}"
                )
                artifact.add_file(path, name="data.txt")
                aliases = ["production"] if job_type == "finetune" else []
                run.log_artifact(artifact, aliases=aliases)

    shards = [f"shard-{i}" for i in range(SHARDS)]
    step("ingest", [], [(shard, "dataset") for shard in shards])
    step("train", [f"{shard}:v0" for shard in shards], [("policy", "model")])
    step("finetune", ["policy:v0"], [("policy", "model")])
    step("evaluate", ["policy:production"], [("report", "result")])
    return runs


def drawn_nodes(page: Page, figure: str) -> int:
    return page.locator(f"figure#{figure} svg g.node").count()


def titles(page: Page, selector: str) -> list[str]:
    """The titles (node ids) of the SVG nodes a selector matches."""
    return sorted(page.locator(f"{selector} > title").all_text_contents())


def test_click_from_artifact_to_version_to_run(workdir: Path, tmp_path: Path) -> None:
    assert CHROMIUM.is_file(), (
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), "
        "as `make test` does"
    )
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    runs = log_history(store, blobs, workdir)
    api = lineage.Api(store=store, blobs=blobs, project=PROJECT)
    found = api.view(f"{PROJECT}/policy:v1", "upstream", DEPTH)
    graph = found.graph
    plan = render.build(found)
    hidden = sum(len(group.hidden) + group.below for group in plan.groups)
    expected = len(graph.nodes) - hidden + len(plan.groups)
    assert len(plan.groups) == 1 and hidden == SHARDS - 5  # the picture does collapse
    assert len(plan.nodes) == expected == 1 + 1 + 1 + 1 + 5 + 1 + 1  # v1 finetune v0 train ...
    write = create_token(api.service.graph, "write", "browser test")
    ARTIFACTS.mkdir(exist_ok=True)

    with background(store, blobs) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )

            page.goto(f"{url}/")
            expect(page.locator("h1.project")).to_have_text(PROJECT)
            page.get_by_role("link", name="policy", exact=True).click()
            expect(page).to_have_url(f"{url}/artifacts/{PROJECT}/policy")
            expect(page.locator("h1")).to_contain_text("policy")

            page.locator("table.versions").get_by_role("link", name="v1", exact=True).click()
            expect(page).to_have_url(f"{url}/versions/{PROJECT}/policy/1")
            expect(page.locator("h1")).to_contain_text("policy:v1")
            expect(page.locator("p.description")).to_have_text("policy <from> finetune")
            assert drawn_nodes(page, "lineage") == expected
            assert page.locator("figure#lineage").get_attribute("data-nodes") == str(expected)
            assert page.locator("figure#lineage svg g.node.more").count() == 1
            assert drawn_nodes(page, "tree") == 2  # policy:v1 -> report:v0
            # nobody consumed the evaluation's report: the tree greys it as a dead end
            assert titles(page, "figure#tree svg g.node.dead") == [f"{PROJECT}/report:v0"]
            assert page.locator("figure#tree svg g.node.deleted").count() == 0
            # the picture opens on the version it is about, marked
            expect(page.locator("figure#lineage g.node.root title")).to_have_text(
                f"{PROJECT}/policy:v1"
            )

            # notes, edited through the form with a write token; the change is logged
            page.locator("details.edit summary").click()
            page.locator("textarea[name=description]").fill("reviewed: <ok> for release")
            page.locator("input[name=token]").fill(write)
            page.get_by_role("button", name="Save notes").click()
            expect(page).to_have_url(f"{url}/versions/{PROJECT}/policy/1#notes")
            expect(page.locator("p.description")).to_have_text("reviewed: <ok> for release")
            expect(page.locator("table.events")).to_contain_text("description.updated")
            expect(page.locator("table.events")).to_contain_text(f"token:{write.split('_')[1]}")
            page.screenshot(path=str(ARTIFACTS / "dashboard-version.png"), full_page=True)

            # the producing run, by a click on its node in the picture
            node = page.locator("figure#lineage g.node.run").filter(
                has=page.locator("title", has_text=runs["finetune"])
            )
            node.locator("text").first.click()
            expect(page).to_have_url(f"{url}/runs/{runs['finetune']}")
            expect(page.locator("h1")).to_contain_text("finetune")
            expect(page.locator("dd.state-finished")).to_have_text("finished")
            page.go_back()
            expect(page).to_have_url(f"{url}/versions/{PROJECT}/policy/1#notes")

            # and by the link in the "Produced by" table
            page.get_by_role("link", name="finetune", exact=True).click()
            expect(page).to_have_url(f"{url}/runs/{runs['finetune']}")
            outputs = page.locator("table").nth(1)
            expect(outputs).to_contain_text(f"{PROJECT}/policy:v1")
            page.screenshot(path=str(ARTIFACTS / "dashboard-run.png"), full_page=True)

            # search from the header, then an unknown version
            page.get_by_role("searchbox").fill("shard")
            page.keyboard.press("Enter")
            expect(page).to_have_url(re.compile(r"/search\?q=shard$"))
            assert page.locator("table.artifacts tr").count() == SHARDS + 1
            assert problems == [], problems  # no script error, no failed request so far
            response = page.goto(f"{url}/versions/{PROJECT}/policy/9")
            assert response is not None and response.status == 404
            expect(page.locator("p.error")).to_contain_text("policy:v9 does not exist")
            problems.clear()  # that 404 was asked for

            # delete policy:v1 (it holds production: forced); policy:v0's tree still draws
            # it, deleted (not dead), with the dead report below it
            api.delete("policy:v1", force=True)
            page.goto(f"{url}/versions/{PROJECT}/policy/0")
            tree = page.locator("figure#tree")
            expect(tree).to_be_visible()
            assert drawn_nodes(page, "tree") == 3  # policy:v0 -> policy:v1 -> report:v0
            assert titles(page, "figure#tree svg g.node.deleted") == [f"{PROJECT}/policy:v1"]
            assert titles(page, "figure#tree svg g.node.dead") == [f"{PROJECT}/report:v0"]
            deleted = page.locator("figure#tree svg g.node.deleted text")
            expect(deleted.last).to_have_text("(deleted)")
            tree.screenshot(path=str(TREE_SHOT))
            # the deleted version's own page answers and says so
            response = page.goto(f"{url}/versions/{PROJECT}/policy/1")
            assert response is not None and response.status == 200
            expect(page.locator("h1 .badge.deleted")).to_have_text("deleted")
            assert titles(page, "figure#lineage svg g.node.deleted") == [f"{PROJECT}/policy:v1"]
            assert problems == [], problems
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard-version.png").stat().st_size > 10_000
    assert TREE_SHOT.stat().st_size > 2_000
