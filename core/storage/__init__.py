"""Object storage behind one small interface, chosen by URI scheme.

Each scheme's backend lives in its own module and is imported only when a URI of that scheme is
used, so a cloud SDK never loads at start unless the model lives in that cloud.
"""

from __future__ import annotations

import importlib
import threading
from typing import BinaryIO, Protocol

from core.storage.uri import SUPPORTED_SCHEMES, StorageURI, parse_uri

__all__ = ["ObjectStore", "StorageURI", "SUPPORTED_SCHEMES", "parse_uri", "store_for"]

_BACKENDS = {"file": ("core.storage.local", "LocalObjectStore")}
_stores: dict[str, "ObjectStore"] = {}
_stores_lock = threading.Lock()


class ObjectStore(Protocol):
    scheme: str

    def read_bytes(self, uri: StorageURI) -> bytes: ...

    def open_read(self, uri: StorageURI) -> BinaryIO: ...

    def write_bytes(self, uri: StorageURI, data: bytes) -> None: ...


def store_for(uri: StorageURI) -> ObjectStore:
    """The (process-wide, reused) store for ``uri``'s scheme; its SDK is imported on first use."""
    store = _stores.get(uri.scheme)
    if store is None:
        with _stores_lock:
            store = _stores.get(uri.scheme)
            if store is None:
                module_name, class_name = _BACKENDS[uri.scheme]
                store = getattr(importlib.import_module(module_name), class_name)()
                _stores[uri.scheme] = store
    return store
