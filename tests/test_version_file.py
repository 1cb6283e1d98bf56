"""One file of a version: ``version.file(path).download(target)`` and ``lineage get REF FILE``
fetch that file's blob alone, verified, from a local, an S3 and a remote (HTTP) store."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from s3_server import S3Server

import lineage
from lineage.cli import cli
from lineage.hashing import hash_bytes
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.server.serving import background
from lineage.storage import open_blobs

WEIGHTS = bytes(range(256)) * 4096  # 1 MiB, several chunks of any stream


def log(store: str, blobs: str | None, token: str | None = None) -> str:
    folder = Path("model")
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "sub" / "weights.bin").write_bytes(WEIGHTS)
    (folder / "config.json").write_text('{"lr": 0.1}')
    (folder / "notes.txt").write_text("other bytes")
    with lineage.init(project="p", job_type="train", store=store, blobs=blobs, token=token) as run:
        art = lineage.Artifact("model", type="model")
        art.add_dir(folder)
        return run.log_artifact(art).ref


def only_weights_left(blobs: str) -> None:
    """Delete the other files' blobs: a download that fetched them would fail."""
    store = open_blobs(blobs)
    gone = store.delete([hash_bytes(b'{"lr": 0.1}'), hash_bytes(b"other bytes")])
    assert gone == 2


def check(api: lineage.Api, ref: str, target: Path) -> None:
    version = api.artifact_version(ref)
    with pytest.raises(lineage.LineageError):  # the whole version can no longer be fetched
        version.download(target.parent / "everything")
    one = version.file("sub/weights.bin")
    assert (one.path, one.size, one.digest) == (
        "sub/weights.bin",
        len(WEIGHTS),
        hash_bytes(WEIGHTS),
    )
    assert one.download(target) == target and target.read_bytes() == WEIGHTS
    folder = target.parent / "into"
    folder.mkdir()
    assert one.download(folder).read_bytes() == WEIGHTS  # a folder: the file's name inside
    assert (folder / "weights.bin").exists()
    with pytest.raises(lineage.NotFound, match=r"has no file 'nope\.bin'"):
        version.file("nope.bin")


def test_local_store(backend, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    ref = log(backend.store, backend.blobs)
    only_weights_left(backend.blobs)
    check(lineage.Api(backend.store, backend.blobs), ref, workdir / "out" / "w.bin")


def test_s3_store(s3_server: S3Server, workdir: Path) -> None:
    bucket = s3_server.create_bucket(f"file-{uuid.uuid4().hex[:8]}")
    blobs = f"s3://{bucket}?endpoint_url={s3_server.endpoint_url}"
    store = str(workdir / "store")
    ref = log(store, blobs)
    only_weights_left(blobs)
    check(lineage.Api(store, blobs), ref, workdir / "w.bin")


def test_remote_store(tmp_path: Path, workdir: Path) -> None:
    store, blobs = str(tmp_path / "server"), str(tmp_path / "server-blobs")
    service = open_service(store, blobs)
    token = create_token(service, "write", "test")
    service.graph.close()
    with background(store, blobs) as url:
        ref = log(url, None, token)
        only_weights_left(blobs)
        api = lineage.Api(url, token=token)
        check(api, ref, workdir / "w.bin")
        same = api.diff(ref, ref)  # a diff through a server: its walks and manifest pages
        assert same.files is not None and same.files.same and same.files.unchanged == 3
        assert same.ancestry.merge_bases == (ref,) and same.made.config == ()


def test_a_corrupt_blob_is_refused_and_nothing_is_written(tmp_path: Path, workdir: Path) -> None:
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    ref = log(store, blobs)
    path = next(
        p for p in Path(blobs).rglob("*") if p.is_file() and p.stat().st_size == len(WEIGHTS)
    )
    path.chmod(0o644)
    path.write_bytes(WEIGHTS[:-1] + b"x")
    target = workdir / "w.bin"
    with pytest.raises(lineage.DigestMismatch, match=r"sub/weights\.bin"):
        lineage.Api(store, blobs).artifact_version(ref).file("sub/weights.bin").download(target)
    assert sorted(p.name for p in workdir.iterdir()) == ["model"]  # no file, no temporary


def test_cli_get_one_file(tmp_path: Path, workdir: Path) -> None:
    store, blobs = str(tmp_path / "store"), str(tmp_path / "blobs")
    ref = log(store, blobs)
    run: Callable[..., object] = CliRunner().invoke
    args = ["--store", store, "--blobs", blobs, "get", ref]
    result = run(cli, [*args, "sub/weights.bin", "-o", "got/w.bin"])
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert Path("got/w.bin").read_bytes() == WEIGHTS
    assert "sub/weights.bin (1.0 MiB)" in result.output  # type: ignore[attr-defined]
    result = run(cli, [*args, "missing.bin", "-o", "x.bin"])
    assert result.exit_code == 3 and not Path("x.bin").exists()  # type: ignore[attr-defined]
    assert result.output.count("\n") == 1 and "has no file 'missing.bin'" in result.output  # type: ignore[attr-defined]
