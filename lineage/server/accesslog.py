"""uvicorn's access log, the same lines for a tenth of the cost.

uvicorn logs each answer through ``logging.getLogger("uvicorn.access").info(...)``: a
``LogRecord`` (the time, the process, the thread, the caller's frame), then its
``AccessFormatter`` copies the record twice and looks the status phrase up, then the line is
written and flushed. About 70 µs a request, a sixth of what ``{ __typename }`` costs the
server. With the logging set-up ``lineage server`` makes (uvicorn's default), a line depends
only on the call's arguments (client address, method, path, HTTP version, status): there is
no time in it. :class:`AccessLog` keeps the line made for each such set of arguments and
writes it again, under the handler's lock, flushed, as the handler would.

Whenever the set-up is not that one (another handler or formatter, a format naming the time
or the process, a filter, propagation to a parent, a level that refuses INFO), every call goes
to the logger as before: :meth:`AccessLog.info` is then ``Logger.info``, caller included.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from uvicorn.logging import AccessFormatter

__all__ = ["STEADY_FIELDS", "AccessLog"]

# the record's fields that are the same for every record of the same call arguments
STEADY_FIELDS = frozenset(
    {"levelprefix", "levelname", "levelno", "name", "client_addr", "request_line", "status_code"}
    | {"message", "msg"}
)
MAX_LINES = 4096  # lines kept; past it the cache starts again (a line a client connection)
_FIELD = re.compile(r"%\((\w+)\)")


def _steady(formatter: logging.Formatter | None) -> bool:
    """Whether ``formatter`` is uvicorn's access formatter with a format whose every field
    is in :data:`STEADY_FIELDS` (so that a line depends only on the call's arguments)."""
    if type(formatter) is not AccessFormatter or type(formatter._style) is not logging.PercentStyle:
        return False
    return set(_FIELD.findall(formatter._style._fmt)) <= STEADY_FIELDS


class AccessLog:
    """Stands for the ``uvicorn.access`` logger in uvicorn's HTTP protocol (its only use
    there is ``info``)."""

    __slots__ = ("_lines", "_set_up", "logger")

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._lines: dict[tuple[object, ...], str] = {}
        self._set_up: tuple[object, ...] = ()  # what the lines were made under

    def hasHandlers(self) -> bool:
        return self.logger.hasHandlers()

    def _handler(self) -> logging.StreamHandler[Any] | None:
        """The one plain stream handler the lines may go to directly, or None."""
        logger = self.logger
        handlers = logger.handlers
        if (
            len(handlers) != 1
            or logger.propagate
            or logger.disabled
            or logger.filters
            or not logger.isEnabledFor(logging.INFO)
        ):
            return None
        handler = handlers[0]
        if (
            type(handler) is not logging.StreamHandler
            or handler.filters
            or handler.level > logging.INFO
            or handler.lock is None
        ):
            return None
        formatter = handler.formatter
        set_up = (
            handler,
            formatter,
            handler.terminator,
            getattr(formatter, "use_colors", None),
            getattr(getattr(formatter, "_style", None), "_fmt", None),
        )
        if set_up != self._set_up:  # made anew since the last call (or first call)
            if not _steady(formatter):
                return None
            self._lines.clear()
            self._set_up = set_up
        return handler

    def info(self, msg: str, *args: object) -> None:
        """``Logger.info(msg, *args)``: the same line to the same stream."""
        handler = self._handler()
        if handler is None:
            self.logger.info(msg, *args, stacklevel=2)
            return
        key = (msg, *args)
        line = self._lines.get(key)
        record = None
        if line is None:
            record = self._record(msg, args)
            try:
                line = handler.format(record) + handler.terminator
            except RecursionError:
                raise
            except Exception:  # noqa: BLE001 - as StreamHandler.emit: the handler reports it
                handler.handleError(record)
                return
            if len(self._lines) >= MAX_LINES:
                self._lines.clear()
            self._lines[key] = line
        with handler.lock:  # type: ignore[union-attr]  # checked in _handler
            try:
                handler.stream.write(line)
                handler.flush()
            except RecursionError:
                raise
            except Exception:  # noqa: BLE001 - as StreamHandler.emit
                handler.handleError(record or self._record(msg, args))

    def _record(self, msg: str, args: tuple[object, ...]) -> logging.LogRecord:
        """The record ``Logger.info`` would make (the caller is the frame that called info)."""
        caller = sys._getframe(2)
        code = caller.f_code
        return self.logger.makeRecord(
            self.logger.name,
            logging.INFO,
            code.co_filename,
            caller.f_lineno,
            msg,
            args,
            None,
            code.co_name,
        )
