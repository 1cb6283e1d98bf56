"""The process that writes staged blobs' files for a writer (:mod:`lineage.storage.staging`).

``python -m lineage.storage.filewriter ROOT`` opens the local blob store at ROOT, answers
``None`` (or why it cannot), then reads lists of ``(digest, data)`` on its stdin and stores
each unsynced (``put_bytes_unsynced``), answering ``None`` or what refused it on its stdout.
Frames both ways: a 4-byte big-endian length, then a pickle (two processes of ours, over
pipes no one else holds). It ends when its stdin does: its writer ended, or died.

Creating a file costs this machine's kernel 50-200 us (bench/README.md), two files an
OpenLineage event: spent here, on the other core, while the writer's group goes on.
"""

from __future__ import annotations

import pickle
import signal
import sys

from lineage.storage.staging import LENGTH

__all__ = ["serve"]


def serve(root: str) -> None:
    """Write the blobs read on stdin into the local blob store at ``root``, unsynced, each
    list answered on stdout; until stdin ends."""
    from lineage.storage.local import LocalBlobStore

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def answer(value: object) -> None:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(LENGTH.pack(len(data)) + data)
        stdout.flush()

    try:
        blobs = LocalBlobStore(root)
    except Exception as error:  # noqa: BLE001 - said to the writer, which writes in-thread
        answer(f"{type(error).__name__}: {error}")
        return
    answer(None)
    while True:
        head = stdin.read(LENGTH.size)
        if len(head) < LENGTH.size:
            return  # the writer closed our stdin: it is done (or gone)
        (size,) = LENGTH.unpack(head)
        items = pickle.loads(stdin.read(size))
        try:
            blobs.put_bytes_unsynced(items)
        except Exception as error:  # noqa: BLE001 - answered to the writer, whose group fails
            answer(f"{type(error).__name__}: {error}")
        else:
            answer(None)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer stops it, after its blobs
    serve(sys.argv[1])
