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

``compose`` (a batch run's parts merged into its outputs) is a multipart upload whose parts S3
copies from the sources itself (UploadPartCopy); only pieces under S3's 5 MiB part minimum are
downloaded and uploaded again (see its docstring).

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

import io
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any, BinaryIO

from core.errors import ObjectNotFound, StorageError
from core.storage import DEFAULT_PART_BYTES, DEFAULT_TIMEOUT_SECONDS, s3_direct
from core.storage.parts import MIN_PART_BYTES, FileSlice, cut, part_size
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
MAX_COPY_PART_BYTES = 5 * 2**30  # the largest part, also of UploadPartCopy
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

    def open_read(
        self, uri: StorageURI, version: ObjectVersion | None = None, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        """A buffered binary stream over the object (exactly ``version`` when it is pinned; bytes
        ``start`` to ``end`` only, by a Range header, when given); read errors are storage errors too."""
        if end is not None and end <= start:
            return io.BytesIO()  # an empty range: S3 would answer 416
        byte_range = None if start == 0 and end is None else f"bytes={start}-{'' if end is None else end - 1}"
        body, to_storage_error = self._get(uri, version, byte_range)
        return mapped_stream(body, to_storage_error, uri, STREAM_BUFFER_BYTES)

    def stat(self, uri: StorageURI) -> ObjectVersion | None:
        """One HeadObject: the current version's versionId (versioned buckets), eTag and size;
        None when the key has no object (or its current version is a delete marker)."""
        with mapped_errors(self._storage_error, uri, "read"):
            try:
                head = self.client().head_object(Bucket=uri.bucket, Key=uri.key)
            except ClientError as exc:
                if (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") == 404:
                    return None
                raise
        return ObjectVersion(version_id=head.get("VersionId"), etag=head.get("ETag"), size=head.get("ContentLength"))

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

    def compose(
        self, uri: StorageURI, sources: Sequence[StorageURI], *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> ObjectVersion:
        """A multipart upload whose parts are copied from the sources by S3 itself (UploadPartCopy,
        each held to the eTag its HeadObject found), committed by CompleteMultipartUpload on
        ``precondition``.

        Every part but the last must be 5 MiB or more, and sources may be smaller. So a source
        under 5 MiB is downloaded and gathered with its neighbours into a part of its own; after
        such a piece, the head of the next source tops it up to 5 MiB; the rest of a source, when
        it is 5 MiB or more, is copied server-side (in ranges of at most 5 GiB, S3's largest part),
        else downloaded too. So under 10 MiB of each source passes through this process, and
        memory holds under 10 MiB; sources of less than 5 MiB in all are downloaded and written
        with one PutObject. ``part_bytes`` is not used: the parts follow the sources.
        """
        found = []
        for source in sources:
            if source.scheme != "s3":
                raise ValueError(f"{source.display} cannot be composed into {uri.display}: not an S3 object")
            head = self.stat(source)
            if head is None:
                raise ObjectNotFound(f"{source.display} does not exist (it was to be composed into {uri.display})",
                                     source.display)
            found.append((source, head))
        extra: dict[str, Any] = {"Metadata": dict(metadata)} if metadata else {}
        conditions = _write_conditions(precondition)
        total = sum(head.size or 0 for _, head in found)
        if total < MIN_PART_BYTES:  # one small object: download, one PutObject
            data = b"".join(self._range(source, head, 0, head.size or 0) for source, head in found)
            with mapped_errors(self._storage_error, uri, "written"):
                answer = self.client().put_object(Bucket=uri.bucket, Key=uri.key, Body=data, **extra, **conditions)
            return ObjectVersion(version_id=answer.get("VersionId"), etag=answer.get("ETag"))
        client = self.client()
        with mapped_errors(self._storage_error, uri, "written"):
            upload_id = client.create_multipart_upload(
                Bucket=uri.bucket, Key=uri.key, ChecksumAlgorithm="CRC32", **extra
            )["UploadId"]
        try:
            parts = _ComposedParts(self, uri, upload_id)
            for source, head in found:
                size, at = head.size or 0, 0
                if parts.pending:  # a small piece waits: top it up to S3's smallest part from this source
                    at = min(size, MIN_PART_BYTES - len(parts.pending))
                    parts.add_bytes(self._range(source, head, 0, at))
                rest = size - at
                if rest >= MIN_PART_BYTES:
                    count = -(-rest // MAX_COPY_PART_BYTES)
                    each = -(-rest // count)
                    for offset in range(at, size, each):
                        parts.copy(source, head, offset, min(size, offset + each))
                elif rest:
                    parts.add_bytes(self._range(source, head, at, size))
            parts.flush()
            if len(parts.done) > MAX_PARTS:
                raise StorageError(
                    f"{uri.display} cannot be written: {len(parts.done)} parts, more than the {MAX_PARTS} of one "
                    "S3 upload; expected fewer, larger sources", uri.display,
                )
            with mapped_errors(self._storage_error, uri, "written"):
                answer = client.complete_multipart_upload(
                    Bucket=uri.bucket, Key=uri.key, UploadId=upload_id, MultipartUpload={"Parts": parts.done},
                    **conditions,
                )
        except BaseException:
            try:
                client.abort_multipart_upload(Bucket=uri.bucket, Key=uri.key, UploadId=upload_id)
            except Exception:  # the failure that got here is the one to report; lifecycle rules clean up
                pass
            raise
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
        self, uri: StorageURI, version: ObjectVersion | None = None, byte_range: str | None = None
    ) -> tuple[s3_direct.ObjectResponse | StreamingBody, ErrorMapper]:
        """The object's body (of ``version`` when pinned; ``byte_range`` only, a Range header's
        value, when given), and the mapping function for failures while reading it (the body of a
        direct GET fails with http.client's exceptions, botocore's with its own)."""
        target = s3_direct.direct_target(uri)
        if target is not None:
            try:
                response = s3_direct.get_object(
                    target, uri, self.timeout_seconds, self.attempts, self.per_attempt_seconds, version, byte_range
                )
                return response, self._direct_read_error
            except s3_direct.RedirectToBotocore:
                pass  # the bucket is in another region: botocore follows the redirect
        query, headers = s3_direct.read_conditions(version)
        conditions = {"VersionId": query["versionId"]} if query else {}
        if headers:
            conditions["IfMatch"] = headers["if-match"]
        if byte_range:
            conditions["Range"] = byte_range
        with mapped_errors(self._storage_error, uri, "read"):
            return self.client().get_object(Bucket=uri.bucket, Key=uri.key, **conditions)["Body"], self._storage_error

    def _range(self, source: StorageURI, head: ObjectVersion, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` of the version of ``source`` that ``head`` found (botocore;
        a composing run has the client already)."""
        if end <= start:
            return b""
        with mapped_errors(self._storage_error, source, "read"):
            answer = self.client().get_object(
                Bucket=source.bucket, Key=source.key, Range=f"bytes={start}-{end - 1}", IfMatch=head.quoted_etag,
            )
            return answer["Body"].read()

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


class _ComposedParts:
    """The parts of one composing multipart upload, in order: copied ranges, and small pieces
    gathered in memory (``pending``) until they make a part of S3's smallest size."""

    def __init__(self, store: S3ObjectStore, uri: StorageURI, upload_id: str) -> None:
        self._store = store
        self._uri = uri
        self._upload_id = upload_id
        self.pending = bytearray()
        self.done: list[dict[str, Any]] = []

    def add_bytes(self, data: bytes) -> None:
        self.pending += data
        if len(self.pending) >= MIN_PART_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        with mapped_errors(self._store._storage_error, self._uri, "written"):
            answer = self._store.client().upload_part(
                Bucket=self._uri.bucket, Key=self._uri.key, UploadId=self._upload_id, PartNumber=len(self.done) + 1,
                Body=bytes(self.pending), ChecksumAlgorithm="CRC32",
            )
        self._record(answer)
        self.pending = bytearray()

    def copy(self, source: StorageURI, head: ObjectVersion, start: int, end: int) -> None:
        self.flush()
        with mapped_errors(self._store._storage_error, self._uri, "written"):
            answer = self._store.client().upload_part_copy(
                Bucket=self._uri.bucket, Key=self._uri.key, UploadId=self._upload_id, PartNumber=len(self.done) + 1,
                CopySource={"Bucket": source.bucket, "Key": source.key}, CopySourceRange=f"bytes={start}-{end - 1}",
                CopySourceIfMatch=head.quoted_etag,
            )
        self._record(answer.get("CopyPartResult") or {})

    def _record(self, answer: dict[str, Any]) -> None:
        part: dict[str, Any] = {"PartNumber": len(self.done) + 1, "ETag": answer["ETag"]}
        if answer.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = answer["ChecksumCRC32"]
        self.done.append(part)


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
