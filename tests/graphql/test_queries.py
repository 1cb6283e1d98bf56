"""Each example query in graphql/queries/ runs against the demo's history, checked by an oracle.

The demo logs a real model-surgery history through the SDK; the oracle is a networkx graph of
the very edges the store holds, and every answer must be what the oracle says it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from helpers import expected_lineage, oracle, snapshot, within
from serving import ROOT, Server

from lineage.cli.demo import DemoResult, run_demo
from lineage.manifest import Entry, write_manifest
from lineage.records import RunRecord
from lineage.service import Service

QUERIES = ROOT / "graphql" / "queries"
pytestmark = pytest.mark.anyio


def _query(name: str) -> str:
    return (QUERIES / f"{name}.graphql").read_text()


def _ids(graph: dict[str, Any]) -> set[str]:
    return {node["id"] for node in graph["nodes"]}


def _edges(graph: dict[str, Any]) -> set[tuple[str, str]]:
    return {(edge["source"], edge["target"]) for edge in graph["edges"]}


def _check_nodes(graph: dict[str, Any]) -> None:
    for node in graph["nodes"]:
        if node["kind"] == "RUN":
            assert node["run"]["id"] == node["id"] and node["ref"] is None
        else:
            assert node["kind"] == "ARTIFACT_VERSION" and node["ref"] == node["id"]


async def _upstream(server: Server, g: nx.DiGraph, demo: DemoResult) -> None:
    seen = {}
    for depth in (20, 2):
        answer = (
            await server.data(
                _query("upstream_lineage"), {"ref": "surgery/policy:production", "depth": depth}
            )
        )["lineage"]
        nodes, edges, truncated = expected_lineage(g, demo.final, 2 * depth, upstream=True)
        assert answer["root"] == demo.final
        assert _ids(answer) == nodes
        assert _edges(answer) == edges
        assert answer["truncated"] is truncated
        _check_nodes(answer)
        for edge in answer["edges"]:
            kind = "PRODUCED" if g.nodes[edge["source"]].get("run") else "CONSUMED_BY"
            assert edge["kind"] == kind
        seen[depth] = answer
    # 20 generations reach back to the base model and the first dataset; 2 do not
    assert {demo.base, "surgery/games:v0"} <= _ids(seen[20]) and not seen[20]["truncated"]
    assert demo.base not in _ids(seen[2]) and seen[2]["truncated"]


async def _tree(server: Server, g: nx.DiGraph, demo: DemoResult) -> None:
    answer = (
        await server.data(_query("finetuning_tree"), {"base": "surgery/policy:base", "depth": 40})
    )["derivationTree"]
    walk = within(g, demo.base, 80, upstream=False)
    versions = {n for n in walk if not g.nodes[n].get("run")}
    derived = {
        (a, b, run)
        for run in walk - versions
        for a in g.predecessors(run)
        for b in g.successors(run)
        if a in walk and b in walk
    }
    assert answer["root"] == demo.base and not answer["truncated"]
    assert _ids(answer) == versions
    assert {(e["source"], e["target"], e["run"]["id"]) for e in answer["edges"]} == derived
    assert all(e["kind"] == "DERIVED" and e["run"]["jobType"] for e in answer["edges"])
    # a tree of fine-tuning stages: models descend from models, with branches and dead ends
    models = {n["id"] for n in answer["nodes"] if n["artifactVersion"]["type"] == "model"}
    tree = nx.DiGraph([(a, b) for a, b, _ in derived if a in models and b in models])
    assert nx.dag_longest_path_length(tree) >= 13
    assert any(tree.out_degree(n) >= 2 for n in tree)
    production = next(n for n in answer["nodes"] if "production" in n["artifactVersion"]["aliases"])
    assert production["id"] == demo.final
    # the states of DESIGN.md: a dead end is a version nothing consumed (the evaluation results)
    dead = {n["id"] for n in answer["nodes"] if n["state"] == "DEAD_END"}
    assert dead == {v for v in versions if g.out_degree(v) == 0}
    assert dead and {n["state"] for n in answer["nodes"]} == {"ALIVE", "DEAD_END"}
    assert all(n["label"] == n["id"].partition("/")[2] for n in answer["nodes"])


async def _impact(server: Server, g: nx.DiGraph, demo: DemoResult) -> None:
    assert demo.bad_dataset is not None
    answer = (await server.data(_query("dataset_impact"), {"dataset": demo.bad_dataset}))["impact"]
    nodes, edges, truncated = expected_lineage(g, demo.bad_dataset, None, upstream=False)
    assert _ids(answer) == nodes and _edges(answer) == edges and not truncated
    _check_nodes(answer)
    hit = [
        n
        for n in answer["nodes"]
        if n["artifactVersion"] and n["artifactVersion"]["type"] == "model"
    ]
    # the noisy data of stage 12 reached exactly the stage-12 models, none in production
    assert hit and all(n["artifactVersion"]["metadata"]["stage"] == 12 for n in hit)
    assert all("production" not in n["artifactVersion"]["aliases"] for n in hit)


async def _path(server: Server, g: nx.DiGraph, demo: DemoResult) -> None:
    expected = (nx.descendants(g, demo.base) & nx.ancestors(g, demo.final)) | {
        demo.base,
        demo.final,
    }
    for source, target in (("surgery/policy:base", demo.final), (demo.final, demo.base)):
        answer = (await server.data(_query("version_path"), {"from": source, "to": target}))["path"]
        assert _ids(answer) == expected
        assert _edges(answer) == {(u, v) for u, v in g.edges if u in expected and v in expected}
        _check_nodes(answer)
        assert nx.is_directed_acyclic_graph(nx.DiGraph(list(_edges(answer))))
    # the noisy dataset and the base model are unrelated: no path either way
    assert demo.bad_dataset is not None
    assert not nx.has_path(g, demo.base, demo.bad_dataset)
    assert not nx.has_path(g, demo.bad_dataset, demo.base)
    answer = await server.data(_query("version_path"), {"from": demo.base, "to": demo.bad_dataset})
    assert answer["path"] is None


async def test_example_queries_on_the_demo(
    workdir: Path, backend: Any, server: Server, service: Service
) -> None:
    demo = run_demo(
        workdir / "demo",
        stages=13,
        store=backend.store,
        blobs=backend.blobs,
        serve=False,
        echo=lambda line: None,
    )
    edges = snapshot(service.graph, service.blobs)["edges"]
    g = oracle([(source, target) for source, target, _ in edges])
    for source, target, kind in edges:
        g.nodes[source if kind == "produced" else target]["run"] = True
    checks = {
        "upstream_lineage": _upstream,
        "finetuning_tree": _tree,
        "dataset_impact": _impact,
        "version_path": _path,
    }
    assert {path.stem for path in QUERIES.glob("*.graphql")} == set(checks)
    for check in checks.values():
        await check(server, g, demo)


async def test_runs_page_through_the_store(server: Server, service: Service) -> None:
    """``runs`` pages are cut by the store at (started_at, id): every run exactly once, in
    order, even with equal start times; ``totalCount`` counts the filtered runs."""
    runs = [
        RunRecord(id=f"r{i:02d}", project="paged", name=f"n{i}",
                  job_type="eval" if i % 3 == 0 else "train", started_at=float(i // 2))
        for i in reversed(range(23))
    ]  # fmt: skip
    service.graph.import_records(runs=runs)
    seen: list[str] = []
    after = None
    while True:
        data = await server.data(
            'query($after: String) { runs(project: "paged", first: 5, after: $after) {'
            " totalCount nodes { id } pageInfo { hasNextPage endCursor } } }",
            {"after": after},
        )
        page = data["runs"]
        assert page["totalCount"] == 23
        seen += [node["id"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"r{i:02d}" for i in range(23)]
    evals = await server.data(
        '{ runs(project: "paged", jobType: "eval", first: 3) { totalCount nodes { id } } }'
    )
    assert evals["runs"]["totalCount"] == 8
    assert [n["id"] for n in evals["runs"]["nodes"]] == ["r00", "r03", "r06"]
    error = await server.error(
        '{ runs(project: "paged", after: "WyJhIl0=") { totalCount } }'  # ["a"]: not a run key
    )
    assert error["extensions"]["code"] == "INVALID_INPUT"


async def test_latest_is_the_newest_live_version(server: Server, service: Service) -> None:
    run = service.start_run(project="lat", job_type="train")
    for i in range(3):
        entry = Entry(path="w.bin", size=1, digest=service.blobs.put_bytes(bytes([i])))
        service.commit(
            run.id, name="m", type="model", manifest=write_manifest(service.blobs, [entry])
        )
    query = '{ artifact(project: "lat", name: "m") { latest { ref } } }'
    assert (await server.data(query))["artifact"]["latest"] == {"ref": "lat/m:v2"}
    service.delete_version("lat/m:v2")
    assert (await server.data(query))["artifact"]["latest"] == {"ref": "lat/m:v1"}
    service.delete_version("lat/m:v1")
    service.delete_version("lat/m:v0", force=True)
    assert (await server.data(query))["artifact"]["latest"] is None


async def test_versions_page_through_the_store(server: Server, service: Service) -> None:
    run = service.start_run(project="vp", job_type="train")
    for i in range(12):
        entry = Entry(path="w.bin", size=1, digest=service.blobs.put_bytes(bytes([i])))
        service.commit(
            run.id, name="m", type="model", manifest=write_manifest(service.blobs, [entry])
        )
    service.delete_version("vp/m:v4")
    query = (
        'query($after: String, $all: Boolean!) { artifact(project: "vp", name: "m") {'
        " versions(first: 5, after: $after, includeDeleted: $all) {"
        " totalCount nodes { ref } pageInfo { hasNextPage endCursor } } } }"
    )
    for include_deleted, total in ((False, 11), (True, 12)):
        seen: list[str] = []
        after = None
        while True:
            data = await server.data(query, {"after": after, "all": include_deleted})
            page = data["artifact"]["versions"]
            assert page["totalCount"] == total
            seen += [node["ref"] for node in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        want = [i for i in range(12) if include_deleted or i != 4]
        assert seen == [f"vp/m:v{i}" for i in want]
    error = await server.error(
        '{ artifact(project: "vp", name: "m") { versions(after: "WyJhIl0=") { totalCount } } }'
    )
    assert error["extensions"]["code"] == "INVALID_INPUT"
