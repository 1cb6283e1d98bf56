"""BlobStore in an S3-compatible bucket: key ``<prefix>/ab/cdef...``, the local layout as keys.

    store = S3BlobStore.from_url("s3://bucket/blobs?endpoint_url=http://127.0.0.1:9000")

Credentials come from the standard AWS chain (environment, ``~/.aws``, instance roles). An
S3 PUT is atomic: an object appears whole or not at all, so blobs go straight to their final
key. The digest is checked on the bytes actually sent: a small file is read into memory,
hashed and PUT from there; a larger one goes through a reader that hashes as boto3 pulls
the body and raises DigestMismatch from the read that would complete it. The request (or the
multipart upload, which s3transfer then aborts) never completes, so S3 never publishes
bytes under a digest they do not have, not even for a moment. Deleting after the fact would
not do: readers could see the bad object, and the delete could remove a good copy another
writer stored meanwhile.

Retries are botocore's ``standard`` mode with a bounded number of attempts; what still
fails is StoreUnavailable naming the endpoint and bucket. Servers that reject botocore's
default CRC32 checksums (some older S3-compatible ones) work with
``AWS_REQUEST_CHECKSUM_CALCULATION=when_required`` in the environment.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from lineage.errors import (
    BlobNotFound,
    DigestMismatch,
    Forbidden,
    IntegrityError,
    InvalidInput,
    LineageError,
    StoreUnavailable,
    Unauthenticated,
)
from lineage.hashing import CHUNK, Hasher, check_digest, hash_bytes, hash_file, hash_stream

__all__ = ["S3BlobStore"]

logger = logging.getLogger(__name__)

MiB = 1 << 20
# At most this many bytes are read whole, hashed and PUT from memory (bounded: x threads).
INLINE = 8 * MiB
PART = 8 * MiB
# ``missing`` asks by LIST (a page of 1000 keys) instead of one HEAD a digest while a page
# answers at least LIST_WORTH of the digests asked. AWS prices a LIST as 12.5 HEADs, and a
# 1000-key page takes several HEADs' time (moto on loopback: 216 ms against 2.5 ms). Digests
# are uniform, so the first page of a run shows how dense the rest of it is.
LIST_PAGE = 1000
LIST_WORTH = 16
DELETE_BATCH = 1000
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
_BLOB_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{62}")
_URL_OPTIONS = ("endpoint_url", "region", "threads", "multipart_threshold", "max_attempts")
_UNAUTHENTICATED = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}


class S3BlobStore:
    """Blobs in ``bucket`` under ``prefix``, on AWS or any S3-compatible ``endpoint_url``.

    ``threads`` bounds the parallel requests; a file of ``multipart_threshold`` bytes or more
    goes up in 8 MiB parts. A request is tried ``max_attempts`` times in all. ``client``: a
    ready boto3 S3 client, whose own retry and timeout settings then apply (``endpoint_url``
    and ``region`` must not be given). ``url`` is the s3:// URL that opens this store again.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
        threads: int = 8,
        multipart_threshold: int = 64 * MiB,
        max_attempts: int = 5,
    ) -> None:
        if not _BUCKET.fullmatch(bucket):
            raise InvalidInput(
                f"invalid S3 bucket name {bucket!r}: 3-63 lowercase letters, digits, '.', "
                "'-' or '_', starting and ending with a letter or digit",
                bucket=bucket,
            )
        prefix = prefix.strip("/")
        if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
            raise InvalidInput(f"invalid S3 prefix {prefix!r}: empty, '.' or '..' segment")
        if endpoint_url is not None and urlsplit(endpoint_url).scheme not in ("http", "https"):
            raise InvalidInput(
                f"invalid S3 endpoint_url {endpoint_url!r}: expected http://host:port "
                "or https://host",
                url=endpoint_url,
            )
        if threads < 1 or max_attempts < 1 or multipart_threshold < 5 * MiB:
            raise InvalidInput(
                "S3 store needs threads >= 1, max_attempts >= 1 and multipart_threshold "
                f">= 5 MiB (S3's smallest part); got {threads}, {max_attempts}, "
                f"{multipart_threshold}"
            )
        if client is not None and (endpoint_url or region):
            raise InvalidInput("pass either a ready S3 client or endpoint_url/region, not both")
        self.bucket = bucket
        self.prefix = prefix
        self._root = f"{prefix}/" if prefix else ""
        self._threads = threads
        self._threshold = multipart_threshold
        self._tries = "after retries" if client else f"after {max_attempts} attempt(s)"
        self.client = client or _make_client(endpoint_url, region, threads, max_attempts)
        self.endpoint_url: str = self.client.meta.endpoint_url
        query = {"endpoint_url": endpoint_url, "region": region}
        shown = urlencode({key: value for key, value in query.items() if value}, safe=":/")
        self.url = f"s3://{bucket}/{prefix}".rstrip("/") + (f"?{shown}" if shown else "")
        # a file: parts read in order from it; a stream of unknown length: parts kept in memory
        self._file_transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=PART,
            max_concurrency=threads,
        )
        self._stream_transfer = TransferConfig(
            multipart_threshold=INLINE, multipart_chunksize=PART, max_concurrency=threads
        )

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        """``s3://bucket/prefix?endpoint_url=...&region=...&threads=...&max_attempts=...``."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise InvalidInput(f"invalid S3 URL {url!r}: expected s3://bucket/prefix", url=url)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - set(_URL_OPTIONS))
        if unknown:
            raise InvalidInput(
                f"unknown option(s) {', '.join(unknown)} in {url!r}: allowed are "
                + ", ".join(_URL_OPTIONS),
                url=url,
            )
        numbers: dict[str, int] = {}
        for name in ("threads", "multipart_threshold", "max_attempts"):
            if name in options:
                try:
                    numbers[name] = int(options[name])
                except ValueError:
                    raise InvalidInput(
                        f"{name}={options[name]!r} in {url!r} is not an integer", url=url
                    ) from None
        return cls(
            parts.netloc,
            unquote(parts.path),
            endpoint_url=options.get("endpoint_url") or None,
            region=options.get("region") or None,
            **numbers,
        )

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r})"

    def key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}{digest[:2]}/{digest[2:]}"

    # questions -----------------------------------------------------------------------------

    def missing(self, digests: Iterable[str]) -> set[str]:
        """One HEAD a digest for a few; for many, LIST while a page answers enough of them."""
        wanted = sorted({check_digest(digest) for digest in digests})
        absent: set[str] = set()
        with self._errors("checking which blobs are missing"):
            if len(wanted) >= 2 * LIST_WORTH:
                runs = min(self._threads, len(wanted) // (2 * LIST_WORTH))
                step = -(-len(wanted) // runs)
                chunks = [wanted[start : start + step] for start in range(0, len(wanted), step)]
                wanted = []
                for run_absent, unanswered in self._each(self._list_run, chunks, reraise=True):
                    absent |= run_absent
                    wanted += unanswered
            present = self._each(self._exists, wanted, reraise=True)
        return absent | {digest for digest, here in zip(wanted, present, strict=True) if not here}

    def _list_run(self, run: list[str]) -> tuple[set[str], list[str]]:
        """Absent digests of a sorted run by LIST, from each unanswered digest on; and the
        digests left for HEAD once a page answers fewer than LIST_WORTH (a sparse store)."""
        keys = [self.key(digest) for digest in run]
        absent: set[str] = set()
        i = 0
        while i < len(run):
            # StartAfter is exclusive: the key less its last character sorts just before it
            page = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self._root, StartAfter=keys[i][:-1], MaxKeys=LIST_PAGE
            )
            listed = [item["Key"] for item in page.get("Contents", ())]
            last = listed[-1] if listed and page.get("IsTruncated") else None
            found = set(listed)
            start = i
            while i < len(run) and (last is None or keys[i] <= last):
                if keys[i] not in found:
                    absent.add(run[i])
                i += 1
            if i - start < LIST_WORTH:
                return absent, run[i:]
        return absent, []

    def _exists(self, digest: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return False
            raise
        return True

    def size(self, digest: str) -> int | None:
        with self._errors(f"reading the size of blob {digest}"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
            except botocore.exceptions.ClientError as exc:
                if _status(exc) == 404:
                    return None
                raise
        size: int = head["ContentLength"]
        return size

    # writes --------------------------------------------------------------------------------

    def put_file(self, path: Path, digest: str | None = None) -> tuple[str, int]:
        return self.put_files([(path, digest)])[0]

    def put_files(
        self,
        items: Sequence[tuple[Path, str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[tuple[str, int]]:
        """Store many files; results in the order of ``items``.

        Files without a digest are hashed first (the digest names the key), then one
        ``missing`` call decides what travels. A file whose bytes do not match its expected
        digest raises DigestMismatch after the others are stored; nothing is stored for it.
        """
        paths = [Path(path) for path, _ in items]
        expected = [None if digest is None else check_digest(digest) for _, digest in items]
        outcome: list[tuple[str, int] | BaseException | None] = [None] * len(items)

        def run(job: Callable[[int], tuple[str, int]], indexes: list[int], threads: int) -> None:
            def step(i: int) -> tuple[str, int]:
                result = job(i)
                if progress is not None and job is not hashed:
                    progress(result[1])
                return result

            for i, result in zip(indexes, self._each(step, indexes, threads), strict=True):
                outcome[i] = result

        def hashed(i: int) -> tuple[str, int]:
            return hash_file(paths[i])

        run(hashed, [i for i, digest in enumerate(expected) if digest is None], self._threads)
        digests: dict[int, str] = {}
        for i, result in enumerate(outcome):
            if isinstance(result, tuple):
                digests[i] = result[0]
            elif result is None:
                digests[i] = expected[i] or ""
        absent = self.missing(set(digests.values()))
        small: list[int] = []
        large: list[int] = []
        verify: list[int] = []
        for i, digest in digests.items():
            if digest in absent:
                absent.discard(digest)  # the first file with this content carries it
                try:
                    size = paths[i].stat().st_size
                except OSError as exc:
                    outcome[i] = exc
                    continue
                (large if size >= self._threshold else small).append(i)
            elif expected[i] is not None:
                verify.append(i)  # stored already, but a wrong claim is still refused
            elif progress is not None and isinstance(done := outcome[i], tuple):
                progress(done[1])  # hashed, and already stored

        def upload(i: int) -> tuple[str, int]:
            # a file hashed above is checked again as it is sent: it may have changed since
            return digests[i], self._upload_file(paths[i], digests[i])

        def check(i: int) -> tuple[str, int]:
            digest, size = hash_file(paths[i])
            if digest != digests[i]:
                raise _mismatch(str(paths[i]), digests[i], digest)
            return digest, size

        run(upload, small, self._threads)
        run(upload, large, 1)  # each large file already sends `threads` parts at once
        run(check, verify, self._threads)
        logger.debug(
            "%s: uploaded %d of %d files (%d in parts)",
            self.url,
            len(small) + len(large),
            len(items),
            len(large),
        )
        results: list[tuple[str, int]] = []
        for result in outcome:
            if isinstance(result, BaseException):
                raise result
            assert result is not None
            results.append(result)
        return results

    def put_stream(self, stream: BinaryIO, digest: str | None = None) -> tuple[str, int]:
        """Store a stream; with ``digest``, the bytes go straight up and are checked on the way."""
        if digest is None:
            # the key is the digest: learn it first, keeping at most INLINE bytes in memory
            with tempfile.SpooledTemporaryFile(max_size=INLINE) as spool:
                actual, size = hash_stream(stream, spool)
                if self.missing([actual]):
                    spool.seek(0)
                    self._upload(_Checked(spool, actual, size, "stream"), actual, size)
            return actual, size
        if not self.missing([digest]):
            actual, size = hash_stream(stream)  # stored already, but a wrong claim is refused
            if actual != digest:
                raise _mismatch("stream", digest, actual)
            return digest, size
        body = _Checked(stream, digest, None, "stream")
        with self._errors(f"uploading blob {digest}"):
            self.client.upload_fileobj(
                body, self.bucket, self.key(digest), Config=self._stream_transfer
            )
        return digest, body.position

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        if self.missing([digest]):
            with self._errors(f"uploading blob {digest}"):
                self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=data)
        return digest

    def _upload_file(self, path: Path, digest: str) -> int:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size <= INLINE and size < self._threshold:
                data = file.read(size)  # exactly the bytes that hash to the digest, or not
                actual = hash_bytes(data)
                if actual != digest:
                    raise _mismatch(str(path), digest, actual)
                with self._errors(f"uploading blob {digest}"):
                    self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=data)
                return len(data)
            return self._upload(_Checked(file, digest, size, str(path)), digest, size)

    def _upload(self, body: _Checked, digest: str, size: int) -> int:
        with self._errors(f"uploading blob {digest}"):
            if size < self._threshold:
                self.client.put_object(
                    Bucket=self.bucket, Key=self.key(digest), Body=body, ContentLength=size
                )
            else:
                self.client.upload_fileobj(
                    body, self.bucket, self.key(digest), Config=self._file_transfer
                )
        return size

    def _each(
        self,
        job: Callable[[Any], Any],
        args: Sequence[Any],
        threads: int | None = None,
        *,
        reraise: bool = False,
    ) -> list[Any]:
        """``job`` over ``args`` in parallel: each result, or the exception it raised (with
        ``reraise``, the first exception is raised once all are done)."""

        def safe(arg: Any) -> Any:
            try:
                return job(arg)
            except Exception as exc:  # noqa: BLE001 - handed back, or raised below
                return exc

        if len(args) <= 1:
            results = [safe(arg) for arg in args]
        else:
            with ThreadPoolExecutor(min(threads or self._threads, len(args))) as pool:
                results = list(pool.map(safe, args))
        if reraise:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results

    # reads ---------------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        key = self.key(digest)
        with self._errors(f"reading blob {digest}"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    raise BlobNotFound(
                        f"blob {digest} is not in {self.url}", digest=digest
                    ) from None
                raise
        return io.BufferedReader(_Download(response["Body"], self, digest), CHUNK)

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as file:
            return file.read()

    def delete(self, digests: Iterable[str]) -> int:
        wanted = sorted({check_digest(digest) for digest in digests})
        absent = self.missing(wanted)
        present = [digest for digest in wanted if digest not in absent]
        removed = 0
        with self._errors("deleting blobs"):
            for start in range(0, len(present), DELETE_BATCH):
                batch = present[start : start + DELETE_BATCH]
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.key(d)} for d in batch], "Quiet": True},
                )
                errors = response.get("Errors", [])
                removed += len(batch) - len(errors)
                if errors:
                    first = errors[0]
                    raise StoreUnavailable(
                        f"{len(errors)} blob(s) could not be deleted from {self.url}: "
                        f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}",
                        url=self.url,
                    )
        return removed

    def digests(self, older_than: float | None = None) -> Iterator[str]:
        horizon = None if older_than is None else datetime.now(UTC) - timedelta(seconds=older_than)
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("listing blobs"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._root):
                for item in page.get("Contents", ()):
                    name = item["Key"][len(self._root) :]
                    if _BLOB_KEY.fullmatch(name) and (
                        horizon is None or item["LastModified"] < horizon
                    ):
                        yield name[:2] + name[3:]

    # errors --------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn botocore's exceptions into lineage's, naming the endpoint and bucket."""
        where = f"S3 endpoint {self.endpoint_url}, bucket {self.bucket!r}"
        context = {"url": self.url, "endpoint": self.endpoint_url, "bucket": self.bucket}
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            code, status = _code(exc), _status(exc)
            message = exc.response.get("Error", {}).get("Message") or code
            if code in _UNAUTHENTICATED:
                raise Unauthenticated(
                    f"{where} refused the credentials while {doing}: {code} ({message})",
                    **context,
                ) from exc
            if status == 403:
                raise Forbidden(
                    f"{where} denied access while {doing}: {code} ({message})", **context
                ) from exc
            if code == "NoSuchBucket":
                raise StoreUnavailable(f"{where}: the bucket does not exist", **context) from exc
            if status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout"):
                raise StoreUnavailable(
                    f"{where} failed while {doing}, {self._tries}: {status} {code} ({message})",
                    **context,
                ) from exc
            raise LineageError(f"{where} refused {doing}: {status} {code} ({message})") from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise Unauthenticated(
                f"no AWS credentials found for {where}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
                **context,
            ) from exc
        except botocore.exceptions.FlexibleChecksumError as exc:
            raise IntegrityError(f"{where}: corrupt response while {doing}: {exc}") from exc
        except (
            botocore.exceptions.ConnectionError,
            botocore.exceptions.HTTPClientError,
            botocore.exceptions.IncompleteReadError,
        ) as exc:
            raise StoreUnavailable(
                f"{where} is unreachable while {doing}, {self._tries}: {exc}",
                **context,
            ) from exc


class _Checked:
    """The upload body: exactly ``size`` bytes of ``source`` (or all of an unsized stream),
    hashed as they are read. The read that would complete the body raises DigestMismatch
    instead if they do not hash to ``digest``. Seeking back to 0 (a retry, or botocore
    computing its checksum) starts the hash again, so every pass that is sent is checked."""

    def __init__(self, source: IO[bytes], digest: str, size: int | None, name: str) -> None:
        self._source = source
        self._start = source.tell() if size is not None else 0
        self._digest = digest
        self._size = size
        self._name = name
        self._hasher = Hasher()
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._size is not None

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self._size is None:
            raise io.UnsupportedOperation("the upload stream cannot seek")
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self._size}
        target = bases[whence] + offset
        if target == 0:
            self._source.seek(self._start)
            self._hasher = Hasher()
        elif target != self._size and target != self.position:
            # only whole passes are checked; s3transfer and botocore never seek elsewhere
            raise io.UnsupportedOperation(f"the upload body cannot seek to {target}")
        self.position = target
        return target

    def read(self, n: int | None = -1) -> bytes:
        if self._size is not None:
            left = self._size - self.position
            want = left if n is None or n < 0 else min(n, left)
            if want == 0:
                return b""
        else:
            want = -1 if n is None or n < 0 else n
        data = self._read(want)
        hashed_to_end = self._size is None and (want < 0 or len(data) < want)
        if self._size is not None and len(data) < want:
            raise DigestMismatch(
                f"{self._name} shrank while it was being stored", digest=self._digest
            )
        self._hasher.update(data)
        self.position += len(data)
        if hashed_to_end or self.position == self._size:
            actual = self._hasher.hexdigest()
            if actual != self._digest:
                raise _mismatch(self._name, self._digest, actual)
        return data

    def _read(self, want: int) -> bytes:
        if want < 0:
            return self._source.read()
        parts = []
        while want > 0 and (chunk := self._source.read(want)):
            parts.append(chunk)
            want -= len(chunk)
        return b"".join(parts)


class _Download(io.RawIOBase):
    """A GET's body as a raw stream whose network failures are lineage errors."""

    def __init__(self, body: Any, store: S3BlobStore, digest: str) -> None:
        self._body = body
        self._store = store
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._store._errors(f"reading blob {self._digest}"):
            data: bytes = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        with self._store._errors(f"reading blob {self._digest}"):
            data: bytes = self._body.read()
        return data

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _make_client(endpoint_url: str | None, region: str | None, threads: int, attempts: int) -> Any:
    config = botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=max(10, 2 * threads),
        # an explicit endpoint (MinIO, moto, an IP) rarely has wildcard DNS for buckets
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    # one session per store: sessions are not thread-safe, the client they make is
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _mismatch(name: str, expected: str, actual: str) -> DigestMismatch:
    return DigestMismatch(
        f"{name}: bytes hash to {actual[:16]}..., not the expected {expected[:16]}... "
        "(wrong digest, or changed while it was being stored); nothing was stored",
        path=name,
        digest=expected,
    )
