"""A failure leaves every store and cache as it was, and the process keeps working."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import snapshot

import lineage
from lineage.client import Client
from lineage.statcache import StatCache


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
