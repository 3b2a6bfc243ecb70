"""What every format's loader receives: the verified bytes of one model file and the settings
that govern loading it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NamedTuple

from core.model.manifest import Manifest
from core.storage import StorageURI


class LoadContext(NamedTuple):
    uri: StorageURI
    # the file's bytes in memory, or None when it is loaded from ``path`` (core/model/fetch.py);
    # either way the digest was checked against MODEL_SHA256 and the manifest first
    data: bytes | None
    sha256: str  # "" while pending_sha256 computes it beside the load (no digest was expected)
    manifest: Manifest | None
    version: str | None  # MODEL_VERSION, if set
    read_seconds: float
    skops_trusted_types: tuple[str, ...] = ()
    strict_version: bool = False
    onnx_threads: int = 1  # 0: onnxruntime's default, one per core
    path: str | None = None
    size_bytes: int = 0
    loaded_from: str = "memory"  # memory, file (the local file itself) or scratch (a copy)
    pending_sha256: Callable[[], str] | None = None

    def file_or_bytes(self) -> Any:
        """What a loader opens: the path, else a binary stream over the bytes."""
        if self.path is not None:
            return self.path
        import io

        return io.BytesIO(self.data or b"")

    def contents(self) -> Any:
        """The bytes, or a read-only map of the file (no copy in memory) for a loader that parses them."""
        if self.data is not None or self.path is None:
            return self.data or b""
        import mmap

        with open(self.path, "rb") as file:
            return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)

    @property
    def display(self) -> str:
        return self.uri.display

    def identity(self, deserialize_seconds: float, warnings: tuple[str, ...] = ()) -> dict[str, Any]:
        """The fields of ModelDescription that say which file this is and how long it took."""
        manifest_version = self.manifest.model_version if self.manifest is not None else None
        sha256 = self.sha256 or (self.pending_sha256() if self.pending_sha256 is not None else "")
        return {
            "version": self.version or manifest_version or f"sha256:{sha256[:12]}",
            "sha256": sha256,
            "size_bytes": self.size_bytes,
            "loaded_from": self.loaded_from,
            "loaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "read_seconds": self.read_seconds,
            "deserialize_seconds": deserialize_seconds,
            "warnings": warnings,
        }
