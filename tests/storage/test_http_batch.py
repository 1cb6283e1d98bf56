"""``POST /blobs/batch``: the server's route and HttpBlobStore's batches of small files, against
a real lineage server on loopback; and the PUTs a server without that route (an older one) gets.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from older_server import older, serving
from s3_server import S3Server

from lineage.errors import DigestMismatch
from lineage.hashing import hash_bytes
from lineage.server.app import MAX_BATCH, MAX_BATCH_BLOB, create_app, open_service
from lineage.server.auth import create_token
from lineage.storage import open_blobs
from lineage.storage.http import BATCH_BELOW, BATCH_COUNT, HttpBlobStore


class Server:
    def __init__(self, url: str, token: str, blobs: str) -> None:
        self.url = url
        self.token = token
        self.stored = open_blobs(blobs)
        self.requests: Counter[str] = Counter()  # "PUT", "POST /blobs/batch", ...

    def client(self) -> HttpBlobStore:
        def count(request: httpx.Request) -> None:
            path = request.url.path
            self.requests[request.method if request.method == "PUT" else f"POST {path}"] += 1

        http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            event_hooks={"request": [count]},
        )
        return HttpBlobStore(self.url, token=self.token, client=http)

    def post(self, body: bytes) -> httpx.Response:
        return httpx.post(
            f"{self.url}/blobs/batch",
            content=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )


@contextmanager
def server_of(tmp_path: Path, *, old: bool = False, blobs: str = "") -> Iterator[Server]:
    store, blobs = str(tmp_path / "store"), blobs or str(tmp_path / "blobs")
    service = open_service(store, blobs)
    token = create_token(service, "write", "test")
    service.graph.close()
    app = create_app(store, blobs)
    with serving(older(app) if old else app) as url:
        yield Server(url, token, blobs)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with server_of(tmp_path) as given:
        yield given


def record(data: bytes, digest: str | None = None) -> bytes:
    return (digest or hash_bytes(data)).encode() + len(data).to_bytes(8, "little") + data


def small_files(root: Path, count: int, size: int = 100) -> list[tuple[Path, str | None]]:
    root.mkdir(parents=True, exist_ok=True)
    items: list[tuple[Path, str | None]] = []
    for i in range(count):
        path = root / f"{i:05d}.bin"
        path.write_bytes(f"{i:010d}".encode() * (size // 10))
        items.append((path, None))
    return items


def test_a_batch_is_stored_and_answered(server: Server) -> None:
    blobs = [b"one", b"two" * 1000, b""]
    response = server.post(b"".join(record(b) for b in blobs) + record(b"one"))
    assert response.status_code == 200, response.text
    digests = [hash_bytes(b) for b in blobs]
    assert response.json() == {"stored": digests, "size": 3 + 3000}
    assert [server.stored.get_bytes(d) for d in digests] == blobs


def test_one_wrong_digest_refuses_the_whole_batch(server: Server) -> None:
    wrong = hash_bytes(b"what the client claims")
    body = record(b"first") + record(b"what it sends", wrong) + record(b"last")
    response = server.post(body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "DATA_LOSS" and error["digest"] == wrong
    assert wrong in error["message"] and "nothing of the batch stored" in error["message"]
    assert list(server.stored.digests()) == []  # not even the good blobs before it


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (record(b"x" * (MAX_BATCH_BLOB + 1)), 413, "send it by PUT"),
        (record(b"ok") + record(b"cut short")[:-1], 400, "declares 9 bytes but 8 follow"),
        (record(b"ok") + b"0" * 70, 400, "cut short"),
        (b"Z" * 64 + (2).to_bytes(8, "little") + b"ok", 400, "invalid digest"),
    ],
    ids=["blob-over-limit", "short-blob", "short-record", "bad-digest"],
)
def test_malformed_batches_store_nothing(
    server: Server, body: bytes, status: int, said: str
) -> None:
    response = server.post(body)
    assert response.status_code == status, response.text
    assert said in response.json()["error"]["message"]
    assert list(server.stored.digests()) == []


def test_a_batch_over_the_total_limit_is_refused(server: Server) -> None:
    blob = b"y" * MAX_BATCH_BLOB
    body = record(blob) * (MAX_BATCH // len(record(blob)) + 1)
    assert len(body) > MAX_BATCH
    response = server.post(body)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["limit"] == MAX_BATCH
    assert list(server.stored.digests()) == []


def test_small_files_travel_in_batches_large_ones_by_put(server: Server, tmp_path: Path) -> None:
    items = small_files(tmp_path / "data", 2 * BATCH_COUNT + 500)
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * BATCH_BELOW)
    items.append((big, None))
    client = server.client()
    done: list[int] = []
    result = client.put_files(items, progress=done.append)
    assert server.requests["POST /blobs/batch"] == 3 and server.requests["PUT"] == 1
    total = sum(size for _, size in result)
    assert client.bytes_sent == total and sum(done) == total
    assert {d for d, _ in result} == set(server.stored.digests())
    assert client.put_files(items) == result  # all there: nothing travels again
    assert client.bytes_sent == total and server.requests["POST /blobs/batch"] == 3
    client.close()


def test_a_wrong_claim_in_a_batch_keeps_out_only_that_file(server: Server, tmp_path: Path) -> None:
    items = small_files(tmp_path / "data", 10)
    claimed = hash_bytes(b"not its bytes")
    items[3] = (items[3][0], claimed)
    client = server.client()
    with pytest.raises(DigestMismatch, match="does not hash to") as caught:
        client.put_files(items)
    assert caught.value.context["digest"] == claimed
    stored = set(server.stored.digests())
    assert claimed not in stored and len(stored) == 9
    client.close()


def test_an_older_server_gets_puts_for_the_rest_of_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lineage.storage.http")
    with server_of(tmp_path, old=True) as server:
        client = server.client()
        items = small_files(tmp_path / "data", 300)
        done: list[int] = []
        result = client.put_files(items, progress=done.append)
        assert server.requests["POST /blobs/batch"] == 1 and server.requests["PUT"] == 300
        assert {d for d, _ in result} == set(server.stored.digests())
        more = small_files(tmp_path / "more", 20, size=200)
        client.put_files(more)
        assert server.requests["POST /blobs/batch"] == 1 and server.requests["PUT"] == 320
        client.close()
    said = [r.getMessage() for r in caplog.records if "no POST /blobs/batch" in r.getMessage()]
    assert len(said) == 1 and "405" in said[0]
    assert sum(done) == sum(size for _, size in result)


def test_a_batch_into_an_object_store(tmp_path: Path, s3_server: S3Server) -> None:
    """A store without ``put_bytes_many`` (S3) takes each blob as ``put_bytes`` does."""
    name = s3_server.create_bucket("batches")
    with server_of(
        tmp_path, blobs=f"s3://{name}/blobs?endpoint_url={s3_server.endpoint_url}"
    ) as server:
        wrong = hash_bytes(b"claimed")
        assert server.post(record(b"good") + record(b"bad", wrong)).status_code == 422
        assert list(server.stored.digests()) == []
        items = small_files(tmp_path / "data", 50)
        client = server.client()
        result = client.put_files(items)
        assert server.requests["POST /blobs/batch"] == 1 and server.requests["PUT"] == 0
        assert set(server.stored.digests()) == {d for d, _ in result}
        client.close()
