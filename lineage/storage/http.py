"""BlobStore over a lineage server's blob endpoints: what remote logging uploads through.

``POST /blobs/missing`` asks which digests the server lacks; only those travel. Uploads stream
from disk (``PUT /blobs/{digest}``; the server re-hashes and refuses a mismatch), run in
parallel (bounded), and retry transient failures under :mod:`lineage.retry`. Files under
``BATCH_BELOW`` bytes travel many to a request (``POST /blobs/batch``, up to ``BATCH_BYTES`` or
``BATCH_COUNT`` blobs; the server refuses a whole batch if any blob does not match its digest);
a server without that route (an older one) gets PUTs for the rest of the session. Downloads stream.
A single stream (``put_stream``, what ``lineage sync`` and ``push`` send) is hashed first and
then streamed from the file it came from, or from a temporary spool: never whole in memory.
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, cast

import httpx

from lineage.errors import (
    BlobNotFound,
    DigestMismatch,
    Forbidden,
    InvalidInput,
    LineageError,
    StorageFull,
    StoreUnavailable,
    Unauthenticated,
)
from lineage.hashing import CHUNK, check_digest, hash_bytes, hash_file, hash_stream
from lineage.retry import Retry, configured, send

__all__ = ["BATCH_BELOW", "BATCH_BYTES", "BATCH_COUNT", "SPOOL", "HttpBlobStore", "ResponseStream"]

logger = logging.getLogger(__name__)

_MISSING_BATCH = 10_000
_REMEMBER = 100_000  # digests reported missing and not yet sent, kept to skip a second ask
SPOOL = 4 * 1024 * 1024  # put_stream keeps at most this much of an unseekable stream in memory
BATCH_BELOW = 256 * 1024  # a file this small goes in a batch, not a PUT of its own
BATCH_BYTES = 8 * 1024 * 1024  # of blobs a batch (the server takes 16 MiB)
BATCH_COUNT = 1_000


class HttpBlobStore:
    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        threads: int = 8,
        retry: Retry | None = None,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._threads = threads
        self._retry = configured() if retry is None else retry  # LINEAGE_RETRY_SECONDS
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = client or httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=threads * 2),
        )
        self._lock = threading.Lock()
        # what the server said it lacks, until we send it: write_manifest asks about all
        # its pages at once, then puts each; asking again per page doubled its requests
        self._absent: set[str] = set()
        self.bytes_sent = 0  # what actually travelled: the dedup is measurable
        self._batches = True  # until the server says it has no POST /blobs/batch

    def close(self) -> None:
        self._client.close()

    # every request goes through the one retry policy ----------------------------------------

    def _request(
        self, method: str, path: str, *, body: Callable[[], object] | None = None, **kw: object
    ) -> httpx.Response:
        def attempt() -> httpx.Response:
            if body is not None:
                kw["content"] = body()
            return self._client.request(method, path, **kw)  # type: ignore[arg-type]

        response = send(attempt, url=self.url, what=f"{method} {path}", policy=self._retry)
        _raise_for(response, self.url)
        return response

    # the protocol ------------------------------------------------------------------------------

    def missing(self, digests: Iterable[str]) -> set[str]:
        wanted = sorted({check_digest(d) for d in digests})
        absent: set[str] = set()
        for start in range(0, len(wanted), _MISSING_BATCH):
            batch = wanted[start : start + _MISSING_BATCH]
            response = self._request("POST", "/blobs/missing", json={"digests": batch})
            absent |= set(response.json()["missing"])
        with self._lock:
            if len(self._absent) + len(absent) > _REMEMBER:
                self._absent.clear()
            self._absent |= absent
        return absent

    def put_file(self, path: Path, digest: str | None = None) -> tuple[str, int]:
        return self.put_files([(path, digest)])[0]

    def put_files(
        self,
        items: Sequence[tuple[Path, str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[tuple[str, int]]:
        """Hash what is not known, ask what is missing, upload only that, in parallel.

        A claimed digest is checked either way: by the server as the file arrives, or, when
        the server already holds that digest (or another file of the batch carries it), by
        hashing the file here. A wrong claim raises DigestMismatch once the other files are
        stored; nothing is stored under it.
        """
        paths = [Path(path) for path, _ in items]
        claims = [None if digest is None else check_digest(digest) for _, digest in items]

        def known(i: int) -> tuple[str, int]:
            claim = claims[i]
            return (claim, paths[i].stat().st_size) if claim is not None else hash_file(paths[i])

        with ThreadPoolExecutor(self._threads) as pool:
            hashed = list(pool.map(known, range(len(items))))
            absent = self.missing(digest for digest, _ in hashed)
            uploads: dict[str, tuple[Path, int]] = {}
            verify: list[int] = []
            for i, (digest, size) in enumerate(hashed):
                if digest in absent and digest not in uploads:
                    uploads[digest] = (paths[i], size)
                    continue
                if claims[i] is not None:
                    verify.append(i)  # not sent: a wrong claim would go unnoticed
                elif progress is not None:
                    progress(size)
            mismatches = self._upload_all(pool, uploads, progress)
            rehashed = pool.map(lambda i: hash_file(paths[i]), verify)
            for i, (digest, size) in zip(verify, rehashed, strict=True):
                if digest != claims[i]:
                    mismatches.append(_mismatch(paths[i], claims[i] or "", digest))
                else:
                    hashed[i] = (digest, size)
                    if progress is not None:
                        progress(size)
        if mismatches:
            raise mismatches[0]
        return hashed

    def _upload_all(
        self,
        pool: ThreadPoolExecutor,
        uploads: dict[str, tuple[Path, int]],
        progress: Callable[[int], None] | None,
    ) -> list[DigestMismatch]:
        """Upload each blob once (small ones in batches); return the files refused as not
        matching their digest. After any other failure, start no more (each would wait out
        its own retries against a server that is gone) and raise it, saying how far it got."""
        failed: list[Exception] = []
        refused: list[DigestMismatch] = []
        done = 0

        def upload(batch: list[tuple[str, Path, int]]) -> None:
            nonlocal done
            if failed:
                return
            try:
                if len(batch) == 1 and batch[0][2] >= BATCH_BELOW:
                    digest, path, _ = batch[0]
                    self._upload(path, digest, progress)
                    mismatches: list[DigestMismatch] = []
                else:
                    mismatches = self._upload_batch(batch, progress)
            except DigestMismatch as exc:  # this file's fault, not the server's: go on
                with self._lock:
                    refused.append(exc)
                return
            except Exception as exc:  # noqa: BLE001 - raised below, once the others stop
                with self._lock:
                    failed.append(exc)
                return
            with self._lock:
                refused.extend(mismatches)
                done += len(batch) - len(mismatches)

        jobs = _batches([(d, p, size) for d, (p, size) in uploads.items()])
        for future in [pool.submit(upload, job) for job in jobs]:
            future.result()
        if not failed:
            return refused
        error = failed[0]
        if isinstance(error, LineageError):
            raise type(error)(
                f"{error.message} ({done} of {len(uploads)} files were uploaded before it; "
                "they stay on the server and are not sent again)",
                **error.context,
            ) from error
        raise error

    def _upload_batch(
        self, batch: list[tuple[str, Path, int]], progress: Callable[[int], None] | None
    ) -> list[DigestMismatch]:
        """Send small files in one ``POST /blobs/batch`` (by PUTs to a server without it);
        return those whose bytes do not match their digest, which are not sent."""
        if not self._batches:
            return self._upload_each(batch, progress)
        records: list[bytes] = []
        sent: list[str] = []
        refused: list[DigestMismatch] = []
        size = 0
        for digest, path, known in batch:
            with open(path, "rb") as file:
                data = file.read(known + 1)  # a file grown since it was hashed: a mismatch
            actual = hash_bytes(data)  # as the server will: a wrong one would refuse them all
            if actual != digest:
                refused.append(
                    DigestMismatch(
                        f"{path} does not hash to {digest[:16]}... (a wrong digest, or the "
                        "file changed since it was hashed); nothing was stored under it",
                        path=str(path),
                        digest=digest,
                    )
                )
                continue
            records += [digest.encode(), len(data).to_bytes(8, "little"), data]
            sent.append(digest)
            size += len(data)
        if not sent:
            return refused
        body = b"".join(records)

        def attempt() -> bytes:
            with self._lock:
                self.bytes_sent += size
            return body

        def post() -> httpx.Response:
            return self._client.post(
                "/blobs/batch",
                content=attempt(),
                headers={"Content-Type": "application/octet-stream"},
            )

        response = send(post, url=self.url, what="POST /blobs/batch", policy=self._retry)
        if response.status_code in (404, 405):  # an older server
            with self._lock:
                first, self._batches = self._batches, False
            if first:
                logger.info(
                    "%s has no POST /blobs/batch (HTTP %d: an older server); small blobs go "
                    "by PUT, one a request",
                    self.url,
                    response.status_code,
                )
            keep = set(sent)
            return refused + self._upload_each([b for b in batch if b[0] in keep], progress)
        _raise_for(response, self.url)
        with self._lock:
            self._absent.difference_update(sent)
        if progress is not None:
            progress(size)
        return refused

    def _upload_each(
        self, batch: list[tuple[str, Path, int]], progress: Callable[[int], None] | None
    ) -> list[DigestMismatch]:
        refused: list[DigestMismatch] = []
        for digest, path, _ in batch:
            try:
                self._upload(path, digest, progress)
            except DigestMismatch as exc:
                refused.append(exc)
        return refused

    def _upload(self, path: Path, digest: str, progress: Callable[[int], None] | None) -> None:
        reported = 0  # bytes of this file told to ``progress``: a retry sends them again

        def body() -> Iterator[bytes]:
            nonlocal reported
            at = 0
            with open(path, "rb") as file:
                while chunk := file.read(CHUNK):
                    yield chunk
                    at += len(chunk)
                    with self._lock:
                        self.bytes_sent += len(chunk)
                    if progress is not None and at > reported:
                        progress(at - reported)
                        reported = at

        try:
            self._request(
                "PUT",
                f"/blobs/{digest}",
                body=body,
                headers={"Content-Type": "application/octet-stream"},
            )
            with self._lock:
                self._absent.discard(digest)
        except DigestMismatch:
            raise DigestMismatch(
                f"{path} does not hash to {digest[:16]}... (the server re-hashed it and "
                "refused it: a wrong digest, or the file changed while it was uploaded)",
                path=str(path),
                digest=digest,
            ) from None

    def put_stream(self, stream: BinaryIO, digest: str | None = None) -> tuple[str, int]:
        """Hash the stream, then send it if the server lacks it; never whole in memory.

        A seekable stream (a file) is read twice: hashed, then sent from where it started.
        Any other is hashed into a temporary file (the first ``SPOOL`` bytes in memory) that
        is then sent. Either way the body can be sent again on a retry, with its length.
        """
        if digest is not None:
            check_digest(digest)
        if _seekable(stream):
            start = stream.tell()
            actual, size = hash_stream(stream)
            self._put_body(stream, start, actual, size, digest)
            return actual, size
        with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spooled:
            spool = cast(BinaryIO, spooled)
            actual, size = hash_stream(stream, spool)
            self._put_body(spool, 0, actual, size, digest)
        return actual, size

    def _put_body(
        self, body: BinaryIO, start: int, actual: str, size: int, claimed: str | None
    ) -> None:
        if claimed is not None and claimed != actual:
            raise DigestMismatch(
                f"bytes hash to {actual}, not the claimed {claimed}; nothing was sent",
                digest=claimed,
            )
        with self._lock:
            known = actual in self._absent
        if not known and not self.missing([actual]):
            return

        def chunks() -> Iterator[bytes]:
            body.seek(start)  # each attempt sends the whole body again
            left = size
            while left > 0 and (chunk := body.read(min(CHUNK, left))):
                left -= len(chunk)
                yield chunk
                with self._lock:
                    self.bytes_sent += len(chunk)

        self._request(
            "PUT",
            f"/blobs/{actual}",
            body=chunks,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        with self._lock:
            self._absent.discard(actual)

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        with self._lock:
            known = digest in self._absent
        if known or self.missing([digest]):
            self._request("PUT", f"/blobs/{digest}", content=data)
            with self._lock:
                self.bytes_sent += len(data)
                self._absent.discard(digest)
        return digest

    def open(self, digest: str) -> BinaryIO:
        check_digest(digest)

        def attempt() -> httpx.Response:
            request = self._client.build_request("GET", f"/blobs/{digest}")
            return self._client.send(request, stream=True)

        response = send(attempt, url=self.url, what=f"GET /blobs/{digest}", policy=self._retry)
        if response.status_code != 200:
            response.read()
            response.close()
            _raise_for(response, self.url, digest=digest)
        return cast(BinaryIO, io.BufferedReader(ResponseStream(response), CHUNK))

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as stream:
            return stream.read()

    def size(self, digest: str) -> int | None:
        path = f"/blobs/{check_digest(digest)}"
        response = send(
            lambda: self._client.head(path), url=self.url, what=f"HEAD {path}", policy=self._retry
        )
        if response.status_code == 404:
            return None
        _raise_for(response, self.url)
        return int(response.headers.get("content-length", 0))

    def delete(self, digests: Iterable[str]) -> int:
        raise InvalidInput("blobs on a lineage server are collected by `lineage gc` on the server")

    def digests(self, older_than: float | None = None) -> Iterator[str]:
        raise InvalidInput("a lineage server does not list its blobs to clients")


class ResponseStream(io.RawIOBase):
    """A streamed httpx response as a readable binary stream (closing it closes the response,
    and ``client`` too when the stream owns one)."""

    def __init__(self, response: httpx.Response, client: httpx.Client | None = None) -> None:
        self._response = response
        self._client = client
        self._chunks = response.iter_raw(CHUNK)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        self._response.close()
        if self._client is not None:
            self._client.close()
        super().close()


def _batches(blobs: list[tuple[str, Path, int]]) -> list[list[tuple[str, Path, int]]]:
    """Each large blob alone (a PUT); small ones together, up to ``BATCH_BYTES`` or
    ``BATCH_COUNT`` a batch."""
    jobs = [[blob] for blob in blobs if blob[2] >= BATCH_BELOW]
    batch: list[tuple[str, Path, int]] = []
    size = 0
    for blob in (blob for blob in blobs if blob[2] < BATCH_BELOW):
        if batch and (size + blob[2] > BATCH_BYTES or len(batch) == BATCH_COUNT):
            jobs.append(batch)
            batch, size = [], 0
        batch.append(blob)
        size += blob[2]
    if batch:
        jobs.append(batch)
    return jobs


def _seekable(stream: BinaryIO) -> bool:
    try:
        if stream.seekable():
            stream.tell()
            return True
    except (AttributeError, OSError, ValueError):
        pass
    return False


def _mismatch(path: Path, claimed: str, actual: str) -> DigestMismatch:
    return DigestMismatch(
        f"{path} hashes to {actual[:16]}..., not the claimed {claimed[:16]}...; "
        "nothing was stored under that digest",
        path=str(path),
        digest=claimed,
    )


def _raise_for(response: httpx.Response, url: str, digest: str | None = None) -> None:
    status = response.status_code
    if status < 400:
        return
    code = ""
    try:
        error = response.json().get("error") or response.text
    except ValueError:
        error = response.text
    if isinstance(error, dict):
        code = str(error.get("code", ""))
        error = error.get("message", "")
    detail = str(error).strip().splitlines()[0] if str(error).strip() else f"HTTP {status}"
    if status == 401:
        raise Unauthenticated(f"{url}: {detail}")
    if status == 403:
        raise Forbidden(f"{url}: {detail}")
    if status == 404:
        raise BlobNotFound(f"{url}: {detail}", digest=digest)
    if code == "DATA_LOSS":
        raise DigestMismatch(f"{url}: {detail}", digest=digest)
    if status in (400, 409, 413, 422):
        raise InvalidInput(f"{url}: {detail}")
    if status == 507:  # not retried: waiting frees no space
        raise StorageFull(f"{url}: the server's disk is full: {detail}", url=url)
    if status >= 500:
        raise StoreUnavailable(f"{url}: server error {status}: {detail}", url=url)
    raise LineageError(f"{url}: HTTP {status}: {detail}")
