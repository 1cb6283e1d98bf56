"""``lineage.init`` and ``Run``: the write side of the SDK, and how a run ends with its process.

A run that is not finished by hand or by its ``with`` block is finished when its process ends,
as the process ended (see :class:`Run`). Python tells an exit hook little, so lineage looks:

- an uncaught exception: the interpreter leaves it in ``sys.last_value`` for the exit hooks;
- ``sys.exit(n)``: lineage wraps ``sys.exit`` to remember ``n`` (a bare ``raise SystemExit(n)``
  or the ``exit(n)`` builtin is not seen, nor is a ``sys.exit`` that the program catches);
- ``SIGTERM``: unless the program installed a handler of its own, lineage's handler unwinds the
  stack as Ctrl-C does (``finally`` blocks and ``with`` blocks run) and the process exits 143;
- ``os._exit`` and ``SIGKILL`` run nothing: the run stays ``running`` until ``lineage runs
  --stale`` (or the next ``init`` on the host) marks it ``crashed``.
"""

from __future__ import annotations

import atexit
import builtins
import functools
import logging
import os
import signal
import socket
import sys
import threading
import traceback
import warnings
from collections.abc import Mapping, Sequence
from types import FrameType, TracebackType
from typing import Any, NoReturn

from lineage.artifact import Artifact
from lineage.client import Client, offline_server
from lineage.errors import (
    Conflict,
    InvalidInput,
    LineageError,
    LineageWarning,
    NotFound,
    RunNotActive,
    TypeMismatch,
)
from lineage.gitinfo import code_version
from lineage.ingest import store_files
from lineage.records import RUN_STATES, RunRecord
from lineage.service import relog_offer
from lineage.versions import ArtifactVersion

__all__ = ["Run", "init"]

logger = logging.getLogger(__name__)

ENDINGS = tuple(state for state in RUN_STATES if state != "running")
TRACEBACK_TAIL = 3  # frames of an error's traceback kept in the run's record


class Run:
    """One execution of a process. Use as a context manager, or call :meth:`finish`.

    How a run ends when nobody finished it, inside a ``with`` block or at process exit:

    - an exception: ``failed``, with the error (type, message, the traceback's last frames);
    - ``sys.exit(0)``, ``sys.exit()`` or the end of the script: ``finished``;
    - ``sys.exit(3)``: ``failed``, "exit code 3";
    - Ctrl-C (``KeyboardInterrupt``) or ``SIGTERM``: ``killed``;
    - a process that dies without exit hooks (``os._exit``, ``SIGKILL``): ``running`` until
      ``lineage runs --stale`` or the next ``init`` on this host marks it ``crashed``.

    A new ``lineage.init`` in the same thread finishes the run the previous one started.
    """

    def __init__(
        self,
        record: RunRecord,
        client: Client,
        *,
        openlineage: bool | None = None,
        offline_for: str | None = None,
    ) -> None:
        self._record = record
        self._client = client
        self._offline_for = offline_for  # the server an offline run logs in place of
        self._pid = os.getpid()
        self._outcome: tuple[str, str | None] | None = None  # what __exit__ could not record
        _exits.watch(self)
        self._emitter = None
        if openlineage or (openlineage is None and os.environ.get("LINEAGE_OPENLINEAGE")):
            from lineage.openlineage.emit import Emitter

            self._emitter = Emitter.from_env(openlineage)
            if self._emitter is not None:
                self._emitter.run(record, client.service)

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.name} ({self.id}) {self.state}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.state != "running":
            return
        state, detail = ("finished", None) if exc is None else outcome(exc)
        try:
            self.finish(state=state, error=detail)
        except Exception as failure:  # noqa: BLE001 - the user's error comes first
            self._outcome = (state, detail)
            logger.warning(
                "could not mark run %s %s (will try at exit): %s", self.id, state, failure
            )

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def state(self) -> str:
        return self._record.state

    @property
    def config(self) -> Mapping[str, Any]:
        return self._record.config

    @property
    def summary(self) -> Mapping[str, Any]:
        return self._record.summary

    @property
    def record(self) -> RunRecord:
        return self._record

    def _check_active(self) -> None:
        if self._record.state != "running":
            raise RunNotActive(
                f"run {self.name} ({self.id}) is {self.state}; start a new run to log more",
                run_id=self.id,
            )

    def use_artifact(self, ref: str | ArtifactVersion, role: str | None = None) -> ArtifactVersion:
        """Record that this run consumes a version; return it (call ``.download()`` for files).

        ``role="base"`` marks a base model of a merge (``lineage model-card`` lists them)."""
        self._check_active()
        target = ref.ref if isinstance(ref, ArtifactVersion) else ref
        try:
            record = self._client.service.use(self.id, target, role)
        except NotFound as error:
            if self._offline_for is None:
                raise
            # a version the server holds but this store never saw: say why it is missing here
            raise type(error)(
                f"{error.message} (offline: this run logs into {self._client.url}, which "
                f"knows only what was logged offline and the versions of {self._offline_for} "
                "that a run resolved online before, by version (name:v3): aliases stay there)",
                **error.context,
            ) from None
        return ArtifactVersion(record, self._client)

    def _check_type(self, artifact: Artifact) -> None:
        """An artifact logged under another type than it has is refused before its files are
        stored (the commit checks again, under its lock)."""
        try:
            existing = self._client.service.get_artifact(self.project, artifact.name)
        except NotFound:
            return
        if existing.type != artifact.type:
            raise TypeMismatch(
                f"artifact {self.project}/{artifact.name} has type {existing.type!r}, "
                f"not {artifact.type!r}",
                artifact=f"{self.project}/{artifact.name}",
            )

    def log_artifact(
        self, artifact: Artifact, aliases: Sequence[str] | None = None
    ) -> ArtifactVersion:
        """Store the artifact's files, then commit them as a version produced by this run.

        Byte-identical content returns the existing version, with its own metadata and
        description: when the artifact offered others, a :class:`LineageWarning` names the
        version and its event log keeps what was offered (``version.relogged``); change them
        with ``version.update(...)``. Blobs are durable before the version exists, so a crash
        in between leaves no visible version (``lineage gc`` reclaims the bytes).
        """
        self._check_active()
        if not isinstance(artifact, Artifact):
            raise InvalidInput(f"log_artifact takes a lineage.Artifact, not {type(artifact)!r}")
        if isinstance(aliases, str):
            aliases = [aliases]
        from lineage.names import check_alias, check_json, check_text

        wanted = [check_alias(alias) for alias in aliases or ()]
        metadata = check_json(artifact.metadata, "metadata")
        check_text(artifact.description, "description")  # it may have changed since
        self._check_type(artifact)  # before any byte is stored or cached
        digest = store_files(artifact.entries, self._client.blobs, self._client.cache)
        record, created = self._client.service.commit(
            self.id,
            name=artifact.name,
            type=artifact.type,
            manifest=digest,
            description=artifact.description,
            metadata=metadata,
            aliases=wanted,
        )
        offered = None if created else relog_offer(record, metadata, artifact.description)
        if offered:
            warnings.warn(
                LineageWarning(
                    f"{record.ref} already holds these exact bytes: it is returned with its own "
                    f"{' and '.join(offered)}, not the ones offered (kept in its event log); "
                    "change them with .update(...)"
                ),
                stacklevel=2,
            )
        return ArtifactVersion(record, self._client)

    def log(self, summary: Mapping[str, Any]) -> None:
        """Merge values into the run's summary (final metrics)."""
        self._check_active()
        self._record = self._client.service.update_summary(self.id, summary)

    def finish(
        self,
        state: str = "finished",
        *,
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """End the run as ``finished``, ``failed``, ``killed`` or ``crashed``.

        A run ends once. Finishing it again as the state it has is a no-op (a notebook cell
        may run twice); as another state, it stays as it ended and a :class:`LineageWarning`
        says so (the later ``summary`` and ``error`` are not recorded either).
        """
        if state not in ENDINGS:
            raise InvalidInput(f"a run ends as one of {', '.join(ENDINGS)}, not {state!r}")
        if self._record.state == "running":
            try:
                self._record = self._client.service.finish_run(
                    self.id,
                    state=state,
                    summary=summary,
                    error=None if error is None else text(error),
                )
            except Conflict:  # ended elsewhere: another handle, `lineage runs --stale`
                self._record = self._client.service.get_run(self.id)
                if self._record.state == "running":
                    raise
            _exits.forget(self)
            if self._emitter is not None:
                self._emitter.run(self._record, self._client.service)
            if self._record.state == state:
                return
        if self._record.state != state:
            warnings.warn(
                LineageWarning(
                    f"run {self.name} ({self.id}) already ended {self._record.state}; a run "
                    f"ends once, so it is not marked {state}"
                ),
                stacklevel=2,
            )

    def _end_at_exit(self, state: str, error: str | None) -> None:
        state, error = self._outcome or (state, error)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LineageWarning)
                self.finish(state=state, error=error)
        except Exception:  # at exit there is nobody left to raise to
            logger.exception("could not finish run %s at exit", self.id)


def outcome(exc: BaseException, tb: TracebackType | None = None) -> tuple[str, str | None]:
    """The state and error a run ends with when ``exc`` ends it."""
    if isinstance(exc, _Terminated):
        return "killed", f"killed by {signal.Signals(exc.signum).name}"
    if isinstance(exc, KeyboardInterrupt):
        return "killed", "interrupted (KeyboardInterrupt)"
    if isinstance(exc, SystemExit):
        return exit_outcome(exc.code)
    lines = traceback.format_exception_only(type(exc), exc)
    frames = traceback.extract_tb(tb or exc.__traceback__)[-TRACEBACK_TAIL:]
    if frames:
        lines += ["Traceback (last frames):\n", *traceback.format_list(frames)]
    return "failed", text("".join(lines).rstrip())


def exit_outcome(code: object) -> tuple[str, str | None]:
    """The state and error of ``sys.exit(code)``, which Python maps to the exit status."""
    if code is None or code == 0:
        return "finished", None
    if isinstance(code, int):
        return "failed", f"exit code {code}"
    return "failed", text(f"exit code 1: {code}")


def text(value: str) -> str:
    """``value`` as text any store takes: lone surrogates (from undecodable bytes) escaped."""
    from lineage.names import escaped

    return escaped(value)


class _Terminated(SystemExit):
    """Raised by lineage's SIGTERM handler: it unwinds the stack and exits 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


_NOTHING = object()


class _Exits:
    """The runs of this process that are not finished, and what is known of how it ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[int, Run] = {}  # by id(): a run stays reachable until it ends
        self.current = threading.local()  # .run: the run the latest init of a thread started
        self.exit_code: object = _NOTHING
        self.signal: int | None = None
        self.pid: int | None = None  # the process the hooks were installed by
        self.registered = False
        self.handling = False  # whether this process's SIGTERM handler was decided
        self.previous_exit: Any = None

    def watch(self, run: Run) -> None:
        with self.lock:
            self.runs[id(run)] = run

    def forget(self, run: Run) -> None:
        with self.lock:
            self.runs.pop(id(run), None)

    def install(self) -> None:
        """Once per process: the exit hook, the ``sys.exit`` wrapper, the SIGTERM handler."""
        with self.lock:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                self.handling = False
            if not self.registered:  # a forked child inherits the hook and the wrapper
                self.registered = True
                atexit.register(self.at_exit)  # after Client's: so it runs before clients close
                self.previous_exit = sys.exit
                setattr(sys, "exit", functools.update_wrapper(_sys_exit, sys.exit))  # noqa: B010
            # signal handlers can only be set from the main thread: the first init there does
            if not self.handling and threading.current_thread() is threading.main_thread():
                self.handling = True
                current = signal.getsignal(signal.SIGTERM)
                if current in (signal.SIG_DFL, None, _on_signal):
                    signal.signal(signal.SIGTERM, _on_signal)

    def ending(self) -> tuple[str, str | None]:
        """How this process is ending, as far as Python shows it."""
        if self.signal is not None:
            return "killed", f"killed by {signal.Signals(self.signal).name}"
        last = getattr(sys, "last_value", None)
        if last is not None and not interactive():
            return outcome(last, getattr(sys, "last_traceback", None))
        if self.exit_code is not _NOTHING:
            return exit_outcome(self.exit_code)
        return "finished", None

    def at_exit(self) -> None:
        with self.lock:
            mine = [run for run in self.runs.values() if run._pid == os.getpid()]
        if not mine:
            return
        state, error = self.ending()
        for run in mine:
            if run.state == "running":
                run._end_at_exit(state, error)


def interactive() -> bool:
    """A REPL or IPython outlives its exceptions: one of them is not how the process ended."""
    return bool(hasattr(sys, "ps1") or sys.flags.interactive or hasattr(builtins, "__IPYTHON__"))


_exits = _Exits()


def _sys_exit(status: object = None, /) -> NoReturn:
    _exits.exit_code = status
    _exits.previous_exit(status)
    raise SystemExit(status)  # not reached: the wrapped sys.exit raises


def _on_signal(signum: int, frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
    if os.getpid() != _exits.pid:  # a forked child that never called init: die as usual
        os.kill(os.getpid(), signum)
        return
    _exits.signal = signum
    raise _Terminated(signum)


def init(
    project: str,
    job_type: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    notes: str | None = None,
    store: str | None = None,
    blobs: str | None = None,
    token: str | None = None,
    mode: str | None = None,
    openlineage: bool | None = None,
) -> Run:
    """Start a run.

    >>> with lineage.init(project="surgery", job_type="finetune", config={"lr": 3e-5}) as run:
    ...     base = run.use_artifact("policy:latest")

    ``store`` defaults to ``LINEAGE_STORE`` or ``./.lineage``; ``blobs`` to ``LINEAGE_BLOBS`` or
    the ``blobs`` folder beside the graph store. ``store="http://host:8000"`` logs to a lineage
    server (``token`` or ``LINEAGE_TOKEN``); ``mode="offline"`` (or ``LINEAGE_MODE``) logs to the
    local default store even then, for ``lineage sync`` to send later. ``openlineage=True``
    (or ``LINEAGE_OPENLINEAGE=1``) also sends the run's OpenLineage events to
    ``OPENLINEAGE_URL`` (:mod:`lineage.openlineage.emit`; off by default, never failing a run).

    The run that the previous ``init`` of this thread started, if still running, is finished
    (``finished``, with a logged warning) once the new one exists: re-running a notebook cell
    leaves no run behind.
    """
    from lineage.names import check_json, check_text

    check_json(config, "config")  # bad text is refused before any store is touched
    check_text(notes, "notes")
    client = Client.shared(store, blobs, token=token, mode=mode)
    service = client.service
    for crashed in service.reap_stale():
        logger.warning("run %s (%s) had died; marked crashed", crashed.name, crashed.id)
    record = service.start_run(
        project=project,
        job_type=job_type,
        name=name,
        config=config,
        tags=tags,
        notes=notes,
        code=code_version(),
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    _exits.install()
    run = Run(record, client, openlineage=openlineage, offline_for=offline_server(store, mode))
    previous: Run | None = getattr(_exits.current, "run", None)
    _exits.current.run = run
    if previous is not None and previous.state == "running" and previous._pid == os.getpid():
        logger.warning(
            "run %s (%s) is still running: finished, as a new lineage.init started run %s",
            previous.name,
            previous.id,
            run.id,
        )
        try:
            previous.finish()
        except LineageError as failure:
            logger.warning("could not finish run %s (will try at exit): %s", previous.id, failure)
    return run
