"""The one error tree of lineage.

Every refusal raises a subclass of :class:`LineageError`. Each class carries the CLI exit code
and the GraphQL ``extensions.code`` it maps to, and the context that names what was wrong as
attributes (``ref``, ``digest``, ``path``)::

    LineageError                    exit 1   INTERNAL
    ├── InvalidInput                exit 2   INVALID_INPUT
    │   ├── InvalidName
    │   ├── InvalidRef
    │   ├── InvalidPath
    │   ├── InvalidMetadata
    │   └── UnsupportedScheme
    ├── NotFound                    exit 3   NOT_FOUND
    │   ├── RunNotFound
    │   ├── VersionNotFound
    │   └── BlobNotFound
    ├── Conflict                    exit 4   CONFLICT
    │   ├── CycleError
    │   ├── RunNotActive
    │   ├── TypeMismatch
    │   └── AliasedVersion
    ├── IntegrityError              exit 5   DATA_LOSS
    │   └── DigestMismatch
    ├── StoreUnavailable            exit 6   UNAVAILABLE
    ├── Unauthenticated             exit 7   UNAUTHENTICATED
    ├── Forbidden                   exit 7   FORBIDDEN
    ├── ServerError                 exit 8   UNAVAILABLE  (the server cannot start: port in use)
    └── StorageFull                 exit 1   INSUFFICIENT_STORAGE  (a full disk; HTTP 507)

A refusal changes nothing: the check happens before the first write.

Trouble with a local file or folder (an ``OSError``) is told by :func:`from_os_error`, as one
of these classes naming the path: not found (or a part of it is not a folder) is
:class:`NotFound`; already there, or a folder where a file is meant, :class:`Conflict`; no
permission or a read-only file system, :class:`Forbidden`; a symlink loop or a name too long,
:class:`InvalidPath`; a full disk or quota, :class:`StorageFull`; anything else (an I/O
error), :class:`LineageError`.

:class:`LineageWarning` (a ``UserWarning``) is not an error: what was asked happened in part,
as said in its message (a re-log returned an existing version with its own metadata; a
finished run was asked to end again as another state).
"""

from __future__ import annotations

import errno
import os

__all__ = [
    "AliasedVersion",
    "BlobNotFound",
    "Conflict",
    "CycleError",
    "DigestMismatch",
    "Forbidden",
    "IntegrityError",
    "InvalidInput",
    "InvalidMetadata",
    "InvalidName",
    "InvalidPath",
    "InvalidRef",
    "LineageError",
    "LineageWarning",
    "NotFound",
    "RunNotActive",
    "RunNotFound",
    "ServerError",
    "StorageFull",
    "StoreUnavailable",
    "TypeMismatch",
    "Unauthenticated",
    "UnsupportedScheme",
    "VersionNotFound",
    "from_os_error",
]


class LineageError(Exception):
    """Root of every error lineage raises on purpose."""

    exit_code = 1
    code = "INTERNAL"

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        for key, value in context.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message


class InvalidInput(LineageError):
    exit_code = 2
    code = "INVALID_INPUT"


class InvalidName(InvalidInput):
    pass


class InvalidRef(InvalidInput):
    pass


class InvalidPath(InvalidInput):
    pass


class InvalidMetadata(InvalidInput):
    pass


class UnsupportedScheme(InvalidInput):
    pass


class NotFound(LineageError):
    exit_code = 3
    code = "NOT_FOUND"


class RunNotFound(NotFound):
    pass


class VersionNotFound(NotFound):
    pass


class BlobNotFound(NotFound):
    pass


class Conflict(LineageError):
    exit_code = 4
    code = "CONFLICT"


class CycleError(Conflict):
    pass


class RunNotActive(Conflict):
    pass


class TypeMismatch(Conflict):
    pass


class AliasedVersion(Conflict):
    pass


class IntegrityError(LineageError):
    exit_code = 5
    code = "DATA_LOSS"


class DigestMismatch(IntegrityError):
    pass


class StoreUnavailable(LineageError):
    exit_code = 6
    code = "UNAVAILABLE"


class Unauthenticated(LineageError):
    exit_code = 7
    code = "UNAUTHENTICATED"


class Forbidden(LineageError):
    exit_code = 7
    code = "FORBIDDEN"


class ServerError(LineageError):
    """``lineage server`` cannot start: its address is in use or cannot be bound."""

    exit_code = 8
    code = "UNAVAILABLE"


class StorageFull(LineageError):
    """A disk (or quota) is full: nothing of the write was kept. A server answers it with HTTP
    507, which clients do not retry: waiting does not free space, an operator does."""

    code = "INSUFFICIENT_STORAGE"


class LineageWarning(UserWarning):
    """Something was not done as asked, and lineage says what it did instead."""


_OS_ERRORS: dict[int, type[LineageError]] = {
    errno.ENOENT: NotFound,
    errno.ENOTDIR: NotFound,
    errno.EEXIST: Conflict,
    errno.EISDIR: Conflict,
    errno.ENOTEMPTY: Conflict,
    errno.EACCES: Forbidden,
    errno.EPERM: Forbidden,
    errno.EROFS: Forbidden,
    errno.ELOOP: InvalidPath,
    errno.ENAMETOOLONG: InvalidPath,
    errno.ENOSPC: StorageFull,
    errno.EDQUOT: StorageFull,
}


def from_os_error(exc: OSError, path: object = None) -> LineageError:
    """``exc`` as the LineageError of its kind (module docstring), naming the path.

    ``path`` is named when ``exc`` names none (a loop found while walking a folder).

    >>> raise from_os_error(exc) from exc
    """
    named = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc) or type(exc).__name__
    if named is None:
        message = reason
    else:
        message = f"{_shown(named)}: {reason}"
        if exc.filename2 is not None:
            message = f"{_shown(named)} -> {_shown(exc.filename2)}: {reason}"
    kind = _OS_ERRORS.get(exc.errno or 0, LineageError)
    return kind(message, path=None if named is None else _shown(named), errno=exc.errno)


def _shown(path: object) -> str:
    if isinstance(path, bytes):
        return os.fsdecode(path)
    return str(path)
