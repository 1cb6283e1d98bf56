"""Start and stop a real S3-protocol server (moto's standalone server) on loopback for tests.

No mocking of the client: the server is a separate process speaking HTTP on 127.0.0.1, so
boto3 runs its whole stack (signing, retries, checksums, multipart) as it would against AWS.

    os.environ.update(ENV)              # fake credentials, no developer config
    server = S3Server()
    server.start()                      # free port, waits until S3 answers
    server.create_bucket("blobs")
    store = S3BlobStore("blobs", endpoint_url=server.endpoint_url)
    server.stop()

The child watches its stdin and exits when it closes, so a killed test run leaves no server
behind. :class:`Flaky` is the opposite: an S3 endpoint that fails as scripted.

``python tests/s3_server.py [--port N]`` starts one, prints its endpoint and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from typing import TYPE_CHECKING, Any, Self

from ports import HOST, free_port

if TYPE_CHECKING:
    from types import TracebackType

REGION = "us-east-1"
# Fake credentials: moto accepts anything, and these keep a developer's real ones out of tests.
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS")


class S3Server:
    """One moto S3 server process on 127.0.0.1."""

    def __init__(self) -> None:
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: deque[bytes] = deque(maxlen=200)
        self._reader: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("S3Server was never started")
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.port = free_port()
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--port", str(self.port), "--stop-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._proc.poll() is not None:
                raise self._failure(f"exited with code {self._proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise self._failure(f"did not answer within {timeout:g}s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the child stops on EOF
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if proc.stdout is not None:
            proc.stdout.close()

    def client(self) -> Any:
        """A plain boto3 S3 client for this server, to look behind a store's back."""
        import boto3
        import botocore.config

        session = boto3.session.Session(
            aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=ENV["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )
        config = botocore.config.Config(s3={"addressing_style": "path"})
        return session.client("s3", endpoint_url=self.endpoint_url, config=config)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def output(self) -> str:
        return b"".join(self._output).decode(errors="replace")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # an HTTP answer of any kind: the server is up
        except OSError:
            return False

    def _drain(self) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        for line in proc.stdout:
            self._output.append(line)

    def _failure(self, what: str) -> RuntimeError:
        return RuntimeError(f"moto S3 server on port {self.port} {what}:\n{self.output()}")


class Flaky(http.server.ThreadingHTTPServer):
    """An S3 endpoint on loopback answering from a script: (status, code) per request, then
    200 with ``body`` (a HEAD gets the headers only). ``requests`` lists what was asked."""

    def __init__(self, script: list[tuple[int, str]], body: bytes) -> None:
        super().__init__((HOST, 0), _FlakyHandler)
        self.script = list(script)
        self.body = body
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    server: Flaky

    def _answer(self, body: bool) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        if self.server.script:
            status, code = self.server.script.pop(0)
            payload = f"<Error><Code>{code}</Code><Message>scripted</Message></Error>".encode()
        else:
            status, payload = 200, self.server.body
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        if status == 200:
            self.send_header("ETag", '"scripted"')
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(port: int, stop_on_eof: bool) -> int:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    print(f"http://{HOST}:{port}", flush=True)
    try:
        if stop_on_eof:
            sys.stdin.buffer.read()  # returns when the parent closes the pipe or dies
        else:
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run moto's S3 server on loopback.")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--stop-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.stop_on_stdin_eof:
        print("credentials: " + " ".join(f"{k}={v}" for k, v in ENV.items()), file=sys.stderr)
    return _serve(args.port or free_port(), args.stop_on_stdin_eof)


if __name__ == "__main__":
    sys.exit(main())
