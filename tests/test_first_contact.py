"""The first contact with a server is retried like every later request (issue 14, finding 8).

A client started while its server restarts waits for it under :mod:`lineage.retry`'s policy;
with no server at all it gives up with StoreUnavailable once its budget (``LINEAGE_RETRY_SECONDS``)
is spent. Tests that must ride out a start give the client a generous budget (a loaded machine
starts a server slowly); tests that give up, a short one.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from ports import free_port

import lineage
from lineage.errors import StoreUnavailable
from lineage.remote import RemoteService
from lineage.retry import ENV, Retry
from lineage.server.app import open_service
from lineage.server.auth import create_token
from lineage.server.serving import background

PATIENT = "120"  # seconds: what a client that must outlast a start is given, whatever the load


def test_init_waits_for_a_server_that_comes_up(backend, workdir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(ENV, PATIENT)
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
        client.join()  # within the budget: a client that gave up has an error below
    assert "error" not in outcome, outcome["error"]
    api = lineage.Api(store=backend.store, blobs=backend.blobs, project="p")
    assert api.run(str(outcome["run"])).summary == {"acc": 0.5}


def test_init_without_a_server_gives_up_after_its_budget(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "1.5")
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailable) as caught:
        lineage.init(project="p", store=url)
    message = str(caught.value)
    assert url in message and "health check" in message
    tries = re.search(r"(\d+) attempts in", message)
    assert tries is not None and int(tries[1]) > 1, message  # retried, then gave up
    assert f"{ENV} sets how long to keep trying: 1.5s" in message  # the budget it was given


def test_first_contact_follows_the_policy_given(workdir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="2 attempts"):
        RemoteService(url, retry=Retry(attempts=2, first_delay=0.01))
    assert time.monotonic() - started < 5.0
