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
endpoint's address.
"""

from __future__ import annotations

import http.client
import io
import os
import threading
import weakref
from typing import BinaryIO

from core.errors import StorageAccessDenied, StorageError
from core.storage import s3_direct
from core.storage.s3_errors import answer_error, connection_failed, root_cause, timed_out, unreachable
from core.storage.uri import StorageURI


_sdk_loaded = False


def _import_sdk() -> None:
    """Import the SDK on first use of this scheme, not when the module is imported.

    store_for() imports this module only when a URI of its scheme is used; importing the SDK here
    as well keeps the house rule that nothing under core/ imports a cloud SDK at module level.
    """
    global _sdk_loaded, botocore, Config, BotoCoreError, ClientError, ConnectTimeoutError
    global CredentialRetrievalError, EndpointConnectionError, NoCredentialsError, ParamValidationError
    global PartialCredentialsError, ReadTimeoutError
    if _sdk_loaded:
        return
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        CredentialRetrievalError,
        EndpointConnectionError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
        ReadTimeoutError,
    )
    _sdk_loaded = True


MAX_PUT_BYTES = 5 * 2**30  # the largest object one PutObject may create

# Every store made in this process, so that a SnapStart restore can drop the connections and
# cached credentials of all of them (see drop_all_clients).
_all_stores: "weakref.WeakSet[S3ObjectStore]" = weakref.WeakSet()


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

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self.timeout_seconds = timeout_seconds
        self.attempts, self.per_attempt_seconds = retry_plan(timeout_seconds)
        self._config = None
        self._client = None
        self._lock = threading.Lock()
        _all_stores.add(self)

    # --- the ObjectStore interface ---------------------------------------------------------------

    def read_bytes(self, uri: StorageURI) -> bytes:
        body = self._get(uri)
        try:
            return body.read()
        except Exception as exc:
            raise self._body_error(body, exc, uri) from None
        finally:
            body.close()

    def open_read(self, uri: StorageURI) -> BinaryIO:
        """A buffered binary stream over the object; read errors are storage errors too."""
        return io.BufferedReader(_MappedBody(self._get(uri), self, uri), buffer_size=1024 * 1024)

    def write_bytes(self, uri: StorageURI, data: bytes) -> None:
        """One PutObject: S3 makes the object visible whole or not at all."""
        try:
            self.client().put_object(Bucket=uri.bucket, Key=uri.key, Body=data)
        except Exception as exc:
            raise self._mapped(exc, uri, "written") from None

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
            try:
                self.client().put_object(Bucket=uri.bucket, Key=uri.key, Body=body, ContentLength=size)
            except Exception as exc:
                raise self._mapped(exc, uri, "written") from None

    def delete(self, uri: StorageURI) -> None:
        """One DeleteObject. Deleting an object that does not exist succeeds, as in S3 itself."""
        try:
            self.client().delete_object(Bucket=uri.bucket, Key=uri.key)
        except Exception as exc:
            raise self._mapped(exc, uri, "deleted") from None

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

    def _get(self, uri: StorageURI):
        """The object's body: ``read(n)`` and ``close()``, errors mapped by ``self._body_error``."""
        target = s3_direct.direct_target(uri)
        if target is not None:
            try:
                return _DirectBody(
                    s3_direct.get_object(target, uri, self.timeout_seconds, self.attempts, self.per_attempt_seconds),
                    uri,
                    self.timeout_seconds,
                )
            except s3_direct.RedirectToBotocore:
                pass  # the bucket is in another region: botocore follows the redirect
        try:
            return self.client().get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
        except Exception as exc:
            raise self._mapped(exc, uri, "read") from None

    def _mapped(self, exc: Exception, uri: StorageURI, done: str) -> StorageError:
        return as_storage_error(exc, uri, done, self.timeout_seconds)

    def _body_error(self, body, exc: Exception, uri: StorageURI) -> StorageError:
        """The core error for a failure while reading an object's body, of either path."""
        if isinstance(body, _DirectBody):
            return body.error(exc)
        return self._mapped(exc, uri, "read")


class _DirectBody:
    """An s3_direct answer's body; read failures become core errors without botocore."""

    def __init__(self, response, uri: StorageURI, timeout_seconds: float) -> None:
        self._response = response
        self._uri = uri
        self._timeout_seconds = timeout_seconds

    def read(self, size: int = -1) -> bytes:
        return self._response.read(size)

    def close(self) -> None:
        self._response.close()

    def error(self, exc: Exception) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, TimeoutError):
            return timed_out(self._uri, "read", self._timeout_seconds, "read")
        if isinstance(exc, (OSError, http.client.HTTPException)):
            return connection_failed(self._uri, "read", exc)
        raise exc  # a bug, left to the caller's last guard


def as_storage_error(exc: Exception, uri: StorageURI, done: str, timeout_seconds: float) -> StorageError:
    """The core error for a botocore failure while ``uri`` was being ``done`` ("read", "written").

    The message names the location and the cause (the S3 error code, a timeout, missing
    credentials); anything else in botocore's own text (endpoint, signature details) is left out.
    Exceptions that are not storage failures are raised again unchanged.
    """
    _import_sdk()
    where = uri.display
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return answer_error(str(error.get("Code") or ""), status, uri, done, timeout_seconds)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return StorageAccessDenied(
            f"{where} cannot be {done}: no usable AWS credentials were found ({type(exc).__name__}); "
            "on Lambda they come from the function's role, elsewhere from AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or a profile",
            where,
        )
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        phase = "connect" if isinstance(exc, ConnectTimeoutError) else "read"
        return timed_out(uri, done, timeout_seconds, phase)
    if isinstance(exc, EndpointConnectionError):
        return unreachable(uri, done, root_cause(exc.kwargs.get("error") or exc))
    if isinstance(exc, ParamValidationError):
        return StorageError(f"{where} is not a valid S3 location: check the bucket name and key", where)
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{where} cannot be {done}: {type(exc).__name__}", where)
    if isinstance(exc, OSError):  # a socket error during the body
        return connection_failed(uri, done, exc)
    raise exc  # not a storage failure: a bug, left to the caller's last guard


class _MappedBody(io.RawIOBase):
    """A StreamingBody as a raw stream whose read errors are core storage errors."""

    def __init__(self, body, store: S3ObjectStore, uri: StorageURI) -> None:
        self._body = body
        self._store = store
        self._uri = uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._body.read(len(buffer))
        except Exception as exc:
            raise self._store._body_error(self._body, exc, self._uri) from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def drop_all_clients() -> None:
    """Drop the client of every S3 store in this process (SnapStart restore)."""
    for store in list(_all_stores):
        store.drop_client()


__all__ = ["S3ObjectStore", "as_storage_error", "drop_all_clients", "retry_plan"]
