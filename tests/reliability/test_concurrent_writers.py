"""Concurrent writers on both stores: processes logging versions of one artifact at once.

N processes x M versions of one artifact give exactly v0..v(NM-1), each logged content once,
``createdAt`` in version order; K processes logging identical bytes give one version, with
each of their runs as a producer.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from campaign import Tally, check_store, python

from lineage.server.app import open_service

pytestmark = pytest.mark.reliability

WRITER = """
import sys
from pathlib import Path
import lineage
store, blobs, name, tag, count = sys.argv[1:6]
print("ready", flush=True)
sys.stdin.readline()  # all together
with lineage.init(project="p", store=store, blobs=blobs) as run:
    for m in range(int(count)):
        path = Path(f"{tag}-{m}.bin")
        path.write_bytes(f"{tag}-{m}".encode() * 1000)
        art = lineage.Artifact(name, type="dataset")
        art.add_file(path, name="data.bin")
        version = run.log_artifact(art)
        print(version.ref, version.digest, run.id, flush=True)
"""


def together(writers: list[subprocess.Popen[bytes]]) -> list[list[list[str]]]:
    """Release the writers at once; what each printed, a list of words a line."""
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write(b"go\n")
        writer.stdin.flush()
    printed = []
    for writer in writers:
        out, _ = writer.communicate(timeout=240)
        assert writer.returncode == 0
        printed.append([line.split() for line in out.decode().splitlines()])
    return printed


def spawn(backend, cwd: Path, name: str, tag: str, count: int) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    cwd.mkdir(parents=True, exist_ok=True)
    return python(
        WRITER,
        backend.store,
        backend.blobs,
        name,
        tag,
        str(count),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=cwd,
    )


def test_n_writers_m_versions_of_one_artifact(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Tally("concurrent_writers", f"versions-{backend.name}", share=1 / 4) as tally:
        for round_ in tally.rounds(fast=1):
            n = 3 if not tally.soaking else tally.random.randint(2, 8)
            m = 4 if not tally.soaking else tally.random.randint(5, 40)
            name = f"shared{round_}"
            printed = together(
                [
                    spawn(backend, tmp_path / f"w{round_}-{i}", name, f"r{round_}w{i}", m)
                    for i in range(n)
                ]
            )
            tally.add("processes", n)
            tally.add("versions", n * m)
            logged = {digest for lines in printed for _, digest, _ in lines}
            service = open_service(backend.store, backend.blobs)
            try:
                versions = service.graph.list_versions("p", name)
                tally.check(
                    [v.index for v in versions] == list(range(n * m)),
                    f"{name}: indexes {[v.index for v in versions]}",
                )
                tally.check({v.digest for v in versions} == logged, f"{name}: digests differ")
                tally.check(len(logged) == n * m, f"{name}: {len(logged)} distinct of {n * m}")
                # each process saw its own versions in the order it logged them
                for lines in printed:
                    indexes = [int(ref.rsplit(":v", 1)[1]) for ref, _, _ in lines]
                    tally.check(indexes == sorted(indexes), f"{name}: {indexes} out of order")
                times = [v.created_at for v in versions]
                tally.check(times == sorted(times), f"{name}: createdAt not in version order")
                check_store(tally, service)
            finally:
                service.graph.close()


def test_identical_bytes_from_several_writers_give_one_version(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Tally("concurrent_writers", f"identical-{backend.name}", share=1 / 4) as tally:
        for round_ in tally.rounds(fast=1):
            k = 3 if not tally.soaking else tally.random.randint(2, 8)
            name = f"same{round_}"
            printed = together(
                [spawn(backend, tmp_path / f"s{round_}-{i}", name, "same", 1) for i in range(k)]
            )
            tally.add("processes", k)
            refs = {lines[0][0] for lines in printed}
            digests = {lines[0][1] for lines in printed}
            runs = {lines[0][2] for lines in printed}
            tally.check(refs == {f"p/{name}:v0"} and len(digests) == 1, str(printed))
            tally.check(len(runs) == k, f"{name}: {len(runs)} runs of {k} writers")
            service = open_service(backend.store, backend.blobs)
            try:
                versions = service.graph.list_versions("p", name, include_deleted=True)
                tally.check(len(versions) == 1, f"{name}: {len(versions)} versions")
                producers = {e.source for e in service.graph.expand([versions[0].id], "up")} & runs
                tally.check(producers == runs, f"{name}: producers {producers} of {runs}")
                check_store(tally, service)
            finally:
                service.graph.close()
