"""Pictures show the view's states and labels: dead ends, truncated and deleted versions, nodes
of other projects, and the edges of what a "+k more" group hides.

Each test here failed on the renderer before ``lineage.view`` (commit 4b3735e): it decided dead
ends for itself (and only in trees), drew no truncated or deleted node, dropped every edge with
a hidden end, prefixed every node of a picture that spans projects, and wrote SVG into a file of
any name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
from click.testing import CliRunner
from helpers import snapshot
from test_render import PROJECT, Builder, lines, parse_dot, ref, surgery, svg_nodes

import lineage
from lineage import render, view
from lineage.cli import cli
from lineage.service import Service

__all__ = ["surgery"]  # the fixture, shared with test_render

OTHER = "robotics"


def classes(dot: Any) -> dict[str, set[str]]:
    return {name: set(attrs.get("class", "").split()) for name, attrs in dot.nodes.items()}


# bug 4: a collapsed run keeps the edges of what it touched ---------------------------------------


def test_a_version_made_by_a_hidden_run_keeps_an_edge_from_its_group(
    workdir: Path, backend: Any
) -> None:
    """base:v0 -ft-0..6-> policy:v0..v6; merge consumed base:v0 and policy:v6.

    Seven finetune runs under base:v0: the picture keeps five and folds ft-5 and ft-6 into
    "+2 more finetune runs". policy:v6 (made by the hidden ft-6) stays, because merge (shown)
    consumed it: it must not float without a producer, its edge comes from the group.
    """
    b = Builder(store=backend.store, blobs=backend.blobs, root=workdir)
    [base] = b.step("pretrain", "train", [], [("base", "model")])
    policies = [b.step(f"ft-{i}", "finetune", [base], [("policy", "model")])[0] for i in range(7)]
    [merged] = b.step("merge", "merge", [base, policies[6]], [("merged", "model")])
    found = b.api().view("base:v0", "downstream")
    plan = render.build(found)

    [group] = plan.groups
    ids = b.runs
    assert group.hidden == (ids["ft-5"], ids["ft-6"])
    assert group.label == "+2 more finetune runs\n(1 more beyond)"  # policy:v5 went with ft-5
    shown = {n.id for n in plan.nodes}
    assert policies[6] in shown and policies[5] not in shown
    assert {ids["merge"], merged} <= shown

    edges = {(e.source, e.target): e for e in plan.edges}
    # the parent keeps its edge to the group
    assert edges[(ref("base:v0"), group.id)].kind == "more"
    assert edges[(ref("base:v0"), group.id)].label == "consumed"
    # the version the hidden run made is drawn with an edge from the group that stands for it
    into_v6 = [e for e in plan.edges if e.target == policies[6]]
    assert [(e.source, e.kind, e.label) for e in into_v6] == [(group.id, "more", "produced")]
    assert (policies[6], ids["merge"]) in edges
    # merge is two generations under base:v0: base:v0 is drawn again beside it (a copy, one
    # rank above merge), so that no edge runs down the whole picture
    [copy] = plan.copies
    assert copy.copy_of == ref("base:v0") and copy.label == plan.node(ref("base:v0")).label
    assert (copy.id, ids["merge"]) in edges and (ref("base:v0"), ids["merge"]) not in edges
    # every version but the root and its copy has an incoming edge: from its producing run,
    # or its group
    for node in plan.nodes:
        if node.kind == "artifact_version" and node.id not in (plan.root, copy.id):
            sources = {e.source for e in plan.edges if e.target == node.id}
            assert sources, f"{node.id} is drawn without its producer"
            assert sources <= {n.id for n in plan.nodes}
    # no edge names a node that is not drawn
    assert {end for pair in edges for end in pair} <= shown

    # what Graphviz reads: the same edges, and everything reachable from the root
    dot = parse_dot(render.plan_to_dot(plan))
    assert set(dot.nodes) == shown
    assert (group.id, policies[6]) in dot.pairs()
    assert lines(dot.nodes[group.id]["label"]) == ["+2 more finetune runs", "(1 more beyond)"]
    original = {copy.id: ref("base:v0")}
    drawn = nx.DiGraph([(original.get(t, t), h) for t, h in dot.pairs()])
    assert nx.descendants(drawn, ref("base:v0")) | {ref("base:v0"), copy.id} == shown


# bug 3: where depth stopped the walk, the picture says truncated, never dead ------------------


def test_a_depth_cut_leaf_with_children_is_truncated_not_dead(surgery: Builder) -> None:
    api = surgery.api()
    # two generations of the tree: policy:v2 is a leaf here, but dpo-a's output goes on
    svg = render.render_ref(api, "base:v0", mode="tree", depth=2)
    nodes = svg_nodes(svg)
    assert set(nodes) == {ref("base:v0"), ref("policy:v0"), ref("policy:v1"), ref("policy:v2")}
    assert "truncated" in nodes[ref("policy:v2")] and "dead" not in nodes[ref("policy:v2")]
    # a leaf inside the depth that a run consumed (probe-b logged nothing) is neither
    assert not {"dead", "truncated"} & nodes[ref("policy:v1")]
    assert not any("dead" in c for c in nodes.values())

    text = render.to_dot(api.view("base:v0", "tree", 2))
    dot = parse_dot(text)
    assert classes(dot)[ref("policy:v2")] == {"version", "truncated"}
    assert lines(dot.nodes[ref("policy:v2")]["label"]) == ["policy:v2", "(truncated)"]
    assert dot.nodes[ref("policy:v2")]["fillcolor"] != render.DEAD_FILL
    assert "depth limit reached" in text  # the picture's own caption

    # the lineage picture, three generations down: the sweep outputs that something consumed
    # beyond the cut are truncated; the ones nobody consumed are dead ends, at the same cut
    plan = render.build(api.view("base:v0", "downstream", 3), collapse=0)
    states = {n.id: n.state for n in plan.nodes if n.kind == "artifact_version"}
    assert {i for i, s in states.items() if s == view.TRUNCATED} == {
        ref("policy:v4"),
        ref("policy:v8"),
    }
    assert {i for i, s in states.items() if s == view.DEAD_END} == {
        *(ref(f"policy:v{i}") for i in (3, 5, 6, 7, 9)),
        ref("report:v0"),
    }
    dot = parse_dot(render.plan_to_dot(plan))
    assert "truncated" in classes(dot)[ref("policy:v8")]
    assert "dead" not in classes(dot)[ref("policy:v8")]
    assert "dead" in classes(dot)[ref("policy:v3")]

    # upstream too: the walk stopped at policy:v8, which sweep-5 made
    plan = render.build(api.view("student:v1", "upstream", 2))
    assert plan.node(ref("policy:v8")).state == view.TRUNCATED
    assert not plan.node(ref("policy:v8")).dead


# bug 10: a deleted version is drawn deleted, and its lineage stays ------------------------------


def test_a_deleted_version_is_drawn_deleted_not_dead(surgery: Builder) -> None:
    api = surgery.api()
    api.delete("policy:v3")  # a dead end before: nobody consumed it
    api.delete("student:v0")  # in the middle of the production path: quantize consumed it
    found = api.view("base:v0", "tree")
    assert found.deleted == {ref("policy:v3"), ref("student:v0")}

    dot = parse_dot(render.to_dot(found, highlight="production"))
    got = classes(dot)
    assert "deleted" in got[ref("policy:v3")] and "dead" not in got[ref("policy:v3")]
    assert "deleted" in got[ref("student:v0")] and "dead" not in got[ref("student:v0")]
    assert lines(dot.nodes[ref("policy:v3")]["label"]) == ["policy:v3", "(deleted)"]
    assert dot.nodes[ref("policy:v3")]["fillcolor"] != render.DEAD_FILL
    # its lineage stays: what was derived from the deleted student:v0 is still drawn under it
    assert (ref("student:v0"), ref("student:v1")) in dot.pairs()
    assert {n for n, c in got.items() if "deleted" in c} == {ref("policy:v3"), ref("student:v0")}

    svg = svg_nodes(render.render_ref(api, "base:v0", mode="tree"))
    assert "deleted" in svg[ref("policy:v3")] and "dead" not in svg[ref("policy:v3")]
    # and the deleted version's own lineage still draws
    up = svg_nodes(render.render_ref(api, "student:v0", mode="up"))
    assert ref("student:v0") in up and "deleted" in up[ref("student:v0")]
    assert ref("base:v0") in up


# bug 9: an output name that says no known format is refused --------------------------------------


def test_render_refuses_an_unknown_suffix_and_writes_nothing(
    surgery: Builder, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    service = surgery.api().service
    assert isinstance(service, Service)  # a local store: its graph and blobs to compare
    before = snapshot(service.graph, service.blobs)
    args = ["--store", surgery.store, "--blobs", surgery.blobs, "-p", PROJECT]
    result = CliRunner().invoke(
        cli, ["render", "base:v0", "--tree", "-o", str(out / "x.jpg"), *args]
    )
    assert result.exit_code == 2, result.output
    assert ".jpg" in result.stderr and "error:" in result.stderr
    assert not list(out.iterdir())
    assert snapshot(service.graph, service.blobs) == before

    # a known suffix, in any case, picks its format
    result = CliRunner().invoke(
        cli, ["render", "base:v0", "--tree", "-o", str(out / "x.PNG"), *args]
    )
    assert result.exit_code == 0, result.output
    assert (out / "x.PNG").read_bytes().startswith(b"\x89PNG")
    # and --format says it whatever the name
    result = CliRunner().invoke(
        cli, ["render", "base:v0", "--format", "dot", "-o", str(out / "x.jpg"), *args]
    )
    assert result.exit_code == 0, result.output
    assert (out / "x.jpg").read_text().startswith("digraph")


# bug 5: a node of another project carries its project in the picture ---------------------------


def test_nodes_of_another_project_are_labelled_with_it(surgery: Builder) -> None:
    with lineage.init(
        project=OTHER,
        job_type="transfer",
        name="port",
        store=surgery.store,
        blobs=surgery.blobs,
    ) as run:
        run.use_artifact(ref("policy:v2"))
        path = surgery.root / "arm.bin"
        path.write_text("arm")
        artifact = lineage.Artifact("arm", type="controller")
        artifact.add_file(path)
        arm = run.log_artifact(artifact).ref
    port = run.id
    assert arm == f"{OTHER}/arm:v0"
    api = surgery.api()

    dot = parse_dot(render.to_dot(api.view("base:v0", "tree"), collapse=0))
    assert lines(dot.nodes[arm]["label"])[0] == f"{OTHER}/arm:v0"
    for name in ("base:v0", "policy:v2", "policy:v8"):
        assert lines(dot.nodes[ref(name)]["label"])[0] == name  # the root's project: bare
    assert not any(lines(a["label"])[0].startswith(f"{PROJECT}/") for a in dot.nodes.values())

    # a lineage picture: the other project's run too
    dot = parse_dot(render.to_dot(api.view("policy:v2", "downstream"), collapse=0))
    assert lines(dot.nodes[port]["label"])[0] == f"{OTHER}/port"
    assert lines(dot.nodes[arm]["label"])[0] == f"{OTHER}/arm:v0"
    assert lines(dot.nodes[surgery.runs["eval-a"]]["label"])[0] == "eval-a"
    assert lines(dot.nodes[ref("report:v0")]["label"])[0] == "report:v0"

    # seen from the other project, it is the surgery nodes that carry theirs
    other = lineage.Api(store=surgery.store, blobs=surgery.blobs, project=OTHER)
    dot = parse_dot(render.to_dot(other.view("arm:v0", "upstream"), collapse=0))
    assert lines(dot.nodes[arm]["label"])[0] == "arm:v0"
    assert lines(dot.nodes[port]["label"])[0] == "port"
    assert lines(dot.nodes[ref("policy:v2")]["label"])[0] == f"{PROJECT}/policy:v2"
    assert lines(dot.nodes[surgery.runs["dpo-a"]]["label"])[0] == f"{PROJECT}/dpo-a"


def test_a_tree_edge_names_a_run_of_another_project_with_it(surgery: Builder) -> None:
    """The view names the runs on a tree's edges (``View.run_label``), with their project when
    it is another one, as the text tree prints them: the picture shows the same name."""
    with lineage.init(
        project=OTHER, job_type="transfer", name="port", store=surgery.store, blobs=surgery.blobs
    ) as run:
        run.use_artifact(ref("policy:v2"))
        path = surgery.root / "arm.bin"
        path.write_text("arm")
        artifact = lineage.Artifact("arm", type="controller")
        artifact.add_file(path)
        arm = run.log_artifact(artifact).ref
    found = surgery.api().view("base:v0", "tree")
    assert found.run_label(run.id) == f"{OTHER}/port"
    assert found.run_label(surgery.runs["dpo-a"]) == "dpo-a"

    dot = parse_dot(render.to_dot(found, collapse=0))
    labels = {(tail, head): lines(attrs["label"]) for tail, head, attrs in dot.edges}
    assert labels[(ref("policy:v0"), ref("policy:v2"))] == ["dpo-a", "dpo"]
    assert labels[(ref("policy:v2"), arm)] == [f"{OTHER}/port", "transfer"]


CLASS_OF = {view.DEAD_END: "dead", view.TRUNCATED: "truncated", view.DELETED: "deleted"}


def test_every_drawn_node_shows_the_state_the_view_gave_it(surgery: Builder) -> None:
    """Exactly one state a node, the view's, whatever the question and its depth."""
    api = surgery.api()
    api.delete("policy:v5")
    api.delete("student:v0")
    asked = [("base:v0", "tree"), ("base:v0", "downstream"), ("policy:v2", "both")]
    asked += [("student:v1", "upstream"), (surgery.runs["dpo-a"], "both")]
    seen: set[str] = set()
    for start, mode in asked:
        for depth in (1, 2, 3, None):
            found = api.view(start, mode, depth)  # type: ignore[arg-type]
            dot = parse_dot(render.to_dot(found, collapse=0))
            for name, got in classes(dot).items():
                state = found.state(name)
                marks = got & set(CLASS_OF.values())
                assert marks == ({CLASS_OF[state]} if state in CLASS_OF else set()), (
                    start,
                    mode,
                    depth,
                    name,
                    state,
                )
                seen.add(state)
    assert seen == set(view.STATES)
