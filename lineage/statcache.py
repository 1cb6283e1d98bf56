"""The stat cache: a file whose path, size, mtime, ctime and inode are unchanged keeps its digest.

It makes re-logging an unchanged 10,000-file dataset cost a ``stat`` per file instead of a
read of every byte. Entries whose mtime is too recent are not cached: a write landing in the
same timestamp tick as the hash would otherwise go unnoticed (git's "racily clean" problem).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["StatCache", "StatKey", "stat_key"]

logger = logging.getLogger(__name__)

StatKey = tuple[int, int, int, int]
_RACY_SECONDS = 0.1


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StatCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER, digest TEXT) WITHOUT ROWID"
        )

    def lookup(self, items: Iterable[tuple[str, StatKey]]) -> dict[str, str]:
        """Digests of the given ``(absolute path, stat key)`` pairs whose key still matches."""
        wanted = dict(items)
        if not wanted:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, ctime_ns, ino, digest FROM stat "
                "WHERE path IN (SELECT value FROM json_each(?))",
                (json.dumps(list(wanted)),),
            ).fetchall()
        return {path: digest for path, *key, digest in rows if tuple(key) == wanted.get(path)}

    def store(self, items: Iterable[tuple[str, StatKey, str]]) -> None:
        horizon = time.time_ns() - int(_RACY_SECONDS * 1e9)
        rows = [(path, *key, digest) for path, key, digest in items if key[1] < horizon]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                    raise
                # a cache: on a full disk it forgets these files, and they are hashed again
                logger.warning("stat cache not updated, the disk is full: %s", exc)
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._db.in_transaction:  # a failed COMMIT leaves it open; SQLite may have ended it
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._db.close()
