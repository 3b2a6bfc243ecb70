"""What every format's loader receives: the verified bytes of one model file and the settings
that govern loading it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, NamedTuple

from core.model.manifest import Manifest
from core.storage import StorageURI


class LoadContext(NamedTuple):
    uri: StorageURI
    data: bytes  # digest already checked against MODEL_SHA256 and the manifest
    sha256: str
    manifest: Manifest | None
    version: str | None  # MODEL_VERSION, if set
    read_seconds: float
    skops_trusted_types: tuple[str, ...] = ()
    strict_version: bool = False
    onnx_threads: int = 1  # 0: onnxruntime's default, one per core

    @property
    def display(self) -> str:
        return self.uri.display

    def identity(self, deserialize_seconds: float, warnings: tuple[str, ...] = ()) -> dict[str, Any]:
        """The fields of ModelDescription that say which file this is and how long it took."""
        manifest_version = self.manifest.model_version if self.manifest is not None else None
        return {
            "version": self.version or manifest_version or f"sha256:{self.sha256[:12]}",
            "sha256": self.sha256,
            "size_bytes": len(self.data),
            "loaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "read_seconds": self.read_seconds,
            "deserialize_seconds": deserialize_seconds,
            "warnings": warnings,
        }
