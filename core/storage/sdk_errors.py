"""The one place where a storage SDK's exceptions become core's storage errors.

Every backend maps its provider's failures with a function of its own (the SDKs share no
exception types) but applies it the same way: each call into the SDK runs inside
:class:`mapped_errors`, and every object stream it hands out is :func:`mapped_stream`, whose reads
and seeks are mapped the same way. A backend's mapping function answers the core error for an
exception, or None for one that is no storage failure (a bug of ours), which then propagates
unchanged, with its traceback, to the caller's last guard.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO, Literal, Protocol

from core.errors import ServerlessMLError, StorageError
from core.storage.uri import StorageURI

# (exception, location, what was being done to it: "read", "written", "deleted") -> the core error,
# or None when the exception is not a storage failure.
ErrorMapper = Callable[[Exception, StorageURI, str], StorageError | None]


class mapped_errors:
    """Inside the block, an exception the mapper knows becomes the core error it answers.

    Core's own errors pass through as they are (a backend may raise one on purpose inside the
    block); so do exceptions that are not ``Exception`` (KeyboardInterrupt, SystemExit). The SDK's
    exception is not chained to the core error: its text can carry an address or a signed URL.
    """

    __slots__ = ("to_storage_error", "uri", "done")

    def __init__(self, to_storage_error: ErrorMapper, uri: StorageURI, done: str) -> None:
        self.to_storage_error = to_storage_error
        self.uri = uri
        self.done = done

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, traceback) -> Literal[False]:
        if exc is None or isinstance(exc, ServerlessMLError) or not isinstance(exc, Exception):
            return False
        error = self.to_storage_error(exc, self.uri, self.done)
        if error is None:
            return False
        raise error from None


class ObjectBody(Protocol):
    """What a provider's download gives: ``read(n)``; ``close()``, ``seekable()``, ``seek`` and
    ``tell`` where it has them (Azure's downloader has no close, GCS's ranged reader can seek)."""

    def read(self, size: int = -1) -> bytes: ...


def mapped_stream(body: ObjectBody, to_storage_error: ErrorMapper, uri: StorageURI,
                  buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> BinaryIO:
    """A buffered binary stream over a provider's object body whose failures are core errors."""
    return io.BufferedReader(_MappedBody(body, to_storage_error, uri), buffer_size=buffer_size)


class _MappedBody(io.RawIOBase):
    """A provider's body as a raw stream, seekable where the body is."""

    def __init__(self, body: ObjectBody, to_storage_error: ErrorMapper, uri: StorageURI) -> None:
        super().__init__()
        self._body = body
        self._errors = mapped_errors(to_storage_error, uri, "read")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with self._errors:
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        seekable = getattr(self._body, "seekable", None)
        return bool(seekable and seekable())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self.seekable():
            raise io.UnsupportedOperation("seek")
        with self._errors:
            return self._body.seek(offset, whence)  # type: ignore[attr-defined]

    def tell(self) -> int:
        if not self.seekable():
            raise io.UnsupportedOperation("tell")
        return self._body.tell()  # type: ignore[attr-defined]

    def close(self) -> None:
        if not self.closed:
            try:
                close = getattr(self._body, "close", None)
                if close is not None:
                    close()
            finally:
                super().close()


__all__ = ["ErrorMapper", "ObjectBody", "mapped_errors", "mapped_stream"]
