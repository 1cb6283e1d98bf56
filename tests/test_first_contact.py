"""The first contact with a server is retried like every later request (issue 14, finding 8).

A client started while its server restarts waits for it under :mod:`lineage.retry`'s policy;
with no server at all it gives up with StoreUnavailable in a bounded time.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from ports import free_port

import lineage
from lineage.errors import StoreUnavailable
from lineage.remote import RemoteService
from lineage.retry import Retry
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.server.serving import background


def test_init_waits_for_a_server_that_comes_up(backend, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    service = open_service(backend.store, backend.blobs)
    token = create_token(service, "write", "sdk")
    service.graph.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    outcome: dict[str, object] = {}

    def start() -> None:
        try:
            run = lineage.init(project="p", store=url, token=token)
            run.log({"acc": 0.5})
            run.finish()
            outcome["run"] = run.id
        except BaseException as exc:  # reported to the test below
            outcome["error"] = exc

    client = threading.Thread(target=start)
    client.start()
    time.sleep(1.0)  # the client's first health check finds nothing listening
    assert client.is_alive(), outcome
    with background(backend.store, backend.blobs, port=port):
        client.join(timeout=30)
        assert not client.is_alive()
    assert "error" not in outcome, outcome["error"]
    api = lineage.Api(store=backend.store, blobs=backend.blobs, project="p")
    assert api.run(str(outcome["run"])).summary == {"acc": 0.5}


def test_init_without_a_server_gives_up_in_bounded_time(workdir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        lineage.init(project="p", store=url)
    took = time.monotonic() - started
    assert url in str(caught.value) and "health check" in str(caught.value)
    assert "6 attempts" in str(caught.value)  # retried under the default policy
    assert 5.0 < took < 20.0, took


def test_first_contact_follows_the_policy_given(workdir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="2 attempts"):
        RemoteService(url, retry=Retry(attempts=2, first_delay=0.01))
    assert time.monotonic() - started < 5.0
