"""The opaque cursors of the GraphQL connections: base64 of the JSON sort key of an item.

The server makes and reads them (:mod:`lineage.server.graphql.pagination`); a client that knows an
item's sort key (:mod:`lineage.remote`) can make the cursor that pages after it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from lineage.errors import InvalidInput

__all__ = ["cursor", "cursor_key"]


def cursor(key: Sequence[Any]) -> str:
    """The cursor of an item whose sort key is ``key``."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def cursor_key(value: str) -> list[Any]:
    """The sort key a cursor holds; InvalidInput when it holds none."""
    try:
        key = json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        key = None
    if not isinstance(key, list) or not all(_fits(part) for part in key):
        raise InvalidInput(
            f"invalid cursor (after: {value[:40]!r}): pass an endCursor from a page",
            argument="after",
        )
    return key


def _fits(part: object) -> bool:
    # a store compares sort keys as 64-bit integers: a larger one was never made by a page
    return not isinstance(part, int) or -(2**63) <= part < 2**63
