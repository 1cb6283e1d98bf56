"""A full disk refuses the write with one error naming the store, and keeps nothing of it.

(The soak's tests/reliability/test_full_disk.py fills the disk to random headroom, many
rounds; this one pins the messages and the failed run's state, in the fast suite.)

A real full disk, not a patched ``write``: the store and its blobs live on a 4 MiB tmpfs
mounted in a private mount namespace (``unshare -m`` as root, ``unshare -Urm`` otherwise), so
the mount vanishes with the process and nothing on the machine is touched. Inside it a script
logs a version, then a file larger than the disk (the blob store fills), then a version while
the graph store's own disk is full, then frees the space and logs again. The README's
"Guarantees" section cites this test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from ports import free_port

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    import lineage
    from lineage.hashing import hash_file

    root, work = Path(sys.argv[1]), Path(sys.argv[2])
    os.chdir(work)
    store, blobs = str(root / "graph"), str(root / "blobs")
    api = lineage.Api(store=store, blobs=blobs, create=True)
    report = {}

    def log(name, **metadata):
        run_id = None
        try:
            with lineage.init(project="p", store=store, blobs=blobs) as run:
                run_id = run.id
                art = lineage.Artifact("ds", type="dataset", metadata=metadata)
                art.add_file(name)
                return {"version": run.log_artifact(art).version}
        except Exception as exc:
            return {"error": f"{type(exc).__module__}.{type(exc).__name__}: {exc}",
                    "run": run_id}

    def state():
        versions = [v.version for v in api.versions("ds", project="p")]
        files = [p.relative_to(root / "blobs") for p in (root / "blobs").rglob("*") if p.is_file()]
        temporaries = [str(p) for p in files if p.parts[0] == "tmp"]
        wrong = [str(p) for p in files if p.parts[0] != "tmp"
                 and hash_file(root / "blobs" / p)[0] != "".join(p.parts[-2:])]
        return {"versions": versions, "wrong_blobs": wrong, "temporaries": temporaries}

    Path("small.txt").write_text("alpha")
    report["first"] = log("small.txt")
    Path("big.bin").write_bytes(os.urandom(8 << 20))  # twice the disk
    report["blobs_full"] = log("big.bin")
    if report["blobs_full"].get("run"):
        report["blobs_full_run"] = api.run(report["blobs_full"]["run"]).state
    report["after_blobs_full"] = state()

    with open(root / "filler", "wb") as filler:  # fill what is left
        try:
            while True:
                filler.write(bytes(65536))
                filler.flush()
        except OSError:
            pass
    Path("second.txt").write_text("beta")
    report["graph_full"] = log("second.txt")
    (root / "filler").unlink()
    report["after_graph_full"] = state()
    report["freed"] = log("second.txt")
    report["end"] = state()
    for ref in ("p/ds:v0", "p/ds:v1"):  # every visible version verifies, byte for byte
        api.artifact_version(ref).verify()
    out = api.artifact_version("p/ds:v1").download(work / "out")
    report["v1_bytes"] = (out / "second.txt").read_text()
    print(json.dumps(report))
    """
)


SERVER_SCRIPT = textwrap.dedent(
    """
    import contextlib, json, os, subprocess, sys, time
    from pathlib import Path
    import httpx
    import lineage
    from lineage.hashing import hash_bytes
    from lineage.server.app import open_service
    from lineage.server.auth import create_token

    root, work, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    os.chdir(work)
    store = str(root / "store")
    service = open_service(store)
    token = create_token(service, "write", "full-disk")
    service.graph.close()
    lineage_cli = str(Path(sys.executable).parent / "lineage")
    server = subprocess.Popen([lineage_cli, "--store", store, "server", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    report = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "lineage server exited"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "lineage server did not start"
            time.sleep(0.05)
        body = os.urandom(8 << 20)  # twice the disk
        digest = hash_bytes(body)
        answer = httpx.put(f"{url}/blobs/{digest}", content=body, timeout=60,
                           headers={"Authorization": f"Bearer {token}"})
        report["put"] = {"status": answer.status_code, "body": answer.json(),
                         "retry_after": answer.headers.get("retry-after")}
        Path("big.bin").write_bytes(body)
        try:
            with lineage.init(project="p", store=url, token=token) as run:
                art = lineage.Artifact("ds", type="dataset")
                art.add_file("big.bin")
                run.log_artifact(art)
        except Exception as exc:
            report["sdk"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
        blobs = root / "store" / "blobs"
        report["kept"] = sorted(str(p.relative_to(blobs)) for p in blobs.rglob("*") if p.is_file())
        versions = lineage.Api(store=store).versions("ds", project="p")
        report["versions"] = [v.version for v in versions]
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(report))
    """
)


def namespace() -> list[str]:
    """The command that runs a shell in a private mount namespace where it may mount."""
    unshare = shutil.which("unshare")
    assert unshare, "util-linux's unshare is needed for the full-disk test"
    for command in ([unshare, "-m"], [unshare, "-Urm"]):
        if subprocess.run([*command, "true"], capture_output=True).returncode == 0:
            return command
    raise AssertionError("neither `unshare -m` nor `unshare -Urm` works on this machine")


def test_a_full_disk_keeps_nothing_and_logging_resumes(tmp_path: Path) -> None:
    disk, work = tmp_path / "disk", tmp_path / "work"
    disk.mkdir()
    work.mkdir()
    (tmp_path / "script.py").write_text(SCRIPT)
    shell = (
        f"mount -t tmpfs -o size=4m tmpfs {disk} && "
        f"exec {sys.executable} {tmp_path / 'script.py'} {disk} {work}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    done = subprocess.run(
        [*namespace(), "sh", "-c", shell], capture_output=True, text=True, env=env, timeout=240
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])

    assert report["first"] == {"version": "v0"}
    # the blob store filled: one error naming the blob store, the run failed, nothing kept
    blobs_full = report["blobs_full"]
    assert blobs_full["error"] == (
        f"lineage.errors.StorageFull: {disk / 'blobs'}: No space left on device"
    )
    assert report["blobs_full_run"] == "failed"
    assert report["after_blobs_full"] == {"versions": ["v0"], "wrong_blobs": [], "temporaries": []}
    # the graph store's disk filled: one error naming the database, nothing kept
    graph_full = report["graph_full"]
    assert graph_full["error"].startswith(f"lineage.errors.StorageFull: {disk / 'graph'}")
    assert graph_full["error"].endswith(
        ": No space left on device (database or disk is full); nothing was written"
    )
    assert report["after_graph_full"]["versions"] == ["v0"]
    assert report["after_graph_full"]["wrong_blobs"] == []
    # space freed: the same code logs the next version, with no gap in the indexes
    assert report["freed"] == {"version": "v1"}
    assert report["end"] == {"versions": ["v0", "v1"], "wrong_blobs": [], "temporaries": []}
    assert report["v1_bytes"] == "beta"


def test_a_server_with_a_full_disk_answers_507_and_keeps_nothing(tmp_path: Path) -> None:
    """A PUT the server's disk cannot hold is HTTP 507 naming the full disk (not a 500, not a
    503 a client would retry), and the SDK logging through that server says the server's disk
    is full, with nothing kept: no blob, no temporary, no version."""
    disk, work = tmp_path / "disk", tmp_path / "work"
    disk.mkdir()
    work.mkdir()
    (tmp_path / "script.py").write_text(SERVER_SCRIPT)
    shell = (
        f"mount -t tmpfs -o size=4m tmpfs {disk} && "
        f"exec {sys.executable} {tmp_path / 'script.py'} {disk} {work} {free_port()}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    done = subprocess.run(
        [*namespace(), "sh", "-c", shell], capture_output=True, text=True, env=env, timeout=240
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])

    put = report["put"]
    assert put["status"] == 507, put
    assert put["body"]["error"]["code"] == "INSUFFICIENT_STORAGE"
    assert "No space left on device" in put["body"]["error"]["message"]
    assert put["retry_after"] is None
    assert report["sdk"].startswith("lineage.errors.StorageFull: http://127.0.0.1:")
    assert "the server's disk is full" in report["sdk"]
    assert report["kept"] == []
    assert report["versions"] == []
