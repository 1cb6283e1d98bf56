"""OpenLineage input binding by the event's time (issue 11): a version keeps the time its
producing event says, and an input binds to the version made most recently at or before its
event's time, whatever order the events arrive in and however late (a replayed history).
Over a real ``lineage server`` on loopback, both graph stores, one event a request and the
batch endpoint; the bindings checked against an independent computation from the events;
the version page in a real chromium."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM, CHROMIUM_ARGS
from test_openlineage import served

from lineage.cli import cli
from lineage.cli.main import when as local_time
from lineage.openlineage import internal_name, run_id
from lineage.records import VersionRecord
from lineage.server.app import open_service
from lineage.server.dashboard import artifact_url, version_url
from lineage.service import Service

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/1.0"


@dataclass
class Server:
    url: str
    store: str
    blobs: str
    token: str
    read: str
    service: Service

    def send(self, events: list[dict[str, Any]], path: str) -> None:
        """Each event in a request of its own (``single``), or all in one (``batch``)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        bodies: list[Any] = [[*events]] if path == "batch" else events
        url = f"{self.url}/api/v1/lineage" + ("/batch" if path == "batch" else "")
        for body in bodies:
            answer = httpx.post(url, json=body, headers=headers, timeout=60)
            assert answer.status_code in (200, 201), answer.text


@pytest.fixture(scope="module", params=["sqlite", "neo4j"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with served(request, tmp_path_factory, "ol-time") as started:
        process, store, blobs, service, token, read = started
        yield Server(process.url, store, blobs, token, read, service)


def stamp(hour: int, minute: int = 0) -> str:
    return f"2024-05-01T{hour:02d}:{minute:02d}:00Z"


def seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def run_event(
    kind: str, when: str, run: str, job: str, namespace: str, *,
    inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (),
) -> dict[str, Any]:  # fmt: skip
    def dataset(name: str, out: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"namespace": namespace, "name": name}
        if out:
            fields = [{"name": "a", "type": "STRING"}]
            item["facets"] = {"schema": {"_producer": PRODUCER, "fields": fields}}
        return item

    return {
        "eventType": kind,
        "eventTime": when,
        "producer": PRODUCER,
        "run": {"runId": run},
        "job": {"namespace": "airflow", "name": job},
        "inputs": [dataset(n, False) for n in inputs],
        "outputs": [dataset(n, True) for n in outputs],
    }


@dataclass
class History:
    """Producers writing ``table`` and consumers reading it, at the minutes given; the
    events in the order they are delivered: every producer first (shuffled), then every
    consumer (shuffled), each event of a run once or twice."""

    namespace: str
    producers: dict[str, str]  # run id -> its events' time
    consumers: dict[str, str]
    events: list[dict[str, Any]]

    def expected(self) -> dict[str, str | None]:
        """The independent answer: each consumer's producer, the one whose time is the
        latest at or before the consumer's (None: none was, the input is observed)."""
        out: dict[str, str | None] = {}
        for consumer, when in self.consumers.items():
            made = [
                (seconds(t), p) for p, t in self.producers.items() if seconds(t) <= seconds(when)
            ]
            out[consumer] = max(made)[1] if made else None
        return out


def history(rng: random.Random, producers: list[str], consumers: list[str]) -> History:
    """``producers`` and ``consumers``: their times, ``HH:MM``."""
    namespace = f"s3://lake-{uuid.uuid4().hex[:8]}"
    made = {str(uuid.uuid4()): f"2024-05-01T{t}:00Z" for t in producers}
    used = {str(uuid.uuid4()): f"2024-05-01T{t}:00Z" for t in consumers}
    batches: list[list[dict[str, Any]]] = [[], []]
    for i, (runs, role) in enumerate(((made, "outputs"), (used, "inputs"))):
        for run, when in runs.items():
            sets = {role: ("table",)}
            if role == "inputs":
                sets["outputs"] = (f"report_{run[:8]}",)
            for kind in ("START", "COMPLETE"):
                event = run_event(kind, when, run, f"job_{role}", namespace, **sets)
                batches[i].extend([event] * rng.choice([1, 1, 2]))
        rng.shuffle(batches[i])
    return History(namespace, made, used, batches[0] + batches[1])


def bindings(service: Service, history: History) -> dict[str, str | None]:
    """Each consumer's producer as stored: the run that made the version its input is."""
    out: dict[str, str | None] = {}
    by_id = {run_id(p): p for p in history.producers}
    for consumer in history.consumers:
        inputs, _ = service.run_io(run_id(consumer))
        assert len(inputs) == 1, inputs
        made_by = inputs[0].created_by
        out[consumer] = None if made_by is None else by_id[made_by]
    return out


def table_versions(service: Service, namespace: str) -> list[VersionRecord]:
    return service.versions(internal_name(namespace), internal_name("table"))


@pytest.mark.parametrize("path", ["single", "batch"])
def test_an_input_binds_to_the_version_made_at_its_event_time(server: Server, path: str) -> None:
    """Producers at 09:00 and 11:00 stored, then a consumer at 10:00 (and one at 08:00,
    before any): 09:00's version, and an observed one; whatever arrived first."""
    rng = random.Random(11)
    story = history(rng, ["09:00", "11:00"], ["10:00", "08:00", "11:30"])
    server.send(story.events, path)
    found = bindings(server.service, story)
    assert found == story.expected()
    early, late = sorted(story.producers, key=lambda p: story.producers[p])
    ten, eight, half_past = story.consumers
    assert found[ten] == early and found[eight] is None and found[half_past] == late
    versions = table_versions(server.service, story.namespace)
    made = {v.created_by: v for v in versions}
    # each version keeps its producing event's time; it was stored long after (now)
    assert made[run_id(early)].event_at == seconds(stamp(9))
    assert made[run_id(late)].event_at == seconds(stamp(11))
    assert all(v.created_at > seconds(stamp(12)) for v in versions if v.created_by)
    observed = made[None]
    assert observed.event_at == seconds(stamp(8))
    # GraphQL answers the same times (a remote client's records: the same records)
    query = "query($ref: String!) { artifactVersion(ref: $ref) { eventTime createdAt } }"
    for version in versions:
        answer = httpx.post(
            f"{server.url}/graphql",
            json={"query": query, "variables": {"ref": version.ref}},
            headers={"Authorization": f"Bearer {server.read}"},
            timeout=30,
        ).json()
        shown = answer["data"]["artifactVersion"]
        assert datetime.fromisoformat(shown["eventTime"]).timestamp() == version.event_at
    # the observation (08:00) does not take `latest` from the version made at 11:00
    latest = server.service.latest(internal_name(story.namespace), internal_name("table"))
    assert latest is not None and latest.created_by == run_id(late)


@pytest.mark.parametrize("seed", range(2))
def test_random_histories_bind_as_computed(server: Server, seed: int) -> None:
    """Six producers and eight consumers at random minutes, delivered producers first, each
    group shuffled, some events twice; one event a request, and the same history (another
    namespace) in one batch: both as computed from the events."""
    for path in ("single", "batch"):
        rng = random.Random(seed)
        minutes = rng.sample(range(8 * 60, 13 * 60), 14)
        times = [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]
        story = history(rng, times[:6], times[6:])
        server.send(story.events, path)
        assert bindings(server.service, story) == story.expected(), path


def test_a_replayed_import_binds_as_live_delivery(server: Server, tmp_path: Path) -> None:
    """The history delivered live, and the same events in an NDJSON file that `lineage
    import` replays into a fresh store: the same bindings, the same version times."""
    rng = random.Random(5)
    story = history(rng, ["09:00", "10:30", "12:00"], ["08:30", "10:00", "11:00", "12:30"])
    server.send(story.events, "single")
    live = bindings(server.service, story)
    assert live == story.expected()
    file = tmp_path / "day.ndjson"
    file.write_text("".join(json.dumps(e) + "\n" for e in story.events), encoding="utf-8")
    store, blobs = str(tmp_path / "replay"), str(tmp_path / "replay-blobs")
    done = CliRunner().invoke(cli, ["--store", store, "--blobs", blobs, "import", str(file)])
    assert done.exit_code == 0, done.output
    replay = open_service(store, blobs)
    try:
        assert bindings(replay, story) == live
        times = {v.created_by: v.event_at for v in table_versions(replay, story.namespace)}
        assert times == {
            v.created_by: v.event_at for v in table_versions(server.service, story.namespace)
        }
    finally:
        replay.graph.close()


def test_an_earlier_event_arriving_late_moves_a_version_back(server: Server) -> None:
    """A producer's COMPLETE (10:40) stored before its START (10:00), both naming its output:
    the version was made at 10:00; a consumer at 10:20 binds it, one request or a batch."""
    for path in ("single", "batch"):
        namespace = f"s3://late-{uuid.uuid4().hex[:8]}"
        producer, consumer = str(uuid.uuid4()), str(uuid.uuid4())
        events = [
            run_event("COMPLETE", stamp(10, 40), producer, "make", namespace, outputs=("table",)),
            run_event("START", stamp(10), producer, "make", namespace, outputs=("table",)),
            run_event("START", stamp(10, 20), consumer, "use", namespace, inputs=("table",)),
        ]
        server.send(events, path)
        (version,) = table_versions(server.service, namespace)
        assert version.event_at == seconds(stamp(10)), path
        inputs, _ = server.service.run_io(run_id(consumer))
        assert [v.id for v in inputs] == [version.id], path


def test_the_version_page_shows_the_event_time_and_the_name_sent(server: Server) -> None:
    """In chromium: the version page heads with the dataset's name as sent (not the safe name
    of its ref), and says it was created at its event's time (09:00), stored later; the
    artifact page heads with the name as sent too. The export carries the time."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium"
    namespace = f"postgres://db-{uuid.uuid4().hex[:6]}:5432"
    name = "public.orders 🕷/2024"
    producer = str(uuid.uuid4())
    server.send(
        [run_event("COMPLETE", stamp(9), producer, "make", namespace, outputs=(name,))], "single"
    )
    (version,) = server.service.run_io(run_id(producer))[1]
    assert version.name != name  # the ref's safe name is another
    shown = CliRunner().invoke(
        cli, ["--store", server.store, "--blobs", server.blobs, "show", version.ref]
    )
    assert version.event_at == seconds(stamp(9))
    assert shown.exit_code == 0, shown.output
    assert f"created      {local_time(version.event_at)} by run" in shown.output, shown.output
    assert f"stored       {local_time(version.created_at)}" in shown.output, shown.output
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                timezone_id="UTC", extra_http_headers={"Authorization": f"Bearer {server.read}"}
            )
            page.goto(server.url + version_url(version))
            expect(page.locator("h1 .sent-name")).to_have_text(name)
            expect(page.locator("h1 .safe-name")).to_have_text(version.name)  # it differs
            made = page.locator("dd.made time")
            expect(made).to_have_attribute("datetime", "2024-05-01T09:00:00Z")
            expect(page.locator("dd.made")).to_contain_text("OpenLineage event")
            stored = page.locator("dd.stored time").get_attribute("datetime")
            assert stored is not None and stored > "2024-05-02"
            page.goto(server.url + artifact_url(version.project, version.name))
            expect(page.locator("h1 .sent-name")).to_have_text(name)
            expect(page.locator("table.versions time").first).to_have_attribute(
                "datetime", "2024-05-01T09:00:00Z"
            )
        finally:
            browser.close()
    from lineage.openlineage.export import export_events

    exported = [
        e
        for e in export_events(server.service)
        if e["run"]["facets"]["lineage"]["id"] == run_id(producer)
    ]
    facet = exported[0]["outputs"][0]["facets"]["lineage"]
    assert datetime.fromisoformat(facet["eventTime"]) == datetime(2024, 5, 1, 9, tzinfo=UTC)


def test_a_sqlite_store_from_before_event_times_opens_and_keeps_them(tmp_path: Path) -> None:
    """The additive schema change: an older store gains the column (REAL: a time kept as
    text would compare as text), its versions have no event time, new ones keep theirs."""
    import sqlite3

    from lineage.storage.graph import NewVersion
    from lineage.storage.sqlite import SQLiteGraphStore

    path = tmp_path / "old.db"
    store = SQLiteGraphStore(path)

    def commit(digest: str, event_at: float | None) -> VersionRecord:
        new = NewVersion(project="p", name="t", type="dataset", digest=digest, size=0,
                         file_count=1, run_id="r1", at=1.0, event_at=event_at)  # fmt: skip
        return store.commit_version(new)[0]

    commit("a" * 64, None)
    store.close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX versions_made")  # an older store had neither (it names event_at)
    db.execute("ALTER TABLE versions DROP COLUMN event_at")
    db.commit()
    db.close()
    reopened = SQLiteGraphStore(path)
    try:
        (old,) = reopened.list_versions("p", "t")
        assert old.event_at is None and old.made_at == old.created_at
        store = reopened
        new = commit("b" * 64, 1714554000.5)
        assert new.event_at == 1714554000.5 and new.made_at == 1714554000.5
        assert reopened.list_versions("p", "t")[1].event_at == 1714554000.5
        later = reopened.update_version(new.id, {"event_at": 1714550000.0}, [])
        assert later.event_at == 1714550000.0
    finally:
        reopened.close()
    db = sqlite3.connect(path)
    kinds = {row[0] for row in db.execute("SELECT typeof(event_at) FROM versions")}
    # it gained the index of the made time too, which an order by `created` walks
    plan = " ".join(
        str(row[-1])
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM versions "
            "ORDER BY COALESCE(event_at, created_at), id LIMIT 50"
        )
    )
    db.close()
    assert kinds == {"null", "real"}
    assert "versions_made" in plan, plan
