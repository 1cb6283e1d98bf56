"""The filter language on both stores: each store's answer to a generated filter is what
Python's own evaluation of it (``lineage.filters.matches``) says of every record of a generated
history, in the order ``lineage.filters.order_key`` gives, and pages with keyset cursors
cut the same list. Bad filters are refused with the column and what was expected."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage.filters import FilterError, matches, order_key, parse, parse_order
from lineage.records import RunRecord, VersionRecord
from lineage.service import find_key
from lineage.storage import open_graph
from lineage.storage.graph import GraphStore

WORDS = ["adam", "sgd", "Adam", "round3", "a-b", "ab", ""]
TAGS = ["round3", "base", "best", "x"]
KEYS = ["lr", "batch", "opt", "flag", "seed"]


def _value(rng: random.Random) -> Any:
    pick = rng.randrange(9)
    if pick == 0:
        return rng.choice([0, 1, 3, -2, 32, 2**40])
    if pick == 1:
        return rng.choice([1e-4, 3e-5, 0.5, 0.9, -0.0, 2.5e10])
    if pick == 2:
        return rng.choice([math.inf, -math.inf, math.nan])
    if pick == 3:
        return rng.choice(WORDS)
    if pick == 4:
        return rng.choice([True, False])
    if pick == 5:
        return [1, 2]
    if pick == 6:
        return {"x": rng.choice([1, 2.5, "adam", True])}
    if pick == 7:
        return None
    return rng.randrange(100) / 10


def _document(rng: random.Random) -> dict[str, Any]:
    return {key: _value(rng) for key in KEYS if rng.random() < 0.6}


def history(seed: int = 12) -> tuple[list[RunRecord], list[VersionRecord]]:
    rng = random.Random(seed)
    runs = [
        RunRecord(
            id=f"r{i:03d}", project=rng.choice(["p", "p", "q"]), name=rng.choice(WORDS[:5]),
            job_type=rng.choice(["train", "eval", None]),
            state=rng.choice(["running", "finished", "failed"]),
            config=_document(rng), summary=_document(rng),
            tags=tuple(rng.sample(TAGS, rng.randrange(3))),
            started_at=1.7e9 + rng.randrange(20) * 86400.0,
            finished_at=rng.choice([None, 1.8e9]), user=rng.choice(["ann", "bo", None]),
        )
        for i in range(60)
    ]  # fmt: skip
    versions = [
        VersionRecord(
            project=rng.choice(["p", "q"]), name=rng.choice(["model", "data"]), type="model",
            index=i, digest=f"{i:064x}", size=rng.randrange(1000), file_count=rng.randrange(5),
            metadata=_document(rng), description=rng.choice([None, "adam run"]),
            created_by=None, created_at=1.7e9 + rng.randrange(20) * 86400.0,
            state=rng.choice(["committed", "committed", "deleted"]),
            tags=tuple(rng.sample(TAGS, rng.randrange(3))),
        )
        for i in range(40)
    ]  # fmt: skip
    return runs, versions


_literals = st.sampled_from(
    ["0", "1", "3", "-2", "32", "1e-4", "3e-5", "0.5", "0.9", "2.5e10", "1099511627776",
     "adam", "'Adam'", '"a-b"', "round3", "''", "true", "false", "x", "ab"]
)  # fmt: skip
_ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "contains"])


@st.composite
def comparisons(draw: st.DrawFn, target: str) -> str:
    documents = ["config", "summary"] if target == "runs" else ["metadata"]
    attributes = (
        ["job_type", "state", "user", "name", "project", "ref"]
        if target == "runs"
        else ["name", "project", "type", "state", "version", "size", "files", "description"]
    )
    kind = draw(st.sampled_from(["doc", "doc", "attr", "tag", "time"]))
    if kind == "time":
        field = draw(st.sampled_from(["created", "finished"] if target == "runs" else ["created"]))
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        day = draw(st.integers(0, 25))
        value = draw(st.sampled_from([f"2023-11-{14 + day % 15:02d}", str(1.7e9 + day * 86400)]))
        return f"{field} {op} {value}"
    if kind == "tag":
        op = draw(st.sampled_from(["=", "!=", "contains", "in"]))
        if op == "in":
            return f"tag in ({', '.join(draw(st.lists(st.sampled_from(TAGS), min_size=1)))})"
        return f"tag {op} {draw(st.sampled_from([*TAGS, 'b']))}"
    if kind == "doc":
        field = f"{draw(st.sampled_from(documents))}.{draw(st.sampled_from(KEYS))}"
        if draw(st.booleans()) and draw(st.booleans()):
            field += ".x"
    else:
        field = draw(st.sampled_from(attributes))
    if draw(st.integers(0, 6)) == 0:
        values = draw(st.lists(_literals, min_size=1, max_size=3))
        kinds = {_literal_kind(v) for v in values}
        if len(kinds) == 1:
            return f"{field} in ({', '.join(values)})"
    op = draw(_ops)
    literal = draw(_literals)
    if _literal_kind(literal) == "bool" and op not in ("=", "!="):
        op = "="
    if op == "contains" and _literal_kind(literal) != "string":
        literal = "ad"
    return f"{field} {op} {literal}"


def _literal_kind(text: str) -> str:
    if text in ("true", "false"):
        return "bool"
    try:
        float(text)
    except ValueError:
        return "string"
    return "number"


@st.composite
def filters(draw: st.DrawFn, target: str, depth: int = 0) -> str:
    shape = draw(st.integers(0, 5 if depth < 2 else 0))
    if shape <= 1:
        return draw(comparisons(target))
    if shape == 2:
        return f"not {draw(filters(target, depth + 1))}"
    if shape == 3:
        return f"({draw(filters(target, depth + 1))})"
    joint = draw(st.sampled_from(["and", "or", "AND"]))
    return f"({draw(filters(target, depth + 1))} {joint} {draw(filters(target, depth + 1))})"


ORDERS = {
    "runs": ["created", "-created", "summary.lr", "-config.opt", "job_type", "finished desc"],
    "versions": ["created", "-size", "metadata.batch", "name", "-metadata.opt"],
}


@pytest.fixture
def loaded(backend) -> Iterator[tuple[GraphStore, list[RunRecord], list[VersionRecord]]]:  # type: ignore[no-untyped-def]
    store = open_graph(backend.store)
    runs, versions = history()
    store.import_records(runs=runs, versions=versions)
    yield store, runs, versions
    store.close()


def _sorted(records: list[Any], order_by: str, target: str) -> list[str]:
    order = parse_order(order_by, target)  # type: ignore[arg-type]
    keyed = sorted(records, key=lambda r: (*order_key(order, r), r.id), reverse=order.descending)
    return [r.id for r in keyed]


@pytest.mark.neo4j
def test_every_filter_answers_as_python_evaluates_it(loaded) -> None:  # type: ignore[no-untyped-def]
    store, runs, versions = loaded
    records = {"runs": runs, "versions": versions}
    seen_matches = []
    # Neo4j plans each new query text afresh (~0.3 s here): fewer examples there
    sqlite = type(store).__name__.startswith("SQLite")

    @settings(
        max_examples=150 if sqlite else 25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        st.sampled_from(["runs", "versions"]).flatmap(lambda t: st.tuples(st.just(t), filters(t))),
        st.data(),
    )
    def check(case: tuple[str, str], data: st.DataObject) -> None:
        target, text = case
        where = parse(text, target)  # type: ignore[arg-type]
        order_by = data.draw(st.sampled_from(ORDERS[target]))
        project = data.draw(st.sampled_from([None, "p"]))
        order = parse_order(order_by, target)  # type: ignore[arg-type]
        want = [r for r in records[target] if matches(where, r) and project in (None, r.project)]
        find = store.find_runs if target == "runs" else store.find_versions
        got = find(project, where, order)  # type: ignore[operator]
        assert [r.id for r in got] == _sorted(want, order_by, target), text
        by_id = {r.id: r for r in want}
        assert repr(got) == repr([by_id[r.id] for r in got])  # whole records (NaN != NaN)
        seen_matches.append(len(want))
        # pages, each after the key of the previous page's last, cut the same list
        paged: list[str] = []
        after = None
        size = 7 if sqlite else 15
        while True:
            page = find(project, where, order, limit=size, after=after)  # type: ignore[operator]
            paged += [r.id for r in page]
            if len(page) < size:
                break
            after = find_key(order_by, page[-1])
        assert paged == [r.id for r in got], text
        # the count the store makes (GraphQL totalCount) without reading the records
        count = store.count_found_runs if target == "runs" else store.count_found_versions
        assert count(project, where) == len(want), text
        # a first page both ways: walking the order's index, or from the filter's own
        for broad in (0, 1 << 40):
            store.broad = broad
            first = find(project, where, order, limit=size)  # type: ignore[operator]
            assert [r.id for r in first] == [r.id for r in got][:size], (text, broad)
            if first:
                key = find_key(order_by, first[-1])
                more = find(project, where, order, limit=size, after=key)  # type: ignore[operator]
                assert [r.id for r in more] == [r.id for r in got][size : 2 * size], text
        store.broad = type(store).broad

    check()
    # the generated filters were not all trivially empty or full
    assert sum(1 for n in seen_matches if n > 0) >= len(seen_matches) // 4
    assert any(0 < n < 30 for n in seen_matches)


@pytest.mark.neo4j
def test_every_operator_on_both_stores(loaded) -> None:  # type: ignore[no-untyped-def]
    """One hand-written filter per operator, with the answer written out."""
    store, _, _ = loaded
    store.import_records(
        runs=[
            RunRecord(id="z1", project="z", name="a", config={"lr": 1e-5, "opt": "adam",
                      "flag": True}, summary={"accuracy": 0.95, "loss": math.nan},
                      tags=("round3",), started_at=1.8e9, user="ann", job_type="train"),
            RunRecord(id="z2", project="z", name="b", config={"lr": 1e-3, "opt": "sgd",
                      "flag": False}, summary={"accuracy": 0.5, "loss": math.inf},
                      tags=("base",), started_at=1.8e9 + 1, user="bo", job_type="eval"),
            RunRecord(id="z3", project="z", name="c", config={"lr": "high", "opt": 3},
                      started_at=1.8e9 + 2, state="finished"),
        ]
    )  # fmt: skip
    cases = {
        "config.lr < 1e-4 and summary.accuracy >= 0.9 and tag = round3": ["z1"],
        "config.lr = 0.001": ["z2"],
        "config.lr != 0.001": ["z1"],  # z3's lr is a string: no number to differ
        "config.lr <= 0.001": ["z1", "z2"],
        "config.lr > 1e-5": ["z2"],
        "config.lr = high": ["z3"],
        "config.opt contains ad": ["z1"],
        "config.opt in (adam, sgd)": ["z1", "z2"],
        "config.flag = true": ["z1"],
        "config.flag != true": ["z2"],
        "summary.loss > 1e300": ["z2"],  # infinity is a number; NaN is none
        "not summary.loss > 0": ["z1", "z3"],
        "tag != round3": ["z2", "z3"],
        "user = ann or job_type = eval": ["z1", "z2"],
        "state = finished and created > 2027-01-15T08:00": ["z3"],
        "not (tag in (round3, base))": ["z3"],
    }
    for text, want in cases.items():
        found = store.find_runs("z", parse(text, "runs"), parse_order("created", "runs"))
        assert [r.id for r in found] == want, text
    order = parse_order("-summary.accuracy", "runs")
    # z3 has no accuracy: last, descending as ascending (a first page is the top of the index)
    assert [r.id for r in store.find_runs("z", None, order)] == ["z1", "z2", "z3"]
    ascending = parse_order("summary.accuracy", "runs")
    assert [r.id for r in store.find_runs("z", None, ascending)] == ["z2", "z1", "z3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config.lr < ", "filter: at 13: expected a value after '<', not the end"),
        ("config.lr < and x = 1", "filter: at 13: expected a value after '<', not 'and'"),
        ("config. < 3", "filter: at 1: expected a key after 'config.'"),
        ("colour = red", "filter: at 1: unknown field 'colour' for runs"),
        ("config.lr ~ 3", "filter: at 11: expected an operator (= != < <= > >= contains in) after"),
        ("state = !", "filter: at 9: unexpected '!'"),
        ("(state = failed", "filter: at 16: expected ')' to close the '(' at 1"),
        ("state = failed)", "filter: at 15: expected 'and', 'or' or the end, not ')'"),
        ("state failed", "filter: at 7: expected an operator (= != < <= > >= contains in)"),
        ("created > yesterday", "filter: at 11: expected a date or time"),
        ("tag < x", "filter: at 5: 'tag' takes = != contains in"),
        ("config.flag < true", "filter: at 13: true and false take = and !="),
        ("name = 'open", "filter: at 8: unterminated string"),
        ("state in (a, 3)", "filter: at 10: the values after 'in' must be of one kind"),
        ("", "filter: at 1: expected a comparison (the filter is empty)"),
    ],
)
def test_bad_filters_say_where_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse(text, "runs")
    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.neo4j
def test_a_neo4j_store_from_before_the_flattened_properties_is_filled_in(neo4j_server) -> None:  # type: ignore[no-untyped-def]
    """Records written without the flattened properties (an older lineage) get them when
    the store is next opened, and filters see them."""
    import neo4j

    neo4j_server.wipe()
    store = open_graph(neo4j_server.uri)
    store.import_records(runs=[RunRecord(id="old1", project="p", name="n", config={"lr": 1e-5})])
    store.close()
    auth = (neo4j_server.user, neo4j_server.password) if neo4j_server.user else None
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=auth) as driver:
        driver.execute_query("MATCH (r:Run) REMOVE r.`config.lr`")
        driver.execute_query("MATCH (c:Counter {name: 'flattened'}) DELETE c")
    where, order = parse("config.lr < 1e-4", "runs"), parse_order("created", "runs")
    reopened = open_graph(neo4j_server.uri)
    assert [r.id for r in reopened.find_runs("p", where, order)] == ["old1"]
    reopened.close()
