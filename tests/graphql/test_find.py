"""GraphQL ``runs(filter:, orderBy:)``, ``versions(...)`` paged with cursors, and the ``tag``
mutation: a write token's actor on the run and in the event log, a read token refused."""

from __future__ import annotations

import pytest
from serving import Server

from lineage.records import Edge, Event, RunRecord, VersionRecord
from lineage.service import Service

pytestmark = pytest.mark.anyio

RUNS = """
query($f: String, $o: String, $after: String) {
  runs(project: "p", filter: $f, orderBy: $o, first: 2, after: $after) {
    nodes { id tags user } totalCount pageInfo { hasNextPage endCursor }
  }
}
"""


def _history(service: Service) -> None:
    runs = [
        RunRecord(id=f"r{i}", project="p", name=f"n{i}", job_type="train",
                  config={"lr": lr}, summary={"acc": acc}, started_at=100.0 + i)
        for i, (lr, acc) in enumerate([(1e-5, 0.9), (1e-3, 0.95), (3e-5, 0.7), (2e-5, 0.99),
                                       (5e-5, 0.8)])
    ]  # fmt: skip
    versions = [
        VersionRecord(project="p", name="m", type="model", index=i, digest=f"{i:064x}",
                      size=10 * i, file_count=1, metadata={"epochs": 3 if i % 2 else 5},
                      created_at=200.0 + i)
        for i in range(4)
    ]  # fmt: skip
    service.graph.import_records(runs=runs, versions=versions)


async def test_filter_order_and_pages(server: Server, service: Service) -> None:
    _history(service)
    seen, after = [], None
    while True:
        data = await server.data(
            RUNS, {"f": "config.lr < 1e-4", "o": "-summary.acc", "after": after}
        )
        page = data["runs"]
        seen += [node["id"] for node in page["nodes"]]
        assert page["totalCount"] == 4
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["r3", "r0", "r4", "r2"]  # lr < 1e-4, by accuracy, highest first
    found = await server.data(
        '{ versions(project: "p", filter: "metadata.epochs = 3", orderBy: "-size")'
        " { nodes { ref } } }"
    )
    assert [n["ref"] for n in found["versions"]["nodes"]] == ["p/m:v3", "p/m:v1"]
    # totalCount is the store's count of the filter, not the length of a page
    counted = await server.data(
        '{ a: versions(filter: "metadata.epochs = 3", first: 1) { totalCount nodes { ref } }'
        ' b: versions(project: "p", filter: "size >= 10", first: 1) { totalCount } }'
    )
    assert counted["a"]["totalCount"] == 2 and len(counted["a"]["nodes"]) == 1
    assert counted["b"]["totalCount"] == 3
    bad = await server.error(RUNS, {"f": "config.lr <"})
    assert bad["message"] == "filter: at 12: expected a value after '<', not the end"
    assert bad["extensions"]["code"] == "INVALID_INPUT"


async def test_tag_mutation_records_the_token(
    server: Server, service: Service, tokens: dict[str, str]
) -> None:
    _history(service)
    tag = 'mutation { tag(target: "r1", add: ["round3", "best"]) { run { id tags } } }'
    refused = await server.error(tag, token=tokens["read"])
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert service.get_run("r1").tags == ()
    tagged = await server.data(tag, token=tokens["write"])
    assert tagged["tag"]["run"] == {"id": "r1", "tags": ["round3", "best"]}
    version = await server.data(
        'mutation { tag(target: "p/m:v2", add: ["round3"]) { version { ref tags } } }',
        token=tokens["write"],
    )
    assert version["tag"]["version"] == {"ref": "p/m:v2", "tags": ["round3"]}
    found = await server.data(RUNS, {"f": "tag = round3"})
    assert [n["id"] for n in found["runs"]["nodes"]] == ["r1"]
    token_id = tokens["write"].split("_")[1]
    events = service.graph.events("p")
    assert [(e.target, e.kind, e.actor, e.old, e.new) for e in events] == [
        ("r1", "tags.changed", f"token:{token_id}", [], ["round3", "best"]),
        ("p/m:v2", "tags.changed", f"token:{token_id}", [], ["round3"]),
    ]
    created = await server.data(
        'mutation { createRun(project: "p", jobType: "t") { id user } }', token=tokens["write"]
    )
    assert created["createRun"]["user"] == f"token:{token_id}"


async def test_as_of_arguments(server: Server, service: Service) -> None:
    """``asOf`` on artifactVersion and lineage: the alias where the event log left it then,
    and only what existed then."""
    _history(service)  # versions p/m:v0..v3 created at 200..203
    service.graph.add_edges(
        [Edge(source="r0", target="p/m:v0", kind="produced"),
         Edge(source="p/m:v0", target="r1", kind="consumed_by"),
         Edge(source="r1", target="p/m:v3", kind="produced")]
    )  # fmt: skip
    service.graph.append_events(
        [Event(project="p", target="p/m:v1", kind="alias.moved", at=201.5,
               new={"alias": "production", "version": "v1"}),
         Event(project="p", target="p/m:v3", kind="alias.moved", at=203.5,
               old={"alias": "production", "version": "v1"},
               new={"alias": "production", "version": "v3"})]
    )  # fmt: skip
    service.graph.set_alias("p", "m", "production", 3, None)
    then = "1970-01-01T00:03:22Z"  # 202: after v2's commit, before v3's
    query = "query($at: DateTime) { artifactVersion(ref: $r, asOf: $at) { ref aliases } }"
    query = query.replace("query($at", "query($r: String!, $at")
    old = await server.data(query, {"r": "p/m:production", "at": then})
    assert old["artifactVersion"] == {"ref": "p/m:v1", "aliases": ["production"]}
    latest = await server.data(query, {"r": "p/m:latest", "at": then})
    assert latest["artifactVersion"] == {"ref": "p/m:v2", "aliases": ["latest"]}
    now = await server.data(query, {"r": "p/m:production", "at": None})
    assert now["artifactVersion"]["ref"] == "p/m:v3"
    walk = '{ lineage(ref: "p/m:v0", direction: DOWNSTREAM, asOf: "%s") { nodes { id } } }'
    early = await server.data(walk % then)
    assert {n["id"] for n in early["lineage"]["nodes"]} == {"p/m:v0", "r1"}  # v3 came later
    late = await server.data(walk % "1970-01-01T00:03:24Z")
    assert {n["id"] for n in late["lineage"]["nodes"]} == {"p/m:v0", "r1", "p/m:v3"}
