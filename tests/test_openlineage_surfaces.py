"""One time on every surface for OpenLineage's versions and runs (issue 11, issue 10's rule).

A 2024 history, replayed today with ``lineage import`` (the real ``lineage`` executable) into
the store a real ``lineage server`` serves: every surface shows each version as created in
2024, when its event says it was made (``VersionRecord.made_at``), with the stored time
(today) beside it where it shows one; each run started and ended at its events' times. The
CLI through its entry point, GraphQL and a remote client over HTTP, the dashboard in a real
chromium. Ordering, filters and answers as of a time go by the made time (``stored`` is its
own filter field). The file's order stores ``a`` before ``b``, made the other way round, so
an order by the stored time gives another answer; a surface that shows the stored time as
"created" shows 2026 and fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM, CHROMIUM_ARGS
from test_openlineage import graphql, served

from lineage.cli.main import when as local_time
from lineage.openlineage import internal_name, run_id
from lineage.records import VersionRecord
from lineage.remote import RemoteService
from lineage.server.dashboard import artifact_url, run_url, version_url


def as_sent(version: VersionRecord) -> str:
    """How every surface labels a dataset version of this history: its name as sent."""
    return f"{NAMESPACE}/{version.name}:v{version.index}"


LINEAGE = Path(sys.executable).parent / "lineage"
PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/1.0"
NAMESPACE = "s3://lake-surfaces"
JOBS = "airflow-surfaces"
# each run: (job, start, end, inputs, outputs); stored in this order: a before b
RUNS = {
    "load_a": ("2024-06-10T12:00:00Z", "2024-06-10T12:30:00Z", (), ("a",)),
    "load_b": ("2024-01-15T08:00:00Z", "2024-01-15T08:45:00Z", (), ("b",)),
    "train": ("2024-07-01T09:00:00Z", "2024-07-01T10:00:00Z", ("a", "b"), ("features",)),
}
MADE = {
    "a": "2024-06-10T12:00:00Z",
    "b": "2024-01-15T08:00:00Z",
    "features": "2024-07-01T09:00:00Z",
}
TODAY = datetime(2026, 1, 1, tzinfo=UTC).timestamp()  # every stored time is later


def seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def events() -> tuple[list[dict[str, Any]], dict[str, str]]:
    ids = {job: str(uuid.uuid4()) for job in RUNS}
    out = []
    for job, (start, end, inputs, outputs) in RUNS.items():
        for kind, when in (("START", start), ("COMPLETE", end)):
            out.append(
                {
                    "eventType": kind,
                    "eventTime": when,
                    "producer": PRODUCER,
                    "run": {"runId": ids[job]},
                    "job": {"namespace": JOBS, "name": job},
                    "inputs": [{"namespace": NAMESPACE, "name": n} for n in inputs],
                    "outputs": [{"namespace": NAMESPACE, "name": n} for n in outputs],
                }
            )
    return out, {job: run_id(i) for job, i in ids.items()}


@dataclass
class History:
    url: str
    store: str
    blobs: str
    read: str
    project: str  # the datasets' project
    runs: dict[str, str]  # job -> run id
    versions: dict[str, VersionRecord]  # dataset name -> its v0

    def cli(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
        done = subprocess.run(
            [str(LINEAGE), "--store", self.store, "--blobs", self.blobs, *args],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return graphql(self.url, self.read, query, **variables)


@pytest.fixture(scope="module", params=["sqlite", "neo4j"])
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[History]:
    with served(request, tmp_path_factory, "ol-surfaces") as started:
        process, store, blobs, service, _, read = started
        sent, runs = events()
        file = tmp_path_factory.mktemp("ndjson") / "2024.ndjson"
        file.write_text("".join(json.dumps(e) + "\n" for e in sent), encoding="utf-8")
        story = History(process.url, store, blobs, read, internal_name(NAMESPACE), runs, {})
        story.cli("import", str(file))  # a replay, today, of 2024's events
        for name in MADE:
            (story.versions[name],) = service.versions(story.project, internal_name(name))
        yield story


def test_the_store_keeps_both_times(history: History) -> None:
    """What every surface below reads: made in 2024 (the event), stored today."""
    for name, version in history.versions.items():
        assert version.made_at == version.event_at == seconds(MADE[name])
        assert version.created_at > TODAY and version.stored_apart == version.created_at
    # stored a, then b (the file's order); made the other way round
    a, b = history.versions["a"], history.versions["b"]
    assert a.created_at <= b.created_at and a.made_at > b.made_at


def test_find_shows_and_orders_by_the_made_time(history: History) -> None:
    """``find --versions``: the made time, the stored one beside it; ordered by the made
    time (b, a), and by the stored one (a, b) when asked."""
    project, a, b = history.project, history.versions["a"], history.versions["b"]
    features = history.versions["features"]
    lines = history.cli("-p", project, "find", "--versions", "type = dataset").splitlines()
    # listed by their names as sent (lineage.sent), in the made order
    assert [line.split()[0] for line in lines] == [as_sent(b), as_sent(a), as_sent(features)]
    for line, version in zip(lines, (b, a, features), strict=True):
        assert f"{local_time(version.made_at)}  (stored {local_time(version.created_at)})" in line
    by_stored = history.cli(
        "-p", project, "find", "--versions", "type = dataset", "--order-by", "stored"
    )
    assert [line.split()[0] for line in by_stored.splitlines()][:2] == [as_sent(a), as_sent(b)]


def test_find_filters_and_ls_go_by_the_made_time(history: History) -> None:
    """``created`` filters by the made time, ``stored`` by the stored one; ``--json`` says
    both; ``ls --json``: an artifact was created when its first version was made."""
    project, b = history.project, history.versions["b"]
    text = history.cli("-p", project, "find", "--versions", "--json", "created < 2024-06-01")
    assert [(v["ref"], v["created_at"], v["stored_at"]) for v in json.loads(text)] == [
        (b.ref, b.made_at, b.created_at)
    ]
    assert "no versions pass" in history.cli(
        "-p", project, "find", "--versions", "stored < 2025-01-01"
    )
    listed = {x["name"]: x for x in json.loads(history.cli("-p", project, "ls", "--json"))}
    assert listed[b.name]["created_at"] == b.made_at
    assert listed[b.name]["stored_at"] == b.created_at


def test_show_says_created_and_stored(history: History) -> None:
    features = history.versions["features"]
    shown = history.cli("show", features.ref, "--no-files")
    assert (
        f"created      {local_time(features.made_at)} by run {history.runs['train']} "
        "(its OpenLineage event's time)" in shown
    ), shown
    assert f"stored       {local_time(features.created_at)}" in shown
    record = json.loads(history.cli("show", features.ref, "--json", "--no-files"))["version"]
    assert (record["created_at"], record["stored_at"], record["event_at"]) == (
        features.made_at, features.created_at, features.made_at
    )  # fmt: skip


def test_answers_as_of_a_time_go_by_the_made_time(history: History) -> None:
    """As of mid-2024 the versions made by then exist, with the runs that made them (a run
    exists from its first event's time): stored today, they would not."""
    a, b, features = (history.versions[n] for n in ("a", "b", "features"))
    then = history.cli("show", f"{a.ref}@2024-06-11", "--no-files").splitlines()
    assert then[0].startswith(as_sent(a)) and then[1].split() == ["ref", a.ref]
    then = history.cli("lineage", features.ref, "--as-of", "2024-07-02", "--json")
    assert {a.id, b.id, features.id, history.runs["train"]} <= {
        n["id"] for n in json.loads(then)["nodes"]
    }
    early = history.cli("lineage", b.ref, "--down", "--as-of", "2024-02-01", "--json")
    assert {n["id"] for n in json.loads(early)["nodes"]} == {b.id}  # train ran in July


def test_runs_keep_their_events_times_and_the_export_says_both(history: History) -> None:
    features = history.versions["features"]
    run = history.cli("run", history.runs["train"])
    assert f"started      {local_time(seconds('2024-07-01T09:00:00Z'))}" in run, run
    assert f"{local_time(seconds('2024-07-01T10:00:00Z'))} (3600.0 s)" in run, run
    out = Path(history.blobs).parent / "lineage.ndjson"
    history.cli("export", "--lineage", features.ref, "-o", str(out))
    nodes = [json.loads(x) for x in out.read_text().splitlines()]
    node = next(n for n in nodes if n.get("id") == features.id)
    assert (node["created_at"], node["stored_at"]) == (features.made_at, features.created_at)


def test_a_version_made_after_the_time_asked_is_not_there_yet(history: History) -> None:
    """As of 2024-06-01, a:v0 (made 06-10, stored today) did not exist: refused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    done = subprocess.run(
        [str(LINEAGE), "--store", history.store, "--blobs", history.blobs,
         "show", f"{history.versions['a'].ref}@2024-06-01"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "a:v0" not in done.stdout, done.stdout


def test_graphql_and_a_remote_client_answer_the_made_time(history: History) -> None:
    a, b, features = (history.versions[n] for n in ("a", "b", "features"))

    def at(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    data = history.graphql(
        """query($ref: String!, $p: String!, $b: String!) {
          version: artifactVersion(ref: $ref) {
            createdAt storedAt eventTime createdBy { startedAt finishedAt } }
          then: artifactVersion(ref: $ref, asOf: "2024-07-02T00:00:00Z") { ref }
          artifact(project: $p, name: $b) { createdAt storedAt }
          made: versions(project: $p, orderBy: "created") { nodes { ref createdAt } }
          early: versions(project: $p, filter: "created < 2024-06-01") { nodes { ref } }
          stored: versions(project: $p, filter: "stored < 2025-01-01") { totalCount }
        }""",
        ref=features.ref,
        p=history.project,
        b=b.name,
    )
    version = data["version"]
    assert at(version["createdAt"]) == at(version["eventTime"]) == features.made_at
    # (an ISO time holds microseconds: a stored time read back is within one of it)
    assert at(version["storedAt"]) == pytest.approx(features.created_at, abs=1e-5)
    assert features.created_at > TODAY
    assert at(version["createdBy"]["startedAt"]) == seconds("2024-07-01T09:00:00Z")
    assert at(version["createdBy"]["finishedAt"]) == seconds("2024-07-01T10:00:00Z")
    assert data["then"]["ref"] == features.ref
    assert at(data["artifact"]["createdAt"]) == b.made_at
    assert at(data["artifact"]["storedAt"]) == pytest.approx(b.created_at, abs=1e-5)
    assert [n["ref"] for n in data["made"]["nodes"]] == [b.ref, a.ref, features.ref]
    assert [at(n["createdAt"]) for n in data["made"]["nodes"]] == [
        b.made_at, a.made_at, features.made_at
    ]  # fmt: skip
    assert [n["ref"] for n in data["early"]["nodes"]] == [b.ref]
    assert data["stored"]["totalCount"] == 0
    # a remote client's records are the store's: stored as created_at, the event's time
    remote = RemoteService(history.url, token=history.read)
    try:
        got = remote.resolve(features.ref)
        assert got.created_at == pytest.approx(features.created_at, abs=1e-5)
        assert got.event_at == got.made_at == features.made_at
        stored = remote.get_artifact(history.project, a.name).created_at
        assert stored == pytest.approx(a.created_at, abs=1e-5)
    finally:
        remote.close()


def test_the_dashboard_shows_the_made_time_and_the_stored_beside_it(history: History) -> None:
    """In chromium: the index, artifact, version, search and run pages."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium"
    a, b, features = (history.versions[n] for n in ("a", "b", "features"))

    def iso(at: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))  # as the pages write it

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                timezone_id="UTC", extra_http_headers={"Authorization": f"Bearer {history.read}"}
            )

            def made_and_stored(row: Any, version: VersionRecord) -> None:
                expect(row.locator(".made time")).to_have_attribute(
                    "datetime", iso(version.made_at)
                )
                expect(row.locator(".stored time")).to_have_attribute(
                    "datetime", iso(version.created_at)
                )

            page.goto(history.url + "/")
            row = page.locator("tr", has=page.locator(f'a.artifact:text-is("{features.name}")'))
            made_and_stored(row, features)

            page.goto(history.url + artifact_url(b.project, b.name))
            header = page.locator("p.artifact-created")
            expect(header.locator(".made time")).to_have_attribute("datetime", iso(b.made_at))
            expect(header.locator(".stored time")).to_have_attribute("datetime", iso(b.created_at))
            made_and_stored(page.locator("table.versions tr").nth(1), b)

            page.goto(history.url + version_url(a))
            expect(page.locator("dd.made time").first).to_have_attribute("datetime", iso(a.made_at))
            expect(page.locator("dd.stored time")).to_have_attribute("datetime", iso(a.created_at))

            page.goto(history.url + "/search?q=" + features.ref)
            made_and_stored(page.locator("table.versions tr").nth(1), features)

            page.goto(history.url + run_url(history.runs["train"]))
            facts = page.locator("dl.facts")
            expect(facts.locator("dt:text-is('started') + dd time")).to_have_attribute(
                "datetime", "2024-07-01T09:00:00Z"
            )
            expect(facts.locator("dt:text-is('finished') + dd time")).to_have_attribute(
                "datetime", "2024-07-01T10:00:00Z"
            )
            expect(page.locator("body")).not_to_contain_text("2026-")
        finally:
            browser.close()
