"""API tokens for the lineage server, and who may do what with or without one.

A token reads ``lin_<id>_<64 hex characters>``. The graph store keeps only the BLAKE3 digest
of the whole string (a :class:`~lineage.records.TokenRecord`), so the token is shown once, at
creation, and a copy of the database yields nothing usable. Scopes: ``read`` (queries, blob
downloads, ``/blobs/missing``) and ``write`` (all of that, plus mutations and uploads).

The rule a server applies to each request (:class:`Gate`):

- ``Authorization: Bearer <token>``: the token's scope; an unknown, revoked or malformed
  token is refused (UNAUTHENTICATED), whatever the request;
- no token: an anonymous reader, when the server was not told to require tokens and the
  request comes from loopback (the client address *and* the ``Host`` it names, so a web page
  that rebinds its DNS name to 127.0.0.1 reads nothing); otherwise nobody;
- writes always need a write token.

``lineage server`` requires tokens whenever it binds anything but a loopback address.

>>> secret = create_token(service, "write", "CI uploader")   # print it once; it is not kept
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import string
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lineage.errors import Forbidden, InvalidInput, Unauthenticated
from lineage.hashing import hash_bytes
from lineage.names import check_text
from lineage.records import TokenRecord
from lineage.service import Service
from lineage.storage.graph import GraphStore

__all__ = [
    "ANONYMOUS_READ",
    "SCOPES",
    "Gate",
    "Principal",
    "bearer",
    "create_token",
    "is_loopback",
    "refused_writers",
    "revoke_token",
    "token_id",
]

logger = logging.getLogger(__name__)

SCOPES = ("read", "write")
MAX_DESCRIPTION = 1024
_ID_ALPHABET = string.ascii_lowercase + string.digits
_TOKEN = re.compile(r"lin_([a-z0-9]{8})_[0-9a-f]{64}")
_CREATE_HINT = "create one with `lineage token create --scope read|write`"


def _graph(target: Service | GraphStore) -> GraphStore:
    return target.graph if isinstance(target, Service) else target


def create_token(target: Service | GraphStore, scope: str, description: str | None = None) -> str:
    """Create a token with ``scope`` (``read`` or ``write``) and return its secret, once."""
    if scope not in SCOPES:
        raise InvalidInput(f"token scope must be read or write, not {scope!r}", scope=scope)
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION
    ):
        raise InvalidInput(
            f"token description must be a string of at most {MAX_DESCRIPTION} characters"
        )
    check_text(description, "token description")
    ident = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    secret = f"lin_{ident}_{secrets.token_hex(32)}"
    _graph(target).create_token(
        TokenRecord(
            id=ident,
            digest=hash_bytes(secret.encode()),
            scope=scope,
            created_at=time.time(),
            description=description,
        )
    )
    logger.info("created %s token %s", scope, ident)
    return secret


def revoke_token(target: Service | GraphStore, ident: str) -> bool:
    """Revoke a token by its id (the 8 characters after ``lin_``); False if there is none."""
    return _graph(target).revoke_token(ident)


def token_id(secret: str) -> str:
    """The id part of a token's secret, safe to show and log."""
    match = _TOKEN.fullmatch(secret)
    if match is None:
        raise Unauthenticated("malformed token: expected lin_<id>_<64 hex characters>")
    return match.group(1)


def bearer(header: str) -> str | None:
    """The token secret of an ``Authorization: Bearer ...`` header, or None when the header
    is not one (another scheme, or not a lineage token's shape)."""
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and _TOKEN.fullmatch(secret) else None


def refused_writers(
    graph: GraphStore, tokens: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Unauthenticated]:
    """Of write tokens ``(digest, id)`` found valid before, those the store no longer holds as
    write tokens (revoked since), each with its refusal: one lookup a token."""
    refused = {}
    for digest, ident in set(tokens):
        record = graph.find_token(digest)
        if record is None or record.revoked or record.scope != "write":
            refused[digest, ident] = Unauthenticated(f"token {ident} is unknown or revoked")
    return refused


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or ``localhost``, with or without brackets) is loopback."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname(host_header: str | None) -> str | None:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    if not host_header:
        return None
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    name, colon, port = host_header.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else host_header


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who a request acts as: a token's scope, an anonymous reader, or nobody (``reason``)."""

    scope: str | None
    token: str | None = None
    reason: str = ""

    @property
    def actor(self) -> str | None:
        """What the event log records as the actor of a change."""
        return None if self.token is None else f"token:{self.token}"

    def require(self, scope: str) -> None:
        """Raise Unauthenticated or Forbidden unless this principal may act with ``scope``."""
        if self.scope == "write" or (scope == "read" and self.scope is not None):
            return
        if self.scope is None:
            raise Unauthenticated(self.reason)
        if self.token is None:
            raise Unauthenticated(
                "writes need a write token: create one with `lineage token create --scope write`"
            )
        raise Forbidden(
            f"token {self.token} has scope {self.scope}; this needs a {scope} token",
            token=self.token,
        )


ANONYMOUS_READ = Principal(scope="read")


class Gate:
    """Turns a request's headers and addresses into a :class:`Principal`."""

    def __init__(self, graph: GraphStore, *, require_token: bool = False) -> None:
        self.graph = graph
        self.require_token = require_token

    def identify(
        self, headers: Mapping[str, str], client_host: str | None, host_header: str | None
    ) -> Principal:
        """Check the bearer token, if any, against the store (one lookup)."""
        header = headers.get("authorization")
        if header is None:
            if (
                not self.require_token
                and is_loopback(client_host)
                and is_loopback(_hostname(host_header))
            ):
                return ANONYMOUS_READ
            why = "this server requires a token" if self.require_token else "off loopback"
            return Principal(
                scope=None,
                reason=f"authentication required ({why}): send 'Authorization: Bearer "
                f"<token>'; {_CREATE_HINT}",
            )
        secret = bearer(header)
        if secret is None:
            return Principal(
                scope=None,
                reason="malformed Authorization header: expected 'Bearer lin_<id>_<64 hex>'",
            )
        record = self.graph.find_token(hash_bytes(secret.encode()))
        if record is None or record.revoked:
            return Principal(scope=None, reason=f"token {token_id(secret)} is unknown or revoked")
        return Principal(scope=record.scope, token=record.id)
