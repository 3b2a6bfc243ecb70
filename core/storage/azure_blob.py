"""Azure Blob Storage as object storage (``az://container/blob``), through azure-storage-blob.

The account comes from the environment, read when the store is built:

- ``AZURE_STORAGE_CONNECTION_STRING``: used as is (account key, SAS or Azurite's
  ``devstoreaccount1``); it wins when both are set;
- ``AZURE_STORAGE_ACCOUNT_URL`` (``https://<account>.blob.core.windows.net``): signed in with
  azure-identity's ``DefaultAzureCredential`` (a managed identity on Azure, ``az login`` on a
  laptop); azure-identity is imported only in this case. The app's system-assigned identity is
  used unless ``AZURE_CLIENT_ID`` names a user-assigned one (DefaultAzureCredential reads it;
  infra/azure sets it).

The SDK's default retry policy waits 15 s, 18 s, 24 s... between tries, so a call to a storage
service that is down hangs for about 84 s. Here every call gives up within about
``timeout_seconds``: one retry after a short pause (a stale pooled connection after a restart of
the server is the common transient failure), and connect/read timeouts that share the rest of the
budget. Token requests of ``DefaultAzureCredential`` are outside this budget.

Versions are eTags (opaque, not ordered): a read of one version sends ``If-Match`` (the SDK holds
the later ranges of a download to the eTag of the first), a conditional write ``If-Match`` or
``If-None-Match: *`` on the request that creates the blob (Put Blob, or Put Block List after the
blocks were staged), a conditional delete ``If-Match``. A file larger than ``part_bytes`` is staged
as blocks of that size and committed by one Put Block List; block ids carry a token of the upload,
so two uploads of the same blob at once never mix their blocks. Metadata names are C# identifiers
here: ``input-etag`` is stored as ``input_etag``.

``compose`` (a fanned-out batch run's parts merged into its outputs) stages each source as blocks
the service copies itself (Put Block From URL, the source read through a SAS this store signs,
or the caller's bearer token), then commits them with one Put Block List. Azurite implements Put
Block From URL from 3.37.0 on (package.json pins it).

Errors become :mod:`core.errors` storage errors whose messages name ``uri.display`` and the cause,
never an SDK message: those can carry request URLs with SAS tokens.
"""

from __future__ import annotations

import datetime
import io
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from core.errors import (
    ObjectNotFound,
    ObjectSuperseded,
    PreconditionFailed,
    StorageAccessDenied,
    StorageError,
    StorageTimeout,
)
from core.storage import DEFAULT_PART_BYTES, DEFAULT_TIMEOUT_SECONDS
from core.storage.parts import MAX_PART_BYTES, FileSlice, cut, part_size
from core.storage.sdk_errors import mapped_errors, mapped_stream
from core.storage.uri import StorageURI
from core.storage.versions import ObjectVersion, Precondition

if TYPE_CHECKING:
    # The SDK's names, bound by _import_sdk() on first use; declared here for the type checker only.
    from azure.core import MatchConditions
    from azure.core import exceptions as azure_errors
    from azure.storage.blob import BlobBlock, BlobServiceClient, LinearRetry

_sdk_loaded = False


def _import_sdk() -> None:
    """Import the SDK on first use of this scheme, not when the module is imported.

    store_for() imports this module only when a URI of its scheme is used; importing the SDK here
    as well keeps the house rule that nothing under core/ imports a cloud SDK at module level.
    """
    global _sdk_loaded, azure_errors, MatchConditions, BlobBlock, BlobServiceClient, LinearRetry
    if _sdk_loaded:
        return
    from azure.core import MatchConditions
    from azure.core import exceptions as azure_errors
    from azure.storage.blob import BlobBlock, BlobServiceClient, LinearRetry
    _sdk_loaded = True


CONNECTION_STRING_VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_URL_VARIABLE = "AZURE_STORAGE_ACCOUNT_URL"

# Tries per call: the first and one retry.
_ATTEMPTS = 2
# Models are read whole at start; a few parallel range reads speed up large ones.
_READ_CONCURRENCY = 4
# write_bytes: uploads larger than this go as blocks of _BLOCK_BYTES (the SDK's defaults: one
# request up to 64 MiB, blocks of 4 MiB). write_file cuts its own blocks, of part_bytes.
_SINGLE_PUT_BYTES = 8 * 1024 * 1024
_BLOCK_BYTES = 4 * 1024 * 1024
_MAX_BLOCKS = 50_000  # blocks in one block blob


class AzureBlobObjectStore:
    """``az://container/blob`` objects. Thread-safe; the client is built on first use, once.

    Example (``AZURE_STORAGE_CONNECTION_STRING`` set)::

        store = AzureBlobObjectStore(10.0)
        model_bytes = store.read_bytes(parse_uri("az://models/iris.joblib"))
    """

    scheme = "az"
    versioned = True

    def __init__(self, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, *,
                 environ: Mapping[str, str] | None = None) -> None:
        _import_sdk()
        env = os.environ if environ is None else environ
        self.timeout_seconds = timeout_seconds
        self._connection_string = (env.get(CONNECTION_STRING_VARIABLE) or "").strip()
        self._account_url = (env.get(ACCOUNT_URL_VARIABLE) or "").strip()
        self._client: BlobServiceClient | None = None
        self._client_lock = threading.Lock()
        # one pause between the two tries, the rest of the budget split over them
        self._retry_pause = min(0.5, timeout_seconds * 0.05)
        per_attempt = (timeout_seconds - self._retry_pause) / _ATTEMPTS
        self._connect_timeout = per_attempt / 2
        self._read_timeout = per_attempt / 2

    # --- the ObjectStore interface --------------------------------------------------------------

    def read_bytes(self, uri: StorageURI) -> bytes:
        with mapped_errors(self._storage_error, uri, "read"):
            return self._blob(uri).download_blob(max_concurrency=_READ_CONCURRENCY).readall()

    def open_read(
        self, uri: StorageURI, version: ObjectVersion | None = None, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        """A buffered binary stream over the blob (``version`` by If-Match on its eTag; bytes
        ``start`` to ``end`` only, when given), read chunk by chunk as it is consumed.

        The first chunk is fetched here, so a missing blob fails now, not at the first read.
        """
        if end is not None and end <= start:
            return io.BytesIO()  # an empty range: nothing to ask for
        etag = version.quoted_etag if version is not None else None
        conditions: dict[str, Any] = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        if start or end is not None:
            conditions.update(offset=start, length=None if end is None else end - start)
        with mapped_errors(self._storage_error, uri, "read"):
            downloader = self._blob(uri).download_blob(**conditions)
        return mapped_stream(downloader, self._storage_error, uri)

    def stat(self, uri: StorageURI) -> ObjectVersion | None:
        """The blob's current eTag; None when there is no such blob (or container)."""
        with mapped_errors(self._storage_error, uri, "read"):
            try:
                properties = self._blob(uri).get_blob_properties()
            except azure_errors.ResourceNotFoundError:
                return None
        return ObjectVersion(etag=properties.etag, size=properties.size)

    def write_bytes(self, uri: StorageURI, data: bytes) -> None:
        """Write atomically: a block blob is replaced whole when the upload commits, so readers
        see the old blob or the new one, never a part."""
        with mapped_errors(self._storage_error, uri, "written"):
            self._blob(uri).upload_blob(data, overwrite=True)

    def write_file(
        self, uri: StorageURI, path: str, *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> ObjectVersion:
        """Upload the local file at ``path``: up to ``part_bytes`` (and ``_SINGLE_PUT_BYTES``) in
        one Put Blob, larger files staged as blocks of ``part_bytes`` (more where 50,000 would not
        hold the file), each read from its slice of the file, and committed by one Put Block List.
        A block blob is replaced only by that last request, and only if ``precondition`` holds,
        so readers see the old blob or the whole new one. ``timeout_seconds`` bounds each request,
        not the whole upload."""
        blob = self._blob(uri)
        names = {name.replace("-", "_"): value for name, value in (metadata or {}).items()}
        conditions = _write_conditions(precondition)
        size = os.stat(path).st_size  # a missing local file is our OSError, not a storage error
        if size <= min(part_bytes, _SINGLE_PUT_BYTES):
            with open(path, "rb") as data, mapped_errors(self._storage_error, uri, "written"):
                answer = blob.upload_blob(data, length=size, overwrite=True, metadata=names or None, **conditions)
            return ObjectVersion(etag=answer["etag"])
        token = uuid.uuid4().hex  # this upload's blocks; ids of one blob must all have one length
        blocks = []
        for part in cut(size, part_size(size, part_bytes, _MAX_BLOCKS)):
            block_id = f"{token}{part.number:06d}"
            with FileSlice(path, part.offset, part.length) as data, mapped_errors(self._storage_error, uri, "written"):
                blob.stage_block(block_id, data, length=part.length)
            blocks.append(BlobBlock(block_id=block_id))
        with mapped_errors(self._storage_error, uri, "written"):
            answer = blob.commit_block_list(blocks, metadata=names or None, **conditions)
        return ObjectVersion(etag=answer["etag"])

    def compose(
        self, uri: StorageURI, sources: Sequence[StorageURI], *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> ObjectVersion:
        """Blocks staged from the sources by the service itself (Put Block From URL, a block per
        source, or per 4000 MiB of one: Azure's largest block), committed by one Put Block List
        with ``metadata`` on ``precondition``. The service reads each source through a URL this
        store signs: a read-only SAS of an hour with an account key, else the caller's own token
        (``x-ms-copy-source-authorization``), else the client's URL as it is (a SAS connection
        string). No byte passes through this process; ``part_bytes`` is not used."""
        blob = self._blob(uri)
        names = {name.replace("-", "_"): value for name, value in (metadata or {}).items()}
        conditions = _write_conditions(precondition)
        token = uuid.uuid4().hex
        blocks: list[BlobBlock] = []
        for source in sources:
            if source.scheme != "az":
                raise ValueError(f"{source.display} cannot be composed into {uri.display}: not an Azure blob")
            found = self.stat(source)
            if found is None:
                raise ObjectNotFound(f"{source.display} does not exist (it was to be composed into {uri.display})",
                                     source.display)
            url, authorization = self._source_url(source)
            for offset in range(0, found.size or 0, MAX_PART_BYTES):
                block_id = f"{token}{len(blocks) + 1:06d}"
                with mapped_errors(self._storage_error, uri, "written"):
                    blob.stage_block_from_url(
                        block_id, url, source_offset=offset, source_length=min(MAX_PART_BYTES, (found.size or 0) - offset),
                        **authorization,
                    )
                blocks.append(BlobBlock(block_id=block_id))
        if len(blocks) > _MAX_BLOCKS:
            raise StorageError(f"{uri.display} cannot be written: {len(blocks)} blocks, more than the {_MAX_BLOCKS} "
                               "of one blob; expected fewer sources", uri.display)
        with mapped_errors(self._storage_error, uri, "written"):
            if not blocks:  # every source empty: an empty blob
                answer = blob.upload_blob(b"", overwrite=True, metadata=names or None, **conditions)
            else:
                answer = blob.commit_block_list(blocks, metadata=names or None, **conditions)
        return ObjectVersion(etag=answer["etag"])

    def _source_url(self, source: StorageURI) -> tuple[str, dict[str, str]]:
        """(URL, extra arguments) by which the service may read ``source`` for Put Block From URL."""
        client = self._blob(source)
        credential = self._service_client(source).credential
        account_key = getattr(credential, "account_key", None)
        if account_key:
            from azure.storage.blob import BlobSasPermissions, generate_blob_sas

            sas = generate_blob_sas(
                credential.account_name, source.bucket, source.key, account_key=account_key,
                permission=BlobSasPermissions(read=True),
                expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
            )
            return f"{client.url}?{sas}", {}
        if hasattr(credential, "get_token"):
            with mapped_errors(self._storage_error, source, "read"):
                bearer = credential.get_token("https://storage.azure.com/.default").token
            return client.url, {"source_authorization": f"Bearer {bearer}"}
        return client.url, {}

    def delete(self, uri: StorageURI, *, precondition: Precondition | None = None) -> None:
        """Delete the blob (and its snapshots); one already gone is not an error, a missing
        container is. With a ``precondition`` (If-Match on its eTag), a blob that is not that
        version, or is gone, is PreconditionFailed."""
        if precondition is not None and precondition.found is None:
            raise ValueError("a conditional delete needs the version it expects to remove")
        with mapped_errors(self._storage_error, uri, "deleted"):
            try:
                self._blob(uri).delete_blob(delete_snapshots="include", **_write_conditions(precondition))
            except azure_errors.ResourceNotFoundError as exc:
                raw_code = getattr(exc, "error_code", None)
                if str(getattr(raw_code, "value", raw_code) or "") == "ContainerNotFound":
                    raise
                if precondition is not None:
                    raise PreconditionFailed(
                        f"{uri.display} cannot be deleted: it was removed since it was found; another writer "
                        "came first", uri.display,
                    ) from None

    def _storage_error(self, exc: Exception, uri: StorageURI, done: str) -> StorageError:
        """This store's mapping function for the SDK's failures."""
        return azure_error(exc, uri, done, self.timeout_seconds)

    # --- the client -----------------------------------------------------------------------------

    def _blob(self, uri: StorageURI):
        return self._service_client(uri).get_blob_client(uri.bucket, uri.key)

    def _service_client(self, uri: StorageURI) -> BlobServiceClient:
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    client = self._client = self._build_client(uri)
        return client

    def _build_client(self, uri: StorageURI) -> BlobServiceClient:
        options: dict[str, Any] = dict(
            # backoff is annotated int but is a time.sleep() argument: a fraction of a second works
            retry_policy=LinearRetry(
                backoff=self._retry_pause, retry_total=_ATTEMPTS - 1, random_jitter_range=0  # type: ignore[arg-type]
            ),
            connection_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            max_single_put_size=_SINGLE_PUT_BYTES,
            max_block_size=_BLOCK_BYTES,
        )
        if self._connection_string:
            try:
                return BlobServiceClient.from_connection_string(self._connection_string, **options)
            except ValueError:
                # the SDK's message may quote the string, which holds the account key
                raise StorageError(
                    f"{uri.display} cannot be reached: {CONNECTION_STRING_VARIABLE} is not a valid "
                    "connection string; expected 'DefaultEndpointsProtocol=https;AccountName=...;"
                    "AccountKey=...;EndpointSuffix=core.windows.net' or a SAS connection string",
                    uri.display,
                ) from None
        if self._account_url:
            if not self._account_url.lower().startswith("https://"):
                # the SDK sends a bearer token over TLS only
                raise StorageError(
                    f"{uri.display} cannot be reached: {ACCOUNT_URL_VARIABLE} is not an https:// URL; "
                    "expected https://<account>.blob.core.windows.net",
                    uri.display,
                )
            from azure.identity import DefaultAzureCredential  # only this way of signing in needs it

            try:
                credential = DefaultAzureCredential()
            except ValueError as exc:  # a wrong AZURE_TOKEN_CREDENTIALS; the message names it
                raise StorageAccessDenied(
                    f"{uri.display} cannot be read: the Azure credential cannot be set up: {exc}", uri.display
                ) from None
            return BlobServiceClient(self._account_url, credential=credential, **options)
        raise StorageError(
            f"{uri.display} cannot be reached: no Azure Storage account is configured; set "
            f"{CONNECTION_STRING_VARIABLE} or {ACCOUNT_URL_VARIABLE}",
            uri.display,
        )


def azure_error(exc: Exception, uri: StorageURI, done: str, timeout_seconds: float) -> StorageError:
    """The core error for any failure of a call into the SDK: "``uri`` cannot be ``done``: why",
    never the SDK's own message. Every exception is taken as the SDK's (its transport and
    credential layers raise many kinds), so this never answers None."""
    where = uri.display
    status = getattr(exc, "status_code", None)
    inner = getattr(exc, "inner_exception", None)
    if status is None and isinstance(inner, azure_errors.AzureError) and inner is not exc:
        # the downloader wraps a broken body read in a bare HttpResponseError
        return azure_error(inner, uri, done, timeout_seconds)
    raw_code = getattr(exc, "error_code", None)
    code = str(getattr(raw_code, "value", raw_code) or "")  # StorageErrorCode or the header's text
    if isinstance(exc, azure_errors.ResourceNotFoundError) or status == 404:
        if code == "ContainerNotFound":
            return ObjectNotFound(f"{where} cannot be {done}: there is no container '{uri.bucket}'", where)
        return ObjectNotFound(f"{where} does not exist", where)
    if isinstance(exc, azure_errors.ClientAuthenticationError) or status in (401, 403):
        if status in (401, 403):
            cause = f"the storage account refused the credentials ({status} {code or 'Forbidden'})"
        elif type(exc).__name__ == "AzureSigningError":
            cause = "the account key in the connection string is not valid base64"
        else:  # no answer from storage: the token could not be had
            cause = (
                "DefaultAzureCredential got no token (give the app a managed identity with a Storage "
                f"Blob Data role, sign in with `az login`, or set {CONNECTION_STRING_VARIABLE})"
            )
        return StorageAccessDenied(f"{where} cannot be {done}: access denied: {cause}", where)
    if isinstance(exc, (azure_errors.ServiceResponseTimeoutError, azure_errors.ServiceRequestTimeoutError)):
        return StorageTimeout(
            f"{where} cannot be {done}: the storage service did not answer within the "
            f"{timeout_seconds:g} s allowed (STORAGE_TIMEOUT_SECONDS)",
            where,
        )
    if isinstance(exc, azure_errors.ServiceRequestError):
        return StorageError(f"{where} cannot be {done}: the storage service cannot be reached", where)
    if isinstance(exc, azure_errors.ServiceResponseError):
        return StorageError(f"{where} cannot be {done}: the connection to the storage service broke", where)
    if isinstance(exc, azure_errors.ResourceModifiedError) or status == 412:  # If-Match did not hold
        if done == "read":  # a read held to one eTag, or a download whose blob changed under it
            return ObjectSuperseded(f"{where} is no longer the version that was to be read: it was replaced", where)
        return PreconditionFailed(
            f"{where} cannot be {done}: it is no longer as it was found; another writer came first", where
        )
    if isinstance(exc, azure_errors.ResourceExistsError) and done in ("written", "deleted"):
        # If-None-Match: * on a blob that exists now: 409 BlobAlreadyExists
        return PreconditionFailed(
            f"{where} cannot be {done}: it exists now, though it did not when it was looked for; another "
            f"writer came first ({code or 409})", where,
        )
    if status is not None:
        return StorageError(f"{where} cannot be {done}: the storage service answered {status} {code}".rstrip(), where)
    return StorageError(f"{where} cannot be {done}: unexpected {type(exc).__name__} from the Azure SDK", where)


def _write_conditions(precondition: Precondition | None) -> dict[str, Any]:
    """The SDK's arguments for ``precondition``: If-None-Match: * or If-Match on its eTag."""
    if precondition is None:
        return {}
    if precondition.found is None:
        return {"match_condition": MatchConditions.IfMissing}
    etag = precondition.found.quoted_etag
    if etag is None:
        raise ValueError(f"an Azure precondition needs the eTag of the version it expects; got {precondition.found!r}")
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


if TYPE_CHECKING:
    from core.storage import StoreFactory

    _checked: StoreFactory = AzureBlobObjectStore  # mypy: this class is an ObjectStore, built from a timeout
