"""Object storage behind one small interface, chosen by URI scheme.

Each scheme's backend lives in its own module and is imported only when a URI of that scheme is
used, so a cloud SDK never loads at start unless the model lives in that cloud.

A backend is a client and a function that maps its SDK's exceptions to core's storage errors: every
call into the SDK runs inside :class:`core.storage.sdk_errors.mapped_errors` with that function,
``open_read`` returns :func:`core.storage.sdk_errors.mapped_stream` over the SDK's download, and
``BACKENDS`` in :mod:`core.storage.uri` names the module.

Versions (:mod:`core.storage.versions`): a store whose ``versioned`` is true reads exactly the
version it is given (or raises :class:`~core.errors.ObjectSuperseded`), tells the current version
of an object (``stat``), and writes or deletes on a :class:`~core.storage.versions.Precondition`
(or raises :class:`~core.errors.PreconditionFailed`). ``file://`` is not versioned.

Byte ranges and concatenation (batch fan-out, core/batch/fanout.py): ``open_read`` reads a range
of an object, ``compose`` publishes the concatenation of several objects as one, without
downloading them where the provider can concatenate on its side.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO, Protocol

from core.errors import StorageError
from core.installed import is_installed
from core.storage.parts import MIB
from core.storage.uri import BACKENDS, SUPPORTED_SCHEMES, StorageURI, parse_uri

__all__ = [
    "DEFAULT_PART_BYTES", "DEFAULT_TIMEOUT_SECONDS", "ObjectStore", "StorageURI", "SUPPORTED_SCHEMES",
    "missing_sdk", "parse_uri", "store_for",
]

DEFAULT_TIMEOUT_SECONDS = 10.0
# A file larger than this is uploaded in parts of this size (S3 multipart, Azure blocks, GCS
# resumable pieces); memory holds about one part on GCS and Azure, none on S3.
DEFAULT_PART_BYTES = 16 * MIB
_stores: dict[tuple[str, float], ObjectStore] = {}
_stores_lock = threading.Lock()


class ObjectStore(Protocol):
    """What core needs from object storage. Backends are built as ``Backend(timeout_seconds)``:
    every call gives up within about that time (SDK retries included) and raises a
    :class:`~core.errors.StorageError` subclass, never an SDK exception."""

    scheme: str
    versioned: bool  # whether versions, stat and preconditions below are supported

    def read_bytes(self, uri: StorageURI) -> bytes: ...

    def open_read(
        self, uri: StorageURI, version: ObjectVersion | None = None, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        """A stream over the object; over exactly ``version`` when it is pinned, or else
        ObjectSuperseded (that version was replaced or deleted). ``start``/``end``: only bytes
        ``start`` to ``end`` (exclusive; None: to the end), in one ranged request where the
        provider takes one; ``end`` must not pass the object's size."""
        ...

    def stat(self, uri: StorageURI) -> ObjectVersion | None:
        """The object's current version (with its ``size``), or None when there is no such object."""
        ...

    def write_bytes(self, uri: StorageURI, data: bytes) -> None: ...

    def write_file(
        self, uri: StorageURI, path: str, *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> ObjectVersion | None:
        """Store the local file at ``path`` as ``uri``, streamed (never read whole into memory)
        and atomically: readers see the previous object or the complete new one, never a part. A
        file larger than ``part_bytes`` goes in parts, committed by one last request. With a
        ``precondition``, the object is replaced only if it is as expected (else
        PreconditionFailed, nothing changed). Returns the version written (None: not versioned)."""
        ...

    def compose(
        self, uri: StorageURI, sources: Sequence[StorageURI], *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> ObjectVersion | None:
        """Store the concatenation of ``sources`` (objects of this store, in the same bucket or
        container as ``uri``, in this order) as ``uri``, atomically and on ``precondition`` as
        write_file does, server-side where the provider can (S3 UploadPartCopy, GCS compose, Azure
        Put Block From URL), so the bytes need not pass through this process. The sources are left
        as they are. A missing source is ObjectNotFound. Returns the version written."""
        ...

    def delete(self, uri: StorageURI, *, precondition: Precondition | None = None) -> None:
        """Remove the object. An object that is already gone is not an error (a repeated cleanup
        succeeds); a missing bucket or container is. With a ``precondition``, only the version it
        names is removed (else PreconditionFailed, also when the object is gone)."""
        ...


if TYPE_CHECKING:
    from collections.abc import Callable

    from core.storage.versions import ObjectVersion, Precondition

    # How store_for builds a backend: ``Backend(timeout_seconds)``. Each backend module assigns its
    # class to a variable of this type under TYPE_CHECKING, so mypy checks the constructor and every
    # method against ObjectStore, at no cost at run time.
    StoreFactory = Callable[[float], ObjectStore]


def missing_sdk(scheme: str) -> str | None:
    """If ``scheme``'s SDK is not installed, a sentence saying what to install; else None.

    Looks the module up without importing it, so settings can check this at start for free.
    """
    backend = BACKENDS[scheme]
    if backend.sdk_module is None or is_installed(backend.sdk_module):
        return None
    return (
        f"{scheme}:// locations need {backend.sdk_module}, which is not installed; "
        f"install serverless-ml[{backend.extra}]"
    )


def store_for(uri: StorageURI, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> ObjectStore:
    """The (process-wide, reused) store for ``uri``'s scheme; its SDK is imported on first use."""
    key = (uri.scheme, timeout_seconds)
    store = _stores.get(key)
    if store is None:
        with _stores_lock:
            store = _stores.get(key)
            if store is None:
                problem = missing_sdk(uri.scheme)
                if problem:
                    raise StorageError(problem, uri.display)
                backend = BACKENDS[uri.scheme]
                store = getattr(importlib.import_module(backend.module), backend.class_name)(timeout_seconds)
                _stores[key] = store
    return store
