"""One retry policy for every request lineage sends to its server.

:func:`send` makes a request (a callable, called again for each attempt: a body is rebuilt
from its source each time) until the answer is not transient, under a :class:`Retry` policy:

- what is retried: an ``httpx.TransportError`` (refused, reset, timed out) and the statuses in
  ``Retry.statuses`` (408, 425, 429, 500, 502, 503, 504: the server is restarting, overloaded
  or behind a proxy that lost it); any other answer, success or refusal, is returned at once;
- when: after ``first_delay`` seconds, doubling up to ``max_delay``, each wait lengthened by
  up to ``jitter`` of itself so that many clients thrown off by one restart do not come back
  in step; a ``Retry-After`` of a 429 or 503 is honoured up to ``max_delay``;
- for how long: ``deadline`` seconds from the first attempt (the last wait is cut short so
  that the last attempt comes then), and at most ``attempts`` attempts when that is set;
- then: :class:`lineage.errors.StoreUnavailable` naming the URL, what happened last, how long
  it tried and the variable that sets it. For ``deadline`` seconds after that, a request to
  the same URL is tried once, not retried: a script whose server is gone for good waits out
  one budget, not one for each call left (marking its run failed, at exit).

The budget is ``LINEAGE_RETRY_SECONDS`` (:func:`configured`, read when a client is made),
30 s by default: a server restart, even a slow one behind Neo4j on a loaded machine, and not
so long that a mistyped URL keeps a user waiting minutes. ``0`` means one attempt, no retry.
Retried requests must be safe to repeat: blob uploads are (content-addressed), and every
GraphQL mutation the client sends is made so (runs carry an id chosen by the client).
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from lineage.errors import InvalidInput, StoreUnavailable

__all__ = ["DEFAULT", "ENV", "Retry", "configured", "send"]

logger = logging.getLogger(__name__)

ENV = "LINEAGE_RETRY_SECONDS"


@dataclass(frozen=True, kw_only=True)
class Retry:
    """How often, how soon and for how long a transient failure is tried again."""

    deadline: float = 30.0
    attempts: int | None = None
    first_delay: float = 0.2
    max_delay: float = 10.0
    jitter: float = 0.25
    statuses: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if not (math.isfinite(self.deadline) and self.deadline >= 0):
            raise ValueError(
                f"deadline must be a number of seconds, 0 or more, got {self.deadline}"
            )

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


def configured(environ: Mapping[str, str] = os.environ) -> Retry:
    """The policy of a client made now: :data:`DEFAULT`, retrying for ``LINEAGE_RETRY_SECONDS``
    seconds when that is set. A value that is not a number of seconds, 0 or more, is refused
    (InvalidInput naming the variable).

    >>> configured({"LINEAGE_RETRY_SECONDS": "120"}).deadline
    120.0
    """
    value = environ.get(ENV, "").strip()
    if not value:
        return DEFAULT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InvalidInput(
            f"{ENV} must be a number of seconds, 0 or more (how long a client keeps retrying "
            f"a lineage server that does not answer; 0: no retry), not {value!r}"
        )
    return Retry(deadline=seconds)


# URL -> when a request to it was last given up on (the clock of send): requests to it
# within the policy's deadline after that are tried once
_given_up: dict[str, float] = {}
_given_up_lock = threading.Lock()


def send(
    request: Callable[[], httpx.Response],
    *,
    url: str,
    what: str = "request",
    policy: Retry = DEFAULT,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> httpx.Response:
    """The first answer of ``request()`` that is not transient, retrying under ``policy``.

    ``on_retry`` hears why each retry happens (before its wait). A response that is retried
    is closed. Raises StoreUnavailable, naming ``url``, when the policy gives up, or after
    one attempt when a request to ``url`` was given up on less than ``policy.deadline``
    seconds ago. ``sleep`` and ``clock`` wait and tell the time (tests pass their own).

    >>> send(lambda: client.post("/graphql", json=body), url=client.base_url)
    """
    started = clock()
    with _given_up_lock:
        since = started - _given_up.get(url, -math.inf)
    once = 0 <= since < policy.deadline  # given up on a moment ago: no second budget now
    attempt = 0
    while True:
        response: httpx.Response | None = None
        try:
            response = request()
        except httpx.TransportError as exc:
            reason = f"unreachable: {exc or type(exc).__name__}"
        else:
            if response.status_code not in policy.statuses:
                if once:
                    with _given_up_lock:
                        _given_up.pop(url, None)
                return response
            reason = f"answered HTTP {response.status_code}"
            response.close()
        attempt += 1
        elapsed = clock() - started
        budget = f"{ENV} sets how long to keep trying: {policy.deadline:g}s"
        if once:
            raise StoreUnavailable(
                f"lineage server {url} {reason} ({what}; not retried: it was given up on "
                f"{since:.1f}s ago; {budget})",
                url=url,
            )
        if elapsed >= policy.deadline or attempt == policy.attempts:
            with _given_up_lock:
                _given_up[url] = clock()
            tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
            raise StoreUnavailable(
                f"lineage server {url} {reason} ({what}, {tries} in {elapsed:.1f}s; {budget})",
                url=url,
            )
        wait = min(policy.delay(attempt - 1, response), policy.deadline - elapsed)
        if attempt == 1:  # said once a call (a warning: the CLI and a bare script show it)
            logger.warning(
                "lineage server %s %s (%s); retrying for up to %gs (%s)",
                url,
                reason,
                what,
                policy.deadline,
                ENV,
            )
        else:
            logger.info("%s to %s %s; retrying in %.1fs", what, url, reason, wait)
        if on_retry is not None:
            on_retry(reason)
        sleep(wait)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from a lineage server, and the backoff still applies
