"""AWS Signature Version 4 for one S3 request without a body (GetObject, of one version or on a
condition).

The algorithm of https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
as S3 applies it: the path is encoded once and never normalised, the payload hash is sent in
``x-amz-content-sha256``, and a session token is signed as ``x-amz-security-token``.
tests/core/storage/test_sigv4.py checks every signature against botocore's own signer and against
moto's server with authentication enforced.

    >>> headers = signed_get_headers(
    ...     "my-bucket.s3.eu-west-1.amazonaws.com", "/models/iris.joblib", "eu-west-1",
    ...     Credentials("AKIDEXAMPLE", "secret", None), now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    >>> headers["x-amz-date"], headers["Authorization"][:60]
    ('20260102T030405Z', 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/eu-west-1/s3/')
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import NamedTuple
from urllib.parse import quote

EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None

    def __repr__(self) -> str:  # never a secret in a log line or a traceback's locals
        return f"Credentials(access_key={self.access_key[:4]}..., secret_key=***, token={'***' if self.token else None})"


def s3_path(bucket: str | None, key: str) -> str:
    """The request path of ``key`` (path-style when ``bucket`` is given), percent-encoded the way
    S3's signature expects: every byte but ``A-Za-z0-9-._~`` and ``/``, once."""
    path = f"/{bucket}/{key}" if bucket else f"/{key}"
    return quote(path, safe="/~")


def query_string(query: Mapping[str, str]) -> str:
    """The canonical query string (also the one sent): names sorted, names and values
    percent-encoded except ``A-Za-z0-9-._~``, e.g. ``versionId=3HL4kqtJvjVBH40Nrjfkd``."""
    return "&".join(f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}" for name, value in sorted(query.items()))


def signed_get_headers(
    host: str, path: str, region: str, credentials: Credentials, now: datetime | None = None,
    query: Mapping[str, str] | None = None, extra_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers that sign ``GET path?query`` on ``host`` (``host[:port]`` exactly as sent);
    ``extra_headers`` (lower-case names, e.g. ``if-match``) are sent and signed too."""
    moment = now or datetime.now(timezone.utc)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {**(extra_headers or {}), "host": host, "x-amz-content-sha256": EMPTY_PAYLOAD_SHA256, "x-amz-date": amz_date}
    if credentials.token:
        headers["x-amz-security-token"] = credentials.token
    names = sorted(headers)
    signed_names = ";".join(names)
    canonical_request = "\n".join(
        ["GET", path, query_string(query or {}), *(f"{name}:{headers[name].strip()}" for name in names), "",
         signed_names, EMPTY_PAYLOAD_SHA256]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + credentials.secret_key).encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return headers


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
