"""The OpenLineage mapping's quick check of facets (``ingest._check_json``) gives what
``names.check_json`` gives, value for value and refusal for refusal, at and past each limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lineage.errors import LineageError
from lineage.names import MAX_METADATA_BYTES, MAX_METADATA_DEPTH, check_json
from lineage.openlineage.ingest import _check_json


def nested(depth: int, leaf: Any) -> dict[str, Any]:
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[no-any-return]


CASES = {
    "plain": {"z": [1, 2.5, None, True, "x"], "a": {"c": 1, "b": 2}},
    "non-ascii": {"name": "naïve 🕷", "k": ["é"]},
    "lone surrogate": {"k": ["x\ud800"]},
    "lone surrogate key": {"\udc80": 1},
    "nan and inf": {"n": float("nan"), "i": float("inf"), "m": float("-inf")},
    "at the size limit": {"s": "x" * (MAX_METADATA_BYTES - 8)},
    "over the size limit": {"s": "x" * MAX_METADATA_BYTES},
    "at the depth limit": nested(MAX_METADATA_DEPTH, 1),
    "past the depth limit": nested(MAX_METADATA_DEPTH + 1, 1),
    "past the depth limit, empty": nested(MAX_METADATA_DEPTH + 1, {}),
    "a tuple": {"t": (1, 2)},
}


def outcome(check: Any, value: dict[str, Any]) -> tuple[str, str]:
    try:
        return "stored", json.dumps(check(value, "dataset facets"))
    except LineageError as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_quick_check_agrees_with_check_json(case: str) -> None:
    value = CASES[case]
    assert outcome(_check_json, value) == outcome(check_json, value)


def test_the_cases_cover_both_outcomes() -> None:
    outcomes = {outcome(check_json, value)[0] for value in CASES.values()}
    assert "stored" in outcomes and len(outcomes) >= 2
