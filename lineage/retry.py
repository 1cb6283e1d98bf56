"""One retry policy for every request lineage sends to its server.

:func:`send` makes a request (a callable, called again for each attempt: a body is rebuilt
from its source each time) until the answer is not transient, under a :class:`Retry` policy:

- what is retried: an ``httpx.TransportError`` (refused, reset, timed out) and the statuses in
  ``Retry.statuses`` (408, 425, 429, 500, 502, 503, 504: the server is restarting, overloaded
  or behind a proxy that lost it); any other answer, success or refusal, is returned at once;
- when: after ``first_delay`` seconds, doubling up to ``max_delay``, each wait lengthened by
  up to ``jitter`` of itself so that many clients thrown off by one restart do not come back
  in step; a ``Retry-After`` of a 429 or 503 is honoured up to ``max_delay``;
- for how long: at most ``attempts`` attempts, and no new attempt once ``deadline`` seconds
  have passed since the first;
- then: :class:`lineage.errors.StoreUnavailable` naming the URL and what happened last.

The defaults give six attempts and at least 6.2 s of waiting: what a server restart takes.
Retried requests must be safe to repeat: blob uploads are (content-addressed), and every
GraphQL mutation the client sends is made so (runs carry an id chosen by the client).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from lineage.errors import StoreUnavailable

__all__ = ["DEFAULT", "Retry", "send"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Retry:
    """How often, how soon and for how long a transient failure is tried again."""

    attempts: int = 6
    first_delay: float = 0.2
    max_delay: float = 10.0
    jitter: float = 0.25
    deadline: float = 300.0
    statuses: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")

    def delay(self, retry: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        base = min(self.first_delay * 2**retry, self.max_delay)
        if response is not None and response.status_code in (429, 503):
            asked = _retry_after(response)
            if asked is not None:
                base = max(base, min(asked, self.max_delay))
        wait: float = base + random.uniform(0, self.jitter * base)
        return wait


DEFAULT = Retry()


def send(
    request: Callable[[], httpx.Response],
    *,
    url: str,
    what: str = "request",
    policy: Retry = DEFAULT,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """The first answer of ``request()`` that is not transient, retrying under ``policy``.

    ``on_retry`` hears why each retry happens (before its wait). A response that is retried
    is closed. Raises StoreUnavailable, naming ``url``, when the policy gives up.

    >>> send(lambda: client.post("/graphql", json=body), url=client.base_url)
    """
    started = time.monotonic()
    for attempt in range(policy.attempts):
        response: httpx.Response | None = None
        try:
            response = request()
        except httpx.TransportError as exc:
            reason = f"unreachable: {exc or type(exc).__name__}"
        else:
            if response.status_code not in policy.statuses:
                return response
            reason = f"answered HTTP {response.status_code}"
            response.close()
        wait = policy.delay(attempt, response)
        last = attempt == policy.attempts - 1
        if last or time.monotonic() - started + wait > policy.deadline:
            tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
            raise StoreUnavailable(
                f"lineage server {url} {reason} ({what}, {tries} in "
                f"{time.monotonic() - started:.1f}s)",
                url=url,
            )
        logger.info("%s to %s %s; retrying in %.1fs", what, url, reason, wait)
        if on_retry is not None:
            on_retry(reason)
        sleep(wait)
    raise AssertionError("unreachable")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from a lineage server, and the backoff still applies
