"""The blob-store conformance suite: every BlobStore backend honours one contract.

Parametrised over ``BLOB_BACKENDS``: the local directory store, the S3 store against a
real moto server on loopback (``tests/s3_server.py``; a fresh versioned bucket a test, so
that every write ever made to a key stays visible to the assertions), and the HTTP store
against a real lineage server on loopback (its own blobs in a local directory, which the
assertions look at). A lineage server neither lists nor deletes blobs for its clients: the
tests of ``digests`` and ``delete`` run on the stores that do, and one test checks that the
HTTP store refuses them. The S3-only tests at the bottom cover URLs and an endpoint that
fails.
"""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from ports import free_port
from s3_server import Flaky, S3Server

import lineage.storage.s3 as s3_module
from lineage.download import verify
from lineage.errors import (
    BlobNotFound,
    DigestMismatch,
    Forbidden,
    InvalidInput,
    StoreUnavailable,
    Unauthenticated,
)
from lineage.hashing import hash_bytes
from lineage.manifest import Entry, read_manifest, write_manifest
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.server.serving import background
from lineage.storage import open_blobs
from lineage.storage.blobs import BlobStore
from lineage.storage.http import HttpBlobStore
from lineage.storage.local import LocalBlobStore
from lineage.storage.s3 import S3BlobStore

BLOB_BACKENDS = ["local", "s3", "http"]
LISTING_BACKENDS = ["local", "s3"]  # the stores that list and delete their blobs themselves
MiB = 1 << 20
# S3 paths: <= 8 MiB read whole and PUT from memory; up to the threshold one streamed PUT;
# from there multipart in 8 MiB parts. The sizes below take each path.
THRESHOLD = 10 * MiB
SIZES = [0, 1, 3 * MiB + 1, 9 * MiB, 17 * MiB]


@dataclass
class Blobs:
    """A fresh, empty store plus what it takes to look behind its back."""

    kind: str
    store: BlobStore
    stamp: Callable[[str], object]  # changes with every write to a digest; None: never written
    leftovers: Callable[[], list[str]]  # temporary files, unfinished uploads, stray keys
    held: Callable[[], list[str]]  # every digest stored, sorted, as the storage itself shows


@pytest.fixture(params=BLOB_BACKENDS)
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Blobs]:
    if request.param == "http":
        yield from http_store(tmp_path)
    else:
        yield open_backend(request, tmp_path)


@pytest.fixture(params=LISTING_BACKENDS)
def listing_blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Blobs:
    return open_backend(request, tmp_path)


def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Blobs:
    if request.param == "local":
        return local_store(tmp_path)
    return s3_store(request.getfixturevalue("s3_server"))


@pytest.fixture
def local_blobs(tmp_path: Path) -> Blobs:
    return local_store(tmp_path)


@pytest.fixture
def s3_blobs(s3_server: S3Server) -> Blobs:
    return s3_store(s3_server)


def local_store(tmp_path: Path) -> Blobs:
    store = LocalBlobStore(tmp_path / "blobs")

    def stamp(digest: str) -> object:
        try:
            st = store.path(digest).stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_ctime_ns

    return Blobs(
        "local",
        store,
        stamp,
        lambda: os.listdir(store.root / "tmp"),
        lambda: sorted(store.digests()),
    )


def http_store(tmp_path: Path) -> Iterator[Blobs]:
    """An HttpBlobStore of a real lineage server whose own blobs are a local store: what the
    server holds is looked at there."""
    behind = local_store(tmp_path)
    store, blob_dir = str(tmp_path / "store"), str(tmp_path / "blobs")
    service = open_service(store, blob_dir)
    token = create_token(service, "write", "blob suite")
    service.graph.close()
    with background(store, blob_dir) as url:
        client = HttpBlobStore(url, token=token)
        try:
            yield Blobs("http", client, behind.stamp, behind.leftovers, behind.held)
        finally:
            client.close()


def s3_store(server: S3Server) -> Blobs:
    bucket = server.create_bucket(f"test-{uuid.uuid4().hex[:16]}")
    raw = server.client()
    raw.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = S3BlobStore(
        bucket, "lineage/blobs", endpoint_url=server.endpoint_url, multipart_threshold=THRESHOLD
    )

    def stamp(digest: str) -> object:
        key = store.key(digest)
        listing = raw.list_object_versions(Bucket=bucket, Prefix=key)
        versions = listing.get("Versions", []) + listing.get("DeleteMarkers", [])
        ids = sorted(v["VersionId"] for v in versions if v["Key"] == key)
        return tuple(ids) or None

    def leftovers() -> list[str]:
        uploads = raw.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        stray = [
            item["Key"]
            for item in raw.list_objects_v2(Bucket=bucket).get("Contents", [])
            if not item["Key"].startswith("lineage/blobs/")
        ]
        return [f"upload {u['Key']}" for u in uploads] + stray

    return Blobs("s3", store, stamp, leftovers, lambda: sorted(store.digests()))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def content(size: int, seed: int = 0) -> bytes:
    """Distinct, incompressible-looking bytes (cheap: not os.urandom for 17 MiB a test)."""
    block = hash_bytes(f"{seed}:{size}".encode()).encode() * 2048  # 128 KiB
    data = (block * (size // len(block) + 1))[:size]
    return data[:-8] + seed.to_bytes(8, "big") if size >= 8 else data


def pipe(data: bytes) -> BinaryIO:
    """A pipe-like stream over ``data``: no seek, short reads."""
    return cast(BinaryIO, Unseekable(data))


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 65_537))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_put_file_roundtrip(blobs: Blobs, tmp_path: Path, size: int) -> None:
    data = content(size)
    digest, stored = blobs.store.put_file(write(tmp_path / "f", data))
    assert (digest, stored) == (hash_bytes(data), size)
    assert blobs.store.get_bytes(digest) == data
    with blobs.store.open(digest) as stream:
        chunks = iter(lambda: stream.read(MiB), b"")
        assert b"".join(chunks) == data
    assert blobs.store.size(digest) == size
    assert blobs.store.missing([digest]) == set()
    assert blobs.held() == [digest]
    assert blobs.leftovers() == []


@pytest.mark.parametrize("size", [0, 5, 3 * MiB, 17 * MiB])
def test_put_stream_and_bytes_roundtrip(blobs: Blobs, size: int) -> None:
    one, two, three = content(size, 1), content(size, 2), content(size + 1, 3)
    assert blobs.store.put_stream(pipe(one)) == (hash_bytes(one), size)
    assert blobs.store.put_stream(pipe(two), hash_bytes(two)) == (hash_bytes(two), size)
    assert blobs.store.put_bytes(three) == hash_bytes(three)
    for data in (one, two, three):
        assert blobs.store.get_bytes(hash_bytes(data)) == data
    expected = {hash_bytes(one), hash_bytes(two), hash_bytes(three)}
    assert set(blobs.held()) == expected
    assert blobs.leftovers() == []


def test_put_files_batch_keeps_order(blobs: Blobs, tmp_path: Path) -> None:
    datas = [content(n * 1000, n) for n in range(12)] + [content(9 * MiB, 99)]
    datas.append(datas[3])  # the same content twice in one batch
    paths = [write(tmp_path / f"f{i}", data) for i, data in enumerate(datas)]
    done: list[int] = []
    items: list[tuple[Path, str | None]] = [
        (path, hash_bytes(data) if i % 2 else None)
        for i, (path, data) in enumerate(zip(paths, datas, strict=True))
    ]
    results = blobs.store.put_files(items, done.append)
    assert results == [(hash_bytes(data), len(data)) for data in datas]
    # bytes done, each once: per file, or per chunk as it travels (the HTTP store)
    assert sum(done) == sum(len(data) for data in datas)
    assert set(blobs.held()) == {hash_bytes(data) for data in datas}
    assert blobs.store.get_bytes(hash_bytes(datas[-2])) == datas[-2]


# dedup ---------------------------------------------------------------------------------------


def test_second_put_changes_nothing(blobs: Blobs, tmp_path: Path) -> None:
    data = content(3 * MiB, 7)
    digest, _ = blobs.store.put_file(write(tmp_path / "a", data))
    before = blobs.stamp(digest)
    assert before is not None
    time.sleep(0.01)
    assert blobs.store.put_file(write(tmp_path / "b", data)) == (digest, len(data))
    assert blobs.store.put_file(tmp_path / "b", digest) == (digest, len(data))
    assert (
        blobs.store.put_files([(tmp_path / "a", None), (tmp_path / "b", digest)])
        == [(digest, len(data))] * 2
    )
    assert blobs.store.put_bytes(data) == digest
    assert blobs.store.put_stream(io.BytesIO(data)) == (digest, len(data))
    assert blobs.store.put_stream(pipe(data), digest) == (digest, len(data))
    assert blobs.stamp(digest) == before
    assert blobs.held() == [digest]


# missing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("present,absent", [(3, 4), (60, 40)])
def test_missing_on_a_mix(blobs: Blobs, present: int, absent: int) -> None:
    stored = [blobs.store.put_bytes(b"present %d" % i) for i in range(present)]
    others = [hash_bytes(b"absent %d" % i) for i in range(absent)]
    asked = stored + others + stored[:2] + others[:2]  # duplicates answered once
    assert blobs.store.missing(asked) == set(others)
    assert blobs.store.missing(iter(stored)) == set()
    assert blobs.store.missing([]) == set()
    with pytest.raises(InvalidInput, match="invalid digest"):
        blobs.store.missing([*stored, "not-a-digest"])


# refusals: nothing stored --------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 100, 9 * MiB, 17 * MiB])
def test_expected_digest_mismatch_is_refused(blobs: Blobs, tmp_path: Path, size: int) -> None:
    claimed = hash_bytes(content(size, 1))
    path = write(tmp_path / "f", content(size, 2) if size else b"x")
    with pytest.raises(DigestMismatch) as caught:
        blobs.store.put_file(path, claimed)
    assert caught.value.context["digest"] == claimed
    assert blobs.store.missing([claimed, hash_bytes(path.read_bytes())]) == {
        claimed,
        hash_bytes(path.read_bytes()),
    }
    assert blobs.stamp(claimed) is None  # never written, not even for a moment
    assert blobs.held() == []
    assert blobs.leftovers() == []


def test_batch_with_one_bad_file_stores_the_others(blobs: Blobs, tmp_path: Path) -> None:
    good = [write(tmp_path / f"g{i}", content(1000 + i, i)) for i in range(5)]
    bad = write(tmp_path / "bad", content(2000, 50))
    wrong = hash_bytes(b"something else")
    items: list[tuple[Path, str | None]] = [(path, None) for path in good]
    items.insert(2, (bad, wrong))
    with pytest.raises(DigestMismatch):
        blobs.store.put_files(items)
    assert set(blobs.held()) == {hash_bytes(path.read_bytes()) for path in good}
    assert blobs.stamp(wrong) is None


@pytest.mark.parametrize("size", [10, 17 * MiB])
def test_put_stream_with_wrong_claimed_digest_is_refused(blobs: Blobs, size: int) -> None:
    data, claimed = content(size, 1), hash_bytes(content(size, 2))
    with pytest.raises(DigestMismatch):
        blobs.store.put_stream(pipe(data), claimed)
    with pytest.raises(DigestMismatch):
        blobs.store.put_stream(io.BytesIO(data), claimed)
    assert blobs.stamp(claimed) is None
    assert blobs.store.missing([claimed]) == {claimed}
    assert blobs.held() == []
    assert blobs.leftovers() == []


def test_wrong_claim_for_a_stored_digest_is_refused(blobs: Blobs, tmp_path: Path) -> None:
    real = content(2000, 1)
    digest = blobs.store.put_bytes(real)
    before = blobs.stamp(digest)
    with pytest.raises(DigestMismatch):
        blobs.store.put_stream(io.BytesIO(b"forged"), digest)
    with pytest.raises(DigestMismatch):
        blobs.store.put_file(write(tmp_path / "forged", b"forged"), digest)
    assert blobs.stamp(digest) == before
    assert blobs.store.get_bytes(digest) == real


def test_wrong_claim_for_a_digest_another_file_carries_is_refused(
    blobs: Blobs, tmp_path: Path
) -> None:
    real = write(tmp_path / "real", content(3000, 1))
    digest = hash_bytes(real.read_bytes())
    forged = write(tmp_path / "forged", content(3000, 2))
    with pytest.raises(DigestMismatch) as caught:
        blobs.store.put_files([(real, None), (forged, digest)])
    assert caught.value.context["digest"] == digest
    assert blobs.store.get_bytes(digest) == real.read_bytes()
    assert blobs.held() == [digest]


# reads and deletes ---------------------------------------------------------------------------


def test_absent_blob(blobs: Blobs) -> None:
    digest = hash_bytes(b"never stored")
    with pytest.raises(BlobNotFound) as caught:
        blobs.store.open(digest)
    assert caught.value.context["digest"] == digest
    assert blobs.store.url in str(caught.value)
    with pytest.raises(BlobNotFound):
        blobs.store.get_bytes(digest)
    assert blobs.store.size(digest) is None
    with pytest.raises(InvalidInput):
        blobs.store.open("../../etc/passwd")


def test_delete(listing_blobs: Blobs) -> None:
    blobs = listing_blobs
    kept, gone, also_gone = (blobs.store.put_bytes(b"%d" % i) for i in range(3))
    never = hash_bytes(b"never")
    assert blobs.store.delete([gone, also_gone, never]) == 2
    assert blobs.store.missing([kept, gone, also_gone]) == {gone, also_gone}
    with pytest.raises(BlobNotFound):
        blobs.store.get_bytes(gone)
    assert list(blobs.store.digests()) == [kept]
    assert blobs.store.get_bytes(kept) == b"0"
    assert blobs.store.delete([gone]) == 0
    assert blobs.store.put_bytes(b"1") == gone  # a deleted blob can come back
    assert blobs.store.get_bytes(gone) == b"1"


def test_digests_lists_blobs_only_and_older_than(listing_blobs: Blobs) -> None:
    blobs = listing_blobs
    old = blobs.store.put_bytes(b"old")
    time.sleep(2)
    before_new = time.time()
    new = blobs.store.put_bytes(b"new")
    _stray(blobs)
    assert sorted(blobs.store.digests()) == sorted([old, new])
    # S3 keeps LastModified to the second, rounded down: "new" may look up to 1 s older
    assert list(blobs.store.digests(older_than=time.time() - before_new + 1.25)) == [old]
    assert list(blobs.store.digests(older_than=3600)) == []


def test_http_store_neither_lists_nor_deletes(tmp_path: Path) -> None:
    """Blobs on a lineage server are collected by `lineage gc` on the server, not by clients."""
    for blobs in http_store(tmp_path):
        digest = blobs.store.put_bytes(b"kept")
        with pytest.raises(InvalidInput, match="gc"):
            blobs.store.delete([digest])
        with pytest.raises(InvalidInput, match="does not list"):
            list(blobs.store.digests())
        assert blobs.held() == [digest]


def _stray(blobs: Blobs) -> None:
    """Something in the store's space that is not a blob, which listing must skip."""
    if isinstance(blobs.store, LocalBlobStore):
        (blobs.store.root / "tmp" / "partial").write_bytes(b"x")
        (blobs.store.root / "notes.txt").write_bytes(b"x")
    elif isinstance(blobs.store, S3BlobStore):
        blobs.store.client.put_object(
            Bucket=blobs.store.bucket, Key=f"{blobs.store.prefix}/ab/short", Body=b"x"
        )


# concurrency ---------------------------------------------------------------------------------


def test_threads_putting_the_same_content(blobs: Blobs, tmp_path: Path) -> None:
    data = content(3 * MiB, 5)
    digest = hash_bytes(data)
    paths = [write(tmp_path / f"copy{i}", data) for i in range(6)]
    start = threading.Barrier(8)
    results: list[object] = []

    def put(job: Callable[[], object]) -> None:
        start.wait()
        try:
            results.append(job())
        except Exception as exc:
            results.append(exc)

    def put_file(path: Path) -> Callable[[], object]:
        return lambda: blobs.store.put_file(path)

    jobs = [put_file(path) for path in paths]
    jobs.append(lambda: (blobs.store.put_bytes(data), len(data)))
    jobs.append(lambda: blobs.store.put_stream(pipe(data), digest))
    threads = [threading.Thread(target=put, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(digest, len(data))] * 8
    assert blobs.held() == [digest]
    assert blobs.store.get_bytes(digest) == data
    assert blobs.leftovers() == []


# integrity -----------------------------------------------------------------------------------


def test_verify_finds_a_corrupted_local_blob(local_blobs: Blobs) -> None:
    blobs = local_blobs
    assert isinstance(blobs.store, LocalBlobStore)
    good, bad = content(5000, 1), content(5000, 2)
    entries = [
        Entry(path="good.bin", size=len(good), digest=blobs.store.put_bytes(good)),
        Entry(path="bad.bin", size=len(bad), digest=blobs.store.put_bytes(bad)),
    ]
    manifest = read_manifest(blobs.store, write_manifest(blobs.store, entries))
    assert verify(manifest, blobs.store) == []
    target = blobs.store.path(entries[1].digest or "")
    target.chmod(0o644)
    with open(target, "r+b") as file:
        file.seek(1234)
        file.write(b"\0")
    problems = verify(manifest, blobs.store)
    assert len(problems) == 1
    assert problems[0].startswith("bad.bin:")


# S3 only: URLs -------------------------------------------------------------------------------


def test_s3_from_url(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket(f"url-{uuid.uuid4().hex[:12]}")
    url = f"s3://{bucket}/team/blobs/?endpoint_url={s3_server.endpoint_url}&region=eu-west-1"
    store = open_blobs(url)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == (
        bucket,
        "team/blobs",
        s3_server.endpoint_url,
    )
    assert store.url == url.replace("blobs/?", "blobs?")
    digest = store.put_bytes(b"via url")
    again = open_blobs(store.url)
    assert again.get_bytes(digest) == b"via url"
    assert S3BlobStore.from_url(f"s3://{bucket}?endpoint_url={s3_server.endpoint_url}").url == (
        f"s3://{bucket}?endpoint_url={s3_server.endpoint_url}"
    )


@pytest.mark.parametrize(
    "url,complaint",
    [
        ("s3:///prefix", "expected s3://bucket/prefix"),
        ("s3://Bad_Bucket!/x", "invalid S3 bucket name"),
        ("s3://bucket/a/../b", "invalid S3 prefix"),
        ("s3://bucket/x?endpoint=http://h", "unknown option"),
        ("s3://bucket/x?threads=many", "not an integer"),
        ("s3://bucket/x?endpoint_url=ftp://h", "invalid S3 endpoint_url"),
    ],
)
def test_s3_bad_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        S3BlobStore.from_url(url)


def test_s3_prefixes_are_separate_stores(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket(f"pre-{uuid.uuid4().hex[:12]}")
    one = S3BlobStore(bucket, "one", endpoint_url=s3_server.endpoint_url)
    two = S3BlobStore(bucket, "one/two", endpoint_url=s3_server.endpoint_url)
    bare = S3BlobStore(bucket, endpoint_url=s3_server.endpoint_url)
    digest = one.put_bytes(b"in one")
    assert two.missing([digest]) == {digest}
    assert bare.missing([digest]) == {digest}
    assert list(two.digests()) == list(bare.digests()) == []
    assert s3_server.client().head_object(Bucket=bucket, Key=f"one/{digest[:2]}/{digest[2:]}")


# 67 digests asked: (page size, LIST_WORTH, LIST calls, HEAD calls), each count as a range
STRATEGIES = [
    (1000, 16, (2, 2), (0, 0)),  # dense: 2 runs of 33, each answered by one LIST page
    (5, 2, (6, 40), (0, 67)),  # truncated pages, each seeking to the next unanswered digest
    (3, 12, (2, 2), (30, 67)),  # the first page answers too few: HEAD the rest of the run
    (1000, 40, (0, 0), (67, 67)),  # too few digests to be worth a LIST: HEAD each
]


@pytest.mark.parametrize("page,worth,lists,heads", STRATEGIES)
def test_s3_missing_list_and_head_strategies_agree(
    s3_blobs: Blobs,
    monkeypatch: pytest.MonkeyPatch,
    page: int,
    worth: int,
    lists: tuple[int, int],
    heads: tuple[int, int],
) -> None:
    store = s3_blobs.store
    assert isinstance(store, S3BlobStore)
    stored = [store.put_bytes(b"%d" % i) for i in range(80)]
    others = [hash_bytes(b"other %d" % i) for i in range(40)]
    monkeypatch.setattr(s3_module, "LIST_PAGE", page)
    monkeypatch.setattr(s3_module, "LIST_WORTH", worth)
    calls: Counter[str] = Counter()

    def count(event_name: str, **kwargs: Any) -> None:
        calls[event_name.rsplit(".", 1)[1]] += 1

    store.client.meta.events.register("before-call.s3.*", count)
    assert store.missing(stored[::3] + others) == set(others)
    assert lists[0] <= calls["ListObjectsV2"] <= lists[1]
    assert heads[0] <= calls["HeadObject"] <= heads[1]
    assert store.missing(stored) == set()
    assert store.missing(others) == set(others)


# S3 only: an endpoint that fails -------------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
def test_s3_transient_errors_are_retried(flaky: Callable[..., Flaky]) -> None:
    server = flaky([(500, "InternalError"), (503, "SlowDown")])
    store = S3BlobStore("bucket", "p", endpoint_url=server.url, max_attempts=3)
    assert store.get_bytes(hash_bytes(b"hello")) == b"hello"
    assert len(server.requests) == 3


@pytest.mark.usefixtures("aws_env")
def test_s3_persistent_errors_give_up_with_a_clear_error(flaky: Callable[..., Flaky]) -> None:
    server = flaky([(500, "InternalError")] * 10)
    store = S3BlobStore("bucket", "p", endpoint_url=server.url, max_attempts=3)
    with pytest.raises(StoreUnavailable) as caught:
        store.get_bytes(hash_bytes(b"hello"))
    assert len(server.requests) == 3  # bounded: exactly max_attempts
    assert server.url in str(caught.value)
    assert "'bucket'" in str(caught.value)
    assert caught.value.exit_code == 6


@pytest.mark.parametrize(
    "code,error",
    [("AccessDenied", Forbidden), ("InvalidAccessKeyId", Unauthenticated)],
)
@pytest.mark.usefixtures("aws_env")
def test_s3_refusals_are_not_retried(
    flaky: Callable[..., Flaky], code: str, error: type[Exception]
) -> None:
    server = flaky([(403, code)] * 10)
    store = S3BlobStore("bucket", endpoint_url=server.url, max_attempts=3)
    with pytest.raises(error, match=code):
        store.get_bytes(hash_bytes(b"hello"))
    assert len(server.requests) == 1


def test_s3_without_credentials(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to find
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    store = S3BlobStore("bucket", endpoint_url=s3_server.endpoint_url, max_attempts=1)
    with pytest.raises(Unauthenticated, match="no AWS credentials"):
        store.put_bytes(b"x")


def test_s3_bucket_that_does_not_exist(s3_server: S3Server) -> None:
    store = S3BlobStore("no-such-bucket", endpoint_url=s3_server.endpoint_url)
    with pytest.raises(StoreUnavailable, match="the bucket does not exist") as caught:
        store.put_bytes(b"x")
    assert "no-such-bucket" in str(caught.value)


@pytest.mark.usefixtures("aws_env")
def test_s3_closed_port_fails_fast_naming_the_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = S3BlobStore("bucket", endpoint_url=endpoint, max_attempts=2)
    sent: list[str] = []
    store.client.meta.events.register("before-send.s3.*", lambda **kw: sent.append("x"))
    with pytest.raises(StoreUnavailable, match="unreachable") as caught:
        store.missing([hash_bytes(b"x")])
    assert len(sent) == 2  # fails fast: max_attempts connections, then the error
    assert endpoint in str(caught.value)
    with pytest.raises(StoreUnavailable):
        store.put_bytes(b"x")
