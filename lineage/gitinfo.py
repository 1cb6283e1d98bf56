"""The code version of a run: which script, in which git commit, dirty or not, run how.

The repository is the one that holds the script being run (``sys.argv[0]``), wherever the
process was started from; with no script file (``python -c``, a REPL, a notebook) it is the
working directory's. The tree is dirty when ``git status`` shows anything: changed, staged or
untracked files (ignored files do not count).
"""

from __future__ import annotations

import builtins
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from lineage.records import CodeVersion

__all__ = ["code_version"]

MAX_ARGS = 1000
MAX_ARG = 4096
# an option whose value is a credential: its value is recorded as "***"
SECRET = re.compile(r"--?[\w-]*(token|password|passwd|secret|api[-_]?key)[\w-]*", re.IGNORECASE)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(
    argv: Sequence[str] | None = None, cwd: str | Path | None = None
) -> CodeVersion | None:
    """The code a process runs (``argv`` defaults to ``sys.argv``); None outside a git
    repository, or without git.

    ``script`` is the script's path relative to its repository's root; ``command`` is
    ``argv`` as given, with the values of options named like credentials (``--token``,
    ``--password``, ``--api-key``, ...) recorded as ``***``. A notebook or a REPL records
    neither.
    """
    argv = list(sys.argv if argv is None else argv)
    interactive = hasattr(sys, "ps1") or hasattr(builtins, "__IPYTHON__")
    script = None if interactive or not argv else _script(argv[0])
    where = script.parent if script is not None else Path(cwd or Path.cwd())
    # one git for both (a git costs a fork and exec, ~2 ms of this process's CPU a call:
    # lineage.init is often the SDK's costliest call); it fails outside a repository and
    # in one without a commit yet, as the two calls did
    top, _, commit = (_git(["rev-parse", "--show-toplevel", "HEAD"], where) or "").partition("\n")
    if not top or not commit:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=normal"], where)
    remote = _git(["config", "--get", "remote.origin.url"], where)
    shown = None
    if script is not None:
        root = Path(top).resolve()
        shown = script.relative_to(root).as_posix() if script.is_relative_to(root) else str(script)
    return CodeVersion(
        commit=commit,
        dirty=bool(status),
        remote=remote or None,
        script=None if shown is None else _text(shown),
        command=() if interactive else _command(argv),
    )


def _script(first: str) -> Path | None:
    if first in ("", "-c"):
        return None
    path = Path(first)
    if not path.is_file():  # a relative argv[0] after os.chdir: __main__ knows it absolute
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        path = Path(main) if isinstance(main, str) else path
    return path.resolve() if path.is_file() else None


def _command(argv: list[str]) -> tuple[str, ...]:
    kept = [_text(arg)[:MAX_ARG] for arg in argv[:MAX_ARGS]]
    for i, arg in enumerate(kept):
        name, equals, _ = arg.partition("=")
        if SECRET.fullmatch(name):
            if equals:
                kept[i] = f"{name}=***"
            elif i + 1 < len(kept):
                kept[i + 1] = "***"
    if len(argv) > MAX_ARGS:
        kept.append(f"... ({len(argv) - MAX_ARGS} more)")
    return tuple(kept)


def _text(value: str) -> str:
    # undecodable bytes of a path or argument (lone surrogates) escaped: every store takes it
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
