"""References to http(s):// objects: identity recorded, download and verify refuse a change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import lineage

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
