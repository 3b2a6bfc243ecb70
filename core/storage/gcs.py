"""Google Cloud Storage as object storage (``gs://bucket/object``), through google-cloud-storage.

Credentials are Application Default Credentials: on Cloud Functions the function's service
account, elsewhere ``gcloud auth application-default login`` or ``GOOGLE_APPLICATION_CREDENTIALS``.
With ``STORAGE_EMULATOR_HOST=http://127.0.0.1:9023`` the SDK itself sends every call to that
emulator, with anonymous credentials.

Every call gives up within about ``timeout_seconds``: each HTTP attempt has that timeout and
retries stop once it has passed. (The SDK's default retry keeps a stopped server busy for about
two minutes before it fails.)

Versions are generations: a read of one version asks for its ``generation`` (a generation that is
gone answers 404 while the object itself exists: ObjectSuperseded), a conditional write or delete
sends ``ifGenerationMatch`` (0: the object must not exist). The GCS emulator the tests use keeps
generations but ignores both (it serves the current object and never answers 412).

``compose`` (a fanned-out batch run's parts merged into its outputs) is GCS's own compose, 32
sources a request, in a tree of temporary objects beyond that; no byte passes through the caller.

    >>> store = GCSObjectStore(timeout_seconds=5)
    >>> store.read_bytes(parse_uri("gs://models/iris/model.joblib"))[:2]  # doctest: +SKIP
    b'\\x80\\x04'
"""

from __future__ import annotations

import http
import io
import mimetypes
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO

from core.errors import (
    ObjectNotFound,
    ObjectSuperseded,
    PreconditionFailed,
    StorageAccessDenied,
    StorageError,
    StorageTimeout,
)
from core.storage import DEFAULT_PART_BYTES, DEFAULT_TIMEOUT_SECONDS
from core.storage.sdk_errors import mapped_errors, mapped_stream
from core.storage.uri import StorageURI
from core.storage.versions import ObjectVersion, Precondition

if TYPE_CHECKING:
    # The SDK's names, bound by _import_sdk() on first use; declared here for the type checker only.
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import storage
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse  # noqa: F401 -- used via _SDK_ERRORS
    from google.cloud.storage.retry import DEFAULT_RETRY

    _SDK_ERRORS: tuple[type[Exception], ...]

_sdk_loaded = False


def _import_sdk() -> None:
    """Import the SDK on first use of this scheme, not when the module is imported.

    store_for() imports this module only when a URI of its scheme is used; importing the SDK here
    as well keeps the house rule that nothing under core/ imports a cloud SDK at module level.
    """
    global _sdk_loaded, requests, api_exceptions, auth_exceptions, storage
    global DataCorruption, InvalidResponse, DEFAULT_RETRY, _SDK_ERRORS
    if _sdk_loaded:
        return
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import storage
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
    from google.cloud.storage.retry import DEFAULT_RETRY
    # What a call can raise from the SDK, google-auth or the HTTP layer under it; a bug of ours
    # (TypeError, ...) is not caught.
    _SDK_ERRORS = (
        api_exceptions.GoogleAPIError,
        auth_exceptions.GoogleAuthError,
        requests.RequestException,
        InvalidResponse,
        DataCorruption,
        OSError,
    )
    _sdk_loaded = True


# open_read fetches the object in ranges of this size, so a stream holds at most this much
# (the SDK's default range is 40 MiB).
READ_CHUNK_BYTES = 8 * 1024 * 1024
# write_file sends a file larger than the SDK's one-request limit (8 MiB) as a resumable upload in
# pieces of part_bytes, rounded up to a multiple of this (the protocol's unit), so memory holds one
# piece; the SDK's default piece is 100 MiB.
RESUMABLE_UNIT_BYTES = 256 * 1024
_COMPOSE_SOURCES = 32  # sources of one compose request


class GCSObjectStore:
    """``gs://`` objects. Thread-safe; one client per store, built on the first call."""

    scheme = "gs"
    versioned = True

    def __init__(self, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        _import_sdk()
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be a positive number of seconds; got {timeout_seconds!r}")
        self.timeout_seconds = timeout_seconds
        self._retry = DEFAULT_RETRY.with_timeout(timeout_seconds)
        self._client: storage.Client | None = None
        self._client_lock = threading.Lock()

    def read_bytes(self, uri: StorageURI) -> bytes:
        with mapped_errors(self._storage_error, uri, "read"):
            return self._blob(uri).download_as_bytes(timeout=self.timeout_seconds, retry=self._retry)

    def open_read(
        self, uri: StorageURI, version: ObjectVersion | None = None, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        """A stream over the object (its ``version.generation`` when given; bytes ``start`` to
        ``end`` only, when given), fetched in ranges. A missing object fails here, not on the
        first read; the stream keeps to the generation that existed when it was opened."""
        if end is not None and end <= start:
            return io.BytesIO()  # an empty range: nothing to ask for
        with mapped_errors(self._storage_error, uri, "read"):
            generation = version.generation if version is not None else None
            blob = self._client_once().bucket(uri.bucket).blob(uri.key, generation=generation)
            ranges = _Ranges(blob, READ_CHUNK_BYTES, self.timeout_seconds, self._retry, start, end)
        return mapped_stream(ranges, self._storage_error, uri)

    def write_bytes(self, uri: StorageURI, data: bytes) -> None:
        """One upload: GCS makes an object visible only once it is complete, so readers see
        the old object or the whole new one."""
        content_type = _content_type(uri.name)
        with mapped_errors(self._storage_error, uri, "written"):
            self._blob(uri).upload_from_string(
                data, content_type=content_type, timeout=self.timeout_seconds, retry=self._retry
            )

    def stat(self, uri: StorageURI) -> ObjectVersion | None:
        """The object's current generation; None when there is no such object."""
        with mapped_errors(self._storage_error, uri, "read"):
            blob = self._client_once().bucket(uri.bucket).get_blob(
                uri.key, timeout=self.timeout_seconds, retry=self._retry
            )
        return None if blob is None else ObjectVersion(generation=blob.generation, size=blob.size)

    def write_file(
        self, uri: StorageURI, path: str, *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> ObjectVersion:
        """Upload the local file at ``path``, streamed: up to 8 MiB in one request, larger files
        as a resumable upload in pieces of ``part_bytes`` (rounded up to 256 KiB). Either way GCS
        makes the object visible only when the upload is finalized, and only if ``precondition``
        holds, so readers see the old object or the whole new one. ``timeout_seconds`` bounds each
        request (and its retries), not the whole upload."""
        with open(path, "rb") as data:  # a missing local file is our OSError, not a storage error
            size = os.fstat(data.fileno()).st_size
            piece = -(-part_bytes // RESUMABLE_UNIT_BYTES) * RESUMABLE_UNIT_BYTES
            with mapped_errors(self._storage_error, uri, "written"):
                blob = self._blob(uri, chunk_size=piece)
                if metadata:
                    blob.metadata = dict(metadata)
                blob.upload_from_file(
                    data, size=size, content_type=_content_type(uri.name),
                    timeout=self.timeout_seconds, retry=self._retry, if_generation_match=_generation_match(precondition),
                )
        return ObjectVersion(generation=blob.generation)

    def compose(
        self, uri: StorageURI, sources: Sequence[StorageURI], *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> ObjectVersion:
        """GCS compose, which takes at most 32 sources a call: more sources are composed in a
        tree, 32 at a time into temporary objects beside ``uri`` (``<name>.compose-<token>-<n>``,
        removed afterwards, also when composing fails), and the last call writes ``uri`` with
        ``metadata`` on ``precondition``. No byte passes through this process; ``part_bytes`` is
        not used. No source at all writes an empty object."""
        for source in sources:
            if source.scheme != "gs" or source.bucket != uri.bucket:
                raise ValueError(f"{source.display} cannot be composed into {uri.display}: GCS composes objects "
                                 "of one bucket only")
        if not sources:
            with mapped_errors(self._storage_error, uri, "written"):
                blob = self._blob(uri)
                if metadata:
                    blob.metadata = dict(metadata)
                blob.upload_from_string(b"", content_type=_content_type(uri.name), timeout=self.timeout_seconds,
                                        retry=self._retry, if_generation_match=_generation_match(precondition))
            return ObjectVersion(generation=blob.generation)
        bucket = self._client_once().bucket(uri.bucket)
        level = [bucket.blob(source.key) for source in sources]
        token = uuid.uuid4().hex[:12]
        temporary: list[storage.Blob] = []
        try:
            while len(level) > _COMPOSE_SOURCES:
                grouped = []
                for at in range(0, len(level), _COMPOSE_SOURCES):
                    group = level[at:at + _COMPOSE_SOURCES]
                    if len(group) == 1:
                        grouped.append(group[0])
                        continue
                    middle = bucket.blob(f"{uri.key}.compose-{token}-{len(temporary)}")
                    middle.content_type = _content_type(uri.name)
                    self._compose_call(middle, group, sources, uri, None)
                    temporary.append(middle)
                    grouped.append(middle)
                level = grouped
            blob = bucket.blob(uri.key)
            blob.content_type = _content_type(uri.name)
            if metadata:
                blob.metadata = dict(metadata)
            self._compose_call(blob, level, sources, uri, _generation_match(precondition))
        finally:
            for middle in temporary:
                try:
                    middle.delete(timeout=self.timeout_seconds, retry=self._retry)
                except _SDK_ERRORS:  # a leftover costs storage only; the compose's own outcome matters
                    pass
        return ObjectVersion(generation=blob.generation)

    def delete(self, uri: StorageURI, *, precondition: Precondition | None = None) -> None:
        """Delete the object; one already gone is not an error, a missing bucket is. With a
        ``precondition`` only its generation is deleted (else PreconditionFailed)."""
        if precondition is not None and precondition.found is None:
            raise ValueError("a conditional delete needs the version it expects to remove")
        with mapped_errors(self._storage_error, uri, "deleted"):
            try:
                self._blob(uri).delete(
                    timeout=self.timeout_seconds, retry=self._retry, if_generation_match=_generation_match(precondition)
                )
            except api_exceptions.NotFound:
                if precondition is not None:
                    raise PreconditionFailed(
                        f"{uri.display} cannot be deleted: it was removed since it was found; another writer "
                        "came first", uri.display,
                    ) from None
                bucket = self._client_once().bucket(uri.bucket)
                if not bucket.exists(timeout=self.timeout_seconds, retry=self._retry):
                    raise ObjectNotFound(
                        f"{uri.display} cannot be deleted: bucket '{uri.bucket}' does not exist", uri.display
                    ) from None

    # --- internals -----------------------------------------------------------------------------

    def _compose_call(self, blob: storage.Blob, parts: list, sources: Sequence[StorageURI], uri: StorageURI,
                      generation_match: int | None) -> None:
        """One compose request; a 404 names the source that is missing, not the bucket."""
        with mapped_errors(self._storage_error, uri, "written"):
            try:
                blob.compose(parts, timeout=self.timeout_seconds, retry=self._retry, if_generation_match=generation_match)
            except api_exceptions.NotFound:
                for source in sources:
                    if not self._client_once().bucket(source.bucket).blob(source.key).exists(
                            timeout=self.timeout_seconds, retry=self._retry):
                        raise ObjectNotFound(
                            f"{source.display} does not exist (it was to be composed into {uri.display})",
                            source.display,
                        ) from None
                raise

    def _blob(self, uri: StorageURI, chunk_size: int | None = None) -> storage.Blob:
        return self._client_once().bucket(uri.bucket).blob(uri.key, chunk_size=chunk_size)

    def _client_once(self) -> storage.Client:
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    # No project is needed to read or write a named bucket; one given in the
                    # environment is used for quota and billing.
                    self._client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or None)
                client = self._client
        return client

    def _storage_error(self, exc: Exception, uri: StorageURI, done: str) -> StorageError | None:
        """This store's mapping function: "``uri`` cannot be ``done``: why" for a failure of the
        SDK, google-auth or the HTTP layer under them; None for anything else (a bug)."""
        if not isinstance(exc, _SDK_ERRORS):
            return None
        shown = uri.display
        if isinstance(exc, api_exceptions.PreconditionFailed):  # 412: ifGenerationMatch did not hold
            if done == "read":
                return ObjectSuperseded(f"{shown} is no longer the generation that was to be read (HTTP 412)", shown)
            return PreconditionFailed(
                f"{shown} cannot be {done}: it is no longer the generation that was found; another writer came "
                "first (HTTP 412)", shown,
            )
        if isinstance(exc, api_exceptions.NotFound):
            if done == "written":  # an upload finds nothing missing but the bucket
                return ObjectNotFound(f"{shown} cannot be written: bucket '{uri.bucket}' does not exist", shown)
            missing = self._what_is_missing(uri)
            if missing is None:  # the object is there: the generation asked for is not
                return ObjectSuperseded(f"{shown} no longer has the generation that was to be read (HTTP 404)", shown)
            return ObjectNotFound(f"{shown} does not exist: {missing}", shown)
        if isinstance(exc, api_exceptions.Unauthorized):
            return StorageAccessDenied(
                f"{shown} cannot be {done}: Cloud Storage refused the credentials (HTTP 401)", shown
            )
        if isinstance(exc, api_exceptions.Forbidden):
            needed = (
                "storage.objects.get (e.g. roles/storage.objectViewer)"
                if done == "read"
                else "storage.objects.create and storage.objects.delete (e.g. roles/storage.objectUser)"
            )
            return StorageAccessDenied(
                f"{shown} cannot be {done}: permission denied (HTTP 403); the service account needs "
                f"{needed} on bucket '{uri.bucket}'",
                shown,
            )
        if isinstance(exc, auth_exceptions.DefaultCredentialsError):
            # its text can name a credentials file, so it is not repeated
            return StorageAccessDenied(
                f"{shown} cannot be {done}: no usable Google Cloud credentials were found; on Cloud "
                "Functions the function's service account is used, elsewhere run `gcloud auth "
                "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS",
                shown,
            )
        if isinstance(exc, auth_exceptions.RefreshError):
            return StorageAccessDenied(
                f"{shown} cannot be {done}: the Google Cloud credentials could not be refreshed", shown
            )
        if isinstance(exc, api_exceptions.RetryError):
            return StorageTimeout(
                f"{shown} cannot be {done}: Cloud Storage did not answer within {self.timeout_seconds:g} s "
                f"(STORAGE_TIMEOUT_SECONDS); last error: {_cause(exc.cause)}",
                shown,
            )
        if _is_timeout(exc):
            return StorageTimeout(
                f"{shown} cannot be {done}: Cloud Storage did not answer within {self.timeout_seconds:g} s "
                "(STORAGE_TIMEOUT_SECONDS)",
                shown,
            )
        return StorageError(f"{shown} cannot be {done}: {_cause(exc)}", shown)

    def _what_is_missing(self, uri: StorageURI) -> str | None:
        """Which of bucket and object is missing: a download's 404 does not say. None: neither,
        so the 404 was for a generation of the object that is gone."""
        try:
            bucket = self._client_once().bucket(uri.bucket)
            if not bucket.exists(timeout=self.timeout_seconds, retry=self._retry):
                return f"bucket '{uri.bucket}' does not exist"
            if bucket.blob(uri.key).exists(timeout=self.timeout_seconds, retry=self._retry):
                return None
        except _SDK_ERRORS:  # e.g. allowed to read objects but not to look at the bucket
            return f"no object '{uri.key}' in bucket '{uri.bucket}', or no such bucket"
        return f"no object '{uri.key}' in bucket '{uri.bucket}'"


def _generation_match(precondition: Precondition | None) -> int | None:
    """``ifGenerationMatch`` for ``precondition``: 0 for an object that must not exist."""
    if precondition is None:
        return None
    if precondition.found is None:
        return 0
    if precondition.found.generation is None:
        raise ValueError(f"a Cloud Storage precondition needs a generation; got {precondition.found!r}")
    return precondition.found.generation


def _content_type(name: str) -> str:
    if name.lower().endswith(".jsonl"):  # batch outputs; mimetypes does not know the extension
        return "application/jsonl"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, auth_exceptions.TransportError) and exc.args and isinstance(exc.args[0], BaseException):
        exc = exc.args[0]
    return isinstance(exc, (requests.Timeout, TimeoutError))


def _cause(exc: BaseException | None) -> str:
    """A short, safe description of a failure: no host, path or credential from its text."""
    if exc is None:
        return "unknown"
    if isinstance(exc, auth_exceptions.TransportError) and exc.args and isinstance(exc.args[0], BaseException):
        exc = exc.args[0]
    if isinstance(exc, api_exceptions.GoogleAPICallError) and exc.code:
        try:
            return f"HTTP {exc.code} {http.HTTPStatus(exc.code).phrase}"
        except ValueError:
            return f"HTTP {exc.code}"
    if isinstance(exc, (requests.Timeout, TimeoutError)):
        return "no answer in time"
    if isinstance(exc, (requests.ConnectionError, ConnectionError)):
        return "could not connect to Cloud Storage"
    if isinstance(exc, DataCorruption):
        return "the downloaded bytes do not match the object's checksum"
    return type(exc).__name__


if TYPE_CHECKING:
    from core.storage import StoreFactory

    _checked: StoreFactory = GCSObjectStore  # mypy: this class is an ObjectStore, built from a timeout


class _Ranges(io.RawIOBase):
    """An object read as ranges of ``chunk_bytes``, with as few requests as the object needs.

    The SDK's BlobReader costs a small object three requests (a metadata reload to learn the
    generation, the data, and a read past the end that answers 416); this reads the first range
    when opened (so a missing object fails at once) and learns the generation from that answer's
    ``x-goog-generation`` header, which pins the later ranges to it. A range shorter than asked
    for is the last, so a small object is one request in all. ``start``/``limit``: only those
    bytes of the object (positions stay the object's own).
    """

    def __init__(self, blob: storage.Blob, chunk_bytes: int, timeout: float, retry: object,
                 start: int = 0, limit: int | None = None) -> None:
        super().__init__()
        self._blob = blob
        self._chunk_bytes = chunk_bytes
        self._timeout = timeout
        self._retry = retry
        self._position = start
        self._limit = limit
        self._end: int | None = limit  # known once a short range has been read
        self._buffer = b""
        self._buffer_start = start
        self._fetch(start)

    def _fetch(self, start: int) -> None:
        wanted = self._chunk_bytes if self._limit is None else min(self._chunk_bytes, self._limit - start)
        try:
            data = self._blob.download_as_bytes(
                start=start, end=start + wanted - 1, checksum=None,  # a range has no checksum
                timeout=self._timeout, retry=self._retry,
            )
        except api_exceptions.RequestRangeNotSatisfiable:  # started at or past the end
            data = b""
        if len(data) < wanted:
            self._end = start + len(data)
        self._buffer, self._buffer_start = data, start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        offset = self._position - self._buffer_start
        if not 0 <= offset < len(self._buffer):
            if self._end is not None and self._position >= self._end:
                return 0
            self._fetch(self._position)
            offset = 0
        count = min(len(buffer), len(self._buffer) - offset)
        buffer[:count] = memoryview(self._buffer)[offset:offset + count]
        self._position += count
        return count

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end: the object's size is not known")
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        self._position = offset
        return offset

    def tell(self) -> int:
        return self._position
