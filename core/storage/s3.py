"""Amazon S3 as object storage (``s3://bucket/key``).

The client is botocore's S3 client, built the way ``boto3.client("s3")`` builds it (boto3's
``client()`` is botocore's ``create_client``), without importing boto3 itself: ``import boto3``
also imports s3transfer and its resource layer, about 40 ms of a cold start for nothing this store
uses. Everything else is botocore's own behaviour: credentials, region and endpoint come from the
standard chain, so ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (a local moto server, MinIO, ...)
work unchanged.

Reads (``read_bytes``, ``open_read``) go first to :mod:`core.storage.s3_direct`, a signed GET over
http.client that needs no botocore, whenever the environment holds everything it needs (on Lambda:
always); any other case, and every write, delete and ``stat`` (HeadObject), is botocore's.

Versions: a read of one version sends ``?versionId=`` (a versioned bucket) or ``If-Match`` on its
eTag; a conditional write sends ``If-Match`` / ``If-None-Match: *`` on PutObject or
CompleteMultipartUpload, a conditional delete ``If-Match`` on DeleteObject (S3 has taken them since
November 2024 and, for deletes in general purpose buckets, September 2025; botocore knows the
write parameters from 1.35.69 on). A file larger than ``part_bytes`` is a multipart upload: parts
read from the file one at a time (memory holds none of them), the object created only by
CompleteMultipartUpload; an upload that fails is aborted (and the buckets' lifecycle rules remove
any left after 7 days).

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
from collections.abc import Mapping
from contextlib import closing
from typing import TYPE_CHECKING, Any, BinaryIO

from core.errors import StorageError
from core.storage import DEFAULT_PART_BYTES, DEFAULT_TIMEOUT_SECONDS, s3_direct
from core.storage.parts import FileSlice, cut, part_size
from core.storage.s3_errors import botocore_error, direct_read_error
from core.storage.sdk_errors import ErrorMapper, mapped_errors, mapped_stream
from core.storage.uri import StorageURI
from core.storage.versions import ObjectVersion, Precondition

if TYPE_CHECKING:
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from botocore.response import StreamingBody


_sdk_loaded = False


def _import_sdk() -> None:
    """Import the SDK on first use of this scheme, not when the module is imported.

    store_for() imports this module only when a URI of its scheme is used; importing the SDK here
    as well keeps the house rule that nothing under core/ imports a cloud SDK at module level.
    """
    global _sdk_loaded, botocore, Config, ClientError
    if _sdk_loaded:
        return
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError
    _sdk_loaded = True


MAX_OBJECT_BYTES = 5 * 2**40  # the largest object S3 stores
MAX_PARTS = 10_000  # parts of one multipart upload
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
    versioned = True

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

    def open_read(self, uri: StorageURI, version: ObjectVersion | None = None) -> BinaryIO:
        """A buffered binary stream over the object (exactly ``version`` when it is pinned); read
        errors are storage errors too."""
        body, to_storage_error = self._get(uri, version)
        return mapped_stream(body, to_storage_error, uri, STREAM_BUFFER_BYTES)

    def stat(self, uri: StorageURI) -> ObjectVersion | None:
        """One HeadObject: the current version's versionId (versioned buckets) and eTag; None
        when the key has no object (or its current version is a delete marker)."""
        with mapped_errors(self._storage_error, uri, "read"):
            try:
                head = self.client().head_object(Bucket=uri.bucket, Key=uri.key)
            except ClientError as exc:
                if (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") == 404:
                    return None
                raise
        return ObjectVersion(version_id=head.get("VersionId"), etag=head.get("ETag"))

    def write_bytes(self, uri: StorageURI, data: bytes) -> None:
        """One PutObject: S3 makes the object visible whole or not at all."""
        with mapped_errors(self._storage_error, uri, "written"):
            self.client().put_object(Bucket=uri.bucket, Key=uri.key, Body=data)

    def write_file(
        self, uri: StorageURI, path: str, *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> ObjectVersion:
        """Up to ``part_bytes``, one PutObject whose body is the open file: botocore reads it in
        blocks (for the checksum, the signature and the upload), and a retried attempt rewinds it.
        Larger, a multipart upload of ``part_bytes`` parts (more where 10,000 would not hold the
        file), each streamed from its slice of the file. Either way memory stays flat whatever the
        size, and S3 makes the object visible whole or not at all, only if ``precondition`` holds.
        S3 stores at most 5 TiB in one object; a larger file is refused before anything is sent.
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
            if size > MAX_OBJECT_BYTES:
                raise StorageError(
                    f"{uri.display} cannot be written: the file is {size / 2**40:.1f} TiB and S3 stores at most "
                    "5 TiB in one object; expected a smaller output (split the input into several files)",
                    uri.display,
                )
            extra: dict[str, Any] = {"Metadata": dict(metadata)} if metadata else {}
            conditions = _write_conditions(precondition)
            if size <= part_bytes:
                with mapped_errors(self._storage_error, uri, "written"):
                    answer = self.client().put_object(
                        Bucket=uri.bucket, Key=uri.key, Body=body, ContentLength=size, **extra, **conditions
                    )
            else:  # each part reads its own slice of the file
                each = part_size(size, part_bytes, MAX_PARTS)
                answer = self._upload_in_parts(uri, path, size, each, extra, conditions)
        return ObjectVersion(version_id=answer.get("VersionId"), etag=answer.get("ETag"))

    def delete(self, uri: StorageURI, *, precondition: Precondition | None = None) -> None:
        """One DeleteObject. Deleting an object that does not exist succeeds, as in S3 itself;
        with a ``precondition`` (If-Match on its eTag) it is PreconditionFailed."""
        if precondition is not None and precondition.found is None:
            raise ValueError("a conditional delete needs the version it expects to remove")
        conditions = _write_conditions(precondition)
        with mapped_errors(self._storage_error, uri, "deleted"):
            self.client().delete_object(Bucket=uri.bucket, Key=uri.key, **conditions)

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

    def _get(
        self, uri: StorageURI, version: ObjectVersion | None = None
    ) -> tuple[s3_direct.ObjectResponse | StreamingBody, ErrorMapper]:
        """The object's body (of ``version`` when pinned), and the mapping function for failures
        while reading it (the body of a direct GET fails with http.client's exceptions, botocore's
        with its own)."""
        target = s3_direct.direct_target(uri)
        if target is not None:
            try:
                response = s3_direct.get_object(
                    target, uri, self.timeout_seconds, self.attempts, self.per_attempt_seconds, version
                )
                return response, self._direct_read_error
            except s3_direct.RedirectToBotocore:
                pass  # the bucket is in another region: botocore follows the redirect
        query, headers = s3_direct.read_conditions(version)
        conditions = {"VersionId": query["versionId"]} if query else {}
        if headers:
            conditions["IfMatch"] = headers["if-match"]
        with mapped_errors(self._storage_error, uri, "read"):
            return self.client().get_object(Bucket=uri.bucket, Key=uri.key, **conditions)["Body"], self._storage_error

    def _upload_in_parts(
        self, uri: StorageURI, path: str, size: int, each: int, extra: dict[str, Any], conditions: dict[str, str]
    ) -> dict[str, Any]:
        """A multipart upload of the file in parts of ``each`` bytes; CompleteMultipartUpload
        carries the conditions. Any failure aborts the upload, so no part is left behind."""
        client = self.client()
        with mapped_errors(self._storage_error, uri, "written"):
            upload_id = client.create_multipart_upload(
                Bucket=uri.bucket, Key=uri.key, ChecksumAlgorithm="CRC32", **extra
            )["UploadId"]
        try:
            parts = []
            for part in cut(size, each):
                with FileSlice(path, part.offset, part.length) as body, \
                        mapped_errors(self._storage_error, uri, "written"):
                    answer = client.upload_part(
                        Bucket=uri.bucket, Key=uri.key, UploadId=upload_id, PartNumber=part.number, Body=body,
                        ContentLength=part.length, ChecksumAlgorithm="CRC32",
                    )
                parts.append({"PartNumber": part.number, "ETag": answer["ETag"],
                              **({"ChecksumCRC32": answer["ChecksumCRC32"]} if answer.get("ChecksumCRC32") else {})})
            with mapped_errors(self._storage_error, uri, "written"):
                return client.complete_multipart_upload(
                    Bucket=uri.bucket, Key=uri.key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **conditions
                )
        except BaseException:
            try:
                client.abort_multipart_upload(Bucket=uri.bucket, Key=uri.key, UploadId=upload_id)
            except Exception:  # the failure that got here is the one to report; lifecycle rules clean up
                pass
            raise

    def _storage_error(self, exc: Exception, uri: StorageURI, done: str) -> StorageError | None:
        """This store's mapping function for botocore's failures."""
        return botocore_error(exc, uri, done, self.timeout_seconds)

    def _direct_read_error(self, exc: Exception, uri: StorageURI, done: str) -> StorageError | None:
        return direct_read_error(exc, uri, done, self.timeout_seconds)


def _write_conditions(precondition: Precondition | None) -> dict[str, str]:
    """PutObject / CompleteMultipartUpload / DeleteObject parameters for ``precondition``."""
    if precondition is None:
        return {}
    if precondition.found is None:
        return {"IfNoneMatch": "*"}
    etag = precondition.found.quoted_etag
    if etag is None:
        raise ValueError(f"an S3 precondition needs the eTag of the version it expects; got {precondition.found!r}")
    return {"IfMatch": etag}


def drop_all_clients() -> None:
    """Drop the client of every S3 store in this process (SnapStart restore)."""
    for store in list(_all_stores):
        store.drop_client()


__all__ = ["S3ObjectStore", "drop_all_clients", "retry_plan"]


if TYPE_CHECKING:
    from core.storage import StoreFactory

    _checked: StoreFactory = S3ObjectStore  # mypy: this class is an ObjectStore, built from a timeout
