"""Amazon S3 as object storage (``s3://bucket/key``).

The client is botocore's S3 client, built the way ``boto3.client("s3")`` builds it (boto3's
``client()`` is botocore's ``create_client``), without importing boto3 itself: ``import boto3``
also imports s3transfer and its resource layer, about 40 ms of a cold start for nothing this store
uses. Everything else is botocore's own behaviour: credentials, region and endpoint come from the
standard chain, so ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (a local moto server, MinIO, ...)
work unchanged.

Reads (``read_bytes``, ``open_read``) go first to :mod:`core.storage.s3_direct`, a signed GET over
http.client that needs no botocore, whenever the environment holds everything it needs (on Lambda:
always); any other case, and every write and delete, is botocore's.

Timeouts and retries are set here on purpose, so one call gives up within about
``timeout_seconds`` instead of botocore's default of 60 s per read and up to 5 attempts::

    timeout_seconds   attempts   connect / read timeout per attempt
    10 (default)      3          (10 - 1 - 2) / 3  = 2.33 s
    3                 2          (3 - 1) / 2       = 1.0 s
    1                 1          1.0 s

(the 1 s and 2 s are the longest waits botocore's backoff takes before a second and a third
attempt). The read timeout bounds each wait for bytes, so a large model that keeps arriving is
never cut off, while a server that stops answering is given up on.

Every failure becomes a :mod:`core.errors` storage error whose message names ``uri.display`` and
the cause (the S3 error code, a timeout, no credentials), never a credential, a signature or the
endpoint's address: :mod:`core.storage.s3_errors` maps each client's failures.
"""

from __future__ import annotations

import os
import threading
import weakref
from contextlib import closing
from typing import TYPE_CHECKING, BinaryIO

from core.errors import StorageError
from core.storage import DEFAULT_TIMEOUT_SECONDS, s3_direct
from core.storage.s3_errors import botocore_error, direct_read_error
from core.storage.sdk_errors import ErrorMapper, mapped_errors, mapped_stream
from core.storage.uri import StorageURI

if TYPE_CHECKING:
    import botocore.session
    from botocore.config import Config
    from botocore.response import StreamingBody


_sdk_loaded = False


def _import_sdk() -> None:
    """Import the SDK on first use of this scheme, not when the module is imported.

    store_for() imports this module only when a URI of its scheme is used; importing the SDK here
    as well keeps the house rule that nothing under core/ imports a cloud SDK at module level.
    """
    global _sdk_loaded, botocore, Config
    if _sdk_loaded:
        return
    import botocore.session
    from botocore.config import Config
    _sdk_loaded = True


MAX_PUT_BYTES = 5 * 2**30  # the largest object one PutObject may create
STREAM_BUFFER_BYTES = 1024 * 1024  # open_read's buffer: one GET body read per MiB

# Every store made in this process, so that a SnapStart restore can drop the connections and
# cached credentials of all of them (see drop_all_clients).
_all_stores: weakref.WeakSet[S3ObjectStore] = weakref.WeakSet()


def retry_plan(timeout_seconds: float) -> tuple[int, float]:
    """(attempts, per-attempt connect/read timeout) so that all attempts fit in ``timeout_seconds``.

    The longest backoff botocore waits before attempt n+1 is 2**(n-1) s; that is reserved from the
    budget, and an attempt gets at least 1 s or there is no retry at all.
    """
    for attempts in (3, 2):
        backoff = float(2 ** (attempts - 1) - 1)  # 1 s before the 2nd attempt, 2 s before the 3rd
        per_attempt = (timeout_seconds - backoff) / attempts
        if per_attempt >= 1.0:
            return attempts, per_attempt
    return 1, timeout_seconds


class S3ObjectStore:
    """S3 behind core's ObjectStore interface. Thread-safe; the client is built once, on first use."""

    scheme = "s3"

    def __init__(self, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.timeout_seconds = timeout_seconds
        self.attempts, self.per_attempt_seconds = retry_plan(timeout_seconds)
        self._config = None
        self._client = None
        self._lock = threading.Lock()
        _all_stores.add(self)

    # --- the ObjectStore interface ---------------------------------------------------------------

    def read_bytes(self, uri: StorageURI) -> bytes:
        body, to_storage_error = self._get(uri)
        with closing(body), mapped_errors(to_storage_error, uri, "read"):
            return body.read()

    def open_read(self, uri: StorageURI) -> BinaryIO:
        """A buffered binary stream over the object; read errors are storage errors too."""
        body, to_storage_error = self._get(uri)
        return mapped_stream(body, to_storage_error, uri, STREAM_BUFFER_BYTES)

    def write_bytes(self, uri: StorageURI, data: bytes) -> None:
        """One PutObject: S3 makes the object visible whole or not at all."""
        with mapped_errors(self._storage_error, uri, "written"):
            self.client().put_object(Bucket=uri.bucket, Key=uri.key, Body=data)

    def write_file(self, uri: StorageURI, path: str) -> None:
        """One PutObject whose body is the open file: botocore reads it in blocks (for the
        checksum, the signature and the upload), so memory stays flat whatever the size, and S3
        makes the object visible whole or not at all. A retried attempt rewinds the file.

        S3 takes at most 5 GiB in one PutObject; a larger file is refused before anything is
        sent (about 50 million rows of predictions: split the input).
        """
        try:
            body = open(path, "rb")
            size = os.fstat(body.fileno()).st_size
        except OSError as exc:
            raise StorageError(
                f"{uri.display} cannot be written: the local file to upload cannot be read ({exc.strerror})",
                uri.display,
            ) from None
        with body:
            if size > MAX_PUT_BYTES:
                raise StorageError(
                    f"{uri.display} cannot be written: the file is {size / 2**30:.1f} GiB and one S3 PutObject "
                    "takes at most 5 GiB; expected a smaller output (split the input into several files)",
                    uri.display,
                )
            with mapped_errors(self._storage_error, uri, "written"):
                self.client().put_object(Bucket=uri.bucket, Key=uri.key, Body=body, ContentLength=size)

    def delete(self, uri: StorageURI) -> None:
        """One DeleteObject. Deleting an object that does not exist succeeds, as in S3 itself."""
        with mapped_errors(self._storage_error, uri, "deleted"):
            self.client().delete_object(Bucket=uri.bucket, Key=uri.key)

    # --- the client --------------------------------------------------------------------------------

    @property
    def config(self):
        """botocore's Config for this store's timeout (botocore is imported on first use)."""
        if self._config is None:
            _import_sdk()
            self._config = Config(
                connect_timeout=self.per_attempt_seconds,
                read_timeout=self.per_attempt_seconds,
                retries={"total_max_attempts": self.attempts, "mode": "standard"},
                user_agent_extra="serverless-ml",
            )
        return self._config

    def client(self):
        """The botocore S3 client, created on first call (once, whatever the number of threads)."""
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    _import_sdk()
                    # a session of its own: botocore sessions are not safe to share while building
                    client = botocore.session.Session().create_client("s3", config=self.config)
                    self._client = client
        return client

    def drop_client(self) -> None:
        """Close the client's connections and forget it (and its cached credentials); the next
        call builds a new one. For SnapStart: sockets and credentials do not survive a restore."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing stale sockets must not fail a restore
                pass

    # --- internals -----------------------------------------------------------------------------------

    def _get(self, uri: StorageURI) -> tuple[s3_direct.ObjectResponse | StreamingBody, ErrorMapper]:
        """The object's body, and the mapping function for failures while reading it (the body of
        a direct GET fails with http.client's exceptions, botocore's with its own)."""
        target = s3_direct.direct_target(uri)
        if target is not None:
            try:
                response = s3_direct.get_object(
                    target, uri, self.timeout_seconds, self.attempts, self.per_attempt_seconds
                )
                return response, self._direct_read_error
            except s3_direct.RedirectToBotocore:
                pass  # the bucket is in another region: botocore follows the redirect
        with mapped_errors(self._storage_error, uri, "read"):
            return self.client().get_object(Bucket=uri.bucket, Key=uri.key)["Body"], self._storage_error

    def _storage_error(self, exc: Exception, uri: StorageURI, done: str) -> StorageError | None:
        """This store's mapping function for botocore's failures."""
        return botocore_error(exc, uri, done, self.timeout_seconds)

    def _direct_read_error(self, exc: Exception, uri: StorageURI, done: str) -> StorageError | None:
        return direct_read_error(exc, uri, done, self.timeout_seconds)


def drop_all_clients() -> None:
    """Drop the client of every S3 store in this process (SnapStart restore)."""
    for store in list(_all_stores):
        store.drop_client()


__all__ = ["S3ObjectStore", "drop_all_clients", "retry_plan"]


if TYPE_CHECKING:
    from core.storage import StoreFactory

    _checked: StoreFactory = S3ObjectStore  # mypy: this class is an ObjectStore, built from a timeout
