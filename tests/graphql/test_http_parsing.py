"""Requests as bytes on a socket against a real server on loopback, read by the server's HTTP
protocol (lineage.server.http: httptools with limits). What h11 refused and httptools alone
would accept is refused with a status naming the problem, never a 500; framing tricks
(Content-Length with Transfer-Encoding, two lengths, bad chunks) are refused and store
nothing; legitimate requests at the limits are served; the server answers after each."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from ports import HOST
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lineage.server import serving
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.server.http import HTTP, LOOP, MAX_HEAD, MAX_HEADERS, HttpProtocol
from lineage.server.serving import background

WAIT = 30.0


class Server:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.port = int(url.rpartition(":")[2])
        self.token = token

    def send(self, *parts: bytes) -> tuple[int, bytes, bytes]:
        """Send ``parts`` in turn; the status, head and body of the (last) answer, or
        ``(0, b"", received)`` if the connection closed without a whole one."""
        with socket.create_connection((HOST, self.port), timeout=WAIT) as sock:
            for part in parts:
                try:
                    sock.sendall(part)
                except (BrokenPipeError, ConnectionResetError):
                    break  # refused before the rest was sent: read the answer
            received = b""
            while True:
                head, _, body = received.partition(b"\r\n\r\n")
                if head.startswith(b"HTTP/1.1 100 "):
                    received = body
                    continue
                length = [
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")[1:]
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(body) >= length[0]:
                    break
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
        if not received.startswith(b"HTTP/1.1 ") or b"\r\n\r\n" not in received:
            return 0, b"", received
        head, _, body = received.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), head, body

    def event(self, namespace: str) -> bytes:
        return json.dumps(
            {
                "eventType": "START",
                "eventTime": "2024-05-01T10:00:00Z",
                "producer": "https://example.org/producer",
                "run": {"runId": str(uuid.uuid4())},
                "job": {"namespace": namespace, "name": "job"},
            }
        ).encode()

    def post_head(self, *headers: str, version: str = "1.1") -> bytes:
        lines = [
            f"POST /api/v1/lineage HTTP/{version}",
            f"Host: {HOST}",
            f"Authorization: Bearer {self.token}",
            "Content-Type: application/json",
            *headers,
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def projects(self) -> list[str]:
        answer = httpx.post(f"{self.url}/graphql", json={"query": "{ projects { name } }"})
        return [p["name"] for p in answer.json()["data"]["projects"]]

    def healthy(self) -> bool:
        return httpx.get(f"{self.url}/healthz", timeout=WAIT).status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("http-parsing")
    store, blobs = str(root / "store"), str(root / "blobs")
    service = open_service(store, blobs)
    token = create_token(service, "write", "parsing")
    service.graph.close()
    with background(store, blobs) as url:
        yield Server(url, token)


GET = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n".encode()


def _chunked(body: bytes, trailers: bytes = b"") -> bytes:
    return b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailers)


# name -> (the request's parts given the server and an event body, status, words of the answer)
REFUSED: dict[str, tuple[Any, int, bytes]] = {
    "a header past the head limit": (
        lambda s, e: [GET + b"X-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n"],
        431,
        b"request head over",
    ),
    "a head trickled past the limit, never ended": (
        lambda s, e: [GET + b"X-Big: "] + [b"a" * 16384] * (MAX_HEAD // 16384 + 2),
        431,
        b"request head over",
    ),
    "a target past the head limit": (
        lambda s, e: [
            b"GET /healthz?" + b"q" * MAX_HEAD + f" HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        ],
        431,
        b"request head over",
    ),
    "too many header fields": (
        lambda s, e: [GET + b"".join(b"X-%d: a\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n"],
        431,
        b"more than",
    ),
    "trailers past the head limit": (
        lambda s, e: [
            s.post_head("Transfer-Encoding: chunked")
            + _chunked(e, b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 1000) for i in range(80)))
        ],
        431,
        b"request head over",
    ),
    "no Host": (lambda s, e: [b"GET /healthz HTTP/1.1\r\n\r\n"], 400, b"Host"),
    "two Host headers": (lambda s, e: [GET + b"Host: example.org\r\n\r\n"], 400, b"Host"),
    "Transfer-Encoding gzip, chunked": (
        lambda s, e: [s.post_head("Transfer-Encoding: gzip, chunked") + _chunked(e)],
        501,
        b"Transfer-Encoding",
    ),
    "HTTP/0.9": (lambda s, e: [b"GET /healthz\r\n\r\n"], 505, b"not supported"),
    "Content-Length and Transfer-Encoding": (
        lambda s, e: [
            s.post_head(f"Content-Length: {len(e)}", "Transfer-Encoding: chunked") + _chunked(e)
        ],
        400,
        b"Invalid HTTP request",
    ),
    "two different Content-Lengths": (
        lambda s, e: [s.post_head(f"Content-Length: {len(e)}", "Content-Length: 2") + e],
        400,
        b"Invalid HTTP request",
    ),
    "two equal Content-Lengths": (
        lambda s, e: [s.post_head(f"Content-Length: {len(e)}", f"Content-Length: {len(e)}") + e],
        400,
        b"Invalid HTTP request",
    ),
    "a signed Content-Length": (
        lambda s, e: [s.post_head(f"Content-Length: +{len(e)}") + e],
        400,
        b"Invalid HTTP request",
    ),
    "a negative Content-Length": (
        lambda s, e: [s.post_head("Content-Length: -1") + e],
        400,
        b"Invalid HTTP request",
    ),
    "a Content-Length past any integer": (
        lambda s, e: [s.post_head("Content-Length: " + "9" * 30) + e],
        400,
        b"Invalid HTTP request",
    ),
    "a chunk size that is not hex": (
        lambda s, e: [s.post_head("Transfer-Encoding: chunked") + b"zz\r\n" + e + b"\r\n0\r\n\r\n"],
        400,
        b"Invalid HTTP request",
    ),
    "a chunk without its CRLF": (
        lambda s, e: [
            s.post_head("Transfer-Encoding: chunked") + b"%x\r\n" % len(e) + e + b"0\r\n\r\n"
        ],
        400,
        b"Invalid HTTP request",
    ),
    "a space in a header name": (lambda s, e: [GET + b"X A: b\r\n\r\n"], 400, b"Invalid HTTP"),
    "a space before the colon": (
        lambda s, e: [s.post_head(f"Content-Length : {len(e)}") + e],
        400,
        b"Invalid HTTP request",
    ),
    "NUL in a header value": (lambda s, e: [GET + b"X-A: b\x00c\r\n\r\n"], 400, b"Invalid HTTP"),
    "CR in a header value": (lambda s, e: [GET + b"X-A: b\rc\r\n\r\n"], 400, b"Invalid HTTP"),
    "DEL in a header value": (lambda s, e: [GET + b"X-A: b\x7fc\r\n\r\n"], 400, b"Invalid HTTP"),
    "an obsolete line fold": (lambda s, e: [GET + b"X-A: b\r\n c\r\n\r\n"], 400, b"Invalid HTTP"),
    "bare LF line ends": (
        lambda s, e: [f"GET /healthz HTTP/1.1\nHost: {HOST}\n\n".encode()],
        400,
        b"Invalid HTTP",
    ),
    "a control byte in the target": (
        lambda s, e: [f"GET /heal\x01thz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()],
        400,
        b"Invalid HTTP",
    ),
    "not a request line": (lambda s, e: [b"HELLO\r\n\r\n"], 400, b"Invalid HTTP"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_request_the_protocol_refuses_gets_its_status_and_stores_nothing(
    server: Server, name: str
) -> None:
    parts, status, words = REFUSED[name]
    namespace = f"refused-{uuid.uuid4().hex[:8]}"
    got, _, body = server.send(*parts(server, server.event(namespace)))
    assert (got, words in body) == (status, True), body[:200]
    assert namespace not in server.projects()
    assert server.healthy()


def test_requests_at_the_limits_are_served(server: Server) -> None:
    near = MAX_HEAD - 1024  # the request line and the other fields fit in what is left
    got, _, body = server.send(GET + b"X-Big: " + b"a" * near + b"\r\n\r\n")
    assert (got, body) == (200, b'{"status":"ok"}')
    fields = b"".join(b"X-%d: a\r\n" % i for i in range(MAX_HEADERS - 1))  # and Host
    assert server.send(GET + fields + b"\r\n")[0] == 200
    assert server.send(b"GET /healthz HTTP/1.0\r\n\r\n")[0] == 200  # no Host in HTTP/1.0


def test_chunked_and_expect_continue_events_are_stored(server: Server) -> None:
    chunked, continued = f"chunked-{uuid.uuid4().hex[:8]}", f"expect-{uuid.uuid4().hex[:8]}"
    event = server.event(chunked)
    small = _chunked(event, b"X-Checksum: none\r\n")  # a trailer within the limits
    assert server.send(server.post_head("Transfer-Encoding: chunked") + small)[0] == 201
    event = server.event(continued)
    head = server.post_head("Expect: 100-continue", f"Content-Length: {len(event)}")
    assert server.send(head, event)[0] == 201
    assert {chunked, continued} <= set(server.projects())


def test_a_chunked_event_past_the_body_limit_is_413(server: Server) -> None:
    from lineage.openlineage import MAX_EVENT_BYTES

    namespace = f"big-{uuid.uuid4().hex[:8]}"
    head = server.post_head("Transfer-Encoding: chunked")
    chunk = b"%x\r\n%s\r\n" % (1024**2, b" " * 1024**2)
    parts = [head, *[chunk] * (MAX_EVENT_BYTES // 1024**2 + 1), b"0\r\n\r\n"]
    got, _, body = server.send(*parts)
    assert (got, json.loads(body)["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert namespace not in server.projects() and server.healthy()


def test_serve_reads_requests_with_this_protocol(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configs: list[uvicorn.Config] = []
    monkeypatch.setattr(serving, "_run", configs.append)
    for key in (
        "STORE",
        "BLOBS",
        "SERVER_REQUIRE_TOKEN",
        "SERVER_MAX_UPLOAD",
        "SERVER_MAX_UPLOADS",
    ):
        monkeypatch.setenv(f"LINEAGE_{key}", "unset")  # serve() sets them: restored after
    monkeypatch.setenv("LINEAGE_SERVER_UPLOAD_IDLE_TIMEOUT", "unset")
    serving.serve(str(tmp_path / "store"), str(tmp_path / "blobs"), port=1)
    assert (configs[0].http, configs[0].loop) == (HTTP, LOOP)
    assert import_from_string(HTTP) is HttpProtocol
    assert issubclass(HttpProtocol, HttpToolsProtocol)
