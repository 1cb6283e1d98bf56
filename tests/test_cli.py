"""The CLI verbs, through click's CliRunner, on every backend."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import lineage
from lineage.cli import cli
from lineage.errors import ServerError
from lineage.records import RUN_STATES


@pytest.fixture
def run_cli(backend, workdir, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    monkeypatch.setenv("LINEAGE_PROJECT", "p")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    Path("data").mkdir()
    Path("data/a.txt").write_text("alpha")
    with lineage.init(project="p", job_type="prepare") as run:
        art = lineage.Artifact("ds", type="dataset", metadata={"rows": 1})
        art.add_dir("data")
        run.log_artifact(art)
    with lineage.init(project="p", job_type="train") as run:
        run.use_artifact("ds:latest")
        Path("m.bin").write_bytes(b"model")
        art = lineage.Artifact("model", type="model")
        art.add_file("m.bin")
        run.log_artifact(art, aliases=["prod"])
    return invoke


def test_ls_show_lineage_tree(run_cli) -> None:  # type: ignore[no-untyped-def]
    listing = run_cli("ls")
    assert "p/ds" in listing and "p/model" in listing and "prod" in listing
    assert "p/model" not in run_cli("ls", "--type", "dataset")
    shown = run_cli("show", "model:prod")
    assert "p/model:v0" in shown and "m.bin" in shown and '"rows"' not in shown
    up = run_cli("lineage", "model:v0", "--up")
    assert "ds:v0" in up and "(train)" in up
    down = json.loads(run_cli("lineage", "ds:v0", "--down", "--json"))
    assert {n["id"] for n in down["nodes"]} >= {"p/ds:v0", "p/model:v0"}
    assert down["truncated"] is False
    cut = json.loads(run_cli("lineage", "model:v0", "--depth", "0", "--json"))
    assert cut["truncated"] is True and [n["id"] for n in cut["nodes"]] == ["p/model:v0"]
    tree = run_cli("tree", "ds:v0")
    assert "model:v0 [prod]" in tree and "2 versions, 1 derivation" in tree


def test_get_verify_log_gc(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "got"
    run_cli("get", "ds:v0", "-o", str(out))
    assert (out / "a.txt").read_text() == "alpha"
    assert "1 file verified" in run_cli("verify", "ds")
    run_cli("alias", "ds:v0", "golden")
    log = run_cli("log", "ds")
    assert "alias.moved" in log and "golden" in log
    assert "0 blobs checked" not in run_cli("gc", "--dry-run", "--grace", "0")


def test_errors_are_one_line_with_exit_codes(run_cli) -> None:  # type: ignore[no-untyped-def]
    out = run_cli("show", "model:v9", code=3)
    assert out.strip().count("\n") == 0 and out.startswith("error: p/model:v9 does not exist")
    assert run_cli("show", "bad name", code=2).startswith("error: invalid ref")
    assert "prod" in run_cli("delete", "model:v0", code=4)


def test_runs_and_stale(run_cli) -> None:  # type: ignore[no-untyped-def]
    out = run_cli("runs", "--stale")
    assert out.count("finished") == 2 and "no runs marked crashed" in out


def test_runs_stale_says_what_it_marked_on_stderr(run_cli) -> None:  # type: ignore[no-untyped-def]
    """``--stale`` says on stderr how many runs it marked crashed, and which, or that it
    marked none; stdout is the table (or the JSON) alone, as without it."""
    runner = CliRunner()

    def stale(*more: str) -> Result:
        result = runner.invoke(cli, ["runs", "--stale", *more], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    none = stale()
    assert none.stderr == "no runs marked crashed: every running run of this host is alive\n"
    assert none.stdout == run_cli("runs")
    code = (  # two at once: a lineage.init would reap a run whose process died before it
        "import os, sys, lineage\n"
        "run = lineage.init(project='p', job_type='train')\n"
        "print(run.id, flush=True)\n"
        "sys.stdin.read()\n"
        "os._exit(9)\n"
    )
    dead = []
    processes = []
    for _ in range(2):
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        processes.append(process)
        assert process.stdout is not None
        dead.append(process.stdout.readline().strip())
    for process in processes:
        process.communicate("")
        assert process.returncode == 9
    assert all(dead)
    marked = stale("--json")
    assert sorted(r["id"] for r in json.loads(marked.stdout) if r["state"] == "crashed") == sorted(
        dead
    )
    first, *rest = marked.stderr.splitlines()
    assert first == "marked 2 runs crashed (their process is gone):", marked.stderr
    assert sorted(line.split()[0] for line in rest) == sorted(dead)
    assert stale().stderr.startswith("no runs marked crashed")  # once only


def test_empty_keys_are_stored_as_written_and_filters_agree(run_cli) -> None:  # type: ignore[no-untyped-def]
    """A config, a summary or metadata may hold an empty key (SQLite's leaves of it were a JSON
    path error: the run could not be stored). Kept as written on both stores; a key the
    filter language can name beside it, or under it, is found as any other."""
    config = {"": 1, "a": {"": 2, "b": 3}, "lr": 0.5}
    with lineage.init(project="p", job_type="odd", config=config) as run:
        run.log({"": 4, "acc": 0.9})
        art = lineage.Artifact("odd", type="result", metadata={"": {"x": 1}, "k": "v"})
        art.add_file("m.bin")
        run.log_artifact(art)
    assert run.config == config and run.summary == {"": 4, "acc": 0.9}
    stored = json.loads(run_cli("runs", "--filter", "config.a.b = 3", "--json"))
    assert [(r["id"], r["config"], r["summary"]) for r in stored] == [
        (run.id, config, {"": 4, "acc": 0.9})
    ]
    assert [
        r["id"] for r in json.loads(run_cli("runs", "--filter", "summary.acc > 0.5", "--json"))
    ] == [run.id]
    assert "no runs pass" in run_cli("runs", "--filter", "config.a = 2")
    shown = json.loads(run_cli("show", "odd:v0", "--json"))
    assert shown["version"]["metadata"] == {"": {"x": 1}, "k": "v"}
    assert "odd" in run_cli("find", "--versions", "metadata.k = v")


def test_push_is_idempotent(run_cli, tmp_path, backend) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "team"
    first = run_cli("push", "--to", str(target), "--to-blobs", str(target / "blobs"))
    assert "2 runs, 2 versions, 3 edges" in first and "blobs" in first
    second = run_cli("push", "--to", str(target), "--to-blobs", str(target / "blobs"))
    assert "0 runs, 0 versions, 0 edges, 0 events new; 0 blobs" in second
    api = lineage.Api(store=str(target), blobs=str(target / "blobs"), project="p")
    moved = api.artifact_version("model:prod")
    moved.verify()
    assert [r.job_type for r in moved.logged_by()] == ["train"]
    assert {n.id for n in api.lineage("model:prod").nodes} == {
        n.id for n in lineage.Api(project="p").lineage("model:prod").nodes
    }


# --- issue 10: push/pull blobs, run filters, a busy port, global options, usage errors ---

LINEAGE = Path(sys.executable).parent / "lineage"


@pytest.fixture
def history(workdir: Path, tmp_path: Path) -> tuple[str, str]:
    """A SQLite store with project p (a dataset and a model), named by no LINEAGE_* variable."""
    store, blobs = str(tmp_path / "store"), str(tmp_path / "store-blobs")
    Path("a.txt").write_text("alpha")
    with lineage.init(project="p", job_type="prepare", store=store, blobs=blobs) as run:
        art = lineage.Artifact("ds", type="dataset")
        art.add_file("a.txt")
        run.log_artifact(art)
    with lineage.init(project="p", job_type="train", store=store, blobs=blobs) as run:
        run.use_artifact("ds:latest")
        Path("m.bin").write_bytes(b"model")
        art = lineage.Artifact("model", type="model")
        art.add_file("m.bin")
        run.log_artifact(art, aliases=["prod"])
    return store, blobs


def invoke(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    """The CLI in this process, with stdout and stderr apart, no LINEAGE_BLOBS leaking in."""
    result = CliRunner().invoke(cli, list(args), env={"LINEAGE_BLOBS": None, **(env or {})})
    assert result.exit_code == code, (result.output, result.exception)
    return result


def one_error_line(result: Result) -> str:
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


def test_push_without_to_blobs_copies_the_blobs(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "team"
    out = run_cli("push", "--to", str(target))
    assert "2 runs, 2 versions" in out and re.search(r"; [1-9]\d* blobs \(.+\) copied", out), out
    assert "; 0 blobs (0 B) copied" in run_cli("push", "--to", str(target))
    # the moved store is read with its own default blob store, target/blobs
    got = tmp_path / "got"
    invoke("--store", str(target), "-p", "p", "get", "model:prod", "-o", str(got))
    assert (got / "m.bin").read_bytes() == b"model"
    assert "1 file verified" in invoke("--store", str(target), "-p", "p", "verify", "ds").stdout
    # and pulled back into a third store, read with its default blob store too
    third = tmp_path / "third"
    pulled = invoke("--store", str(third), "pull", "--from", str(target)).stdout
    assert "2 versions" in pulled and re.search(r"; [1-9]\d* blobs", pulled), pulled
    assert "1 file verified" in invoke("--store", str(third), "verify", "p/model:prod").stdout


def test_push_to_a_fresh_directory_in_a_real_process(history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, blobs = history
    target, got = tmp_path / "moved", tmp_path / "got"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}

    def lineage_cmd(*args: str) -> str:
        done = subprocess.run(
            [str(LINEAGE), *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    lineage_cmd("--store", store, "--blobs", blobs, "push", "--to", str(target))
    assert len([p for p in (target / "blobs").rglob("*") if p.is_file()]) >= 2
    lineage_cmd("--store", str(target), "get", "p/model:prod", "-o", str(got))
    assert (got / "m.bin").read_bytes() == b"model"
    assert "verified" in lineage_cmd("--store", str(target), "verify", "p/ds:v0")


def test_push_to_a_graph_server_shares_the_blob_store(history, neo4j_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, blobs = history
    neo4j_server.wipe()
    out = invoke("--store", store, "--blobs", blobs, "push", "--to", neo4j_server.uri).stdout
    shared = Path(blobs).absolute().as_uri()
    assert "2 versions" in out and f"blobs not copied: both stores read them from {shared}" in out
    got = tmp_path / "got"
    invoke("--store", neo4j_server.uri, "--blobs", blobs, "get", "p/model:v0", "-o", str(got))
    assert (got / "m.bin").read_bytes() == b"model"


def test_runs_refuses_an_unknown_state(history) -> None:  # type: ignore[no-untyped-def]
    store, _ = history
    line = one_error_line(invoke("--store", store, "runs", "--state", "bogus", code=2))
    assert "bogus" in line and all(state in line for state in RUN_STATES), line
    assert invoke("--store", store, "runs", "--state", "finished").stdout.count("finished") == 2


def test_runs_that_match_nothing_say_so(history) -> None:  # type: ignore[no-untyped-def]
    store, _ = history
    said = invoke("--store", store, "-p", "p", "runs", "--job-type", "nosuch").stdout
    assert "no runs" in said and "nosuch" in said
    assert "no runs" in invoke("--store", store, "-p", "q", "runs").stdout
    assert "no runs" not in invoke("--store", store, "runs", "--job-type", "train").stdout


def test_server_on_a_busy_port_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [str(LINEAGE), "--store", str(tmp_path / "s"), "server", "--port", str(port)]
        for workers in ("1", "2"):
            done = subprocess.run(
                [*command, "--workers", workers],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert done.returncode == ServerError.exit_code == 8, done.stderr
            assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
            assert done.stderr.startswith(f"error: port {port} on 127.0.0.1 is in use: "), (
                done.stderr
            )


def test_server_opens_its_index_on_lineage_project(history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``lineage server`` honours LINEAGE_PROJECT (as -p) as the CLI and the SDK do: the
    dashboard's index lists that project first, the others after it."""
    import httpx
    from ports import free_port

    store, blobs = history
    with lineage.init(project="a", job_type="train", store=store, blobs=blobs):
        pass  # a project before p by name
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    port = free_port()
    command = [str(LINEAGE), "--store", store, "--blobs", blobs, "server", "--port", str(port)]
    server = subprocess.Popen(
        command, env={**env, "LINEAGE_PROJECT": "p"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            time.sleep(0.1)
        index = httpx.get(url + "/", timeout=30).text
    finally:
        server.terminate()
        server.wait(timeout=60)
        if server.stderr:
            server.stderr.close()
    headings = re.findall(r'<h1 class="project">([^<]+)</h1>', index)
    assert headings == ["p", "a"], headings


def test_global_options_before_or_after_the_command(history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, blobs = history
    before = invoke("--store", store, "-p", "p", "runs").stdout
    assert before.count("finished") == 2
    assert invoke("runs", "--store", store, "-p", "p").stdout == before
    assert invoke("runs", "--store", store, "--project", "p").stdout == before
    listing = invoke("ls", "--store", store, "--blobs", blobs, "-p", "p").stdout
    assert "p/model" in listing and "p/ds" in listing
    got = tmp_path / "got"
    invoke("get", "model:prod", "--store", store, "--blobs", blobs, "-p", "p", "-o", str(got))
    assert (got / "m.bin").read_bytes() == b"model"
    # the one after the command wins over the one before it and over the environment
    assert "no runs" in invoke("--store", store, "-p", "p", "runs", "-p", "other").stdout
    assert invoke("--store", str(tmp_path / "nowhere"), "runs", "--store", store).stdout == before
    env = {"LINEAGE_STORE": "ftp://x"}
    assert "ftp://x" in one_error_line(invoke("runs", "-p", "p", code=2, env=env))
    assert invoke("runs", "--store", store, "-p", "p", env=env).stdout == before
    # subgroups: token create, with the store before, between and after
    for args in (
        ["--store", store, "token", "create", "--scope", "read"],
        ["token", "--store", store, "create", "--scope", "read"],
        ["token", "create", "--scope", "read", "--store", store],
    ):
        assert invoke(*args).stdout.startswith("lin_")
    # the server takes the store after the command too (refused here by the store's scheme)
    line = one_error_line(invoke("server", "--store", "ftp://nowhere", code=2))
    assert "ftp://nowhere" in line


def test_an_unreachable_store_is_one_line_and_exit_6(workdir) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    done = subprocess.run(
        [str(LINEAGE), "--store", "neo4j://127.0.0.1:1", "ls"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 6 and done.stdout == "", done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


def test_usage_errors_are_one_line_and_exit_2(history) -> None:  # type: ignore[no-untyped-def]
    store, _ = history
    for args in (["runs", "--bogus"], ["nosuch"], ["show"], ["--store"], ["get", "a", "b", "c"]):
        line = one_error_line(invoke(*args, code=2))
        assert "Usage" not in line and "Error" not in line, line
    assert "--bogus" in one_error_line(invoke("--store", store, "runs", "--bogus", code=2))
    assert invoke("--help").stdout.startswith("Usage")
    assert invoke("runs", "--help").stdout.startswith("Usage")


def test_ls_counts_in_words_and_says_what_matched_nothing(history) -> None:  # type: ignore[no-untyped-def]
    store, blobs = history
    listing = invoke("ls", "--store", store, "--blobs", blobs, "-p", "p").stdout
    assert "   1 version   latest v0" in listing and "1 versions" not in listing
    nothing = invoke("ls", "--store", store, "-p", "p", "--type", "checkpoint").stdout
    assert nothing == "no artifacts in project p, of type checkpoint\n"
    assert invoke("ls", "--store", store, "--type", "x").stdout.startswith("no artifacts in any")


def test_get_into_a_file_says_a_version_downloads_into_a_folder(history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, blobs = history
    target = tmp_path / "model.bin"
    target.write_bytes(b"mine")
    result = invoke("get", "model:prod", "--store", store, "--blobs", blobs, "-p", "p",
                    "-o", str(target), code=4)  # fmt: skip
    line = one_error_line(result)
    assert f"{target} is a file: a version downloads into a folder" in line, line
    assert "lineage get REF PATH -o TARGET" in line
    assert target.read_bytes() == b"mine"  # nothing changed
