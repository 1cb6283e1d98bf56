"""``lineage render --diff A B``: both upstreams in one picture, each node coloured by the side
that has it (checked against networkx on the logged edges), the old shared history folded."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.render_diff import SIDE_COLOURS, diff_dot, render_diff
from lineage.view import ask


def history(store: str, blobs: str, work: Path) -> tuple[nx.DiGraph, str, str]:
    g = nx.DiGraph()

    def step(job: str, inputs: list[str], name: str, data: bytes) -> str:
        with lineage.init(project="p", job_type=job, store=store, blobs=blobs) as run:
            for ref in inputs:
                run.use_artifact(ref)
                g.add_edge(ref, run.id)
            (work / "f.bin").write_bytes(data)
            art = lineage.Artifact(name, type="dataset" if job == "prep" else "model")
            art.add_file(work / "f.bin")
            ref = run.log_artifact(art).ref
            g.add_edge(run.id, ref)
            return ref

    corpus = step("prep", [], "corpus", b"c0")
    base = step("train", [corpus], "model", b"m0")
    newer = step("prep", [], "corpus", b"c1")
    labels = step("prep", [], "labels", b"l0")
    a = step("finetune", [base, newer], "model", b"m1")
    b = step("finetune", [base, labels], "model", b"m2")
    return g, a, b


def fills(dot: str) -> dict[str, str]:
    found = re.findall(r'^\t"([^"]+)" \[label=.*?fillcolor="(#[0-9a-f]{6})"', dot, re.M)
    return dict(found)


def test_each_node_is_coloured_by_its_side(tmp_path: Path, workdir: Path) -> None:
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    g, a, b = history(store, blobs, workdir)
    api = lineage.Api(store, blobs, project="p")
    views = ask(api, a, "upstream", 20), ask(api, b, "upstream", 20)
    up_a, up_b = nx.ancestors(g, a) | {a}, nx.ancestors(g, b) | {b}
    want = {n: "shared" if n in up_a and n in up_b else "a" if n in up_a else "b" for n in g}
    colour = {fill: side for side, (fill, _, _) in SIDE_COLOURS.items()}
    got = fills(diff_dot(*views, context=None))
    assert {n: colour[f] for n, f in got.items()} == want
    assert 'label="merge base\\nmodel:v0"' in diff_dot(*views, context=None)
    # no context: what made the base (corpus:v0, its run, the training run) folds away
    folded = diff_dot(*views, context=0)
    behind = nx.ancestors(g, "p/model:v0")
    assert len(behind) == 3 and set(fills(folded)) == set(g) - behind
    assert "earlier shared history\\n1 version, 2 runs" in folded
    svg = render_diff(api, a, b).decode()
    root = ET.fromstring(svg)  # well-formed, with the legend
    assert root.tag.endswith("svg") and "only in A (model:v1)" in svg


def test_cli_render_diff(tmp_path: Path, workdir: Path) -> None:
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    _, a, b = history(store, blobs, workdir)
    args = ["--store", store, "--blobs", blobs, "render", "--diff", a, b, "-o", "x.svg"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    svg = Path("x.svg").read_text()
    assert "only in B (model:v2)" in svg and SIDE_COLOURS["b"][0] in svg
    refused = CliRunner().invoke(cli, [*args[:-2], "--tree", "-o", "y.svg"])
    assert refused.exit_code == 2 and "takes no --down, --tree" in refused.output
    assert not Path("y.svg").exists()
