"""The fast constructors in lineage.records build exactly what the dataclass constructors do."""

from __future__ import annotations

import dataclasses

from lineage.records import (
    DERIVED,
    Edge,
    Node,
    RunRecord,
    VersionRecord,
    derived_edge,
    run_node,
    run_record,
    version_node,
    version_record,
)

VERSION = VersionRecord(
    project="p",
    name="model",
    type="model",
    index=3,
    digest="d" * 64,
    size=10,
    file_count=2,
    metadata={"lr": 0.1},
    description="fine-tuned",
    aliases=("best", "latest"),
    created_by="r1",
    created_at=1.5,
    state="deleted",
    event_at=1.25,
)


def test_version_record_is_the_constructors() -> None:
    fields = {f.name: getattr(VERSION, f.name) for f in dataclasses.fields(VersionRecord)}
    fast = version_record(**fields)
    assert fast == VERSION
    assert vars(fast) == vars(VERSION)  # every field present, none extra
    assert fast.id == "p/model:v3"
    assert dataclasses.replace(fast, index=4).id == "p/model:v4"
    assert list(vars(fast)) == [f.name for f in dataclasses.fields(VersionRecord)]


def test_nodes_and_edges_are_the_constructors() -> None:
    run = RunRecord(id="r1", project="p", name="train")
    assert run_node(run) == Node(id="r1", kind="run", run=run)
    assert vars(run_node(run)) == vars(Node(id="r1", kind="run", run=run))
    node = Node(id=VERSION.id, kind="artifact_version", ref=VERSION.id, version=VERSION)
    assert version_node(VERSION.id, VERSION) == node
    assert vars(version_node(VERSION.id, VERSION)) == vars(node)
    edge = Edge(source="a", target="b", kind=DERIVED, run="r1")
    assert derived_edge("a", "b", "r1") == edge
    assert vars(derived_edge("a", "b", "r1")) == vars(edge)
    assert hash(derived_edge("a", "b", "r1")) == hash(edge)
    # fields in declaration order: the instance dicts stay key-sharing
    for fast, cls in ((derived_edge("a", "b", "r"), Edge), (run_node(run), Node)):
        assert list(vars(fast)) == [f.name for f in dataclasses.fields(cls)]


def test_run_record_is_the_constructors() -> None:
    run = RunRecord(
        id="r1", project="p", name="train", job_type="t", state="failed", config={"a": 1},
        summary={"b": 2}, tags=("x",), notes="n", code=None, host="h", pid=3,
        started_at=1.5, finished_at=2.5, error="e",
    )  # fmt: skip
    fast = run_record(**{f.name: getattr(run, f.name) for f in dataclasses.fields(RunRecord)})
    assert fast == run
    assert list(vars(fast)) == [f.name for f in dataclasses.fields(RunRecord)]
    assert vars(fast) == vars(run)
