"""The demo logs a real 20-stage history: check its shape, not its printout."""

from __future__ import annotations

import networkx as nx

import lineage
from lineage.cli.demo import run_demo


def test_demo_history(workdir) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    result = run_demo(workdir / "demo", stages=20, serve=True, echo=lines.append)
    api = lineage.Api(store=result.store, blobs=result.blobs, project="surgery")

    final = api.artifact_version("policy:production")
    assert final.ref == result.final
    # the upstream lineage reaches the base model and the first dataset
    up = api.lineage(result.final, "upstream", depth=40)
    assert result.base in up.ids and "surgery/games:v0" in up.ids and not up.truncated

    # derivation tree: 20 stages deep from the base, with branches and dead ends
    tree = api.tree(result.base, depth=40)
    g = nx.DiGraph((e.source, e.target) for e in tree.edges)
    models = {n.id for n in tree.nodes if n.version and n.version.type == "model"}
    assert nx.dag_longest_path_length(g.subgraph(models)) >= 20
    branching = [n for n in models if sum(1 for c in g.successors(n) if c in models) >= 2]
    assert len(branching) >= 10
    dead = [n for n in models if not any(c in models for c in g.successors(n))]
    assert len(dead) >= 15
    # every model but the freshly operated ones was evaluated: a result hangs off each
    results = {n.id for n in tree.nodes if n.version and n.version.type == "result"}
    operated = {n.id for n in tree.nodes if n.version and n.version.metadata.get("surgery")}
    assert len(operated) == 3
    assert len(results) == len(models) - len(operated)

    # the backtrack: stage 13 continues from a parent that stage 12 had already used
    stage = {
        n.id: n.version.metadata.get("stage") for n in tree.nodes if n.id in models and n.version
    }
    parents = {
        n: next(p for p in g.predecessors(n) if p in models) for n in models if n != result.base
    }
    p12 = {
        parents[n]
        for n in models
        if stage[n] == 12 and not (n in parents and stage.get(parents[n]) == 12)
    }
    p13 = {parents[n] for n in models if stage[n] == 13}
    assert p12 == p13  # same parent: the stage-12 branches were abandoned
    assert any("backtracking" in line for line in lines)
    # the GraphQL query over a real HTTP server gave the SDK's answer; the pictures exist
    assert any("identical to the SDK's answer" in line for line in lines)
    assert (result.out / "tree.svg").read_text().lstrip().startswith("<?xml")

    # impact of the noisy dataset: exactly the stage-12 models and their evaluations
    assert result.bad_dataset is not None
    impact = api.impact(result.bad_dataset)
    hit = {n.id for n in impact.nodes if n.version and n.version.type == "model"}
    assert hit == {n for n in models if stage[n] == 12}
    # the example, `lineage diff policy:production policy:v57`, is one of them
    assert "surgery/policy:v57" in hit
    assert all(n in dead for n in hit)
    # every file is real and verifiable
    final.verify()
    assert {f.path for f in final.files()} == {"weights.json", "config.json"}

    # why production differs from a stage-12 model: they part at the model stage 12 started
    # from, and the noisy dataset is an input on the stage-12 side only
    for model in sorted(hit):
        d = api.diff("policy:production", model)
        assert d.ancestry.merge_bases == (parents[model],)
        b_only = {v.ref for i in d.ancestry.inputs for v in i.b}
        a_only = {v.ref for i in d.ancestry.inputs for v in i.a}
        assert result.bad_dataset in b_only and result.bad_dataset not in a_only
        assert [s.produced for s in d.ancestry.chain_b] == [(model,)]
