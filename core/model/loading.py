"""Loading the model: lazily, once per process, digest checked before deserialising.

The first caller that needs the model reads and deserialises it while holding a lock; callers
arriving meanwhile wait for that one load instead of starting their own. A failed load is not
remembered: the next request tries again, so a model uploaded after a failure is picked up
without a restart.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
import warnings
from datetime import datetime, timezone
from typing import Callable, Optional

from core.errors import (
    ModelDigestMismatch,
    ModelInvalid,
    ModelUnavailable,
    ServerlessMLError,
    StorageError,
)
from core.model.description import ModelDescription, describe
from core.settings import Settings
from core.storage import ObjectStore, StorageURI, store_for

logger = logging.getLogger("serverless_ml.model")

# scikit-learn warns on every predict() of an array when the model was fitted on a DataFrame.
# Without pandas the service always passes arrays, in the model's own feature order (the parser
# reorders named rows), so the warning says nothing and would flood the logs.
_FEATURE_NAMES_WARNING = "X does not have valid feature names"


class ModelHolder:
    """Holds the one model of this process; ``get()`` loads it on first use."""

    def __init__(
        self, settings: Settings, *, store_for: Callable[..., ObjectStore] = store_for
    ) -> None:
        self._settings = settings
        self._store_for = store_for
        self._lock = threading.Lock()
        self._model: Optional[ModelDescription] = None
        self.last_error: Optional[ServerlessMLError] = None
        self.load_attempts = 0

    @property
    def loaded(self) -> Optional[ModelDescription]:
        return self._model

    def get(self) -> ModelDescription:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> ModelDescription:
        uri = self._settings.model_uri
        self.load_attempts += 1
        try:
            try:
                store = self._store_for(uri, self._settings.storage_timeout_seconds)
            except StorageError as exc:
                raise ModelUnavailable(f"the model could not be read: {exc.message}") from None
            model = load_model(uri, store, self._settings.model_sha256, self._settings.model_version)
        except ServerlessMLError as exc:
            self.last_error = exc
            logger.error("model load failed", extra={"fields": {"model_uri": uri.display, "error_code": exc.code, "reason": exc.message}})
            raise
        self.last_error = None
        logger.info(
            "model loaded",
            extra={
                "fields": {
                    "model_uri": uri.display,
                    "model_version": model.version,
                    "sha256": model.sha256,
                    "estimator": model.estimator_type,
                    "read_ms": round(model.read_seconds * 1000, 3),
                    "deserialize_ms": round(model.deserialize_seconds * 1000, 3),
                    "warnings": list(model.warnings),
                }
            },
        )
        return model


def load_model(
    uri: StorageURI, store: ObjectStore, expected_sha256: Optional[str], version: Optional[str]
) -> ModelDescription:
    """Read, verify and deserialise one model file; raise a ModelUnavailable subclass on failure."""
    started = time.perf_counter()
    try:
        data = store.read_bytes(uri)
    except StorageError as exc:
        raise ModelUnavailable(f"the model could not be read: {exc.message}") from None
    read_seconds = time.perf_counter() - started

    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        # Refused before a single byte is deserialised: a pickle runs code while it loads.
        raise ModelDigestMismatch(
            f"the model at {uri.display} does not match MODEL_SHA256: expected {expected_sha256}, "
            f"found {digest}; it was not loaded"
        )

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator = _deserialize(uri, data)
    deserialize_seconds = time.perf_counter() - started

    if not callable(getattr(estimator, "predict", None)):
        raise ModelInvalid(
            f"the file at {uri.display} holds a {type(estimator).__name__}, which has no predict(); "
            "expected a fitted scikit-learn estimator or pipeline"
        )
    if getattr(estimator, "feature_names_in_", None) is not None:
        warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING, category=UserWarning)

    try:
        return describe(
            estimator,
            version=version or f"sha256:{digest[:12]}",
            sha256=digest,
            size_bytes=len(data),
            loaded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            read_seconds=read_seconds,
            deserialize_seconds=deserialize_seconds,
            warnings=tuple(f"{w.category.__name__}: {w.message}" for w in caught),
        )
    except Exception as exc:  # an estimator of a shape this service does not understand
        logger.error("model description failed", exc_info=True, extra={"fields": {"model_uri": uri.display}})
        raise ModelInvalid(
            f"the model at {uri.display} ({type(estimator).__name__}) could not be inspected "
            f"({type(exc).__name__}); expected a fitted scikit-learn estimator or pipeline"
        ) from None


def _deserialize(uri: StorageURI, data: bytes):
    import joblib  # the first model load pays for it, not the import of core

    try:
        return joblib.load(io.BytesIO(data))
    except ImportError as exc:
        raise ModelInvalid(
            f"the model at {uri.display} needs module '{exc.name}', which is not installed here; "
            "install the package the model was built with"
        ) from None
    except Exception as exc:  # any unpickling failure: a corrupt or foreign file
        logger.error("model deserialisation failed", exc_info=True, extra={"fields": {"model_uri": uri.display}})
        raise ModelInvalid(
            f"the file at {uri.display} could not be deserialised as a joblib/pickle model "
            f"({type(exc).__name__}); expected a file written by joblib.dump"
        ) from None
