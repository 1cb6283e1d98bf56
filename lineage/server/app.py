"""The lineage server as an ASGI application (Starlette): GraphQL, blob transfer, health.

Routes::

    GET  /graphql                GraphiQL, in a browser
    POST /graphql                the provenance API (lineage.server.graphql)
    POST /blobs/missing          {"digests": [...]} -> {"missing": [...]}      read
    PUT  /blobs/{digest}         the bytes, streamed; hashed on arrival         write
    POST /blobs/batch            many small blobs in one body (below)           write
    GET  /blobs/{digest}         the bytes, streamed (HEAD: the size only)      read
    GET  /healthz                {"status": "ok"} once the graph store answers
    GET  /static/...             files of lineage/server/static/ (GraphiQL's scripts: no CDN)
    POST /api/v1/lineage[/batch] OpenLineage events (lineage.server.openlineage)       write

``/`` is left to ``extra_routes`` (the dashboard), which find the service and the caller with
:func:`service` and :func:`principal`. The application keeps nothing of its own: every fact is
in the graph store (tokens included) or the blob store, so any number of processes can serve
one deployment. Refusals from the blob routes are JSON: ``{"error": {"code", "message"}}``
with the HTTP status of the code; nothing is stored by a refused upload.

Uploads wait on their client, so they are kept apart from everything else: at most
``max_uploads`` at a time per process, each in a thread of its own pool (reads and
``/healthz`` keep the default pool), one more is answered 503 with ``Retry-After`` at once,
and an upload that receives no byte for ``upload_idle_timeout`` seconds ends with 408, its
temporary file removed.

``POST /blobs/batch`` carries many small blobs at once (a dataset of many small files would
otherwise be one PUT each). Its body is records one after another, each the blob's digest
(64 ASCII hex characters), its length (8 bytes, unsigned little-endian) and its bytes. At most
``MAX_BATCH`` bytes of body (413) and ``MAX_BATCH_BLOB`` bytes a blob (413: a larger one goes
by PUT). Every blob is hashed on arrival; if any does not hash to its digest, the whole batch
is refused (422, naming that digest) and nothing of it is stored. The rest are stored with one
sync where the blob store can (``put_bytes_many``), and the answer is
``{"stored": [digest, ...], "size": bytes}``. An older server answers 405 (or 404): clients
then send PUTs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import BinaryIO, cast

import anyio
import anyio.from_thread
import anyio.to_thread
from cross_web import HTTPException  # what strawberry answers with an HTTP status
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from lineage.errors import (
    BlobNotFound,
    DigestMismatch,
    InvalidInput,
    LineageError,
    StoreUnavailable,
)
from lineage.hashing import CHUNK, check_digest, hash_bytes
from lineage.names import check_name, escaped
from lineage.server.auth import Gate, Principal
from lineage.server.graphql import Context, Limits, build_schema
from lineage.server.graphql.loaders import call, quick_reads
from lineage.server.graphql.schema import MAX_ALIASES, MAX_QUERY_DEPTH, MAX_TOKENS
from lineage.server.session import COOKIE, cookie_principal
from lineage.service import Service
from lineage.storage import DEFAULT_STORE, local_dir, open_blobs, open_graph
from lineage.storage.blobs import BlobStore
from lineage.storage.staging import recover_stale

__all__ = [
    "DEFAULT_MAX_UPLOAD",
    "DEFAULT_MAX_UPLOADS",
    "DEFAULT_UPLOAD_IDLE_TIMEOUT",
    "MAX_BATCH",
    "MAX_BATCH_BLOB",
    "MAX_GRAPHQL_BODY",
    "MAX_MISSING",
    "UploadIdle",
    "UploadTooLarge",
    "UploadsBusy",
    "check_upload_settings",
    "create_app",
    "default_project",
    "open_service",
    "principal",
    "service",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD = 10 * 1024**3
DEFAULT_MAX_UPLOADS = 16  # at once, per process; the default thread pool (40) stays for reads
DEFAULT_UPLOAD_IDLE_TIMEOUT = 60.0
RETRY_AFTER = 1  # seconds a client is asked to wait when every upload slot is taken
MAX_GRAPHQL_BODY = 1024**2
MAX_MISSING = 10_000
# bytes of a POST /blobs/batch body (held whole, with a copy of its blobs, while checked)
MAX_BATCH = 16 * 1024**2
MAX_BATCH_BLOB = 1024**2  # bytes of one blob in it: a larger one goes by PUT
_RECORD_HEAD = 64 + 8  # a batch record's digest and length
_BATCH_THREADS = 8  # a batch's blobs stored at once in a store without put_bytes_many
STATUS = {
    "INVALID_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "REQUEST_TIMEOUT": 408,
    "CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "DATA_LOSS": 422,
    "UNAVAILABLE": 503,
    "INSUFFICIENT_STORAGE": 507,
}


class UploadTooLarge(InvalidInput):
    code = "PAYLOAD_TOO_LARGE"


class UploadIdle(InvalidInput):
    """An upload whose client sent no byte for the idle timeout (HTTP 408)."""

    code = "REQUEST_TIMEOUT"


class UploadsBusy(StoreUnavailable):
    """Every upload slot of this server process is taken (HTTP 503, with Retry-After)."""


@dataclass(kw_only=True)
class _Runtime:
    service: Service
    gate: Gate
    limits: Limits
    max_upload: int
    max_uploads: int = DEFAULT_MAX_UPLOADS
    upload_idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT
    owned: bool  # whether closing the app closes the stores
    inline: bool = False  # token lookups on the event loop (quick_reads: a SQLite store)
    project: str | None = None  # the default project: the dashboard's index opens on it
    urls: tuple[str, str] | None = None  # the stores' URLs when the app opened them itself
    closed: bool = field(default=False)
    uploads: int = field(default=0)  # in progress; touched from the event loop only
    _upload_threads: anyio.CapacityLimiter | None = field(default=None)

    def upload_threads(self) -> anyio.CapacityLimiter:
        """The uploads' own thread pool limit (made in the event loop, on first use)."""
        if self._upload_threads is None:
            self._upload_threads = anyio.CapacityLimiter(self.max_uploads)
        return self._upload_threads

    def close(self) -> None:
        if self.owned and not self.closed:
            self.closed = True
            self.service.graph.close()


def _runtime(request: Request | WebSocket) -> _Runtime:
    runtime: _Runtime = request.app.state.lineage
    return runtime


def default_project(request: Request) -> str | None:
    """The project the server was started for (``-p``, ``LINEAGE_PROJECT``), or None."""
    return _runtime(request).project


def opened_from(request: Request) -> tuple[str, str] | None:
    """The graph and blob store URLs the application opened its stores from, or None when
    it was handed a service."""
    return _runtime(request).urls


def service(request: Request) -> Service:
    """The service behind the application serving ``request``."""
    return _runtime(request).service


async def principal(request: Request | WebSocket, *, cookie: bool = False) -> Principal:
    """Who ``request`` acts as (one store lookup when it carries a token, on every request:
    a revoked token is refused at once). ``cookie``: a same-origin browser's sign-in cookie
    counts too (:mod:`lineage.server.session`)."""
    runtime = _runtime(request)
    gate = runtime.gate
    client = request.client.host if request.client else None
    headers = request.headers
    if cookie and isinstance(request, Request) and COOKIE in request.cookies:
        signed_in = await call(
            cookie_principal, gate, headers, request.cookies, request.url.scheme, request.method
        )
        if signed_in is not None:
            anonymous = gate.identify(headers, client, headers.get("host"))
            return anonymous if signed_in.scope is None and anonymous.scope else signed_in
    if "authorization" not in headers or runtime.inline:
        return gate.identify(headers, client, headers.get("host"))
    return await call(gate.identify, headers, client, headers.get("host"))


# GraphQL -------------------------------------------------------------------------------------


class _GraphQL(GraphQL[Context, None]):
    """Strawberry's view, with a short way for the common request: a POST of a JSON object
    with a ``query``, answered with the same JSON strawberry's view would give. Every other
    request (GET, GraphiQL, another content type, a body that is not such an object) goes
    through the view, which explains what is wrong as it always did."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            request = Request(scope, receive)
            response = await self._post(request)
            if response is None:
                try:
                    response = await self.run(request)  # the body read above is kept
                except HTTPException as error:
                    response = PlainTextResponse(error.reason, status_code=error.status_code)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _post(self, request: Request) -> Response | None:
        """The answer to a plain GraphQL POST, or None for the view to give."""
        if "application/json" not in _media_type(request.headers.get("content-type", "")):
            return None
        try:
            data = _json(await request.body())
        except HTTPException:
            return None
        if not isinstance(data, dict):
            return None
        query, variables = data.get("query"), data.get("variables")
        extensions = data.get("extensions")
        if (
            not isinstance(query, str)
            or not isinstance(variables, dict | None)
            or not isinstance(extensions, dict | None)
        ):
            return None
        context = await self._context(request)
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=data.get("operationName"),
                allowed_operation_types=_POST_OPERATIONS,
                operation_extensions=extensions,
            )
        except (CannotGetOperationTypeError, InvalidOperationTypeError, MissingQueryError):
            return None  # refused before anything ran: the view words the refusal
        return Response(_encode(process_result(result)), media_type="application/json")

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL with its scripts from ``/static/graphiql/``, not a CDN (strawberry's page
        loads them from unpkg.com, so offline it says "Loading..." forever)."""
        return _graphiql_page()

    def decode_json(self, data: str | bytes) -> object:
        return _json(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return await self._context(request)

    async def _context(self, request: Request | WebSocket) -> Context:
        runtime = _runtime(request)
        return Context(
            service=runtime.service,
            principal=await principal(request, cookie=True),
            limits=runtime.limits,
        )


_POST_OPERATIONS = OperationType.from_http("POST")


@functools.lru_cache(maxsize=16)
def _media_type(header: str) -> str:
    """A Content-Type header's media type, as strawberry's view reads it. Its parser builds
    an email message a call (a tenth of the fixed cost of a request); a server's clients send
    the same few headers again and again."""
    return parse_content_type(header)[0]


# made once: ``json.dumps`` with arguments makes an encoder a call
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def _encode(answer: object) -> bytes:
    """A GraphQL answer as strawberry's view encodes it (``json.dumps``, compact: NaN and
    the infinities as JavaScript writes them, which orjson would turn into null). An answer
    is a tree, so the encoder's check for cycles is skipped."""
    return _ENCODER.encode(answer).encode()


@functools.cache
def _graphiql_page() -> str:
    return (resources.files("lineage.server") / "static" / "graphiql" / "index.html").read_text(
        encoding="utf-8"
    )


# blobs ---------------------------------------------------------------------------------------


def _refusal(error: LineageError) -> JSONResponse:
    body: dict[str, object] = {"code": error.code, "message": escaped(error.message)}
    body.update(
        (k, escaped(v) if isinstance(v, str) else v)  # a refused lone surrogate, shown
        for k, v in error.context.items()
        if isinstance(v, (str, int, float, bool))
    )
    headers = {"WWW-Authenticate": "Bearer"} if error.code == "UNAUTHENTICATED" else {}
    if isinstance(error, UploadsBusy):
        headers["Retry-After"] = str(RETRY_AFTER)
    return JSONResponse({"error": body}, status_code=STATUS.get(error.code, 500), headers=headers)


def _refusals(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except LineageError as error:
            logger.info(
                "%s %s refused (%s): %s", request.method, request.url.path, error.code, error
            )
            refusal = _refusal(error)
            if request.method == "PUT" or request.url.path == "/blobs/batch":
                # the rest of its body may never come: do not wait
                refusal.headers["Connection"] = "close"
            return refusal

    guarded.__name__ = endpoint.__name__
    return guarded


class _Upload(io.RawIOBase):
    """A request body as a blocking stream, read from a worker thread, with a size limit."""

    def __init__(self, request: Request, limit: int, declared: int | None, idle: float) -> None:
        self._chunks = request.stream()
        self._limit = limit
        self._idle = idle  # seconds without a byte after which the upload ends
        self._declared = declared  # the Content-Length, which the body must match
        self._pending = memoryview(b"")
        self._done = False
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        target = memoryview(cast(bytearray, buffer)).cast("B")
        if not self._pending and not self._done:
            self._pending = memoryview(anyio.from_thread.run(self._pull, len(target)))
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    async def _pull(self, wanted: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while size < wanted:
            try:
                with anyio.fail_after(self._idle):
                    chunk = await anext(self._chunks)
            except TimeoutError:
                raise UploadIdle(
                    f"upload received no byte for {self._idle:g} seconds (after "
                    f"{self.received} bytes); nothing was stored",
                    timeout=self._idle,
                ) from None
            except StopAsyncIteration:
                self._done = True
                if self._declared is not None and self.received != self._declared:
                    raise self._short() from None
                break
            except ClientDisconnect:
                raise self._short() from None
            self.received += len(chunk)
            if self._declared is not None and self.received > self._declared:
                raise InvalidInput(
                    f"upload is longer than the {self._declared} bytes its Content-Length "
                    "declared; nothing was stored"
                )
            if self.received > self._limit:
                raise UploadTooLarge(
                    f"upload is over this server's limit of {self._limit} bytes; nothing was "
                    "stored",
                    limit=self._limit,
                )
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    async def whole(self) -> bytes:
        """The whole body, read in the event loop (for a body small enough to hold)."""
        return await self._pull(self._limit + 1)

    def _short(self) -> InvalidInput:
        declared = "" if self._declared is None else f" of the {self._declared}"
        return InvalidInput(
            f"upload ended after {self.received}{declared} bytes its Content-Length declared; "
            "nothing was stored"
        )


def _json(data: str | bytes) -> object:
    """A request body's JSON; a body that is not UTF-8 or is nested past the parser's limit
    is the client's error (400), as is any other body that is not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        reason = "nested too deep" if isinstance(error, RecursionError) else str(error)
        raise HTTPException(400, f"Unable to parse request body as JSON: {reason}") from None


@_refusals
async def _missing(request: Request) -> Response:
    (await principal(request)).require("read")
    try:
        body = _json(await request.body())
    except HTTPException as error:
        raise InvalidInput(
            f'expected a JSON body {{"digests": ["<blake3 hex>", ...]}}: {error.reason}'
        ) from None
    digests = body.get("digests") if isinstance(body, dict) else None
    if not isinstance(digests, list) or len(digests) > MAX_MISSING:
        raise InvalidInput(
            f'expected a JSON body {{"digests": [...]}} with at most {MAX_MISSING} digests'
        )
    wanted = [check_digest(digest) for digest in digests]
    missing = await call(_runtime(request).service.blobs.missing, wanted)
    return JSONResponse({"missing": sorted(missing)})


@_refusals
async def _put(request: Request) -> Response:
    (await principal(request)).require("write")
    digest = check_digest(request.path_params["digest"])
    limit = _runtime(request).max_upload
    header = request.headers.get("content-length")
    declared = int(header) if header is not None and header.isdigit() else None
    if declared is not None and declared > limit:
        raise UploadTooLarge(
            f"upload of {declared} bytes is over this server's limit of {limit} bytes",
            limit=limit,
        )
    runtime = _runtime(request)
    upload = _Upload(request, limit, declared, runtime.upload_idle_timeout)
    try:
        with _upload_slot(runtime):
            stored, size = await anyio.to_thread.run_sync(
                runtime.service.blobs.put_stream,
                cast(BinaryIO, upload),
                digest,
                limiter=runtime.upload_threads(),
            )
    except DigestMismatch as error:
        raise DigestMismatch(
            f"digest mismatch, nothing stored: {error.message}", digest=digest
        ) from None
    return JSONResponse({"digest": stored, "size": size})


@contextlib.contextmanager
def _upload_slot(runtime: _Runtime) -> Iterator[None]:
    """One of the ``max_uploads`` slots for the block, or UploadsBusy (503) at once."""
    if runtime.uploads >= runtime.max_uploads:
        raise UploadsBusy(
            f"this server is receiving {runtime.uploads} uploads, its limit; try again in "
            f"{RETRY_AFTER}s",
            limit=runtime.max_uploads,
        )
    runtime.uploads += 1  # no await between the check and here: no other request runs
    try:
        yield
    finally:
        runtime.uploads -= 1


@_refusals
async def _batch(request: Request) -> Response:
    (await principal(request)).require("write")
    header = request.headers.get("content-length")
    declared = int(header) if header is not None and header.isdigit() else None
    if declared is not None and declared > MAX_BATCH:
        raise UploadTooLarge(
            f"batch of {declared} bytes is over this server's limit of {MAX_BATCH} bytes a "
            "batch; nothing was stored",
            limit=MAX_BATCH,
        )
    runtime = _runtime(request)
    with _upload_slot(runtime):
        body = await _Upload(request, MAX_BATCH, declared, runtime.upload_idle_timeout).whole()
        stored = await anyio.to_thread.run_sync(
            _store_batch, runtime.service.blobs, body, limiter=runtime.upload_threads()
        )
    return JSONResponse({"stored": list(stored), "size": sum(map(len, stored.values()))})


def _store_batch(blobs: BlobStore, body: bytes) -> dict[str, bytes]:
    """Parse, check and store a batch's records; every digest checked before any is stored."""
    view = memoryview(body)
    found: dict[str, bytes] = {}
    at = 0
    while at < len(view):
        if len(view) - at < _RECORD_HEAD:
            raise InvalidInput(
                f"batch record {len(found) + 1} is cut short at byte {at}: each record is a "
                "64-hex digest, an 8-byte little-endian length and the bytes; nothing was stored"
            )
        digest = check_digest(bytes(view[at : at + 64]).decode("ascii", "replace"))
        size = int.from_bytes(view[at + 64 : at + _RECORD_HEAD], "little")
        at += _RECORD_HEAD
        if size > MAX_BATCH_BLOB:
            raise UploadTooLarge(
                f"blob {digest} of {size} bytes is over this server's limit of "
                f"{MAX_BATCH_BLOB} bytes a blob in a batch (send it by PUT); nothing was stored",
                limit=MAX_BATCH_BLOB,
                digest=digest,
            )
        if len(view) - at < size:
            raise InvalidInput(
                f"batch record {len(found) + 1} ({digest}) declares {size} bytes but "
                f"{len(view) - at} follow; nothing was stored",
                digest=digest,
            )
        data = bytes(view[at : at + size])
        at += size
        actual = hash_bytes(data)
        if actual != digest:
            raise DigestMismatch(
                f"digest mismatch, nothing of the batch stored: the bytes sent for {digest} "
                f"hash to {actual}",
                digest=digest,
            )
        found[digest] = data
    many = getattr(blobs, "put_bytes_many", None)
    if many is not None:
        many(list(found.values()))
    elif found:  # an object store: a request a blob, several at once as the PUTs would be
        with ThreadPoolExecutor(min(len(found), _BATCH_THREADS)) as pool:
            for _ in pool.map(blobs.put_bytes, found.values()):
                pass
    return found


@_refusals
async def _get(request: Request) -> Response:
    (await principal(request)).require("read")
    digest = check_digest(request.path_params["digest"])
    blobs = _runtime(request).service.blobs
    headers = {"ETag": f'"{digest}"', "Cache-Control": "public, max-age=31536000, immutable"}
    size = await call(blobs.size, digest)
    if size is not None:
        headers["Content-Length"] = str(size)
    if request.method == "HEAD":
        if size is None:
            raise BlobNotFound(f"blob {digest} is not in {blobs.url}", digest=digest)
        return Response(headers=headers, media_type="application/octet-stream")
    stream = await call(blobs.open, digest)

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


async def _healthz(request: Request) -> Response:
    try:
        await call(_runtime(request).service.get_runs, [])
    except Exception as error:  # noqa: BLE001 - any failure means not healthy
        logger.warning("health check failed: %s", error)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


# the application -----------------------------------------------------------------------------


def store_urls(store: str | None = None, blobs: str | None = None) -> tuple[str, str]:
    """The graph store and blob store URLs ``open_service`` opens for these arguments."""
    store = store or os.environ.get("LINEAGE_STORE") or DEFAULT_STORE
    home = local_dir(store) or Path(DEFAULT_STORE)
    return store, blobs or os.environ.get("LINEAGE_BLOBS") or str(home / "blobs")


def open_service(store: str | None = None, blobs: str | None = None) -> Service:
    """The service over the stores ``open_stores`` would open, without its stat cache."""
    store, blobs = store_urls(store, blobs)
    graph = open_graph(store)
    try:
        service = Service(graph, open_blobs(blobs))
    except BaseException:
        graph.close()
        raise
    recover_stale(graph, service.blobs)
    return service


def check_upload_settings(max_uploads: object, upload_idle_timeout: object) -> None:
    """Refuse an upload bound that is not a positive integer, or an idle timeout that is not
    a positive, finite number of seconds."""
    if isinstance(max_uploads, bool) or not isinstance(max_uploads, int) or max_uploads < 1:
        raise InvalidInput(f"max_uploads must be a positive integer, got {max_uploads!r}")
    idle = upload_idle_timeout
    if isinstance(idle, bool) or not isinstance(idle, int | float) or not 0 < idle < float("inf"):
        raise InvalidInput(
            f"upload_idle_timeout must be a positive number of seconds, got {idle!r}"
        )


def create_app(
    store: str | None = None,
    blobs: str | None = None,
    *,
    require_token: bool = False,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    max_uploads: int = DEFAULT_MAX_UPLOADS,
    upload_idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT,
    max_depth: int = MAX_QUERY_DEPTH,
    max_tokens: int = MAX_TOKENS,
    max_aliases: int = MAX_ALIASES,
    max_lineage_depth: int = Limits.max_lineage_depth,
    service: Service | None = None,
    extra_routes: Sequence[BaseRoute] | None = None,
    project: str | None = None,
) -> Starlette:
    """The lineage server over the stores named by ``store`` and ``blobs`` (or ``service``).

    ``require_token``: refuse anonymous reads even from loopback. ``max_upload``: bytes per
    blob upload. ``max_uploads``: uploads received at once (more are answered 503).
    ``upload_idle_timeout``: seconds an upload may go without a byte (then 408).
    ``max_depth``, ``max_tokens``, ``max_aliases``: the shape of a GraphQL query.
    ``max_lineage_depth``: the ``depth`` argument of lineage queries. ``extra_routes`` go after
    the server's own (``/`` is theirs); by default, the dashboard (:mod:`lineage.server.dashboard`).
    ``project``: the default project (``lineage server -p``, ``LINEAGE_PROJECT``), listed first
    on the dashboard's index, even before anything is recorded in it.

    >>> app = create_app("sqlite:///srv/lineage", "s3://bucket/blobs", require_token=True)
    """
    for name, value in (
        ("max_upload", max_upload),
        ("max_depth", max_depth),
        ("max_tokens", max_tokens),
        ("max_aliases", max_aliases),
        ("max_lineage_depth", max_lineage_depth),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
    check_upload_settings(max_uploads, upload_idle_timeout)
    if project is not None:
        check_name(project, "project")
    if extra_routes is None:
        from lineage.server.dashboard import routes as dashboard  # it imports this module

        extra_routes = dashboard()
    from lineage.server.openlineage import routes as openlineage  # it imports this module

    owned = service is None
    urls = None
    if service is None:
        urls = store_urls(store, blobs)
        service = open_service(*urls)
    runtime = _Runtime(
        service=service,
        gate=Gate(service.graph, require_token=require_token),
        limits=Limits(max_lineage_depth=max_lineage_depth),
        max_upload=max_upload,
        max_uploads=max_uploads,
        upload_idle_timeout=float(upload_idle_timeout),
        owned=owned,
        inline=quick_reads(service.graph),
        project=project,
        urls=urls,
    )
    schema = build_schema(max_depth=max_depth, max_tokens=max_tokens, max_aliases=max_aliases)
    graphql = _GraphQL(schema, allow_queries_via_get=False, subscription_protocols=())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            closing = getattr(app.state, "openlineage_writer", None)  # the OpenLineage routes'
            if closing is not None:
                await closing.aclose()
            runtime.close()

    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"], max_body_size=MAX_GRAPHQL_BODY),
        Route("/blobs/missing", _missing, methods=["POST"], max_body_size=MAX_GRAPHQL_BODY),
        Route("/blobs/batch", _batch, methods=["POST"]),
        Route("/blobs/{digest}", _put, methods=["PUT"]),
        Route("/blobs/{digest}", _get, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("lineage.server", "static")]), name="static"),
        *openlineage(),
        *extra_routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.lineage = runtime
    return app
