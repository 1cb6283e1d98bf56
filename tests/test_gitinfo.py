"""The code version a run records: the script's repository, its state, the command line.

Real git repositories and real processes: the script lives in one repository and runs from
the working directory of another, as a job launched from a scratch directory does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lineage
from lineage.gitinfo import code_version


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def repo_with(root: Path, files: dict[str, str]) -> str:
    """A repository at ``root`` holding ``files`` in one commit; its commit id."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "x")
    return git(root, "rev-parse", "HEAD")


SCRIPT = (
    "import json, lineage\n"
    "with lineage.init(project='p') as run:\n"
    "    code = run.record.code\n"
    "print(json.dumps(None if code is None else"
    " [code.commit, code.dirty, code.script, list(code.command)]))\n"
)


@pytest.fixture
def repos(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, str]:
    """``code/`` (with jobs/train.py and a .gitignore) and the working directory, another repo."""
    monkeypatch.setenv("LINEAGE_STORE", str(workdir.parent / "store"))
    code = workdir.parent / "code"
    script_commit = repo_with(code, {"jobs/train.py": SCRIPT, ".gitignore": "*.log\n"})
    cwd_commit = repo_with(workdir, {"notes.txt": "scratch"})
    return code, script_commit, cwd_commit


def launch(*args: str, cwd: Path | None = None) -> list[object]:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=os.environ, check=True, cwd=cwd
    )
    found: list[object] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_the_commit_is_the_scripts_repository_not_the_working_directory(repos) -> None:  # type: ignore[no-untyped-def]
    code, script_commit, cwd_commit = repos
    script = str(code / "jobs" / "train.py")
    assert launch(script, "--lr", "0.1") == [
        script_commit,
        False,
        "jobs/train.py",
        [script, "--lr", "0.1"],
    ]
    (code / "run.log").write_text("ignored")
    assert launch(script)[1] is False  # an ignored file leaves the tree clean
    (code / "scratch.py").write_text("untracked")
    assert launch(script)[1] is True  # an untracked one makes it dirty
    # no script file (python -c): the working directory's repository
    commit, dirty, where, command = launch("-c", SCRIPT)
    assert (commit, dirty, where, command) == (cwd_commit, False, None, ["-c"])


def test_a_relative_script_path_survives_a_chdir(repos) -> None:  # type: ignore[no-untyped-def]
    code, _, _ = repos
    (code / "jobs" / "moving.py").write_text("import os\nos.chdir('/')\n" + SCRIPT)
    git(code, "add", "-A")
    git(code, "commit", "-q", "-m", "y")
    commit, dirty, where, command = launch("jobs/moving.py", cwd=code)
    assert (commit, dirty) == (git(code, "rev-parse", "HEAD"), False)
    assert (where, command) == ("jobs/moving.py", ["jobs/moving.py"])


def test_a_script_outside_any_repository_records_no_code(repos, tmp_path) -> None:  # type: ignore[no-untyped-def]
    loose = tmp_path / "loose" / "job.py"
    loose.parent.mkdir()
    loose.write_text(SCRIPT)
    assert launch(str(loose)) is None  # type: ignore[comparison-overlap]


def test_secrets_on_the_command_line_are_not_recorded(repos) -> None:  # type: ignore[no-untyped-def]
    code, _, _ = repos
    found = code_version([str(code / "jobs" / "train.py"), "--token", "t0p", "--api-key=k3y", "-v"])
    assert found is not None
    assert found.command[1:] == ("--token", "***", "--api-key=***", "-v")


def test_script_and_command_round_trip_through_the_store(backend, repos, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, script_commit, _ = repos
    argv = [str(code / "jobs" / "train.py"), "--name", "caf\udce9"]  # undecodable bytes
    monkeypatch.setattr(sys, "argv", argv)
    with lineage.init(project="p", store=backend.store, blobs=backend.blobs) as run:
        pass
    record = lineage.Api(store=backend.store, blobs=backend.blobs).run(run.id)
    assert record.code is not None
    assert (record.code.commit, record.code.script) == (script_commit, "jobs/train.py")
    assert record.code.command == (argv[0], "--name", "caf\\udce9")


def test_one_git_call_gives_the_repository_and_its_commit_or_nothing(tmp_path: Path) -> None:
    """``rev-parse --show-toplevel HEAD`` in one call (lineage.init forks one git fewer): the
    commit of a repository, in a subfolder too; nothing in a repository without a commit
    yet, nor outside any."""
    commit = repo_with(tmp_path / "repo", {"src/a.py": "x = 1\n"})
    found = code_version(argv=[""], cwd=tmp_path / "repo" / "src")
    assert found is not None and found.commit == commit and not found.dirty
    (tmp_path / "repo" / "new.txt").write_text("untracked")
    found = code_version(argv=[""], cwd=tmp_path / "repo")
    assert found is not None and found.commit == commit and found.dirty
    (tmp_path / "empty").mkdir()
    git(tmp_path / "empty", "init", "-q")
    assert code_version(argv=[""], cwd=tmp_path / "empty") is None
    (tmp_path / "plain").mkdir()
    assert code_version(argv=[""], cwd=tmp_path / "plain") is None
