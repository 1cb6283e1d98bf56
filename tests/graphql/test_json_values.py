"""Bug 17 through GraphQL: NaN and infinities logged by ML code come back exactly.

The JSON scalar's values travel as Python's ``json`` (and JSON5) write them: the bare tokens
``NaN``, ``Infinity`` and ``-Infinity``, which standard JSON lacks. Python clients (the SDK's
remote client, ``requests``, ``httpx``) read them back as the same floats; a variable sent
to a mutation may hold them too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving import Server

import lineage
from lineage.service import Service

pytestmark = pytest.mark.anyio

LOGGED = {"lr": np.float32(0.1), "steps": np.int64(10), "loss": float("nan")}
CONFIG = {"loss": math.nan, "lr": 0.10000000149011612, "steps": 10}
SUMMARY = {"best": math.inf, "loss": math.nan, "worst": -math.inf}
QUERY = """query($id: ID!) {
  run(id: $id) { config summary }
  artifactVersion(ref: "p/m:v0") { metadata }
}"""


def same(got: object, want: object) -> bool:
    """Equal, NaN included, with the same number types."""
    return json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True) and [
        type(v)
        for v in got.values()  # type: ignore[attr-defined]
    ] == [type(v) for v in want.values()]  # type: ignore[attr-defined]


async def _post(server: Server, body: dict[str, Any], token: str | None = None) -> str:
    # httpx's json= refuses NaN (allow_nan=False): send the text as Python writes it
    response = await server.request(
        "POST",
        "/graphql",
        token=token,
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return response.text


async def test_nan_and_infinities_come_back_from_queries_and_mutations(
    server: Server, service: Service, tokens: dict[str, str], backend: Any, workdir: Path
) -> None:
    with lineage.init(project="p", config=LOGGED, store=backend.store, blobs=backend.blobs) as run:
        run.log({"loss": np.float64("nan"), "best": math.inf, "worst": np.float32("-inf")})
        Path("w.bin").write_bytes(b"w")
        art = lineage.Artifact("m", type="model", metadata=SUMMARY)
        art.add_file("w.bin")
        run.log_artifact(art)
        run_id = run.id

    text = await _post(server, {"query": QUERY, "variables": {"id": run_id}})
    assert "NaN" in text and "-Infinity" in text and '"Infinity"' not in text
    data = json.loads(text)["data"]
    assert same(data["run"]["config"], CONFIG)
    assert same(data["run"]["summary"], SUMMARY)
    assert same(data["artifactVersion"]["metadata"], SUMMARY)

    # into a mutation's JSON variable and back, and into the store
    started = service.start_run(project="p")
    mutation = "mutation($id: ID!, $s: JSON!) { logSummary(runId: $id, summary: $s) { summary } }"
    text = await _post(
        server,
        {"query": mutation, "variables": {"id": started.id, "s": SUMMARY}},
        token=tokens["write"],
    )
    answer = json.loads(text)
    assert "errors" not in answer, answer
    assert same(answer["data"]["logSummary"]["summary"], SUMMARY)
    assert same(dict(service.get_run(started.id).summary), SUMMARY)
