"""The dashboard through httpx's ASGI transport: pages, links, escaping, refusals, notes."""

from __future__ import annotations

import html
import importlib.resources
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httpx
import networkx as nx
import pytest
from markupsafe import escape
from starlette.applications import Starlette

import lineage
from lineage import render, view
from lineage.server.app import create_app
from lineage.server.auth import create_token
from lineage.service import Service

pytestmark = pytest.mark.anyio

PROJECT = "vision"
EVIL = '<script>alert("x")</script> & <b>bold</b>'
EVIL_META = {"note": "<img src=x onerror=alert(1)>", "<key>": 1}
LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class History:
    """Four runs logged through the SDK: prepare -> train -> finetune -> evaluate."""

    runs: dict[str, str] = field(default_factory=dict)  # run name -> id
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes


def log_history(store: str, blobs: str, root: Path) -> History:
    history = History()

    def step(
        name: str,
        job_type: str,
        inputs: list[str],
        output: tuple[str, str] | None,
        aliases: tuple[str, ...] = (),
        **options: Any,
    ) -> None:
        with lineage.init(
            project=PROJECT,
            job_type=job_type,
            name=name,
            store=store,
            blobs=blobs,
            config={"lr": 0.1, "html": "<i>cfg</i>"},
        ) as run:
            history.runs[name] = run.id
            for ref in inputs:
                run.use_artifact(ref)
            if output is not None:
                artifact = lineage.Artifact(output[0], type=output[1], **options)
                for i in range(2):
                    path = root / name / f"part-{i}.bin"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(f"{name} part {i}".encode())
                    history.files[f"{name}/part-{i}.bin"] = path.read_bytes()
                artifact.add_dir(root / name)
                run.log_artifact(artifact, aliases=list(aliases))
            run.log({"accuracy": 0.9})

    step("prepare", "prepare", [], ("corpus", "dataset"), description=EVIL, metadata=EVIL_META)
    step("train", "train", ["corpus:v0"], ("net", "model"), ("candidate",))
    step("finetune", "finetune", ["net:v0", "corpus:v0"], ("net", "model"), ("production",))
    step("evaluate", "evaluate", ["net:production"], ("report", "result"))
    return history


@dataclass
class Dashboard:
    app: Starlette
    service: Service
    history: History

    async def get(
        self, url: str, *, client: tuple[str, int] = LOOPBACK, **kwargs: Any
    ) -> httpx.Response:
        return await self.request("GET", url, client=client, **kwargs)

    async def request(
        self, method: str, url: str, *, client: tuple[str, int] = LOOPBACK, **kwargs: Any
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            return await c.request(method, url, **kwargs)


@pytest.fixture
async def dash(workdir: Path, backend: Any) -> AsyncIterator[Dashboard]:
    history = log_history(backend.store, backend.blobs, workdir / "files")
    app = create_app(backend.store, backend.blobs)
    try:
        yield Dashboard(app=app, service=app.state.lineage.service, history=history)
    finally:
        app.state.lineage.close()


class Page(HTMLParser):
    """What a test reads off a page: links, element ids, figures and their SVG nodes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.figures: dict[str, dict[str, str]] = {}
        self.svg_nodes: dict[str, list[str]] = {}  # figure id -> classes of its nodes
        self.states: dict[str, dict[str, set[str]]] = {}  # figure id -> node title -> classes
        self._figure: str | None = None
        self._node: set[str] | None = None  # the classes of the node whose <title> comes next
        self._title: set[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        for key in ("href", "xlink:href"):
            if key in values:
                self.links.append(values[key])
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "figure":
            self._figure = values.get("id", "")
            self.figures[self._figure] = values
            self.svg_nodes[self._figure] = []
        classes = values.get("class", "").split()
        if tag == "g" and "node" in classes and self._figure is not None:
            self.svg_nodes[self._figure].append(" ".join(classes))
            self._node = set(classes)
        if tag == "title" and self._node is not None:
            self._title, self._node = self._node, None

    def handle_data(self, data: str) -> None:
        if self._title is not None and self._figure is not None:
            self.states.setdefault(self._figure, {})[data.strip()] = self._title
            self._title = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None


async def test_index_lists_artifacts_by_type(dash: Dashboard) -> None:
    response = await dash.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    text = response.text
    for name in ("corpus", "net", "report"):
        assert f'href="/artifacts/{PROJECT}/{name}"' in text
    # net: latest v1, both aliases of the artifact listed
    assert f'href="/versions/{PROJECT}/net/1">net:v1</a>' in text
    assert "candidate" in text and "production" in text
    assert text.index(">dataset<") < text.index(">model<") < text.index(">result<")
    assert "nonce-" in response.headers["content-security-policy"]


async def test_index_links_the_runs_of_a_project_without_artifacts(
    dash: Dashboard, backend: Any
) -> None:
    """A project of runs alone (an OpenLineage namespace of jobs, a run that logged nothing)
    says what it holds and links its runs, rather than "No artifacts in this project." alone."""
    ids = []
    for name in ("one", "two"):
        with lineage.init(project="jobs", name=name, store=backend.store, blobs=backend.blobs) as r:
            ids.append(r.id)
    text = (await dash.get("/")).text
    heading = text.index('<h1 class="project">jobs</h1>')
    said = text[heading : text.index("</p>", heading)]
    assert 'No artifacts in this project: <a href="/runs?project=jobs">2 runs</a>.' in said
    links = Page((await dash.get("/runs?project=jobs")).text).links
    assert {f"/runs/{i}" for i in ids} <= set(links)
    assert not {f"/runs/{i}" for i in dash.history.runs.values()} & set(links)  # its runs only


async def test_the_index_counts_the_runs_of_every_project_of_runs_alone_in_one_store_call(
    dash: Dashboard, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index counts the runs of its projects of runs alone all at once: one store call,
    not one a project (it was ``count_runs`` per project)."""
    for project, runs in (("jobs-a", 1), ("jobs-b", 2), ("jobs-c", 3)):
        for _ in range(runs):
            with lineage.init(project=project, store=backend.store, blobs=backend.blobs):
                pass
    graph = dash.service.graph
    calls: list[tuple[str, Any]] = []
    for name in ("count_runs", "count_project_runs"):
        method = getattr(graph, name, None)
        if method is None:  # (a store from before count_project_runs)
            continue

        def counted(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
            calls.append((_name, args[0] if args else None))
            return _method(*args, **kw)

        monkeypatch.setattr(graph, name, counted)
    text = (await dash.get("/")).text
    for project, runs in (("jobs-a", 1), ("jobs-b", 2), ("jobs-c", 3)):
        heading = text.index(f'<h1 class="project">{project}</h1>')
        said = text[heading : text.index("</p>", heading)]
        link = f'<a href="/runs?project={project}">{runs} run{"s" if runs > 1 else ""}</a>'
        assert link in said, said
    assert [(name, sorted(arg)) for name, arg in calls] == [
        ("count_project_runs", ["jobs-a", "jobs-b", "jobs-c"])
    ], calls


async def test_the_index_reads_its_artifacts_in_store_calls_that_do_not_grow_with_them(
    dash: Dashboard, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every artifact's latest version, version count and aliases come in one or two store
    round trips for them all: it was three small queries an artifact (find_alias,
    count_versions, list_aliases), 3,000 for a project of 1,000 artifacts."""
    graph = dash.service.graph
    calls: Counter[str] = Counter()
    for name in [n for n in dir(graph) if not n.startswith("_")]:
        method = getattr(graph, name)
        if not callable(method):
            continue

        def counted(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
            calls[_name] += 1
            return _method(*args, **kw)

        monkeypatch.setattr(graph, name, counted)

    async def index() -> tuple[str, Counter[str]]:
        calls.clear()
        text = (await dash.get("/")).text
        return text, Counter(calls)

    _, few = await index()
    with lineage.init(project=PROJECT, store=backend.store, blobs=backend.blobs) as run:
        for i in range(12):
            logged = run.log_artifact(lineage.Artifact(f"extra-{i}", type="dataset"))
            dash.service.set_alias(logged.ref, "golden")
    text, many = await index()
    assert many == few, (few, many)
    assert not {"find_alias", "count_versions", "list_aliases"} & set(many), many
    assert f'href="/versions/{PROJECT}/extra-11/0">extra-11:v0</a>' in text
    assert f'href="/versions/{PROJECT}/net/1">net:v1</a>' in text  # latest, as before
    assert "candidate" in text and "production" in text and "golden" in text


async def test_the_runs_page_names_every_project_as_sent_in_one_store_call(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project menu of the runs page shows OpenLineage namespaces as sent; the records
    that say them are fetched for all the projects at once, not one project at a time."""
    from lineage.openlineage import check_event, ingest

    for i, namespace in enumerate(("airflow://a", "airflow://b", "dbt://c")):
        for kind, minute in (("START", 0), ("COMPLETE", 30)):
            ingest(dash.service, check_event({
                "eventType": kind, "eventTime": f"2025-03-01T0{i}:{minute:02d}:00Z",
                "producer": "https://example.com/emitter",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": f"01946b1c-0000-7000-8000-00000000000{i}"},
                "job": {"namespace": namespace, "name": "load"},
                "inputs": [], "outputs": [{"namespace": f"s3://lake-{i}", "name": "orders"}],
            }))  # fmt: skip
    graph = dash.service.graph
    calls: list[tuple[str, object]] = []
    for name in ("list_runs", "list_artifacts", "find_alias", "project_samples"):
        method = getattr(graph, name, None)
        if method is None:  # (a store from before project_samples)
            continue

        def counted(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
            calls.append((_name, args[0] if args else kw.get("project")))
            return _method(*args, **kw)

        monkeypatch.setattr(graph, name, counted)
    text = (await dash.get("/runs")).text
    shown = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', text)
    sent = {html.unescape(label) for _, label in shown}
    assert {"airflow://a", "airflow://b", "dbt://c", PROJECT} <= sent
    assert {"s3://lake-0", "s3://lake-1", "s3://lake-2"} <= sent  # projects of datasets
    by_project = [c for c in calls if c[0] != "project_samples" and c[1] is not None]
    assert by_project == [] and [c[0] for c in calls].count("project_samples") == 1, calls


async def test_every_link_resolves(dash: Dashboard) -> None:
    """Crawl the dashboard from / : every page, picture node and download link answers."""
    seen: set[str] = set()
    queue = ["/"]
    downloads: dict[str, bytes] = {}
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = await dash.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        if url.startswith("/blobs/") or "/files/" in url:
            downloads[url] = response.content
            continue
        for link in Page(response.text).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("data:"):
                continue
            if parts.path == "/runs" and parts.query:  # the runs page's sorts: tested below
                continue
            if parts.path and parts.path not in seen:
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    versions = {u for u in seen if u.startswith("/versions/") and "/files/" not in u}
    runs = {u for u in seen if u.startswith("/runs/")}
    assert versions == {
        f"/versions/{PROJECT}/{name}" for name in ("corpus/0", "net/0", "net/1", "report/0")
    }
    assert runs == {f"/runs/{run_id}" for run_id in dash.history.runs.values()}
    # each file of each version downloads as its own bytes
    assert sorted(downloads.values()) == sorted(dash.history.files.values())


async def test_version_page(dash: Dashboard) -> None:
    response = await dash.get(f"/versions/{PROJECT}/net/1")
    assert response.status_code == 200
    page = Page(response.text)
    text = response.text
    record = dash.service.resolve(f"{PROJECT}/net:v1")
    assert record.digest in text
    # files with sizes, digests, downloads named after the file
    for entry in dash.service.manifest(record):
        assert entry.path in text and entry.digest is not None
        name = entry.path.rpartition("/")[2]
        assert f'href="/versions/{PROJECT}/net/1/files/{entry.path}" download="{name}"' in text
    # producing and consuming runs, linked
    assert f"/runs/{dash.history.runs['finetune']}" in page.links
    assert f"/runs/{dash.history.runs['evaluate']}" in page.links

    # the upstream lineage, drawn as the renderer plans it, every node a link
    graph = dash.service.lineage(record.ref, "upstream", 20)
    plan = render.build(view.classify(graph, store=dash.service, mode="upstream", depth=20))
    lineage_nodes = page.svg_nodes["lineage"]
    assert len(lineage_nodes) == len(plan.nodes)
    # a version read two generations apart is drawn again beside the later reader (a copy)
    originals = [c for c in lineage_nodes if "copy" not in c.split()]
    assert len(originals) == len(plan.shown()) == len(graph.nodes) == 6
    assert page.figures["lineage"]["data-nodes"] == str(len(plan.nodes))
    assert sum("run" in c.split() for c in lineage_nodes) == 3
    for node in graph.nodes:
        url = (
            f"/versions/{PROJECT}/{node.version.name}/{node.version.index}"
            if node.version
            else f"/runs/{node.id}"
        )
        assert url in page.links
    # no node of the lineage is a dead end: net:v1 itself was consumed, by the evaluation
    # beyond the picture (one consumed lookup decides it), and every ancestor by a run in it
    assert not any("dead" in c.split() for c in lineage_nodes)
    # the derivation tree under net:v1: the evaluation's report, which nobody consumed: a
    # dead end under DESIGN's rule (the old rule never greyed a result), net:v1 alive
    tree = page.svg_nodes["tree"]
    assert len(tree) == 2 and all(c.split()[1] == "version" for c in tree)
    assert sorted("dead" in c.split() for c in tree) == [False, True]
    assert "dead" in page.states["tree"][f"{PROJECT}/report:v0"]
    assert {"lineage", "tree"} <= page.ids
    # its tags, as `lineage show`, --json and GraphQL give them
    assert '<dd class="tags">-</dd>' in text
    dash.service.tag(record.ref, add=["round3", "gold"])
    tagged = (await dash.get(f"/versions/{PROJECT}/net/1")).text
    assert (
        '<dd class="tags"><span class="pill">round3</span><span class="pill">gold</span></dd>'
        in tagged
    )


async def test_leaf_version_has_no_tree_picture(dash: Dashboard) -> None:
    page = Page((await dash.get(f"/versions/{PROJECT}/report/0")).text)
    assert "tree" not in page.figures and "tree" in page.ids
    originals = [c for c in page.svg_nodes["lineage"] if "copy" not in c.split()]
    assert len(originals) == 8  # report, evaluate, net:v1, finetune, ... (copies aside)
    # the report is the one dead end of its lineage: no run consumed it
    assert sum("dead" in c.split() for c in page.svg_nodes["lineage"]) == 1


async def test_a_deleted_version_keeps_its_page_and_its_lineage(dash: Dashboard) -> None:
    """Bug 10: deleted, not abandoned; its page answers, says so, and still draws."""
    before = Page((await dash.get(f"/versions/{PROJECT}/corpus/0")).text).svg_nodes["tree"]
    dash.service.delete_version(f"{PROJECT}/report:v0")

    response = await dash.get(f"/versions/{PROJECT}/report/0")
    assert response.status_code == 200, response.text[:500]  # was 404
    page = Page(response.text)
    assert '<span class="badge deleted">deleted</span>' in response.text
    assert "This version was deleted" in response.text
    # its lineage is drawn as before, with the report marked deleted (not dead: nobody
    # consumed it, but it was deleted, not abandoned)
    lineage_nodes = page.svg_nodes["lineage"]
    assert len([c for c in lineage_nodes if "copy" not in c.split()]) == 8
    assert sum("deleted" in c.split() for c in lineage_nodes) == 1
    assert not any("dead" in c.split() for c in lineage_nodes)
    assert "deleted" in page.states["lineage"][f"{PROJECT}/report:v0"]
    assert page.figures["lineage"]["data-root"] == f"{PROJECT}/report:v0"
    # no file to download any more
    assert not [link for link in page.links if link.startswith("/blobs/") or "/files/" in link]

    # the artifact page still lists and links it, marked deleted
    response = await dash.get(f"/artifacts/{PROJECT}/report")
    assert response.status_code == 200
    assert f"/versions/{PROJECT}/report/0" in Page(response.text).links
    assert '<tr class="deleted">' in response.text

    # the tree of corpus:v0 draws it with class "deleted" where it was a dead end
    after = Page((await dash.get(f"/versions/{PROJECT}/corpus/0")).text).svg_nodes["tree"]
    # corpus:v0, net:v0, net:v1, report:v0, and corpus:v0 again beside net:v1 (a copy: its
    # reader, finetune, is two generations down)
    assert len(after) == len(before) == 5
    assert sum("copy" in c.split() for c in after) == 1
    assert sum("dead" in c.split() for c in before) == 1
    assert not any("dead" in c.split() for c in after)
    assert sum("deleted" in c.split() for c in after) == 1
    corpus = Page((await dash.get(f"/versions/{PROJECT}/corpus/0")).text).states["tree"]
    assert corpus[f"{PROJECT}/report:v0"] == {"node", "version", "deleted"}


async def test_a_version_whose_files_are_elsewhere_keeps_its_page(
    dash: Dashboard, workdir: Path, backend: Any
) -> None:
    """A server reading a blob store without the version's manifest (a graph pushed to Neo4j
    without ``--to-blobs``, a history imported without bytes) still shows the version and its
    lineage, and says where the files are not: the page was a 404 naming the blob."""
    app = create_app(backend.store, str(workdir / "other-blobs"))
    try:
        elsewhere = Dashboard(app=app, service=app.state.lineage.service, history=dash.history)
        response = await elsewhere.get(f"/versions/{PROJECT}/net/1")
    finally:
        app.state.lineage.close()
    assert response.status_code == 200, response.text[:500]  # was 404
    page = Page(response.text)
    assert len([c for c in page.svg_nodes["lineage"] if "copy" not in c.split()]) == 6
    assert "tree" in page.figures
    record = dash.service.resolve(f"{PROJECT}/net:v1")
    assert f"manifest {record.digest} is not in" in html.unescape(response.text)
    assert not [link for link in page.links if "/files/" in link]


async def test_the_diff_of_versions_without_file_lists_compares_the_rest(
    dash: Dashboard, workdir: Path, backend: Any
) -> None:
    """/diff of versions whose file lists this server's blob store lacks (a graph copied
    without its blobs; a deleted version whose files were collected) says so and compares
    their metadata, makers and lineage: it was a 404 naming the blob. Versions that list no
    file say that there are none."""
    from lineage.cli.diff import diff_lines
    from lineage.diff import diff

    a, b = f"{PROJECT}/net:v1", f"{PROJECT}/net:v0"
    app = create_app(backend.store, str(workdir / "other-blobs"))
    try:
        elsewhere = Dashboard(app=app, service=app.state.lineage.service, history=dash.history)
        response = await elsewhere.get(f"/diff?{urlencode({'a': a, 'b': 'net:v0'})}")
        found = diff(elsewhere.service, a, b)
    finally:
        app.state.lineage.close()
    assert response.status_code == 200, response.text[-500:]  # was 404
    assert found.files is None and found.unlisted == (a, b)
    notice = re.search(r'<p class="notice" role="note" id="no-files">(.*?)</p>', response.text)
    assert notice is not None
    assert html.unescape(notice.group(1)).startswith(
        f"No files to compare: this server's blob store holds no file list of A {a} nor B {b}: "
    )
    shown = html.unescape(response.text.split('<pre class="diff">')[1].split("</pre>")[0])
    lines = shown.splitlines()
    assert lines == diff_lines(found)
    assert "files: not compared: this blob store holds no file list of net:v1 nor net:v0" in lines
    assert "metadata: same" in lines and any(line.startswith("config:") for line in lines)
    assert any(line.startswith("merge base") and "net:v0" in line for line in lines)
    titles = {html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", response.text)}
    assert {a, b} <= titles  # both upstreams drawn
    # a deleted version whose files were collected, beside one whose files are here
    dash.service.delete_version(f"{PROJECT}/report:v0")
    dash.service.gc(grace=0)
    response = await dash.get(f"/diff?{urlencode({'a': f'{PROJECT}/report:v0', 'b': a})}")
    assert response.status_code == 200, response.text[-500:]  # was 404
    said = html.unescape(response.text)
    assert f"holds no file list of A {PROJECT}/report:v0: " in said
    assert "files: not compared: this blob store holds no file list of report:v0\n" in said
    # two versions that list no file: there are none to compare
    for name in ("empty-a", "empty-b"):
        with lineage.init(project=PROJECT, store=backend.store, blobs=backend.blobs) as run:
            run.log_artifact(lineage.Artifact(name, type="dataset"))
    response = await dash.get(
        f"/diff?{urlencode({'a': f'{PROJECT}/empty-a:v0', 'b': 'empty-b:v0'})}"
    )
    assert response.status_code == 200 and 'id="no-files"' not in response.text
    assert "files: none on either side\n" in response.text


async def test_artifact_page(dash: Dashboard) -> None:
    response = await dash.get(f"/artifacts/{PROJECT}/net")
    assert response.status_code == 200
    page = Page(response.text)
    assert f"/versions/{PROJECT}/net/0" in page.links and f"/versions/{PROJECT}/net/1" in page.links
    assert f"/runs/{dash.history.runs['train']}" in page.links  # created by
    assert "· 2 versions</p>" in response.text and "older versions not shown" not in response.text
    # the event log names the alias moves
    assert response.text.count("alias.moved") == 2


async def test_run_page(dash: Dashboard) -> None:
    run_id = dash.history.runs["finetune"]
    response = await dash.get(f"/runs/{run_id}")
    assert response.status_code == 200
    page = Page(response.text)
    text = response.text
    assert "finished" in text and "finetune" in text and "accuracy" in text
    assert "&lt;i&gt;cfg&lt;/i&gt;" in text and "<i>cfg</i>" not in text  # config, escaped
    inputs = {f"/versions/{PROJECT}/net/0", f"/versions/{PROJECT}/corpus/0"}
    assert inputs | {f"/versions/{PROJECT}/net/1"} <= set(page.links)
    assert len(page.svg_nodes["lineage"]) == 4  # two inputs, the run, one output


async def test_html_in_descriptions_and_metadata_is_escaped(dash: Dashboard) -> None:
    for url in (f"/versions/{PROJECT}/corpus/0", f"/artifacts/{PROJECT}/corpus"):
        text = (await dash.get(url)).text
        assert "<script>alert" not in text and "<img src=x" not in text and "<b>bold" not in text
        assert "&lt;script&gt;alert(" in text and "&lt;b&gt;bold&lt;/b&gt;" in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text and "&lt;key&gt;" in text
        # the one script on the page is the dashboard's own, under the CSP nonce
        assert text.count("<script") == 1


async def test_unknown_refs_are_404_with_the_service_message(dash: Dashboard) -> None:
    cases = {
        f"/versions/{PROJECT}/net/7": "does not exist; nearest versions",
        f"/versions/{PROJECT}/nett/0": "did you mean net",
        f"/artifacts/{PROJECT}/nett": "did you mean net",
        "/artifacts/elsewhere/net": "no artifact 'net' in project 'elsewhere'",
        "/runs/zzzzzzzz": "run 'zzzzzzzz' does not exist",
    }
    for url, message in cases.items():
        response = await dash.get(url)
        assert response.status_code == 404, url
        assert escape(message) in response.text, (url, response.text)
        assert "NOT_FOUND" in response.text
    # not a name at all: refused as bad input
    response = await dash.get(f"/artifacts/{PROJECT}/bad%20name")
    assert response.status_code == 400 and escape("invalid name 'bad name'") in response.text
    assert (await dash.get(f"/versions/{PROJECT}/net/latest")).status_code == 404  # no route


async def test_search(dash: Dashboard) -> None:
    response = await dash.get("/search", params={"q": "NE"})
    assert response.status_code == 200
    page = Page(response.text)
    assert f"/artifacts/{PROJECT}/net" in page.links
    assert f"/runs/{dash.history.runs['finetune']}" in page.links
    assert f"/runs/{dash.history.runs['prepare']}" not in page.links
    assert 'value="NE"' in response.text
    # a run id, and a ref
    run_id = dash.history.runs["prepare"]
    assert f"/runs/{run_id}" in Page((await dash.get(f"/search?q={run_id}")).text).links
    by_ref = Page((await dash.get("/search?q=net:production")).text)
    assert f"/versions/{PROJECT}/net/1" in by_ref.links
    # escaped, bounded
    text = (await dash.get("/search", params={"q": "<svg onload=x>"})).text
    assert "<svg onload" not in text and "&lt;svg onload=x&gt;" in text
    assert (await dash.get("/search", params={"q": "x" * 200})).status_code == 400
    assert (await dash.get("/search")).status_code == 200


async def test_off_loopback_reads_need_a_token(dash: Dashboard) -> None:
    response = await dash.get("/", client=("10.1.2.3", 40000))
    assert response.status_code == 401 and "authentication required" in response.text
    token = create_token(dash.service, "read")
    response = await dash.get(
        "/", client=("10.1.2.3", 40000), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200 and "corpus" in response.text


async def test_editing_notes_needs_a_write_token_and_is_logged(dash: Dashboard) -> None:
    url = f"/versions/{PROJECT}/net/1"
    ref = f"{PROJECT}/net:v1"
    before = dash.service.events(ref)
    new = "checked by hand\r\n<em>ok</em> for release"

    # anonymous (loopback reads are free, writes are not), and a read token: refused
    refused = await dash.request("POST", url, data={"description": new})
    assert refused.status_code == 401 and "writes need a write token" in refused.text
    assert "checked by hand" in refused.text  # what was typed is kept in the form
    read = create_token(dash.service, "read")
    refused = await dash.request("POST", url, data={"description": new, "token": read})
    assert refused.status_code == 403 and "has scope read" in refused.text
    bogus = "lin_abcdefgh_" + "0" * 64
    refused = await dash.request("POST", url, data={"description": new, "token": bogus})
    assert refused.status_code == 401 and "unknown or revoked" in refused.text
    assert dash.service.resolve(ref).description is None
    assert dash.service.events(ref) == before

    # a write token typed into the form
    write = create_token(dash.service, "write", "notes")
    saved = await dash.request("POST", url, data={"description": new, "token": write})
    assert saved.status_code == 303 and saved.headers["location"] == url + "#notes"
    assert dash.service.resolve(ref).description == "checked by hand\n<em>ok</em> for release"
    events = dash.service.events(ref)
    assert len(events) == len(before) + 1
    event = events[-1]
    assert event.kind == "description.updated" and event.old is None
    assert event.new == "checked by hand\n<em>ok</em> for release"
    token_id = write.split("_")[1]
    assert event.actor == f"token:{token_id}"

    # shown escaped, with the event in the log
    text = (await dash.get(url)).text
    assert "&lt;em&gt;ok&lt;/em&gt; for release" in text and "<em>ok" not in text
    assert "description.updated" in text and f"token:{token_id}" in text

    # or a write token in the Authorization header, as a script would send it
    saved = await dash.request(
        "POST", url, data={"description": "v2"}, headers={"Authorization": f"Bearer {write}"}
    )
    assert saved.status_code == 303 and dash.service.resolve(ref).description == "v2"
    # a form without the field changes nothing
    refused = await dash.request("POST", url, data={"token": write})
    assert refused.status_code == 400 and dash.service.resolve(ref).description == "v2"


def test_templates_ship_inside_the_package() -> None:
    templates = importlib.resources.files("lineage.server") / "templates"
    names = {entry.name for entry in templates.iterdir()}
    assert {"base.html", "index.html", "artifact.html", "version.html", "run.html"} <= names
    assert {"search.html", "error.html"} <= names
    # every template the module renders exists
    source = (importlib.resources.files("lineage.server") / "dashboard.py").read_text()
    used = set(re.findall(r'"(\w+\.html)"', source))
    assert used and used <= names


def test_urls_are_built_from_quoted_parts() -> None:
    from lineage.server.dashboard import artifact_url, run_url

    assert artifact_url("a/b", "c:d") == "/artifacts/a%2Fb/c%3Ad"
    assert unquote(run_url("x y")) == "/runs/x y"


async def test_lone_surrogates_show_escaped(dash: Dashboard) -> None:
    """JSON a store already holds with a lone surrogate (metadata, a run's config: what an
    older SDK accepted, and the service now refuses) is shown escaped: the page is valid
    UTF-8, never a 500 (issue 14, finding 6)."""
    graph = dash.service.graph  # written as it was then, past today's check
    graph.update_version(f"{PROJECT}/net:v1", {"metadata": {"note": "bad\ud800"}}, [])
    run = dash.service.start_run(project=PROJECT, job_type="probe")
    graph.update_run(run.id, {"config": {"tag": "odd\udcff"}})
    for url in (f"/versions/{PROJECT}/net/1", f"/artifacts/{PROJECT}/net", f"/runs/{run.id}"):
        response = await dash.get(url)
        assert response.status_code == 200, url
        response.content.decode("utf-8")  # strict: valid UTF-8
    assert "bad\\ud800" in (await dash.get(f"/versions/{PROJECT}/net/1")).text
    assert "odd\\udcff" in (await dash.get(f"/runs/{run.id}")).text


# issue 13: the runs page, comparing runs, search, files, aliases, signing in -----------------


@pytest.fixture
async def lite(workdir: Path, tmp_path: Path) -> AsyncIterator[Dashboard]:
    """The dashboard over the SDK's history on SQLite (what these pages show does not depend on
    the store; the paging through it does, and is tested on both)."""
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    history = log_history(store, blobs, workdir / "files")
    app = create_app(store, blobs)
    try:
        yield Dashboard(app=app, service=app.state.lineage.service, history=history)
    finally:
        app.state.lineage.close()


@pytest.fixture
async def bare(backend: Any) -> AsyncIterator[Dashboard]:
    """The dashboard over an empty store of each kind."""
    app = create_app(backend.store, backend.blobs)
    try:
        yield Dashboard(app=app, service=app.state.lineage.service, history=History())
    finally:
        app.state.lineage.close()


SWEEP = "sweep"
COMMITS = ["3f2a9c1d" + "0" * 32, "b7e4410a" + "1" * 32]


def log_sweep(service: Service, count: int = 17) -> list[Any]:
    """A hyper-parameter sweep logged through the service: job types, states, tags, config,
    summaries, commits and start times that differ from run to run (some equal, to test
    the keyset's tie on ``started_at``)."""
    from lineage.records import CodeVersion

    t0 = 1_780_000_000.0
    for i in range(count):
        run = service.start_run(
            project=SWEEP,
            job_type="train" if i % 3 else "eval",
            name=f"trial-{i:02d}",
            config={"lr": round(0.1 / (i + 1), 6), "opt": {"name": "adam" if i % 2 else "sgd"}},
            tags=["round3"] if i % 4 == 0 else ["round2"],
            code=CodeVersion(commit=COMMITS[i % 2], dirty=False),
            started_at=t0 + 60 * (i // 2),  # pairs start in the same second
        )
        if i % 5 != 4:
            service.finish_run(
                run.id,
                state="failed" if i % 7 == 3 else "finished",
                summary={"acc": round(0.5 + 0.03 * ((i * 7) % 11), 4)},
                at=t0 + 60 * (i // 2) + 30 + i,
            )
    return service.runs(SWEEP)


def row_ids(text: str) -> list[str]:
    return re.findall(r'<tr data-run="([^"]+)">', text)


def next_link(text: str) -> str | None:
    found = re.search(r'<a class="next" rel="next" href="([^"]+)"', text)
    return None if found is None else found.group(1).replace("&amp;", "&")


async def walk(dash: Dashboard, url: str) -> tuple[list[str], int]:
    """Every run id the runs page shows from ``url`` on, following its "next" links."""
    seen: list[str] = []
    pages = 0
    while url:
        response = await dash.get(url)
        assert response.status_code == 200, response.text[:400]
        seen += row_ids(response.text)
        pages += 1
        url = next_link(response.text) or ""
    return seen, pages


async def test_runs_page_pages_filters_and_counts_through_the_store(bare: Dashboard) -> None:
    dash = bare
    dash.service.start_run(project=PROJECT, job_type="other", started_at=1_700_000_000.0)
    runs = log_sweep(dash.service, count=9)  # few: each write is a transaction on Neo4j
    every = runs + list(dash.service.runs(PROJECT))
    newest = [r.id for r in sorted(every, key=lambda r: (r.started_at, r.id), reverse=True)]

    # 10 runs in pages of 3: every run once, newest first, in the keyset's order
    seen, pages = await walk(dash, "/runs?limit=3")
    assert seen == newest and len(seen) == 10 and pages == 4
    oldest, _ = await walk(dash, f"/runs?limit=5&order=oldest&project={SWEEP}")
    assert oldest == [r.id for r in sorted(runs, key=lambda r: (r.started_at, r.id))]
    first = await dash.get(f"/runs?project={SWEEP}")
    assert f'Runs <span class="muted">{len(runs)}' in first.text

    # job type and state by the store, tag and time while paging: as Python filters them
    since, until = runs[0].started_at + 60, runs[0].started_at + 300

    def expect(r: Any) -> bool:
        return (
            r.job_type == "train"
            and r.state == "finished"
            and "round2" in r.tags
            and since <= r.started_at <= until
        )

    wanted = [
        r.id for r in sorted(runs, key=lambda r: (r.started_at, r.id), reverse=True) if expect(r)
    ]
    assert 2 <= len(wanted) < len(runs) // 2

    def utc(at: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))

    url = (
        f"/runs?project={SWEEP}&job_type=train&state=finished&tag=round2&limit=2"
        f"&since={utc(since)}&until={utc(until)}"
    )
    seen, _ = await walk(dash, url)
    assert seen == wanted
    failed, _ = await walk(dash, f"/runs?state=failed&project={SWEEP}")
    assert sorted(failed) == sorted(r.id for r in runs if r.state == "failed") != []

    # the filter language of `lineage find`, paged like the rest: as Python reads the records
    text = "config.lr < 0.03 and (summary.acc >= 0.6 or config.opt.name = sgd)"
    chosen = [
        r.id
        for r in sorted(runs, key=lambda r: (r.started_at, r.id), reverse=True)
        if r.config["lr"] < 0.03
        and (("acc" in r.summary and r.summary["acc"] >= 0.6) or r.config["opt"]["name"] == "sgd")
    ]
    assert 2 <= len(chosen) < len(runs)
    seen, _ = await walk(dash, f"/runs?project={SWEEP}&limit=2&{urlencode({'filter': text})}")
    assert seen == chosen


async def test_runs_page_columns_sort_and_refusals(lite: Dashboard) -> None:
    dash = lite
    runs = {r.id: r for r in log_sweep(dash.service)}
    page = await dash.get(
        f"/runs?project={SWEEP}&limit=8&sort=summary.acc&dir=desc"
        "&cols=1&col=summary.acc&col=config.opt.name"
    )
    assert page.status_code == 200
    ids = row_ids(page.text)
    newest8 = sorted(runs.values(), key=lambda r: (r.started_at, r.id), reverse=True)[:8]
    assert set(ids) == {r.id for r in newest8}
    with_acc = [r for r in newest8 if "acc" in r.summary]
    expected = [r.id for r in sorted(with_acc, key=lambda r: -r.summary["acc"])]
    assert ids[: len(expected)] == expected  # runs without the key last
    assert set(ids[len(expected) :]) == {r.id for r in newest8 if "acc" not in r.summary} != set()
    cells = re.findall(
        r'<td class="num mono" data-column="config.opt.name">([^<]*)</td>', page.text
    )
    assert cells == [runs[i].config["opt"]["name"] for i in ids]
    assert 'data-column="config.lr"' not in page.text.split('<table class="runs">')[1]
    # by default: the keys of the page, config and summary
    default = await dash.get(f"/runs?project={SWEEP}")
    assert '<td class="num mono" data-column="summary.acc">' in default.text
    assert '<td class="num mono" data-column="config.lr">' in default.text

    refusals = {
        "/runs?state=sleeping": "state must be one of running, finished",
        "/runs?col=loss": "a column is config.&lt;key&gt; or summary.&lt;key&gt;",
        "/runs?after=zzz": "invalid cursor",
        "/runs?limit=0": "limit must be a number from 1 to 500",
        "/runs?since=yesterday": "since must be a date or time",
        "/runs?filter=config.lr%3C": "filter: at 11: expected a value after",
    }
    for url, message in refusals.items():
        response = await dash.get(url)
        assert response.status_code == 400, url
        assert message in response.text, (url, response.text[-800:])


async def test_compare_runs_side_by_side(lite: Dashboard) -> None:
    dash = lite
    by_name = {r.name: r for r in log_sweep(dash.service)}
    a, b, c = by_name["trial-01"], by_name["trial-02"], by_name["trial-05"]
    response = await dash.get(f"/compare?run={a.id}&run={b.id}&run={c.id}")
    assert response.status_code == 200, response.text[-500:]
    text = response.text
    marks = {
        key: mark
        for mark, key in re.findall(r'<tr class="(differs|same)" data-key="([^"]+)">', text)
    }
    flat = [
        {
            **{f"config.{k}": v for k, v in _flat(r.config).items()},
            **{f"summary.{k}": v for k, v in _flat(r.summary).items()},
        }
        for r in (a, b, c)
    ]
    keys = set().union(*flat)
    for key in keys:
        values = [f.get(key) for f in flat]
        assert marks[key] == ("same" if len({repr(v) for v in values}) == 1 else "differs"), key
    assert marks["config.lr"] == "differs" and marks["config.opt.name"] == "differs"
    assert marks["project"] == "same" and marks["commit"] == "differs"
    assert marks["job type"] == (
        "same" if len({a.job_type, b.job_type, c.job_type}) == 1 else "differs"
    )
    # columns in the order asked, each run linked
    assert text.index(f"/runs/{a.id}") < text.index(f"/runs/{b.id}") < text.index(f"/runs/{c.id}")
    assert (await dash.get(f"/compare?run={a.id}")).status_code == 400
    missing = await dash.get(f"/compare?run={a.id}&run=zzzzzzzz")
    assert missing.status_code == 404 and "run &#39;zzzzzzzz&#39; does not exist" in missing.text


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and item:
            out.update(_flat(item, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = item
    return out


async def test_search_finds_refs_run_ids_tags_and_commits(lite: Dashboard) -> None:
    dash = lite
    runs = log_sweep(dash.service)

    async def links(q: str) -> list[str]:
        response = await dash.get("/search", params={"q": q})
        assert response.status_code == 200
        return Page(response.text).links

    # a pasted ref, with or without its project, by index or alias
    assert f"/versions/{PROJECT}/net/1" in await links("net:v1")
    assert f"/versions/{PROJECT}/net/1" in await links(f"{PROJECT}/net:production")
    assert f"/versions/{PROJECT}/net/0" in await links("net:candidate")
    assert not [x for x in await links("net:v9") if x.startswith("/versions/")]
    # a run id, a tag, a commit (a prefix of 7 or more hex digits)
    found = await links(runs[3].id)
    assert f"/runs/{runs[3].id}" in found
    tagged = {x for x in await links("round3") if x.startswith("/runs/")}
    assert tagged == {f"/runs/{r.id}" for r in runs if "round3" in r.tags}
    by_commit = {x for x in await links(COMMITS[1][:9]) if x.startswith("/runs/")}
    assert by_commit == {f"/runs/{r.id}" for r in runs if r.code and r.code.commit == COMMITS[1]}
    assert not [x for x in await links(COMMITS[1][:5]) if x.startswith("/runs/")]  # too short


async def test_single_file_download_is_streamed_and_verified(lite: Dashboard) -> None:
    dash = lite
    record = dash.service.resolve(f"{PROJECT}/corpus:v0")
    entry = next(iter(dash.service.manifest(record)))
    url = f"/versions/{PROJECT}/corpus/0/files/{entry.path}"
    response = await dash.get(url)
    assert response.status_code == 200
    assert response.content == dash.history.files[f"prepare/{entry.path}"]
    assert response.headers["content-length"] == str(entry.size)
    assert response.headers["content-disposition"] == f"attachment; filename*=UTF-8''{entry.path}"
    missing = await dash.get(f"/versions/{PROJECT}/corpus/0/files/nope.bin")
    assert missing.status_code == 404 and "has no file" in missing.text
    # bytes that no longer match the manifest never arrive whole
    assert entry.digest is not None
    path = dash.service.blobs.path(entry.digest)  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(b"X" * entry.size)
    from lineage.errors import DigestMismatch

    with pytest.raises(DigestMismatch):
        await dash.get(url)


async def test_alias_history_and_the_artifacts_own_description(lite: Dashboard) -> None:
    dash = lite
    dash.service.set_alias(f"{PROJECT}/net:v0", "production")
    response = await dash.get(f"/versions/{PROJECT}/net/1")
    text = response.text
    row = text[text.index('<tr data-alias="production">') :].split("</tr>")[0]
    assert "moved away" in row and "v1 → v0" in row and "new → v1" in row
    assert row.index("v1 → v0") < row.index("new → v1")  # newest first
    here = (await dash.get(f"/versions/{PROJECT}/net/0")).text
    row = here[here.index('<tr data-alias="production">') :].split("</tr>")[0]
    assert "on this version" in row
    assert '<tr data-alias="candidate">' in here
    # the artifact's page: v0's description is v0's, not the artifact's
    artifact = (await dash.get(f"/artifacts/{PROJECT}/corpus")).text
    assert "artifact-description" not in artifact
    assert artifact.count("&lt;script&gt;alert(") == 1  # in v0's row only


async def test_sign_in_keeps_a_token_in_a_strict_cookie(
    workdir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A --require-token server: the dashboard refuses a browser until it signs in; the
    cookie reads the dashboard and GraphQL from the same origin only, never writes, never
    blobs; a wrong token is refused; the token is in no page and no log line."""
    caplog.set_level("DEBUG")
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    log_history(store, blobs, workdir / "files")
    app = create_app(store, blobs, require_token=True)
    service: Service = app.state.lineage.service
    read, write = create_token(service, "read"), create_token(service, "write")
    origin = "http://127.0.0.1:8000"
    transport = httpx.ASGITransport(app=app, client=LOOPBACK)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=origin) as browser:
            refused = await browser.get(f"/versions/{PROJECT}/net/1")
            assert refused.status_code == 401
            assert f'href="/signin?next=/versions/{PROJECT}/net/1"' in refused.text
            form = await browser.get("/signin")
            assert form.status_code == 200 and 'type="password" name="token"' in form.text

            # wrong tokens: refused on the sign-in page, with a reason, and no cookie
            post = {"headers": {"Origin": origin}}
            bogus = "lin_abcdefgh_" + "0" * 64
            for token, reason in (
                (bogus, "that token is unknown or revoked"),
                ("hunter2", "that is not a lineage token"),
            ):
                answer = await browser.post("/signin", data={"token": token}, **post)
                assert answer.status_code == 401 and reason in answer.text
                assert "set-cookie" not in answer.headers and token not in answer.text
            # from another site's page: refused, even with a good token
            answer = await browser.post(
                "/signin", data={"token": read}, headers={"Origin": "http://evil.example"}
            )
            assert answer.status_code == 403 and "set-cookie" not in answer.headers

            signed = await browser.post(
                "/signin", data={"token": write, "next": f"/versions/{PROJECT}/net/1"}, **post
            )
            assert signed.status_code == 303
            assert signed.headers["location"] == f"/versions/{PROJECT}/net/1"
            cookie = signed.headers["set-cookie"]
            assert cookie.startswith(f"lineage_token={write};")
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
            page = await browser.get(f"/versions/{PROJECT}/net/1")
            assert page.status_code == 200 and "net:v1" in page.text
            token_id = write.split("_")[1]
            assert f'signed in with token <span class="mono">{token_id}</span>' in page.text
            assert write not in page.text
            assert (await browser.get("/runs")).status_code == 200

            # GraphQL from a page of this server reads with it; a mutation does not write
            query = {"query": "{ projects { name } }"}
            answer = await browser.post("/graphql", json=query, headers={"Origin": origin})
            assert answer.status_code == 200 and PROJECT in answer.text, answer.text
            answer = await browser.post("/graphql", json=query)  # names no origin
            assert "UNAUTHENTICATED" in answer.text
            # another site's page, or a cross-site fetch: as if there were no cookie
            for headers in (
                {"Origin": "http://evil.example"},
                {"Sec-Fetch-Site": "cross-site"},
            ):
                answer = await browser.post("/graphql", json=query, headers=headers)
                assert "UNAUTHENTICATED" in answer.text
                assert (await browser.get("/runs", headers=headers)).status_code == 401
            # notes: a cookie never writes, even a write token's
            answer = await browser.post(
                f"/versions/{PROJECT}/net/1", data={"description": "x"}, **post
            )
            assert (
                answer.status_code == 401
                and service.resolve(f"{PROJECT}/net:v1").description is None
            )
            # blobs read the Authorization header alone
            digest = next(iter(service.manifest(service.resolve(f"{PROJECT}/net:v1")))).digest
            assert (await browser.get(f"/blobs/{digest}")).status_code == 401

            # sign out: the cookie goes, the dashboard is closed again
            out = await browser.post("/signout", **post)
            assert out.status_code == 303 and 'lineage_token=""' in out.headers["set-cookie"]
            assert (await browser.get("/runs")).status_code == 401

            # a revoked token's cookie stops reading at once, and is cleared
            await browser.post("/signin", data={"token": read}, **post)
            assert (await browser.get("/runs")).status_code == 200
            from lineage.server.auth import revoke_token

            revoke_token(service, read.split("_")[1])
            gone = await browser.get("/runs")
            assert gone.status_code == 401 and "sign in again" in gone.text
    finally:
        app.state.lineage.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "signed in" in logged and write not in logged and read not in logged


# --- the version page's picture controls (issue 13): hide datasets / evaluations, depth,
# --- and "+k more" groups that open on a click


def _drawn(page: Page, figure: str) -> set[str]:
    """The store's node ids a figure draws, a copy of a version counted as the version."""
    return {title.rpartition("copy:")[2].split(":", 1)[-1] if title.startswith("copy:") else title
            for title in page.states.get(figure, {})}  # fmt: skip


async def test_picture_controls_hide_and_cut_what_they_say(dash: Dashboard) -> None:
    svc = dash.service
    base = f"/versions/{PROJECT}/net/1"
    plain = Page((await dash.get(base)).text)
    corpus, net0 = f"{PROJECT}/corpus:v0", f"{PROJECT}/net:v0"
    assert {corpus, net0, f"{PROJECT}/net:v1"} <= _drawn(plain, "lineage")
    # the oracle: networkx on the store's own upstream answer
    g = nx.DiGraph(
        [(e.source, e.target) for e in svc.lineage(f"{PROJECT}/net:v1", "upstream", 20).edges]
    )
    kinds = {n.id: n for n in svc.lineage(f"{PROJECT}/net:v1", "upstream", 20).nodes}
    datasets = {
        i for i, n in kinds.items() if n.version is not None and n.version.type == "dataset"
    }
    assert datasets == {corpus}

    hidden = Page((await dash.get(base + "?hide=datasets")).text)
    assert not datasets & _drawn(hidden, "lineage")
    assert _drawn(hidden, "lineage") >= {net0, f"{PROJECT}/net:v1"}
    assert 'name="hide" value="datasets" checked' in (await dash.get(base + "?hide=datasets")).text

    # depth 1: the version, the run that made it and what that run consumed, nothing further
    one = Page((await dash.get(base + "?depth=1")).text)
    within = set(nx.bfs_tree(g.reverse(), f"{PROJECT}/net:v1", depth_limit=2))
    assert _drawn(one, "lineage") == within and svc.resolve(net0) and corpus in within
    assert "upstream, 1 generations" in (await dash.get(base + "?depth=1")).text

    # the tree of net:v0 holds the evaluation's report, unless evaluations are hidden
    tree = f"/versions/{PROJECT}/net/0"
    report = f"{PROJECT}/report:v0"
    assert report in _drawn(Page((await dash.get(tree)).text), "tree")
    no_evals = Page((await dash.get(tree + "?hide=evaluations")).text)
    assert report not in _drawn(no_evals, "tree") and f"{PROJECT}/net:v1" in _drawn(
        no_evals, "tree"
    )

    # bad controls: one clear refusal, no picture
    refusals = [
        ("depth=0", "depth must be"),
        ("depth=x", "depth must be"),
        ("hide=models", "hide takes"),
        ("expand=zzz", "expand takes"),
    ]
    for query, words in refusals:
        answer = await dash.get(f"{base}?{query}")
        assert answer.status_code == 400 and words in answer.text, (query, answer.status_code)


def test_a_more_group_links_to_the_page_with_it_opened() -> None:
    """A tree over 500 nodes is drawn folded; each "+k more" links to the same page with its
    group in ``expand``, and that page draws the group's nodes."""
    from test_render_pictures import NoLookups, ternary_tree

    from lineage.server.dashboard import _picture, _Shape

    graph = ternary_tree(6)  # 1,093 versions
    found = view.classify(graph, store=NoLookups(), mode="tree", depth=None)
    shape = _Shape(base="/versions/big/policy/0", hide_evaluations=True)
    folded = _picture(found, "tree", shape)
    assert folded.svg is not None and folded.groups > 0
    links = re.findall(r'xlink:href="(/versions/big/policy/0\?[^"]*)"', str(folded.svg))
    opens = [html.unescape(link) for link in links if "expand=" in link]
    assert len(opens) == folded.groups  # one link a group
    first = parse_qs(urlsplit(opens[0]).query)
    assert first["hide"] == ["evaluations"] and len(first["expand"]) == 1
    opened = _picture(found, "tree", _Shape(base=shape.base, expand=tuple(first["expand"])))
    assert opened.svg is not None
    drawn = set(re.findall(r"<title>(big/policy:v\d+)</title>", str(opened.svg)))
    before = set(re.findall(r"<title>(big/policy:v\d+)</title>", str(folded.svg)))
    assert before < drawn  # the group's nodes are drawn now, and nothing drawn went away


async def test_compare_with_shows_the_diff_of_lineage_diff(dash: Dashboard) -> None:
    """The version page's "compare with..." opens /diff: the answer `lineage diff` gives, and
    both upstreams in one picture; b may omit the project of a."""
    from lineage.cli.diff import diff_lines
    from lineage.diff import diff

    page = await dash.get(f"/versions/{PROJECT}/net/1")
    assert 'action="/diff"' in page.text and f'name="a" value="{PROJECT}/net:v1"' in page.text
    answer = await dash.get(f"/diff?{urlencode({'a': f'{PROJECT}/net:v1', 'b': 'net:v0'})}")
    assert answer.status_code == 200, answer.text[-500:]
    expected = diff_lines(diff(dash.service, f"{PROJECT}/net:v1", f"{PROJECT}/net:v0"))
    shown = html.unescape(answer.text.split('<pre class="diff">')[1].split("</pre>")[0])
    assert shown.splitlines() == expected
    # net:v0 is an ancestor of net:v1: it is their merge base (networkx on the store's edges)
    up = dash.service.lineage(f"{PROJECT}/net:v1", "upstream", 20)
    g = nx.DiGraph([(e.source, e.target) for e in up.edges])
    assert f"{PROJECT}/net:v0" in nx.ancestors(g, f"{PROJECT}/net:v1")
    assert any(line.startswith("merge base") and "net:v0" in line for line in expected)
    titles = set(re.findall(r"<title>([^<]*)</title>", answer.text))
    assert {f"{PROJECT}/net:v1", f"{PROJECT}/net:v0"} <= {html.unescape(t) for t in titles}
    # refusals: one line, the right status, nothing drawn
    assert (await dash.get("/diff?a=x")).status_code == 400
    missing = await dash.get(f"/diff?{urlencode({'a': f'{PROJECT}/net:v1', 'b': 'nosuch:v9'})}")
    assert missing.status_code == 404
