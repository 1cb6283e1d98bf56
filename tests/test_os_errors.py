"""Ordinary trouble with local files is one ``error:`` line naming the path (issue 14, 7).

An OSError (not found, already there, no permission, read-only, a loop) reaches the user of
the CLI as one line on stderr with the exit code of its kind (lineage.errors.from_os_error),
and the user of the SDK as a LineageError naming the path; nothing is written. A long ref
is not echoed whole in its error.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.errors import (
    Conflict,
    Forbidden,
    InvalidPath,
    InvalidRef,
    LineageError,
    LineageWarning,
    NotFound,
    StorageFull,
    from_os_error,
)
from lineage.names import parse_ref

LINEAGE = Path(sys.executable).parent / "lineage"
LONG_REF = "a" * 10_240


@pytest.fixture
def stores(backend, workdir: Path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A store with p/ds:v0 (one file), named by no LINEAGE_* variable."""
    Path("a.txt").write_text("alpha")
    with lineage.init(project="p", store=backend.store, blobs=backend.blobs) as run:
        art = lineage.Artifact("ds", type="dataset")
        art.add_file("a.txt")
        run.log_artifact(art)
    return backend.store, backend.blobs


def cli_error(stores: tuple[str, str], *args: str, code: int) -> str:
    """The one stderr line of a failing verb, run in this process through CliRunner."""
    store, blobs = stores
    result = CliRunner().invoke(cli, ["--store", store, "--blobs", blobs, "-p", "p", *args])
    assert result.exit_code == code, (result.stderr, result.exception)
    assert result.stdout == ""
    return one_line(result.stderr)


def process_error(stores: tuple[str, str], *args: str, code: int) -> str:
    """The one stderr line of a failing verb, run as the installed ``lineage`` command."""
    store, blobs = stores
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    done = subprocess.run(
        [str(LINEAGE), "--store", store, "--blobs", blobs, "-p", "p", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    return one_line(done.stderr)


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr and "[Errno" not in stderr
    return lines[0]


def test_get_into_an_existing_file(stores: tuple[str, str]) -> None:
    Path("taken").write_text("mine")
    for error in (
        cli_error(stores, "get", "ds:v0", "-o", "taken", code=Conflict.exit_code),
        process_error(stores, "get", "ds:v0", "-o", "taken", code=Conflict.exit_code),
    ):
        assert error.startswith("error: taken is a file: a version downloads into a folder")
        assert "lineage get REF PATH -o TARGET" in error  # how to get one file instead
    assert Path("taken").read_text() == "mine"


def test_get_under_a_file_or_a_missing_place(stores: tuple[str, str]) -> None:
    Path("taken").write_text("mine")
    error = cli_error(stores, "get", "ds:v0", "-o", "taken/sub", code=NotFound.exit_code)
    assert error == "error: taken/sub: Not a directory"
    error = process_error(stores, "get", "ds:v0", "-o", "/proc/nowhere", code=NotFound.exit_code)
    assert error == "error: /proc/nowhere: No such file or directory"
    assert Path("taken").read_text() == "mine" and not Path("/proc/nowhere").exists()


def test_get_where_writing_is_refused(
    stores: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)  # as root, chmod refuses nothing
    error = cli_error(stores, "get", "ds:v0", "-o", "locked/out", code=Forbidden.exit_code)
    assert error == "error: locked/out: Permission denied"
    assert not Path("locked").exists()


def test_render_into_a_missing_folder(stores: tuple[str, str], tmp_path: Path) -> None:
    target = tmp_path / "missing" / "dir" / "x.svg"
    for error in (
        cli_error(stores, "render", "ds:v0", "-o", str(target), code=NotFound.exit_code),
        process_error(stores, "render", "ds:v0", "-o", str(target), code=NotFound.exit_code),
    ):
        assert error == f"error: {target}: No such file or directory"
    assert not (tmp_path / "missing").exists()


def test_sdk_download_names_the_path(stores: tuple[str, str]) -> None:
    store, blobs = stores
    Path("taken").write_text("mine")
    version = lineage.Api(store=store, blobs=blobs, project="p").artifact_version("ds:v0")
    with pytest.raises(
        Conflict, match=r"^taken is a file: a version downloads into a folder"
    ) as caught:
        version.download(Path("taken"))
    assert caught.value.path == "taken"  # type: ignore[attr-defined]
    with pytest.raises(NotFound, match="Not a directory") as missing:
        version.download(Path("taken/sub"))
    assert missing.value.path == "taken/sub"  # type: ignore[attr-defined]
    assert Path("taken").read_text() == "mine"


def test_a_long_ref_is_cut_in_its_error(stores: tuple[str, str]) -> None:
    for error in (
        cli_error(stores, "get", LONG_REF + ":x:y", code=InvalidRef.exit_code),
        process_error(stores, "show", "q/" + LONG_REF, code=InvalidRef.exit_code),
    ):
        assert "... (10,2" in error and len(error) < 400, error[:500]
    with pytest.raises(InvalidRef) as caught:
        parse_ref(LONG_REF)
    message = str(caught.value)
    assert f"{'a' * 80}'... (10,240 characters)" in message and len(message) < 300
    assert caught.value.ref == LONG_REF  # type: ignore[attr-defined]  (the whole, for code)


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "f"), NotFound, 3),
        (FileExistsError(errno.EEXIST, "File exists", "f"), Conflict, 4),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "f"), Conflict, 4),
        (PermissionError(errno.EACCES, "Permission denied", "f"), Forbidden, 7),
        (OSError(errno.EROFS, "Read-only file system", "f"), Forbidden, 7),
        (OSError(errno.ELOOP, "Too many levels of symbolic links", "f"), InvalidPath, 2),
        (OSError(errno.ENOSPC, "No space left on device", "f"), StorageFull, 1),
        (OSError(errno.EDQUOT, "Disk quota exceeded", "f"), StorageFull, 1),
        (OSError(errno.EIO, "Input/output error", "f"), LineageError, 1),
    ],
)
def test_each_os_error_has_its_code(error: OSError, kind: type[LineageError], code: int) -> None:
    mapped = from_os_error(error)
    assert type(mapped) is kind and mapped.exit_code == code
    assert str(mapped) == f"f: {error.strerror}" and mapped.path == "f"  # type: ignore[attr-defined]
    unnamed = from_os_error(OSError(errno.ENOSPC, "No space left on device"), Path("out"))
    assert str(unnamed) == "out: No space left on device"


def test_a_cli_verb_without_a_path_in_its_error(stores: tuple[str, str]) -> None:
    """A full disk while writing the rendered file: the group names it, exit 1."""

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "write_bytes", full)
        error = cli_error(stores, "render", "ds:v0", "-o", "x.svg", code=1)
    assert error == "error: x.svg: No space left on device"


def test_add_dir_over_a_symlink_loop(workdir: Path) -> None:
    Path("d").mkdir()
    Path("d/a.txt").write_text("a")
    os.symlink("l2", "l1")
    os.symlink("l1", "l2")
    os.symlink("../l1", "d/loop")
    art = lineage.Artifact("ds", type="dataset")
    with pytest.raises(InvalidPath, match="d/loop"):
        art.add_dir("d")


def test_add_dir_leaves_out_what_is_not_a_file_and_says_so(workdir: Path) -> None:
    """A FIFO (reading it would wait forever), a socket and a symlink to a FIFO are left out
    with one warning naming each; the files beside them are logged."""
    Path("d/sub").mkdir(parents=True)
    Path("d/a.txt").write_text("a")
    Path("d/sub/b.txt").write_text("b")
    os.mkfifo("d/pipe")
    os.symlink("pipe", "d/to-pipe")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind("d/sub/sock")
    try:
        art = lineage.Artifact("ds", type="dataset")
        with pytest.warns(LineageWarning) as caught:
            assert art.add_dir("d") == 2
        assert len(caught) == 1
        message = str(caught[0].message)
        assert message == (
            "d: left out 3 that are neither files nor folders: pipe (a FIFO), "
            "sub/sock (a socket), to-pipe (a FIFO)"
        )
        assert caught[0].filename == __file__  # pointed at the caller's add_dir
        with lineage.init(project="p") as run:
            version = run.log_artifact(art)
        assert sorted(entry.path for entry in version.files()) == ["a.txt", "sub/b.txt"]
    finally:
        listener.close()
