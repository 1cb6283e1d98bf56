"""Bug 17: what ML code logs (numpy and torch scalars, NaN, +/-inf) is accepted by run.log,
config and metadata, and reads back exactly from either store."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lineage
from lineage.errors import InvalidMetadata
from lineage.names import MAX_METADATA_DEPTH, check_json


class Scalar:
    """A torch-like scalar: not a number itself, ``.item()`` gives one."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def item(self) -> Any:
        return self.value


class Tensor:
    """A torch-like tensor of several values: ``.item()`` refuses."""

    def item(self) -> Any:
        raise RuntimeError("a Tensor with 3 elements cannot be converted to Scalar")


def same(got: object, want: object) -> bool:
    """Equal, NaN included, and the same Python types all the way down."""
    return json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True) and _types(
        got
    ) == _types(want)


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value)


LOGGED = {
    "loss": float("nan"),
    "best": float("inf"),
    "worst": -math.inf,
    "f32": np.float32(0.1),
    "f64": np.float64(0.25),
    "i64": np.int64(2**40),
    "flag": np.bool_(True),
    "name": np.str_("adam"),
    "one": np.array([3.5]),
    "zero_d": np.array(7),
    "nan32": np.float32("nan"),
    "torch_like": Scalar(1.25),
    "curve": (np.float16(0.5), float("nan"), Scalar(2)),
}
PLAIN = {
    "best": float("inf"),
    "curve": [0.5, float("nan"), 2],
    "f32": 0.10000000149011612,
    "f64": 0.25,
    "flag": True,
    "i64": 2**40,
    "loss": float("nan"),
    "name": "adam",
    "nan32": float("nan"),
    "one": 3.5,
    "torch_like": 1.25,
    "worst": -math.inf,
    "zero_d": 7,
}


def test_check_json_makes_plain_values() -> None:
    got = check_json(LOGGED, "summary")
    assert same(got, PLAIN)
    assert list(got) == sorted(PLAIN)  # keys sorted, as before
    assert math.isnan(got["loss"]) and got["worst"] == -math.inf


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (np.zeros(3), "not one value"),
        (Tensor(), "not one value"),
        (Scalar(object()), "not JSON-serialisable"),
        (Scalar(1j), "not JSON-serialisable"),
        (np.datetime64("2020-01-01"), "not JSON-serialisable"),
    ],
)
def test_what_is_not_one_plain_value_is_refused(value: object, why: str) -> None:
    with pytest.raises(lineage.InvalidMetadata, match=why):
        check_json({"x": value})


@pytest.fixture
def env(backend, workdir, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    return backend


def _by_the_full_check(value: object) -> object:
    """check_json's answer when its quick pass is left out: the full pass's."""
    try:
        return ("kept", json.dumps(check_json(_Mapping(value), "metadata")))
    except InvalidMetadata as error:
        return ("refused", str(error))


class _Mapping(dict):  # type: ignore[type-arg]
    """A dict that is not exactly a dict: check_json takes its full pass."""


def test_the_quick_pass_answers_as_the_full_one() -> None:
    """Plain JSON takes a quick pass (exact types, one encoding): the same values kept, in
    the same key order, the same refusals, around the depth limit (a leaf one level too deep
    is refused, as a dict is) and on random documents with odd keys and values."""
    import random

    def chain(depth: int, leaf: object) -> object:
        for _ in range(depth):
            leaf = {"k": leaf}
        return leaf

    rnd = random.Random(15)

    def document(depth: int) -> object:
        draw = rnd.random()
        if depth > MAX_METADATA_DEPTH + 2 or draw < 0.4:
            return rnd.choice([1, 2.5, "x", True, None, "é", 10**30, (1, 2), -0.0, ""])
        if draw < 0.7:
            keys = [rnd.choice("gfedcba") if rnd.random() > 0.05 else 7 for _ in range(3)]
            return {key: document(depth + 1) for key in keys[: rnd.randint(0, 3)]}
        return [document(depth + 1) for _ in range(rnd.randint(0, 3))]

    near = [
        chain(depth, leaf)
        for depth in range(MAX_METADATA_DEPTH - 2, MAX_METADATA_DEPTH + 3)
        for leaf in (1, "x", None, {}, [], [1], {"a": 1})
    ]
    cases = [*near, *({"top": document(0)} for _ in range(2000))]
    answers = [(_by_the_full_check(case), case) for case in cases]
    for full, case in answers:
        try:
            quick: object = ("kept", json.dumps(check_json(case, "metadata")))
        except InvalidMetadata as error:
            quick = ("refused", str(error))
        assert quick == full, case
    outcomes = {full[0] for full, _ in answers}  # type: ignore[index]
    assert outcomes == {"kept", "refused"}
    assert _by_the_full_check(chain(MAX_METADATA_DEPTH + 1, 1))[0] == "refused"
    assert _by_the_full_check(chain(MAX_METADATA_DEPTH, 1))[0] == "kept"


def test_a_diverged_run_logs_nan_and_reads_it_back(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p", job_type="train", config=LOGGED) as run:
        run.log({"loss": np.float32("nan"), "step": np.int64(3)})
        run.log({"grad_norm": float("inf"), "min": -math.inf})
        Path("w.bin").write_bytes(b"weights")
        art = lineage.Artifact("m", type="model", metadata=LOGGED)
        art.add_file("w.bin")
        version = run.log_artifact(art)
        run_id = run.id
    api = lineage.Api(project="p")
    record = api.run(run_id)
    assert same(dict(record.config), PLAIN)
    assert same(
        dict(record.summary),
        {"grad_norm": math.inf, "loss": math.nan, "min": -math.inf, "step": 3},
    )
    assert record.state == "finished"
    assert same(dict(api.artifact_version("m:v0").metadata), PLAIN)
    assert version.ref == "p/m:v0"
    # an edit with the same kinds of values, and the event that records it
    api.artifact_version("m:v0").update(metadata={"loss": np.float64("-inf")})
    assert same(dict(api.artifact_version("m:v0").metadata), {"loss": -math.inf})
    # a lineage answer carries the records as read by the traversal
    graph = api.lineage("m:v0", direction="upstream", depth=1)
    assert same(dict(graph.node(run_id).run.config), PLAIN)  # type: ignore[union-attr]


def test_the_same_values_log_through_a_server(backend, workdir) -> None:  # type: ignore[no-untyped-def]
    from lineage.server.app import open_service
    from lineage.server.auth import create_token
    from lineage.server.serving import background

    service = open_service(backend.store, backend.blobs)
    token = create_token(service, "write", "sdk")
    service.graph.close()
    with background(backend.store, backend.blobs) as url:
        with lineage.init(project="p", config=LOGGED, store=url, token=token) as run:
            run.log({"loss": np.float32("nan"), "best": math.inf, "worst": -math.inf})
            Path("w.bin").write_bytes(b"weights")
            art = lineage.Artifact("m", type="model", metadata={"loss": np.float64("nan")})
            art.add_file("w.bin")
            run.log_artifact(art)
        api = lineage.Api(project="p", store=url, token=token)
        record = api.run(run.id)
        assert same(dict(record.config), PLAIN)
        assert same(dict(record.summary), {"best": math.inf, "loss": math.nan, "worst": -math.inf})
        assert same(dict(api.artifact_version("m:v0").metadata), {"loss": math.nan})
