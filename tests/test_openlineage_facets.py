"""``names.check_json``'s quick pass over JSON as ``json.loads`` makes it (what OpenLineage
facets are) gives what the full check gives, value for value and refusal for refusal, at and
past each limit."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest

from lineage import names
from lineage.errors import LineageError
from lineage.names import MAX_METADATA_BYTES, MAX_METADATA_DEPTH, check_json


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


def full(value: dict[str, Any], what: str) -> dict[str, Any]:
    """check_json without its quick pass: a mapping that is not a dict takes the full check."""
    return check_json(MappingProxyType(value), what)


def outcome(check: Any, value: dict[str, Any]) -> tuple[str, str]:
    try:
        return "stored", json.dumps(check(value, "dataset facets"))
    except LineageError as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_quick_check_agrees_with_check_json(case: str) -> None:
    value = CASES[case]
    assert outcome(check_json, value) == outcome(full, value)


def test_the_cases_cover_both_outcomes() -> None:
    outcomes = {outcome(check_json, value)[0] for value in CASES.values()}
    assert "stored" in outcomes and len(outcomes) >= 2
    # and both passes: the quick one answers some cases, leaves others to the full check
    quick = {case: names._quick_json(value) is not None for case, value in CASES.items()}
    assert quick["plain"] and quick["at the depth limit"] and not quick["non-ascii"]
