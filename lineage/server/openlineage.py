"""The Marquez-compatible OpenLineage endpoint of the lineage server.

Routes::

    POST /api/v1/lineage         one event (RunEvent, DatasetEvent or JobEvent)
    POST /api/v1/lineage/batch   a JSON array of events

Answers, as Marquez and the OpenLineage OpenAPI give them: ``201`` stored; ``400`` a body
that is not JSON (or not an object / array); ``422`` an event the spec or a limit refuses,
``{"error": {"code", "message", "field"}}`` naming the field; ``413`` a body over the limit;
``401``/``403`` without a write token (``Authorization: Bearer ...``, what the OpenLineage
client's ``api_key`` auth sends). A batch answers ``200`` when every event was stored,
``207`` when some were (``failed`` lists the others by index) and ``422`` when none was.
Nothing of a refused event is stored.

Over a store that can group writes in one transaction (SQLite, Neo4j), events that arrive
while others are being written are stored together (:mod:`lineage.openlineage.group`): one
transaction, the group's events mapped in memory and written set-based
(:mod:`lineage.openlineage.plan`; a refused event stores nothing, its neighbours all), the
reference manifests written at once; every event is committed before it is answered. Other
stores take each event in the request's own worker thread.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lineage.errors import Forbidden, InvalidInput, LineageError, Unauthenticated
from lineage.hashing import hash_bytes
from lineage.openlineage import MAX_EVENT_BYTES, InvalidEvent, check_event, ingest
from lineage.openlineage.group import GroupWriter, Transactional, ingest_group
from lineage.openlineage.writer import ProcessWriter, wanted
from lineage.server.app import opened_from, principal, service
from lineage.server.auth import bearer, refused_writers, token_id
from lineage.server.graphql.loaders import call

__all__ = ["MAX_BATCH", "MAX_BATCH_BYTES", "routes"]

logger = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_BATCH_BYTES = 64 * 1024**2
_SENDERS = 1024  # write tokens the group writer holds as valid (forgotten all at once when full)
_INLINE = 64 * 1024  # bytes of an event checked in the event loop, not a worker thread
_STORED = b"{}"  # JSONResponse({})'s body, without encoding it each time


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.response = JSONResponse(
            {"error": {"code": code, "message": message, **extra}},
            status_code=status,
            headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
        )


async def _body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, "PAYLOAD_TOO_LARGE", f"body of {declared} bytes; at most {limit}")
    data = bytearray()
    try:
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise _Refused(413, "PAYLOAD_TOO_LARGE", f"body over {limit} bytes")
    except ClientDisconnect:
        raise _Refused(400, "INVALID_INPUT", "the body ended early") from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise _Refused(400, "INVALID_JSON", f"the body is not JSON: {error}") from None


async def _writer(request: Request) -> None:
    try:
        (await principal(request)).require("write")
    except Unauthenticated as error:
        raise _Refused(401, error.code, error.message) from None
    except Forbidden as error:
        raise _Refused(403, error.code, error.message) from None


async def _sender(request: Request) -> tuple[str, str]:
    """The write token a single event came with, as ``(digest, id)``: one the group writer
    holds as valid is not looked up again here (the writer's thread looks each sender up
    once a group, however many events it sent: a token revoked since is refused there, and
    nothing of its event stored); another is looked up as every request's is."""
    header = request.headers.get("authorization", "")
    known: dict[str, tuple[str, str]] = request.app.state.openlineage_senders
    sender = known.get(header)
    if sender is None:
        await _writer(request)  # lets through only a write token's well-formed header
        secret = bearer(header)
        assert secret is not None
        if len(known) >= _SENDERS:
            known.clear()
        sender = known[header] = (hash_bytes(secret.encode()), token_id(secret))
    return sender


def _forget(request: Request, refused: Unauthenticated) -> _Refused:
    """A sender the writer's thread refused (revoked since): looked up again next time."""
    request.app.state.openlineage_senders.pop(request.headers.get("authorization", ""), None)
    return _Refused(401, refused.code, refused.message)


def _refusal(error: LineageError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if isinstance(error, InvalidEvent):
        body["field"] = error.field
    return body


def _store(request: Request, raw: Any) -> None:
    ingest(service(request), check_event(raw))


def _writer_of(request: Request) -> GroupWriter | ProcessWriter | None:
    """The application's group writer, when its graph store can group writes: in a process
    of its own when the application opened its stores from URLs (the child opens them
    too), else in a thread."""
    state = request.app.state
    writer: GroupWriter | ProcessWriter | None = getattr(state, "openlineage_writer", None)
    if writer is None:
        store = service(request)
        if not isinstance(store.graph, Transactional):
            return None
        state.openlineage_senders = {}
        # the senders (write tokens) revoked since they were known, once a group
        recheck = functools.partial(refused_writers, store.graph)
        writer = GroupWriter(store, recheck)
        urls = opened_from(request)
        if urls is not None and wanted(urls[0]):
            writer = ProcessWriter(*urls, fallback=writer)
        state.openlineage_writer = writer
    return writer


async def _lineage(request: Request) -> Response:
    try:
        writer = _writer_of(request)
        sender = None
        if writer is None:
            await _writer(request)
        else:
            sender = await _sender(request)
        raw = await _body(request, MAX_EVENT_BYTES)
        if not isinstance(raw, dict):
            raise _Refused(400, "INVALID_INPUT", "the body must be one JSON object (an event)")
        if writer is None:
            await call(_store, request, raw)
        else:
            # a small event is checked here, in microseconds; a large one in a thread
            size = request.headers.get("content-length", "")
            small = size.isdigit() and int(size) <= _INLINE
            event = check_event(raw) if small else await call(check_event, raw)
            try:
                await writer.store(event, sender)
            except Unauthenticated as refused:  # the token was revoked since it was known
                raise _forget(request, refused) from None
    except _Refused as refused:
        return refused.response
    except InvalidInput as error:
        logger.info("OpenLineage event refused: %s", error)
        return JSONResponse({"error": _refusal(error)}, status_code=422)
    except LineageError as error:  # a conflict with what is stored, or the store is down
        logger.warning("OpenLineage event not stored: %s", error)
        status = 503 if error.code == "UNAVAILABLE" else 409
        return JSONResponse({"error": _refusal(error)}, status_code=status)
    return Response(_STORED, status_code=201, media_type="application/json")


def _check_all(items: list[Any], body_bytes: int) -> tuple[dict[int, Any], list[dict[str, Any]]]:
    """The batch's events checked, by index, and the refusals of the others."""
    failed = []
    checked: dict[int, dict[str, Any]] = {}
    for i, raw in enumerate(items):
        try:
            # no event of a body under the limit can be over it: no need to encode each
            if body_bytes > MAX_EVENT_BYTES and len(json.dumps(raw)) > MAX_EVENT_BYTES:
                raise InvalidEvent(f"an event is at most {MAX_EVENT_BYTES} bytes")
            checked[i] = check_event(raw)
        except LineageError as error:
            failed.append({"index": i, **_refusal(error)})
    return checked, failed


def _answer(
    checked: dict[int, Any], failed: list[dict[str, Any]], stored: list[Any]
) -> list[dict[str, Any]]:
    for i, result in zip(checked, stored, strict=True):
        if isinstance(result, LineageError):
            failed.append({"index": i, **_refusal(result)})
        elif isinstance(result, Exception):
            raise result
    failed.sort(key=lambda item: int(item["index"]))
    return failed


def _store_all(request: Request, items: list[Any], body_bytes: int) -> list[dict[str, Any]]:
    checked, failed = _check_all(items, body_bytes)
    # in order, in one transaction where the store can (each event undone alone if refused)
    return _answer(checked, failed, ingest_group(service(request), list(checked.values())))


async def _batch(request: Request) -> Response:
    try:
        await _writer(request)
        items = await _body(request, MAX_BATCH_BYTES)
        if not isinstance(items, list):
            raise _Refused(400, "INVALID_INPUT", "the body must be a JSON array of events")
        if len(items) > MAX_BATCH:
            raise _Refused(
                413, "PAYLOAD_TOO_LARGE", f"{len(items)} events; at most {MAX_BATCH} a batch"
            )
    except _Refused as refused:
        return refused.response
    size = request.headers.get("content-length", "")
    body_bytes = int(size) if size.isdigit() else MAX_BATCH_BYTES
    writer = _writer_of(request)
    if writer is None:
        failed = await call(_store_all, request, items, body_bytes)
    else:
        # checked in a thread, stored in the groups of whatever else is arriving (in order)
        checked, failed = await call(_check_all, items, body_bytes)
        failed = _answer(checked, failed, await writer.store_many(list(checked.values())))
    stored = len(items) - len(failed)
    status = 200 if not failed else (207 if stored else 422)
    return JSONResponse({"stored": stored, "failed": failed}, status_code=status)


def routes() -> list[BaseRoute]:
    """The OpenLineage routes, for :func:`lineage.server.app.create_app`."""
    return [
        Route("/api/v1/lineage", _lineage, methods=["POST"]),
        Route("/api/v1/lineage/batch", _batch, methods=["POST"]),
    ]
