"""Points in time as a user writes them: ``--as-of``, ``asOf``, ``REF@TIME``.

parse_time("2026-11-01")            # midnight UTC
parse_time("2026-11-01T08:30+01:00")
parse_time("2 days ago")            # also: 3 hours ago, 90 minutes ago, 1 week ago, now
parse_time("1793404800")            # seconds since the epoch
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from lineage.errors import InvalidInput

__all__ = ["parse_time", "shown"]

_AGO = re.compile(
    r"(\d+(?:\.\d+)?)\s*(second|sec|s|minute|min|m|hour|h|day|d|week|w)s?\s+ago", re.IGNORECASE
)
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
          "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800}  # fmt: skip


def parse_time(text: str | float, *, now: float | None = None) -> float:
    """Seconds since the epoch of an ISO date or time (UTC unless it says), ``N units ago``,
    ``now``, or a number of seconds; InvalidInput naming what is accepted otherwise."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        raise InvalidInput(f"a time must be a string, got {text!r:.80}", argument="as_of")
    words = text.strip()
    if words.lower() == "now":
        return time.time() if now is None else now
    ago = _AGO.fullmatch(words)
    if ago:
        unit = ago.group(2).lower()
        return (time.time() if now is None else now) - float(ago.group(1)) * _UNITS[unit]
    try:
        return float(words)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(words)
    except ValueError:
        raise InvalidInput(
            f"invalid time {words[:80]!r}: expected an ISO date or time (2026-11-01, "
            "2026-11-01T08:30, UTC unless it says), 'N days ago' (or seconds, minutes, "
            "hours, weeks) or seconds since the epoch",
            argument="as_of",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def shown(at: float) -> str:
    """A time as ``2026-11-01T08:30:00Z``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
