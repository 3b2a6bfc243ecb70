"""What the two scikit-learn formats (joblib, skops) share once the estimator is deserialised:
the checks, the scikit-learn version drift, the description."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from core.errors import ModelInvalid, ModelVersionMismatch, ServerlessMLError
from core.model.context import LoadContext
from core.model.description import ModelDescription, describe

logger = logging.getLogger("serverless_ml.model")

# scikit-learn warns on every predict() of an array when the model was fitted on a DataFrame.
# Without pandas the service always passes arrays, in the model's own feature order (the parser
# reorders named rows), so the warning says nothing and would flood the logs.
_FEATURE_NAMES_WARNING = "X does not have valid feature names"


def deserialize(context: LoadContext, read: Callable[[], Any]) -> tuple[Any, list, float]:
    """Run ``read()`` recording its warnings; return (object, warnings, seconds)."""
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator = read()
    return estimator, caught, time.perf_counter() - started


def describe_estimator(
    estimator: Any, context: LoadContext, caught: list, deserialize_seconds: float, fmt: str
) -> ModelDescription:
    if not callable(getattr(estimator, "predict", None)):
        raise ModelInvalid(
            f"the file at {context.display} holds a {type(estimator).__name__}, which has no predict(); "
            "expected a fitted scikit-learn estimator or pipeline"
        )
    drift = version_drift(caught)
    if drift is not None:
        saved, running = drift["saved_with"]["scikit-learn"], drift["running"]["scikit-learn"]
        if context.strict_version:
            raise ModelVersionMismatch(
                f"the model at {context.display} was saved with scikit-learn {saved} and this service runs "
                f"scikit-learn {running}; STRICT_MODEL_VERSION=true refuses it: save the model again with "
                f"scikit-learn {running}, or deploy scikit-learn=={saved}"
            )
        logger.warning(
            "model version drift",
            extra={"fields": {"model_uri": context.display, "saved_with": saved, "running": running,
                              "estimators": drift["estimators"]}},
        )
    if getattr(estimator, "feature_names_in_", None) is not None:
        warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING, category=UserWarning)

    notes = _unique(f"{w.category.__name__}: {w.message}" for w in caught)
    manifest = context.manifest
    if manifest is not None and manifest.python_version:
        import platform  # only when a manifest names a Python version

        here = platform.python_version()
        if manifest.python_version.split(".")[:2] != here.split(".")[:2]:
            notes.append(f"the manifest says the model was made with Python {manifest.python_version}; this is Python {here}")
    try:
        return describe(
            estimator,
            manifest=manifest,
            display=context.display,
            format=fmt,
            version_drift=drift,
            **context.identity(deserialize_seconds, tuple(notes)),
        )
    except ServerlessMLError:  # ModelInvalid, and ModelRuntimeMissing naming what to install
        raise
    except Exception as exc:  # an estimator of a shape this service does not understand
        logger.error("model description failed", exc_info=True, extra={"fields": {"model_uri": context.display}})
        raise ModelInvalid(
            f"the model at {context.display} ({type(estimator).__name__}) could not be inspected "
            f"({type(exc).__name__}); expected a fitted scikit-learn estimator or pipeline"
        ) from None


def version_drift(caught: list) -> dict[str, Any] | None:
    """From scikit-learn's InconsistentVersionWarning (one per estimator unpickled from another
    version): which version saved the model, which one runs it, and which estimators said so."""
    found = [w.message for w in caught if w.category.__name__ == "InconsistentVersionWarning"]
    if not found:
        return None
    first = found[0]
    saved = str(getattr(first, "original_sklearn_version", "unknown"))
    running = str(getattr(first, "current_sklearn_version", _running_sklearn()))
    return {
        "saved_with": {"scikit-learn": saved},
        "running": {"scikit-learn": running},
        "estimators": _unique(str(getattr(w, "estimator_name", "?")) for w in found),
    }


def _running_sklearn() -> str:
    module = sys.modules.get("sklearn")
    return getattr(module, "__version__", "unknown")


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))
