"""A query over many versions costs a bounded number of store calls, whatever the count."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from serving import Server

from lineage.manifest import Entry, write_manifest
from lineage.service import Service
from lineage.storage.graph import GraphStore

pytestmark = pytest.mark.anyio


class CountingGraph:
    """A GraphStore that counts the calls made to it."""

    def __init__(self, inner: GraphStore) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def _history(service: Service, count: int, start: int = 0) -> None:
    """Versions ``start`` to ``start + count - 1`` of p/model, each made by its own run from
    p/data:v0."""
    if start == 0:
        maker = service.start_run(project="p", job_type="prep")
        data = write_manifest(service.blobs, [])
        service.commit(maker.id, name="data", type="dataset", manifest=data)
    blob = service.blobs.put_bytes(b"weights")
    for index in range(start, start + count):
        run = service.start_run(project="p", job_type="train", config={"i": index})
        service.use(run.id, "p/data:v0")
        manifest = write_manifest(service.blobs, [Entry(path=f"w{index}", size=7, digest=blob)])
        service.commit(run.id, name="model", type="model", manifest=manifest, aliases=[f"a{index}"])
        service.finish_run(run.id)


CONNECTION = """
{ artifact(project: "p", name: "model") {
    versions(first: 500) { totalCount nodes {
      ref aliases
      loggedBy { id name config consumed { ref aliases } }
      createdBy { id }
      usedBy { id }
      artifact { name }
    } }
} }
"""


def _aliased(count: int) -> str:
    fields = " ".join(
        f'v{i}: artifactVersion(ref: "p/model:v{i}") {{ ref aliases loggedBy {{ id name }} }}'
        for i in range(count)
    )
    return "{ " + fields + " }"


async def _calls(
    make_server: Callable[..., Server], service: Service, query: str, **options: Any
) -> Counter[str]:
    counting = CountingGraph(service.graph)
    server = make_server(service=Service(counting, service.blobs), **options)  # type: ignore[arg-type]
    data = await server.data(query)
    assert data
    return counting.calls


async def test_bounded_store_calls(make_server: Callable[..., Server], service: Service) -> None:
    _history(service, 10)
    small = await _calls(make_server, service, CONNECTION)
    _history(service, 90, start=10)  # 100 versions of the same shape
    large = await _calls(make_server, service, CONNECTION)
    assert large == small
    assert sum(large.values()) <= 8, large

    small = await _calls(make_server, service, _aliased(10), max_aliases=200)
    large = await _calls(make_server, service, _aliased(100), max_aliases=200)
    assert large == small
    assert large["get_versions"] == 1 and large["get_runs"] == 1 and large["expand"] == 1, large


async def test_answers_are_right(make_server: Callable[..., Server], service: Service) -> None:
    _history(service, 30)
    server = make_server()
    data = await server.data(CONNECTION)
    nodes = data["artifact"]["versions"]["nodes"]
    assert data["artifact"]["versions"]["totalCount"] == 30 and len(nodes) == 30
    for index, node in enumerate(nodes):
        assert node["ref"] == f"p/model:v{index}"
        assert f"a{index}" in node["aliases"]
        (run,) = node["loggedBy"]
        assert run["config"] == {"i": index} and run["id"] == node["createdBy"]["id"]
        assert run["consumed"] == [{"ref": "p/data:v0", "aliases": ["latest"]}]
        assert node["usedBy"] == [] and node["artifact"]["name"] == "model"


async def test_run_counts_of_many_projects_are_one_store_call(
    make_server: Callable[..., Server], service: Service
) -> None:
    """``totalCount`` of each listed project's runs: one ``count_project_runs`` for them all
    (it was a ``count_runs`` a project); a filter of its own is counted apart, and right."""
    for project, runs in (("a", 3), ("b", 1), ("c", 0), ("d", 5)):
        for i in range(runs):
            run = service.start_run(project=project, job_type="train" if i else "prep")
            if project == "c" or runs == 0:
                continue
            service.finish_run(run.id)
    service.start_run(project="c", job_type="prep")  # a project with a running run
    query = """{ projects { name all: runs(first: 1) { totalCount }
                 trained: runs(jobType: "train", first: 1) { totalCount } } }"""
    counting = CountingGraph(service.graph)
    server = make_server(service=Service(counting, service.blobs))  # type: ignore[arg-type]
    for _ in range(2):  # the second time, a query text the server has seen before
        counting.calls.clear()
        data = await server.data(query)
        got = {
            p["name"]: (p["all"]["totalCount"], p["trained"]["totalCount"])
            for p in data["projects"]
        }
        assert got == {"a": (3, 2), "b": (1, 0), "c": (1, 0), "d": (5, 4)}
        assert counting.calls["count_runs"] == 0, counting.calls
        assert counting.calls["count_project_runs"] == 2, counting.calls  # one a filter
    for _ in range(2):
        counting.calls.clear()
        await server.data("{ projects { runs(first: 1) { nodes { id } } } }")
        assert "count_project_runs" not in counting.calls  # not asked for, not counted
