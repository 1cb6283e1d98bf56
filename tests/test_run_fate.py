"""How a run ends when its process ends: real scripts in real processes, one SQLite store.

Each script starts a run without a ``with`` block (``run = lineage.init(...)``), prints the
run id, then ends one way or another; the test reads back what the store recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lineage
from lineage.records import RunRecord

START = (
    "import lineage, os, signal, sys, time\n"
    "run = lineage.init(project='p', job_type='train')\n"
    "print(run.id, flush=True)\n"
)


@pytest.fixture
def store(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = workdir / "store"
    monkeypatch.setenv("LINEAGE_STORE", str(path))
    return path


def script(workdir: Path, body: str) -> Path:
    path = workdir / "job.py"
    path.write_text(START + textwrap.dedent(body))
    return path


def run_script(workdir: Path, body: str) -> tuple[RunRecord, subprocess.CompletedProcess[str]]:
    done = subprocess.run(
        [sys.executable, str(script(workdir, body))],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    run_id = done.stdout.split()[0]
    return lineage.Api().run(run_id), done


def _as_from_a_terminal() -> None:
    # A shell starts a background job (CI's `.ci/run &`, `make test &`) with SIGINT ignored,
    # which its children inherit, and Python then installs no KeyboardInterrupt handler: the
    # script is started as a terminal would start it, with SIGINT at its default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def terminal_job(command: list[str]) -> subprocess.Popen[str]:
    """``command`` started as from a terminal, its output read as text."""
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
        preexec_fn=_as_from_a_terminal,
    )


def signal_script(workdir: Path, body: str, signum: int) -> tuple[RunRecord, int]:
    """Start the script, wait for its run id and a 'ready' line, send ``signum``."""
    with terminal_job([sys.executable, str(script(workdir, body))]) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signum)
        code = proc.wait(60)
    return lineage.Api().run(run_id), code


def test_an_uncaught_exception_fails_the_run(store, workdir) -> None:  # type: ignore[no-untyped-def]
    record, done = run_script(
        workdir,
        """
        def step(n):
            raise RuntimeError(f"out of memory on step {n}")
        step(7)
        """,
    )
    assert done.returncode == 1 and "RuntimeError" in done.stderr  # the user's traceback stays
    assert record.state == "failed"
    assert record.error is not None
    assert record.error.startswith("RuntimeError: out of memory on step 7")
    assert "in step" in record.error and "job.py" in record.error  # the traceback's tail
    assert record.finished_at is not None


def test_a_nonzero_exit_fails_the_run(store, workdir) -> None:  # type: ignore[no-untyped-def]
    record, done = run_script(workdir, "sys.exit(3)\n")
    assert done.returncode == 3
    assert (record.state, record.error) == ("failed", "exit code 3")


def test_an_exit_with_a_message_fails_the_run(store, workdir) -> None:  # type: ignore[no-untyped-def]
    record, done = run_script(workdir, "sys.exit('no GPU found')\n")
    assert done.returncode == 1
    assert (record.state, record.error) == ("failed", "exit code 1: no GPU found")


@pytest.mark.parametrize("ending", ["sys.exit(0)\n", "sys.exit()\n", "x = 1\n"])
def test_a_clean_exit_finishes_the_run(store, workdir, ending) -> None:  # type: ignore[no-untyped-def]
    record, done = run_script(workdir, ending)
    assert done.returncode == 0
    assert (record.state, record.error) == ("finished", None)


def test_an_uncaught_keyboard_interrupt_kills_the_run(store, workdir) -> None:  # type: ignore[no-untyped-def]
    record, _ = run_script(workdir, "raise KeyboardInterrupt\n")
    assert record.state == "killed"
    assert record.error == "interrupted (KeyboardInterrupt)"


def test_ctrl_c_kills_the_run(store, workdir) -> None:  # type: ignore[no-untyped-def]
    record, code = signal_script(
        workdir, "print('ready', flush=True)\ntime.sleep(60)\n", signal.SIGINT
    )
    assert code == -signal.SIGINT  # Python still dies by the signal, as it does without lineage
    assert record.state == "killed"
    assert record.error == "interrupted (KeyboardInterrupt)"


def test_sigterm_kills_the_run(store, workdir) -> None:  # type: ignore[no-untyped-def]
    record, code = signal_script(
        workdir,
        """
        try:
            print('ready', flush=True)
            time.sleep(60)
        finally:
            print('cleaned up', flush=True)  # the stack unwinds: finally blocks run
        """,
        signal.SIGTERM,
    )
    assert code == 128 + signal.SIGTERM
    assert (record.state, record.error) == ("killed", "killed by SIGTERM")


def test_sigterm_inside_a_with_block_kills_the_run(store, workdir) -> None:  # type: ignore[no-untyped-def]
    path = workdir / "job.py"
    path.write_text(
        "import lineage, time\n"
        "with lineage.init(project='p') as run:\n"
        "    print(run.id, flush=True)\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, text=True, env=os.environ
    ) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM
    record = lineage.Api().run(run_id)
    assert (record.state, record.error) == ("killed", "killed by SIGTERM")


def test_a_sigterm_handler_of_the_user_is_left_alone(store, workdir) -> None:  # type: ignore[no-untyped-def]
    # installed before init: lineage keeps it, and the script decides how it ends
    path = workdir / "job.py"
    path.write_text(
        "import signal, sys, time\n"
        "stop = []\n"
        "signal.signal(signal.SIGTERM, lambda *_: stop.append(1))\n"
        "import lineage\n"
        "run = lineage.init(project='p')\n"
        "print(run.id, flush=True)\n"
        "print('ready', flush=True)\n"
        "while not stop:\n"
        "    time.sleep(0.01)\n"
        "print('saved a checkpoint', flush=True)\n"
    )
    with subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, text=True, env=os.environ
    ) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert proc.stdout.read().strip() == "saved a checkpoint"
    assert lineage.Api().run(run_id).state == "finished"


def test_exit_codes_inside_a_with_block(store, workdir) -> None:  # type: ignore[no-untyped-def]
    path = workdir / "job.py"
    path.write_text(
        "import lineage, sys\n"
        "with lineage.init(project='p') as run:\n"
        "    print(run.id, flush=True)\n"
        "    with lineage.init(project='p') as inner:\n"  # a second init, nested: see below
        "        print(inner.id, flush=True)\n"
        "        sys.exit(4)\n"
    )
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert done.returncode == 4
    outer_id, inner_id = done.stdout.split()
    api = lineage.Api()
    assert (api.run(inner_id).state, api.run(inner_id).error) == ("failed", "exit code 4")
    assert api.run(outer_id).state == "finished"  # the second init finished the first


def test_a_forked_child_does_not_end_its_parents_run(store, workdir) -> None:  # type: ignore[no-untyped-def]
    record, done = run_script(
        workdir,
        """
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # the child runs the inherited exit hooks
        os.waitpid(pid, 0)
        api = lineage.Api()
        print(api.run(run.id).state, flush=True)
        raise ValueError("after the fork")
        """,
    )
    assert done.stdout.split()[1] == "running"
    assert record.state == "failed" and record.error is not None
    assert record.error.startswith("ValueError: after the fork")
