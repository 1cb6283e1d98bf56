"""Rendering: the plan and the DOT of lineage graphs and derivation trees, asserted structurally.

DOT is read back by Graphviz itself (``dot -Tdot_json``), so a quoting mistake fails to parse
instead of passing a string comparison.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

import lineage
from lineage import render, view
from lineage.records import Edge, Node, RunRecord, Subgraph, VersionRecord

PROJECT = "surgery"
SVG = "{http://www.w3.org/2000/svg}"


@dataclass
class Builder:
    """Records runs through the public SDK, each output a file of its own content."""

    store: str
    blobs: str
    root: Path
    runs: dict[str, str] = field(default_factory=dict)  # run name -> run id
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def step(
        self,
        name: str,
        job_type: str,
        inputs: Sequence[str],
        outputs: Sequence[tuple[str, str]] = (),
        aliases: Sequence[str] = (),
    ) -> list[str]:
        with lineage.init(
            project=PROJECT, job_type=job_type, name=name, store=self.store, blobs=self.blobs
        ) as run:
            self.runs[name] = run.id
            for ref in inputs:
                run.use_artifact(ref)
            refs = []
            for art_name, art_type in outputs:
                path = self.root / f"file-{next(self.counter)}.bin"
                path.write_text(f"{name} {path.name}")
                artifact = lineage.Artifact(art_name, type=art_type)
                artifact.add_file(path)
                refs.append(run.log_artifact(artifact, aliases=aliases).ref)
            return refs

    def api(self) -> lineage.Api:
        return lineage.Api(store=self.store, blobs=self.blobs, project=PROJECT)


def ref(name: str) -> str:
    return f"{PROJECT}/{name}"


@pytest.fixture
def surgery(workdir: Path, backend: Any) -> Builder:
    """The demo's fine-tuning tree under base:v0 (``->`` is a run)::

    corpus:v0 -> base:v0 -sft-a-> policy:v0 -dpo-a-> policy:v2 -sweep-0..6-> policy:v3..v9
                base:v0 -sft-b-> policy:v1        (probe-b consumed it, logged nothing)
    policy:v2 -eval-a-> report:v0       policy:v4 (from sweep-1) -eval-b-> report:v1
    policy:v8 (from sweep-5) -distill-> student:v0 -quantize-> student:v1 (production)
    """
    b = Builder(store=backend.store, blobs=backend.blobs, root=workdir)
    [corpus] = b.step("ingest", "preprocess", [], [("corpus", "dataset")])
    [base] = b.step("pretrain", "train", [corpus], [("base", "model")])
    [p0] = b.step("sft-a", "finetune", [base], [("policy", "model")])
    [p1] = b.step("sft-b", "finetune", [base], [("policy", "model")])
    [p2] = b.step("dpo-a", "dpo", [p0], [("policy", "model")])
    sweep = [b.step(f"sweep-{i}", "sweep", [p2], [("policy", "model")])[0] for i in range(7)]
    assert sweep == [ref(f"policy:v{i}") for i in range(3, 10)]
    b.step("eval-a", "eval", [p2], [("report", "result")])
    [s0] = b.step("distill", "distill", [sweep[5]], [("student", "model")])
    b.step("quantize", "surgery", [s0], [("student", "model")], aliases=["production"])
    b.step("eval-b", "eval", [sweep[1]], [("report", "result")])
    b.step("probe-b", "eval", [p1])
    return b


PATH = [ref(n) for n in ("base:v0", "policy:v0", "policy:v2", "policy:v8", "student:v0")]
PATH += [ref("student:v1")]
TREE_SHOWN = {ref(f"policy:v{i}") for i in (0, 1, 2, 3, 4, 5, 6, 8)} | {
    ref("base:v0"),
    ref("report:v0"),
    ref("report:v1"),
    ref("student:v0"),
    ref("student:v1"),
}
TREE_GROUP = f"more:{ref('policy:v2')}:down:artifact_version:model"
TREE_EDGES = {
    (ref("base:v0"), ref("policy:v0"), "sft-a", "finetune"),
    (ref("base:v0"), ref("policy:v1"), "sft-b", "finetune"),
    (ref("policy:v0"), ref("policy:v2"), "dpo-a", "dpo"),
    *((ref("policy:v2"), ref(f"policy:v{i + 3}"), f"sweep-{i}", "sweep") for i in (0, 1, 2, 3, 5)),
    (ref("policy:v2"), ref("report:v0"), "eval-a", "eval"),
    (ref("policy:v4"), ref("report:v1"), "eval-b", "eval"),
    (ref("policy:v8"), ref("student:v0"), "distill", "distill · distillation"),
    (ref("student:v0"), ref("student:v1"), "quantize", "surgery"),
}


# reading DOT and SVG back ----------------------------------------------------------------------


@dataclass
class Dot:
    nodes: dict[str, dict[str, str]]
    edges: list[tuple[str, str, dict[str, str]]]

    def pairs(self) -> set[tuple[str, str]]:
        return {(tail, head) for tail, head, _ in self.edges}


def parse_dot(dot: str) -> Dot:
    """The graph as Graphviz itself reads it (names, attributes, edges), without layout."""
    done = subprocess.run(
        ["dot", "-Tdot_json"], input=dot.encode(), capture_output=True, check=True
    )
    data = json.loads(done.stdout)
    objects = data.get("objects", [])
    names = {obj["_gvid"]: obj["name"] for obj in objects}
    return Dot(
        nodes={obj["name"]: obj for obj in objects},
        edges=[(names[e["tail"]], names[e["head"]], e) for e in data.get("edges", [])],
    )


def lines(label: str) -> list[str]:
    return label.split("\\n")  # dot_json keeps the escString as written


def svg_nodes(svg: str | bytes) -> dict[str, set[str]]:
    """SVG node groups: node name (its <title>) -> CSS classes."""
    root = ET.fromstring(svg)
    found = {}
    for g in root.iter(f"{SVG}g"):
        classes = set(g.get("class", "").split())
        if "node" in classes:
            title = g.find(f"{SVG}title")
            assert title is not None and title.text is not None
            found[title.text] = classes
    return found


def tree_view(b: Builder, depth: int = 20) -> view.View:
    return b.api().view("base:v0", "tree", depth)


def tree_plan(b: Builder, **kw: Any) -> render.RenderPlan:
    return render.build(tree_view(b), **kw)


# DESIGN's rule: a dead end is a version that no run anywhere consumed. In the surgery tree:
# the sweep outputs nobody used, both evaluation results, and student:v1 (it holds
# "production", but no run has consumed it yet). policy:v4 was evaluated (eval-b consumed
# it) and policy:v1 was probed (probe-b consumed it, logging nothing): both are alive.
DEAD = {ref(f"policy:v{i}") for i in (3, 5, 6, 7, 9)}
DEAD |= {ref("report:v0"), ref("report:v1"), ref("student:v1")}


# the derivation tree ---------------------------------------------------------------------------


def test_tree_plan_has_the_expected_nodes_groups_dead_ends_and_path(surgery: Builder) -> None:
    plan = tree_plan(surgery, highlight="production")

    assert {n.id for n in plan.nodes} == TREE_SHOWN | {TREE_GROUP}
    assert plan.root == ref("base:v0")
    [group] = plan.groups
    assert group.id == TREE_GROUP
    # path first, then the sibling that leads somewhere, then the oldest dead ends
    assert group.hidden == (ref("policy:v7"), ref("policy:v9"))
    assert group.below == 0
    assert group.label == "+2 more model versions"
    assert plan.targets == (ref("student:v1"),)
    assert plan.path == frozenset(PATH)
    assert {n.id for n in plan.nodes if n.highlighted} == set(PATH)
    highlighted_edges = {(e.source, e.target) for e in plan.edges if e.highlighted}
    assert highlighted_edges == set(itertools.pairwise(PATH))
    # The new rule (DESIGN): dead means no run anywhere consumed it. The old rule ("a model no
    # model came from, without aliases") called the evaluated policy:v4 dead and the results
    # alive; now policy:v4 is alive (eval-b consumed it) and the unread results are dead ends.
    assert {n.id for n in plan.nodes if n.dead} == DEAD - set(group.hidden)
    assert {n.id for n in plan.nodes if n.dead} == {
        n.id for n in plan.nodes if n.state == view.DEAD_END
    }
    assert plan.node(ref("policy:v4")).state == view.ALIVE
    assert plan.node(ref("policy:v1")).state == view.ALIVE  # consumed beyond the picture
    assert plan.node(ref("report:v0")).dead and plan.node(ref("report:v1")).dead
    # an alias does not make a version consumed: the production model is still a dead end
    # (until something uses it), and it is the highlighted target all the same
    assert plan.node(ref("student:v1")).dead and plan.node(ref("student:v1")).target
    assert plan.node(ref("policy:v8")).state == view.ALIVE
    assert all(n.kind == "artifact_version" for n in plan.nodes if n.id != TREE_GROUP)
    assert plan.node(ref("student:v1")).label == "student:v1\nlatest, production"

    # the oracle: networkx over the store's own tree agrees on the highlighted path
    tree = surgery.api().tree("base:v0")
    g = nx.DiGraph([(e.source, e.target) for e in tree.edges])
    assert nx.shortest_path(g, ref("base:v0"), ref("student:v1")) == PATH


def test_tree_dot_matches_the_plan(surgery: Builder) -> None:
    dot = parse_dot(render.to_dot(tree_view(surgery), highlight="production"))

    assert set(dot.nodes) == TREE_SHOWN | {TREE_GROUP}
    labelled = {
        (tail, head, *lines(attrs["label"]))
        for tail, head, attrs in dot.edges
        if tail != TREE_GROUP
    }
    assert labelled - {(ref("policy:v2"), TREE_GROUP, "sweep")} == TREE_EDGES
    assert (ref("policy:v2"), TREE_GROUP) in dot.pairs()
    assert len(dot.edges) == len(TREE_EDGES) + 1

    highlighted = {name for name, a in dot.nodes.items() if a.get("color") == render.HIGHLIGHT}
    assert highlighted == set(PATH)
    red = {(t, h) for t, h, a in dot.edges if a.get("color") == render.HIGHLIGHT}
    assert red == set(itertools.pairwise(PATH))
    assert dot.nodes[ref("student:v1")]["peripheries"] == "2"
    assert dot.nodes[ref("policy:v3")]["fillcolor"] == render.DEAD_FILL
    # evaluated, so consumed: alive under DESIGN's rule (the old rule greyed it)
    assert dot.nodes[ref("policy:v4")]["fillcolor"] == render.type_colour("model")
    assert dot.nodes[ref("policy:v8")]["fillcolor"] == render.type_colour("model")
    # an evaluation result nobody consumed is a dead end (the old rule kept results alive)
    assert dot.nodes[ref("report:v0")]["fillcolor"] == render.DEAD_FILL
    classes = {name: set(a.get("class", "").split()) for name, a in dot.nodes.items()}
    assert {n for n, c in classes.items() if "dead" in c} == DEAD & set(dot.nodes)
    assert not any({"truncated", "deleted"} & c for c in classes.values())
    assert dot.nodes[TREE_GROUP]["shape"] == "box"
    assert lines(dot.nodes[TREE_GROUP]["label"]) == ["+2 more model versions"]
    assert dot.nodes[ref("report:v0")]["shape"] == "ellipse"


def test_render_ref_tree_svg_counts_nodes_and_knows_what_was_consumed(surgery: Builder) -> None:
    svg = render.render_ref(surgery.api(), "base:v0", mode="tree", highlight="production")
    nodes = svg_nodes(svg)
    assert len(nodes) == len(TREE_SHOWN) + 1
    assert set(nodes) == TREE_SHOWN | {TREE_GROUP}
    # probe-b consumed policy:v1 and logged nothing: a leaf of the tree, not a dead end
    assert "dead" not in nodes[ref("policy:v1")]
    assert "dead" in nodes[ref("policy:v3")]
    assert "dead" not in nodes[ref("policy:v4")]  # evaluated: consumed
    assert "dead" in nodes[ref("report:v1")]  # the evaluation's result: nobody read it
    assert {n for n, c in nodes.items() if "dead" in c} == DEAD & set(nodes)
    assert {n for n, c in nodes.items() if "highlighted" in c} == set(PATH)
    assert "target" in nodes[ref("student:v1")]


def test_other_formats(surgery: Builder) -> None:
    api = surgery.api()
    assert render.render_ref(api, "base:v0", mode="tree", fmt="png").startswith(b"\x89PNG")
    assert render.render_ref(api, "base:v0", mode="tree", fmt="pdf").startswith(b"%PDF")
    dot = render.render_ref(api, "base:v0", mode="tree", fmt="dot").decode()
    assert set(parse_dot(dot).nodes) == TREE_SHOWN | {TREE_GROUP}


def test_collapse_zero_keeps_every_sibling(surgery: Builder) -> None:
    plan = tree_plan(surgery, collapse=0)
    assert not plan.groups
    assert len(plan.nodes) == 15 and not plan.path
    plan = tree_plan(surgery, collapse=7)
    assert not plan.groups
    plan = tree_plan(surgery, collapse=1, highlight="production")
    # base:v0 has 2 model children (keep the one on the path), policy:v2 has 7 (keep policy:v8)
    # and one result: a kind of its own, under the limit
    kept = {n.id for n in plan.nodes if n.kind != "more"}
    assert kept == {*PATH, ref("report:v0")}
    [under_base, under_p2] = plan.groups
    assert under_base.hidden == (ref("policy:v1"),)
    assert len(under_p2.hidden) == 6
    assert under_p2.below == 1  # report:v1, reachable only through the hidden policy:v4


# the lineage graph -----------------------------------------------------------------------------


def test_downstream_lineage_collapses_runs_and_keeps_the_path(surgery: Builder) -> None:
    api = surgery.api()
    plan = render.build(api.view("policy:v2", "downstream"), highlight="production")

    [group] = plan.groups
    ids = surgery.runs
    assert group.hidden == (ids["sweep-4"], ids["sweep-6"])
    assert group.below == 2  # policy:v7 and policy:v9 went with their runs
    assert group.label == "+2 more sweep runs\n(2 more beyond)"
    shown = {n.id for n in plan.nodes}
    assert {ids[f"sweep-{i}"] for i in (0, 1, 2, 3, 5)} <= shown
    assert not {ref("policy:v7"), ref("policy:v9")} & shown
    assert plan.path == {
        ref("policy:v2"),
        ids["sweep-5"],
        ref("policy:v8"),
        ids["distill"],
        ref("student:v0"),
        ids["quantize"],
        ref("student:v1"),
    }

    dot = parse_dot(render.plan_to_dot(plan))
    assert set(dot.nodes) == shown
    run = dot.nodes[ids["sweep-5"]]
    assert run["shape"] == "box"
    assert lines(run["label"]) == ["sweep-5", "sweep · finished"]
    assert run["color"] == render.HIGHLIGHT
    assert dot.nodes[ref("policy:v8")]["fillcolor"] == render.type_colour("model")
    # eval-a's result: nobody consumed it, a dead end (the old rule drew no dead end here)
    assert dot.nodes[ref("report:v0")]["fillcolor"] == render.DEAD_FILL
    # top to bottom, a lineage edge says "consumed" / "produced" in its tooltip, not in a
    # label: edge labels would give every edge a rank of its own and double the height
    assert not any("label" in a for _, _, a in dot.edges)
    kinds = {(t, h): lines(a["tooltip"]) for t, h, a in dot.edges}
    assert kinds[(ref("policy:v2"), ids["eval-a"])] == ["consumed"]
    assert kinds[(ids["eval-a"], ref("report:v0"))] == ["produced"]
    assert kinds[(ref("policy:v2"), group.id)] == ["consumed"]
    # the same states as the tree: the rule does not depend on the picture (the old code
    # marked no dead end in a lineage picture); runs are never dead
    assert {n.id for n in plan.nodes if n.dead} == DEAD & shown
    assert not any(n.dead for n in plan.nodes if n.kind == "run")
    classes = {name: set(a.get("class", "").split()) for name, a in dot.nodes.items()}
    assert {n for n, c in classes.items() if "dead" in c} == DEAD & shown


def test_upstream_lineage_is_the_whole_chain(surgery: Builder) -> None:
    api = surgery.api()
    plan = render.build(api.view("student:production", "upstream"), highlight="production")
    dot = parse_dot(render.plan_to_dot(plan))

    ids = surgery.runs
    chain = [ids["ingest"], ref("corpus:v0"), ids["pretrain"], ref("base:v0"), ids["sft-a"]]
    chain += [ref("policy:v0"), ids["dpo-a"], ref("policy:v2"), ids["sweep-5"], ref("policy:v8")]
    chain += [ids["distill"], ref("student:v0"), ids["quantize"], ref("student:v1")]
    assert set(dot.nodes) == set(chain)
    assert dot.pairs() == set(itertools.pairwise(chain))
    assert not plan.groups
    assert plan.path == {ref("student:v1")}  # the root holds the alias itself
    shapes = {name: a["shape"] for name, a in dot.nodes.items()}
    assert {n for n, s in shapes.items() if s == "box"} == set(ids.values()) & set(chain)
    assert dot.nodes[ref("corpus:v0")]["fillcolor"] == render.type_colour("dataset")
    assert dot.nodes[ref("base:v0")]["fillcolor"] == render.type_colour("model")
    # every ancestor was consumed (by the next run of the chain); the root itself holds
    # "production" but no run consumed it: DESIGN's dead end (the old rule spared aliases)
    grey = {name for name, a in dot.nodes.items() if a.get("fillcolor") == render.DEAD_FILL}
    assert grey == {ref("student:v1")}
    assert {n.id for n in plan.nodes if n.dead} == {ref("student:v1")}


def test_links_become_clickable_svg(surgery: Builder) -> None:
    api = surgery.api()
    found = api.view("student:production", "upstream")
    graph = found.graph

    def link(node: Node) -> str:
        return f"/nodes/{node.id}?view=full&from=<svg>"

    svg = render.to_svg(found, link=link)
    root = ET.fromstring(svg)  # an unescaped '&' or '<' in a URL would not parse
    anchors = [a for a in root.iter(f"{SVG}a") if "{http://www.w3.org/1999/xlink}href" in a.attrib]
    hrefs = {a.attrib["{http://www.w3.org/1999/xlink}href"] for a in anchors}
    assert len(hrefs) == len(graph.nodes) == 14
    assert f"/nodes/{ref('student:v1')}?view=full&from=%3Csvg%3E" in hrefs


# quoting, errors, scale ------------------------------------------------------------------------


def version(project: str, name: str, index: int, **kw: Any) -> Node:
    record = VersionRecord(
        project=project, name=name, type="model", index=index, digest="0" * 64, size=1,
        file_count=1, **kw,
    )  # fmt: skip
    return Node(id=record.id, kind="artifact_version", ref=record.ref, version=record)


class NoLookups:
    """A store that knows of no consumer and no run: the graph is all there is."""

    def consumed(self, ids: Sequence[str]) -> set[str]:
        return set()

    def consumers(self, version: VersionRecord) -> list[RunRecord]:
        return []

    def get_runs(self, ids: Iterable[str]) -> dict[str, RunRecord]:
        return {}


def test_ids_and_labels_are_quoted_safely() -> None:
    a = version("p-1", "a.b", 3, aliases=("prod",))
    b = version("p.2", "x_y", 0)
    nasty = RunRecord(id="r1", project="p-1", name='say "hi" \\ -> {x; y}\n[z]', job_type="t")
    run = Node(id="r1", kind="run", run=nasty)
    odd = version("p.2", 'q"uo\\te', 1)  # never valid through the SDK; still safe here
    graph = Subgraph(
        nodes=(a, b, run, odd),
        edges=(
            Edge(source=a.id, target="r1", kind="consumed_by"),
            Edge(source="r1", target=b.id, kind="produced"),
            Edge(source="r1", target=odd.id, kind="produced"),
        ),
        root=a.id,
    )
    found = view.classify(graph, store=NoLookups(), mode="downstream", depth=None)
    dot = parse_dot(render.to_dot(found))
    assert set(dot.nodes) == {"p-1/a.b:v3", "p.2/x_y:v0", "r1", 'p.2/q"uo\\\\te:v1'}
    assert dot.pairs() == {
        ("p-1/a.b:v3", "r1"),
        ("r1", "p.2/x_y:v0"),
        ("r1", 'p.2/q"uo\\\\te:v1'),
    }
    # two projects in one picture: the nodes of another project than the root's are labelled
    # with it, the root's own are not (the old code prefixed every node of a mixed picture)
    assert lines(dot.nodes["p-1/a.b:v3"]["label"]) == ["a.b:v3", "prod"]
    assert lines(dot.nodes["p.2/x_y:v0"]["label"])[0] == "p.2/x_y:v0"
    assert lines(dot.nodes['p.2/q"uo\\\\te:v1']["label"])[0] == 'p.2/q"uo\\\\te:v1'
    label = lines(dot.nodes["r1"]["label"])
    assert label == ['say "hi" \\\\ -> {x; y}', "[z]", "t · running"]
    svg = render.render(render.to_dot(found), "svg")
    assert set(svg_nodes(svg)) == {"p-1/a.b:v3", "p.2/x_y:v0", "r1", 'p.2/q"uo\\\\te:v1'}


def test_quote_id() -> None:
    assert render.quote_id("surgery/policy:v3") == '"surgery/policy:v3"'
    assert render.quote_id('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_missing_dot_names_the_package(
    surgery: Builder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api = surgery.api()
    dot = render.render_ref(api, "base:v0", mode="tree", fmt="dot")  # needs no binary
    monkeypatch.setenv("PATH", str(tmp_path))
    assert render.render(dot.decode(), "dot") == dot
    with pytest.raises(lineage.LineageError, match="install the graphviz OS package"):
        render.render(dot.decode(), "svg")
    with pytest.raises(lineage.LineageError, match="`dot`"):
        render.render_ref(api, "base:v0", mode="tree")


def test_bad_options_are_refused(surgery: Builder) -> None:
    api = surgery.api()
    graph = api.tree("base:v0")
    # the mode is the view's now: classify and ask refuse an unknown one
    with pytest.raises(lineage.InvalidInput, match="mode"):
        view.classify(graph, store=api.service, mode="sideways", depth=20)  # type: ignore[arg-type]
    with pytest.raises(lineage.InvalidInput, match="mode"):
        api.view("base:v0", "sideways")  # type: ignore[arg-type]
    found = view.classify(graph, store=api.service, mode="tree", depth=20)
    for bad in (-1, True, 1.5):
        with pytest.raises(lineage.InvalidInput, match="collapse"):
            render.build(found, collapse=bad)  # type: ignore[arg-type]
    with pytest.raises(lineage.InvalidInput, match="format"):
        render.render("digraph {}", "gif")  # type: ignore[arg-type]
    with pytest.raises(lineage.InvalidInput, match="mode"):
        render.render_ref(api, "base:v0", mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(lineage.LineageError, match="dot failed"):
        render.render("digraph { a -> }", "svg")


def test_a_twenty_stage_tree_of_hundreds_of_versions_renders(workdir: Path, backend: Any) -> None:
    """Two branches, 20 stages, 8 candidates a run (the first goes on): 321 versions."""
    b = Builder(store=backend.store, blobs=backend.blobs, root=workdir)
    [base] = b.step("pretrain", "train", [], [("base", "model")])
    frontier = {"a": base, "b": base}
    for stage in range(1, 21):
        for branch, parent in frontier.items():
            outputs = [(f"policy-{branch}", "model")] * 8
            last = stage == 20 and branch == "a"
            refs = b.step(
                f"s{stage}-{branch}", "finetune", [parent], outputs[:1], ["production"] * last
            )
            refs += b.step(f"s{stage}-{branch}-sweep", "sweep", [parent], outputs[1:])
            frontier[branch] = refs[0]
    api = b.api()

    started = time.perf_counter()
    graph = api.tree("base:v0", depth=25)
    fetched = time.perf_counter()
    svg = render.render_ref(api, "base:v0", mode="tree", depth=25, highlight="production")
    rendered = time.perf_counter()
    everything = render.to_svg(api.view("base:v0", "tree", 25), collapse=0)
    done = time.perf_counter()
    print(
        f"\n{len(graph.nodes)} versions: fetch {fetched - started:.2f}s, "
        f"collapsed render {rendered - fetched:.2f}s, uncollapsed {done - rendered:.2f}s"
    )

    assert len(graph.nodes) == 321 and not graph.truncated
    plan = render.build(api.view("base:v0", "tree", 25), highlight="production")
    # base:v0 has 16 children of one kind, every later parent 8 (sweep and finetune runs
    # alike): each keeps 5 (its path or live child first) and shows a group for the rest
    assert len(plan.groups) == 1 + 19 * 2
    assert len(plan.nodes) == 1 + 5 + 19 * 2 * 5 + len(plan.groups)
    assert len(plan.path) == 21
    assert len(svg_nodes(svg)) == len(plan.nodes)
    assert len(svg_nodes(everything)) == 321


def test_a_group_of_one_says_one(surgery: Builder) -> None:
    """A group of one hidden version says "version", not "versions"."""
    [group] = tree_plan(surgery, highlight="production", collapse=6).groups
    assert group.hidden == (ref("policy:v9"),)
    assert group.label == "+1 more model version"
