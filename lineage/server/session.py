"""Signing a browser in: a token kept in a cookie, for a server that refuses anonymous reads.

A browser sends no ``Authorization`` header, so on a ``--require-token`` server (or off
loopback) the dashboard's sign-in page takes a token once and keeps it in the ``lineage_token``
cookie: ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page makes the
browser send it), ``Path=/``, ``Secure`` over HTTPS. The rules for honouring it:

- only where a route asks for it (the dashboard's pages, GraphQL); blob transfer and every
  other API route read the ``Authorization`` header alone;
- only from the same origin: a request whose ``Sec-Fetch-Site`` or ``Origin`` names another
  site is treated as if it had no cookie, and a POST must name its origin (``Origin`` or
  ``Sec-Fetch-Site: same-origin``), as every browser does;
- at most as a reader: a write token in a cookie reads; writes still need the token in the
  request (the ``Authorization`` header, or the notes form's token field);
- an ``Authorization`` header, when there is one, wins.

The token's value is never logged nor written into a page: only its id (``lin_<id>_...``).
"""

from __future__ import annotations

from collections.abc import Mapping

from lineage.server.auth import Gate, Principal

__all__ = ["COOKIE", "MAX_AGE", "cookie_principal", "same_origin"]

COOKIE = "lineage_token"
MAX_AGE = 30 * 24 * 3600  # a sign-in lasts 30 days, or until sign-out or revocation


def same_origin(headers: Mapping[str, str], scheme: str, *, strict: bool) -> bool:
    """Whether a request comes from a page of this server (or, unless ``strict``, from a
    browser's address bar or a client that names no origin at all)."""
    site = headers.get("sec-fetch-site")
    origin = headers.get("origin")
    host = headers.get("host")
    if site is not None and site not in ("same-origin", "none"):
        return False
    if origin is not None and origin != "null":
        return host is not None and origin.lower() == f"{scheme}://{host}".lower()
    if origin == "null":
        return False
    if strict:  # a POST: a browser names its origin; one that does not is not trusted
        return site == "same-origin"
    return True


def cookie_principal(
    gate: Gate,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    scheme: str,
    method: str,
) -> Principal | None:
    """The reader a same-origin request's sign-in cookie names; None when it has none
    (or sends it from elsewhere), and the caller goes by its headers alone. A cookie that
    holds an unknown, revoked or malformed token is a principal with no scope."""
    secret = cookies.get(COOKIE)
    if not secret or "authorization" in headers:
        return None
    if not same_origin(headers, scheme, strict=method not in ("GET", "HEAD")):
        return None
    found = gate.identify({"authorization": f"Bearer {secret}"}, None, None)
    if found.scope is None:
        return Principal(
            scope=None,
            reason="your sign-in token is unknown or revoked: sign in again with a valid token",
        )
    return Principal(scope="read", token=found.token)
