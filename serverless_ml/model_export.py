"""Writing a model file in a format core serves, with its manifest: shared by ``serverless-ml
export`` (a model file in, another format out) and :func:`serverless_ml.save_model` (a fitted
model from training code).

The manifest (core/model/manifest.py) carries the model's input schema under ``input_schema``
(core/schema.py, without its ``source``): the schema the written file is served with, so a served
ONNX graph knows its categories and which columns take a missing value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from core.schema import InputSchema
from serverless_ml.onnx_export import ExportRefused, to_onnx


class Written(NamedTuple):
    path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    report: dict[str, Any]  # the JSON line `serverless-ml export` prints


def write_model(
    model: Any,
    out: Path,
    fmt: str,
    *,
    schema: InputSchema,
    version: str | None = None,
    source: dict[str, Any] | None = None,
    sample: list[list[Any]] | None = None,
    sample_labels: list[Any] | None = None,
) -> Written:
    """Serialise ``model`` (core's ModelDescription of a scikit-learn model) to ``out`` as ``fmt``
    (joblib, skops or onnx), then its manifest next to it; nothing is written if it is refused."""
    import json

    extra: dict[str, Any] = {}
    check = None
    if fmt == "onnx":
        converted = to_onnx(model, schema, sample, sample_labels)
        data, schema, check = converted.data, converted.schema, converted.check
        extra = {"onnx_opset": converted.opset, "zipmap": False}
    elif fmt == "skops":
        data = _to_skops(model.estimator)
        extra["skops_untrusted_types"] = _skops_untrusted(data)
    elif fmt == "joblib":
        data = _to_joblib(model.estimator)
    else:
        raise ExportRefused(f"cannot write {fmt!r}; expected joblib, skops or onnx")
    manifest = manifest_for(model, out.name, fmt, data, version, schema=schema, source=source, extra=extra)
    write_atomically(out, data)
    manifest_path = out.with_name(out.name + ".manifest.json")
    write_atomically(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    report: dict[str, Any] = {"written": str(out), "manifest": str(manifest_path), "format": fmt, "sha256": manifest["sha256"]}
    if check is not None:
        report["check"] = check
    if extra.get("skops_untrusted_types"):
        report["serve_with"] = {"SKOPS_TRUSTED_TYPES": ",".join(extra["skops_untrusted_types"])}
    return Written(out, manifest_path, manifest, report)


def manifest_for(model: Any, file_name: str, fmt: str, data: bytes, version: str | None, *,
                 schema: InputSchema, source: dict[str, Any] | None, extra: dict) -> dict[str, Any]:
    import hashlib
    import platform
    import sys
    from datetime import datetime, timezone

    from core.model.manifest import MANIFEST_VERSION

    sklearn = sys.modules.get("sklearn")
    input_schema = None
    if schema.columns is not None:
        input_schema = {k: v for k, v in schema.as_json().items() if k != "source"}
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "model_file": file_name,
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "model_version": version,
        "estimator": model.estimator_type,
        "task": "classification" if model.classes is not None else "regression",
        "feature_names": list(model.feature_names) if model.feature_names is not None else None,
        "classes": model.classes,
        "input_schema": input_schema,
        "sklearn_version": getattr(sklearn, "__version__", None),
        "python_version": platform.python_version(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        **extra,
    }
    return {k: v for k, v in manifest.items() if v is not None}


def _to_joblib(estimator: Any) -> bytes:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def _to_skops(estimator: Any) -> bytes:
    try:
        import skops.io as sio
    except ImportError:
        raise ExportRefused("--to skops needs skops, which is not installed here; install it with pip install 'serverless-ml[skops]'") from None
    return sio.dumps(estimator)


def _skops_untrusted(data: bytes) -> list[str]:
    import skops.io as sio

    return [str(t) for t in sio.get_untrusted_types(data=data)]


def write_atomically(path: Path, data: bytes) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)  # a reader never sees half a model
