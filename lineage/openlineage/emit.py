"""Live OpenLineage events from the SDK: opt-in, and never in the way of a run.

With ``LINEAGE_OPENLINEAGE=1`` (or ``lineage.init(..., openlineage=True)``) and
``OPENLINEAGE_URL`` set, a run sends its ``START`` event when it starts and its ``COMPLETE``,
``FAIL`` or ``ABORT`` event (with the versions it consumed and produced) when it ends, as
:mod:`lineage.openlineage.export` writes them, to ``$OPENLINEAGE_URL/api/v1/lineage``
(``OPENLINEAGE_ENDPOINT`` overrides the path), with ``OPENLINEAGE_API_KEY`` as a bearer
token: the same two variables the OpenLineage clients read, so Marquez, DataHub or another
lineage server sees the run. An endpoint that is down or refuses costs the run nothing: the
first failure is logged once (a warning), the run goes on.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import httpx

from lineage.records import RunRecord

__all__ = ["ENABLE", "Emitter"]

logger = logging.getLogger(__name__)

ENABLE = "LINEAGE_OPENLINEAGE"
TIMEOUT = 2.0
_warned = threading.Event()


class Emitter:
    """Posts events to one OpenLineage endpoint; :meth:`from_env` makes one if asked for."""

    def __init__(self, url: str, api_key: str | None = None, endpoint: str = "api/v1/lineage"):
        self.url = url.rstrip("/") + "/" + endpoint.lstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @classmethod
    def from_env(cls, enabled: bool | None = None) -> Emitter | None:
        """An emitter when ``enabled`` (default: ``LINEAGE_OPENLINEAGE`` says yes) and
        ``OPENLINEAGE_URL`` is set; else None."""
        if enabled is None:
            enabled = os.environ.get(ENABLE, "").strip().lower() in ("1", "true", "yes", "on")
        if not enabled:
            return None
        url = os.environ.get("OPENLINEAGE_URL")
        if not url:
            _once("OpenLineage events are on but OPENLINEAGE_URL is not set: none are sent")
            return None
        return cls(
            url,
            os.environ.get("OPENLINEAGE_API_KEY"),
            os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
        )

    def send(self, event: dict[str, Any]) -> bool:
        """Post one event; False (and a warning, the first time) if it did not land."""
        try:
            answer = httpx.post(self.url, json=event, headers=self.headers, timeout=TIMEOUT)
        except httpx.HTTPError as error:
            _once(f"OpenLineage endpoint {self.url} is unreachable ({error}); the run goes on")
            return False
        if answer.status_code >= 300:
            _once(
                f"OpenLineage endpoint {self.url} answered {answer.status_code} "
                f"({answer.text[:200]}); the run goes on"
            )
            return False
        return True

    def run(self, run: RunRecord, service: Any) -> None:
        """Send what a run's state calls for: ``START`` while running, its end once ended."""
        try:
            from lineage.openlineage.export import run_events

            inputs, outputs = service.run_io(run.id) if run.state != "running" else ([], [])
            events = run_events(run, inputs, outputs)
            self.send(events[0] if run.state == "running" else events[-1])
        except Exception as error:  # noqa: BLE001 - never fail a run for its events
            _once(f"OpenLineage event of run {run.id} not sent: {error}")


def _once(message: str) -> None:
    if not _warned.is_set():
        _warned.set()
        logger.warning(message)
