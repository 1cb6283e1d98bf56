"""A full disk under the stores: a real, small tmpfs holds the blob store (and the SQLite
store), mounted in a private mount namespace (``unshare``) by a child process.

Round after round the disk is filled to a few kilobytes of what a log needs, at random, and
the same user code logs: it either succeeds (the version verifies) or fails with one
LineageError line naming the full disk; either way every invariant of
:func:`campaign.check_store` holds and the process logs on. Once space is freed, the same
code completes with exactly one version. A log larger than the whole disk is refused the same
way, leaving no temporary file behind (the files that fitted are published, unreferenced,
for ``lineage gc``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from campaign import Tally, child_env

pytestmark = pytest.mark.reliability

DISK = "4m"

CHILD = """
import json, os, sys
from pathlib import Path
import lineage
from campaign import Tally, check_store
from lineage.server.app import open_service

disk, store, data, levels = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
store = store or str(disk / "store")
blobs = str(disk / "blobs")
tally = Tally("full_disk")
outcomes = {"stored": 0, "refused": 0}

def files(tag, count=3, size=40 * 1024):
    folder = data / tag
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{i}.bin").write_bytes(f"{tag}-{i}".encode().ljust(64, b".") * (size // 64))
    return folder

def attempt(run, name, folder):
    art = lineage.Artifact(name, type="dataset")
    art.add_dir(folder)
    try:
        version = run.log_artifact(art)
    except lineage.LineageError as error:
        text = str(error)
        tally.check("\\n" not in text and "No space left" in text, f"{name}: {text[:300]}")
        outcomes["refused"] += 1
        return None
    except Exception as error:
        tally.check(False, f"{name}: {type(error).__name__}: {error}"[:300])
        return None
    outcomes["stored"] += 1
    version.verify()
    return version

def invariants():
    service = open_service(store, blobs)
    try:
        check_store(tally, service)
    finally:
        service.graph.close()

with lineage.init(project="p", store=store, blobs=blobs) as run:
    # larger than the whole disk
    tally.check(attempt(run, "huge", files("huge", 8, 1024 * 1024)) is None, "huge stored")
    left = sorted(os.listdir(Path(blobs) / "tmp"))
    tally.check(left == [], f"a refused log left temporary files {left}")
    invariants()
    # the files of the refused log that did fit were published, unreferenced: gc's to reclaim
    service = open_service(store, blobs)
    try:
        tally.check(service.gc(grace=0).blobs_removed > 0, "nothing of the refused log to reclaim")
    finally:
        service.graph.close()
    for round_, leave in enumerate(int(x) for x in levels.split(",")):
        name = f"fill{round_}"
        folder = files(name)
        filler = disk / "filler"
        st = os.statvfs(disk)
        try:
            with filler.open("wb") as out:
                out.write(b"f" * max(0, st.f_bavail * st.f_frsize - leave))
        except OSError:
            pass  # full already
        attempt(run, name, folder)
        filler.unlink()
        invariants()
        again = attempt(run, name, folder)  # space again: the same code completes
        if again is None:
            st = os.statvfs(disk)
            sizes = sorted((p.stat().st_size, str(p)) for p in disk.rglob("*") if p.is_file())
            free = st.f_bavail * st.f_frsize
            tally.check(False, f"{name}: not logged again; free {free}, {sizes[-4:]}")
        else:
            tally.check(again.ref == f"p/{name}:v0", f"{name}: {again.ref}")
        service = open_service(store, blobs)
        try:
            versions = service.graph.list_versions("p", name, include_deleted=True)
            tally.check(len(versions) == 1, f"{name}: {len(versions)} versions")
        finally:
            service.graph.close()
invariants()
print(json.dumps({"figures": dict(tally.figures), "problems": tally.problems, **outcomes}))
"""


def test_full_disk_under_the_stores(
    backend: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    store = "" if backend.name == "sqlite" else backend.store
    with Tally("full_disk", backend.name, share=1 / 2) as tally:
        for round_ in tally.rounds(fast=1):
            if round_ and backend.name == "neo4j":
                # each round's disk is a new tmpfs: the graph must start empty with it
                request.getfixturevalue("neo4j_server").wipe()
            levels = [0, 16 * 1024, 200 * 1024]
            if tally.soaking:
                levels = [tally.random.randint(0, 300 * 1024) for _ in range(8)]
            command = [
                "unshare",
                "--user",
                "--map-root-user",
                "--mount",
                "sh",
                "-c",
                f'mount -t tmpfs -o size={DISK} tmpfs "$0" && exec "$@"',
                str(disk),
                sys.executable,
                "-c",
                CHILD,
                str(disk),
                store,
                str(tmp_path / "data"),
                ",".join(map(str, levels)),
            ]
            done = subprocess.run(
                command, env=child_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr[-3000:]
            found = json.loads(done.stdout.splitlines()[-1])
            tally.add("requests", found["stored"] + found["refused"])
            tally.add("refused", found["refused"])
            tally.add("stored", found["stored"])
            tally.figures["invariants"] += found["figures"].get("invariants", 0)
            tally.figures["violations"] += found["figures"].get("violations", 0)
            tally.problems += found["problems"]
            tally.check(found["refused"] >= 2, f"the disk was never full: {found}")
