"""A failure leaves every store and cache as it was, and the process keeps working."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import snapshot

import lineage
from lineage.cli import cli
from lineage.client import Client
from lineage.statcache import StatCache
from lineage.storage.local import LocalBlobStore


def _bad_name_dir() -> Path:
    Path("data").mkdir()
    Path("data/good.bin").write_bytes(b"good")
    fd = os.open(b"data/bad\xff.bin", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"bad")
    os.close(fd)
    return Path("data")


def test_undecodable_file_name_refused_then_logging_works(  # type: ignore[no-untyped-def]
    backend, workdir, monkeypatch
) -> None:
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    folder = _bad_name_dir()
    Path("w.bin").write_bytes(b"weights")
    with lineage.init(project="p") as run:
        client = Client.shared()
        before = snapshot(client.stores.graph, client.stores.blobs)
        art = lineage.Artifact("data", type="dataset")
        with pytest.raises(lineage.InvalidPath, match=r"bad\\udcff\.bin.*not valid UTF-8"):
            art.add_dir(folder)
            run.log_artifact(art)
        assert snapshot(client.stores.graph, client.stores.blobs) == before
        ok = lineage.Artifact("policy", type="model")
        ok.add_file("w.bin")
        assert run.log_artifact(ok).ref.endswith("policy:v0")
        again = lineage.Artifact("more", type="model")
        again.add_file("data/good.bin")
        assert run.log_artifact(again).ref.endswith("more:v0")


def test_add_file_refuses_undecodable_name(workdir) -> None:  # type: ignore[no-untyped-def]
    _bad_name_dir()
    art = lineage.Artifact("data", type="dataset")
    with pytest.raises(lineage.InvalidPath, match=r"bad\\udcff\.bin"):
        art.add_file(os.fsdecode(b"data/bad\xff.bin"))
    with pytest.raises(lineage.InvalidPath, match=r"x\\udcff"):
        art.add_file("data/good.bin", name=os.fsdecode(b"x\xff"))
    assert art.entries == []


def test_add_reference_refuses_undecodable_name(workdir) -> None:  # type: ignore[no-untyped-def]
    folder = _bad_name_dir()
    art = lineage.Artifact("data", type="dataset")
    with pytest.raises(lineage.InvalidPath, match=r"bad\\udcff\.bin.*not valid UTF-8"):
        art.add_reference(folder.resolve().as_uri())
    assert art.entries == []


def test_stat_cache_failed_store_rolls_back(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "statcache.db")
    good = (str(tmp_path / "good"), (1, 1, 1, 1), "digest-good")
    bad = (os.fsdecode(b"/x/bad\xff"), (1, 1, 1, 1), "digest-bad")
    with pytest.raises(UnicodeEncodeError):
        cache.store([good, bad])
    assert cache.lookup([(good[0], good[1])]) == {}  # nothing half-written
    cache.store([good])
    assert cache.lookup([(good[0], good[1])]) == {good[0]: "digest-good"}
    cache.close()


# gc and what killed writers leave behind ---------------------------------------------------


def _temps(tmp: Path, now: float) -> dict[str, Path]:
    """Temporary files as killed writers leave them: two old ones (2 h), one written 30 s
    ago, one being written now."""
    tmp.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, age, body in [
        ("old1", 7200, b"x" * 1000),
        ("old2", 7200, b"y" * 2000),
        ("recent", 30, b"z" * 10),
        ("live", 0, b"w" * 10),
    ]:
        path = tmp / f"{name}-{os.urandom(4).hex()}"
        path.write_bytes(body)
        os.utime(path, (now - age, now - age))
        made[name] = path
    return made


def test_blob_store_temporaries(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    made = _temps(tmp_path / "blobs" / "tmp", time.time())
    assert store.temporaries(3600) == (2, 3000)  # counted, nothing removed
    assert all(path.exists() for path in made.values())
    assert store.temporaries(0) == (2, 3000)  # grace 0: a file written 30 s ago stays
    assert store.temporaries(3600, remove=True) == (2, 3000)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "blobs" / "tmp").iterdir()) == [
        "live",
        "recent",
    ]
    assert store.temporaries(0, remove=True) == (0, 0)


def test_gc_removes_old_temporaries(backend, workdir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    monkeypatch.setenv("LINEAGE_PROJECT", "p")
    Path("w.bin").write_bytes(b"weights")
    with lineage.init(project="p") as run:
        art = lineage.Artifact("policy", type="model")
        art.add_file("w.bin")
        run.log_artifact(art)
    client = Client.shared()
    blobs = client.stores.blobs
    assert isinstance(blobs, LocalBlobStore)
    made = _temps(blobs.root / "tmp", time.time())
    before = snapshot(client.stores.graph, blobs)

    report = client.service.gc(dry_run=True)
    assert (report.temps_removed, report.temp_bytes, report.blobs_removed) == (2, 3000, 0)
    assert all(path.exists() for path in made.values())

    runner = CliRunner()
    out = runner.invoke(cli, ["gc", "--dry-run"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "temporary files: would remove 2 (2.9 KiB)" in out.output
    assert all(path.exists() for path in made.values())

    out = runner.invoke(cli, ["gc"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "temporary files: removed 2 (2.9 KiB)" in out.output
    assert [p.exists() for p in made.values()] == [False, False, True, True]
    assert snapshot(client.stores.graph, blobs) == before  # the live blobs all stay

    report = client.service.gc()
    assert (report.temps_removed, report.temp_bytes) == (0, 0)
