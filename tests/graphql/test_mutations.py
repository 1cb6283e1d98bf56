"""Mutations: the remote SDK's flow end to end, and every refusal changing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import snapshot
from serving import Server, manifest_of

from lineage.service import Service

pytestmark = pytest.mark.anyio

CREATE = """
mutation Create($project: String!, $jobType: String, $config: JSON, $tags: [String!]) {
  createRun(project: $project, jobType: $jobType, config: $config, tags: $tags,
            notes: "from the tests", code: {commit: "abc123", dirty: true}, host: "box", pid: 7) {
    id project name jobType state config tags notes host code { commit dirty } startedAt
  }
}
"""
USE = """
mutation Use($run: ID!, $ref: String!) { useArtifact(runId: $run, ref: $ref) { ref } }
"""
COMMIT = """
mutation Commit($run: ID!, $name: String!, $type: String!, $manifest: String!,
                $metadata: JSON, $aliases: [String!]) {
  commitVersion(runId: $run, name: $name, type: $type, manifest: $manifest,
                description: "made remotely", metadata: $metadata, aliases: $aliases) {
    created
    version { ref digest size fileCount metadata description aliases createdBy { id }
              files { nodes { path digest size } } }
  }
}
"""
FINISH = """
mutation Finish($run: ID!, $state: RunState! = FINISHED, $summary: JSON) {
  finishRun(runId: $run, state: $state, summary: $summary) { state summary finishedAt }
}
"""


async def _run(server: Server, token: str, project: str = "remote", **variables: Any) -> str:
    data = await server.data(
        CREATE, {"project": project, "jobType": "train", **variables}, token=token
    )
    run_id: str = data["createRun"]["id"]
    return run_id


async def _commit(
    server: Server, token: str, run: str, name: str, files: dict[str, bytes], **variables: Any
) -> dict[str, Any]:
    digest, blobs = manifest_of(files)
    await server.upload(blobs, token)
    data = await server.data(
        COMMIT,
        {"run": run, "name": name, "type": "model", "manifest": digest, **variables},
        token=token,
    )
    result: dict[str, Any] = data["commitVersion"]
    return result


async def test_remote_sdk_flow(server: Server, tokens: dict[str, str], service: Service) -> None:
    token = tokens["write"]
    created = (
        await server.data(
            CREATE,
            {"project": "remote", "jobType": "prep", "config": {"lr": 0.1}, "tags": ["a", "b"]},
            token=token,
        )
    )["createRun"]
    assert created["state"] == "RUNNING" and created["config"] == {"lr": 0.1}
    assert created["tags"] == ["a", "b"] and created["code"] == {"commit": "abc123", "dirty": True}
    prep = created["id"]
    assert service.get_run(prep).host == "box"

    data = await _commit(server, token, prep, "data", {"x.csv": b"1,2\n", "y.csv": b"3\n"})
    assert data["created"] is True
    version = data["version"]
    assert version["ref"] == "remote/data:v0" and version["size"] == 6
    assert version["fileCount"] == 2 and version["createdBy"]["id"] == prep
    assert [f["path"] for f in version["files"]["nodes"]] == ["x.csv", "y.csv"]
    await server.data(FINISH, {"run": prep, "summary": {"rows": 2}}, token=token)

    train = await _run(server, token)
    used = await server.data(USE, {"run": train, "ref": "data:latest"}, token=token)
    assert used["useArtifact"]["ref"] == "remote/data:v0"
    model = await _commit(
        server,
        token,
        train,
        "model",
        {"w.bin": b"\x00" * 1000},
        metadata={"acc": 0.9},
        aliases=["candidate"],
    )
    assert model["version"]["aliases"] == ["candidate", "latest"]
    assert model["version"]["metadata"] == {"acc": 0.9}
    # byte-identical content: the same version back, the run recorded as a producer
    again = await _commit(server, token, train, "model", {"w.bin": b"\x00" * 1000})
    assert again["created"] is False and again["version"]["ref"] == "remote/model:v0"
    summary = await server.data(
        "mutation($run: ID!) { logSummary(runId: $run, summary: {loss: 0.5}) { summary } }",
        {"run": train},
        token=token,
    )
    assert summary["logSummary"]["summary"] == {"loss": 0.5}
    finished = await server.data(
        FINISH, {"run": train, "state": "FAILED", "summary": {"acc": 0.9}}, token=token
    )
    assert finished["finishRun"]["state"] == "FAILED"
    assert finished["finishRun"]["summary"] == {"loss": 0.5, "acc": 0.9}

    lineage = await server.data(
        '{ lineage(ref: "remote/model:v0") { nodes { id } edges { source target kind } } }'
    )
    assert {(e["source"], e["target"], e["kind"]) for e in lineage["lineage"]["edges"]} == {
        (prep, "remote/data:v0", "PRODUCED"),
        ("remote/data:v0", train, "CONSUMED_BY"),
        (train, "remote/model:v0", "PRODUCED"),
    }
    io = await server.data(
        "query($id: ID!) { run(id: $id) { consumed { ref } produced { ref } } }", {"id": train}
    )
    assert io["run"] == {
        "consumed": [{"ref": "remote/data:v0"}],
        "produced": [{"ref": "remote/model:v0"}],
    }


async def test_version_edits(server: Server, tokens: dict[str, str], service: Service) -> None:
    token = tokens["write"]
    run = await _run(server, token)
    for content in (b"one", b"two"):
        await _commit(server, token, run, "model", {"w": content})
    moved = await server.data(
        'mutation { setAlias(ref: "remote/model:v0", alias: "production") { aliases } }',
        token=token,
    )
    assert moved["setAlias"]["aliases"] == ["production"]
    edited = await server.data(
        'mutation { updateVersion(ref: "remote/model:production", metadata: {acc: 1},'
        ' description: "best") { ref metadata description } }',
        token=token,
    )
    assert edited["updateVersion"] == {
        "ref": "remote/model:v0",
        "metadata": {"acc": 1},
        "description": "best",
    }
    events = await server.data(
        '{ artifactVersion(ref: "remote/model:v0") { events { kind actor } } }'
    )
    token_id = tokens["write"].split("_")[1]
    assert [e["kind"] for e in events["artifactVersion"]["events"]] == [
        "alias.moved",
        "metadata.updated",
        "description.updated",
    ]
    assert {e["actor"] for e in events["artifactVersion"]["events"]} == {f"token:{token_id}"}
    removed = await server.data(
        'mutation { removeAlias(project: "remote", name: "model", alias: "production")'
        " { aliases { alias version { ref } } } }",
        token=token,
    )
    assert removed["removeAlias"]["aliases"] == [
        {"alias": "latest", "version": {"ref": "remote/model:v1"}}
    ]
    deleted = await server.data(
        'mutation { deleteVersion(ref: "remote/model:v1") { ref state aliases } }', token=token
    )
    assert deleted["deleteVersion"] == {"ref": "remote/model:v1", "state": "DELETED", "aliases": []}
    latest = await server.data('{ artifactVersion(ref: "remote/model:latest") { ref } }')
    assert latest["artifactVersion"]["ref"] == "remote/model:v0"
    assert service.resolve("remote/model:v1", include_deleted=True).state == "deleted"


BAD = [
    ("invalid project", CREATE, {"project": "no spaces", "jobType": "x"}, "INVALID_INPUT"),
    ("config not an object", CREATE, {"project": "p", "config": [1, 2]}, "INVALID_INPUT"),
    ("invalid tag", CREATE, {"project": "p", "tags": ["a/b"]}, "INVALID_INPUT"),
    ("unknown run", USE, {"run": "nosuchrun", "ref": "remote/data:v0"}, "NOT_FOUND"),
    ("unknown ref", USE, {"run": "RUN", "ref": "remote/nothing:v0"}, "NOT_FOUND"),
    ("malformed ref", USE, {"run": "RUN", "ref": "a:b:c"}, "INVALID_INPUT"),
    (
        "manifest not uploaded",
        COMMIT,
        {"run": "RUN", "name": "m", "type": "model", "manifest": "0" * 64},
        "DATA_LOSS",
    ),
    (
        "malformed digest",
        COMMIT,
        {"run": "RUN", "name": "m", "type": "model", "manifest": "xyz"},
        "INVALID_INPUT",
    ),
    (
        "invalid alias",
        COMMIT,
        {"run": "RUN", "name": "m", "type": "model", "manifest": "MANIFEST", "aliases": ["v3"]},
        "INVALID_INPUT",
    ),
    (
        "type mismatch",
        COMMIT,
        {"run": "RUN", "name": "data", "type": "other", "manifest": "MANIFEST"},
        "CONFLICT",
    ),
    ("finish twice", FINISH, {"run": "DONE"}, "CONFLICT"),
    ("finish as running", FINISH, {"run": "RUN", "state": "RUNNING"}, "INVALID_INPUT"),
    ("use after finish", USE, {"run": "DONE", "ref": "remote/data:v0"}, "CONFLICT"),
    (
        "delete an aliased version",
        'mutation { deleteVersion(ref: "remote/data:v0") { ref } }',
        {},
        "CONFLICT",
    ),
    (
        "set latest",
        'mutation { setAlias(ref: "remote/data:v0", alias: "latest") { ref } }',
        {},
        "INVALID_INPUT",
    ),
    (
        "remove an absent alias",
        'mutation { removeAlias(project: "remote", name: "data", alias: "nope") { name } }',
        {},
        "NOT_FOUND",
    ),
    (
        "metadata not an object",
        'mutation { updateVersion(ref: "remote/data:v0", metadata: [1]) { ref } }',
        {},
        "INVALID_INPUT",
    ),
    ("unknown field", "mutation { dropEverything }", {}, "GRAPHQL_VALIDATION_FAILED"),
    (
        "missing argument",
        'mutation { setAlias(ref: "x") { ref } }',
        {},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    ("syntax", "mutation { setAlias(", {}, "GRAPHQL_PARSE_FAILED"),
]


@pytest.mark.parametrize(
    ("query", "variables", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
async def test_refusals_change_nothing(
    server: Server,
    tokens: dict[str, str],
    service: Service,
    query: str,
    variables: dict[str, Any],
    code: str,
) -> None:
    token = tokens["write"]
    done = await _run(server, token)
    await _commit(server, token, done, "data", {"d": b"data"}, aliases=["gold"])
    await server.data(FINISH, {"run": done}, token=token)
    running = await _run(server, token)
    manifest, blobs = manifest_of({"other": b"bytes"})
    await server.upload(blobs, token)
    substitutions = {"RUN": running, "DONE": done, "MANIFEST": manifest}
    variables = {
        k: substitutions.get(v, v) if isinstance(v, str) else v for k, v in variables.items()
    }
    before = snapshot(service.graph, service.blobs)
    error = await server.error(query, variables, token=token)
    assert error["extensions"]["code"] == code, error
    assert snapshot(service.graph, service.blobs) == before


async def test_cycle_refused(server: Server, tokens: dict[str, str], service: Service) -> None:
    token = tokens["write"]
    run = await _run(server, token)
    await _commit(server, token, run, "model", {"w": b"w"})
    before = snapshot(service.graph, service.blobs)
    error = await server.error(USE, {"run": run, "ref": "remote/model:v0"}, token=token)
    assert (
        error["extensions"]["code"] == "CONFLICT"
        and error["extensions"]["ref"] == "remote/model:v0"
    )
    assert "acyclic" in error["message"]
    assert snapshot(service.graph, service.blobs) == before
