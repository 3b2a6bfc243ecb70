"""Object locations as URIs: ``file:///abs/path``, ``s3://bucket/key``, ``gs://bucket/key``,
``az://container/blob``.

A :class:`StorageURI` is parsed once and carries a ``display`` form that is safe to put in an
answer or a log line: for ``file://`` it keeps only the file name, because a server path is never
shown to a client.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote, urlsplit


class Backend(NamedTuple):
    """Where a scheme's store lives, and which SDK and pip extra it needs (None: the stdlib)."""

    module: str
    class_name: str
    sdk_module: str | None = None
    extra: str | None = None


# The one registry of schemes, in the order error messages list them. A backend module is
# imported only when a URI of its scheme is used.
BACKENDS = {
    "file": Backend("core.storage.local", "LocalObjectStore"),
    "s3": Backend("core.storage.s3", "S3ObjectStore", "boto3", "aws"),
    "gs": Backend("core.storage.gcs", "GCSObjectStore", "google.cloud.storage", "gcp"),
    "az": Backend("core.storage.azure_blob", "AzureBlobObjectStore", "azure.storage.blob", "azure"),
}
SUPPORTED_SCHEMES = tuple(BACKENDS)


class StorageURI(NamedTuple):
    scheme: str
    bucket: str  # bucket or container; empty for file://
    key: str  # object key or blob name; the absolute path for file://

    @property
    def name(self) -> str:
        """The last path segment: the object's file name."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    @property
    def display(self) -> str:
        if self.scheme == "file":
            return f"file://.../{self.name}"
        return f"{self.scheme}://{self.bucket}/{self.key}"

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.key}"
        return f"{self.scheme}://{self.bucket}/{self.key}"


def parse_uri(text: str) -> StorageURI:
    """Parse ``text`` into a StorageURI; raise ValueError saying what is expected."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        shown = f"scheme '{scheme}'" if scheme else "no scheme"
        raise ValueError(f"it has {shown}; expected one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError("a file:// URI needs an absolute path, e.g. file:///srv/models/model.joblib")
        path = unquote(parts.path)
        if not path.startswith("/") or path.endswith("/"):
            raise ValueError("a file:// URI needs an absolute path to a file, e.g. file:///srv/models/model.joblib")
        return StorageURI("file", "", path)
    key = parts.path.lstrip("/")
    if not parts.netloc or not key:
        raise ValueError(f"expected {scheme}://<bucket>/<key> with both parts present")
    return StorageURI(scheme, parts.netloc, key)
