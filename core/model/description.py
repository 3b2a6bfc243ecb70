"""What a loaded model is: its features, classes and identity, read once at load time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from core.model.inputs import check_frame_library
from core.model.manifest import Manifest, reconcile_classes, reconcile_feature_names, reconcile_schema
from core.model.schema_inference import infer_schema
from core.schema import InputSchema

# Estimators whose predict() is exactly classes_[argmax(predict_proba())]; for them one call to
# predict_proba answers both, which halves the cost of a request (a 200-tree forest walks its
# trees once instead of twice). Anything else (SVC with Platt scaling, for one) gets both calls.
_PREDICT_IS_ARGMAX_OF_PROBA = frozenset(
    {
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.neighbors._classification.KNeighborsClassifier",
        "sklearn.naive_bayes.GaussianNB",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    }
)


class ModelDescription(NamedTuple):
    """A loaded model and what callers need to know about it. Read-only once built."""

    estimator: Any
    version: str
    sha256: str
    size_bytes: int
    estimator_type: str
    feature_names: tuple[str, ...] | None
    feature_names_from_model: bool
    classes: list[Any] | None
    has_probabilities: bool
    predict_from_probabilities: bool
    loaded_at: str
    read_seconds: float
    deserialize_seconds: float
    warnings: tuple[str, ...] = ()
    format: str = "joblib"
    feature_names_source: str = "generated"  # model, manifest, mlflow (a signature) or generated (f0, f1, ...)
    manifest: Manifest | None = None
    # {"saved_with": {"scikit-learn": "1.5.2"}, "running": {"scikit-learn": "1.9.1"}, "estimators": [...]}
    version_drift: dict[str, Any] | None = None
    # Formats whose runtime answers labels and probabilities in one call (ONNX) set this:
    # infer(features) -> (predictions, probabilities or None); prediction.py then calls only it.
    infer: Callable[[Any], tuple[Any, Any]] | None = None
    # the columns, their types and the layout rows are given to the model in (core.schema)
    schema: InputSchema = InputSchema(None)
    # an MLflow model's identity (run_id, model_uuid, serialization_format, ...): core/model/mlflow_model.py
    mlflow: dict[str, Any] | None = None
    # where the file's bytes went to be loaded (core/model/fetch.py): memory, file or scratch
    loaded_from: str = "memory"
    # how much the process's peak RSS rose while loading (ru_maxrss after - before); None: unknown
    peak_memory_increase_bytes: int | None = None

    @property
    def n_features(self) -> int | None:
        return None if self.feature_names is None else len(self.feature_names)

    def public_view(self) -> dict[str, Any]:
        """The JSON of GET /model: identity, inputs, outputs; nothing about the server."""
        return {
            "model_version": self.version,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "estimator": self.estimator_type,
            "n_features": self.n_features,
            "feature_names": list(self.feature_names) if self.feature_names is not None else None,
            "feature_names_from_model": self.feature_names_from_model,
            "classes": self.classes,
            "has_probabilities": self.has_probabilities,
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.read_seconds + self.deserialize_seconds, 6),
            "load": {
                "bytes_read": self.size_bytes,
                "loaded_from": self.loaded_from,
                "peak_memory_increase_bytes": self.peak_memory_increase_bytes,
            },
            "warnings": list(self.warnings),
            "format": self.format,
            "feature_names_source": self.feature_names_source,
            "manifest": self.manifest.content if self.manifest is not None else None,
            "version_drift": self.version_drift,
            "input_schema": self.schema.as_json(),
            "mlflow": self.mlflow,
        }


def describe(
    estimator: Any, *, manifest: Manifest | None = None, display: str = "the model", **identity: Any
) -> ModelDescription:
    """Build the description of a freshly deserialised scikit-learn estimator (joblib, skops)."""
    names_in = getattr(estimator, "feature_names_in_", None)
    n_in = getattr(estimator, "n_features_in_", None)
    n_features = int(n_in) if isinstance(n_in, int) or (n_in is not None and hasattr(n_in, "__index__")) else None
    feature_names, source = reconcile_feature_names(
        manifest,
        tuple(str(name) for name in names_in) if names_in is not None else None,
        n_features,
        display,
    )

    classes = getattr(estimator, "classes_", None)
    if classes is not None and getattr(classes, "ndim", 0) != 1:
        # multi-output classifiers have a list of class arrays and a list of probability arrays;
        # they are served with predictions only (one list of outputs per row)
        classes_json: list[Any] | None = [_plain(c) for c in classes]
        has_probabilities = False
    else:
        classes_json = _plain(classes) if classes is not None else None
        has_probabilities = hasattr(estimator, "predict_proba")
        classes_json = reconcile_classes(manifest, classes_json, display) if classes is not None else None
    schema = reconcile_schema(manifest, infer_schema(estimator, feature_names), display)
    check_frame_library(schema, display)
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    final_type = f"{type(final).__module__}.{type(final).__qualname__}"
    return ModelDescription(
        estimator=estimator,
        estimator_type=_estimator_type(estimator),
        feature_names=feature_names,
        feature_names_from_model=source != "generated",
        feature_names_source=source,
        classes=classes_json,
        has_probabilities=has_probabilities,
        predict_from_probabilities=has_probabilities
        and classes is not None
        and final_type in _PREDICT_IS_ARGMAX_OF_PROBA,
        manifest=manifest,
        schema=schema,
        **identity,
    )


def _estimator_type(estimator: Any) -> str:
    if hasattr(estimator, "steps"):
        inner = " > ".join(type(step).__name__ for _, step in estimator.steps)
        return f"{type(estimator).__name__}({inner})"
    return type(estimator).__name__


def _plain(values: Any) -> list[Any]:
    """numpy array -> list of plain JSON values."""
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    return [item.item() if hasattr(item, "item") else item for item in items]
