"""Azure Blob Storage as object storage (``az://container/blob``), through azure-storage-blob.

The account comes from the environment, read when the store is built:

- ``AZURE_STORAGE_CONNECTION_STRING``: used as is (account key, SAS or Azurite's
  ``devstoreaccount1``); it wins when both are set;
- ``AZURE_STORAGE_ACCOUNT_URL`` (``https://<account>.blob.core.windows.net``): signed in with
  azure-identity's ``DefaultAzureCredential`` (a managed identity on Azure, ``az login`` on a
  laptop); azure-identity is imported only in this case.

The SDK's default retry policy waits 15 s, 18 s, 24 s... between tries, so a call to a storage
service that is down hangs for about 84 s. Here every call gives up within about
``timeout_seconds``: one retry after a short pause (a stale pooled connection after a restart of
the server is the common transient failure), and connect/read timeouts that share the rest of the
budget. Token requests of ``DefaultAzureCredential`` are outside this budget.

Errors become :mod:`core.errors` storage errors whose messages name ``uri.display`` and the cause,
never an SDK message: those can carry request URLs with SAS tokens.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from core.errors import ObjectNotFound, StorageAccessDenied, StorageError, StorageTimeout
from core.storage import DEFAULT_TIMEOUT_SECONDS
from core.storage.sdk_errors import mapped_errors, mapped_stream
from core.storage.uri import StorageURI

if TYPE_CHECKING:
    # The SDK's names, bound by _import_sdk() on first use; declared here for the type checker only.
    from azure.core import exceptions as azure_errors
    from azure.storage.blob import BlobServiceClient, LinearRetry

_sdk_loaded = False


def _import_sdk() -> None:
    """Import the SDK on first use of this scheme, not when the module is imported.

    store_for() imports this module only when a URI of its scheme is used; importing the SDK here
    as well keeps the house rule that nothing under core/ imports a cloud SDK at module level.
    """
    global _sdk_loaded, azure_errors, BlobServiceClient, LinearRetry
    if _sdk_loaded:
        return
    from azure.core import exceptions as azure_errors
    from azure.storage.blob import BlobServiceClient, LinearRetry
    _sdk_loaded = True


CONNECTION_STRING_VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_URL_VARIABLE = "AZURE_STORAGE_ACCOUNT_URL"

# Tries per call: the first and one retry.
_ATTEMPTS = 2
# Models are read whole at start; a few parallel range reads speed up large ones.
_READ_CONCURRENCY = 4
# Uploads larger than this go as blocks of _BLOCK_BYTES, so a file upload holds one block in
# memory (the SDK's defaults: one request up to 64 MiB, blocks of 4 MiB).
_SINGLE_PUT_BYTES = 8 * 1024 * 1024
_BLOCK_BYTES = 4 * 1024 * 1024


class AzureBlobObjectStore:
    """``az://container/blob`` objects. Thread-safe; the client is built on first use, once.

    Example (``AZURE_STORAGE_CONNECTION_STRING`` set)::

        store = AzureBlobObjectStore(10.0)
        model_bytes = store.read_bytes(parse_uri("az://models/iris.joblib"))
    """

    scheme = "az"

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

    def open_read(self, uri: StorageURI) -> BinaryIO:
        """A buffered binary stream over the blob, read chunk by chunk as it is consumed.

        The first chunk is fetched here, so a missing blob fails now, not at the first read.
        """
        with mapped_errors(self._storage_error, uri, "read"):
            downloader = self._blob(uri).download_blob()
        return mapped_stream(downloader, self._storage_error, uri)

    def write_bytes(self, uri: StorageURI, data: bytes) -> None:
        """Write atomically: a block blob is replaced whole when the upload commits, so readers
        see the old blob or the new one, never a part."""
        with mapped_errors(self._storage_error, uri, "written"):
            self._blob(uri).upload_blob(data, overwrite=True)

    def write_file(self, uri: StorageURI, path: str) -> None:
        """Upload the local file at ``path``, streamed: up to ``_SINGLE_PUT_BYTES`` in one request,
        larger files as blocks of ``_BLOCK_BYTES`` committed by one final request. A block blob is
        replaced only at that commit, so readers see the old blob or the whole new one.
        ``timeout_seconds`` bounds each request, not the whole upload."""
        with open(path, "rb") as data:  # a missing local file is our OSError, not a storage error
            size = os.fstat(data.fileno()).st_size
            with mapped_errors(self._storage_error, uri, "written"):
                self._blob(uri).upload_blob(data, length=size, overwrite=True)

    def delete(self, uri: StorageURI) -> None:
        """Delete the blob (and its snapshots); one already gone is not an error, a missing
        container is."""
        with mapped_errors(self._storage_error, uri, "deleted"):
            try:
                self._blob(uri).delete_blob(delete_snapshots="include")
            except azure_errors.ResourceNotFoundError as exc:
                raw_code = getattr(exc, "error_code", None)
                if str(getattr(raw_code, "value", raw_code) or "") == "ContainerNotFound":
                    raise

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
    if isinstance(exc, azure_errors.ResourceModifiedError):
        return StorageError(f"{where} cannot be {done}: it changed while it was being {done}", where)
    if status is not None:
        return StorageError(f"{where} cannot be {done}: the storage service answered {status} {code}".rstrip(), where)
    return StorageError(f"{where} cannot be {done}: unexpected {type(exc).__name__} from the Azure SDK", where)


if TYPE_CHECKING:
    from core.storage import StoreFactory

    _checked: StoreFactory = AzureBlobObjectStore  # mypy: this class is an ObjectStore, built from a timeout
