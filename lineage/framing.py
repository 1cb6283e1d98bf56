"""Frames between two processes of ours: a 4-byte big-endian length, then a pickle.

Used over a socket pair or pipes that no one else holds (the server and its OpenLineage
writer, :mod:`lineage.openlineage.writer`; the writer and its files process,
:mod:`lineage.storage.filewriter`): never for bytes from elsewhere.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["frame", "frames", "read_frame"]

_LENGTH = struct.Struct(">I")


def frame(value: Any) -> bytes:
    """``value`` as one frame."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def frames(buffer: bytearray) -> Iterator[Any]:
    """The whole frames at the start of ``buffer``, removed from it."""
    start = 0
    while len(buffer) - start >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(buffer, start)
        end = start + _LENGTH.size + size
        if len(buffer) < end:
            break
        yield pickle.loads(buffer[start + _LENGTH.size : end])
        start = end
    del buffer[:start]


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame's value from a blocking ``stream``; EOFError at its end."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)
