"""What a Run or an Api holds: a service (local or remote), the blob store, the stat cache.

``store`` picks the service: a directory or ``neo4j://`` opens the stores in this process
and runs the service layer here; ``http(s)://`` talks to a lineage server, whose service
layer applies the rules. ``mode="offline"`` (or ``LINEAGE_MODE=offline``) logs into the local
default store even when a server is configured; ``lineage sync`` sends it later.

Clients are shared per process and per (store, blobs) pair, like a connection pool: a
script that starts a thousand runs opens its stores once. They close at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.errors import InvalidInput, NotFound
from lineage.protocol import LineageService
from lineage.service import Service
from lineage.statcache import StatCache
from lineage.storage import DEFAULT_STORE, Stores, local_dir, open_stores
from lineage.storage.blobs import BlobStore

if TYPE_CHECKING:
    from lineage.remote import RemoteService

__all__ = ["Client", "check_store", "is_remote", "offline_server", "store_url"]

_lock = threading.Lock()
_shared: dict[tuple[str, str | None, str | None], Client] = {}


def is_remote(store: str) -> bool:
    return store.startswith(("http://", "https://"))


def _resolve(store: str | None, mode: str | None) -> str:
    mode = mode or os.environ.get("LINEAGE_MODE") or "online"
    if mode not in ("online", "offline"):
        raise InvalidInput(f"mode must be 'online' or 'offline', not {mode!r}")
    store = store or os.environ.get("LINEAGE_STORE") or DEFAULT_STORE
    if mode == "offline" and is_remote(store):
        return DEFAULT_STORE
    return store


def offline_server(store: str | None = None, mode: str | None = None) -> str | None:
    """The server that offline mode logs in place of (None: not offline, or no server)."""
    wanted = store or os.environ.get("LINEAGE_STORE")
    if wanted is None or not is_remote(wanted) or is_remote(_resolve(store, mode)):
        return None
    return wanted


def store_url(store: str | None = None, mode: str | None = None) -> str:
    """The store a Client of these arguments opens: ``store``, else ``LINEAGE_STORE``, else
    ``./.lineage`` (that one too when ``mode`` or ``LINEAGE_MODE`` is offline and the store is
    a server)."""
    return _resolve(store, mode)


def check_store(store: str | None, mode: str | None = None) -> None:
    """Refuse a local store directory that holds no store (NotFound), instead of creating an
    empty one there: what a reader does (a typo in a path must not read as an empty history).
    Only writes create a store."""
    directory = local_dir(store_url(store, mode))
    if directory is not None and not (directory / "lineage.db").is_file():
        raise NotFound(
            f"no lineage store in {directory}: name an existing one with --store (store= in "
            "the SDK) or LINEAGE_STORE (a store is created by the first run logged into it)"
        )


class Client:
    service: LineageService  # a Service here, or a RemoteService of a server
    blobs: BlobStore
    cache: StatCache
    stores: Stores | None

    def __init__(
        self,
        store: str | None = None,
        blobs: str | None = None,
        *,
        token: str | None = None,
        mode: str | None = None,
    ) -> None:
        store = _resolve(store, mode)
        self.url = store
        self._remote: RemoteService | None = None
        if is_remote(store):
            from lineage.remote import RemoteService
            from lineage.retry import configured
            from lineage.storage import open_graph

            retry = configured()  # a bad LINEAGE_RETRY_SECONDS is refused before the mirror opens
            remote = RemoteService(
                store,
                token=token or os.environ.get("LINEAGE_TOKEN"),
                mirror=open_graph(DEFAULT_STORE),
                retry=retry,
            )
            self.service = self._remote = remote
            self.blobs = remote.blobs
            self.cache = StatCache(Path(DEFAULT_STORE) / "statcache.db")
            self.stores = None
        else:
            self.stores = open_stores(store, blobs)
            self.service = Service(self.stores.graph, self.stores.blobs)
            self.blobs = self.stores.blobs
            self.cache = self.stores.cache

    @classmethod
    def shared(
        cls,
        store: str | None = None,
        blobs: str | None = None,
        *,
        token: str | None = None,
        mode: str | None = None,
    ) -> Client:
        store = _resolve(store, mode)
        blobs = blobs or os.environ.get("LINEAGE_BLOBS") or None
        token = token or os.environ.get("LINEAGE_TOKEN") or None
        key = (os.path.abspath(store) if "://" not in store else store, blobs, token)
        with _lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = cls(store, blobs, token=token, mode="online")
            return client

    def close(self) -> None:
        if self.stores is not None:
            self.stores.close()
        if self._remote is not None:
            self._remote.close()
            self.cache.close()


@atexit.register
def _close_all() -> None:
    with _lock:
        for client in _shared.values():
            with contextlib.suppress(Exception):  # best effort at exit
                client.close()
        _shared.clear()
