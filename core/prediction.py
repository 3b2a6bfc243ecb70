"""Running the model on validated rows and turning its output into plain JSON values."""

from __future__ import annotations

import logging
import math
from itertools import chain
from typing import Any

from core.errors import PredictionFailed, PredictionRejected
from core.model import ModelDescription
from core.model.inputs import model_input

logger = logging.getLogger("serverless_ml.prediction")


def predict(model: ModelDescription, rows: list[list[Any]]) -> dict[str, Any]:
    """Predict ``rows`` (checked, in the model's column order); return predictions and, if any, probabilities.

    >>> predict(model, [[5.1, 3.5, 1.4, 0.2]])  # doctest: +SKIP
    {'predictions': ['setosa'], 'probabilities': [[1.0, 0.0, 0.0]], 'classes': ['setosa', ...]}
    """
    return answer_from(model, *predict_arrays(model, rows))


def answer_from(model: ModelDescription, predictions: Any, probabilities: Any) -> dict[str, Any]:
    """The answer's JSON values from :func:`predict_arrays`' arrays."""
    result: dict[str, Any] = {"predictions": json_values(predictions)}
    if probabilities is not None:
        result["probabilities"] = json_values(probabilities)
        result["classes"] = model.classes
    return result


def predict_arrays(model: ModelDescription, rows: Any) -> tuple[Any, Any]:
    """The model's predictions and probabilities (None without ``predict_proba``) as NumPy arrays,
    one row each per input row: for the batch engine, which formats whole columns at once."""
    import numpy as np  # already loaded with the model; kept out of core's import

    # ONNX (model.infer) builds its feeds from the checked rows itself, one typed tensor per column
    # with NumPy alone: never a DataFrame, so never pandas
    features = rows if model.infer is not None else model_input(model.schema, rows)
    estimator = model.estimator
    skip = model.infer is None and model.schema.model_checks_redundant and _within_float32(features)
    checks = _SecondFiniteCheckSkipped() if skip else _NOTHING_SKIPPED
    try:
        with checks:
            if model.infer is not None:  # ONNX: labels and probabilities from one run of the graph
                predictions, probabilities = model.infer(features)
            elif model.has_probabilities:
                probabilities = estimator.predict_proba(features)
                if model.predict_from_probabilities:
                    predictions = estimator.classes_[probabilities.argmax(axis=1)]
                else:
                    predictions = estimator.predict(features)
            else:
                probabilities = None
                predictions = estimator.predict(features)
    except (ValueError, TypeError) as exc:
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise PredictionRejected(f"the model rejected the rows: {first_line}") from None
    except Exception:
        logger.error("prediction failed", exc_info=True)
        raise PredictionFailed("the model failed while predicting; the error was logged") from None

    if len(predictions) != len(rows):
        raise PredictionFailed(
            f"the model returned {len(predictions)} predictions for {len(rows)} rows; expected one per row"
        )
    return np.asarray(predictions), probabilities


# The largest float32; a larger finite float64 becomes inf in a model that works in float32 (every
# tree ensemble), and only scikit-learn's own check refuses it then.
_FLOAT32_MAX = 3.4028234663852886e38


def _within_float32(features: Any) -> bool:
    """Whether every number of ``features`` (a float matrix, a DataFrame, or texts) stays finite
    in float32. NaN compares False, so a missing value never counts against it."""
    import numpy as np

    if isinstance(features, np.ndarray):
        return features.dtype.kind != "f" or not bool((np.abs(features) > _FLOAT32_MAX).any())
    dtypes = getattr(features, "dtypes", None)
    if dtypes is None:  # texts (a vectoriser's input): no numbers
        return True
    for name, dtype in dtypes.items():
        if getattr(dtype, "kind", "O") == "f" and bool((np.abs(features[name].to_numpy()) > _FLOAT32_MAX).any()):
            return False
    return True


class _SecondFiniteCheckSkipped:
    """scikit-learn's own check that every value is finite (``assume_finite``) skipped for one call.

    Rows reach the model only after core has refused every infinity and every null where the
    schema takes none (core.request.rows over HTTP, core.batch.readers in batch), so scikit-learn's
    second look at the same values is skipped where it can only repeat core's
    (``InputSchema.model_checks_redundant``: a plain numeric schema, or one read from the fitted
    model): 9 us of a logistic regression's 89 us on one row, with the switch and its undoing
    counted (bench/warm_overhead.py); about 130 us of a 3 ms DataFrame pipeline's
    (bench/typed_serving.py). A manifest's or an MLflow signature's schema keeps it: it may call a
    column nullable where the model cannot take NaN, and the model's refusal is then the answer.
    So does a request with a number beyond float32's range (1e300): a tree ensemble predicts in
    float32, where it is an infinity that only scikit-learn's check refuses. scikit-learn's setting is put back as it was afterwards
    (it is per thread, and the caller's own), which config_context does at 10 us, this at 1."""

    __slots__ = ("_set", "_before")

    def __enter__(self) -> None:
        try:
            import sklearn  # loaded already for a scikit-learn estimator
        except ImportError:  # an estimator of another library, in a bundle without scikit-learn
            self._set = None
            return
        self._set = sklearn.set_config
        self._before = sklearn.get_config()["assume_finite"]
        self._set(assume_finite=True)

    def __exit__(self, *exc_info: object) -> None:
        if self._set is not None:
            self._set(assume_finite=self._before)


class _NothingSkipped:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NOTHING_SKIPPED = _NothingSkipped()


def json_values(array: Any) -> list[Any]:
    """A numpy array as nested lists of JSON values: non-finite floats become null."""
    values = array.tolist()
    if array.dtype.kind == "f":
        if not _all_finite(array, values):
            return _replace_non_finite(values)
        return values
    if array.dtype.kind == "O":
        return [_scalar(v) for v in values]
    return values


def _all_finite(array: Any, values: list) -> bool:
    if array.size <= 64 and array.ndim in (1, 2):
        # a few rows: math.isfinite over the floats tolist() made already, a fifth of the time of
        # NumPy's isfinite().all() on an array this small (its call overhead)
        return all(map(math.isfinite, values if array.ndim == 1 else chain.from_iterable(values)))
    import numpy as np

    return bool(np.isfinite(array).all())


def _replace_non_finite(values: Any) -> Any:
    if isinstance(values, list):
        return [_replace_non_finite(v) for v in values]
    return values if math.isfinite(values) else None


def _scalar(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
