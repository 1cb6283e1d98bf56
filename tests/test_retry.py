"""The one retry policy (lineage.retry), against real HTTP servers on loopback that fail as
scripted (``tests/s3_server.py``'s Flaky, taught to answer POST too), and through both of its
users: the blob store and the remote service."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from ports import free_port
from s3_server import Flaky, _FlakyHandler

import lineage
from lineage.errors import InvalidInput, StoreUnavailable
from lineage.hashing import hash_bytes
from lineage.remote import RemoteService
from lineage.retry import DEFAULT, ENV, Retry, configured, send
from lineage.storage.http import HttpBlobStore

FAST = Retry(attempts=4, first_delay=0.01, max_delay=0.05)


class _PostToo(_FlakyHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(body=True)


def server(flaky: Callable[..., Flaky], script: list[int], body: bytes = b"hello") -> Flaky:
    started = flaky([(status, "Scripted") for status in script], body)
    started.RequestHandlerClass = _PostToo
    return started


def get(url: str) -> Callable[[], httpx.Response]:
    return lambda: httpx.get(url, timeout=5)


def test_transient_failures_are_retried_until_an_answer(flaky: Callable[..., Flaky]) -> None:
    failing = server(flaky, [503, 502, 429])
    reasons: list[str] = []
    response = send(get(failing.url + "/x"), url=failing.url, policy=FAST, on_retry=reasons.append)
    assert (response.status_code, response.content) == (200, b"hello")
    assert len(failing.requests) == 4
    assert reasons == ["answered HTTP 503", "answered HTTP 502", "answered HTTP 429"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_refusals_are_answered_at_once(flaky: Callable[..., Flaky], status: int) -> None:
    refusing = server(flaky, [status] * 5)
    response = send(get(refusing.url + "/x"), url=refusing.url, policy=FAST)
    assert response.status_code == status
    assert len(refusing.requests) == 1


def test_gives_up_after_the_attempts_naming_the_server(flaky: Callable[..., Flaky]) -> None:
    down = server(flaky, [503] * 10)
    with pytest.raises(StoreUnavailable, match="HTTP 503") as caught:
        send(get(down.url + "/x"), url=down.url, what="GET /x", policy=FAST)
    assert len(down.requests) == FAST.attempts
    assert down.url in str(caught.value) and "4 attempts" in str(caught.value)
    assert caught.value.exit_code == 6


def test_gives_up_at_the_deadline(flaky: Callable[..., Flaky]) -> None:
    down = server(flaky, [500] * 1000)
    policy = Retry(attempts=1000, first_delay=0.05, max_delay=0.05, jitter=0, deadline=0.5)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with pytest.raises(StoreUnavailable) as caught:
        send(get(down.url), url=down.url, policy=policy, sleep=sleep)
    assert 3 <= len(down.requests) < 20
    assert len(waits) == len(down.requests) - 1  # a wait between attempts, none after the last
    assert sum(waits) <= policy.deadline  # the last wait cut short at the deadline
    assert f"{len(down.requests)} attempts in" in str(caught.value)


def test_an_unreachable_server_is_retried_then_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    reasons: list[str] = []
    with pytest.raises(StoreUnavailable, match="unreachable") as caught:
        send(get(url), url=url, policy=FAST, on_retry=reasons.append)
    assert len(reasons) == FAST.attempts - 1
    assert url in str(caught.value)


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    policy = Retry(first_delay=0.2, max_delay=10.0, jitter=0.25)
    for retry, base in enumerate([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]):
        waits = [policy.delay(retry) for _ in range(200)]
        assert base <= min(waits) and max(waits) <= base * 1.25
        assert max(waits) > min(waits)  # clients thrown off together come back apart
    slow_down = httpx.Response(503, headers={"Retry-After": "3"})
    assert 3.0 <= policy.delay(0, slow_down) <= 3.75
    assert policy.delay(0, httpx.Response(429, headers={"Retry-After": "3600"})) <= 12.5
    assert policy.delay(0, httpx.Response(503, headers={"Retry-After": "soon"})) <= 0.25
    with pytest.raises(ValueError):
        Retry(attempts=0)
    with pytest.raises(ValueError):
        Retry(deadline=-1)


# how long: LINEAGE_RETRY_SECONDS -----------------------------------------------------------


class Clock:
    """A clock that only sleeping moves: a budget spent without waiting it out."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_retries_for_the_budget_then_says_how_long_and_how_to_change_it(
    flaky: Callable[..., Flaky],
) -> None:
    down = server(flaky, [503] * 1000)
    clock = Clock()
    with pytest.raises(StoreUnavailable) as caught:
        send(get(down.url), url=down.url, what="GET /", policy=Retry(deadline=30), **_on(clock))
    # waits doubling from 0.2 s up to 10 s, the last one cut so that the last attempt comes
    # when the 30 s are spent, not a wait before them
    assert sum(clock.waits) == pytest.approx(30)
    assert 0.2 <= clock.waits[0] <= 0.25 and max(clock.waits) <= 12.5
    assert len(down.requests) == len(clock.waits) + 1 >= 8
    message = str(caught.value)
    assert f"GET /, {len(down.requests)} attempts in 30.0s" in message
    assert "LINEAGE_RETRY_SECONDS sets how long to keep trying: 30s" in message


def test_the_first_retry_of_a_call_is_said_once(
    flaky: Callable[..., Flaky], caplog: pytest.LogCaptureFixture
) -> None:
    down = server(flaky, [503] * 3)
    clock = Clock()
    with caplog.at_level("WARNING", logger="lineage.retry"):
        response = send(
            get(down.url), url=down.url, what="GET /", policy=Retry(deadline=30), **_on(clock)
        )
    assert response.status_code == 200 and len(clock.waits) == 3
    (said,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert said.getMessage() == (
        f"lineage server {down.url} answered HTTP 503 (GET /); retrying for up to 30s "
        "(LINEAGE_RETRY_SECONDS)"
    )


def test_a_server_given_up_on_is_tried_once_until_the_budget_has_passed(
    flaky: Callable[..., Flaky],
) -> None:
    down = server(flaky, [503] * 1000)
    clock, policy = Clock(), Retry(deadline=10)
    with pytest.raises(StoreUnavailable, match=r"attempts in 10\.0s"):
        send(get(down.url), url=down.url, policy=policy, **_on(clock))
    # what follows at once (marking the run failed, at exit) does not wait 10 s more
    asked = len(down.requests)
    clock.now += 9
    with pytest.raises(StoreUnavailable, match=r"not retried: it was given up on 9\.0s ago"):
        send(get(down.url), url=down.url, policy=policy, **_on(clock))
    assert len(down.requests) == asked + 1
    # a server that answers is forgotten as gone: the next failure gets a whole budget
    script = down.script
    down.script = []
    assert send(get(down.url), url=down.url, policy=policy, **_on(clock)).status_code == 200
    down.script = script
    with pytest.raises(StoreUnavailable, match=r"attempts in 10\.0s"):
        send(get(down.url), url=down.url, policy=policy, **_on(clock))
    # and once the budget has passed since a give-up, so does a request to a server still gone
    clock.now += 10
    asked = len(down.requests)
    with pytest.raises(StoreUnavailable, match=r"attempts in 10\.0s"):
        send(get(down.url), url=down.url, policy=policy, **_on(clock))
    assert len(down.requests) > asked + 1


def _on(clock: Clock) -> dict[str, Callable[..., object]]:
    return {"sleep": clock.sleep, "clock": clock}


def test_the_budget_is_read_from_the_environment() -> None:
    assert configured({}) == DEFAULT and DEFAULT.deadline == 30
    assert configured({ENV: ""}) == DEFAULT
    assert configured({ENV: "120"}) == Retry(deadline=120)
    assert configured({ENV: " 2.5 "}).deadline == 2.5
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    reasons: list[str] = []
    with pytest.raises(StoreUnavailable, match=r"1 attempt in \d"):  # 0: no retry at all
        send(get(url), url=url, policy=configured({ENV: "0"}), on_retry=reasons.append)
    assert reasons == []


@pytest.mark.parametrize("value", ["soon", "30s", "-1", "nan", "inf"])
def test_a_bad_budget_is_refused_naming_the_variable(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(ENV, value)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(InvalidInput, match=f"^{ENV} must be a number of seconds") as caught:
        lineage.init(project="p", store=url, token="x")
    assert repr(value) in str(caught.value)
    assert list(workdir.iterdir()) == []  # refused before the local mirror was made
    with pytest.raises(InvalidInput, match=ENV):
        RemoteService(url)


# its two users -----------------------------------------------------------------------------


def test_blob_reads_ride_out_a_restarting_server(flaky: Callable[..., Flaky]) -> None:
    restarting = server(flaky, [503, 502], body=b"blob bytes")
    store = HttpBlobStore(restarting.url, retry=FAST)
    try:
        assert store.get_bytes(hash_bytes(b"blob bytes")) == b"blob bytes"
        assert len(restarting.requests) == 3
        restarting.script = [(504, "Scripted")]
        assert store.size(hash_bytes(b"blob bytes")) == len(b"blob bytes")
        assert [r.split()[0] for r in restarting.requests[3:]] == ["HEAD", "HEAD"]
    finally:
        store.close()


def test_graphql_requests_ride_out_a_restarting_server(flaky: Callable[..., Flaky]) -> None:
    answer = json.dumps({"data": {"projects": [{"name": "p"}]}}).encode()
    restarting = server(flaky, [], body=answer)  # the health check at connect answers
    service = RemoteService(restarting.url, retry=FAST)
    try:
        restarting.script = [(502, "Scripted"), (503, "Scripted")]
        assert service.projects() == ["p"]
        assert restarting.requests[1:] == ["POST /graphql"] * 3
        assert (service.requests, service.retried) == (1, 2)
        restarting.script = [(503, "Scripted")] * 10
        with pytest.raises(StoreUnavailable, match=restarting.url):
            service.projects()
        assert len(restarting.requests) == 4 + FAST.attempts
    finally:
        service.close()
