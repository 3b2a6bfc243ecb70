"""The model manifest: an optional JSON file next to the model, named ``<model file>.manifest.json``.

It says what the model file alone may not: the feature names of a model fitted on arrays or
exported to ONNX, the classes, the versions it was made with, and which file it describes::

    {
      "manifest_version": 1,
      "model_file": "iris.onnx",
      "format": "onnx",
      "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      "model_version": "2026-11-iris",
      "estimator": "RandomForestClassifier",
      "task": "classification",
      "feature_names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
      "classes": ["setosa", "versicolor", "virginica"],
      "sklearn_version": "1.9.1",
      "python_version": "3.11.7"
    }

Every field is optional. A manifest that is present but does not describe the model file (another
digest, other feature names or classes) is refused with the model: serving a model with the wrong
names would answer wrong predictions without an error. A manifest never widens what is trusted:
skops types are trusted by ``SKOPS_TRUSTED_TYPES`` only.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from core.errors import ModelInvalid, ModelUnavailable, ObjectNotFound, StorageAccessDenied, StorageError
from core.schema import InputSchema, SchemaInvalid, schema_from_json
from core.storage import ObjectStore, StorageURI

if TYPE_CHECKING:
    from collections.abc import Callable

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 1024 * 1024
_SHA256 = r"[0-9a-f]{64}"  # compiled (and cached) by re.fullmatch when a manifest has a digest


class Manifest(NamedTuple):
    """A validated manifest. ``content`` is the JSON as read, shown by GET /model."""

    content: dict[str, Any]
    display: str
    feature_names: tuple[str, ...] | None = None
    classes: list[Any] | None = None
    sha256: str | None = None
    model_version: str | None = None
    estimator: str | None = None
    sklearn_version: str | None = None
    python_version: str | None = None
    input_schema: InputSchema | None = None


def manifest_uri(model_uri: StorageURI) -> StorageURI:
    """``s3://b/models/iris.onnx`` -> ``s3://b/models/iris.onnx.manifest.json``."""
    return StorageURI(model_uri.scheme, model_uri.bucket, model_uri.key + MANIFEST_SUFFIX)


def read_manifest(store: ObjectStore, model_uri: StorageURI) -> Manifest | None:
    """The model's manifest, or None when there is none.

    Access denied counts as absent: a function allowed to read only the model object (an IAM policy
    on one key) still serves it. Any other storage failure fails the load (and the next request
    retries), since serving without a manifest that exists could change the feature names.
    """
    uri = manifest_uri(model_uri)
    try:
        raw = store.read_bytes(uri)
    except (ObjectNotFound, StorageAccessDenied):
        return None
    except StorageError as exc:
        raise ModelUnavailable(f"the model's manifest could not be read: {exc.message}") from None
    return parse_manifest(raw, uri.display)


def parse_manifest(raw: bytes, display: str) -> Manifest:
    """Validate a manifest's bytes; raise ModelInvalid naming the field that is wrong."""

    def invalid(reason: str) -> ModelInvalid:
        return ModelInvalid(f"the manifest {display} is not valid: {reason}; fix or remove it")

    if len(raw) > MAX_MANIFEST_BYTES:
        raise invalid(f"it has {len(raw)} bytes, expected at most {MAX_MANIFEST_BYTES}")
    try:
        content = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid(f"it is not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(content, dict):
        raise invalid(f"expected a JSON object, found {type(content).__name__}")

    def text(field: str, limit: int = 256) -> str | None:
        value = content.get(field)
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
            raise invalid(f"'{field}' must be a non-empty string of at most {limit} printable characters")
        return value

    feature_names = _feature_names(content.get("feature_names"), invalid)
    classes = _classes(content.get("classes"), invalid)
    input_schema = None
    if content.get("input_schema") is not None:
        try:
            input_schema = schema_from_json(content["input_schema"], source="manifest")
        except SchemaInvalid as exc:
            raise invalid(f"'input_schema': {exc}") from None
        if feature_names is not None and input_schema.names != feature_names:
            raise invalid("'input_schema' names other columns than 'feature_names'")
    sha256 = content.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not re.fullmatch(_SHA256, sha256.lower())):
        raise invalid("'sha256' must be 64 hexadecimal characters")
    return Manifest(
        content=content,
        display=display,
        feature_names=feature_names,
        classes=classes,
        sha256=sha256.lower() if sha256 else None,
        model_version=text("model_version", 128),
        estimator=text("estimator"),
        sklearn_version=text("sklearn_version", 64),
        python_version=text("python_version", 64),
        input_schema=input_schema,
    )


def _feature_names(value: Any, invalid: Callable[[str], ModelInvalid]) -> tuple[str, ...] | None:
    """A manifest's 'feature_names' (None when absent), or ``invalid``'s error saying what is wrong."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(n, str) and n for n in value):
        raise invalid("'feature_names' must be a non-empty list of non-empty strings")
    if len(set(value)) != len(value):
        raise invalid("'feature_names' has duplicates")
    return tuple(value)


def _classes(value: Any, invalid: Callable[[str], ModelInvalid]) -> list[Any] | None:
    """A manifest's 'classes' (None when absent), or ``invalid``'s error saying what is wrong."""
    if value is not None and (
        not isinstance(value, list) or not value or not all(isinstance(c, (str, int, float, bool)) for c in value)
    ):
        raise invalid("'classes' must be a non-empty list of strings or numbers")
    return value


def check_digest(manifest: Manifest, model_display: str, digest: str) -> None:
    """Refuse a manifest written for another file."""
    if manifest.sha256 is not None and manifest.sha256 != digest:
        raise ModelInvalid(
            f"the manifest {manifest.display} describes a file with sha256 {manifest.sha256}, but "
            f"{model_display} has sha256 {digest}; export the model again or remove the manifest"
        )


def reconcile_feature_names(
    manifest: Manifest | None, from_model: tuple[str, ...] | None, n_features: int | None, display: str
) -> tuple[tuple[str, ...] | None, str]:
    """The feature names to serve and where they come from: 'model', 'manifest' or 'generated'.

    Names the model carries win, and a manifest that contradicts them is refused; a manifest's
    names must match the model's number of inputs.
    """
    listed = manifest.feature_names if manifest is not None else None
    shown = manifest.display if manifest is not None else ""  # named only where listed, so a manifest
    if from_model is not None:
        if listed is not None and tuple(listed) != tuple(from_model):
            raise ModelInvalid(
                f"the manifest {shown} lists feature names {_short(listed)}, but the model "
                f"{display} was fitted on {_short(from_model)}; export the model again or remove the manifest"
            )
        return tuple(from_model), "model"
    if listed is not None:
        if n_features is not None and len(listed) != n_features:
            raise ModelInvalid(
                f"the manifest {shown} lists {len(listed)} feature names, but the model "
                f"{display} takes {n_features} features; export the model again or remove the manifest"
            )
        return tuple(listed), "manifest"
    if n_features is not None:
        # Models fitted on arrays have no names; f0..fN-1 lets rows still be sent as objects.
        return tuple(f"f{i}" for i in range(n_features)), "generated"
    return None, "generated"


def reconcile_classes(manifest: Manifest | None, from_model: list[Any] | None, display: str) -> list[Any] | None:
    listed = manifest.classes if manifest is not None else None
    shown = manifest.display if manifest is not None else ""
    if from_model is not None and listed is not None and list(listed) != list(from_model):
        raise ModelInvalid(
            f"the manifest {shown} lists classes {_short(listed)}, but the model {display} "
            f"has {_short(from_model)}; export the model again or remove the manifest"
        )
    return from_model if from_model is not None else (list(listed) if listed is not None else None)


def reconcile_schema(manifest: Manifest | None, from_model: InputSchema, display: str) -> InputSchema:
    """The manifest's input schema where it has one (it may say more than the fitted model: types
    of a model fitted on arrays, categories), else the model's own. A manifest whose columns are
    not the model's is refused, as for feature names."""
    listed = manifest.input_schema if manifest is not None else None
    shown = manifest.display if manifest is not None else ""
    if listed is None:
        return from_model
    if from_model.names is not None and from_model.source != "numeric" and listed.names != from_model.names:
        raise ModelInvalid(
            f"the manifest {shown} describes the columns {_short(listed.names or ())}, but the model "
            f"{display} takes {_short(from_model.names)}; export the model again or remove the manifest"
        )
    if from_model.names is not None and len(listed.names or ()) != len(from_model.names):
        raise ModelInvalid(
            f"the manifest {shown} describes {len(listed.names or ())} columns, but the model "
            f"{display} takes {len(from_model.names)}; export the model again or remove the manifest"
        )
    return listed


def _short(values: Any) -> str:
    text = json.dumps(list(values))
    return text if len(text) <= 120 else text[:117] + "..."
