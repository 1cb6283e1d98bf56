"""OpenLineage in: the real openlineage-python client (its HttpTransport, API-key auth) against
a real ``lineage server`` on loopback, over both graph stores; answers checked against a
networkx oracle built from the events sent."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import networkx as nx
import pytest
import requests
from click.testing import CliRunner
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import (
    column_lineage_dataset,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    parent_run,
    schema_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from ports import free_port
from server_process import ServerProcess

import lineage
from lineage.cli import cli
from lineage.openlineage import internal_name, run_id
from lineage.server.app import open_service
from lineage.server.auth import create_token, revoke_token, token_id
from lineage.server.dashboard import run_url, version_url
from lineage.service import Service

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/1.0"


@dataclass
class Server:
    url: str
    store: str
    blobs: str
    token: str
    read: str
    service: Service  # the same stores, opened by the test to look at what was stored
    transport: HttpTransport

    def emit(self, event: RunEvent) -> None:
        self.transport.emit(event)

    def post(self, path: str, body: Any, token: str | None = "write") -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {self.token}"}
        return httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return graphql(self.url, self.read, query, **variables)


def graphql(url: str, token: str, query: str, **variables: Any) -> dict[str, Any]:
    """The data of a GraphQL query to the server at ``url`` (asserting it had no errors)."""
    answer = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ).json()
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


@contextmanager
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> Iterator[tuple[ServerProcess, str, str, Service, str, str]]:
    """A running ``lineage server`` over a fresh store of the kind ``request.param`` names
    (Neo4j wiped), with a write and a read token: ``(process, store, blobs, service, write
    token, read token)``."""
    home = tmp_path_factory.mktemp(f"{prefix}-{request.param}")
    blobs = str(home / "blobs")
    if request.param == "sqlite":
        store = str(home / "store")
    else:
        neo = request.getfixturevalue("neo4j_server")
        neo.wipe()
        store = neo.uri
    service = open_service(store, blobs)
    token = create_token(service, "write", "openlineage emitter")
    read = create_token(service, "read", "reader")
    process = ServerProcess(store, blobs, port=free_port(), log=home / "puts.log")
    process.start()
    try:
        yield process, store, blobs, service, token, read
    finally:
        process.stop()
        service.graph.close()


@pytest.fixture(scope="module", params=["sqlite", "neo4j"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with served(request, tmp_path_factory, "ol") as (process, store, blobs, service, token, read):
        transport = HttpTransport(
            HttpConfig(url=process.url, auth=ApiKeyTokenProvider({"apiKey": token}), timeout=30)
        )
        try:
            yield Server(process.url, store, blobs, token, read, service, transport)
        finally:
            transport.close()


def at(seconds: int) -> str:
    return f"2024-05-01T10:{seconds // 60:02d}:{seconds % 60:02d}.000Z"


def schema(*names: str) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type="STRING") for n in names]
    )


def event(
    kind: RunState,
    when: str,
    run: str,
    namespace: str,
    name: str,
    *,
    inputs: list[InputDataset] | None = None,
    outputs: list[OutputDataset] | None = None,
    parent: tuple[str, str, str] | None = None,
    job_facets: dict[str, Any] | None = None,
    run_facets: dict[str, Any] | None = None,
) -> RunEvent:
    facets = dict(run_facets or {})
    if parent is not None:
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent[0]),
            job=parent_run.Job(namespace=parent[1], name=parent[2]),
        )
    return RunEvent(
        eventType=kind,
        eventTime=when,
        run=Run(runId=run, facets=facets),
        job=Job(namespace=namespace, name=name, facets=job_facets or {}),
        producer=PRODUCER,
        inputs=inputs or [],
        outputs=outputs or [],
    )


def _raw(e: RunEvent) -> dict[str, Any]:
    """An event as the client would send it, as plain JSON."""
    out: dict[str, Any] = json.loads(Serde.to_json(e))
    return out


def now(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def snapshot(service: Service) -> tuple[Any, ...]:
    """Everything stored: runs, versions with their metadata, edges."""
    runs = sorted((r.id, r.state, r.started_at, r.finished_at, r.parent) for r in service.runs())
    versions = sorted(
        (v.id, v.digest, repr(v.metadata))
        for a in service.artifacts()
        for v in service.versions(a.project, a.name, include_deleted=True)
    )
    ids = [r[0] for r in runs] + [v[0] for v in versions]
    edges = sorted((e.source, e.target, e.kind) for e in service.graph.expand(ids, "down"))
    return runs, versions, edges


def dataset_id(service: Service, namespace: str, name: str, index: int = 0) -> str:
    return f"{internal_name(namespace)}/{internal_name(name)}:v{index}"


def test_airflow_dag_with_spark_task(server: Server) -> None:
    """An Airflow DAG run with two tasks, the second a Spark job, with parent, job type,
    schema and column-lineage facets: states, names, facets, parent and children, and the
    DAG run's lineage covering its tasks', against networkx."""
    tag = uuid.uuid4().hex[:6]
    ns = f"airflow-{tag}"
    dag, extract, spark = (str(uuid.uuid4()) for _ in range(3))
    dag_job = f"churn_dag_{tag}"
    pg, s3 = f"postgres://db-{tag}:5432", f"s3://lake-{tag}"
    raw = InputDataset(namespace=pg, name="prod.public.events", facets={"schema": schema("a", "b")})
    staged = OutputDataset(
        namespace=s3,
        name="staging/events",
        facets={
            "schema": schema("a", "b"),
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                fields={
                    "a": column_lineage_dataset.Fields(
                        inputFields=[
                            column_lineage_dataset.InputField(
                                namespace=pg, name="prod.public.events", field="a"
                            )
                        ]
                    )
                }
            ),
        },
    )
    staged_in = InputDataset(namespace=s3, name="staging/events")
    features = OutputDataset(namespace=s3, name="features/v1 ✓", facets={"schema": schema("f")})
    spark_type = job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="SPARK", jobType="JOB"
    )
    task = job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="AIRFLOW", jobType="TASK"
    )
    up = (dag, ns, dag_job)
    for e in [
        event(RunState.START, at(0), dag, ns, dag_job),
        event(RunState.START, at(1), extract, ns, f"{dag_job}.extract", inputs=[raw],
              outputs=[staged], parent=up, job_facets={"jobType": task}),
        event(RunState.COMPLETE, at(2), extract, ns, f"{dag_job}.extract", inputs=[raw],
              outputs=[staged], parent=up, job_facets={"jobType": task}),
        event(RunState.START, at(3), spark, "spark://cluster:7077", "features_job.buggy_task🕷",
              inputs=[staged_in], outputs=[features], parent=up,
              job_facets={"jobType": spark_type}),
        event(RunState.COMPLETE, at(4), spark, "spark://cluster:7077", "features_job.buggy_task🕷",
              inputs=[staged_in], outputs=[features], parent=up),
        event(RunState.COMPLETE, at(5), dag, ns, dag_job),
    ]:  # fmt: skip
        server.emit(e)

    service = server.service
    runs = service.get_runs([dag, extract, spark])
    assert {r: runs[r].state for r in runs} == dict.fromkeys([dag, extract, spark], "finished")
    assert runs[spark].name == "features_job.buggy_task🕷"  # verbatim
    assert runs[spark].project == internal_name("spark://cluster:7077") != "spark://cluster:7077"
    assert runs[extract].project == ns  # a valid name is kept as it is
    assert runs[spark].job_type == "job" and runs[extract].job_type == "task"
    assert runs[spark].facets["job"]["namespace"] == "spark://cluster:7077"
    assert runs[spark].facets["job"]["facets"]["jobType"]["integration"] == "SPARK"
    assert runs[extract].parent == dag and runs[dag].parent is None

    # the SDK: parent and children
    api = lineage.Api(store=server.url, token=server.read)
    assert api.parent(spark) is not None and api.parent(spark).id == dag  # type: ignore[union-attr]
    assert [r.id for r in api.children(dag)] == [extract, spark]
    assert api.children(spark) == []

    # versions: a reference each, facets kept, the schema and column lineage on the version
    staged_v = dataset_id(service, s3, "staging/events")
    version = service.resolve(staged_v)
    assert version.type == "dataset" and version.size == 0
    meta = version.metadata["openlineage"]
    assert (meta["namespace"], meta["name"]) == (s3, "staging/events")
    assert [f["name"] for f in meta["facets"]["schema"]["fields"]] == ["a", "b"]
    assert meta["facets"]["columnLineage"]["fields"]["a"]["inputFields"][0]["field"] == "a"
    assert service.count_versions(*staged_v.split(":")[0].split("/")) == 1  # START + COMPLETE
    assert [e.uri for e in service.manifest(version)] == [f"{s3}/staging/events"]

    # GraphQL: parent, children, facets
    data = server.graphql(
        "query($id: ID!) { run(id: $id) { name state facets parent { id } children { id name } } }",
        id=spark,
    )["run"]
    assert data["parent"] == {"id": dag} and data["children"] == []
    assert data["facets"]["job"]["name"] == "features_job.buggy_task🕷"
    kids = server.graphql("query($id: ID!) { run(id: $id) { children { id } } }", id=dag)
    assert [c["id"] for c in kids["run"]["children"]] == [extract, spark]

    # the oracle: the edges the events describe
    raw_v = dataset_id(service, pg, "prod.public.events")
    features_v = dataset_id(service, s3, "features/v1 ✓")
    oracle = nx.DiGraph(
        [(raw_v, extract), (extract, staged_v), (staged_v, spark), (spark, features_v)]
    )
    down = api.lineage(raw_v, "downstream", depth=10)
    assert down.ids == {raw_v, *nx.descendants(oracle, raw_v)}
    up_ = api.lineage(features_v, "upstream", depth=10)
    assert up_.ids == {features_v, *nx.ancestors(oracle, features_v)}
    covered = api.lineage(dag, "both", depth=10)  # the DAG run covers its tasks
    assert covered.ids == {dag, *oracle.nodes}
    assert {(e.source, e.target) for e in covered.edges} == set(oracle.edges)


def test_out_of_order_and_duplicated_delivery(server: Server) -> None:
    tag = uuid.uuid4().hex[:6]
    rid = str(uuid.uuid4())
    ns, s3 = f"spark-{tag}", f"s3://b-{tag}"
    out = OutputDataset(namespace=s3, name="t", facets={"schema": schema("x")})
    start = event(RunState.START, at(10), rid, ns, "job", outputs=[out])
    running = event(RunState.RUNNING, at(20), rid, ns, "job", outputs=[out])
    complete = event(RunState.COMPLETE, at(30), rid, ns, "job", outputs=[out])
    late = event(RunState.RUNNING, at(25), rid, ns, "job", outputs=[out])
    for e in (complete, running, start, late):  # the terminal one first
        server.emit(e)
    run = server.service.get_run(rid)
    assert run.state == "finished"  # never undone by a RUNNING, before or after
    assert run.started_at < run.finished_at  # type: ignore[operator]
    assert run.finished_at - run.started_at == pytest.approx(20)  # type: ignore[operator]
    before = snapshot(server.service)
    for e in (start, complete, late, running, complete):  # again: changes nothing
        server.emit(e)
    assert snapshot(server.service) == before
    assert server.service.count_versions(internal_name(s3), "t") == 1


def test_fail_and_abort(server: Server) -> None:
    tag = uuid.uuid4().hex[:6]
    failed, aborted = str(uuid.uuid4()), str(uuid.uuid4())
    error = error_message_run.ErrorMessageRunFacet(
        message="Table or view not found: wrong_table", programmingLanguage="JAVA"
    )
    server.emit(event(RunState.START, at(0), failed, f"ns-{tag}", "j"))
    server.emit(
        event(RunState.FAIL, at(5), failed, f"ns-{tag}", "j", run_facets={"errorMessage": error})
    )
    server.emit(event(RunState.RUNNING, at(6), failed, f"ns-{tag}", "j"))
    server.emit(event(RunState.START, at(0), aborted, f"ns-{tag}", "k"))
    server.emit(event(RunState.ABORT, at(9), aborted, f"ns-{tag}", "k"))
    runs = server.service.get_runs([failed, aborted])
    assert runs[failed].state == "failed"
    assert runs[failed].error == "Table or view not found: wrong_table"
    assert runs[aborted].state == "aborted" and runs[aborted].error is None
    states = server.graphql(
        "query($a: ID!, $b: ID!) { a: run(id: $a) { state } b: run(id: $b) { state } }",
        a=failed,
        b=aborted,
    )
    assert states == {"a": {"state": "FAILED"}, "b": {"state": "ABORTED"}}


def test_refused_events_store_nothing(server: Server) -> None:
    tag = uuid.uuid4().hex[:6]
    before = snapshot(server.service)
    ok = event(RunState.START, at(0), str(uuid.uuid4()), f"ns-{tag}", "j",
               outputs=[OutputDataset(namespace=f"s3://r-{tag}", name="o")])  # fmt: skip
    # through the real client: the server's 422 is its HTTPError
    too_long = event(RunState.START, at(0), str(uuid.uuid4()), f"ns-{tag}", "j" * 4001)
    with pytest.raises(requests.HTTPError) as refused:
        server.emit(too_long)
    assert refused.value.response.status_code == 422
    assert refused.value.response.json()["error"]["field"] == "job.name"
    raw = _raw(ok)
    cases = [
        ({**raw, "eventType": "FINISHED"}, 422, "eventType"),
        ({**raw, "run": {"runId": 7}}, 422, "run.runId"),
        ({**raw, "eventTime": "yesterday"}, 422, "eventTime"),
        ({**raw, "job": {"namespace": f"ns-{tag}"}}, 422, "job"),
        ({**raw, "outputs": [{"namespace": "s3://x", "name": str(i)} for i in range(101)]},
         422, "inputs"),
        ({**raw, "outputs": [{"namespace": "s3://x", "name": "ok"}, {"namespace": "s3://x"}]},
         422, "outputs[1]"),
    ]  # fmt: skip
    for body_, status, field in cases:
        answer = server.post("/api/v1/lineage", body_)
        assert answer.status_code == status, (field, answer.text)
        assert answer.json()["error"]["field"] == field
    assert server.post("/api/v1/lineage", raw, token=None).status_code == 401
    bad_json = httpx.post(
        f"{server.url}/api/v1/lineage",
        content=b'{"eventType": ',
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    assert snapshot(server.service) == before  # nothing of any of them


def test_a_revoked_token_stores_nothing_at_once(server: Server) -> None:
    """The server keeps the write tokens it has seen valid and looks each up again once a
    group, in the writer's thread: a token revoked since its last event is refused at its
    next one (401), nothing of that event stored, while another token's events, sent at
    the same moment, are stored."""
    tag = uuid.uuid4().hex[:6]
    secret = create_token(server.service, "write", "revoked while in use")

    def send(token: str, i: int) -> httpx.Response:
        raw = _raw(
            event(RunState.START, at(i), str(uuid.uuid4()), f"ns-{tag}", f"j{i}",
                  outputs=[OutputDataset(namespace=f"s3://r-{tag}", name=f"o{i}")])
        )  # fmt: skip
        return httpx.post(
            f"{server.url}/api/v1/lineage",
            json=raw,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    for i in range(3):  # known to the server, and the group writer running
        assert send(secret, i).status_code == 201
    assert revoke_token(server.service, token_id(secret))
    before = snapshot(server.service)
    with ThreadPoolExecutor(8) as pool:  # the two tokens' events in the same groups
        revoked = [pool.submit(send, secret, 10 + i) for i in range(8)]
        valid = [pool.submit(send, server.token, 20 + i) for i in range(8)]
        answers = [f.result() for f in revoked], [f.result() for f in valid]
    for answer in answers[0]:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["message"] == (
            f"token {token_id(secret)} is unknown or revoked"
        )
        assert answer.headers["www-authenticate"] == "Bearer"
    assert [a.status_code for a in answers[1]] == [201] * 8
    after = snapshot(server.service)
    new_runs = {r[0] for r in after[0]} - {r[0] for r in before[0]}
    assert len(new_runs) == 8  # the valid token's, none of the revoked one's
    jobs = {r.name for r in server.service.runs() if r.id in new_runs}
    assert jobs == {f"j{20 + i}" for i in range(8)}
    assert send(secret, 30).status_code == 401  # forgotten: looked up again, still refused


def test_lenient_where_emitters_rely_on_it(server: Server) -> None:
    tag = uuid.uuid4().hex[:6]
    raw = {
        "eventType": "COMPLETE",
        "eventTime": "2024-05-01T10:00:00",  # no time zone: UTC
        "producer": PRODUCER,  # and no schemaURL
        "run": {"runId": f"dag_run_{tag}"},  # not a UUID
        "job": {"namespace": f"ns-{tag}", "name": "j"},
    }
    assert server.post("/api/v1/lineage", raw).status_code == 201
    assert server.post("/api/v1/lineage", raw).status_code == 201
    rid = run_id(f"dag_run_{tag}")
    assert rid == str(
        uuid.uuid5(uuid.UUID("6f1e7f4e-1d3c-4a8e-9a57-0c0b6c1d2e3f"), raw["run"]["runId"])
    )
    run = server.service.get_run(rid)
    assert run.facets["runId"] == f"dag_run_{tag}"
    assert run.started_at == 1714557600.0  # 10:00 UTC
    assert [r.id for r in server.service.runs(f"ns-{tag}")] == [rid]


def test_batch_with_one_bad_item(server: Server) -> None:
    tag = uuid.uuid4().hex[:6]
    ids = [str(uuid.uuid4()) for _ in range(3)]
    items = [_raw(event(RunState.COMPLETE, at(i), ids[i], f"ns-{tag}", f"j{i}")) for i in range(3)]
    items[1]["run"]["runId"] = None
    answer = server.post("/api/v1/lineage/batch", items)
    assert answer.status_code == 207
    body = answer.json()
    assert body["stored"] == 2
    assert [(f["index"], f["field"]) for f in body["failed"]] == [(1, "run.runId")]
    assert set(server.service.get_runs(ids)) == {ids[0], ids[2]}
    assert server.post("/api/v1/lineage/batch", items[:1]).status_code == 200
    assert server.post("/api/v1/lineage/batch", {"not": "a list"}).status_code == 400


def test_sdk_run_consumes_what_an_openlineage_job_wrote(server: Server, tmp_path: Path) -> None:
    """The model's upstream (SDK, GraphQL, its picture) crosses from our run into the
    warehouse job that built its training table, and on to that job's inputs; and a
    dataset the SDK logged as a reference is the node an OpenLineage job reads."""
    tag = uuid.uuid4().hex[:6]
    project = f"churn{tag}"
    features = tmp_path / "features.csv"
    features.write_text("f\n1\n")
    with lineage.init(project=project, job_type="prep", store=server.url, token=server.token) as r:
        art = lineage.Artifact("features", type="dataset")
        art.add_reference(features.as_uri())
        logged = r.log_artifact(art)
    warehouse, pg = str(uuid.uuid4()), f"postgres://wh-{tag}:5432"
    table = f"s3://warehouse-{tag}"
    inputs = [
        InputDataset(namespace=pg, name="crm.customers"),
        InputDataset(namespace="file", name=str(features)),  # what the SDK logged
    ]
    built = OutputDataset(namespace=table, name="train", facets={
        "schema": schema("x", "y"),
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="42"),
    })  # fmt: skip
    for kind, when in ((RunState.START, now(0)), (RunState.COMPLETE, now(1))):
        server.emit(event(kind, when, warehouse, f"dbt-{tag}", "build_train",
                          inputs=inputs, outputs=[built]))  # fmt: skip
    with lineage.init(project=project, job_type="train", store=server.url, token=server.token) as r:
        train = r.use_artifact(f"{table}/train")  # by its location
        model = lineage.Artifact("model", type="model")
        weights = tmp_path / "w.bin"
        weights.write_bytes(b"weights")
        model.add_file(weights)
        made = r.log_artifact(model)
        trainer = r.id
    assert train.metadata["openlineage"]["name"] == "train"
    customers = dataset_id(server.service, pg, "crm.customers")
    oracle = nx.DiGraph(
        [
            (customers, warehouse),
            (logged.ref, warehouse),
            (warehouse, train.ref),
            (train.ref, trainer),
            (trainer, made.ref),
        ]
    )
    for prep in server.service.producers(server.service.resolve(logged.ref)):
        oracle.add_edge(prep.id, logged.ref)
    expected = {made.ref, *nx.ancestors(oracle, made.ref)}
    api = lineage.Api(store=server.url, token=server.read)
    assert api.lineage(made.ref, "upstream", depth=10).ids == expected
    graph = server.graphql(
        "query($ref: String!) { lineage(ref: $ref, direction: UPSTREAM, depth: 10) "
        "{ nodes { id } edges { source target } dot } }",
        ref=made.ref,
    )["lineage"]
    assert {n["id"] for n in graph["nodes"]} == expected
    assert {(e["source"], e["target"]) for e in graph["edges"]} == set(oracle.edges)
    assert "build_train" in graph["dot"] and "crm.customers" in graph["dot"]
    # the README's query from a model back into a warehouse job
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    query = re.search(r"```graphql\n(query ModelToWarehouse.*?)```", readme, re.S)
    assert query is not None
    walked = server.graphql(query.group(1), ref=made.ref)["lineage"]
    jobs = {
        n["run"]["facets"]["job"]["name"]
        for n in walked["nodes"]
        if n["run"] and n["run"]["facets"]
    }
    assert jobs == {"build_train"}
    tables = {
        n["artifactVersion"]["metadata"]["openlineage"]["name"]
        for n in walked["nodes"]
        if n["artifactVersion"] and "openlineage" in n["artifactVersion"]["metadata"]
    }
    assert tables == {"crm.customers", "train"}


def test_names_never_break_a_page_a_ref_or_a_command(server: Server) -> None:
    tag = uuid.uuid4().hex[:6]
    rid = str(uuid.uuid4())
    job = 'dag.<b>"x</b> 🕷'
    hostile = "a/../b?c#d%2F:e"
    server.emit(
        event(RunState.COMPLETE, at(1), rid, f"postgres://h-{tag}:5432", job,
              outputs=[OutputDataset(namespace=f"s3://h-{tag}", name=hostile),
                       OutputDataset(namespace=f"s3://h-{tag}", name="a-..-b-c-d-2F-e")])
    )  # fmt: skip
    service = server.service
    run = service.get_run(rid)
    assert run.name == job
    outputs = service.run_io(rid)[1]
    assert len({v.id for v in outputs}) == 2  # two names, two artifacts, never one
    names = {v.metadata["openlineage"]["name"] for v in outputs}
    assert names == {hostile, "a-..-b-c-d-2F-e"}
    headers = {"Authorization": f"Bearer {server.read}"}
    page = httpx.get(f"{server.url}{run_url(rid)}", headers=headers, timeout=30)
    assert page.status_code == 200
    assert "dag.&lt;b&gt;&#34;x&lt;/b&gt; 🕷" in page.text and "<b>" not in page.text
    assert "OpenLineage facets" in page.text
    for version in outputs:
        page = httpx.get(f"{server.url}{version_url(version)}", headers=headers, timeout=30)
        assert page.status_code == 200 and version.ref in page.text
        shown = CliRunner().invoke(
            cli, ["--store", server.store, "--blobs", server.blobs, "show", version.ref]
        )
        assert shown.exit_code == 0 and version.ref in shown.output, shown.output


def test_dataset_and_job_events(server: Server) -> None:
    tag = uuid.uuid4().hex[:6]
    dataset = {
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": PRODUCER,
        "dataset": {"namespace": f"s3://d-{tag}", "name": "t", "facets": {"schema": {
            "fields": [{"name": "k", "type": "INT"}]}}},
    }  # fmt: skip
    job = {
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": PRODUCER,
        "job": {"namespace": f"ns-{tag}", "name": "static"},
        "inputs": [{"namespace": f"s3://d-{tag}", "name": "t"}],
    }
    answer = server.post("/api/v1/lineage/batch", [dataset, job, dataset])
    assert answer.status_code == 200, answer.text
    version = server.service.resolve(f"{internal_name(f's3://d-{tag}')}/t:latest")
    assert version.index == 0 and version.metadata["openlineage"]["facets"]["schema"]
    assert server.service.count_versions(version.project, "t") == 1  # twice: the same one
    assert server.service.runs(f"ns-{tag}") == []  # a job event makes no run
    nameless = {**dataset, "dataset": {"namespace": f"s3://d-{tag}"}}
    answer = server.post("/api/v1/lineage", nameless)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "dataset"


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_the_sdk_emits_live_events_when_asked(
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from lineage.openlineage import emit

    monkeypatch.setenv("OPENLINEAGE_URL", server.url)
    monkeypatch.setenv("OPENLINEAGE_API_KEY", server.token)
    local = str(tmp_path / "local")
    data = tmp_path / "d.txt"
    data.write_text("x")
    project = f"emit{uuid.uuid4().hex[:6]}"
    with lineage.init(project=project, job_type="prep", store=local) as run:
        art = lineage.Artifact("d", type="dataset")
        art.add_file(data)
        run.log_artifact(art)
        quiet = run.id
    with lineage.init(project=project, job_type="train", store=local, openlineage=True) as run:
        run.use_artifact("d:v0")
        model = lineage.Artifact("m", type="model")
        model.add_file(data, name="w.bin")
        run.log_artifact(model)
        loud = run.id
    assert quiet not in server.service.get_runs([quiet, loud])  # off by default
    there = server.service.get_run(loud)  # the run's own id, via the lineage facet
    assert (there.state, there.job_type, there.project) == ("finished", "train", project)
    inputs, outputs = server.service.run_io(loud)
    assert [v.id for v in inputs] == [f"{project}/d:v0"]
    assert [(v.id, v.type) for v in outputs] == [(f"{project}/m:v0", "model")]

    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    emit._warned.clear()
    with caplog.at_level("WARNING", logger="lineage.openlineage.emit"):
        with lineage.init(project=project, store=local, openlineage=True) as run:
            run.log({"loss": 0.5})
        again = lineage.init(project=project, store=local, openlineage=True)
        again.finish(state="failed", error="boom")
    api = lineage.Api(store=local)
    assert api.run(run.id).state == "finished" and api.run(again.id).state == "failed"
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # said once
