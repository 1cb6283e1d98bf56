"""The fast constructors in lineage.records build exactly what the dataclass constructors do."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

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


def slots(value: Any) -> dict[str, Any]:
    """Every slot of a slotted record, by name: reading one that was never set raises."""
    assert not hasattr(value, "__dict__")  # nothing beside the fields
    return {name: getattr(value, name) for name in type(value).__slots__}


def test_version_record_is_the_constructors() -> None:
    fields = {f.name: getattr(VERSION, f.name) for f in dataclasses.fields(VersionRecord)}
    fast = version_record(**fields)
    assert type(fast) is VersionRecord
    assert fast == VERSION
    assert slots(fast) == slots(VERSION) == fields  # every field set, none extra
    assert fast.id == "p/model:v3"
    assert dataclasses.replace(fast, index=4).id == "p/model:v4"
    assert pickle.loads(pickle.dumps(fast)) == VERSION


def test_fast_records_stay_frozen() -> None:
    fast = version_record(
        **{f.name: getattr(VERSION, f.name) for f in dataclasses.fields(VersionRecord)}
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.index = 4  # type: ignore[misc]
    edge = derived_edge("a", "b", "r1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        edge.run = "r2"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        version_node(VERSION.id, VERSION).version = None  # type: ignore[misc]
    assert (fast.index, edge.run) == (3, "r1")


def test_nodes_and_edges_are_the_constructors() -> None:
    run = RunRecord(id="r1", project="p", name="train")
    assert run_node(run) == Node(id="r1", kind="run", run=run)
    assert slots(run_node(run)) == slots(Node(id="r1", kind="run", run=run))
    node = Node(id=VERSION.id, kind="artifact_version", ref=VERSION.id, version=VERSION)
    assert version_node(VERSION.id, VERSION) == node
    assert slots(version_node(VERSION.id, VERSION)) == slots(node)
    edge = Edge(source="a", target="b", kind=DERIVED, run="r1")
    assert derived_edge("a", "b", "r1") == edge
    assert slots(derived_edge("a", "b", "r1")) == slots(edge)
    assert hash(derived_edge("a", "b", "r1")) == hash(edge)
    assert {derived_edge("a", "b", "r1"), edge} == {edge}
    for fast, cls in ((derived_edge("a", "b", "r"), Edge), (run_node(run), Node)):
        assert type(fast) is cls
        assert list(slots(fast)) == [f.name for f in dataclasses.fields(cls)]
        assert pickle.loads(pickle.dumps(fast)) == fast


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
