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
(``AWS_ENDPOINT_URL_S3`` for an S3-compatible server).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote, unquote, urlsplit

import httpx

from lineage.errors import (
    DigestMismatch,
    IntegrityError,
    InvalidPath,
    StoreUnavailable,
    UnsupportedScheme,
)
from lineage.storage.http import ResponseStream

__all__ = ["SCHEMES", "Located", "check", "locate", "open_reference"]

SCHEMES = ("file", "s3", "http", "https")


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
    from lineage.artifact import walk

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


def _s3() -> Any:
    import boto3
    import botocore.config

    config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 5})
    return boto3.session.Session().client("s3", config=config)


def _bucket_key(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.netloc, unquote(parts.path.lstrip("/"))


def _s3_call(uri: str, call: Any, **kw: Any) -> Any:
    import botocore.exceptions

    try:
        return call(**kw)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket"):
            raise IntegrityError(f"{uri} no longer exists ({code})", uri=uri) from None
        if code in ("412", "PreconditionFailed"):
            raise DigestMismatch(
                f"{uri} changed since it was logged (ETag differs)", uri=uri
            ) from None
        raise StoreUnavailable(f"S3 refused {uri}: {code or exc}", uri=uri) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise StoreUnavailable(f"S3 unreachable for {uri}: {exc}", uri=uri) from None


def _locate_s3(uri: str, max_objects: int) -> list[Located]:
    client = _s3()
    bucket, key = _bucket_key(uri)
    if key and not key.endswith("/"):
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception:  # noqa: BLE001 - not an object: try it as a prefix
            head = None
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
    found: list[dict[str, Any]] = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in _s3_call(uri, lambda: iter(pages)):
        for item in page.get("Contents", []):
            if len(found) >= max_objects:
                raise InvalidPath(
                    f"reference {uri} holds more than max_objects={max_objects} objects",
                    path=uri,
                )
            found.append(item)
    if not found:
        raise InvalidPath(f"reference {uri} names no object and no prefix with objects", path=uri)
    located = []
    for item in found:
        object_key = item["Key"]
        head = _s3_call(uri, client.head_object, Bucket=bucket, Key=object_key)
        located.append(
            Located(
                relative=object_key[len(prefix) :],
                uri=f"s3://{bucket}/{quote(object_key)}",
                size=item["Size"],
                etag=head.get("ETag"),
                version_id=head.get("VersionId"),
            )
        )
    return located


def _locate_http(uri: str) -> Located:
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
        bucket, key = _bucket_key(uri)
        kw: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version_id:
            kw["VersionId"] = version_id
        elif etag:
            kw["IfMatch"] = etag
        try:
            response = _s3_call(uri, _s3().get_object, **kw)
        except DigestMismatch:
            raise DigestMismatch(f"{name}: {uri} changed since it was logged", path=name) from None
        if etag and response.get("ETag") != etag:
            raise DigestMismatch(f"{name}: {uri} changed since it was logged", path=name)
        return cast(BinaryIO, response["Body"])
    if scheme in ("http", "https"):
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
        bucket, key = _bucket_key(uri)
        kw = {"Bucket": bucket, "Key": key}
        if version_id:
            kw["VersionId"] = version_id
        try:
            head = _s3_call(uri, _s3().head_object, **kw)
        except IntegrityError as exc:
            return f"{name}: {exc}"
        if etag and head.get("ETag") != etag:
            return f"{name}: {uri} changed since it was logged (ETag differs)"
        if head["ContentLength"] != size:
            return f"{name}: {uri} is {head['ContentLength']} bytes, logged {size}"
        return None
    if scheme in ("http", "https"):
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
