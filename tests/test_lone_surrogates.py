"""One rule for lone surrogates (issue 14, finding 6): text a user gives that holds one is
refused at the door, naming the field and where in it, and the store is left exactly as it
was; the SDK escapes the text of a user's exception itself before recording it as the run's
error, so the user's exception is never replaced. Every field,
on each graph store, through the SDK (local and against a real server) and through raw
GraphQL requests to a real server (on the remote surface)."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from helpers import snapshot

import lineage
from lineage.cli import cli
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.server.serving import background
from lineage.service import Service

BAD = "\ud800"  # what a user's text may hold: a lone surrogate
NAMED = "text holds a lone surrogate \\ud800"


@dataclass
class Seeded:
    """A store holding one version, a run left running, and how to reach them."""

    backend: Any
    options: dict[str, str]  # store= and token= for lineage.init and lineage.Api
    url: str | None  # the server, for the remote surface
    token: str | None
    run: lineage.Run
    version: lineage.ArtifactVersion
    service: Service  # the stores themselves, for dumps

    def dump(self) -> object:
        """Everything the store holds (the SQLite files byte for byte, too)."""
        return snapshot(self.service.graph, self.service.blobs), self.files()

    def files(self) -> list[tuple[str, bytes]]:
        if self.backend.name != "sqlite":
            return []
        store = Path(self.backend.store)
        return sorted((p.name, p.read_bytes()) for p in store.glob("*") if p.is_file())


def _seed(surface: str, backend: Any) -> Iterator[Seeded]:
    service = open_service(backend.store, backend.blobs)
    Path("w.bin").write_bytes(b"weights")
    Path("other.bin").write_bytes(b"other bytes")
    with contextlib.ExitStack() as stack:
        stack.callback(service.graph.close)
        url = token = None
        options = {"store": backend.store, "blobs": backend.blobs}
        if surface == "remote":
            token = create_token(service, "write", "tests")
            url = stack.enter_context(background(backend.store, backend.blobs))
            options = {"store": url, "token": token}
        with lineage.init(project="p", **options) as first:  # type: ignore[arg-type]
            art = lineage.Artifact("policy", type="model")
            art.add_file("w.bin")
            version = first.log_artifact(art)
        run = lineage.init(project="p", **options)  # type: ignore[arg-type]
        yield Seeded(backend, options, url, token, run, version, service)
        with warnings.catch_warnings():  # it may have ended already (finishRun, a new init)
            warnings.simplefilter("ignore", lineage.LineageWarning)
            run.finish()  # and is forgotten: nothing is left to finish at exit


@pytest.fixture(params=["local", "remote"])
def seeded(request: pytest.FixtureRequest, backend: Any, workdir: Path) -> Iterator[Seeded]:
    yield from _seed(request.param, backend)


def _artifact(**kw: Any) -> lineage.Artifact:
    art = lineage.Artifact(kw.pop("name", "m"), type=kw.pop("type", "model"), **kw)
    art.add_file("other.bin")
    return art


def _mutated(attribute: str, value: object) -> Callable[[Seeded], object]:
    def act(s: Seeded) -> object:
        art = _artifact()
        if attribute == "metadata":
            art.metadata["late"] = value
        else:
            art.description = value  # type: ignore[assignment]
        return s.run.log_artifact(art)

    return act


# (what, the action, the field its error names): every text field a user gives the SDK
SDK: list[tuple[str, Callable[[Seeded], object], str]] = [
    ("project", lambda s: lineage.init(project="p" + BAD, **s.options), "project"),
    ("job type", lambda s: lineage.init(project="p", job_type=BAD, **s.options), "job_type"),
    ("run name", lambda s: lineage.init(project="p", name=BAD, **s.options), "run name"),
    ("tag", lambda s: lineage.init(project="p", tags=["t" + BAD], **s.options), "tag"),
    ("notes", lambda s: lineage.init(project="p", notes=BAD, **s.options), "notes"),
    (
        "config value",
        lambda s: lineage.init(project="p", config={"a": [0, "x" + BAD]}, **s.options),
        'config["a"][1]',
    ),
    (
        "config key",
        lambda s: lineage.init(project="p", config={"a": {"k" + BAD: 1}}, **s.options),
        'config["a"]["k\\ud800"] (its key)',
    ),
    ("artifact name", lambda s: s.run.log_artifact(_artifact(name="m" + BAD)), "artifact name"),
    ("artifact type", lambda s: s.run.log_artifact(_artifact(type="t" + BAD)), "artifact type"),
    ("description", lambda s: s.run.log_artifact(_artifact(description=BAD)), "description"),
    ("description set late", _mutated("description", "d" + BAD), "description"),
    (
        "metadata value",
        lambda s: s.run.log_artifact(_artifact(metadata={"a": [0, 1, 2, {"b": BAD}]})),
        'metadata["a"][3]["b"]',
    ),
    (
        "metadata key",
        lambda s: s.run.log_artifact(_artifact(metadata={BAD: 1})),
        'metadata["\\ud800"] (its key)',
    ),
    ("metadata set late", _mutated("metadata", [BAD]), 'metadata["late"][0]'),
    ("alias", lambda s: s.run.log_artifact(_artifact(), aliases=["a" + BAD]), "alias"),
    ("file name", lambda s: _artifact().add_file("w.bin", name="f" + BAD), "file name"),
    ("reference", lambda s: _artifact().add_reference("s3://b/k" + BAD), "reference"),
    ("https reference", lambda s: _artifact().add_reference("https://h/" + BAD), "reference"),
    ("summary", lambda s: s.run.log({"loss": BAD}), 'summary["loss"]'),
    ("summary key", lambda s: s.run.log({BAD: 1.0}), "summary"),
    ("final summary", lambda s: s.run.finish(summary={"x": [BAD]}), 'summary["x"][0]'),
    ("new description", lambda s: s.version.update(description=BAD), "description"),
    ("new metadata", lambda s: s.version.update(metadata={"a": {"b": BAD}}), 'metadata["a"]["b"]'),
    ("new alias", lambda s: s.version.set_alias(BAD), "alias"),
    (
        "token description",
        lambda s: create_token(s.service, "read", "d" + BAD),
        "token description",
    ),
    (
        "api update",
        lambda s: lineage.Api(project="p", **s.options).update("policy:v0", description=BAD),
        "description",
    ),
]


CLI = [
    (["runs", "-p", "p", "--job-type", BAD], "job_type"),
    (["ls", "-p", "p", "--type", "t" + BAD], "type"),
]


def test_every_text_field_refuses_a_lone_surrogate(seeded: Seeded) -> None:
    before = seeded.dump()
    for what, act, field in SDK:
        files = seeded.files()
        with pytest.raises(lineage.InvalidInput) as caught:
            act(seeded)
        message = str(caught.value)
        assert field in message, (what, message)
        assert "\n" not in message and BAD not in message, (what, message)  # printable
        assert seeded.files() == files, what
    # the command line, where undecodable bytes of an argument become lone surrogates
    env = {"LINEAGE_TOKEN": seeded.token, "LINEAGE_BLOBS": seeded.options.get("blobs")}
    for args, field in CLI:
        files = seeded.files()
        result = CliRunner().invoke(cli, [*args, "--store", seeded.options["store"]], env=env)
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert result.stdout == "" and result.stderr.count("\n") == 1, (args, result.output)
        assert result.stderr.startswith(f"error: {field}: {NAMED}"), (args, result.stderr)
        assert seeded.files() == files, args
    assert seeded.dump() == before  # no refusal changed anything
    # the run the refusals were tried on still works: nothing half-done stands in its way
    assert seeded.run.state == "running"
    seeded.run.log({"loss": 0.5})
    assert seeded.run.summary["loss"] == 0.5
    if seeded.url is not None:  # the same store, served: raw requests to the server
        _the_servers_door(seeded)
    # the one exception to the rule: text lineage derives from an exception is kept, escaped
    with pytest.raises(OSError) as raised, lineage.init(project="p", **seeded.options) as run:  # type: ignore[arg-type]
        raise OSError("bad\udcff name")
    assert raised.value.args == ("bad\udcff name",)  # the user's exception, unchanged
    stored = seeded.service.get_run(run.id)
    assert stored.state == "failed" and "bad\\udcff name" in (stored.error or "")


# (argument, the mutation, its variables; "RUN" and "DIGEST" filled in): the server refuses
# what the SDK would have refused before sending it
MUTATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("notes", 'mutation($x: String) { createRun(project: "p", notes: $x) { id } }', {"x": BAD}),
    (
        "config",
        'mutation($x: JSON) { createRun(project: "p", config: $x) { id } }',
        {"x": {"a": BAD}},
    ),
    ("host", 'mutation($x: String) { createRun(project: "p", host: $x) { id } }', {"x": BAD}),
    (
        "code",
        'mutation($x: CodeVersionInput) { createRun(project: "p", code: $x) { id } }',
        {"x": {"commit": "c", "dirty": False, "command": ["x", BAD]}},
    ),
    (
        "summary",
        "mutation($r: ID!, $x: JSON!) { logSummary(runId: $r, summary: $x) { id } }",
        {"r": "RUN", "x": {"a": BAD}},
    ),
    (
        "summary",
        "mutation($r: ID!, $x: JSON) { finishRun(runId: $r, summary: $x) { id } }",
        {"r": "RUN", "x": {BAD: 1}},
    ),
    (
        "description",
        'mutation($x: String) { updateVersion(ref: "p/policy:v0", description: $x) { id } }',
        {"x": BAD},
    ),
    (
        "metadata",
        'mutation($x: JSON) { updateVersion(ref: "p/policy:v0", metadata: $x) { id } }',
        {"x": {"a": [BAD]}},
    ),
    (
        "description",
        'mutation($r: ID!, $m: String!, $x: String) { commitVersion(runId: $r, name: "m",'
        ' type: "model", manifest: $m, description: $x) { created } }',
        {"r": "RUN", "m": "DIGEST", "x": BAD},
    ),
    (
        "metadata",
        'mutation($r: ID!, $m: String!, $x: JSON) { commitVersion(runId: $r, name: "m",'
        ' type: "model", manifest: $m, metadata: $x) { created } }',
        {"r": "RUN", "m": "DIGEST", "x": {"k": {"j": BAD}}},
    ),
]


def _post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    """POST ``body`` as JSON text with every non-ASCII character escaped (``\\ud800``), as
    Python's json writes it: what a client holding such a string sends."""
    headers = {"Content-Type": "application/json"}
    return client.post(path, content=json.dumps(body), headers=headers)


def _the_servers_door(served: Seeded) -> None:
    """What a raw client sends the server is refused there (the SDK refused it before)."""
    assert served.url is not None
    client = httpx.Client(
        base_url=served.url, headers={"Authorization": f"Bearer {served.token}"}, timeout=30
    )
    fill = {"RUN": served.run.id, "DIGEST": served.version.digest}
    before = served.dump()
    with client:
        for argument, query, variables in MUTATIONS:
            given = {k: fill.get(v, v) if isinstance(v, str) else v for k, v in variables.items()}
            answer = _post(client, "/graphql", {"query": query, "variables": given})
            assert answer.status_code == 200, (query, answer.text)
            errors = answer.json()["errors"]
            assert errors[0]["extensions"]["code"] == "INVALID_INPUT", (query, errors)
            assert errors[0]["message"].startswith(argument), (query, errors)
            assert NAMED in errors[0]["message"], (query, errors)
            assert served.files() == before[1], query  # type: ignore[index]
        # a REST body: 400, naming the problem
        missing = _post(client, "/blobs/missing", {"digests": [BAD]})
        assert missing.status_code == 400 and "digest" in missing.text, missing.text
        assert served.dump() == before  # no refusal changed anything
        # a run's error is no exception to the door: the SDK escapes an exception's text
        # before sending it (above), and a raw client's surrogate is refused like the rest
        started = _post(
            client, "/graphql", {"query": 'mutation { createRun(project: "p") { id } }'}
        )
        finish = _post(
            client,
            "/graphql",
            {
                "query": "mutation($r: ID!, $e: String) "
                "{ finishRun(runId: $r, state: FAILED, error: $e) { error } }",
                "variables": {"r": started.json()["data"]["createRun"]["id"], "e": "boom" + BAD},
            },
        )
        errors = finish.json()["errors"]
        assert errors[0]["extensions"]["code"] == "INVALID_INPUT", finish.text
        assert errors[0]["message"].startswith("error") and NAMED in errors[0]["message"]
        run_id = started.json()["data"]["createRun"]["id"]
        assert served.service.get_run(run_id).state == "running"  # refused: nothing changed
