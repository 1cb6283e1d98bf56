"""The first contact with a server is retried like every later request (issue 14, finding 8).

A client started while its server restarts waits for it under :mod:`lineage.retry`'s policy;
with no server at all it gives up with StoreUnavailable once its budget (``LINEAGE_RETRY_SECONDS``)
is spent. Tests that must ride out a start give the client a generous budget (a loaded machine
starts a server slowly); tests that give up, a short one.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ports import free_port
from s3_server import Flaky

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


def test_first_contact_follows_the_policy_given(workdir: Path, flaky: Callable[..., Flaky]) -> None:
    down = flaky([(503, "Restarting")] * 10)  # a health check that never gets through
    with pytest.raises(StoreUnavailable, match="2 attempts") as caught:
        RemoteService(down.url, retry=Retry(attempts=2, first_delay=0.01, deadline=7))
    assert len(down.requests) == 2  # the attempts given, not the default's
    assert f"{ENV} sets how long to keep trying: 7s" in str(caught.value)  # its budget too


def test_ctrl_c_ends_a_client_waiting_for_its_server(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, flaky: Callable[..., Flaky]
) -> None:
    """A long budget never holds a script against its user: Ctrl-C during the retries ends
    it at once, as Ctrl-C does without lineage."""
    from test_run_fate import terminal_job

    monkeypatch.setenv(ENV, PATIENT)
    down = flaky([(503, "Restarting")] * 10_000)  # a health check that never gets through
    (workdir / "job.py").write_text(
        "import sys, lineage\n"
        "print('ready', flush=True)\n"
        "lineage.init(project='p', store=sys.argv[1])\n"
    )
    with terminal_job([sys.executable, "job.py", down.url]) as job:
        assert job.stdout is not None and job.stdout.readline().strip() == "ready"
        while len(down.requests) < 3:  # retrying: the health check was answered 503 twice
            assert job.poll() is None, job.communicate()
            time.sleep(0.05)
        job.send_signal(signal.SIGINT)
        _, stderr = job.communicate(timeout=60)
    assert job.returncode == -signal.SIGINT, stderr
    assert "KeyboardInterrupt" in stderr and "StoreUnavailable" not in stderr
