"""Reference entries: bytes that stay where they are, tracked by the strongest identity offered.

=========  ======================================  =========================================
scheme     identity recorded when logged           checked on download and verify
=========  ======================================  =========================================
file://    size and BLAKE3 content digest          the bytes re-hashed
s3://      size, ETag and version id (if any)      GET of that version / If-Match on the ETag
http(s)://  size, ETag and Last-Modified            the response's ETag, Last-Modified, size
=========  ======================================  =========================================

A directory or prefix expands to one entry per object; more than ``max_objects`` is an error
(never a silent truncation). S3 uses the standard AWS chain for credentials and endpoint
(``AWS_ENDPOINT_URL_S3`` for an S3-compatible server), or the endpoint the URI names, as a
``--blobs`` URL does: ``s3://bucket/key?endpoint_url=http://minio:9000&region=eu-west-1``.
Each object of an expanded prefix keeps that query, so download and verify ask the same
server. A request is tried ``AWS_MAX_ATTEMPTS`` times (default 5), then fails naming the
file and the object.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from lineage.errors import (
    DigestMismatch,
    Forbidden,
    IntegrityError,
    InvalidInput,
    InvalidPath,
    LineageError,
    StoreUnavailable,
    Unauthenticated,
    UnsupportedScheme,
)
from lineage.hashing import CHUNK

if TYPE_CHECKING:
    import httpx  # imported where a reference is fetched: httpx brings click, rich, pygments

__all__ = ["S3_ATTEMPTS", "SCHEMES", "Located", "check", "locate", "open_reference"]

SCHEMES = ("file", "s3", "http", "https")
S3_ATTEMPTS = 5  # tries of one S3 request, unless AWS_MAX_ATTEMPTS says otherwise
_S3_OPTIONS = ("endpoint_url", "region")
_S3_THREADS = 16  # HEADs in flight while a prefix is expanded
_UNAUTHENTICATED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
_clients: dict[tuple[object, ...], Any] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class Located:
    """One object found under a reference URI, with the identity it had when found."""

    relative: str  # its path below the URI ("" for the URI itself)
    uri: str
    size: int
    source: Path | None = None  # a local file, to hash
    etag: str | None = None
    version_id: str | None = None
    last_modified: str | None = None


def locate(uri: str, max_objects: int) -> list[Located]:
    scheme = urlsplit(uri).scheme
    if scheme not in SCHEMES:
        raise UnsupportedScheme(
            f"unsupported reference {uri!r}: supported schemes are "
            + ", ".join(f"{s}://" for s in SCHEMES),
            uri=uri,
        )
    if scheme == "file":
        return _locate_file(uri, max_objects)
    if scheme == "s3":
        return _locate_s3(uri, max_objects)
    return [_locate_http(uri)]


def _locate_file(uri: str, max_objects: int) -> list[Located]:
    from lineage.files import walk

    source = Path(unquote(urlsplit(uri).path))
    if source.is_file():
        return [Located(relative="", uri=uri, size=source.stat().st_size, source=source)]
    if not source.is_dir():
        raise InvalidPath(f"reference {uri} names nothing that exists", path=str(source))
    found = walk(source)
    if len(found) > max_objects:
        raise InvalidPath(
            f"reference {uri} holds {len(found)} files, more than max_objects={max_objects}",
            path=str(source),
        )
    return [
        Located(relative=rel, uri=path.as_uri(), size=path.stat().st_size, source=path)
        for rel, path in found
    ]


def _s3_target(uri: str) -> tuple[str, str, str | None, str | None]:
    """Bucket, key, endpoint_url and region of ``s3://bucket/key?endpoint_url=...&region=...``."""
    parts = urlsplit(uri)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_S3_OPTIONS))
    if unknown:
        raise InvalidInput(
            f"unknown option(s) {', '.join(unknown)} in {uri!r}: allowed are "
            + ", ".join(_S3_OPTIONS),
            uri=uri,
        )
    endpoint = options.get("endpoint_url") or None
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise InvalidInput(
            f"invalid endpoint_url {endpoint!r} in {uri!r}: expected http://host:port or "
            "https://host",
            uri=uri,
        )
    if not parts.netloc:
        raise InvalidInput(f"invalid S3 reference {uri!r}: expected s3://bucket/key", uri=uri)
    return parts.netloc, unquote(parts.path.lstrip("/")), endpoint, options.get("region") or None


def _s3(endpoint: str | None, region: str | None) -> Any:
    """A client for this endpoint, made once per AWS settings (the ``AWS_*`` environment):
    download and verify ask one question an object, from several threads."""
    settings = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    key = (endpoint, region, settings)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            import botocore.config

            try:
                attempts = max(1, int(os.environ.get("AWS_MAX_ATTEMPTS", S3_ATTEMPTS)))
            except ValueError:
                attempts = S3_ATTEMPTS
            config = botocore.config.Config(
                retries={"mode": "standard", "total_max_attempts": attempts},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=_S3_THREADS,
                # an explicit endpoint (MinIO, moto, an IP) rarely has wildcard DNS for buckets
                s3={"addressing_style": "path"} if endpoint else None,
            )
            session = boto3.session.Session()
            if len(_clients) >= 8:
                _clients.clear()
            client = _clients[key] = session.client(
                "s3", endpoint_url=endpoint, region_name=region, config=config
            )
    return client


@contextmanager
def _s3_errors(
    uri: str, name: str | None = None, *, missing: type[LineageError] = IntegrityError
) -> Iterator[None]:
    """botocore's exceptions as lineage's, naming the file (``name``) and the object."""
    import botocore.exceptions

    label = f"{name}: " if name else ""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code == "NoSuchBucket":
            raise missing(f"{label}{uri}: the bucket does not exist", uri=uri) from None
        if code in ("404", "NoSuchKey", "NoSuchVersion") or status == 404:
            raise missing(f"{label}{uri} no longer exists ({code})", uri=uri) from None
        if code in ("412", "PreconditionFailed"):
            raise DigestMismatch(
                f"{label}{uri} changed since it was logged (ETag differs)", uri=uri
            ) from None
        if code in _UNAUTHENTICATED:
            raise Unauthenticated(f"{label}S3 refused the credentials for {uri}: {code}") from None
        if status == 403:
            raise Forbidden(f"{label}S3 denied access to {uri}: {code}", uri=uri) from None
        raise StoreUnavailable(
            f"{label}S3 failed for {uri}, after retries: {status} {code}", uri=uri
        ) from None
    except botocore.exceptions.NoCredentialsError:
        raise Unauthenticated(
            f"{label}no AWS credentials found for {uri}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            uri=uri,
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise StoreUnavailable(f"{label}S3 unreachable for {uri}: {exc}", uri=uri) from None


def _locate_s3(uri: str, max_objects: int) -> list[Located]:
    bucket, key, endpoint, region = _s3_target(uri)
    client = _s3(endpoint, region)
    if key and not key.endswith("/"):
        try:
            with _s3_errors(uri, missing=InvalidPath):
                head = client.head_object(Bucket=bucket, Key=key)
        except InvalidPath:
            head = None  # not an object: a prefix, perhaps
        if head is not None:
            return [
                Located(
                    relative="",
                    uri=uri,
                    size=head["ContentLength"],
                    etag=head.get("ETag"),
                    version_id=head.get("VersionId"),
                )
            ]
    prefix = key if not key or key.endswith("/") else key + "/"
    keys: list[str] = []
    with _s3_errors(uri, missing=InvalidPath):
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                if len(keys) >= max_objects:
                    raise InvalidPath(
                        f"reference {uri} holds more than max_objects={max_objects} objects",
                        path=uri,
                    )
                keys.append(item["Key"])
    if not keys:
        raise InvalidPath(f"reference {uri} names no object and no prefix with objects", path=uri)
    query = urlsplit(uri).query
    suffix = f"?{query}" if query else ""

    def identify(object_key: str) -> Located:
        # the listing has no version ids: a HEAD an object, whose answers all agree
        object_uri = f"s3://{bucket}/{quote(object_key)}{suffix}"
        with _s3_errors(object_uri, missing=InvalidPath):
            head = client.head_object(Bucket=bucket, Key=object_key)
        return Located(
            relative=object_key[len(prefix) :],
            uri=object_uri,
            size=head["ContentLength"],
            etag=head.get("ETag"),
            version_id=head.get("VersionId"),
        )

    with ThreadPoolExecutor(min(_S3_THREADS, len(keys))) as pool:
        return list(pool.map(identify, keys))


def _locate_http(uri: str) -> Located:
    import httpx

    try:
        response = httpx.head(uri, follow_redirects=True, timeout=30)
    except httpx.HTTPError as exc:
        raise StoreUnavailable(f"cannot reach {uri}: {exc}", uri=uri) from None
    if response.status_code >= 400:
        raise InvalidPath(f"reference {uri} answered HTTP {response.status_code}", path=uri)
    length = response.headers.get("content-length")
    etag = response.headers.get("etag")
    modified = response.headers.get("last-modified")
    if length is None and etag is None and modified is None:
        raise InvalidPath(
            f"{uri} offers no size, ETag or Last-Modified: nothing to recognise it by", path=uri
        )
    return Located(
        relative="",
        uri=uri,
        size=int(length or 0),
        etag=etag,
        last_modified=modified,
    )


def open_reference(
    uri: str,
    *,
    name: str,
    etag: str | None = None,
    version_id: str | None = None,
    last_modified: str | None = None,
) -> BinaryIO:
    """A stream of the referenced bytes, refused (naming ``name``) when the source changed."""
    scheme = urlsplit(uri).scheme
    if scheme == "file":
        path = Path(unquote(urlsplit(uri).path))
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise IntegrityError(
                f"{name}: referenced file {path} no longer exists", path=name
            ) from None
    if scheme == "s3":
        bucket, key, endpoint, region = _s3_target(uri)
        kw: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version_id:
            kw["VersionId"] = version_id
        elif etag:
            kw["IfMatch"] = etag
        with _s3_errors(uri, name):
            response = _s3(endpoint, region).get_object(**kw)
        if etag and response.get("ETag") != etag:
            response["Body"].close()
            raise DigestMismatch(f"{name}: {uri} changed since it was logged", path=name)
        return cast(BinaryIO, io.BufferedReader(_S3Body(response["Body"], uri, name), CHUNK))
    if scheme in ("http", "https"):
        import httpx

        from lineage.storage.http import ResponseStream

        client = httpx.Client(follow_redirects=True, timeout=60)
        response = client.send(client.build_request("GET", uri), stream=True)
        if response.status_code >= 400:
            response.close()
            raise IntegrityError(f"{name}: {uri} answered HTTP {response.status_code}", path=name)
        problem = _http_changed(response.headers, etag, last_modified)
        if problem:
            response.close()
            raise DigestMismatch(f"{name}: {uri} {problem}", path=name)
        return cast(BinaryIO, io.BufferedReader(ResponseStream(response, client)))
    raise UnsupportedScheme(f"{name}: cannot fetch {uri}", uri=uri)


def _http_changed(headers: httpx.Headers, etag: str | None, modified: str | None) -> str | None:
    if etag and headers.get("etag") != etag:
        return f"changed since it was logged (ETag {headers.get('etag')}, logged {etag})"
    if modified and headers.get("last-modified") != modified:
        return f"changed since it was logged (Last-Modified {headers.get('last-modified')})"
    return None


def check(
    uri: str,
    *,
    name: str,
    size: int,
    etag: str | None = None,
    version_id: str | None = None,
    last_modified: str | None = None,
) -> str | None:
    """Why the source no longer matches, asked without downloading (None: it matches).

    file:// references are checked by re-hashing instead (the caller does it).
    """
    scheme = urlsplit(uri).scheme
    if scheme == "s3":
        bucket, key, endpoint, region = _s3_target(uri)
        kw = {"Bucket": bucket, "Key": key}
        if version_id:
            kw["VersionId"] = version_id
        try:
            with _s3_errors(uri, name):
                head = _s3(endpoint, region).head_object(**kw)
        except (IntegrityError, StoreUnavailable) as exc:
            return str(exc)
        if etag and head.get("ETag") != etag:
            return f"{name}: {uri} changed since it was logged (ETag differs)"
        if head["ContentLength"] != size:
            return f"{name}: {uri} is {head['ContentLength']} bytes, logged {size}"
        return None
    if scheme in ("http", "https"):
        import httpx

        try:
            response = httpx.head(uri, follow_redirects=True, timeout=30)
        except httpx.HTTPError as exc:
            return f"{name}: cannot reach {uri}: {exc}"
        if response.status_code >= 400:
            return f"{name}: {uri} answered HTTP {response.status_code}"
        problem = _http_changed(response.headers, etag, last_modified)
        length = response.headers.get("content-length")
        if problem is None and length is not None and int(length) != size:
            problem = f"is {length} bytes, logged {size}"
        return f"{name}: {uri} {problem}" if problem else None
    return None


class _S3Body(io.RawIOBase):
    """A GET's body as a raw stream whose failures are lineage errors naming the file."""

    def __init__(self, body: Any, uri: str, name: str) -> None:
        self._body = body
        self._uri = uri
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _s3_errors(self._uri, self._name):
            data: bytes = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
