"""GraphiQL in a real browser with every request to anything but the server refused.

Its scripts come from the package (``lineage/server/static/graphiql/``), not a CDN: offline it
loads, and answers a query. The screenshot lands in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Route, expect, sync_playwright

import lineage
from lineage.server.serving import background

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


def test_graphiql_loads_from_the_server_alone_and_answers(workdir: Path, tmp_path: Path) -> None:
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium (make test)"
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    (workdir / "w.txt").write_text("weights")
    with lineage.init(project="offline", job_type="train", store=store, blobs=blobs) as run:
        art = lineage.Artifact("model", type="model")
        art.add_file(workdir / "w.txt", name="w.txt")
        digest = run.log_artifact(art).digest
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "graphiql.png"
    shot.unlink(missing_ok=True)

    with background(store, blobs) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            served: list[str] = []
            blocked: list[str] = []

            def only_the_server(route: Route) -> None:
                if route.request.url.startswith(url + "/"):
                    served.append(route.request.url[len(url) :])
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_server)
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))

            # every dashboard page links it
            page.goto(f"{url}/")
            page.locator("header").get_by_role("link", name="GraphiQL").click()
            expect(page).to_have_url(f"{url}/graphql")
            expect(page.locator(".graphiql-container .graphiql-editors")).to_be_visible()
            expect(page.locator("#graphiql")).not_to_contain_text("Loading...")
            assert "/static/graphiql/graphiql.min.js" in served
            assert "/static/graphiql/graphiql.min.css" in served

            query = '{ artifactVersion(ref: "offline/model:v0") { ref digest } }'
            page.goto(f"{url}/graphql?q={quote(query)}")
            page.locator("button.graphiql-execute-button").click()
            result = page.locator(".graphiql-response")
            expect(result).to_contain_text(digest)
            text = "\n".join(result.locator("pre.CodeMirror-line").all_inner_texts())
            answer = json.loads(text.replace("\xa0", " "))  # CodeMirror's spaces
            assert answer == {
                "data": {"artifactVersion": {"ref": "offline/model:v0", "digest": digest}}
            }
            page.screenshot(path=str(shot))
            assert blocked == [], blocked
            assert problems == [], problems
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
