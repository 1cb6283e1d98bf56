"""The process that writes staged blobs' files for a writer (:mod:`lineage.storage.staging`).

``python -m lineage.storage.filewriter ROOT`` opens the local blob store at ROOT, answers
``None`` (or why it cannot), then reads lists of ``(digest, data)`` on its stdin and stores
each unsynced (``put_bytes_unsynced``), answering ``None`` or what refused it on its stdout,
in :mod:`lineage.framing`'s frames both ways. It ends when its stdin does: its writer
ended, or died.

Creating a file costs this machine's kernel 50-200 us (bench/README.md), two files an
OpenLineage event: spent here, on the other core, while the writer's group goes on.
"""

from __future__ import annotations

import signal
import sys

from lineage.framing import frame, read_frame

__all__ = ["serve"]


def serve(root: str) -> None:
    """Write the blobs read on stdin into the local blob store at ``root``, unsynced, each
    list answered on stdout; until stdin ends."""
    from lineage.storage.local import LocalBlobStore

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def answer(value: str | None) -> None:
        stdout.write(frame(value))
        stdout.flush()

    try:
        blobs = LocalBlobStore(root)
    except Exception as error:  # noqa: BLE001 - said to the writer, which writes in-thread
        answer(f"{type(error).__name__}: {error}")
        return
    answer(None)
    while True:
        try:
            items = read_frame(stdin)
        except EOFError:
            return  # the writer closed our stdin: it is done (or gone)
        try:
            blobs.put_bytes_unsynced(items)
        except Exception as error:  # noqa: BLE001 - answered to the writer, whose group fails
            answer(f"{type(error).__name__}: {error}")
        else:
            answer(None)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer stops it, after its blobs
    serve(sys.argv[1])
