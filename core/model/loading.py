"""Loading the model: lazily, once per process, digest checked before deserialising.

The format follows the file's extension (see :mod:`core.file_formats`); the manifest next to the
model (``<file>.manifest.json``, see :mod:`core.model.manifest`) is read when present, in parallel
with the model on remote storage so that a cold start does not wait for two round trips.

The first caller that needs the model reads and deserialises it while holding a lock; callers
arriving meanwhile wait for that one load instead of starting their own. A failed load is not
remembered: the next request tries again, so a model uploaded after a failure is picked up
without a restart.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable

from core.errors import (
    ModelDigestMismatch,
    ModelInvalid,
    ModelRuntimeMissing,
    ModelUnavailable,
    ServerlessMLError,
    StorageError,
)
from core.file_formats import format_for_name, missing_estimator_libraries, supported_extensions
from core.model.context import LoadContext
from core.model.description import ModelDescription
from core.model.fetch import fetch_model
from core.model.formats import loader
from core.model.manifest import Manifest, check_digest, read_manifest
from core.settings import Settings
from core.stack_headroom import with_stack_headroom
from core.storage import ObjectStore, StorageURI, store_for

logger = logging.getLogger("serverless_ml.model")


class ModelHolder:
    """Holds the one model of this process; ``get()`` loads it on first use."""

    def __init__(
        self, settings: Settings, *, store_for: Callable[..., ObjectStore] = store_for
    ) -> None:
        self._settings = settings
        self._store_for = store_for
        self._lock = threading.Lock()
        self._model: ModelDescription | None = None
        self.last_error: ServerlessMLError | None = None
        self.load_attempts = 0
        self._failed_loads = 0

    @property
    def loaded(self) -> ModelDescription | None:
        return self._model

    def get(self) -> ModelDescription:
        model = self._model
        if model is not None:
            return model
        failed_before = self._failed_loads
        with self._lock:
            if self._model is not None:
                return self._model
            if self._failed_loads != failed_before and self.last_error is not None:
                # the load this caller waited for failed: answer with it now, instead of queueing
                # for a load of its own (k waiters would otherwise answer after k storage timeouts)
                import copy  # here, not at the top: a cold start that loads its model never needs it

                raise copy.copy(self.last_error)
            # the load runs on a fresh stretch of CPython's frame stack: see core/stack_headroom.py
            self._model = with_stack_headroom(self._load)
            return self._model

    def _load(self) -> ModelDescription:
        uri = self._settings.model_uri
        self.load_attempts += 1
        try:
            try:
                store = self._store_for(uri, self._settings.storage_timeout_seconds)
            except StorageError as exc:
                raise ModelUnavailable(f"the model could not be read: {exc.message}") from None
            peak_before = _peak_rss_bytes()
            model = load_model(
                uri,
                store,
                self._settings.model_sha256,
                self._settings.model_version,
                skops_trusted_types=self._settings.skops_trusted_types,
                strict_version=self._settings.strict_model_version,
                onnx_threads=self._settings.onnx_threads,
                scratch_dir=self._settings.model_scratch_dir,
            )
        except ServerlessMLError as exc:
            self.last_error = exc
            self._failed_loads += 1
            logger.error("model load failed", extra={"fields": {"model_uri": uri.display, "error_code": exc.code, "reason": exc.message}})
            raise
        peak_after = _peak_rss_bytes()
        if peak_before is not None and peak_after is not None:
            model = model._replace(peak_memory_increase_bytes=peak_after - peak_before)
        self.last_error = None
        logger.info(
            "model loaded",
            extra={
                "fields": {
                    "model_uri": uri.display,
                    "model_version": model.version,
                    "sha256": model.sha256,
                    "estimator": model.estimator_type,
                    "format": model.format,
                    "manifest": model.manifest is not None,
                    "read_ms": round(model.read_seconds * 1000, 3),
                    "bytes_read": model.size_bytes,
                    "loaded_from": model.loaded_from,
                    "peak_memory_increase_bytes": model.peak_memory_increase_bytes,
                    "deserialize_ms": round(model.deserialize_seconds * 1000, 3),
                    "warnings": list(model.warnings),
                    "version_drift": model.version_drift,
                }
            },
        )
        return model


def load_model(
    uri: StorageURI,
    store: ObjectStore,
    expected_sha256: str | None = None,
    version: str | None = None,
    *,
    skops_trusted_types: tuple[str, ...] = (),
    strict_version: bool = False,
    onnx_threads: int = 1,
    scratch_dir: str | None = None,
) -> ModelDescription:
    """Read, verify and deserialise one model file; raise a ModelUnavailable subclass on failure.

    Where the bytes go on the way (memory, the local file, a scratch copy): core/model/fetch.py."""
    if uri.key.endswith("/") or uri.name == "MLmodel":
        # an MLflow model: its MLmodel names the file, which comes back here (core/model/mlflow_model.py)
        from core.model.mlflow_model import load_mlflow_model

        return load_mlflow_model(uri, store, lambda model_file: load_model(
            model_file, store, expected_sha256, version, skops_trusted_types=skops_trusted_types,
            strict_version=strict_version, onnx_threads=onnx_threads, scratch_dir=scratch_dir,
        ))
    fmt = format_for_name(uri.name)
    if fmt is None:  # the settings refuse this at start; kept for direct callers
        raise ModelInvalid(
            f"the model at {uri.display} has an extension this service cannot load; expected one of "
            f"{supported_extensions()}"
        )
    missing = missing_estimator_libraries(fmt)
    if missing:  # refused before the model is downloaded: nothing here could deserialise it
        raise ModelRuntimeMissing(
            f"the model at {uri.display} is a {fmt.name} file, which needs {' and '.join(missing)}, and "
            f"{'they are' if len(missing) > 1 else 'it is'} not installed here (a bundle built with "
            "`serverless-ml package --onnx-only` serves .onnx models only); export the model with "
            "`serverless-ml export MODEL --to onnx` and set MODEL_URI to the .onnx file, or build the bundle "
            "without --onnx-only"
        )
    manifest = _ManifestRead(store, uri)
    if uri.scheme != "file":  # the format's library (joblib: NumPy too) is imported while the bytes travel
        threading.Thread(target=_import_quietly, args=(fmt.library,), name="model-library", daemon=True).start()
    # with no MODEL_SHA256, a large local file is hashed beside its load (core/model/fetch.py)
    fetched = fetch_model(uri, store, scratch_dir, hash_first=expected_sha256 is not None)
    try:
        digest = fetched.sha256
        if expected_sha256 is not None and digest != expected_sha256:
            # Refused before a single byte is deserialised: a pickle runs code while it loads.
            raise ModelDigestMismatch(
                f"the model at {uri.display} does not match MODEL_SHA256: expected {expected_sha256}, "
                f"found {digest}; it was not loaded"
            )
        found = manifest.result()
        if found is not None and found.sha256 is not None:
            digest = fetched.digest()  # a manifest's digest is checked before loading too: wait for it
            check_digest(found, uri.display, digest)
        context = LoadContext(
            uri=uri,
            data=fetched.data,
            sha256=digest,
            manifest=found,
            version=version,
            read_seconds=fetched.read_seconds,
            skops_trusted_types=skops_trusted_types,
            strict_version=strict_version,
            onnx_threads=onnx_threads,
            path=fetched.path,
            size_bytes=fetched.size_bytes,
            loaded_from=fetched.loaded_from,
            pending_sha256=None if digest else fetched.digest,
        )
        return loader(fmt).load(context)
    finally:
        fetched.discard()  # a scratch copy goes once the model is loaded or refused


def _peak_rss_bytes() -> int | None:
    """This process's peak resident memory so far; None where the platform does not say.

    Linux's VmHWM, not ru_maxrss: ru_maxrss survives exec, so a process started from a larger
    one (a test runner, a bootstrap) reports its parent's peak until it passes it."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def _import_quietly(name: str) -> None:
    try:
        with_stack_headroom(importlib.import_module, name)
    except Exception:  # the load imports it again and reports the failure
        pass


class _ManifestRead:
    """The manifest read: inline for local files, on a thread for remote storage (one round trip
    overlaps the model's read instead of following it)."""

    def __init__(self, store: ObjectStore, uri: StorageURI) -> None:
        self._store, self._uri = store, uri
        self._outcome: tuple[Manifest | None, ServerlessMLError | None] = (None, None)
        self._thread: threading.Thread | None = None
        if uri.scheme != "file":
            self._thread = threading.Thread(target=self._read, name="model-manifest", daemon=True)
            self._thread.start()

    def _read(self) -> None:
        try:
            self._outcome = (read_manifest(self._store, self._uri), None)
        except ServerlessMLError as exc:
            self._outcome = (None, exc)
        except Exception:  # a store's bug must not hang or crash the load: it is logged and fails it
            logger.error("manifest read failed", exc_info=True)
            self._outcome = (None, ModelUnavailable("the model's manifest could not be read; the error was logged"))

    def result(self) -> Manifest | None:
        if self._thread is None:
            self._read()
        else:
            self._thread.join()
        manifest, error = self._outcome
        if error is not None:
            raise error
        return manifest
