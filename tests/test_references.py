"""References to s3:// and http(s):// objects: identity recorded, prefixes expanded, download
and verify refuse a change (naming the file)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from s3_server import Flaky, S3Server

import lineage
import lineage.errors

CONTENT = {"/weights.bin": b"w" * 5000}
VERSION = {"etag": '"v1"'}


class _Handler(BaseHTTPRequestHandler):
    def _head(self) -> bytes | None:
        body = CONTENT.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return None
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", VERSION["etag"])
        self.send_header("Last-Modified", "Wed, 25 Nov 2026 10:00:00 GMT")
        self.end_headers()
        return body

    def do_HEAD(self) -> None:
        self._head()

    def do_GET(self) -> None:
        body = self._head()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    CONTENT["/weights.bin"] = b"w" * 5000
    VERSION["etag"] = '"v1"'
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_reference(backend, workdir, origin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p", store=backend.store, blobs=backend.blobs) as run:
        art = lineage.Artifact("remote-weights", type="model")
        assert art.add_reference(f"{origin}/weights.bin") == 1
        version = run.log_artifact(art)
    [entry] = version.files()
    assert (entry.path, entry.size, entry.etag, entry.digest) == ("weights.bin", 5000, '"v1"', None)
    assert entry.last_modified == "Wed, 25 Nov 2026 10:00:00 GMT"
    version.verify()
    out = version.download(tmp_path / "a")
    assert (out / "weights.bin").read_bytes() == b"w" * 5000

    CONTENT["/weights.bin"] = b"x" * 5000  # the source changed behind our back
    VERSION["etag"] = '"v2"'
    with pytest.raises(lineage.IntegrityError, match=r"weights\.bin.*changed"):
        version.verify()
    with pytest.raises(lineage.DigestMismatch, match=r"weights\.bin"):
        version.download(tmp_path / "b")
    assert not (tmp_path / "b" / "weights.bin").exists()


def test_http_reference_that_does_not_exist(workdir, origin) -> None:  # type: ignore[no-untyped-def]
    art = lineage.Artifact("r", type="model")
    with pytest.raises(lineage.InvalidPath, match="HTTP 404"):
        art.add_reference(f"{origin}/missing.bin")
    assert art.entries == []


# s3:// against the moto server ---------------------------------------------------------------


@dataclass
class Bucket:
    name: str
    client: Any  # plain boto3, to change objects behind the store's back
    endpoint: str

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}?endpoint_url={self.endpoint}"

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        return self.client.put_object(Bucket=self.name, Key=key, Body=body)  # type: ignore[no-any-return]


def bucket(server: S3Server, *, versioned: bool) -> Bucket:
    name = server.create_bucket(f"refs-{uuid.uuid4().hex[:12]}")
    client = server.client()
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return Bucket(name=name, client=client, endpoint=server.endpoint_url)


def test_s3_reference_pinned_by_version_id(  # type: ignore[no-untyped-def]
    backend, workdir, s3_server: S3Server, tmp_path: Path
) -> None:
    b = bucket(s3_server, versioned=True)
    first = b.put("models/w.bin", b"v1 weights" * 100)
    with lineage.init(project="p", store=backend.store, blobs=backend.blobs) as run:
        art = lineage.Artifact("weights", type="model")
        assert art.add_reference(b.uri("models/w.bin")) == 1
        version = run.log_artifact(art)
    [entry] = version.files()
    assert (entry.path, entry.size, entry.digest) == ("w.bin", 1000, None)
    assert (entry.etag, entry.version_id) == (first["ETag"], first["VersionId"])
    assert entry.version_id  # a versioned bucket gives one
    version.verify()
    assert (version.download(tmp_path / "a") / "w.bin").read_bytes() == b"v1 weights" * 100

    b.put("models/w.bin", b"v2 weights" * 100)  # a new version: the logged one still exists
    version.verify()
    assert (version.download(tmp_path / "b") / "w.bin").read_bytes() == b"v1 weights" * 100

    b.client.delete_object(Bucket=b.name, Key="models/w.bin", VersionId=first["VersionId"])
    with pytest.raises(lineage.IntegrityError, match=r"w\.bin.*no longer exists"):
        version.verify()
    with pytest.raises(lineage.IntegrityError, match=r"w\.bin.*no longer exists"):
        version.download(tmp_path / "c")
    assert not (tmp_path / "c" / "w.bin").exists()


def test_s3_reference_without_versions_refuses_a_changed_object(  # type: ignore[no-untyped-def]
    workdir, s3_server: S3Server, tmp_path: Path
) -> None:
    b = bucket(s3_server, versioned=False)
    put = b.put("data/table.csv", b"a,b\n1,2\n")
    with lineage.init(project="p", store=str(tmp_path / "store")) as run:
        art = lineage.Artifact("table", type="dataset")
        art.add_reference(b.uri("data/table.csv"), name="t.csv")
        version = run.log_artifact(art)
    [entry] = version.files()
    assert (entry.path, entry.size, entry.etag, entry.version_id) == (
        "t.csv",
        8,
        put["ETag"],
        None,
    )
    version.verify()
    assert (version.download(tmp_path / "a") / "t.csv").read_bytes() == b"a,b\n1,2\n"

    b.put("data/table.csv", b"a,b\n1,3\n")  # same size, other bytes: only the ETag tells
    with pytest.raises(lineage.IntegrityError, match=r"t\.csv.*changed"):
        version.verify()
    with pytest.raises(lineage.DigestMismatch, match=r"t\.csv.*changed"):
        version.download(tmp_path / "b")
    assert not (tmp_path / "b" / "t.csv").exists()
    # a download into a directory holding the old bytes is refused too, and keeps them
    with pytest.raises(lineage.DigestMismatch, match=r"t\.csv"):
        version.download(tmp_path / "a")
    assert (tmp_path / "a" / "t.csv").read_bytes() == b"a,b\n1,2\n"

    b.client.delete_object(Bucket=b.name, Key="data/table.csv")
    with pytest.raises(lineage.IntegrityError, match=r"t\.csv.*no longer exists"):
        version.download(tmp_path / "c")


def test_s3_prefix_expands_to_one_entry_per_object(  # type: ignore[no-untyped-def]
    workdir, s3_server: S3Server, tmp_path: Path
) -> None:
    b = bucket(s3_server, versioned=True)
    objects = {f"runs/7/{name}": name.encode() * 10 for name in ("a.pt", "b.pt", "sub/c.pt")}
    puts = {key: b.put(key, body) for key, body in objects.items()}
    b.put("runs/70/other.pt", b"not under runs/7/")  # shares the string prefix only
    b.put("runs/7.txt", b"nor this")

    art = lineage.Artifact("ckpt", type="model")
    with pytest.raises(lineage.InvalidPath, match="more than max_objects=2"):
        art.add_reference(b.uri("runs/7/"), max_objects=2)
    assert art.entries == []  # refused whole: never truncated
    assert art.add_reference(b.uri("runs/7/"), max_objects=3) == 3
    assert art.add_reference(b.uri("runs/7"), name="again") == 3  # no slash: still the prefix
    with lineage.init(project="p", store=str(tmp_path / "store")) as run:
        version = run.log_artifact(art)
    found = {e.path: e for e in version.files()}
    names = ("a.pt", "b.pt", "sub/c.pt")
    assert set(found) == {f"{top}/{name}" for top in ("7", "again") for name in names}
    for key, put in puts.items():
        entry = found["7/" + key.removeprefix("runs/7/")]
        assert (entry.size, entry.etag, entry.version_id) == (
            len(objects[key]),
            put["ETag"],
            put["VersionId"],
        )
    version.verify()
    out = version.download(tmp_path / "out")
    for key, body in objects.items():
        assert (out / "7" / key.removeprefix("runs/7/")).read_bytes() == body
    assert not (out / "7" / "other.pt").exists()


def test_s3_reference_to_nothing(workdir, s3_server: S3Server) -> None:  # type: ignore[no-untyped-def]
    b = bucket(s3_server, versioned=False)
    art = lineage.Artifact("r", type="model")
    with pytest.raises(lineage.InvalidPath, match="names no object"):
        art.add_reference(b.uri("nothing/here/"))
    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/k?endpoint_url={b.endpoint}"
    with pytest.raises(lineage.LineageError, match="no-such-bucket"):
        art.add_reference(missing)
    with pytest.raises(lineage.InvalidInput, match=r"unknown option.*colour"):
        art.add_reference(b.uri("k") + "&colour=blue")
    assert art.entries == []


def test_s3_reference_endpoint_from_the_environment(  # type: ignore[no-untyped-def]
    workdir, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    b = bucket(s3_server, versioned=False)
    b.put("k.bin", b"through AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    art = lineage.Artifact("r", type="model")
    art.add_reference(f"s3://{b.name}/k.bin")
    with lineage.init(project="p", store=str(tmp_path / "store")) as run:
        version = run.log_artifact(art)
    out = version.download(tmp_path / "out")
    assert (out / "k.bin").read_bytes() == b"through AWS_ENDPOINT_URL_S3"


@pytest.mark.usefixtures("aws_env")
def test_s3_reference_endpoint_failing_is_retried_then_a_clear_error(
    flaky: Callable[..., Flaky], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    server = flaky([(503, "SlowDown")] * 2, body=b"x" * 10)  # then answers
    art = lineage.Artifact("r", type="model")
    assert art.add_reference(f"s3://bucket/k.bin?endpoint_url={server.url}") == 1
    assert server.requests == ["HEAD /bucket/k.bin"] * 3  # retried, then it answered
    assert art.entries[0].size == 10

    server = flaky([(500, "InternalError")] * 10)
    uri = f"s3://bucket/k.bin?endpoint_url={server.url}"
    with pytest.raises(lineage.StoreUnavailable, match=re.escape("s3://bucket/k.bin")):
        lineage.Artifact("r", type="model").add_reference(uri)
    assert server.requests == ["HEAD /bucket/k.bin"] * 3  # bounded: AWS_MAX_ATTEMPTS


def test_s3_reference_without_credentials(  # type: ignore[no-untyped-def]
    workdir, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    b = bucket(s3_server, versioned=False)
    with pytest.raises(lineage.errors.Unauthenticated, match="no AWS credentials"):
        lineage.Artifact("r", type="model").add_reference(b.uri("k.bin"))
