"""Every refusal names the problem and leaves the store exactly as it was."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import snapshot

import lineage
from lineage.client import Client


@pytest.fixture
def seeded(backend, workdir, monkeypatch):  # type: ignore[no-untyped-def]
    """A store holding one version, and a finished-state-free run to try things with."""
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    Path("w.bin").write_bytes(b"weights")
    with lineage.init(project="p") as run:
        art = lineage.Artifact("policy", type="model")
        art.add_file("w.bin")
        run.log_artifact(art, aliases=["prod"])
    return Client.shared()


def unchanged(
    client: Client, action: Callable[[], object], error: type[Exception], match: str
) -> None:
    before = snapshot(client.stores.graph, client.stores.blobs)
    with pytest.raises(error, match=match):
        action()
    assert snapshot(client.stores.graph, client.stores.blobs) == before


@pytest.mark.parametrize(
    "name", ["", "has space", "slash/y", "colon:x", "..", "é", "x" * 129, "nul\x00"]
)
def test_invalid_artifact_names(seeded, name) -> None:  # type: ignore[no-untyped-def]
    unchanged(seeded, lambda: lineage.Artifact(name, type="model"), lineage.InvalidName, "name")


@pytest.mark.parametrize("project", ["", "a b", "p/q", None, 7])
def test_invalid_project_names(seeded, project) -> None:  # type: ignore[no-untyped-def]
    unchanged(seeded, lambda: lineage.init(project=project), lineage.InvalidName, "project")


@pytest.mark.parametrize("alias", ["v1", "has space", "", "a:b"])
def test_invalid_aliases(seeded, alias) -> None:  # type: ignore[no-untyped-def]
    def act() -> None:
        with lineage.init(project="p") as run:
            art = lineage.Artifact("policy", type="model")
            Path("n.bin").write_bytes(b"new")
            art.add_file("n.bin")
            run.log_artifact(art, aliases=[alias])

    # the run itself is recorded (it started), but no version, alias or blob
    before = snapshot(seeded.stores.graph, seeded.stores.blobs)
    with pytest.raises(lineage.InvalidName, match="alias"):
        act()
    after = snapshot(seeded.stores.graph, seeded.stores.blobs)
    assert after["versions"] == before["versions"] and after["blobs"] == before["blobs"]
    assert after["events"] == before["events"]


def test_unknown_ref_names_the_nearest(seeded) -> None:  # type: ignore[no-untyped-def]
    api = lineage.Api(project="p")
    unchanged(
        seeded,
        lambda: api.artifact_version("policy:v5"),
        lineage.VersionNotFound,
        r"v0 \(latest, prod\)",
    )
    unchanged(
        seeded, lambda: api.artifact_version("policy:nope"), lineage.VersionNotFound, "nearest"
    )
    unchanged(
        seeded,
        lambda: api.artifact_version("p/ghost"),
        lineage.VersionNotFound,
        "no artifact 'ghost'",
    )


@pytest.mark.parametrize(
    ("name", "why"),
    [("../escape", r"'\.\.'"), ("/etc/passwd", "absolute"), ("a/\x00b", "NUL"), ("a//b", "empty"),
     ("a\\b", "'/'")],
)  # fmt: skip
def test_bad_manifest_paths(seeded, name, why) -> None:  # type: ignore[no-untyped-def]
    art = lineage.Artifact("policy", type="model")
    unchanged(seeded, lambda: art.add_file("w.bin", name=name), lineage.InvalidPath, why)
    assert art.entries == []


def test_symlink_escaping_the_dir(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    data = Path("data")
    data.mkdir()
    (data / "ok.txt").write_text("ok")
    os.symlink(outside, data / "link.txt")
    art = lineage.Artifact("ds", type="dataset")
    unchanged(seeded, lambda: art.add_dir(data), lineage.InvalidPath, "outside")
    assert art.entries == []
    (data / "link.txt").unlink()
    os.symlink("ok.txt", data / "inside.txt")  # inside is fine
    assert lineage.Artifact("ds", type="dataset").add_dir(data) == 2


@pytest.mark.parametrize("uri", ["ftp://host/x", "gs://bucket/x", "relative/path", "s4://x"])
def test_unsupported_reference_scheme(seeded, uri) -> None:  # type: ignore[no-untyped-def]
    art = lineage.Artifact("ds", type="dataset")
    unchanged(
        seeded, lambda: art.add_reference(uri), lineage.UnsupportedScheme, "supported schemes"
    )


@pytest.mark.parametrize(
    ("metadata", "why"),
    [({"x": object()}, "not JSON-serialisable"), ({"x": 1j}, "not JSON-serialisable"),
     ({1: "int key"}, "non-string key"), ({"x": "y" * 300_000}, "at most"),
     ([1, 2], "must be a dict")],
)  # fmt: skip
def test_bad_metadata(seeded, metadata, why) -> None:  # type: ignore[no-untyped-def]
    unchanged(
        seeded,
        lambda: lineage.Artifact("policy", type="model", metadata=metadata),
        lineage.InvalidMetadata,
        why,
    )
    version = lineage.Api(project="p").artifact_version("policy:v0")
    unchanged(seeded, lambda: version.update(metadata=metadata), lineage.InvalidMetadata, why)


def test_metadata_mutated_after_construction_is_checked_at_log(seeded) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as run:
        art = lineage.Artifact("policy", type="model", metadata={"ok": 1})
        Path("z.bin").write_bytes(b"z")
        art.add_file("z.bin")
        art.metadata["bad"] = {1, 2}
        before = snapshot(seeded.stores.graph, seeded.stores.blobs)
        with pytest.raises(lineage.InvalidMetadata):
            run.log_artifact(art)
        assert snapshot(seeded.stores.graph, seeded.stores.blobs) == before


def test_deeply_nested_metadata(seeded) -> None:  # type: ignore[no-untyped-def]
    deep: dict[str, object] = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    unchanged(
        seeded,
        lambda: lineage.Artifact("m", type="model", metadata=deep),
        lineage.InvalidMetadata,
        "deeper",
    )


def test_manifest_with_missing_blobs_cannot_be_committed(seeded) -> None:  # type: ignore[no-untyped-def]
    from lineage.manifest import Entry, write_manifest

    service = seeded.service
    digest = write_manifest(
        seeded.stores.blobs, [Entry(path="ghost.bin", size=3, digest="ab" * 32)]
    )
    with lineage.init(project="p") as run:
        before = snapshot(seeded.stores.graph, seeded.stores.blobs)
        with pytest.raises(lineage.IntegrityError, match=r"ghost\.bin"):
            service.commit(run.id, name="policy", type="model", manifest=digest)
        assert snapshot(seeded.stores.graph, seeded.stores.blobs) == before


def test_type_change_is_refused(seeded) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as run:
        art = lineage.Artifact("policy", type="dataset")
        Path("d.bin").write_bytes(b"d")
        art.add_file("d.bin")
        with pytest.raises(lineage.Conflict, match="type 'model'"):
            run.log_artifact(art)
    assert [v.type for v in lineage.Api(project="p").versions("policy")] == ["model"]
