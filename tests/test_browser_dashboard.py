"""The dashboard's daily pages in a real browser (Debian's chromium via Playwright, as
tests/test_browser.py): the runs page (sort, filter, compare), search by ref and by commit,
the version page's graph (fitted, centred, zoom, pan, click), and signing in to a
``--require-token`` server. Each writes a 1400x1000 screenshot of its page into
``test-artifacts/screenshots/`` for a reviewer to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_browser import CHROMIUM, CHROMIUM_ARGS, PROJECT, log_history
from test_dashboard import COMMITS, SWEEP, log_sweep

import lineage
from lineage.server.auth import create_token
from lineage.server.serving import background

SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server over the robot history of test_browser and a sweep of 17 runs."""
    root = tmp_path_factory.mktemp("site")
    store, blobs = str(root / "store"), str(root / "blobs")
    (root / "files").mkdir()
    runs = log_history(store, blobs, root / "files")
    api = lineage.Api(store=store, blobs=blobs, project=PROJECT)
    sweep = log_sweep(api.service)  # type: ignore[arg-type]
    with background(store, blobs) as url:
        yield {"url": url, "runs": runs, "sweep": sweep, "store": store, "blobs": blobs}


def open_page(browser: Browser, zone: str = "UTC") -> tuple[Page, list[str]]:
    page = browser.new_page(viewport=VIEWPORT, timezone_id=zone)  # type: ignore[arg-type]
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    return page, problems


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    assert (SHOTS / f"{name}.png").stat().st_size > 10_000


def shown_runs(page: Page) -> list[str]:
    rows = page.locator("table.runs tr[data-run]")
    return [str(run) for run in rows.evaluate_all("rows => rows.map(r => r.dataset.run)")]


def column(page: Page, name: str) -> list[str]:
    return page.locator(f'table.runs td[data-column="{name}"]').all_text_contents()


def test_runs_page_sorts_filters_and_compares(browser: Browser, site: dict[str, Any]) -> None:
    page, problems = open_page(browser, "Asia/Kolkata")  # UTC+05:30: times are converted
    url = site["url"]
    page.goto(f"{url}/")
    page.get_by_role("link", name="Runs", exact=True).click()
    expect(page).to_have_url(f"{url}/runs")
    assert page.locator("table.runs tr[data-run]").count() == 17 + 4

    # filter: the sweep's failed runs, as the records say
    page.locator("select[name=project]").select_option(SWEEP)
    page.locator("select[name=state]").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"state=failed"))
    page.wait_for_load_state()
    failed = sorted(r.id for r in site["sweep"] if r.state == "failed")
    expect(page.locator("table.runs tr[data-run]")).to_have_count(len(failed))
    assert sorted(shown_runs(page)) == failed
    page.get_by_role("link", name="clear").click()

    # a time range, typed in the reader's time zone
    t0 = min(r.started_at for r in site["sweep"])
    since, until = t0 + 120 - t0 % 60, t0 + 360 - t0 % 60  # whole minutes, as typed
    zone = timezone(timedelta(hours=5, minutes=30))

    def typed(at: float) -> str:
        return datetime.fromtimestamp(at, zone).strftime("%Y-%m-%dT%H:%M")

    page.locator("select[name=project]").select_option(SWEEP)
    page.locator("form#filters input[name=since]").fill(typed(since))
    page.locator("form#filters input[name=until]").fill(typed(until))
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"since=.*Z"))
    page.wait_for_load_state()
    within = sorted(r.id for r in site["sweep"] if since <= r.started_at <= until)
    expect(page.locator("table.runs tr[data-run]")).to_have_count(len(within))
    assert sorted(shown_runs(page)) == within and len(within) == 8
    expect(page.locator("form#filters input[name=since]")).to_have_value(
        typed(since)
    )  # shown back local
    first = page.locator("table.runs tr[data-run] time").first
    latest = max(r.started_at for r in site["sweep"] if r.started_at <= until)
    expect(first).to_have_text(datetime.fromtimestamp(latest, zone).strftime("%Y-%m-%d %H:%M:%S"))
    page.get_by_role("link", name="clear").click()

    # sort by a summary column, both ways; runs without it stay last
    page.goto(f"{url}/runs?project={SWEEP}")
    page.locator('th a[data-column="summary.acc"]').click()
    expect(page).to_have_url(re.compile(r"sort=summary.acc$"))
    page.wait_for_load_state()
    values = [float(v) for v in column(page, "summary.acc") if v]
    assert values == sorted(values) and len(values) == sum(
        "acc" in r.summary for r in site["sweep"]
    )
    page.locator('th a[data-column="summary.acc"]').click()
    expect(page).to_have_url(re.compile(r"sort=summary.acc&dir=desc$"))
    page.wait_for_load_state()
    down = column(page, "summary.acc")
    assert [float(v) for v in down if v] == sorted(values, reverse=True)
    assert down[len(values) :] == [""] * (len(down) - len(values))

    # pick three runs and compare them
    button = page.locator("button.compare")
    expect(button).to_be_disabled()
    boxes = page.locator("table.runs input[name=run]")
    for i in (0, 1, 2):
        boxes.nth(i).check()
    expect(button).to_have_text("Compare 3 runs")
    shot(page, "runs")
    button.click()
    expect(page).to_have_url(re.compile(r"/compare\?run=.*&run=.*&run="))
    lr = page.locator('tr[data-key="config.lr"]')
    expect(lr).to_have_class("differs")
    background = lr.locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert background == "rgb(255, 241, 194)"  # highlighted
    project = page.locator('tr[data-key="project"]')
    expect(project).to_have_class("same")
    page.locator("#only-diff").check()
    expect(project).to_be_hidden()
    expect(lr).to_be_visible()
    page.locator("#only-diff").uncheck()
    shot(page, "compare")
    assert problems == [], problems
    page.close()


def test_search_by_ref_and_by_commit(browser: Browser, site: dict[str, Any]) -> None:
    page, problems = open_page(browser)
    url = site["url"]
    page.goto(f"{url}/")
    search = page.get_by_role("searchbox")
    search.fill(f"{PROJECT}/policy:production")
    search.press("Enter")
    versions = page.locator("table.versions")
    expect(versions).to_contain_text(f"{PROJECT}/policy:v1")
    shot(page, "search-ref")
    search = page.get_by_role("searchbox")
    search.fill("policy:v0")  # no project: found in the project that has it
    search.press("Enter")
    page.locator("table.versions").get_by_role("link", name=f"{PROJECT}/policy:v0").click()
    expect(page).to_have_url(f"{url}/versions/{PROJECT}/policy/0")

    commit = COMMITS[0][:10]
    page.get_by_role("searchbox").fill(commit)
    page.get_by_role("searchbox").press("Enter")
    found = page.locator("table.runlist tr td.why")
    expected = sum(1 for r in site["sweep"] if r.code and r.code.commit == COMMITS[0])
    expect(found).to_have_count(expected)
    assert set(found.all_text_contents()) == {"commit"}
    shot(page, "search-commit")
    assert problems == [], problems
    page.close()


def test_version_graph_opens_fitted_on_the_version_and_nodes_open(
    browser: Browser, site: dict[str, Any]
) -> None:
    page, problems = open_page(browser)
    url = site["url"]
    page.goto(f"{url}/versions/{PROJECT}/policy/1")
    shot(page, "version")
    figure = page.locator("figure#lineage")
    panel = figure.locator(".panel")
    expect(figure).to_have_attribute("data-scale", re.compile(r"\d"))
    page.locator("h2", has_text="Lineage").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('figure#lineage').scrollIntoView({block: 'end'})")
    frame = panel.bounding_box()
    drawing = figure.locator("svg g.graph").bounding_box()
    root = figure.locator("g.node.root")
    expect(root.locator("title")).to_have_text(f"{PROJECT}/policy:v1")
    box = root.bounding_box()
    assert frame and drawing and box
    # fitted: the whole drawing inside the panel, and filling it in one direction
    slack = 0.01 * max(frame["width"], frame["height"])  # Graphviz's 4-unit margin
    inside = (
        frame["x"] - slack <= drawing["x"]
        and drawing["x"] + drawing["width"] <= frame["x"] + frame["width"] + slack
        and frame["y"] - slack <= drawing["y"]
        and drawing["y"] + drawing["height"] <= frame["y"] + frame["height"] + slack
    )
    assert inside, (frame, drawing)
    # filling the panel in one direction, unless a small graph reached the largest opening
    # scale (dashboard.js MAX_OPEN_SCALE: a small graph is not blown up past it)
    filled = max(drawing["width"] / frame["width"], drawing["height"] / frame["height"])
    assert filled > 0.9 or float(figure.get_attribute("data-scale") or 0) == 1.5, filled
    shot(page, "version-graph")

    # zoom in on the version: it stays in view, larger; a drag moves the picture
    scale = float(figure.get_attribute("data-scale") or 0)
    figure.get_by_role("button", name="zoom in").click()
    assert float(figure.get_attribute("data-scale") or 0) == pytest.approx(scale * 1.4, rel=0.01)
    before = root.bounding_box()
    assert before is not None and before["width"] > box["width"] * 1.3
    start = (frame["x"] + 40, frame["y"] + frame["height"] - 40)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 60, start[1] - 30, steps=5)
    page.mouse.up()
    after = root.bounding_box()
    assert after is not None
    assert after["x"] - before["x"] == pytest.approx(60, abs=2)
    assert after["y"] - before["y"] == pytest.approx(-30, abs=2)
    expect(page).to_have_url(f"{url}/versions/{PROJECT}/policy/1")  # a drag opens nothing
    figure.get_by_role("button", name="fit").click()
    assert float(figure.get_attribute("data-scale") or 0) == pytest.approx(scale, rel=0.01)

    # a click on a node opens it: the run that made policy:v1
    run = site["runs"]["finetune"]
    node = figure.locator("g.node.run").filter(has=page.locator("title", has_text=run))
    node.locator("text").first.click()
    expect(page).to_have_url(f"{url}/runs/{run}")
    # files: one file, downloaded alone
    page.goto(f"{url}/versions/{PROJECT}/policy/1")
    with page.expect_download() as download:
        page.locator("table.files a.download").first.click()
    saved = download.value.path()
    assert Path(saved).read_text() == "policy made by finetune"
    assert download.value.suggested_filename == "data.txt"
    assert problems == [], problems
    page.close()


def test_diff_picture_panel_follows_the_pictures_shape(
    browser: Browser, site: dict[str, Any]
) -> None:
    """The diff picture is wide and short: its panel is no taller than the picture fitted to
    the page's width (it used to keep the stylesheet's 62% of the window, the picture small in
    the middle of empty space), and the whole picture is in it."""
    page, problems = open_page(browser)
    url = site["url"]
    a, b = f"{PROJECT}/policy:v1", f"{PROJECT}/shard-0:v0"
    page.goto(f"{url}/diff?a={a}&b={b}")
    figure = page.locator("figure#diff")
    expect(figure).to_have_attribute("data-scale", re.compile(r"\d"))
    frame = figure.locator(".panel").bounding_box()
    drawing = figure.locator("svg g.graph").bounding_box()
    assert frame and drawing
    assert frame["height"] < 0.62 * VIEWPORT["height"] - 20, frame  # shorter than the stylesheet's
    slack = 0.01 * max(frame["width"], frame["height"])
    assert frame["y"] - slack <= drawing["y"], (frame, drawing)
    assert drawing["y"] + drawing["height"] <= frame["y"] + frame["height"] + slack
    # the picture fills the panel's height too (unless the floor of 180 px or the largest
    # opening scale holds it): no band of empty panel above and below it
    scale = float(figure.get_attribute("data-scale") or 0)
    if frame["height"] > 181 and scale < 1.5:
        assert drawing["height"] / frame["height"] > 0.9, (frame, drawing)
    shot(page, "diff")
    assert problems == [], problems
    page.close()


def test_diff_of_versions_without_file_lists(
    browser: Browser, site: dict[str, Any], tmp_path: Path
) -> None:
    """A server whose blob store holds no file list of the two versions (a history copied
    without its blobs) shows their diff all the same: a notice that no files are compared,
    the text, and both upstreams drawn (it was a 404 page)."""
    page, problems = open_page(browser)
    a, b = f"{PROJECT}/policy:v1", f"{PROJECT}/policy:v0"
    with background(site["store"], str(tmp_path / "other-blobs")) as url:
        response = page.goto(f"{url}/diff?a={a}&b={b}")
        assert response is not None and response.status == 200
        expect(page.locator("#no-files")).to_contain_text("No files to compare")
        expect(page.locator("pre.diff")).to_contain_text("files: not compared")
        expect(page.locator("pre.diff")).to_contain_text("merge base: policy:v0")
        expect(page.locator("figure#diff svg g.node").first).to_be_visible()
        shot(page, "diff-no-files")
    assert problems == [], problems
    page.close()


def test_sign_in_on_a_token_only_server(browser: Browser, site: dict[str, Any]) -> None:
    api = lineage.Api(store=site["store"], blobs=site["blobs"], project=PROJECT)
    token = create_token(api.service.graph, "read", "browser sign-in")  # type: ignore[attr-defined]
    with background(site["store"], site["blobs"], require_token=True) as url:
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = context.new_page()
        response = page.goto(f"{url}/runs")
        assert response is not None and response.status == 401
        page.get_by_role("link", name="Sign in with a token").click()
        expect(page).to_have_url(f"{url}/signin?next=/runs")
        page.get_by_label("token").fill("lin_abcdefgh_" + "0" * 64)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("p.error")).to_have_text(
            "sign-in refused: that token is unknown or revoked"
        )
        shot(page, "signin")
        page.get_by_label("token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{url}/runs")
        expect(page.locator("table.runs tr[data-run]")).to_have_count(17 + 4)
        expect(page.locator("header .who")).to_contain_text(token.split("_")[1])
        cookies = context.cookies()
        assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
            ("lineage_token", True, "Strict")
        ]
        assert page.evaluate("document.cookie") == ""  # no script can read it
        assert token not in page.content()
        shot(page, "signed-in")
        page.get_by_role("button", name="Sign out").click()
        expect(page.locator("p.ok")).to_contain_text("Signed out")
        assert context.cookies() == []
        assert page.goto(f"{url}/runs").status == 401  # type: ignore[union-attr]
        context.close()
