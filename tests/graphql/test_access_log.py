"""The server's access log (lineage.server.accesslog): the lines uvicorn's logger writes, the
same text to the same stream, with uvicorn's own logging set-up; any other set-up goes to the
logger itself (filters, other formats, propagation, levels). And `lineage server` writes them."""

from __future__ import annotations

import io
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path

import httpx
import pytest
from ports import free_port
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

from lineage.server.accesslog import AccessLog

LINE = '%s - "%s %s HTTP/%s" %d'
CALLS = [
    ("127.0.0.1:50000", "POST", "/graphql", "1.1", 200),
    ("127.0.0.1:50000", "POST", "/graphql", "1.1", 200),  # the same again: the kept line
    ("127.0.0.1:50001", "GET", "/blobs/ab?x=%C3%A9", "1.1", 404),
    ("[::1]:7", "PUT", "/blobs/cd", "1.0", 413),
    ("127.0.0.1:50000", "POST", "/graphql", "1.1", 500),
    ("127.0.0.1:50000", "GET", "/", "1.1", 599),  # no phrase
    ("127.0.0.1:50000", "GET", "/", "1.1", 101),
    ("127.0.0.1:50000", "POST", "/graphql", "1.1", 200),
]
LOGGER = "test.access"


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger set up as uvicorn sets up ``uvicorn.access`` (its own config, renamed)."""
    config = deepcopy(LOGGING_CONFIG)
    config["loggers"] = {LOGGER: config["loggers"]["uvicorn.access"]}
    config["handlers"] = {"access": config["handlers"]["access"]}
    config["formatters"] = {"access": config["formatters"]["access"]}
    logging.config.dictConfig(config)
    found = logging.getLogger(LOGGER)
    yield found
    for handler in list(found.handlers):
        found.removeHandler(handler)
    found.filters.clear()
    found.setLevel(logging.NOTSET)
    found.propagate = True


def written(logger: logging.Logger, call: object) -> str:
    """What ``call(logger-like)`` writes to the logger's one handler, each call with its
    arguments of CALLS."""
    # pytest puts its capture handlers on the logger for each test: uvicorn's handler alone
    logger.handlers[:] = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    assert len(logger.handlers) == 1
    stream = io.StringIO()
    logger.handlers[0].stream = stream  # type: ignore[attr-defined]
    for args in CALLS:
        call(LINE, *args)  # type: ignore[operator]
    return stream.getvalue()


@pytest.mark.parametrize("colors", [False, True])
def test_the_same_lines_as_the_logger(logger: logging.Logger, colors: bool) -> None:
    formatter = logger.handlers[0].formatter
    assert type(formatter) is AccessFormatter
    formatter.use_colors = colors
    access = AccessLog(logger)
    expected = written(logger, logger.info)
    assert expected.count("\n") == len(CALLS)
    assert ('"POST /graphql HTTP/1.1" 200 OK' in expected) is not colors
    assert written(logger, access.info) == expected
    handler = logger.handlers[0]
    formatted = []
    format_ = handler.format
    handler.format = lambda record: formatted.append(record) or format_(record)  # type: ignore[method-assign]
    assert written(logger, access.info) == expected  # every line kept now
    assert formatted == []
    assert written(logger, logger.info) == expected and len(formatted) == len(CALLS)
    assert access.hasHandlers()


def test_a_changed_format_or_stream_is_followed(logger: logging.Logger) -> None:
    access = AccessLog(logger)
    written(logger, access.info)
    handler = logger.handlers[0]
    handler.setFormatter(AccessFormatter("%(client_addr)s %(status_code)s", use_colors=False))
    lines = written(logger, access.info).splitlines()
    assert lines[0] == "127.0.0.1:50000 200 OK" and lines[2] == "127.0.0.1:50001 404 Not Found"
    handler.terminator = "\r\n"
    assert written(logger, access.info).count("\r\n") == len(CALLS)


def test_other_set_ups_go_to_the_logger(logger: logging.Logger) -> None:
    access = AccessLog(logger)
    handler = logger.handlers[0]
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return record.args[-1] != 404  # type: ignore[index]

    # a filter on the handler, then on the logger: each record is shown to it
    for owner in (handler, logger):
        owner.addFilter(keep)
        seen.clear()
        text = written(logger, access.info)
        assert len(seen) == len(CALLS) and text.count("\n") == len(CALLS) - 1
        assert seen[0].funcName == "written" and seen[0].filename == Path(__file__).name
        owner.removeFilter(keep)
    # a format naming the caller's line: each line made anew (never a kept one)
    handler.setFormatter(AccessFormatter("%(lineno)d %(status_code)s", use_colors=False))
    stream = io.StringIO()
    handler.stream = stream  # type: ignore[attr-defined]
    access.info(LINE, *CALLS[0])
    access.info(LINE, *CALLS[0])
    first, second = stream.getvalue().splitlines()
    assert int(second.split()[0]) == int(first.split()[0]) + 1, (first, second)
    handler.setFormatter(AccessFormatter("%(levelprefix)s %(status_code)s", use_colors=False))
    # a level that refuses INFO, on the logger or on the handler
    logger.setLevel(logging.WARNING)
    assert written(logger, access.info) == ""
    logger.setLevel(logging.INFO)
    handler.setLevel(logging.WARNING)
    assert written(logger, access.info) == ""
    handler.setLevel(logging.NOTSET)
    # propagation: the parent's handlers see the records too
    parent = io.StringIO()
    root = logging.StreamHandler(parent)
    logging.getLogger("test").addHandler(root)
    try:
        logger.propagate = True
        assert written(logger, access.info).count("\n") == len(CALLS)
        assert parent.getvalue().count("\n") == len(CALLS)
    finally:
        logging.getLogger("test").removeHandler(root)
    # a disabled logger writes nothing
    logger.propagate = False
    logger.disabled = True
    try:
        assert written(logger, access.info) == ""
    finally:
        logger.disabled = False
    assert written(logger, access.info).splitlines()[0] == "INFO:     200 OK"


def test_a_failed_write_is_the_handlers_to_report(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("closed")

    reported: list[logging.LogRecord] = []
    handler = logger.handlers[0]
    monkeypatch.setattr(handler, "handleError", reported.append)
    access = AccessLog(logger)
    access.info(LINE, *CALLS[0])  # the line is made and kept
    handler.stream = Closed()  # type: ignore[attr-defined]
    access.info(LINE, *CALLS[0])
    access.info(LINE, *CALLS[2])
    assert [r.args for r in reported] == [CALLS[0], CALLS[2]]


def test_lineage_server_logs_each_answer(tmp_path: Path) -> None:
    """`lineage server` with uvicorn's logging: one line an answer on stdout, as uvicorn's
    formatter writes it, for answers on one connection and on several."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    port = free_port()
    lineage = Path(sys.executable).parent / "lineage"
    command = [str(lineage), "--store", str(tmp_path / "s"), "server", "--port", str(port)]
    out = tmp_path / "out.log"
    with out.open("wb") as log:
        server = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log)
    url = f"http://127.0.0.1:{port}"
    try:
        transport = httpx.HTTPTransport(retries=8)  # connections retried until it listens
        with httpx.Client(base_url=url, timeout=30, transport=transport) as client:
            assert client.get("/healthz").status_code == 200
            for _ in range(3):
                answer = client.post("/graphql", json={"query": "{ __typename }"})
                assert answer.status_code == 200
            assert client.get("/blobs/nothex").status_code == 400
            assert client.get("/nowhere?a=1").status_code == 404
            assert client.get("/healthz").status_code == 200
        assert httpx.post(f"{url}/graphql", content=b"{", timeout=30).status_code == 400
    finally:
        server.terminate()
        server.wait(timeout=60)
    lines = out.read_text().splitlines()
    expected = [
        '"GET /healthz HTTP/1.1" 200 OK',
        '"POST /graphql HTTP/1.1" 200 OK',
        '"POST /graphql HTTP/1.1" 200 OK',
        '"POST /graphql HTTP/1.1" 200 OK',
        '"GET /blobs/nothex HTTP/1.1" 400 Bad Request',
        '"GET /nowhere?a=1 HTTP/1.1" 404 Not Found',
        '"GET /healthz HTTP/1.1" 200 OK',
        '"POST /graphql HTTP/1.1" 400 Bad Request',
    ]
    answered = [line for line in lines if ' - "' in line][-len(expected) :]
    assert [line.partition(" - ")[2] for line in answered] == expected, lines
    assert all(line.startswith("INFO:     127.0.0.1:") for line in answered), lines
    assert len({line.partition(" - ")[0] for line in answered[:7]}) == 1  # one connection
    assert answered[7].partition(" - ")[0] != answered[0].partition(" - ")[0]
