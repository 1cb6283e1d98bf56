"""What a Run or an Api holds: the opened stores and the service over them.

Clients are shared per process and per (store, blobs) pair, like a connection pool: a
script that starts a thousand runs opens its stores once. They close at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading

from lineage.service import Service
from lineage.storage import DEFAULT_STORE, Stores, open_stores

__all__ = ["Client"]

_lock = threading.Lock()
_shared: dict[tuple[str, str | None], Client] = {}


class Client:
    def __init__(self, store: str | None = None, blobs: str | None = None) -> None:
        self.stores: Stores = open_stores(store, blobs)
        self.service = Service(self.stores.graph, self.stores.blobs)

    @classmethod
    def shared(cls, store: str | None = None, blobs: str | None = None) -> Client:
        store = store or os.environ.get("LINEAGE_STORE") or DEFAULT_STORE
        blobs = blobs or os.environ.get("LINEAGE_BLOBS") or None
        key = (os.path.abspath(store) if "://" not in store else store, blobs)
        with _lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = cls(store, blobs)
            return client

    def close(self) -> None:
        self.stores.close()


@atexit.register
def _close_all() -> None:
    with _lock:
        for client in _shared.values():
            with contextlib.suppress(Exception):  # best effort at exit
                client.close()
        _shared.clear()
