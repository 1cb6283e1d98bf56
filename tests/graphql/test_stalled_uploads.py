"""Stalled blob uploads against a real `lineage server` process: they hold at most
``--max-uploads`` slots, one more is answered 503 with Retry-After at once, a stalled one
ends with 408 after ``--upload-idle-timeout`` and leaves nothing behind, and reads and
/healthz are served all along (issue 14, finding 5)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from ports import HOST, free_port

from lineage.cli import cli
from lineage.retry import Retry
from lineage.server.app import DEFAULT_MAX_UPLOADS, DEFAULT_UPLOAD_IDLE_TIMEOUT, open_service
from lineage.server.auth import create_token
from lineage.storage.http import HttpBlobStore

LINEAGE = Path(sys.executable).parent / "lineage"
SLOTS = 2
IDLE = 2.0
DIGEST = "ab" * 32  # a digest no test body hashes to: a stalled upload never completes
WAIT = 30.0  # what a socket waits for an answer before the test calls it hung


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    store = tmp_path / "store"
    service = open_service(str(store))
    token = create_token(service, "write", "uploads")
    service.graph.close()
    port = free_port()
    settings = ["--max-uploads", str(SLOTS), "--upload-idle-timeout", str(IDLE)]
    process = subprocess.Popen(
        [str(LINEAGE), "--store", str(store), "server", "--port", str(port), *settings],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "lineage server exited"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "lineage server did not start"
            time.sleep(0.05)
        yield url, token, store / "blobs"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Stalled:
    """A PUT of a 1 MB body over a raw socket that sends its headers and a few bytes, then
    only what the test trickles in."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=WAIT)
        head = (
            f"PUT /blobs/{DIGEST} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: 1000000\r\n\r\n"
        )
        self.sock.sendall(head.encode() + b"x" * 10)

    def trickle(self) -> None:
        self.sock.sendall(b"x")

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        """The status, headers and body of the answer, read until the server closes."""
        data = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), headers, body

    def close(self) -> None:
        self.sock.close()


def _temporaries(blobs: Path) -> list[Path]:
    return list((blobs / "tmp").iterdir()) if (blobs / "tmp").is_dir() else []


def _fill_slots(port: int, token: str, blobs: Path) -> list[Stalled]:
    holders = [Stalled(port, token) for _ in range(SLOTS)]
    deadline = time.monotonic() + WAIT
    while len(_temporaries(blobs)) < SLOTS:  # each holder's upload is being written
        assert time.monotonic() < deadline, "the stalled uploads never started"
        time.sleep(0.02)
    return holders


def test_stalled_uploads_leave_reads_served(server: tuple[str, str, Path]) -> None:
    url, token, blobs = server
    port = int(url.rsplit(":", 1)[1])
    holders = _fill_slots(port, token, blobs)
    # more stalled uploads than the default thread pool has threads (40): each is refused
    # at once, with a hint when to come back, and the connection is closed
    extras = [Stalled(port, token) for _ in range(43)]
    for extra in extras:
        status, headers, body = extra.answer()
        assert status == 503, body
        assert headers["retry-after"] == "1" and headers["connection"] == "close"
        assert b"UNAVAILABLE" in body and b"limit" in body
        extra.close()
    # reads are served while every slot stalls
    for holder in holders:
        holder.trickle()
    assert httpx.get(f"{url}/healthz", timeout=WAIT).json() == {"status": "ok"}
    read = httpx.post(f"{url}/graphql", json={"query": "{ projects { name } }"}, timeout=WAIT)
    assert read.status_code == 200 and read.json() == {"data": {"projects": []}}, read.text
    assert len(_temporaries(blobs)) == SLOTS
    # then the holders go quiet: each ends with 408 after the idle timeout, nothing kept
    for holder in holders:
        status, headers, body = holder.answer()
        assert status == 408, body
        assert b"REQUEST_TIMEOUT" in body and b"no byte for 2 seconds" in body
        assert headers["connection"] == "close"
        holder.close()
    assert _temporaries(blobs) == []
    assert httpx.head(f"{url}/blobs/{DIGEST}", timeout=WAIT).status_code == 404
    assert not any(path.is_file() for path in blobs.rglob("*"))
    # the slots are free again: a real upload goes through
    client = HttpBlobStore(url, token=token)
    try:
        digest = client.put_bytes(b"after the stall")
        assert client.get_bytes(digest) == b"after the stall"
    finally:
        client.close()
    # the SDK takes a 503 for what it is: it waits, retries, and gets through once a slot frees
    holders = _fill_slots(port, token, blobs)
    client = HttpBlobStore(url, token=token, retry=Retry(attempts=30, max_delay=1.0))
    done: list[str] = []
    failed: list[BaseException] = []

    def upload() -> None:
        try:
            done.append(client.put_bytes(b"sent while the server was busy"))
        except BaseException as error:  # reported by the assertion below
            failed.append(error)

    thread = threading.Thread(target=upload)
    thread.start()
    try:
        thread.join(timeout=1.5)  # answered 503 (and retrying) while both slots are held
        assert thread.is_alive() and not done and not failed
        for holder in holders:
            holder.close()  # the holders leave: their slots free up
        thread.join(timeout=WAIT)
        assert not thread.is_alive() and not failed, failed
        assert client.get_bytes(done[0]) == b"sent while the server was busy"
    finally:
        thread.join()
        client.close()


def test_upload_settings_are_checked_and_shown(tmp_path: Path) -> None:
    shown = CliRunner().invoke(cli, ["server", "--help"]).stdout
    assert "--max-uploads" in shown and "--upload-idle-timeout" in shown
    assert "default 16" in shown and "default 60" in shown
    assert (DEFAULT_MAX_UPLOADS, DEFAULT_UPLOAD_IDLE_TIMEOUT) == (16, 60)
    for option, value in (("--max-uploads", "0"), ("--upload-idle-timeout", "-1")):
        args = ["--store", str(tmp_path / "s"), "server", "--port", "1", option, value]
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 2 and done.stderr.count("\n") == 1, done.output
        assert option.lstrip("-").replace("-", "_") in done.stderr, done.stderr
