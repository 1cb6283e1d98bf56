"""The verbs of daily use: path, impact, run, --json listings, gc's grace period, and reads
that refuse a directory holding no store. On every backend; lineage answers are checked
against networkx over the store's own edges."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner, Result
from helpers import oracle

import lineage
from lineage.cli import cli
from lineage.server.auth import create_token
from lineage.server.serving import background


def invoke(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result


def one_error_line(result: Result) -> str:
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


@pytest.fixture
def history(backend, workdir, monkeypatch):  # type: ignore[no-untyped-def]
    """raw -> prep -> ds -> train -> model:v0 -> finetune-a -> model:v1
    model:v0 + ds -> finetune-b -> model:v2 -> eval -> report;  raw -> side -> side:v0;
    and a failed run. Returns the run ids by name."""
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    monkeypatch.setenv("LINEAGE_PROJECT", "p")
    runs: dict[str, str] = {}

    def step(name: str, inputs: list[str], output: str | None, **extra: object) -> None:
        with lineage.init(project="p", job_type=name, name=name, **extra) as run:  # type: ignore[arg-type]
            runs[name] = run.id
            for ref in inputs:
                run.use_artifact(ref)
            if output:
                Path(name).write_text(f"made by {name}")
                art = lineage.Artifact(output, type="model" if "model" in output else "dataset")
                art.add_file(name)
                run.log_artifact(art)
            run.log({"loss": 0.5})

    step("ingest", [], "raw")
    step("prep", ["raw:v0"], "ds")
    step("train", ["ds:v0"], "model")
    step("finetune-a", ["model:v0"], "model")
    step("finetune-b", ["model:v0", "ds:v0"], "model", config={"lr": 3e-5}, tags=["b"])
    step("eval", ["model:v2"], "report")
    step("side", ["raw:v0"], "side")
    with pytest.raises(ValueError), lineage.init(project="p", job_type="broken") as run:
        runs["broken"] = run.id
        run.use_artifact("model:v1")
        raise ValueError("diverged at step 7")
    return runs


def store_graph() -> nx.DiGraph:
    api = lineage.Api(project="p")
    graph = api.service.graph
    ids = [r.id for r in graph.list_runs()]
    ids += [v.id for a in graph.list_artifacts() for v in graph.list_versions(a.project, a.name)]
    return oracle(graph.expand(ids, "down"))


def answer(*args: str) -> tuple[set[str], set[tuple[str, str]]]:
    data = json.loads(invoke(*args, "--json").stdout)
    return {n["id"] for n in data["nodes"]}, {(e["source"], e["target"]) for e in data["edges"]}


def test_path_and_impact_match_networkx(history) -> None:  # type: ignore[no-untyped-def]
    g = store_graph()
    for a, b in (("ds:v0", "model:v2"), ("model:v2", "ds:v0"), ("raw:v0", "report:v0")):
        src, dst = f"p/{a}", f"p/{b}"
        if not nx.has_path(g, src, dst):
            src, dst = dst, src
        expected = (nx.descendants(g, src) | {src}) & (nx.ancestors(g, dst) | {dst})
        nodes, edges = answer("path", a, b)
        assert nodes == expected
        assert edges == {(u, v) for u, v in g.edges if u in expected and v in expected}
    # siblings: neither came from the other
    assert json.loads(invoke("path", "model:v1", "model:v2", "--json").stdout) is None
    said = invoke("path", "model:v1", "model:v2").stdout
    assert said.startswith("no path between model:v1 and model:v2")

    # the text names every node of the path once, each after all of its parents
    lines = invoke("path", "ds:v0", "model:v2").stdout.splitlines()
    assert lines[-1].startswith("3 versions, 2 runs, 5 edges")
    names = {run_id: name for name, run_id in history.items()}
    position = {
        line.removeprefix("  -> ").removeprefix("run ").split()[0]: i
        for i, line in enumerate(lines[:-1])
    }
    on_path = (nx.descendants(g, "p/ds:v0") | {"p/ds:v0"}) & nx.ancestors(g, "p/model:v2")
    on_path.add("p/model:v2")
    label = {n: names.get(n, n.removeprefix("p/")) for n in on_path}
    assert sorted(position) == sorted(label.values())
    assert all(position[label[u]] < position[label[v]] for u, v in g.subgraph(on_path).edges)
    assert lines[position["model:v2"] - 1].endswith("<- ds:v0, model:v0")  # two ways in

    for ref in ("raw:v0", "model:v0", "side:v0"):
        nodes, edges = answer("impact", ref)
        expected = nx.descendants(g, f"p/{ref}") | {f"p/{ref}"}
        assert nodes == expected
        assert edges == {(u, v) for u, v in g.edges if u in expected and v in expected}
    text = invoke("impact", "model:v0").stdout
    assert "report:v0" in text and "side" not in text and "(broken, failed)" in text


def test_run_show_listings_and_gc(history, backend) -> None:  # type: ignore[no-untyped-def]
    """One history for several verbs (a Neo4j history costs seconds to log)."""
    run_shows_a_run_and_show_points_at_it(history)
    listings_take_json(history)
    gc_dry_run_says_what_the_grace_period_keeps(backend)


def run_shows_a_run_and_show_points_at_it(history: dict[str, str]) -> None:
    b = history["finetune-b"]
    data = json.loads(invoke("run", b, "--json").stdout)
    assert sorted(v["ref"] for v in data["inputs"]) == ["p/ds:v0", "p/model:v0"]
    assert [v["ref"] for v in data["outputs"]] == ["p/model:v2"]
    run = data["run"]
    assert (run["id"], run["state"], run["config"], run["summary"], run["tags"]) == (
        b, "finished", {"lr": 3e-5}, {"loss": 0.5}, ["b"]
    )  # fmt: skip
    text = invoke("run", b).stdout
    assert f"run finetune-b ({b}) in p" in text and '{"lr": 3e-05}' in text
    assert "inputs       ds:v0 (dataset" in text and "model:v2 (model" in text
    broken = invoke("run", history["broken"]).stdout
    assert "state        failed" in broken and "diverged at step 7" in broken
    assert "outputs      -" in broken

    line = one_error_line(invoke("show", b, code=2))
    assert f"`lineage run {b}`" in line
    assert "`lineage show model:v2`" in one_error_line(invoke("run", "model:v2", code=2))
    assert "lineage runs" in one_error_line(invoke("run", "nosuchid", code=3))


def listings_take_json(history: dict[str, str]) -> None:
    api = lineage.Api(project="p")
    listed = json.loads(invoke("ls", "--json").stdout)
    assert {a["name"]: a["latest"] for a in listed} == {
        a.name: api.versions(a.name)[-1].ref for a in api.artifacts()
    }
    assert {r["id"]: r["state"] for r in json.loads(invoke("runs", "--json").stdout)} == {
        r.id: r.state for r in api.runs()
    }
    events = json.loads(invoke("log", "model", "--json").stdout)
    assert [e["kind"] for e in events] == [e.kind for e in api.events("model")]
    shown = json.loads(invoke("show", "model:v2", "--json").stdout)
    assert shown["version"]["ref"] == "p/model:v2"
    assert [r["id"] for r in shown["logged_by"]] == [history["finetune-b"]]
    assert [r["id"] for r in shown["used_by"]] == [history["eval"]]
    assert [f["path"] for f in shown["files"]] == ["finetune-b"]
    assert json.loads(invoke("ls", "--type", "nosuch", "--json").stdout) == []


def gc_dry_run_says_what_the_grace_period_keeps(backend) -> None:  # type: ignore[no-untyped-def]
    blobs = sum(1 for p in Path(backend.blobs).glob("??/*") if p.is_file())
    assert blobs > 0
    young = json.loads(invoke("gc", "--dry-run", "--json").stdout)
    assert (young["blobs_young"], young["blobs_total"], young["blobs_removed"]) == (blobs, 0, 0)
    said = invoke("gc", "--dry-run").stdout
    assert said.startswith(f"{blobs} blobs: {blobs} younger than the grace period (3600 s) kept")
    old = json.loads(invoke("gc", "--dry-run", "--grace", "0", "--json").stdout)
    assert (old["blobs_young"], old["blobs_total"], old["blobs_live"]) == (0, blobs, blobs)


READS = [
    ["ls"],
    ["show", "p/x:v0"],
    ["get", "p/x:v0", "-o", "out"],
    ["verify", "p/x:v0"],
    ["log", "p/x"],
    ["alias", "p/x:v0", "prod"],
    ["delete", "p/x:v0"],
    ["gc", "--dry-run"],
    ["runs"],
    ["runs", "--stale"],
    ["run", "abcdefgh"],
    ["lineage", "p/x:v0"],
    ["tree", "p/x:v0"],
    ["path", "p/x:v0", "p/y:v0"],
    ["impact", "p/x:v0"],
    ["render", "p/x:v0", "-o", "x.svg"],
    ["push", "--to", "elsewhere"],
    ["token", "revoke", "abcdefgh"],
]


def test_reads_refuse_a_directory_without_a_store(workdir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "typo"
    for args in READS:
        for where in (["--store", str(typo)], []):  # and the default, ./.lineage
            line = one_error_line(invoke(*where, *args, code=3))
            assert "no lineage store in " in line and "--store" in line, (args, line)
    line = one_error_line(invoke("pull", "--from", str(typo), code=3))
    assert f"no lineage store in {typo}" in line
    assert not typo.exists() and list(workdir.iterdir()) == []
    # a write creates one
    with lineage.init(project="p", store=str(typo)):
        pass
    assert "no artifacts" in invoke("--store", str(typo), "ls").stdout


def test_the_sdk_reader_refuses_a_directory_without_a_store(workdir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "typo"
    for store in (str(typo), f"sqlite://{typo}", None):  # None: the default, ./.lineage
        with pytest.raises(lineage.NotFound, match="no lineage store in "):
            lineage.Api(store=store, project="p")
    assert not typo.exists() and list(workdir.iterdir()) == []
    created = lineage.Api(store=str(typo), create=True)  # asked for: an empty store
    assert created.artifacts("p") == [] and (typo / "lineage.db").is_file()
    assert lineage.Api(store=str(typo)).artifacts("p") == []


def on_a_terminal(args: list[str]) -> str:
    """Run the lineage command with a pseudo-terminal as its stdout and stderr; all it wrote."""
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    child = subprocess.Popen(
        [str(Path(sys.executable).parent / "lineage"), *args],
        stdout=slave,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env={**env, "TERM": "xterm", "COLUMNS": "120"},
    )
    os.close(slave)
    out = b""
    with contextlib.suppress(OSError):  # EIO once the child closed its end
        while chunk := os.read(master, 65536):
            out += chunk
    os.close(master)
    assert child.wait(timeout=120) == 0, out
    return out.decode(errors="replace")


def test_long_work_shows_progress_on_a_terminal_only(workdir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = str(tmp_path / "store")
    Path("big.bin").write_bytes(os.urandom(1 << 20))
    with lineage.init(project="p", store=store) as run:
        art = lineage.Artifact("big", type="dataset")
        art.add_file("big.bin")
        run.log_artifact(art)
    # storing, downloading and verifying draw with the same lineage.progress.bar
    shown = on_a_terminal(["--store", store, "push", "--to", str(tmp_path / "a")])
    assert "copying" in shown and "1 version," in shown and "1.0/1.0 MB" in shown, shown
    server = lineage.Api(
        store=str(tmp_path / "server"), blobs=str(tmp_path / "server-blobs"), create=True
    )
    token = create_token(server.service.graph, "write", "sync test")
    with background(str(tmp_path / "server"), str(tmp_path / "server-blobs")) as url:
        shown = on_a_terminal(["--store", store, "sync", "--to", url, "--token", token])
    assert "sending p/big:v0" in shown and "1 version," in shown and "1.0/1.0 MB" in shown, shown
    piped = invoke("--store", store, "push", "--to", str(tmp_path / "b"))  # stderr: no tty
    assert piped.stderr == "" and "copying" not in piped.stdout and "1 version," in piped.stdout
