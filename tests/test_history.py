"""As of a past time, on both stores, against an oracle that replays the same generated
operations with the times they happened: alias targets (``REF@TIME``), lineage node sets
(networkx on the edges that existed then) and the states of runs and versions then."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage.errors import NotFound
from lineage.history import LookupsThen, alias_events
from lineage.moments import parse_time
from lineage.names import parse_ref
from lineage.server.app import open_service
from lineage.service import Service
from lineage.storage.graph import NewVersion
from lineage.view import classify

ARTIFACTS = ("data", "model")
ALIASES = ("latest", "prod", "best")


@dataclass
class Oracle:
    """The history as replayed: each fact with the time window of the call that made it."""

    runs: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # start, end
    versions: dict[str, float] = field(default_factory=dict)  # created
    deleted: dict[str, float] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    moves: list[tuple[float, str, str, str | None]] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)  # times between two calls

    def alias(self, artifact: str, alias: str, at: float) -> str | None:
        prefix = f"p/{artifact}:"
        if alias == "latest":
            live = [
                v
                for v, t in self.versions.items()
                if v.startswith(prefix) and t <= at and self.deleted.get(v, at + 1) > at
            ]
            return max(live, key=lambda v: int(v.rpartition(":v")[2])) if live else None
        timeline = sorted(
            [(t, "move", art, name, target) for t, art, name, target in self.moves]
            + [(t, "delete", "", "", v) for v, t in self.deleted.items()]
        )
        held = None
        for t, kind, art, name, target in timeline:
            if t > at:
                break
            if kind == "move" and (art, name) == (artifact, alias):
                held = target
            elif kind == "delete" and target == held:
                held = None
        return held

    def graph(self, at: float) -> nx.DiGraph:
        g = nx.DiGraph()
        alive = {r for r, (s, _) in self.runs.items() if s <= at}
        alive |= {v for v, t in self.versions.items() if t <= at}
        g.add_nodes_from(alive)
        g.add_edges_from((a, b) for a, b in self.edges if a in alive and b in alive)
        return g


def _history(service: Service, seed: int) -> Oracle:
    rng = random.Random(seed)
    oracle = Oracle()
    running: list[str] = []
    digests = iter(range(1, 10_000))

    def live() -> list[str]:
        return [v for v in oracle.versions if v not in oracle.deleted]

    for _ in range(26):
        time.sleep(0.004)
        oracle.gaps.append(time.time())
        time.sleep(0.004)
        pick = rng.random()
        if pick < 0.45 or not live():
            run = service.start_run(project="p", job_type="step")
            oracle.runs[run.id] = (run.started_at, None)
            for source in rng.sample(live(), min(len(live()), rng.randrange(3))):
                service.use(run.id, source)
                oracle.edges.append((source, run.id))
            artifact = rng.choice(ARTIFACTS)
            version, _ = service.graph.commit_version(
                NewVersion(project="p", name=artifact, type="thing", digest=f"{next(digests):064x}",
                           size=1, file_count=1, run_id=run.id, at=time.time())
            )  # fmt: skip
            oracle.versions[version.id] = version.created_at
            oracle.edges.append((run.id, version.id))
            running.append(run.id)
        elif pick < 0.65 and running:
            run_id = running.pop(rng.randrange(len(running)))
            ended = service.finish_run(run_id)
            oracle.runs[run_id] = (oracle.runs[run_id][0], ended.finished_at)
        elif pick < 0.85:
            target = rng.choice(live())
            alias = rng.choice(ALIASES[1:])
            name = parse_ref(target).name
            before = alias_events(service.graph, "p", name, alias)
            service.set_alias(target, alias)
            moved = alias_events(service.graph, "p", name, alias)
            if len(moved) > len(before):  # no event when it held that version already
                oracle.moves.append((moved[-1].at, name, alias, target))
        else:
            target = rng.choice(live())
            service.delete_version(target, force=True)
            event = service.graph.events("p", target_prefix=target)[-1]
            oracle.deleted[target] = event.at
    time.sleep(0.004)
    oracle.gaps.append(time.time())
    return oracle


@pytest.fixture
def replayed(backend) -> Iterator[tuple[Service, Oracle]]:  # type: ignore[no-untyped-def]
    service = open_service(backend.store, backend.blobs)
    yield service, _history(service, seed=7)
    service.graph.close()


@pytest.mark.neo4j
def test_answers_as_of_random_past_times_match_the_replay(replayed) -> None:  # type: ignore[no-untyped-def]
    service, oracle = replayed
    sqlite = type(service.graph).__name__.startswith("SQLite")
    checked = {"aliases": 0, "lineage": 0}

    @settings(
        max_examples=40 if sqlite else 15,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.sampled_from(oracle.gaps), st.data())
    def check(at: float, data: st.DataObject) -> None:
        for artifact in ARTIFACTS:
            for alias in ALIASES:
                want = oracle.alias(artifact, alias, at)
                try:
                    got = service.resolve(f"p/{artifact}:{alias}@{at!r}").id
                except NotFound:
                    got = None
                assert got == want, (artifact, alias, at)
                checked["aliases"] += want is not None
        g = oracle.graph(at)
        versions = [n for n in g if ":" in n]
        if not versions:
            return
        root = data.draw(st.sampled_from(sorted(versions)))
        direction = data.draw(st.sampled_from(["upstream", "downstream"]))
        answer = service.lineage(f"{root}@{at!r}", direction, None)
        near = nx.ancestors(g, root) if direction == "upstream" else nx.descendants(g, root)
        assert {n.id for n in answer.nodes} == near | {root}
        if direction == "downstream":
            assert service.impact(f"{root}@{at!r}").ids == near | {root}
        assert {(e.source, e.target) for e in answer.edges} == set(g.subgraph(near | {root}).edges)
        for node in answer.nodes:
            if node.run is not None:
                end = oracle.runs[node.id][1]
                assert node.run.state == ("running" if end is None or end > at else "finished")
            else:
                assert node.version is not None
                gone = oracle.deleted.get(node.id, at + 1) <= at
                assert node.version.state == ("deleted" if gone else "committed")
        # dead ends then: versions nothing had consumed by then (consumers came later)
        view = classify(answer, store=LookupsThen(service, at), mode=direction, depth=None)
        for node in answer.nodes:
            if node.version is not None and node.version.state == "committed":
                dead = not any(":" not in n for n in g.successors(node.id))
                assert (view.state(node.id) == "dead_end") == dead, (node.id, at)
        checked["lineage"] += 1

    check()
    assert checked["aliases"] > 10 and checked["lineage"] > 5


def test_times_and_refs_at_a_time() -> None:
    now = 1_800_000_000.0
    assert parse_time("2 days ago", now=now) == now - 2 * 86400
    assert parse_time("90 minutes ago", now=now) == now - 5400
    assert parse_time("2027-01-15T08:00:00Z") == now
    assert parse_time("2027-01-15T09:00:00+01:00") == now
    ref = parse_ref("surgery/policy:production@2027-01-15T08:00")
    assert (str(ref), ref.as_of) == ("surgery/policy:production", now)
    with pytest.raises(Exception, match="invalid time 'last tuesday'"):
        parse_ref("p/policy:production@last tuesday")
