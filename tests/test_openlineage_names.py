"""Names as sent, on every surface: a warehouse chain that came in through the real
openlineage-python client, and a model an SDK run trained on its last table, read back as
text, ``--json``, a picture (DOT), GraphQL over HTTP and the dashboard's version page. Each
node is labelled with the namespace and name its emitter sent (``s3://lake/clean/orders:v0``,
``airflow://prod/nightly.clean🕷``), never the safe names of its ref; the expected labels
are written out from the events sent, not computed by lineage."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import schema_dataset
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from test_openlineage import served

import lineage
from lineage.cli import cli
from lineage.server.dashboard import artifact_url, version_url

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/1.0"
DERIVED = re.compile(r"--[0-9a-f]{16}")  # what a safe name derived from a sent one ends with


@dataclass
class Chain:
    url: str
    store: str
    blobs: str
    read: str
    model: str  # the SDK's model, by ref
    project: str  # the SDK run's project
    run: str  # the SDK run's name
    tag: str
    clean: str  # the id of the run of nightly.clean🕷
    token: str  # a write token


@pytest.fixture(scope="module", params=["sqlite", "neo4j"])
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    with served(request, tmp_path_factory, "names") as (process, store, blobs, _, token, read):
        tag = uuid.uuid4().hex[:6]
        transport = HttpTransport(
            HttpConfig(url=process.url, auth=ApiKeyTokenProvider({"apiKey": token}), timeout=30)
        )
        schema = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="INT")]
        )

        def job(name: str, source: tuple[str, str], target: tuple[str, str], hour: int) -> str:
            rid = str(uuid.uuid4())
            for kind, minute in ((RunState.START, 0), (RunState.COMPLETE, 30)):
                transport.emit(
                    RunEvent(
                        eventType=kind,
                        eventTime=f"2025-03-01T{hour:02d}:{minute:02d}:00+00:00",
                        producer=PRODUCER,
                        run=Run(runId=rid),
                        job=Job(namespace=f"airflow://prod-{tag}", name=name),
                        inputs=[InputDataset(namespace=source[0], name=source[1])],
                        outputs=[
                            OutputDataset(
                                namespace=target[0], name=target[1], facets={"schema": schema}
                            )
                        ],
                    )
                )
            return rid

        db, lake = f"postgres://db-{tag}:5432", f"s3://lake-{tag}"
        job("nightly.extract", (db, "shop.public.orders"), (lake, "raw/orders"), 1)
        clean = job("nightly.clean🕷", (lake, "raw/orders"), (lake, "clean/orders"), 2)
        transport.close()
        project = f"churn{tag}"
        weights = tmp_path_factory.mktemp("weights") / "w.bin"
        weights.write_bytes(b"weights")
        with lineage.init(project=project, job_type="train", store=store, blobs=blobs) as run:
            run.use_artifact(f"{lake}/clean/orders")  # the dataset, by its storage location
            model = lineage.Artifact("model", type="model")
            model.add_file(weights)
            ref = run.log_artifact(model).ref
            name = run.record.name
        yield Chain(process.url, store, blobs, read, ref, project, name, tag, clean, token)


def upstream_labels(chain: Chain) -> set[str]:
    """The upstream of the model, seen from its project, as the events and the SDK named it."""
    t = chain.tag
    return {
        "model:v0",
        chain.run,
        f"s3://lake-{t}/clean/orders:v0",
        f"airflow://prod-{t}/nightly.clean🕷",
        f"s3://lake-{t}/raw/orders:v0",
        f"airflow://prod-{t}/nightly.extract",
        f"postgres://db-{t}:5432/shop.public.orders:v0",
    }


def command(chain: Chain, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--store", chain.store, "--blobs", chain.blobs, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_text_and_json_label_what_was_sent(chain: Chain) -> None:
    answer = json.loads(command(chain, "lineage", chain.model, "--json"))
    assert {node["label"] for node in answer["nodes"]} == upstream_labels(chain)
    refs = {node["ref"] for node in answer["nodes"] if node["ref"]}
    assert any(DERIVED.search(ref) for ref in refs)  # the refs keep the safe names
    text = command(chain, "lineage", chain.model)
    for label in upstream_labels(chain) - {"model:v0"}:
        assert label in text, (label, text)
    assert not DERIVED.search(text), text


def test_every_label_of_a_dataset_is_a_ref_every_surface_takes(chain: Chain) -> None:
    """Seen from the dataset's own project too, a dataset is labelled whole; each label is a
    ref that ``lineage show``, GraphQL's ``artifactVersion`` and the SDK resolve to the node's
    own ref. The SDK's model and run, in another project, go by their project too."""
    t = chain.tag
    answer = json.loads(
        command(chain, "lineage", f"s3://lake-{t}/clean/orders", "--both", "--json")
    )
    assert {node["label"] for node in answer["nodes"]} == {
        f"s3://lake-{t}/clean/orders:v0",
        f"s3://lake-{t}/raw/orders:v0",
        f"airflow://prod-{t}/nightly.clean🕷",
        f"airflow://prod-{t}/nightly.extract",
        f"postgres://db-{t}:5432/shop.public.orders:v0",
        f"{chain.project}/{chain.run}",
        f"{chain.project}/model:v0",
    }
    api = lineage.Api(store=chain.store, blobs=chain.blobs)
    query = "query($ref: String!) { artifactVersion(ref: $ref) { ref } }"
    for node in answer["nodes"]:
        if node["kind"] != "artifact_version" or "://" not in node["label"]:
            continue
        shown = command(chain, "show", node["label"]).splitlines()
        assert shown[0] == f"{node['label']}  (dataset)", shown  # headed as sent
        assert shown[1].split() == ["ref", node["ref"]], shown  # the ref beside it
        assert api.artifact_version(node["label"]).ref == node["ref"]
        found = httpx.post(
            f"{chain.url}/graphql",
            json={"query": query, "variables": {"ref": node["label"]}},
            headers={"Authorization": f"Bearer {chain.read}"},
            timeout=30,
        ).json()
        assert found == {"data": {"artifactVersion": {"ref": node["ref"]}}}, found
    wrong = CliRunner().invoke(
        cli, ["--store", chain.store, "show", f"s3://lake-{t}/clean/orders:v7"]
    )
    assert wrong.exit_code != 0 and "does not exist" in wrong.output, wrong.output


def test_pictures_graphql_and_the_dashboard_label_what_was_sent(
    chain: Chain, tmp_path: Path
) -> None:
    picture = tmp_path / "up.dot"
    command(chain, "render", chain.model, "-o", str(picture))
    dot = picture.read_text()
    for label in upstream_labels(chain):
        assert label in dot, (label, dot)
    assert not DERIVED.search(dot.split("tooltip")[0])

    query = "query($ref: String!) { lineage(ref: $ref) { nodes { label ref } } }"
    headers = {"Authorization": f"Bearer {chain.read}"}
    answer: dict[str, Any] = httpx.post(
        f"{chain.url}/graphql",
        json={"query": query, "variables": {"ref": chain.model}},
        headers=headers,
        timeout=30,
    ).json()
    assert "errors" not in answer, answer
    nodes = answer["data"]["lineage"]["nodes"]
    assert {node["label"] for node in nodes} == upstream_labels(chain)

    version = lineage.Api(store=chain.store, blobs=chain.blobs).artifact_version(chain.model)
    page = httpx.get(f"{chain.url}{version_url(version)}", headers=headers, timeout=30)
    assert page.status_code == 200
    shown = {html.unescape(text) for text in re.findall(r"<text[^>]*>([^<]*)</text>", page.text)}
    for label in upstream_labels(chain):
        assert label in shown, (label, sorted(shown))
    assert not any(DERIVED.search(text) for text in shown), sorted(shown)


def test_a_run_shows_its_namespace_and_datasets_as_sent(chain: Chain) -> None:
    """``lineage run``: the job's namespace as sent (its project's safe name beside it, for
    -p), each dataset as sent with the ref to type beside it."""
    t = chain.tag
    lines = command(chain, "run", chain.clean).splitlines()
    head, inputs, outputs = lines[0], lines[-2], lines[-1]
    assert head.startswith(f"run nightly.clean🕷 ({chain.clean}) in airflow://prod-{t} (project ")
    assert inputs.split()[:2] == ["inputs", f"s3://lake-{t}/raw/orders:v0"], inputs
    assert outputs.split()[:2] == ["outputs", f"s3://lake-{t}/clean/orders:v0"], outputs
    ref = re.search(r"; ref (\S+)\)", outputs)
    assert ref is not None and DERIVED.search(ref.group(1)), outputs
    shown = command(chain, "show", ref.group(1))  # the ref shown is one to type
    assert f"ref          {ref.group(1)}" in shown


def test_the_dashboard_lists_and_links_what_was_sent(chain: Chain) -> None:
    """The index heads a namespace's project with the namespace as sent (its safe name
    beside it) and lists its datasets by name; a run page links its inputs and outputs by
    their names as sent, each link's title the ref."""
    t = chain.tag
    headers = {"Authorization": f"Bearer {chain.read}"}
    index = httpx.get(f"{chain.url}/", headers=headers, timeout=30).text
    headings = [html.unescape(h) for h in re.findall(r'<h1 class="project">([^<]*)', index)]
    assert f"s3://lake-{t} " in headings and f"airflow://prod-{t} " in headings, headings
    assert f"postgres://db-{t}:5432 " in headings, headings
    names = {html.unescape(a) for a in re.findall(r'class="artifact"[^>]*>([^<]*)</a>', index)}
    assert {"clean/orders", "raw/orders", "shop.public.orders"} <= names, names
    page = httpx.get(f"{chain.url}/runs/{chain.clean}", headers=headers, timeout=30).text
    links = dict(re.findall(r'<a href="/versions/[^"]*" title="([^"]*)">([^<]*)</a>', page))
    assert set(links.values()) == {f"s3://lake-{t}/raw/orders:v0", f"s3://lake-{t}/clean/orders:v0"}
    assert all(DERIVED.search(ref) for ref in links), links  # each titled with its ref
    assert f'<a href="/">airflow://prod-{t}</a> / runs /' in page


def test_a_task_page_names_its_parent_whether_or_not_it_was_recorded(chain: Chain) -> None:
    """A parent run that only a task's parent facet named is shown by its job as sent, not
    linked (no page exists); once the DAG run's own events arrive it is linked, and its page
    lists its tasks."""
    t, dag, task = chain.tag, str(uuid.uuid4()), str(uuid.uuid4())
    write = {"Authorization": f"Bearer {chain.token}"}
    parent = {"run": {"runId": dag}, "job": {"namespace": f"airflow://prod-{t}", "name": "dag🕷"}}
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2025-03-01T05:00:00Z",
        "producer": PRODUCER,
        "run": {"runId": task, "facets": {"parent": {"_producer": PRODUCER, **parent,
                "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json"}}},
        "job": {"namespace": f"airflow://prod-{t}", "name": "dag🕷.task"},
    }  # fmt: skip
    answer = httpx.post(f"{chain.url}/api/v1/lineage", json=event, headers=write, timeout=30)
    assert answer.status_code == 201, answer.text
    read = {"Authorization": f"Bearer {chain.read}"}
    page = httpx.get(f"{chain.url}/runs/{task}", headers=read, timeout=30).text
    shown = html.unescape(re.search(r'<dd class="parent">(.*?)</dd>', page).group(1))  # type: ignore[union-attr]
    assert f"airflow://prod-{t}/dag🕷" in shown and dag in shown and "not recorded" in shown
    assert "href" not in shown  # no link to a page that does not exist
    own = {**event, "run": {"runId": dag}, "job": parent["job"]}
    answer = httpx.post(f"{chain.url}/api/v1/lineage", json=own, headers=write, timeout=30)
    assert answer.status_code == 201, answer.text
    page = httpx.get(f"{chain.url}/runs/{task}", headers=read, timeout=30).text
    shown = html.unescape(re.search(r'<dd class="parent">(.*?)</dd>', page).group(1))  # type: ignore[union-attr]
    assert f'href="/runs/{dag}"' in shown and "not recorded" not in shown
    page = httpx.get(f"{chain.url}/runs/{dag}", headers=read, timeout=30)
    assert page.status_code == 200
    tasks = html.unescape(re.search(r'<dd class="children">(.*?)</dd>', page.text).group(1))  # type: ignore[union-attr]
    assert f'href="/runs/{task}">dag🕷.task</a>' in tasks and "finished" in tasks


def test_lists_name_what_was_sent(chain: Chain) -> None:
    """``ls``, ``runs`` and ``find`` list a dataset and a job by their names as sent."""
    t = chain.tag
    listed = command(chain, "ls", "-p", f"s3://lake-{t}").splitlines()
    assert sorted(line.split()[0] for line in listed) == [
        f"s3://lake-{t}/clean/orders",
        f"s3://lake-{t}/raw/orders",
    ]
    runs = command(chain, "runs", "-p", f"airflow://prod-{t}").splitlines()
    assert {line.split()[1] for line in runs} >= {
        f"airflow://prod-{t}/nightly.clean🕷",
        f"airflow://prod-{t}/nightly.extract",
    }
    found = command(chain, "find", "--versions", "-p", f"s3://lake-{t}", "type = dataset")
    assert sorted(line.split()[0] for line in found.splitlines()) == [
        f"s3://lake-{t}/clean/orders:v0",
        f"s3://lake-{t}/raw/orders:v0",
    ]


def test_search_finds_and_lists_what_was_sent(chain: Chain) -> None:
    """The search page finds a dataset by its name as sent (or its safe one) and lists it
    by that name in its namespace as sent, its ref the link's title; a pasted label as
    sent (``s3://lake/clean/orders:v0``) is the version it names."""
    t = chain.tag
    headers = {"Authorization": f"Bearer {chain.read}"}
    for q in ("clean/orders", "clean-orders"):
        page = httpx.get(f"{chain.url}/search", params={"q": q}, headers=headers, timeout=30)
        assert page.status_code == 200
        table = page.text.partition('<table class="artifacts">')[2].partition("</table>")[0]
        rows = [
            tuple(html.unescape(cell) for cell in row)
            for row in re.findall(
                r'<a class="artifact" href="[^"]*" title="([^"]*)">([^<]*)</a></td>\s*'
                r'<td class="project">([^<]*)</td>',
                table,
            )
        ]
        assert [(name, project) for _, name, project in rows] == [
            ("clean/orders", f"s3://lake-{t}")
        ], (q, table)
        assert DERIVED.search(rows[0][0])  # titled with the safe name, the artifact's key
        assert not DERIVED.search(re.sub(r'(href|title)="[^"]*"', "", table)), table
    label = f"s3://lake-{t}/clean/orders:v0"
    page = httpx.get(f"{chain.url}/search", params={"q": label}, headers=headers, timeout=30)
    versions = page.text.partition('<table class="versions">')[2].partition("</table>")[0]
    assert f">{html.escape(label)}</a>" in versions, versions


def test_the_version_page_captions_and_titles_what_was_sent(chain: Chain) -> None:
    """The pictures' captions and the page's title name a dataset as sent."""
    t = chain.tag
    headers = {"Authorization": f"Bearer {chain.read}"}
    version = lineage.Api(store=chain.store, blobs=chain.blobs).artifact_version(
        f"s3://lake-{t}/raw/orders"
    )
    page = httpx.get(f"{chain.url}{version_url(version)}", headers=headers, timeout=30).text
    captions = [
        html.unescape(c) for c in re.findall(r'<figcaption><span class="text">([^<]*)', page)
    ]
    label = f"s3://lake-{t}/raw/orders:v0"
    assert len(captions) == 2, captions
    assert captions[0].startswith(f"How {label} was made: "), captions
    assert captions[1].startswith(f"Derived from {label}: "), captions
    title = html.unescape(re.search(r"<title>([^<]*)</title>", page).group(1))  # type: ignore[union-attr]
    assert title == f"{label} · lineage", title
    artifact = page.split('<div class="crumbs">')[1].split('href="')[2].split('"')[0]
    page = httpx.get(f"{chain.url}{artifact}", headers=headers, timeout=30).text
    title = html.unescape(re.search(r"<title>([^<]*)</title>", page).group(1))  # type: ignore[union-attr]
    assert title == f"s3://lake-{t}/raw/orders · lineage", title


def test_a_ref_missed_by_its_storage_uri_is_quoted_as_typed(chain: Chain) -> None:
    """A version that is not there, asked for by a dataset's storage URI, is named in the
    error as typed (CLI and GraphQL), never by its safe ref."""
    t = chain.tag
    typed = f"s3://lake-{t}/clean/orders:v9"
    wrong = CliRunner().invoke(cli, ["--store", chain.store, "show", typed])
    assert wrong.exit_code != 0, wrong.output
    assert f"{typed} does not exist" in wrong.output, wrong.output
    assert f"nearest versions of s3://lake-{t}/clean/orders: v0" in wrong.output, wrong.output
    assert not DERIVED.search(wrong.output), wrong.output
    query = "query($ref: String!) { artifactVersion(ref: $ref) { ref } }"
    answer = httpx.post(
        f"{chain.url}/graphql",
        json={"query": query, "variables": {"ref": typed}},
        headers={"Authorization": f"Bearer {chain.read}"},
        timeout=30,
    ).json()
    [error] = answer["errors"]
    assert error["message"].startswith(f"{typed} does not exist"), error
    assert error["extensions"] == {"ref": typed, "code": "NOT_FOUND"}, error
    assert not DERIVED.search(json.dumps(error, ensure_ascii=False)), error
    # as of a time too: URI[:selector]@TIME, or --as-of
    then = CliRunner().invoke(cli, ["--store", chain.store, "show", f"{typed[:-3]}:v0@2020-01-01"])
    assert then.exit_code != 0, then.output
    assert f"{typed[:-3]}:v0 did not exist at 2020-01-01" in then.output, then.output
    for args in ([f"{typed[:-3]}:v0@2030-01-01"], [typed[:-3], "--as-of", "2030-01-01"]):
        shown = command(chain, "show", *args).splitlines()
        assert shown[0] == f"{typed[:-3]}:v0  (dataset)", (args, shown)


def test_the_model_card_lists_the_dataset_it_was_trained_on_as_sent(chain: Chain) -> None:
    """``model-card``'s ``datasets`` names the table the SDK run trained on as its emitter
    sent it, and not the tables upstream of it, which the warehouse jobs read."""
    card = yaml.safe_load(command(chain, "model-card", chain.model).strip("-\n"))
    assert card == {"datasets": [f"s3://lake-{chain.tag}/clean/orders"]}, card


def test_diff_labels_what_was_sent(chain: Chain) -> None:
    """``lineage diff`` (and the dashboard's diff page, which shows the same text) names
    each dataset and job as sent: its sides, merge base, chains and inputs."""
    t = chain.tag
    raw = f"s3://lake-{t}/raw/orders:v0"
    text = command(chain, "diff", chain.model, raw)
    assert text.splitlines()[1].startswith(f"B  {raw}  dataset"), text
    assert f"merge base: {raw}" in text, text
    assert f"{raw} -> s3://lake-{t}/clean/orders:v0" in text, text
    assert not DERIVED.search(text), text
    page = httpx.get(
        f"{chain.url}/diff",
        params={"a": chain.model, "b": raw},
        headers={"Authorization": f"Bearer {chain.read}"},
        timeout=30,
    )
    assert page.status_code == 200
    shown = html.unescape(re.search(r"<pre[^>]*>(.*?)</pre>", page.text, re.S).group(1))  # type: ignore[union-attr]
    assert f"merge base: {raw}" in shown and not DERIVED.search(shown), shown


def test_log_and_confirmations_take_and_name_what_was_sent(chain: Chain) -> None:
    """``lineage log`` takes a dataset's storage URI (the artifact) or its label as sent (a
    version) like every other command, and names the events' targets as typed; ``tag`` and
    ``alias`` confirm with the label as sent."""
    raw = f"s3://lake-{chain.tag}/raw/orders"
    assert command(chain, "tag", f"{raw}:v0", "checked").strip() == f"{raw}:v0: tags checked"
    assert command(chain, "alias", f"{raw}:v0", "golden").strip() == f"golden -> {raw}:v0"
    for typed in (raw, f"{raw}:v0", f"{raw}:golden"):
        lines = command(chain, "log", typed).splitlines()
        assert lines and all(f" {raw}:v0 by " in line for line in lines), (typed, lines)
    assert [line.split()[3] for line in command(chain, "log", f"{raw}:golden").splitlines()] == [
        "alias.moved"
    ]
    version = lineage.Api(store=chain.store, blobs=chain.blobs).artifact_version(f"{raw}:v0")
    headers = {"Authorization": f"Bearer {chain.read}"}
    for url in (version_url(version), artifact_url(version.project, version.name)):
        page = httpx.get(f"{chain.url}{url}", headers=headers, timeout=30).text
        table = page.partition('<table class="events">')[2].partition("</table>")[0]
        labels = [html.unescape(a) for a in re.findall(r'<a href="[^"]*">([^<]*)</a>', table)]
        assert labels == ["raw/orders:v0", "raw/orders:v0"], (url, table)  # alias, tags


def test_the_runs_page_and_compare_name_what_was_sent(chain: Chain) -> None:
    """The runs page offers each project by its name as sent (its safe name the value the
    filter sends); comparing runs shows their projects and inputs as sent."""
    t = chain.tag
    headers = {"Authorization": f"Bearer {chain.read}"}
    page = httpx.get(f"{chain.url}/runs", headers=headers, timeout=30).text
    options = {
        html.unescape(shown): html.unescape(value)
        for value, shown in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', page)
    }
    for namespace in (f"airflow://prod-{t}", f"s3://lake-{t}", f"postgres://db-{t}:5432"):
        assert DERIVED.search(options[namespace]), options  # the value: its safe name
    assert options[chain.project] == chain.project
    filtered = httpx.get(
        f"{chain.url}/runs",
        params={"project": options[f"airflow://prod-{t}"]},
        headers=headers,
        timeout=30,
    )
    assert filtered.status_code == 200 and "nightly.clean🕷" in html.unescape(filtered.text)
    sdk = lineage.Api(store=chain.store, blobs=chain.blobs).service.runs(chain.project)[0]
    page = httpx.get(
        f"{chain.url}/compare", params=[("run", chain.clean), ("run", sdk.id)], headers=headers,
        timeout=30,
    ).text  # fmt: skip
    rows = {
        key: [html.unescape(v) for v in re.findall(r"<td>([^<]*)</td>", cells)]
        for key, cells in re.findall(r'<th class="key">([^<]*)</th>(.*?)</tr>', page, re.S)
    }
    assert rows["project"] == [f"airflow://prod-{t}", chain.project], rows
    assert rows["inputs"] == [f"s3://lake-{t}/raw/orders:v0", f"s3://lake-{t}/clean/orders:v0"]


def test_an_exported_lineage_labels_what_was_sent(chain: Chain, tmp_path: Path) -> None:
    """``export --lineage``'s node lines carry each node's label whole, as sent."""
    out = tmp_path / "up.ndjson"
    command(chain, "export", "--lineage", chain.model, "-o", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    labels = {line["label"] for line in lines if line["type"] == "node"}
    t = chain.tag
    assert labels == {
        f"{chain.project}/model:v0",
        f"{chain.project}/{chain.run}",
        f"s3://lake-{t}/clean/orders:v0",
        f"airflow://prod-{t}/nightly.clean🕷",
        f"s3://lake-{t}/raw/orders:v0",
        f"airflow://prod-{t}/nightly.extract",
        f"postgres://db-{t}:5432/shop.public.orders:v0",
    }, labels
