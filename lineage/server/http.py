"""How ``lineage server`` reads HTTP/1.1: uvicorn's ``httptools`` protocol, with limits.

``httptools`` (llhttp, in C) parses a request in a few microseconds where uvicorn's default,
the pure-Python ``h11``, took a good part of the ~0.5 ms a request spent in the HTTP stack.
It is stricter than ``h11`` in most ways (it refuses a request with both ``Content-Length``
and ``Transfer-Encoding``, two ``Content-Length`` headers, a bare LF, an obsolete line
fold, a DEL in a header value), but it accepts some things ``h11`` refused, and those are
refused here, before the application sees the request:

- a request head (request line and headers) over :data:`MAX_HEAD` bytes, or with more than
  :data:`MAX_HEADERS` header fields: ``431``, the connection closed. ``httptools`` keeps any
  amount of header data in memory; ``h11`` refused a head it had to buffer past 16 KiB;
- an HTTP/1.1 request without a ``Host`` header, or with more than one (RFC 9112 section
  3.2): ``400``. The server's loopback rule reads ``Host``;
- a ``Transfer-Encoding`` other than ``chunked`` alone (``gzip, chunked``: the body would
  be read as if it were not compressed): ``501``;
- an HTTP version other than 1.0 and 1.1 (``httptools`` answers an HTTP/0.9 line): ``505``.

Each refusal is a short plain-text answer naming the problem, then the connection is closed
(what follows on it cannot be trusted to start a request). Trailer fields of a chunked body
count towards the limits too; past them the application sees the client gone (its answer is
dropped) and the connection is closed after the refusal, or at once if an answer had begun.

:data:`HTTP` and :data:`LOOP` are what :func:`lineage.server.serving.serve` gives uvicorn.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from lineage.server.accesslog import AccessLog

__all__ = ["HTTP", "LOOP", "MAX_HEAD", "MAX_HEADERS", "HttpProtocol"]

HTTP = "lineage.server.http:HttpProtocol"  # uvicorn's ``http`` setting, importable by workers
LOOP = "asyncio"
MAX_HEAD = 64 * 1024  # bytes of request line and header fields (nginx: 4 x 8 KiB; h11: 16 KiB)
MAX_HEADERS = 100  # header fields a request (gunicorn's limit_request_fields)


class _Refused(Exception):
    """Raised in a parser callback: the parser stops, uvicorn answers 400, we say why."""


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol with the refusals of the module docstring, and its
    access log written by :class:`~lineage.server.accesslog.AccessLog`."""

    _received = 0  # bytes received since the current request's head began
    _parsed = 0  # bytes of the request's target and header fields (trailers included)
    _fields = 0
    _hosts = 0
    _in_head = True  # the next bytes are (part of) a request head
    _refusal: tuple[int, str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_logger = _access_log(self.access_logger)  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # refused: the connection is closing
        if self._in_head:
            self._received += len(data)
        super().data_received(data)
        # a head still incomplete past the limit: do not wait for the rest of it
        if self._refusal is None and self._in_head and self._received > MAX_HEAD:
            self._refusal = (431, f"request head over {MAX_HEAD} bytes")
            self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._parsed = self._fields = self._hosts = 0
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > MAX_HEADERS:
            self._refuse(431, f"more than {MAX_HEADERS} header fields")
        self._count(len(name) + len(value))
        if self._in_head:
            known = name.lower()
            if known == b"host":
                self._hosts += 1
            elif known == b"transfer-encoding" and value.rstrip(b" \t").lower() != b"chunked":
                self._refuse(501, "Transfer-Encoding other than chunked is not supported")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        version = self.parser.get_http_version()
        if version not in ("1.1", "1.0"):
            self._refuse(505, f"HTTP/{version} is not supported: send HTTP/1.1")
        if self._hosts > 1 or (self._hosts == 0 and version == "1.1"):
            self._refuse(400, "an HTTP/1.1 request has exactly one Host header")
        self._in_head = False
        self._received = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._received = 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request the parser refused; ours when we refused it."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, message = self._refusal
        self.logger.warning("HTTP request refused (%d): %s", status, message)
        cycle = self.cycle
        if not self._in_head and cycle is not None and not cycle.response_complete:
            # trailers past a limit, the application already running: it sees the client
            # gone, and whatever it answers is dropped; ours goes out unless its had begun
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        body = message.encode("ascii")
        head = [STATUS_LINE[status]]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join([*head, body]))
        self.transport.close()

    def _count(self, size: int) -> None:
        self._parsed += size
        if self._parsed > MAX_HEAD:
            self._refuse(431, f"request head over {MAX_HEAD} bytes")

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        raise _Refused(message)


_ACCESS_LOGS: dict[str, AccessLog] = {}


def _access_log(logger: Any) -> AccessLog:
    """One :class:`AccessLog` a logger, shared by the connections (its lines with it)."""
    found = _ACCESS_LOGS.get(logger.name)
    if found is None or found.logger is not logger:
        found = _ACCESS_LOGS[logger.name] = AccessLog(logger)
    return found
