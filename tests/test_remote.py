"""The SDK against a real lineage server on loopback: same code, remote stores."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import snapshot
from older_server import older, serving
from ports import free_port
from server_process import ServerProcess

import lineage
from lineage.client import Client
from lineage.manifest import manifest_digests
from lineage.records import ArtifactRecord, CodeVersion, RunRecord, Subgraph, VersionRecord
from lineage.remote import RemoteService
from lineage.retry import ENV
from lineage.server.app import create_app, open_service
from lineage.server.auth import create_token
from lineage.server.serving import background
from lineage.storage import http, open_blobs
from lineage.storage.http import BATCH_BELOW


@dataclass
class Remote:
    url: str
    write: str
    read: str
    backend: object


@pytest.fixture
def remote(backend, workdir) -> Iterator[Remote]:  # type: ignore[no-untyped-def]
    service = open_service(backend.store, backend.blobs)
    write = create_token(service, "write", "sdk")
    read = create_token(service, "read", "reader")
    service.graph.close()
    with background(backend.store, backend.blobs) as url:
        yield Remote(url=url, write=write, read=read, backend=backend)


def files(root: Path, count: int, size: int = 64) -> Path:
    for i in range(count):
        path = root / f"part-{i // 100:03d}" / f"{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{i:08d}".encode() * (size // 8))
    return root


def test_same_sdk_code_logs_remotely(remote: Remote, tmp_path: Path) -> None:
    Path("w.bin").write_bytes(b"base weights")
    with lineage.init(
        project="surgery", job_type="pretrain", store=remote.url, token=remote.write
    ) as run:
        art = lineage.Artifact("policy", type="model", metadata={"step": 0})
        art.add_file("w.bin")
        v0 = run.log_artifact(art, aliases=["base"])
    assert v0.ref == "surgery/policy:v0" and set(v0.aliases) == {"base", "latest"}
    with lineage.init(
        project="surgery", job_type="finetune", store=remote.url, token=remote.write
    ) as run:
        base = run.use_artifact("policy:base")
        out = base.download(tmp_path / "got")
        assert (out / "w.bin").read_bytes() == b"base weights"
        Path("w.bin").write_bytes(b"tuned weights")
        art = lineage.Artifact("policy", type="model")
        art.add_file("w.bin")
        v1 = run.log_artifact(art)
        run.log({"acc": 0.9})
    api = lineage.Api(store=remote.url, token=remote.read, project="surgery")
    graph = api.lineage("policy:v1", "upstream", 20)
    assert {n.id for n in graph.nodes} == {
        "surgery/policy:v0",
        "surgery/policy:v1",
        run.id,
        v0.created_by,
    }
    assert {(e.source, e.target, e.kind) for e in graph.edges} >= {
        ("surgery/policy:v0", run.id, "consumed_by"),
        (run.id, "surgery/policy:v1", "produced"),
    }
    assert api.run(run.id).summary == {"acc": 0.9}
    assert [(e.source, e.target) for e in api.tree("policy:v0").edges] == [(v0.ref, v1.ref)]
    api.artifact_version("policy:v1").verify()
    # the server's own stores hold exactly what the SDK sent
    local = lineage.Api(store=remote.backend.store, blobs=remote.backend.blobs, project="surgery")  # type: ignore[attr-defined]
    assert local.artifact_version("policy:v1").digest == v1.digest
    local.artifact_version("policy:v1").verify()


def test_only_missing_blobs_travel(remote: Remote, workdir: Path) -> None:
    data = files(workdir / "data", 10_000)
    with lineage.init(project="p", store=remote.url, token=remote.write) as run:
        art = lineage.Artifact("ds", type="dataset")
        art.add_dir(data)
        run.log_artifact(art)
    blobs = Client.shared(remote.url, token=remote.write).blobs
    first = blobs.bytes_sent  # type: ignore[attr-defined]
    assert first >= 10_000 * 64
    (data / "part-042" / "04217.bin").write_bytes(b"changed!" * 8)
    with lineage.init(project="p", store=remote.url, token=remote.write) as run:
        art = lineage.Artifact("ds", type="dataset")
        art.add_dir(data)
        v1 = run.log_artifact(art)
    sent = blobs.bytes_sent - first  # type: ignore[attr-defined]
    # one 64-byte file, one manifest page and the manifest root: a few KB, not 640 KB
    assert 64 < sent < 40_000, sent
    assert v1.ref == "p/ds:v1" and v1.record.file_count == 10_000


def test_wrong_or_missing_token_writes_nothing(remote: Remote) -> None:
    Path("w.bin").write_bytes(b"w")
    with pytest.raises(lineage.LineageError) as caught:
        lineage.init(project="p", store=remote.url, token="lin_abcdefgh_" + "0" * 64)
    assert caught.value.code == "UNAUTHENTICATED"
    with pytest.raises(lineage.LineageError) as caught:
        lineage.init(project="p", store=remote.url, token=remote.read)
    assert caught.value.code == "FORBIDDEN"
    with pytest.raises(lineage.LineageError) as caught:
        lineage.init(project="p", store=remote.url)  # anonymous: reads only
    assert caught.value.code in ("UNAUTHENTICATED", "FORBIDDEN")
    assert lineage.Api(store=remote.url, token=remote.read).runs("p") == []


def test_remote_refusals_are_the_service_errors(remote: Remote) -> None:
    with lineage.init(project="p", store=remote.url, token=remote.write) as run:
        with pytest.raises(lineage.NotFound, match=r"nearest|no artifact"):
            run.use_artifact("ghost:v0")
        Path("w.bin").write_bytes(b"mine")
        art = lineage.Artifact("m", type="model")
        art.add_file("w.bin")
        v = run.log_artifact(art)
        with pytest.raises(lineage.Conflict, match="acyclic"):
            run.use_artifact(v.ref)


def test_remote_runs_page_after_a_run(remote: Remote) -> None:
    """``runs(after=)`` from a run the client holds: exactly the runs after it, although
    the client sees times to the microsecond and the server keeps them to the float."""
    for _ in range(4):
        with lineage.init(project="paged", store=remote.url, token=remote.write):
            pass
    service = Client.shared(remote.url, token=remote.read).service
    runs = service.runs("paged")
    assert len(runs) == 4
    for i, run in enumerate(runs):  # times reach the client rounded to the microsecond
        assert service.runs("paged", after=(run.started_at, run.id)) == runs[i + 1 :]


def test_a_remote_run_keeps_its_script_and_command(remote: Remote) -> None:
    """The code a run records (commit, dirty, script, command line) reaches the server whole,
    and reads back the same through the server and from its store."""
    code = CodeVersion(
        commit="a" * 40,
        dirty=True,
        remote="git@example.org:team/repo.git",
        script="train/finetune.py",
        command=("train/finetune.py", "--lr", "3e-5", "--token", "***"),
    )
    far = RemoteService(remote.url, token=remote.write)
    try:
        started = far.start_run(project="coded", job_type="train", code=code)
        assert far.get_run(started.id).code == code
    finally:
        far.close()
    local = open_service(remote.backend.store, remote.backend.blobs)  # type: ignore[attr-defined]
    try:
        assert local.get_run(started.id).code == code
    finally:
        local.graph.close()


def test_unreachable_server_gives_up_after_its_budget(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "1")
    port = free_port()  # nothing listens there
    with pytest.raises(lineage.StoreUnavailable, match=f"127.0.0.1:{port}") as caught:
        lineage.init(project="p", store=f"http://127.0.0.1:{port}", token="x")
    assert f"{ENV} sets how long to keep trying: 1s" in str(caught.value)


def test_offline_mode_logs_locally(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_STORE", remote.url)
    monkeypatch.setenv("LINEAGE_MODE", "offline")
    Path("w.bin").write_bytes(b"offline")
    with lineage.init(project="p") as run:
        art = lineage.Artifact("m", type="model")
        art.add_file("w.bin")
        run.log_artifact(art)
    assert lineage.Api(store=".lineage", project="p").artifact_version("m:v0").size == 7
    online = lineage.Api(store=remote.url, token=remote.read, mode="online")
    assert online.runs("p") == []


def test_offline_use_of_what_the_local_store_does_not_know_says_why(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, a version resolved online is consumed by its version; an alias (the server's)
    or a version never seen here is refused saying the run is offline and what it knows."""
    monkeypatch.setenv("LINEAGE_STORE", remote.url)
    online = {"token": remote.write, "mode": "online"}
    Path("w.bin").write_bytes(b"base")
    with lineage.init(project="p", job_type="pretrain", **online) as run:  # type: ignore[arg-type]
        art = lineage.Artifact("policy", type="model")
        art.add_file("w.bin")
        run.log_artifact(art, aliases=["golden"])
    with lineage.init(project="p", job_type="probe", **online) as run:  # type: ignore[arg-type]
        run.use_artifact("policy:golden")  # resolved online: remembered locally, as v0

    with lineage.init(project="p", job_type="finetune", mode="offline") as offline:
        assert offline.use_artifact("policy:v0").ref == "p/policy:v0"
        for ref in ("policy:golden", "other:v0"):
            with pytest.raises(lineage.NotFound) as caught:
                offline.use_artifact(ref)
            said = str(caught.value)
            assert "(offline: this run logs into .lineage" in said, said
            assert f"the versions of {remote.url} that a run resolved online before" in said
    # a run that is not offline says nothing of it
    with lineage.init(project="p", store=".lineage") as local:
        with pytest.raises(lineage.NotFound) as caught:
            local.use_artifact("other:v0")
        assert "offline" not in str(caught.value)


def test_offline_then_sync(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from lineage.cli import cli
    from lineage.remote import RemoteService
    from lineage.storage import open_stores
    from lineage.sync import state_path, sync_project

    def log(run: lineage.Run, content: bytes) -> lineage.ArtifactVersion:
        Path("w.bin").write_bytes(content)
        art = lineage.Artifact("policy", type="model")
        art.add_file("w.bin")
        return run.log_artifact(art)

    online = {"store": remote.url, "token": remote.write, "mode": "online"}
    with lineage.init(project="p", job_type="pretrain", **online) as run:  # type: ignore[arg-type]
        log(run, b"base")
    with lineage.init(project="p", job_type="probe", **online) as run:  # type: ignore[arg-type]
        run.use_artifact("policy:v0")  # resolved online: remembered locally

    with lineage.init(project="p", job_type="finetune", mode="offline") as offline:
        offline.use_artifact("p/policy:v0")
        mine = log(offline, b"tuned on a plane")
        offline.log({"loss": 0.1})
    assert mine.ref == "p/policy:v1"  # numbered locally
    with lineage.init(project="p", job_type="finetune", **online) as run:  # type: ignore[arg-type]
        log(run, b"tuned on the ground")  # meanwhile, the server's v1

    result = CliRunner().invoke(
        cli, ["sync", "--to", remote.url, "--token", remote.write], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "p/policy:v1 is p/policy:v2 on the server" in result.output

    api = lineage.Api(store=remote.url, token=remote.read, project="p", mode="online")
    synced = api.artifact_version("policy:v2")
    assert synced.digest == mine.digest
    assert [r.id for r in synced.logged_by()] == [offline.id]
    assert api.run(offline.id).summary == {"loss": 0.1} and api.run(offline.id).state == "finished"
    assert (
        offline.id in api.lineage("policy:v2").ids and "p/policy:v0" in api.lineage("policy:v2").ids
    )
    synced.verify()

    # a second sync sends nothing
    local = open_stores(".lineage")
    service = RemoteService(remote.url, token=remote.write)
    before = (service.requests, service.blobs.bytes_sent)
    report = sync_project(local, service, "p", state_path(Path(".lineage"), remote.url))
    assert (service.requests, service.blobs.bytes_sent) == before
    assert (report.runs, report.versions, report.edges, report.blobs) == (0, 0, 0, 0)
    service.close()
    local.close()


def test_sync_retries_under_the_same_budget(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``lineage sync`` talks to its server under the SDK's policy: LINEAGE_RETRY_SECONDS sets
    how long it waits for one that does not answer, and a bad value is refused the same way."""
    from click.testing import CliRunner

    from lineage.cli import cli

    with lineage.init(project="p", mode="offline") as run:
        run.log({"loss": 0.1})
    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv(ENV, "0.5")
    result = CliRunner().invoke(cli, ["sync", "--to", gone])
    assert result.exit_code == 6, result.output  # StoreUnavailable
    assert re.search(r"\d+ attempts in \d+\.\ds", result.output), result.output
    assert f"{ENV} sets how long to keep trying: 0.5s" in result.output
    monkeypatch.setenv(ENV, "soon")
    result = CliRunner().invoke(cli, ["sync", "--to", gone])
    assert result.exit_code == 2, result.output  # InvalidInput
    assert f"{ENV} must be a number of seconds" in result.output


def _open_files() -> list[str]:
    """What this process holds open under the working directory (its stores' files)."""
    fds = Path("/proc/self/fd")
    held = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # the listing's own fd, closed by now
            continue
        if target.startswith(str(Path.cwd())):
            held.append(target)
    return sorted(held)


def test_sync_to_a_server_that_fails_closes_the_local_store(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync whose server cannot be reached says so, and leaves the local store closed: it
    held the SQLite database (and its WAL) open until the process ended."""
    from click.testing import CliRunner

    from lineage.cli import cli
    from lineage.client import _close_all

    with lineage.init(project="p", mode="offline") as run:
        run.log({"loss": 0.1})
    _close_all()  # the SDK's stores: SQLite holds a closed connection's file while another is open
    assert _open_files() == []
    monkeypatch.setenv(ENV, "0.2")
    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(cli, ["sync", "--to", gone])
    assert result.exit_code == 6, result.output  # StoreUnavailable
    assert result.output.startswith(f"error: lineage server {gone} unreachable"), result.output
    assert result.exception is not None  # held by the runner, and with it the failed frames
    assert _open_files() == []


def test_a_killed_upload_leaves_no_version_and_resumes(remote: Remote, workdir: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    # 25 MiB in 100 files, each sent by a PUT of its own (smaller ones travel in batches)
    data = files(workdir / "big", 100, size=BATCH_BELOW)
    code = (
        "import sys, lineage\n"
        "with lineage.init(project='p', store=sys.argv[1], token=sys.argv[2]) as run:\n"
        "    art = lineage.Artifact('big', type='dataset')\n"
        "    art.add_dir(sys.argv[3])\n"
        "    run.log_artifact(art)\n"
    )
    blob_dir = Path(remote.backend.blobs)  # type: ignore[attr-defined]

    def stored() -> int:
        return sum(1 for p in blob_dir.glob("??/*")) if blob_dir.exists() else 0

    child = subprocess.Popen(
        [sys.executable, "-c", code, remote.url, remote.write, str(data)], env=os.environ
    )
    deadline = time.monotonic() + 60
    while stored() < 12 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    arrived = stored()
    assert 0 < arrived < 100, arrived  # killed part-way
    api = lineage.Api(store=remote.url, token=remote.read, project="p", mode="online")
    assert api.artifacts() == []  # no visible version
    with lineage.init(project="p", store=remote.url, token=remote.write) as run:
        art = lineage.Artifact("big", type="dataset")
        art.add_dir(data)
        before = Client.shared(remote.url, token=remote.write).blobs.bytes_sent  # type: ignore[attr-defined]
        version = run.log_artifact(art)
    sent = Client.shared(remote.url, token=remote.write).blobs.bytes_sent - before  # type: ignore[attr-defined]
    assert sent <= (100 - arrived + 5) * BATCH_BELOW  # what had arrived was not sent again
    assert version.ref == "p/big:v0" and version.record.file_count == 100
    version.verify()


# the server restarted mid-upload -------------------------------------------------------------
# A client that must ride out a restart is given a generous budget (a loaded machine restarts
# a server slowly); one that must give up, a short one: both outcomes are then certain.

PATIENT = "120"  # seconds of LINEAGE_RETRY_SECONDS


@dataclass
class Restart:
    server: ServerProcess
    write: str
    read: str
    data: Path
    files: int = 200
    run: lineage.Run | None = None  # the last one started

    def log(self) -> lineage.ArtifactVersion:
        """The user's code, the same every time it is run."""
        with lineage.init(project="p", store=self.server.url, token=self.write) as run:
            self.run = run
            art = lineage.Artifact("big", type="dataset")
            art.add_dir(self.data)
            return run.log_artifact(art)

    def sent(self) -> int:
        blobs = Client.shared(self.server.url, token=self.write).blobs
        return blobs.bytes_sent  # type: ignore[attr-defined, no-any-return]

    def landed(self, pid: int) -> set[str]:
        """Digests that server life ``pid`` stored and answered 2xx for."""
        return {d for p, d, status in self.server.puts() if p == pid and status < 300}

    def server_state(self) -> dict[str, object]:
        service = open_service(self.server.store, self.server.blobs)
        try:
            return snapshot(service.graph, service.blobs)
        finally:
            service.graph.close()


@pytest.fixture
def restart(backend, workdir, tmp_path: Path, monkeypatch) -> Iterator[Restart]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(ENV, PATIENT)
    # every blob by PUT, one at a time: what these tests count and crash the server between
    monkeypatch.setattr(http, "BATCH_BELOW", 0)
    service = open_service(backend.store, backend.blobs)
    write = create_token(service, "write", "sdk")
    read = create_token(service, "read", "reader")
    service.graph.close()
    server = ServerProcess(
        backend.store, backend.blobs, port=free_port(), log=tmp_path / "puts.log"
    )
    try:
        yield Restart(
            server=server, write=write, read=read, data=files(workdir / "big", 200, 64 * 1024)
        )
    finally:
        server.stop()


CRASH_AFTER = 60  # blob PUTs answered before the server dies, of 200 files and the manifest


def blob_count(restart: Restart, tmp_path: Path) -> int:
    """How many blobs a version of the dataset occupies: its files and its manifest."""
    with lineage.init(project="p", store=str(tmp_path / "count")) as run:
        art = lineage.Artifact("big", type="dataset")
        art.add_dir(restart.data)
        version = run.log_artifact(art)
    return restart.files + len(
        manifest_digests(open_blobs(str(tmp_path / "count" / "blobs")), version.digest)
    )


@pytest.mark.parametrize("crash", ["during-files", "before-commit"])
def test_server_restarted_mid_upload_while_the_client_retries(
    restart: Restart, crash: str, tmp_path: Path
) -> None:
    server = restart.server
    # part-way through the files; or after the last blob, so that the commit finds it gone
    crash_after = CRASH_AFTER if crash == "during-files" else blob_count(restart, tmp_path)
    server.start(crash_after=crash_after)
    first_life = server.process.pid  # type: ignore[union-attr]
    at_crash: dict[str, object] = {}

    def restart_at_once() -> None:
        at_crash["status"] = server.wait()
        at_crash.update(restart.server_state())  # what the stores hold while nobody serves
        server.start()  # the same port, the same stores

    restarter = threading.Thread(target=restart_at_once)
    restarter.start()
    version = restart.log()  # rides out the restart with its retries
    restarter.join()

    landed = restart.landed(first_life)
    assert at_crash["status"] == -signal.SIGKILL
    assert len(landed) == crash_after
    assert at_crash["versions"] == [] and at_crash["edges"] == []  # nothing visible yet
    assert set(at_crash["blobs"]) == landed  # type: ignore[call-overload]
    second_life = server.process.pid  # type: ignore[union-attr]
    resent = restart.landed(second_life) & landed
    assert resent == set()  # what had landed was not sent again
    assert version.ref == "p/big:v0" and version.record.file_count == restart.files
    version.verify()

    # the same code again: the same version, nothing uploaded, no duplicate anything
    puts, before = len(server.puts()), restart.sent()
    again = restart.log()
    assert (again.ref, again.digest) == (version.ref, version.digest)
    assert len(server.puts()) == puts and restart.sent() == before
    state = restart.server_state()
    runs = state["runs"]
    assert [v.id for v in state["versions"]] == ["p/big:v0"]  # type: ignore[attr-defined]
    assert len(runs) == 2  # type: ignore[arg-type]
    # each run produced the version once (the second as a reproduction); no edge twice
    assert state["edges"] == sorted((r.id, "p/big:v0", "produced") for r in runs)  # type: ignore[attr-defined]


def test_server_down_until_the_client_gives_up_then_restarted(
    restart: Restart, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "1")
    server = restart.server
    server.start(crash_after=CRASH_AFTER)
    first_life = server.process.pid  # type: ignore[union-attr]
    with pytest.raises(lineage.StoreUnavailable, match=re.escape(server.url)) as caught:
        restart.log()
    # the upload's own error, saying how far it got (not a later one from marking the run)
    assert re.search(r"\b\d+ of \d+ files were uploaded", str(caught.value)), caught.value
    assert f"{ENV} sets how long to keep trying: 1s" in str(caught.value)
    assert server.wait() == -signal.SIGKILL
    landed = restart.landed(first_life)
    assert len(landed) == CRASH_AFTER
    server.start()  # the same port, the same stores
    api = lineage.Api(store=server.url, token=restart.read, project="p", mode="online")
    assert api.artifacts() == []  # no visible version
    failed = restart.run
    assert failed is not None and api.run(failed.id).state == "running"  # nobody could say
    failed.finish(state="failed", error="server gone")  # as it would at exit
    assert api.run(failed.id).state == "failed"

    before = restart.sent()
    version = restart.log()
    sent = restart.landed(server.process.pid)  # type: ignore[union-attr]
    stored = open_blobs(server.blobs)
    file_digests = {entry.digest for entry in version.manifest()}
    assert sent & landed == set()  # what had landed was not sent again
    # the files that had not landed and the manifest travelled, nothing else
    assert sent == (file_digests - landed) | manifest_digests(stored, version.digest)
    assert restart.sent() - before == sum(stored.size(d) or 0 for d in sent)
    assert version.ref == "p/big:v0" and version.record.file_count == restart.files
    version.verify()
    state = restart.server_state()
    assert [v.id for v in state["versions"]] == ["p/big:v0"]  # type: ignore[attr-defined]
    assert state["edges"] == [(version.created_by, "p/big:v0", "produced")]


@pytest.mark.parametrize("mutation", ["createRun", "commitVersion", "finishRun"])
def test_server_killed_after_a_mutation_before_its_answer(restart: Restart, mutation: str) -> None:
    """The request did its work, the answer never came: the client's retry must not do it
    twice (a second run) nor refuse what is already done (a finished run)."""
    server = restart.server
    server.start(crash_on=mutation)

    def restart_at_once() -> None:
        server.wait()
        server.start()  # the same port, the same stores, no more crashes

    restarter = threading.Thread(target=restart_at_once)
    restarter.start()
    version = restart.log()  # the retry reaches the restarted server
    restarter.join()
    state = restart.server_state()
    [run] = state["runs"]  # type: ignore[misc]
    assert run.id == version.created_by and run.state == "finished"
    assert [v.id for v in state["versions"]] == ["p/big:v0"]  # type: ignore[attr-defined]
    assert state["edges"] == [(run.id, "p/big:v0", "produced")]
    version.verify()


GONE_FOR_GOOD = """
import sys, lineage
with lineage.init(project="p", store=sys.argv[1], token=sys.argv[2]) as run:
    print(run.id, flush=True)
    sys.stdin.readline()  # the server is stopped meanwhile, for good
    run.log({"acc": 0.5})
"""


def test_a_script_whose_server_is_gone_for_good_waits_out_one_budget(
    restart: Restart, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call that finds the server gone retries for the budget, then raises; marking the
    run failed (on leaving the ``with`` block, then at exit) is tried once each, not for a
    budget each: a long budget does not hold a script's end for a multiple of itself. Nothing
    is spooled: the run stays ``running`` on the server (``lineage sync`` sends only what
    LINEAGE_MODE=offline logged)."""
    monkeypatch.setenv(ENV, "5")
    server = restart.server
    server.start()
    (workdir / "job.py").write_text(GONE_FOR_GOOD)
    with subprocess.Popen(
        [sys.executable, "job.py", server.url, restart.write],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    ) as job:
        assert job.stdout is not None and job.stdin is not None
        run_id = job.stdout.readline().strip()
        server.stop()
        job.stdin.write("go\n")
        job.stdin.flush()
        _, stderr = job.communicate(timeout=300)
    assert job.returncode == 1, stderr
    assert "StoreUnavailable" in stderr and server.url in stderr
    # one budget spent, by the call that found the server gone
    assert len(re.findall(r"\d+ attempts in \d+\.\ds", stderr)) == 1, stderr
    assert f"could not mark run {run_id} failed (will try at exit)" in stderr
    assert f"could not finish run {run_id} at exit" in stderr
    assert stderr.count("not retried: it was given up on") == 2, stderr
    server.start()
    api = lineage.Api(store=server.url, token=restart.read, project="p", mode="online")
    assert api.run(run_id).state == "running"  # nobody could tell it


# the remote service answers as the local one ---------------------------------------------------


def _key(value: object) -> object:
    """What both services must agree on (times reach a client to the microsecond, the pid
    not at all): refs, ids, states, aliases, digests."""
    if isinstance(value, VersionRecord):
        return (value.ref, value.state, value.aliases, value.digest, value.created_by)
    if isinstance(value, RunRecord):
        return (value.id, value.project, value.state, value.job_type)
    if isinstance(value, ArtifactRecord):
        return (value.project, value.name, value.type, value.description)
    if isinstance(value, Subgraph):
        edges = sorted((e.source, e.target, e.kind, e.run) for e in value.edges)
        return (sorted(value.ids), edges, value.truncated, value.root)
    if isinstance(value, list | tuple):
        return [_key(item) for item in value]
    if isinstance(value, dict):
        return {k: _key(v) for k, v in value.items()}
    return value


def test_remote_service_answers_as_the_local_one(remote: Remote) -> None:
    """Every LineageService method the SDK's reads use, through the server and on its stores."""
    with lineage.init(project="p", job_type="train", store=remote.url, token=remote.write) as run:
        for content in (b"zero", b"one", b"two"):
            Path("w.bin").write_bytes(content)
            art = lineage.Artifact("m", type="model", description="weights")
            art.add_file("w.bin")
            run.log_artifact(art)
    with lineage.init(project="p", job_type="eval", store=remote.url, token=remote.write) as ev:
        ev.use_artifact("m:v0")
        ev.use_artifact("m:v1")
    writer = lineage.Api(store=remote.url, token=remote.write, project="p")
    writer.set_alias("m:v1", "best")
    writer.delete("m:v0")
    far = RemoteService(remote.url, token=remote.read)
    near = open_service(remote.backend.store, remote.backend.blobs)  # type: ignore[attr-defined]
    try:
        calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = [
            ("count_runs", ("p",), {}),
            ("count_runs", ("p",), {"job_type": "eval", "state": "finished"}),
            ("count_found_runs", ("p",), {"filter": "job_type = eval"}),
            ("count_found_runs", (), {"filter": "state = finished"}),
            ("count_found_versions", ("p",), {"filter": "state = committed"}),
            ("count_found_versions", (), {}),
            ("run_io", (ev.id,), {}),
            ("run_io", (run.id,), {}),
            ("run_io", ("nosuchrun",), {}),
            ("latest", ("p", "m"), {}),
            ("latest", ("p", "ghost"), {}),
            ("get_artifact", ("p", "m"), {}),
            ("versions", ("p", "m"), {}),
            ("versions", ("p", "m"), {"include_deleted": True}),
            ("versions", ("p", "m"), {"include_deleted": True, "limit": 1, "after": 0}),
            ("versions", ("p", "m"), {"newest_first": True}),
            ("versions", ("p", "m"), {"include_deleted": True, "newest_first": True, "after": 2}),
            ("versions", ("p", "ghost"), {}),
            ("count_versions", ("p", "m"), {}),
            ("count_versions", ("p", "m"), {"include_deleted": True}),
            ("count_versions", ("p", "ghost"), {}),
            ("aliases", ("p", "m"), {}),
            ("resolve", ("p/m:v0",), {"include_deleted": True}),
            ("resolve", ("m:best", "p"), {}),
            ("producers", (near.resolve("p/m:v1"),), {}),
            ("consumers", (near.resolve("p/m:v1"),), {}),
            ("consumed", (["p/m:v0", "p/m:v1", "p/m:v2"],), {}),
            ("projects", (), {}),
            ("lineage", ("p/m:v1", "both", 3), {}),
        ]
        for name, args, kwargs in calls:
            want = _key(getattr(near, name)(*args, **kwargs))
            assert _key(getattr(far, name)(*args, **kwargs)) == want, (name, args, kwargs)
        assert _key(far.tree("p/m:v0")) == _key(near.tree("p/m:v0"))
        assert _key(far.path("p/m:v0", "p/m:v1")) == _key(near.path("p/m:v0", "p/m:v1"))
        assert _key(far.impact("p/m:v0")) == _key(near.impact("p/m:v0"))
        assert far.resolve("p/m:v0", include_deleted=True).state == "deleted"
        digest = near.resolve("p/m:v1").digest
        assert list(far.check_manifest(digest)) == list(near.check_manifest(digest))
        for refused, error in [
            (lambda s: s.active_run(ev.id), lineage.Conflict),
            (lambda s: s.resolve("p/m:v0"), lineage.NotFound),
            (lambda s: s.get_artifact("p", "ghost"), lineage.NotFound),
        ]:
            for service in (near, far):
                with pytest.raises(error):
                    refused(service)
        with pytest.raises(lineage.LineageError, match="gc"):
            far.gc(dry_run=True)
    finally:
        far.close()
        near.graph.close()


def test_a_storage_uri_resolves_the_same_both_ways(remote: Remote) -> None:
    """A dataset an OpenLineage job wrote, referred to by its storage URI (with a selector,
    as of a time): the remote service takes what the local one takes, answers the same
    version, and refuses with the same words, its error carrying the ref as typed."""
    from lineage.openlineage import check_event, ingest

    near = open_service(remote.backend.store, remote.backend.blobs)  # type: ignore[attr-defined]
    far = RemoteService(remote.url, token=remote.read)
    try:
        for kind, minute in (("START", 0), ("COMPLETE", 30)):
            event = {
                "eventType": kind, "eventTime": f"2025-03-01T00:{minute:02d}:00Z",
                "producer": "https://example.com/emitter",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": "01946b1c-0000-7000-8000-000000000001"},
                "job": {"namespace": "airflow://prod", "name": "load"},
                "inputs": [], "outputs": [{"namespace": "s3://lake", "name": "orders"}],
            }  # fmt: skip
            ingest(near, check_event(event))
        for ref in ("s3://lake/orders", "s3://lake/orders:v0", "s3://lake/orders:latest"):
            assert _key(far.resolve(ref)) == _key(near.resolve(ref)), ref
        assert near.resolve("s3://lake/orders").metadata["openlineage"]["name"] == "orders"
        for ref, said in [
            ("s3://lake/orders:v7", "s3://lake/orders:v7 does not exist; nearest versions of "
             "s3://lake/orders: v0 (latest)"),
            ("s3://lake/orders@2001-01-01", "s3://lake/orders:latest named no version at "
             "2001-01-01T00:00:00Z"),
            ("s3://lake/orders:v0@2001-01-01", "s3://lake/orders:v0 did not exist at "
             "2001-01-01T00:00:00Z"),
            ("s3://lake/nothing", "no artifact is recorded at 's3://lake/nothing': log a "
             "reference to it, or let an OpenLineage job read or write it"),
        ]:  # fmt: skip
            for service in (near, far):
                with pytest.raises(lineage.NotFound) as refused:
                    service.resolve(ref)
                assert (str(refused.value), refused.value.ref) == (said, ref), service  # type: ignore[attr-defined]
    finally:
        far.close()
        near.graph.close()


def test_an_older_server_without_batches_gets_puts(
    backend, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    service = open_service(backend.store, backend.blobs)
    write = create_token(service, "write", "sdk")
    service.graph.close()
    caplog.set_level(logging.INFO, logger="lineage.storage.http")
    data = files(workdir / "data", 300)
    with serving(older(create_app(backend.store, backend.blobs))) as url:
        for name in ("ds", "again"):
            with lineage.init(project="p", store=url, token=write) as run:
                art = lineage.Artifact(name, type="dataset")
                art.add_dir(data)
                version = run.log_artifact(art)
            (data / "part-001" / "00100.bin").write_bytes(name.encode() * 8)
        version.verify()
    assert version.record.file_count == 300
    said = [r.getMessage() for r in caplog.records if "no POST /blobs/batch" in r.getMessage()]
    assert len(said) == 1 and url in said[0]  # once a session, not once a batch
