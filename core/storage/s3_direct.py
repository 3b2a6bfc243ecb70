"""GetObject without botocore, for the case every Lambda function is in: credentials and region
in the environment, no proxy, no AWS config file.

Why hand code: importing botocore and building its S3 client takes about 110 ms of a cold start
whose floor (importing scikit-learn and unpickling the model) is 700-900 ms, more than twice the
5 % the Lambda adapter may add (bench/aws_cold_start.py). A signed GET is one request over
http.client: about 3 ms of imports, since ssl, hmac and hashlib are loaded by joblib anyway.

What it does, like the botocore client of core/storage/s3.py: credentials from
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, region from
``AWS_DEFAULT_REGION``, endpoint from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (path-style,
as botocore does for a local server) or else ``https://<bucket>.s3.<region>.amazonaws.com``; the
same attempts and per-attempt timeouts (:func:`core.storage.s3.retry_plan`) with jittered
backoff, retrying what botocore's "standard" mode retries (connection failures, timeouts,
500/502/503/504, throttling codes).

Everything else goes to botocore: :func:`direct_target` answers None for any other credential
source (role profiles, SSO, container or instance credentials, SnapStart's credential endpoint),
a proxy, a custom CA bundle for HTTPS, FIPS or dual-stack endpoints, an AWS config file, bucket
names that are ARNs or S3 Express directory buckets, regions outside the aws and aws-cn
partitions; and an answer that says the bucket lives in another region makes the caller repeat
the request through botocore, which follows the redirect.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import ssl
import time
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from core.errors import StorageError
from core.storage.s3_errors import answer_error, connection_failed, timed_out, unreachable
from core.storage.sigv4 import Credentials, query_string, s3_path, signed_get_headers
from core.storage.uri import StorageURI
from core.storage.versions import ObjectVersion

# Settings that change how botocore reaches S3 in a way this module does not reproduce.
_BOTOCORE_ONLY = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                  "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SPECIAL_BUCKET = re.compile(r"(--x-s3|--ol-s3|-s3alias|--table-s3)$|\.\.|^\d+\.\d+\.\d+\.\d+$")
_AWS_REGION = re.compile(r"^(?:[a-z]{2}|us-gov)-[a-z]+-\d{1,2}$")
_CHINA_REGION = re.compile(r"^cn-[a-z]+-\d{1,2}$")
_ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_RETRIED_STATUS = {500, 502, 503, 504}
# botocore's standard retry mode retries these error codes (botocore/retries/standard.py)
_RETRIED_CODES = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
}
# answers meaning "this bucket is in another region": botocore knows how to follow them
_WRONG_REGION = {"PermanentRedirect", "TemporaryRedirect", "AuthorizationHeaderMalformed",
                 "IllegalLocationConstraintException"}


class Target(NamedTuple):
    """Where and how to send one GetObject."""

    https: bool
    host: str  # as sent in the Host header: name[:port]
    path: str
    region: str
    credentials: Credentials


def direct_target(uri: StorageURI, environ: Mapping[str, str] = os.environ) -> Target | None:
    """The request for ``uri`` if this module can make it exactly as botocore would, else None."""
    access_key, secret_key = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    region = environ.get("AWS_DEFAULT_REGION")
    if not (access_key and secret_key and region) or any(environ.get(name) for name in _BOTOCORE_ONLY):
        return None
    if not _BUCKET.match(uri.bucket) or _SPECIAL_BUCKET.search(uri.bucket) or _has_config_file(environ):
        return None
    credentials = Credentials(access_key, secret_key, environ.get("AWS_SESSION_TOKEN") or None)
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.username:
            return None
        https = parts.scheme == "https"
        if https and environ.get("AWS_CA_BUNDLE"):  # certificates of its own: botocore loads them
            return None
        return Target(https, parts.netloc, s3_path(uri.bucket, uri.key), region, credentials)
    if environ.get("AWS_CA_BUNDLE"):
        return None
    if _CHINA_REGION.match(region):
        domain = f"s3.{region}.amazonaws.com.cn"
    elif _AWS_REGION.match(region):
        domain = f"s3.{region}.amazonaws.com"
    else:
        return None
    if "." in uri.bucket:  # a dotted name does not match the wildcard certificate: path-style
        return Target(True, domain, s3_path(uri.bucket, uri.key), region, credentials)
    return Target(True, f"{uri.bucket}.{domain}", s3_path(None, uri.key), region, credentials)


def _has_config_file(environ: Mapping[str, str]) -> bool:
    """Whether an AWS config file with content exists (it may set endpoints or addressing)."""
    path = environ.get("AWS_CONFIG_FILE") or os.path.join(os.path.expanduser("~"), ".aws", "config")
    try:
        return os.stat(os.path.expanduser(path)).st_size > 0
    except OSError:
        return False


class RedirectToBotocore(Exception):
    """S3 says the bucket is in another region; the caller repeats the request through botocore."""


class ObjectResponse:
    """The body of a 200 answer: ``read(n)`` and ``close()``, which closes the connection too."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self._connection = connection
        self._response = response

    def read(self, size: int = -1) -> bytes:
        return self._response.read(None if size is None or size < 0 else size)

    def close(self) -> None:
        self._response.close()
        self._connection.close()


def read_conditions(version: ObjectVersion | None) -> tuple[dict[str, str], dict[str, str]]:
    """(query, headers) that hold a GET to ``version``: ``?versionId=`` where it has one (a
    versioned bucket), else ``If-Match`` on its eTag; nothing for an unpinned version."""
    if version is None:
        return {}, {}
    if version.version_id:
        return {"versionId": version.version_id}, {}
    if version.quoted_etag:
        return {}, {"if-match": version.quoted_etag}
    return {}, {}


def get_object(target: Target, uri: StorageURI, timeout_seconds: float, attempts: int,
               per_attempt: float, version: ObjectVersion | None = None,
               byte_range: str | None = None) -> ObjectResponse:
    """GET the object (exactly ``version`` when it is pinned; ``byte_range`` only, a Range
    header's value, when given): its body on 200 (206 for a range); a core StorageError on any
    failure (after the retries), ObjectSuperseded when that version is gone or replaced;
    RedirectToBotocore when S3 answers that the bucket lives elsewhere."""
    query, conditions = read_conditions(version)
    if byte_range:
        conditions = {**conditions, "range": byte_range}
    success = 206 if byte_range else 200
    request_path = f"{target.path}?{query_string(query)}" if query else target.path
    failure: StorageError | None = None
    for attempt in range(attempts):
        if attempt:  # botocore's standard mode: full jitter, at most 1 s then 2 s
            time.sleep(random.uniform(0, 2 ** (attempt - 1)))
        connection = _connection(target, per_attempt)
        connected = False
        try:
            connection.connect()
            connected = True
            headers = signed_get_headers(target.host, target.path, target.region, target.credentials,
                                         query=query, extra_headers=conditions)
            connection.request("GET", request_path, headers=headers)
            response = connection.getresponse()
        except ssl.SSLCertVerificationError:
            connection.close()
            raise StorageError(
                f"{uri.display} cannot be read: the S3 endpoint's TLS certificate was not accepted", uri.display
            ) from None
        except TimeoutError:
            connection.close()
            failure = timed_out(uri, "read", timeout_seconds, "connect" if not connected else "read")
            continue
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            failure = unreachable(uri, "read", exc) if not connected else connection_failed(uri, "read", exc)
            continue
        if response.status == success:
            return ObjectResponse(connection, response)
        try:
            head = response.read(64 * 1024)
        except (OSError, http.client.HTTPException):
            head = b""
        finally:
            connection.close()
        found = _ERROR_CODE.search(head)
        code = found.group(1).decode("ascii", "replace") if found else ""
        if response.status in (301, 307) or code in _WRONG_REGION:
            raise RedirectToBotocore(code or str(response.status))
        failure = answer_error(code, response.status, uri, "read", timeout_seconds)
        if response.status not in _RETRIED_STATUS and code not in _RETRIED_CODES:
            raise failure
    assert failure is not None
    raise failure


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    # http.client splits "host:port" (and "[v6]:port") itself
    if target.https:
        return http.client.HTTPSConnection(target.host, timeout=timeout, context=_tls_context())
    return http.client.HTTPConnection(target.host, timeout=timeout)


_tls: list[ssl.SSLContext] = []


def _tls_context() -> ssl.SSLContext:
    """The system's CA certificates, loaded once (botocore uses certifi's copy of the same list)."""
    if not _tls:
        _tls.append(ssl.create_default_context())
    return _tls[0]


def forget_tls_context() -> None:
    """Build the TLS context again on the next HTTPS request: after a restore from a memory
    snapshot (Lambda SnapStart) every instance would share the one in the snapshot, with its
    session cache and OpenSSL state."""
    _tls.clear()


__all__ = ["ObjectResponse", "RedirectToBotocore", "Target", "direct_target", "forget_tls_context", "get_object",
           "read_conditions"]
