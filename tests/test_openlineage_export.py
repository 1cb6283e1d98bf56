"""OpenLineage out and back in: ``lineage export --openlineage`` of the demo's history (with an
OpenLineage-born job in it) is valid against the bundled spec, and ``lineage import`` of it
into a fresh store of each kind rebuilds the same graph (networkx)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import networkx as nx
import pytest
from click.testing import CliRunner

from lineage.cli import cli
from lineage.cli.demo import run_demo
from lineage.openlineage import check_event, ingest
from lineage.openlineage.group import ingest_group
from lineage.openlineage.validation import _validator
from lineage.server.app import open_service
from lineage.service import Service

WAREHOUSE_RUN = "dag_run__scheduled__2024-05-01"  # not a UUID: kept as it came


def warehouse_events() -> list[dict[str, Any]]:
    base = {
        "producer": "https://github.com/dbt-labs/dbt-core",
        "run": {"runId": WAREHOUSE_RUN},
        "job": {"namespace": "dbt://analytics", "name": "models.games_clean 🕷"},
        "inputs": [{"namespace": "postgres://wh:5432", "name": "raw.games"}],
        "outputs": [
            {
                "namespace": "s3://lake",
                "name": "clean/games",
                "facets": {"schema": {"fields": [{"name": "win", "type": "BOOLEAN"}]}},
            }
        ],
    }
    return [
        {**base, "eventType": "START", "eventTime": "2024-05-01T00:00:00Z"},
        {**base, "eventType": "FAIL", "eventTime": "2024-05-01T00:05:00Z"},
    ]


def graph_of(service: Service, key: dict[str, str] | None = None) -> nx.DiGraph:
    """Every run and its inputs and outputs, with what lineage knows of them (an imported
    version's metadata beside the ``openlineage`` facets it came with); versions named by
    ``key`` (id -> original ref)."""
    key = key or {}
    g = nx.DiGraph()
    for run in service.runs():
        g.add_node(
            run.id,
            state=run.state,
            name=run.name,
            job_type=run.job_type,
            config=run.config,
            summary=run.summary,
            tags=run.tags,
            notes=run.notes,
            user=run.user,
            host=run.host,
            code=run.code,
            error=run.error,
        )
        inputs, outputs = service.run_io(run.id)
        for v in [*inputs, *outputs]:
            g.add_node(
                key.get(v.id, v.id),
                size=v.size,
                aliases=sorted(v.aliases),
                type=v.type,
                metadata={k: m for k, m in v.metadata.items() if k != "openlineage"},
                description=v.description,
                tags=v.tags,
            )
        for v in inputs:
            g.add_edge(key.get(v.id, v.id), run.id)
        for v in outputs:
            g.add_edge(run.id, key.get(v.id, v.id))
    # the store's filters see the facts too (SQLite's leaves, Neo4j's flattened properties)
    g.graph["runs found"] = {
        f: sorted(r.id for r in service.find_runs(filter=f)) for f in RUN_FILTERS
    }
    g.graph["versions found"] = {
        f: sorted(key.get(v.id, v.id) for v in service.find_versions(filter=f))
        for f in VERSION_FILTERS
    }
    return g


RUN_FILTERS = ["config.features >= 6", "summary.loss > 0", "tag = round3"]
VERSION_FILTERS = ["metadata.stage = 1", "tag = candidate", "size > 100"]


def original_refs(service: Service) -> dict[str, str]:
    """Imported version id -> the ref it had in the exporting store (its ``lineage`` facet)."""
    out = {}
    for artifact in service.artifacts():
        for v in service.versions(artifact.project, artifact.name):
            out[v.id] = v.metadata["openlineage"]["facets"]["lineage"]["ref"]
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nx.DiGraph]:
    work = tmp_path_factory.mktemp("demo")
    result = run_demo(work / "demo", stages=4, serve=False, echo=lambda _: None)
    service = open_service(result.store, result.blobs)
    try:
        for event in warehouse_events():
            ingest(service, check_event(event))
        first = service.runs()[0]
        service.tag(first.id, add=["round3", "keep"])
        service.graph.update_run(first.id, {"notes": "the first stage"})
        service.tag("surgery/policy:v1", add=["candidate"])
        before = graph_of(service)
    finally:
        service.graph.close()
    out = work / "events.ndjson"
    runner = CliRunner()
    answer = runner.invoke(
        cli,
        [
            "--store",
            result.store,
            "--blobs",
            result.blobs,
            "export",
            "--openlineage",
            "-o",
            str(out),
        ],
    )
    assert answer.exit_code == 0, answer.output
    return out, before


def test_export_is_valid_openlineage(exported: tuple[Path, nx.DiGraph]) -> None:
    out, before = exported
    events = [json.loads(line) for line in out.read_text().splitlines()]
    runs = [n for n in before.nodes if "state" in before.nodes[n]]
    ended = [r for r in runs if before.nodes[r]["state"] != "running"]
    assert len(events) == len(runs) + len(ended)  # START, and the end of each ended run
    strict = _validator("RunEvent")
    for event in events:  # strictly, as written (no leniency applied)
        strict.validate(event)
        for facet in event["run"]["facets"].values():
            assert facet["_producer"] and facet["_schemaURL"]
    with pytest.raises(jsonschema.ValidationError):
        strict.validate({**events[0], "eventType": "DONE"})  # the check can fail
    warehouse = [e for e in events if e["run"]["runId"] == WAREHOUSE_RUN]
    assert [e["eventType"] for e in warehouse] == ["START", "FAIL"]
    job = warehouse[0]["job"]
    assert (job["namespace"], job["name"]) == ("dbt://analytics", "models.games_clean 🕷")
    assert [(d["namespace"], d["name"]) for d in warehouse[1]["outputs"]] == [
        ("s3://lake", "clean/games")
    ]
    assert warehouse[1]["inputs"][0]["name"] == "raw.games"


def fresh_store(backend_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty graph store of that backend to import into: a new SQLite folder, or the
    session's Neo4j wiped."""
    if backend_name == "sqlite":
        return str(tmp_path / "fresh")
    neo = request.getfixturevalue("neo4j_server")
    neo.wipe()
    return str(neo.uri)


@pytest.mark.parametrize("backend_name", ["sqlite", "neo4j"])
def test_import_rebuilds_the_same_graph(
    exported: tuple[Path, nx.DiGraph],
    backend_name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    out, before = exported
    store = fresh_store(backend_name, request, tmp_path)
    blobs = str(tmp_path / "blobs")
    runner = CliRunner()
    args = ["--store", store, "--blobs", blobs, "import", str(out)]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    service = open_service(store, blobs)
    try:
        after = graph_of(service, original_refs(service))
        versions = [before.nodes[n] for n in before.nodes if "size" in before.nodes[n]]
        assert any(v["size"] > 0 for v in versions)
        assert any(set(v["aliases"]) - {"latest"} for v in versions)  # base, best, production
        assert any(v["metadata"] for v in versions) and any(v["tags"] for v in versions)
        runs = [before.nodes[n] for n in before.nodes if "config" in before.nodes[n]]
        assert any(r["config"] and r["summary"] and r["code"] for r in runs)
        assert any(r["tags"] and r["notes"] for r in runs)
        assert all(before.graph["runs found"].values())
        assert all(before.graph["versions found"].values())
        # nodes, edges, run facts and versions' (sizes, aliases, metadata, tags too)
        assert nx.utils.graphs_equal(before, after), _differences(before, after)
        assert set(before.edges) == set(after.edges) and len(before.edges) > 40
        # every version comes back under its own ref (same project, name and index)
        refs = original_refs(service)
        assert all(new == old for new, old in refs.items()), refs
        # the facts are the records' own, not kept twice in the facets they came in
        for run in service.runs():
            assert not {"config", "summary", "tags"} & set(run.facets["run"]["lineage"])
        for artifact in service.artifacts():
            for v in service.versions(artifact.project, artifact.name):
                came = v.metadata["openlineage"]["facets"]["lineage"]
                assert "ref" in came and not {"metadata", "tags"} & set(came)
        again = runner.invoke(cli, args)  # a second import changes nothing
        assert again.exit_code == 0, again.output
        assert nx.utils.graphs_equal(graph_of(service, original_refs(service)), after)
        assert sum(service.count_versions(a.project, a.name) for a in service.artifacts()) == len(
            original_refs(service)
        )
    finally:
        service.graph.close()


@pytest.mark.parametrize("backend_name", ["sqlite", "neo4j"])
def test_the_servers_groups_rebuild_the_same_graph(
    exported: tuple[Path, nx.DiGraph],
    backend_name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The export sent to a server's OpenLineage endpoint (its groups, set-based: another
    path than ``lineage import``'s) comes back the same, sizes and aliases too."""
    out, before = exported
    store = fresh_store(backend_name, request, tmp_path)
    events = [check_event(json.loads(line)) for line in out.read_text().splitlines()]
    service = open_service(store, str(tmp_path / "blobs"))
    try:
        for start in range(0, len(events), 8):
            results = ingest_group(service, events[start : start + 8])
            assert not [r for r in results if isinstance(r, Exception)], results
        after = graph_of(service, original_refs(service))
        assert nx.utils.graphs_equal(before, after), _differences(before, after)
    finally:
        service.graph.close()


def _differences(before: nx.DiGraph, after: nx.DiGraph) -> list[Any]:
    """The attributes that differ, node by node: as they were, as they came back."""
    out = []
    for n in before.nodes:
        was, now = before.nodes[n], after.nodes.get(n) or {}
        keys = sorted(k for k in {*was, *now} if was.get(k) != now.get(k))
        if keys:
            out.append((n, {k: (was.get(k), now.get(k)) for k in keys}))
    return out


def test_import_refuses_a_bad_file_and_stores_nothing(tmp_path: Path) -> None:
    good = json.dumps({**warehouse_events()[0], "run": {"runId": str(uuid.uuid4())}})
    bad = tmp_path / "bad.ndjson"
    bad.write_text(good + "\n" + json.dumps({**warehouse_events()[0], "eventType": "X"}) + "\n")
    store = str(tmp_path / "s")
    answer = CliRunner().invoke(cli, ["--store", store, "import", str(bad)])
    assert answer.exit_code == 2
    assert "line 2" in answer.output and "eventType" in answer.output
    service = open_service(store, str(tmp_path / "blobs"))
    try:
        assert service.runs() == []
    finally:
        service.graph.close()


def test_a_namespace_as_sent_names_its_project_on_the_command_line(tmp_path: Path) -> None:
    """``-p dbt://analytics`` (the job namespace as the emitter sent it) is the project the
    events went into, the same as its derived name (its one run failed); another namespace
    is another project."""
    events = tmp_path / "events.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in warehouse_events()))
    store = str(tmp_path / "s")
    runner = CliRunner()
    assert runner.invoke(cli, ["--store", store, "import", str(events)]).exit_code == 0
    service = open_service(store, str(tmp_path / "blobs"))
    try:
        (run,) = service.runs()
    finally:
        service.graph.close()
    assert run.project != "dbt://analytics"  # a derived name: the namespace is not a name

    def found(*project: str) -> tuple[int, str]:
        answer = runner.invoke(cli, ["--store", store, *project, "find", "state = failed"])
        return answer.exit_code, answer.output

    by_namespace, by_name = found("-p", "dbt://analytics"), found("-p", run.project)
    assert by_namespace == by_name
    assert by_namespace[0] == 0 and run.id in by_namespace[1]
    other = found("-p", "dbt://analytic")
    assert other[0] == 0 and run.id not in other[1]
    assert "no runs" in other[1]
    # a project given after the command is read the same way
    after = runner.invoke(
        cli, ["--store", store, "find", "-p", "dbt://analytics", "state = failed"]
    )
    assert after.exit_code == 0 and run.id in after.output
    # text that is neither a name nor a URI namespace is still refused, naming the project
    refused = runner.invoke(cli, ["--store", store, "-p", "../analytics", "ls"])
    assert refused.exit_code == 2 and "invalid project '../analytics'" in refused.output
