"""The code version of a run: the git commit of the working directory and whether it is dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lineage.records import CodeVersion

__all__ = ["code_version"]


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(cwd: str | Path | None = None) -> CodeVersion | None:
    """None outside a git repository (or without git)."""
    where = Path(cwd or Path.cwd())
    commit = _git(["rev-parse", "HEAD"], where)
    if not commit:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    remote = _git(["config", "--get", "remote.origin.url"], where)
    return CodeVersion(commit=commit, dirty=bool(status), remote=remote or None)
