"""What S3 failures mean to a caller, for both clients of core/storage/s3.py (botocore and the
direct GET of core/storage/s3_direct.py): one core error per cause, with a message that names the
location and the cause (the S3 error code, a timeout, a refused connection) and never a
credential, a signature or the endpoint's address.

:func:`botocore_error` and :func:`direct_read_error` are the S3 store's mapping functions for
:class:`core.storage.sdk_errors.mapped_errors`, one per client.
"""

from __future__ import annotations

import http.client
import socket
import ssl

from core.errors import (
    ObjectNotFound,
    ObjectSuperseded,
    PreconditionFailed,
    StorageAccessDenied,
    StorageError,
    StorageTimeout,
)
from core.storage.uri import StorageURI

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
# A conditional request found the object otherwise: 412 for If-Match / If-None-Match, 409 when
# another conditional write of the same key was in flight.
_CONDITION_FAILED = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_DENIED = {
    "AccessDenied", "403", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId",
    "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
    "AccountProblem",
}
_THROTTLED = {"SlowDown", "503", "Throttling", "ThrottlingException", "RequestLimitExceeded",
              "ServiceUnavailable", "TooManyRequests", "RequestThrottled"}
_TIMED_OUT = {"RequestTimeout", "RequestTimeTooSkewed"}


def botocore_error(exc: Exception, uri: StorageURI, done: str, timeout_seconds: float) -> StorageError | None:
    """The core error for a botocore failure while ``uri`` was being ``done`` ("read", "written");
    None for an exception that is not a storage failure.

    The message names the location and the cause (the S3 error code, a timeout, missing
    credentials); anything else in botocore's own text (endpoint, signature details) is left out.
    """
    # imported here: only a botocore call raises these, so botocore is loaded already, and the
    # direct GET (which shares this module) never loads it
    from botocore import exceptions as botocore_errors

    where = uri.display
    if isinstance(exc, botocore_errors.ClientError):
        error = exc.response.get("Error", {}) or {}
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return answer_error(str(error.get("Code") or ""), status, uri, done, timeout_seconds)
    if isinstance(exc, (botocore_errors.NoCredentialsError, botocore_errors.PartialCredentialsError,
                        botocore_errors.CredentialRetrievalError)):
        return StorageAccessDenied(
            f"{where} cannot be {done}: no usable AWS credentials were found ({type(exc).__name__}); "
            "on Lambda they come from the function's role, elsewhere from AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or a profile",
            where,
        )
    if isinstance(exc, (botocore_errors.ConnectTimeoutError, botocore_errors.ReadTimeoutError)):
        phase = "connect" if isinstance(exc, botocore_errors.ConnectTimeoutError) else "read"
        return timed_out(uri, done, timeout_seconds, phase)
    if isinstance(exc, botocore_errors.EndpointConnectionError):
        return unreachable(uri, done, root_cause(exc.kwargs.get("error") or exc))
    if isinstance(exc, botocore_errors.ParamValidationError):
        if "Unknown parameter" in str(exc) and "IfMatch" in str(exc):
            import botocore

            return StorageError(
                f"{where} cannot be {done}: botocore {botocore.__version__} predates S3's conditional writes "
                f"(If-Match); expected botocore 1.35.69 or later (pip install -U boto3)",
                where,
            )
        return StorageError(f"{where} is not a valid S3 location: check the bucket name and key", where)
    if isinstance(exc, botocore_errors.BotoCoreError):
        return StorageError(f"{where} cannot be {done}: {type(exc).__name__}", where)
    if isinstance(exc, OSError):  # a socket error during the body
        return connection_failed(uri, done, exc)
    return None


def direct_read_error(exc: Exception, uri: StorageURI, done: str, timeout_seconds: float) -> StorageError | None:
    """The core error for a failure while reading the body of a direct GET (http.client, no
    botocore); None for an exception that is not a storage failure."""
    if isinstance(exc, TimeoutError):
        return timed_out(uri, done, timeout_seconds, "read")
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return connection_failed(uri, done, exc)
    return None


def answer_error(code: str, status: int | None, uri: StorageURI, done: str, timeout_seconds: float) -> StorageError:
    """The core error for S3's answer ``status`` with error ``code`` (empty when the answer had no
    body, as for HEAD), whichever client received it."""
    where = uri.display
    code = code or str(status or "unknown")
    if code in _CONDITION_FAILED or status == 412:
        if done == "read":  # a GET held to a version by If-Match
            return ObjectSuperseded(
                f"{where} is no longer the version that was to be read: it was replaced since ({code})", where
            )
        return PreconditionFailed(
            f"{where} cannot be {done}: it is no longer as it was found; another writer came first ({code})", where
        )
    if code == "NoSuchVersion":  # a GET of one version (?versionId=) that was deleted
        return ObjectSuperseded(f"{where} no longer has the version that was to be read ({code})", where)
    if code == "NoSuchKey" and done != "read":
        # only a write or delete on If-Match meets a missing key: it was removed since it was found
        return PreconditionFailed(
            f"{where} cannot be {done}: it was removed since it was found; another writer came first ({code})", where
        )
    if code in _NOT_FOUND or status == 404:
        if code == "NoSuchBucket":
            return ObjectNotFound(
                f"{where} cannot be {done}: bucket '{uri.bucket}' does not exist (NoSuchBucket)", where
            )
        return ObjectNotFound(f"{where} does not exist ({code})", where)
    if code == "InvalidObjectState":  # a 403 too, but no permission would help
        return StorageError(
            f"{where} cannot be {done}: the object is archived (InvalidObjectState: S3 Glacier Flexible "
            "Retrieval or Deep Archive, or an Intelligent-Tiering archive tier); restore it "
            "(aws s3api restore-object) or copy it to the STANDARD storage class",
            where,
        )
    if code in _DENIED or status == 403:
        action = {"read": "s3:GetObject", "deleted": "s3:DeleteObject"}.get(done, "s3:PutObject")
        versions = " (s3:GetObjectVersion to read one of its versions)" if done == "read" else ""
        return StorageAccessDenied(
            f"{where} cannot be {done}: access denied ({code}); the function's role needs {action} on it{versions}",
            where,
        )
    if code in _THROTTLED or status == 503:
        return StorageError(
            f"{where} cannot be {done}: S3 is throttling requests ({code}) and still did after "
            f"retrying for {timeout_seconds:g} s; try again shortly",
            where,
        )
    if code in _TIMED_OUT:
        return StorageTimeout(f"{where} cannot be {done}: S3 timed out ({code})", where)
    answered = f"{status} {code}" if status and str(status) != code else code
    return StorageError(f"{where} cannot be {done}: S3 answered {answered}", where)


def timed_out(uri: StorageURI, done: str, timeout_seconds: float, phase: str) -> StorageTimeout:
    return StorageTimeout(
        f"{uri.display} cannot be {done}: S3 did not answer in time ({phase} timeout; "
        f"STORAGE_TIMEOUT_SECONDS={timeout_seconds:g})",
        uri.display,
    )


def unreachable(uri: StorageURI, done: str, exc: BaseException) -> StorageError:
    return StorageError(
        f"{uri.display} cannot be {done}: the S3 endpoint could not be reached ({_cause(exc)})", uri.display
    )


def connection_failed(uri: StorageURI, done: str, exc: BaseException) -> StorageError:
    return StorageError(f"{uri.display} cannot be {done}: the connection failed ({_cause(exc)})", uri.display)


def _cause(exc: BaseException) -> str:
    """A failure's kind in words, never its text (which can carry an address)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, http.client.IncompleteRead):
        return "the object arrived incomplete"
    if isinstance(exc, ssl.SSLError):
        return "TLS failed"
    return type(exc).__name__


def root_cause(exc: BaseException) -> BaseException:
    """The innermost OSError under an SDK exception (urllib3 wraps the socket's), else ``exc``."""
    seen = exc
    for _ in range(6):
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            break
        seen = inner
        if type(seen) in (ConnectionRefusedError, ConnectionResetError) or isinstance(seen, socket.gaierror):
            return seen
    return exc


__all__ = [
    "answer_error", "botocore_error", "connection_failed", "direct_read_error", "root_cause", "timed_out",
    "unreachable",
]
