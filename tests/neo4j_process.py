"""Start and stop a real embedded Neo4j Community (storage/neo4j/run.sh) for tests.

No Docker: ``storage/neo4j/run.sh`` fetches the Neo4j jars from Maven Central once
and runs ``Launcher.java``, which serves Bolt on 127.0.0.1 and prints
``READY bolt://127.0.0.1:PORT``.

    proc = Neo4jProcess()
    proc.start(tmp_path / "neo4j")          # free port, waits until Bolt answers
    driver = neo4j.GraphDatabase.driver(proc.uri)
    proc.restart()                          # same port, same data dir
    proc.stop()

``python tests/neo4j_process.py [DATA_DIR] [--port N] [--password PW]`` starts one,
prints its URI and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Self

import neo4j
from ports import HOST, free_port

if TYPE_CHECKING:
    from types import FrameType, TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_SCRIPT = REPO_ROOT / "storage" / "neo4j" / "run.sh"
OUTPUT_LINES_KEPT = 400
OUTPUT_LINES_REPORTED = 40
_CONNECT_ERRORS = (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError)


class Neo4jProcess:
    """One embedded Neo4j server process, started by ``storage/neo4j/run.sh``.

    ``password=None`` runs with authentication off; a password (8+ characters) turns
    it on for the user ``neo4j``. ``extra_env`` is added to the process environment
    (e.g. ``{"NEO4J_HEAP": "512m"}``).
    """

    def __init__(
        self,
        password: str | None = None,
        run_script: Path = RUN_SCRIPT,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self._password = password
        self._run_script = run_script
        self._extra_env = dict(extra_env or {})
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES_KEPT)
        self._lock = threading.Lock()
        self._data_dir: Path | None = None
        self._port: int | None = None
        self._start_timeout = 120.0
        self._atexit_registered = False

    # -- properties ------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("Neo4jProcess was never started")
        return self._port

    @property
    def uri(self) -> str:
        return f"bolt://{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("Neo4jProcess was never started")
        return self._data_dir

    @property
    def auth(self) -> tuple[str, str] | None:
        """The driver ``auth`` argument for this server (None: auth is off)."""
        return None if self._password is None else ("neo4j", self._password)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def output(self, lines: int = OUTPUT_LINES_REPORTED) -> str:
        """The last ``lines`` lines the process wrote (stdout and stderr merged)."""
        with self._lock:
            kept = list(self._output)
        return "\n".join(kept[-lines:])

    # -- lifecycle -------------------------------------------------------------

    def start(self, data_dir: Path, port: int | None = None, timeout: float = 120) -> None:
        """Start Neo4j on ``data_dir`` and wait until Bolt answers a driver.

        Picks a free 127.0.0.1 port when ``port`` is None. Raises RuntimeError (with
        the last lines of output) if the process exits early or is not ready within
        ``timeout`` seconds.
        """
        if self.running:
            raise RuntimeError(f"Neo4j is already running at {self.uri}")
        self._data_dir = Path(data_dir).resolve()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._port = free_port() if port is None else port
        self._start_timeout = timeout
        self._ready.clear()
        with self._lock:
            self._output.clear()

        args = [str(self._run_script), str(self._data_dir), str(self._port)]
        if self._password is not None:
            args.append(self._password)
        env = {**os.environ, **self._extra_env, "NEO4J_STOP_ON_STDIN_EOF": "1"}
        deadline = time.monotonic() + timeout
        # stdin is a pipe the launcher watches: if this process dies, Neo4j stops too.
        # A new session keeps a terminal's Ctrl-C away from Neo4j; stop() sends
        # SIGTERM itself.
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=env,
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=self._read_output,
            args=(self._proc, f"READY {self.uri}"),
            name=f"neo4j-output-{self._port}",
            daemon=True,
        )
        self._reader.start()
        if not self._atexit_registered:
            atexit.register(self._stop_quietly)
            self._atexit_registered = True

        try:
            self._wait_ready(deadline, timeout)
            self._wait_driver(deadline, timeout)
        except BaseException:
            self._terminate(grace=5)
            raise

    def stop(self, timeout: float = 30) -> None:
        """Stop Neo4j: SIGTERM (clean shutdown), SIGKILL after ``timeout`` seconds."""
        self._terminate(grace=timeout)

    def restart(self, timeout: float | None = None) -> None:
        """Stop, then start again on the same port and data directory."""
        if self._data_dir is None or self._port is None:
            raise RuntimeError("Neo4jProcess was never started")
        self.stop()
        self.start(
            self._data_dir,
            self._port,
            self._start_timeout if timeout is None else timeout,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------

    def _read_output(self, proc: subprocess.Popen[str], ready_line: str) -> None:
        stream = proc.stdout
        if stream is None:
            return
        for raw in stream:
            line = raw.rstrip("\r\n")
            with self._lock:
                self._output.append(line)
            if line == ready_line:
                self._ready.set()
        stream.close()

    def _failure(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"Neo4j ({self._run_script} {self._data_dir} {self._port}) {what}; "
            f"last output:\n{self.output(OUTPUT_LINES_REPORTED)}"
        )

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            raise self._failure("has no process")
        while not self._ready.wait(0.1):
            code = proc.poll()
            if code is not None:
                if self._reader is not None:
                    self._reader.join(timeout=5)  # collect the last lines it wrote
                raise self._failure(f"exited with code {code} before it was ready")
            if time.monotonic() > deadline:
                raise self._failure(f"was not ready within {timeout:g}s")

    def _wait_driver(self, deadline: float, timeout: float) -> None:
        last: Exception | None = None
        while True:
            try:
                with neo4j.GraphDatabase.driver(self.uri, auth=self.auth) as driver:
                    driver.verify_connectivity()
            except _CONNECT_ERRORS as exc:  # several kinds while Bolt settles
                last = exc
            else:
                return
            if not self.running:
                raise self._failure("exited while the driver was connecting")
            if time.monotonic() > deadline:
                raise self._failure(
                    f"printed READY but the driver could not connect within {timeout:g}s: {last!r}"
                )
            time.sleep(0.2)

    def _terminate(self, grace: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        self._proc = None
        self._ready.clear()

    def _stop_quietly(self) -> None:
        # At interpreter exit there is nothing useful to do with an error.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.stop(timeout=15)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run an embedded Neo4j until Ctrl-C.")
    parser.add_argument(
        "data_dir", nargs="?", type=Path, help="data directory (default: a temp dir)"
    )
    parser.add_argument("--port", type=int, default=None, help="Bolt port (default: a free one)")
    parser.add_argument("--password", default=None, help="enable auth with this neo4j password")
    parser.add_argument("--timeout", type=float, default=300, help="start timeout in seconds")
    args = parser.parse_args(argv)

    # Ctrl-C and SIGTERM both end the wait below and stop Neo4j cleanly (SIGINT is
    # re-armed because a shell may start background jobs with it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    data_dir: Path = args.data_dir or Path(tempfile.mkdtemp(prefix="lineage-neo4j-"))
    proc = Neo4jProcess(password=args.password)
    started = time.monotonic()
    proc.start(data_dir, port=args.port, timeout=args.timeout)
    print(proc.uri, flush=True)
    print(
        f"Neo4j ready in {time.monotonic() - started:.1f}s "
        f"(data: {data_dir}, pid {proc.pid}); "
        "Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        while proc.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        proc.stop()
    print(f"Neo4j exited on its own; last output:\n{proc.output()}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
