"""One true answer on every surface.

For generated histories (merges of several parents, abandoned branches, deletions, a second
project consuming the first, depth cuts), the same question asked through the SDK
(``Api.view``), ``lineage ... --json``, GraphQL, the DOT that ``lineage render`` writes and the
dashboard's pictures gives the same nodes, edges, dead ends, truncated and deleted versions, on
both stores; and all of them agree with an oracle computed by networkx from the history itself.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import networkx as nx
import pytest
from click.testing import CliRunner
from helpers import within
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import lineage
from lineage.cli import cli
from lineage.server.app import create_app
from lineage.server.dashboard import DEPTH

TYPES = {"data": "dataset", "model": "model", "eval": "result"}
PROJECTS = ("alpha", "alpha", "beta")  # beta, the second project, mostly consumes alpha


def call(store: str, blobs: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request to the server's ASGI app over the stores, as a loopback client."""

    async def go() -> httpx.Response:
        app = create_app(store, blobs)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                return await http.request(method, url, **kwargs)
        finally:
            app.state.lineage.close()

    return asyncio.run(go())


@dataclass
class History:
    runs: list[tuple[str, list[int], list[str]]]  # (project, inputs, output artifact names)
    deleted: set[int]
    root: int
    mode: str
    depth: int


@st.composite
def histories(draw: st.DrawFn) -> History:
    runs: list[tuple[str, list[int], list[str]]] = []
    made = 0
    for _ in range(draw(st.integers(2, 5))):
        project = draw(st.sampled_from(PROJECTS))
        inputs = draw(st.lists(st.integers(0, made - 1), max_size=3, unique=True)) if made else []
        outputs = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=2))
        runs.append((project, inputs, outputs))
        made += len(outputs)
    deleted = draw(st.sets(st.integers(0, made - 1), max_size=2))
    root = draw(st.integers(0, made - 1))
    mode = draw(st.sampled_from(["upstream", "downstream", "both", "tree"]))
    return History(runs=runs, deleted=deleted, root=root, mode=mode, depth=draw(st.integers(0, 3)))


@dataclass
class Logged:
    refs: list[str] = field(default_factory=list)  # version ids in creation order
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)  # version -> run -> version
    runs: dict[str, str] = field(default_factory=dict)  # run id -> project


def log(history: History, store: str, blobs: str, scratch: Path) -> Logged:
    logged = Logged()
    for i, (project, inputs, outputs) in enumerate(history.runs):
        with lineage.init(project=project, job_type="step", store=store, blobs=blobs) as run:
            logged.runs[run.id] = project
            logged.graph.add_node(run.id)
            for index in inputs:
                run.use_artifact(logged.refs[index])
                logged.graph.add_edge(logged.refs[index], run.id)
            for j, name in enumerate(outputs):
                path = scratch / f"{i}-{j}.txt"
                path.write_text(f"run {i} output {j}\n")  # unique bytes: never deduplicated
                art = lineage.Artifact(name, type=TYPES[name])
                art.add_file(path)
                version = run.log_artifact(art)
                logged.refs.append(version.ref)
                logged.graph.add_edge(run.id, version.ref)
    api = lineage.Api(store=store, blobs=blobs)
    for index in history.deleted:
        api.delete(logged.refs[index], force=True)
    return logged


@dataclass(frozen=True)
class Answer:
    """What a surface said: comparable with ==."""

    nodes: frozenset[str]
    edges: frozenset[tuple[str, str]]
    dead_ends: frozenset[str]
    truncated: frozenset[str]
    deleted: frozenset[str]


def expected(history: History, logged: Logged) -> Answer:
    """The oracle: networkx on the edges the history logged, and the rules of DESIGN.md."""
    g = logged.graph
    root = logged.refs[history.root]
    hops = 2 * history.depth
    if history.mode == "tree":
        reached = within(g, root, hops, upstream=False)
        nodes = {n for n in reached if n not in logged.runs}
        edges = {
            (a, b)
            for r in reached & set(logged.runs)
            for a in g.predecessors(r)
            for b in g.successors(r)
            if a in reached and b in reached
        }
    else:
        ways = {"upstream": [True], "downstream": [False], "both": [True, False]}
        nodes, edges = set(), set()
        halves = []
        for upstream in ways[history.mode]:
            part = within(g, root, hops, upstream)
            halves.append((upstream, part))
            nodes |= part
            edges |= {(u, v) for u, v in g.edges if u in part and v in part}
    versions = {n for n in nodes if n not in logged.runs}
    deleted = {logged.refs[i] for i in history.deleted}
    if history.mode == "tree":
        halves = [(False, reached)]
    # truncated: the walk of its own half stopped at it (DESIGN.md); a version of the upstream
    # half is not cut by a consumer that the upstream walk never looks for (a sibling branch)
    cut = {
        v
        for upstream, part in halves
        for v in (versions - deleted) & part
        if any(r not in part for r in (g.predecessors(v) if upstream else g.successors(v)))
    }
    dead = {v for v in versions - deleted - cut if g.out_degree(v) == 0}
    return Answer(
        nodes=frozenset(nodes),
        edges=frozenset(edges),
        dead_ends=frozenset(dead),
        truncated=frozenset(cut),
        deleted=frozenset(deleted & versions),
    )


def from_json(answer: dict[str, Any]) -> Answer:
    def of(state: str) -> frozenset[str]:
        return frozenset(n["id"] for n in answer["nodes"] if n["state"].lower() == state)

    return Answer(
        nodes=frozenset(n["id"] for n in answer["nodes"]),
        edges=frozenset((e["source"], e["target"]) for e in answer["edges"]),
        dead_ends=of("dead_end"),
        truncated=of("truncated"),
        deleted=of("deleted"),
    )


_NODE = re.compile(r'^\t("(?:[^"\\]|\\.)*"|\S+) \[(.*)\]$')
_EDGE = re.compile(r'^\t"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)" ')
_CLASS = re.compile(r'class=("[^"]*"|\S+)')


_COPY = re.compile(r"^copy:\d+:")  # a version drawn again beside a later generation's reader


def _original(name: str) -> str:
    return _COPY.sub("", name)


def from_dot(dot: str) -> Answer:
    classes: dict[str, set[str]] = {}
    edges = set()
    for line in dot.splitlines():
        if edge := _EDGE.match(line):
            edges.add((_original(edge[1]), edge[2]))
        elif (node := _NODE.match(line)) and node[1] not in ("graph", "node", "edge"):
            found = _CLASS.search(node[2])
            assert found is not None, line
            name = _original(node[1].strip('"'))
            classes.setdefault(name, set()).update(found[1].strip('"').split())
    return _from_classes(classes, frozenset(edges))


def from_svg(svg: str) -> Answer:
    """Node ids (their <title>) and classes of a dashboard picture."""
    classes = {}
    for group in re.finditer(r'<g id="[^"]*" class="node ([^"]*)">\s*<title>([^<]*)</title>', svg):
        name = _original(html.unescape(group[2]))
        classes.setdefault(name, set()).update(group[1].split())
    edges = set()
    for group in re.finditer(r'<g id="[^"]*" class="edge[^"]*">\s*<title>([^<]*)</title>', svg):
        source, _, target = html.unescape(group[1]).partition("->")
        edges.add((_original(source), target))
    return _from_classes(classes, frozenset(edges))


def _from_classes(classes: dict[str, set[str]], edges: frozenset[tuple[str, str]]) -> Answer:
    assert not any("more" in c for c in classes.values()), "nothing may be collapsed here"

    def of(css: str) -> frozenset[str]:
        return frozenset(n for n, c in classes.items() if css in c)

    return Answer(
        nodes=frozenset(classes),
        edges=edges,
        dead_ends=of("dead"),
        truncated=of("truncated"),
        deleted=of("deleted"),
    )


def ask_everywhere(
    history: History, logged: Logged, store: str, blobs: str, scratch: Path
) -> dict[str, Answer]:
    root = logged.refs[history.root]
    mode, depth = history.mode, history.depth
    api = lineage.Api(store=store, blobs=blobs)
    view = api.view(root, mode, depth)  # type: ignore[arg-type]
    said = {"sdk": from_json(view.to_json())}

    runner = CliRunner()
    base = ["--store", store, "--blobs", blobs]
    if mode == "tree":
        args = ["tree", root, "--depth", str(depth), "--json"]
    else:
        flag = {"upstream": "--up", "downstream": "--down", "both": "--both"}[mode]
        args = ["lineage", root, flag, "--depth", str(depth), "--json"]
    result = runner.invoke(cli, base + args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    said["cli --json"] = from_json(json.loads(result.output))

    if mode != "both":  # render draws one direction at a time
        out = scratch / "answer.dot"
        flag = {"upstream": "--up", "downstream": "--down", "tree": "--tree"}[mode]
        args = ["render", root, flag, "--depth", str(depth), "--collapse", "0", "-o", str(out)]
        result = runner.invoke(cli, base + args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        said["render (dot)"] = from_dot(out.read_text())

    if mode == "tree":
        field_, args_ = "derivationTree", "ref: $ref, depth: $depth"
    else:
        field_, args_ = "lineage", f"ref: $ref, direction: {mode.upper()}, depth: $depth"
    query = (
        f"query($ref: String!, $depth: Int!) {{ {field_}({args_}) "
        "{ nodes { id state label project } edges { source target } } }"
    )
    variables = {"ref": root, "depth": depth}
    response = call(store, blobs, "POST", "/graphql", json={"query": query, "variables": variables})
    body = response.json()
    assert "errors" not in body, body
    said["graphql"] = from_json(body["data"][field_])
    labels = {n["id"]: n["label"] for n in body["data"][field_]["nodes"]}
    for node in view.to_json()["nodes"]:
        assert labels[node["id"]] == node["label"]
    return said


def dashboard_pictures(store: str, blobs: str, root: str) -> dict[str, Answer]:
    project, _, rest = root.partition("/")
    name, _, index = rest.partition(":v")
    page = call(store, blobs, "GET", f"/versions/{project}/{name}/{index}")
    assert page.status_code == 200, page.text
    figures = dict(re.findall(r'<figure[^>]*id="(\w+)".*?(<svg.*?</svg>)', page.text, re.S))
    return {key: from_svg(svg) for key, svg in figures.items()}


def check(history: History, store: str, blobs: str, scratch: Path) -> None:
    logged = log(history, store, blobs, scratch)
    truth = expected(history, logged)
    for name in ("dead_ends", "truncated", "deleted"):
        event(f"{name}: {'some' if getattr(truth, name) else 'none'}")
    said = ask_everywhere(history, logged, store, blobs, scratch)
    for surface, answer in said.items():
        assert answer == truth, f"{surface} disagrees with the oracle"
    # the dashboard draws a version's upstream lineage and its tree at its own depth
    root = logged.refs[history.root]
    pictures = dashboard_pictures(store, blobs, root)
    for picture, mode in (("lineage", "upstream"), ("tree", "tree")):
        if picture not in pictures:  # the tree of a version nothing derived from: no picture
            continue
        again = History(history.runs, history.deleted, history.root, mode, DEPTH)
        assert pictures[picture] == expected(again, logged), f"dashboard {picture} picture"
    # a node outside the root's project always shows its project
    view = lineage.Api(store=store, blobs=blobs).view(root, history.mode, history.depth)  # type: ignore[arg-type]
    own = root.partition("/")[0]
    for node in view.to_json()["nodes"]:
        if node["project"] != own:
            assert node["label"].startswith(node["project"] + "/"), node
        else:
            assert not node["label"].startswith(own + "/"), node


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(history=histories())
def test_every_surface_tells_the_same_truth_sqlite(history: History) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        check(history, str(scratch / "store"), str(scratch / "blobs"), scratch)


@pytest.mark.neo4j
@settings(SETTINGS, max_examples=10)  # a Neo4j round trip costs more: fewer histories
@given(history=histories())
def test_every_surface_tells_the_same_truth_neo4j(history: History, neo4j_server: Any) -> None:
    neo4j_server.wipe()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        check(history, neo4j_server.uri, str(scratch / "blobs"), scratch)
