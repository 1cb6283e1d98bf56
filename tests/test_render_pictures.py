"""Pictures people can read at the size of a screen (issue 13): the demo's 20-stage upstream,
top to bottom, fits 2,000 x 3,000 pixels with every label at full size; a tree too large to
draw folds into "+k more" nodes whose counts add up; hiding datasets, evaluations and
limiting depth take out exactly the right nodes (networkx oracles on the same edges).

The final pictures of the demo are written to ``test-artifacts/screenshots/`` for a reviewer.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner

import lineage
from lineage import plan as plan_module
from lineage import render, view
from lineage.cli import cli
from lineage.cli.demo import DemoResult, run_demo
from lineage.records import DERIVED, Edge, Node, RunRecord, Subgraph, VersionRecord

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
PX_PER_PT = 96 / 72  # CSS pixels per point: what a browser shows Graphviz's "pt" as
COPY = re.compile(r"copy:\d+:")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    return run_demo(out, stages=20, serve=False, echo=lambda _: None)


def api_of(demo: DemoResult) -> lineage.Api:
    return lineage.Api(store=demo.store, blobs=demo.blobs, project="surgery")


def draw(demo: DemoResult, out: Path, *args: str) -> bytes:
    """``lineage render`` itself, as a user runs it."""
    store = ["--store", demo.store, "--blobs", demo.blobs, "-p", "surgery"]
    result = CliRunner().invoke(cli, [*store, "render", *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def size_px(svg: bytes) -> tuple[float, float]:
    root = ET.fromstring(svg)
    width, height = root.get("width", ""), root.get("height", "")
    assert width.endswith("pt") and height.endswith("pt"), (width, height)
    return float(width[:-2]) * PX_PER_PT, float(height[:-2]) * PX_PER_PT


def node_groups(svg: bytes) -> dict[str, ET.Element]:
    """Node name (its <title>) -> its <g> element."""
    found = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if "node" in g.get("class", "").split():
            title = g.find(f"{SVG}title")
            assert title is not None and title.text is not None
            found[title.text] = g
    return found


def texts(element: ET.Element) -> list[ET.Element]:
    return list(element.iter(f"{SVG}text"))


def original(name: str) -> str:
    return COPY.sub("", name, count=1)


def state_class(g: ET.Element) -> set[str]:
    return set(g.get("class", "").split()) & {"dead", "truncated", "deleted"}


CLASS_OF = {view.DEAD_END: {"dead"}, view.TRUNCATED: {"truncated"}, view.DELETED: {"deleted"}}


def assert_every_node_drawn_as_the_view_says(svg: bytes, found: view.View) -> None:
    """Every node of the answer is in the picture (a copy stands beside its original), with
    its label whole, at the default font size, and the state the view gave it."""
    groups = node_groups(svg)
    assert {original(name) for name in groups} == found.graph.ids
    for name, g in groups.items():
        node = found.by_id[original(name)]
        shown = [t.text for t in texts(g)]
        assert shown[0] == found.label(node), name  # never cut, never dropped
        assert state_class(g) == CLASS_OF.get(found.state(node.id), set()), name
        sizes = {float(t.get("font-size", "0")) for t in texts(g)}
        assert sizes == {float(render.FONT_SIZE)}, (name, sizes)


def to_png(svg_path: Path, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = SCREENSHOTS / name
    dot = svg_path.with_suffix(".dot")
    subprocess.run(["dot", "-Tpng", str(dot), "-o", str(png)], check=True, timeout=60)
    assert png.read_bytes().startswith(b"\x89PNG")
    return png


# the demo's pictures ---------------------------------------------------------------------------


def test_the_demo_upstream_fits_a_screen_with_every_label_at_full_size(
    demo: DemoResult, tmp_path: Path
) -> None:
    api = api_of(demo)
    svg = draw(demo, tmp_path / "up.svg", demo.final, "--up", "--highlight", "production")
    draw(demo, tmp_path / "up.dot", demo.final, "--up", "--highlight", "production")

    width, height = size_px(svg)
    # before issue 13: 7,712 x 668 pt (10,283 x 891 px), left to right
    assert width <= 2000 and height <= 3000, (width, height)
    assert height > width  # top to bottom
    # never scaled down to fit: Graphviz's own scale, and no "size" attribute in the DOT
    graph = next(g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "graph")
    assert graph.get("transform", "").startswith("scale(1 1)")
    assert not re.search(r"[\s\[,]size=", (tmp_path / "up.dot").read_text())

    found = api.view(demo.final, "upstream", 20)
    assert len(found.graph.nodes) == 48  # 24 versions, 24 runs: the whole 20-stage history
    assert_every_node_drawn_as_the_view_says(svg, found)
    # every text of the picture (node labels and the caption) is at the default size
    sizes = {float(t.get("font-size", "0")) for t in texts(ET.fromstring(svg))}
    assert sizes == {float(render.FONT_SIZE)}

    # the shared datasets: drawn once a generation beside their consumers, so that every
    # edge is one generation long; a copy carries its original's state and link
    groups = node_groups(svg)
    copies = [name for name in groups if name != original(name)]
    games = {original(name) for name in copies}
    assert games and all(api.artifact_version(ref).type == "dataset" for ref in games)
    edges = nx.DiGraph()
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if "edge" in g.get("class", "").split():
            title = g.find(f"{SVG}title")
            assert title is not None and title.text is not None
            tail, head = title.text.split("->")
            edges.add_edge(tail, head)
    assert set(edges) == set(groups)
    # the oracle: the same edges, each copy folded back into its original
    folded = nx.DiGraph([(original(t), h) for t, h in edges.edges])
    assert set(folded.edges) == {(e.source, e.target) for e in found.graph.edges}
    # the highlighted version holds "production", and is the root
    root = groups[demo.final]
    assert {"highlighted", "target"} <= set(root.get("class", "").split())

    shot = to_png(tmp_path / "up.svg", "demo-upstream.png")
    (SCREENSHOTS / "demo-upstream.svg").write_bytes(svg)
    assert shot.stat().st_size > 10_000


def test_the_demo_derivation_tree_fits_too(demo: DemoResult, tmp_path: Path) -> None:
    api = api_of(demo)
    svg = draw(demo, tmp_path / "tree.svg", demo.base, "--tree", "--depth", "40",
               "--highlight", "production")  # fmt: skip
    draw(demo, tmp_path / "tree.dot", demo.base, "--tree", "--depth", "40",
         "--highlight", "production")  # fmt: skip
    width, height = size_px(svg)
    assert width <= 2000 and height <= 3000, (width, height)
    found = api.view(demo.base, "tree", 40)
    assert len(found.graph.nodes) == 113
    assert_every_node_drawn_as_the_view_says(svg, found)
    # the runs on the edges, at the edge label size
    edge_sizes = set()
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if "edge" in g.get("class", "").split():
            edge_sizes |= {float(t.get("font-size", "0")) for t in texts(g)}
    assert edge_sizes == {float(render.EDGE_FONT_SIZE)}
    to_png(tmp_path / "tree.svg", "demo-tree.png")
    (SCREENSHOTS / "demo-tree.svg").write_bytes(svg)

    # the same tree without its evaluations: every model, no result
    svg = draw(demo, tmp_path / "models.svg", demo.base, "--tree", "--depth", "40",
               "--highlight", "production", "--hide-evaluations")  # fmt: skip
    draw(demo, tmp_path / "models.dot", demo.base, "--tree", "--depth", "40",
         "--highlight", "production", "--hide-evaluations")  # fmt: skip
    models = {n.id for n in found.graph.nodes if n.version and n.version.type == "model"}
    assert set(node_groups(svg)) == models
    to_png(tmp_path / "models.svg", "demo-tree-without-evaluations.png")


def test_the_demo_diff_picture_fits_a_laptop_screen(demo: DemoResult, tmp_path: Path) -> None:
    """Both upstreams in one picture, top to bottom as every other picture: drawn left to
    right, the deepest model against the noisy stage-12 branch was 4,487 x 578 px."""
    api = api_of(demo)
    deepest = api.artifact_version("policy:latest").ref  # stage 20
    for a in (demo.final, deepest):
        svg = draw(demo, tmp_path / "diff.svg", "--diff", a, "policy:v57")
        width, height = size_px(svg)
        assert width <= 1400 and height > width, (a, width, height)
        groups = node_groups(svg)
        # every version of A's side since the merge base is drawn, and both ends
        found = api.diff(a, "policy:v57").ancestry
        assert found.chain_a
        assert {a, "surgery/policy:v57", *found.merge_bases} <= set(groups)
        for step in found.chain_a:
            assert {step.run.id, *step.consumed, *step.produced} <= set(groups), step.run.name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "demo-diff.svg").write_bytes(svg)


# hide datasets, hide evaluations, depth ----------------------------------------------------------


def drawn(demo: DemoResult, tmp_path: Path, ref: str, *args: str) -> set[str]:
    """The answer's nodes that `lineage render` drew, everything else at its default."""
    svg = draw(demo, tmp_path / "x.svg", ref, "--collapse", "0", "--max-nodes", "0", *args)
    return {original(name) for name in node_groups(svg)}


def digraph(graph: Subgraph) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(graph.ids)
    g.add_edges_from((e.source, e.target) for e in graph.edges)
    return g


def test_hiding_datasets_and_evaluations_takes_out_exactly_them(
    demo: DemoResult, tmp_path: Path
) -> None:
    api = api_of(demo)
    up = api.lineage(demo.final, "upstream", 20)
    g = digraph(up)
    types = {n.id: n.version.type for n in up.nodes if n.version is not None}
    datasets = {n for n, t in types.items() if t == "dataset"}
    # the runs that made only datasets (the preparations) go with them
    made = {n: set(g.successors(n)) for n in g if n not in types}
    makers = {n for n, outputs in made.items() if outputs and outputs <= datasets}
    assert len(datasets) == 4 and len(makers) == 4
    rest = g.subgraph(set(g) - datasets - makers).to_undirected()
    expected = nx.node_connected_component(rest, demo.final)
    assert drawn(demo, tmp_path, demo.final, "--up", "--hide-datasets") == expected
    assert expected == set(g) - datasets - makers  # the model chain stays whole
    assert drawn(demo, tmp_path, demo.final, "--up") == set(g)

    # downstream of the base, three generations: evaluations are runs of job type "evaluate"
    # and what they made
    down = api.lineage(demo.base, "downstream", 3)
    g = digraph(down)
    jobs = {n.id: n.run.job_type for n in down.nodes if n.run is not None}
    evals = {n for n, job in jobs.items() if job == "evaluate"}
    results = {n for n in g if set(g.predecessors(n)) and set(g.predecessors(n)) <= evals}
    assert evals and results and not results & set(jobs)
    got = drawn(demo, tmp_path, demo.base, "--down", "--depth", "3", "--hide-evaluations")
    assert got == set(g) - evals - results
    assert drawn(demo, tmp_path, demo.base, "--down", "--depth", "3") == set(g)

    # --expand opens a "+k more" group by the id the SVG gives it
    one = ["--down", "--depth", "1", "--collapse", "1"]
    svg = draw(demo, tmp_path / "one.svg", demo.base, *one)
    finetunes = {n for n, job in jobs.items() if job == "finetune" and g.has_edge(demo.base, n)}
    group = f"more:{demo.base}:down:run:finetune"
    assert group in node_groups(svg) and len(finetunes & set(node_groups(svg))) == 1
    svg = draw(demo, tmp_path / "one.svg", demo.base, *one, "--expand", group)
    assert group not in node_groups(svg) and finetunes <= set(node_groups(svg))


def test_depth_draws_exactly_the_generations_asked_for(demo: DemoResult, tmp_path: Path) -> None:
    api = api_of(demo)
    whole = digraph(api.lineage(demo.final, "upstream", None)).reverse()
    tree = digraph(api.tree(demo.base, None))
    for depth in (1, 3, 6):
        # a generation is a run and what it consumed: two edges a generation upstream
        near = nx.single_source_shortest_path_length(whole, demo.final, cutoff=2 * depth)
        assert drawn(demo, tmp_path, demo.final, "--up", "--depth", str(depth)) == set(near)
        near = nx.single_source_shortest_path_length(tree, demo.base, cutoff=depth)
        got = drawn(demo, tmp_path, demo.base, "--tree", "--depth", str(depth))
        assert got == set(near)


# a tree too large to draw ------------------------------------------------------------------------


class NoLookups:
    """A store that knows of no consumer and no run: the graph is all there is."""

    def consumed(self, ids: Sequence[str]) -> set[str]:
        return set()

    def consumers(self, version: VersionRecord) -> list[RunRecord]:
        return []

    def get_runs(self, ids: Iterable[str]) -> dict[str, RunRecord]:
        return {}


def version(index: int, aliases: Sequence[str] = ()) -> Node:
    record = VersionRecord(
        project="big", name="policy", type="model", index=index, digest="0" * 64, size=1,
        file_count=1, aliases=tuple(aliases),
    )  # fmt: skip
    return Node(id=record.id, kind="artifact_version", ref=record.ref, version=record)


def ternary_tree(levels: int) -> Subgraph:
    """A derivation tree three children a node: 1 + 3 + ... + 3**levels versions; the last
    leaf holds "production"."""
    count = sum(3**level for level in range(levels + 1))
    nodes = [version(i, ["production"] if i == count - 1 else []) for i in range(count)]
    edges = [
        Edge(source=nodes[(i - 1) // 3].id, target=nodes[i].id, kind=DERIVED, run=f"r{i}")
        for i in range(1, count)
    ]
    return Subgraph(nodes=tuple(nodes), edges=tuple(edges), root=nodes[0].id)


def count(label: str) -> int:
    found = re.fullmatch(r"\+([\d,]+) more[^\n]*(?:\n\(([\d,]+) more beyond\))?", label)
    assert found, label
    return int(found[1].replace(",", "")) + int((found[2] or "0").replace(",", ""))


def test_a_tree_too_large_to_draw_folds_into_groups_that_add_up() -> None:
    graph = ternary_tree(6)
    found = view.classify(graph, store=NoLookups(), mode="tree", depth=None)
    g = digraph(graph)
    assert g.number_of_nodes() == 1093 and nx.is_arborescence(g)

    plan = render.build(found, highlight="production")
    assert len(plan.nodes) <= render.MAX_NODES and plan.folded and plan.total == 1093
    # a screenful, not a wall: at most FOLD_WIDTH nodes side by side in any generation
    widths: dict[int | None, int] = {}
    for node in plan.nodes:
        widths[node.rank] = widths.get(node.rank, 0) + 1
    assert None not in widths and max(widths.values()) <= plan_module.FOLD_WIDTH
    shown = plan.shown()
    groups = plan.groups
    assert groups
    # every node of the answer is drawn or counted by exactly one group
    assert sum(count(group.label) for group in groups) == g.number_of_nodes() - len(shown)
    assert sum(len(group.hidden) + group.below for group in groups) == len(g) - len(shown)
    for group in groups:
        # the oracle: a group counts its hidden children and everything under them
        under = set(group.hidden).union(*(nx.descendants(g, h) for h in group.hidden))
        assert len(group.hidden) + group.below == len(under)
        assert not under & shown
    # the highlighted path stays whole, down to the production leaf
    leaf = graph.nodes[-1].id
    assert set(nx.shortest_path(g, graph.root, leaf)) <= shown
    assert plan.path == set(nx.shortest_path(g, graph.root, leaf))
    # what is drawn hangs together: each drawn node's parent is drawn
    for node_id in shown - {graph.root}:
        assert next(iter(g.predecessors(node_id))) in shown

    # the SVG: every group a node with the group's id and a link to expand it
    svg = render.to_svg(found, highlight="production", expand_link=lambda i: f"?expand={i}")
    groups_svg = {
        el.get("id"): el
        for el in ET.fromstring(svg).iter(f"{SVG}g")
        if "more" in el.get("class", "").split()
    }
    assert set(groups_svg) == {group.id for group in groups}
    links = {a.get(XLINK) for a in ET.fromstring(svg).iter(f"{SVG}a")}
    assert {f"?expand={group.id}" for group in groups} <= links
    labels = ["\n".join(t.text or "" for t in texts(el)) for el in groups_svg.values()]
    assert sum(count(label) for label in labels) == len(g) - len(shown)

    # a click opens a group: its hidden children are drawn, the counts still add up
    first = groups[0]
    opened = render.build(found, highlight="production", expand=[first.id])
    assert set(first.hidden) <= opened.shown()
    assert first.id not in {group.id for group in opened.groups}
    total = sum(len(group.hidden) + group.below for group in opened.groups)
    assert total == len(g) - len(opened.shown())

    # a smaller budget folds more; none keeps everything
    small = render.build(found, max_nodes=50)
    assert len(small.nodes) <= 50
    assert sum(len(x.hidden) + x.below for x in small.groups) == len(g) - len(small.shown())
    assert render.build(found, max_nodes=0).shown() == set(g)
    for bad in (-1, True, 2.5):
        with pytest.raises(lineage.InvalidInput, match="max_nodes"):
            render.build(found, max_nodes=bad)  # type: ignore[arg-type]
    with pytest.raises(lineage.InvalidInput, match="expand"):
        render.build(found, expand="more:x")
    with pytest.raises(lineage.InvalidInput, match="expand"):
        render.build(found, expand=["big/policy:v1"])
    # a group no longer in the picture (the graph changed since) is ignored
    again = render.build(found, highlight="production", expand=["more:gone:down"])
    assert again.shown() == shown


def test_the_command_says_what_the_picture_leaves_out(demo: DemoResult, tmp_path: Path) -> None:
    """`lineage render` prints, under its `wrote` line, each line of the picture's caption:
    the folded nodes, the hidden kinds, the depth limit (a folded picture of a 130,000-node
    tree was announced as `wrote big.svg (svg, 25.7 KiB)` alone); a whole picture, none."""
    store = ["--store", demo.store, "--blobs", demo.blobs, "-p", "surgery"]
    out = tmp_path / "folded.svg"
    args = ["--tree", "--depth", "3", "--max-nodes", "5", "--hide-evaluations", "-o", str(out)]
    result = CliRunner().invoke(cli, [*store, "render", demo.base, *args])
    assert result.exit_code == 0, result.output
    first, *notes = result.output.splitlines()
    assert first.startswith(f"wrote {out} (svg, ")
    notes = [note.strip() for note in notes]
    assert any("too many to draw whole" in note for note in notes), notes
    assert any(note.startswith("evaluations hidden") for note in notes), notes
    assert "depth limit reached: the graph goes on" in notes
    texts = {t.text for t in ET.fromstring(out.read_bytes()).iter(f"{SVG}text")}
    assert set(notes) <= texts  # the caption's own lines, word for word
    whole = CliRunner().invoke(cli, [*store, "render", demo.final, "-o", str(tmp_path / "w.svg")])
    assert whole.exit_code == 0, whole.output
    assert len(whole.output.splitlines()) == 1


def test_an_upstream_picture_never_folds_the_way_to_its_root() -> None:
    """A chain of fine-tunings, each reading one of the datasets a single run prepared: the
    prepare run is a hub near the root, and folding the datasets it made (more than
    ``collapse`` siblings) took the chain's runs with them, drawing "model -> +2 more dataset
    versions -> model" in the middle of the way to the root. Every run and model of the chain
    is drawn."""
    from lineage.records import CONSUMED_BY, PRODUCED

    def node(record: VersionRecord | RunRecord) -> Node:
        if isinstance(record, RunRecord):
            return Node(id=record.id, kind="run", ref=None, run=record)
        return Node(id=record.id, kind="artifact_version", ref=record.ref, version=record)

    def made(name: str, type_: str, index: int) -> VersionRecord:
        return VersionRecord(
            project="p", name=name, type=type_, index=index, digest=f"{index:064x}", size=1,
            file_count=1,
        )  # fmt: skip

    stages = 10
    prep = RunRecord(id="prep", project="p", name="prepare", job_type="prepare")
    # the newest datasets (folded first) are read furthest from the root
    data = [made("data", "dataset", stages - 1 - i) for i in range(stages)]
    models = [made("model", "model", i) for i in range(stages + 1)]
    runs = [
        RunRecord(id=f"ft{i}", project="p", name=f"ft-{i}", job_type="ft") for i in range(stages)
    ]
    edges = [Edge(source="prep", target=d.id, kind=PRODUCED) for d in data]
    for i, run in enumerate(runs):  # model i + data i -> ft i -> model i+1
        edges += [
            Edge(source=models[i].id, target=run.id, kind=CONSUMED_BY),
            Edge(source=data[i].id, target=run.id, kind=CONSUMED_BY),
            Edge(source=run.id, target=models[i + 1].id, kind=PRODUCED),
        ]
    records: list[VersionRecord | RunRecord] = [prep, *data, *models, *runs]
    graph = Subgraph(nodes=tuple(node(r) for r in records), edges=tuple(edges), root=models[-1].id)
    found = view.classify(graph, store=NoLookups(), mode="upstream", depth=None)
    plan = render.build(found, collapse=5)
    chain = {r.id for r in runs} | {m.id for m in models}
    assert chain <= plan.shown(), sorted(chain - plan.shown())
    drawn = {(e.source, e.target) for e in plan.edges}
    for i, run in enumerate(runs):
        assert {(models[i].id, run.id), (run.id, models[i + 1].id)} <= drawn
