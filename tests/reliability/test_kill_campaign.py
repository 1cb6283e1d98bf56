"""kill -9 at random points of SDK logging, into a local store and into a real server.

A child process runs the same user code every time: one run logging ``COUNT`` versions of an
artifact, each a folder of files (half of them shared with the other versions). The campaign
kills it with SIGKILL at a random moment (startup, hashing, publishing, uploading, commit,
finish), checks every invariant of :func:`campaign.check_store`, and again; then runs the same
code to its end, which must give exactly the versions it gives on a fresh store, in order.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign import LineageServer, Tally, check_store, python

import lineage
from lineage.server.app import open_service
from lineage.server.auth import create_token

pytestmark = pytest.mark.reliability

COUNT = 4  # versions the user code logs
FILES = 10  # files a version holds
SIZE = 96 * 1024

USER_CODE = """
import sys
from pathlib import Path
import lineage
store, blobs, token, project, name, data = sys.argv[1:7]
print("ready", flush=True)  # imported: what follows is lineage's work
with lineage.init(project=project, store=store, blobs=blobs or None, token=token or None) as run:
    for folder in sorted(Path(data).iterdir()):
        art = lineage.Artifact(name, type="dataset", metadata={"step": folder.name})
        art.add_dir(folder)
        version = run.log_artifact(art)
        print(version.ref, version.digest, flush=True)
"""


def dataset(root: Path, tag: str) -> Path:
    """``COUNT`` folders of ``FILES`` files; files 0..4 are the same in every folder."""
    for i in range(COUNT):
        folder = root / f"v{i}"
        folder.mkdir(parents=True)
        for j in range(FILES):
            seed = f"{tag}-shared-{j}" if j < FILES // 2 else f"{tag}-{i}-{j}"
            (folder / f"f{j}.bin").write_bytes(seed.encode().ljust(64, b".") * (SIZE // 64))
    return root


def expected(data: Path, scratch: Path) -> list[str]:
    """The digests the user code gives on a fresh store: v0, v1, ..."""
    digests = []
    with lineage.init(project="p", store=str(scratch)) as run:
        for folder in sorted(data.iterdir()):
            art = lineage.Artifact("x", type="dataset", metadata={"step": folder.name})
            art.add_dir(folder)
            digests.append(run.log_artifact(art).digest)
    return digests


@pytest.fixture(params=["local", "remote"])
def target(request, backend) -> Iterator[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    """``(mode, store, blobs, token)``: where the user code logs to."""
    service = open_service(backend.store, backend.blobs)
    token = create_token(service, "write", "campaign")
    service.graph.close()
    if request.param == "local":
        yield "local", backend.store, backend.blobs, ""
        return
    server = LineageServer(backend.store, backend.blobs)
    try:
        yield "remote", server.url, "", token
    finally:
        server.stop()


def test_kill_9_while_logging(target, backend, tmp_path: Path, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    mode, store, blobs, token = target
    with Tally("kill", f"{mode}-{backend.name}", share=1 / 4) as tally:
        # how long the user code takes here once imported, on bytes of the same shape that
        # no kill touches (in this process: what the child does after printing "ready")
        calib = dataset(tmp_path / "calib", "calib")
        started = time.monotonic()
        with lineage.init(
            project="calib", store=store, blobs=blobs or None, token=token or None
        ) as run:
            for folder in sorted(calib.iterdir()):
                art = lineage.Artifact("x", type="dataset", metadata={"step": folder.name})
                art.add_dir(folder)
                run.log_artifact(art)
        span = time.monotonic() - started
        for cycle in tally.rounds(fast=1):
            data = dataset(tmp_path / f"data{cycle}", f"cycle{cycle}")
            want = expected(data, tmp_path / f"expected{cycle}")
            name = f"data{cycle}"
            for _ in range(2 if not tally.soaking else tally.random.randint(1, 4)):
                child = python(
                    USER_CODE, store, blobs, token, "p", name, str(data), stdout=-1, cwd=workdir
                )
                assert child.stdout is not None and child.stdout.readline() == b"ready\n"
                time.sleep(tally.random.uniform(0, span))
                killed = child.poll() is None
                child.send_signal(signal.SIGKILL)
                child.wait()
                child.stdout.close()
                tally.add("kills" if killed else "finished_before_kill")
                span *= 1.1 if killed else 0.5  # aim within the logging, as it speeds up
                service = open_service(backend.store, backend.blobs)
                try:
                    check_store(tally, service)
                    got = [v.digest for v in service.graph.list_versions("p", name)]
                    tally.check(got == want[: len(got)], f"{name}: {got} not a prefix of {want}")
                finally:
                    service.graph.close()
            # the same code again, to its end: exactly the versions of a fresh store
            child = python(
                USER_CODE, store, blobs, token, "p", name, str(data), stdout=-1, cwd=workdir
            )
            out, _ = child.communicate(timeout=240)
            tally.check(child.returncode == 0, f"re-run exited {child.returncode}")
            lines = [line.split() for line in out.decode().splitlines()[1:]]
            refs = [f"p/{name}:v{i}" for i in range(COUNT)]
            tally.check(lines == [list(pair) for pair in zip(refs, want, strict=True)], str(lines))
            service = open_service(backend.store, backend.blobs)
            try:
                check_store(tally, service)
                got = [v.digest for v in service.graph.list_versions("p", name)]
                tally.check(got == want, f"{name}: {got} != {want}")
            finally:
                service.graph.close()
