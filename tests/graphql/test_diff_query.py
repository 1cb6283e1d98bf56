"""``diff(a, b)`` over GraphQL: the typed answer and its JSON agree with ``Api.diff``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from serving import Server

import lineage
from lineage.server.app import create_app

pytestmark = pytest.mark.anyio

QUERY = """
query($a: String!, $b: String!) {
  diff(a: $a, b: $b) {
    a { id kind version { ref } run { id jobType } }
    b { id kind version { ref } }
    files {
      changed { path change a { digest size } b { digest size } }
      added { path } removed { path } unchanged pagesRead
    }
    metadata { path keys change a b }
    description { change a b }
    made { aRun bRun jobType { a b } config { path change a b } summary { path a b } code { path } }
    ancestry {
      mergeBases sharedInputs truncated
      chainA { run { id name } consumed produced }
      chainB { run { id name } consumed produced }
      inputs { artifact a { ref } b { ref } }
    }
    unlisted
    json
  }
}
"""


def _history(backend: Any, work: Path) -> tuple[str, str]:
    refs = {}
    for name, data in (("corpus", b"3"), ("corpus", b"4")):
        with lineage.init(
            project="nlp", job_type="prep", store=backend.store, blobs=backend.blobs
        ) as run:
            (work / "f.bin").write_bytes(data)
            art = lineage.Artifact(name, type="dataset")
            art.add_file(work / "f.bin")
            refs[data] = run.log_artifact(art).ref
    made = []
    for data, lr in ((b"3", 0.1), (b"4", 0.2)):
        with lineage.init(
            project="nlp",
            job_type="train",
            config={"opt": {"lr": lr}},
            store=backend.store,
            blobs=backend.blobs,
        ) as run:
            run.use_artifact(refs[data])
            (work / "w.bin").write_bytes(data * 3)
            art = lineage.Artifact(
                "model", type="model", metadata={"lr": lr}, description=f"lr {lr}"
            )
            art.add_file(work / "w.bin")
            made.append(run.log_artifact(art).ref)
            run.log({"loss": lr * 2})
    return made[0], made[1]


async def test_diff_query_matches_the_sdk(server: Server, backend: Any, workdir: Path) -> None:
    a, b = _history(backend, workdir)
    want = lineage.Api(store=backend.store, blobs=backend.blobs).diff(a, b)
    got = (await server.data(QUERY, {"a": a, "b": b}))["diff"]
    assert got["json"] == want.to_json()
    assert got["a"]["version"]["ref"] == a and got["a"]["run"]["jobType"] == "train"
    assert got["files"]["changed"] == [
        {
            "path": "w.bin",
            "change": "CHANGED",
            "a": {"digest": c.a.digest, "size": 3},
            "b": {"digest": c.b.digest, "size": 3},
        }
        for c in want.files.changed  # type: ignore[union-attr]
        if c.a is not None and c.b is not None
    ]
    assert got["made"]["config"] == [{"path": "opt.lr", "change": "CHANGED", "a": 0.1, "b": 0.2}]
    assert got["metadata"] == [
        {"path": "lr", "keys": ["lr"], "change": "CHANGED", "a": 0.1, "b": 0.2}
    ]
    assert got["description"] == {"change": "CHANGED", "a": "lr 0.1", "b": "lr 0.2"}
    assert got["ancestry"]["mergeBases"] == [] and got["unlisted"] == []
    assert got["ancestry"]["inputs"] == [
        {"artifact": "nlp/corpus", "a": [{"ref": "nlp/corpus:v0"}], "b": [{"ref": "nlp/corpus:v1"}]}
    ]
    assert [s["run"]["id"] for s in got["ancestry"]["chainB"]][-1] == got["made"]["bRun"]
    bad = await server.graphql(QUERY, {"a": a, "b": "nlp/model:v7"})
    assert bad["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_diff_query_names_the_versions_whose_files_are_not_compared(
    backend: Any, workdir: Path
) -> None:
    """A server whose blob store lacks the two file lists (a graph copied without its blobs)
    says which versions' files it did not compare, as the dashboard and the CLI say it."""
    a, b = _history(backend, workdir)
    app = create_app(backend.store, str(workdir / "other-blobs"))
    try:
        got = (await Server(app).data(QUERY, {"a": a, "b": b}))["diff"]
    finally:
        app.state.lineage.close()
    assert got["files"] is None
    assert got["unlisted"] == [a, b] == got["json"]["unlisted"]
    assert got["made"]["config"] == [{"path": "opt.lr", "change": "CHANGED", "a": 0.1, "b": 0.2}]
