"""What a model needs in its bundle beyond core, read from the model itself (``serverless-ml
package --model PATH``): pandas when its input schema's layout is ``frame``.

    needs = model_needs(Path("titanic.joblib"))
    needs.extras   # ("pandas",)
    needs.reason   # "the model takes its rows as a DataFrame (layout 'frame', from the fitted joblib model)"

The schema is found as the function finds it at run time (core's own loader, first match wins):
the manifest beside the model (``<model>.manifest.json``, its ``input_schema``) without
deserialising anything, else the fitted model, loaded here the way core loads it. An ``.onnx``
model never needs pandas: onnxruntime takes typed tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from serverless_ml.bundles.errors import BundleError
from serverless_ml.bundles.providers import DATAFRAME_EXTRA


class ModelUnreadable(BundleError):
    """--model names a file whose input schema could not be read here."""


@dataclass(frozen=True)
class ModelNeeds:
    extras: tuple[str, ...]  # pyproject.toml extras the model needs ("pandas")
    format: str  # core's format name: joblib, skops, onnx
    reason: str  # for the report: what was read and what it says


def model_needs(path: Path) -> ModelNeeds:
    """The extras the model at ``path`` needs; raise ModelUnreadable saying why it cannot tell."""
    from core.file_formats import format_for_name, supported_extensions

    if not path.is_file():
        raise ModelUnreadable(f"--model {path} is not a file; expected the model file the bundle will serve")
    fmt = format_for_name(path.name)
    if fmt is None:
        raise ModelUnreadable(
            f"--model {path} has an extension core cannot load; expected one of {supported_extensions()}")
    if fmt.name == "onnx":
        return ModelNeeds((), fmt.name, "an .onnx model takes typed tensors: onnxruntime serves it without pandas")
    schema = _manifest_schema(path)
    origin = "its manifest's input_schema"
    if schema is None:
        schema, origin = _fitted_schema(path), f"the fitted {fmt.name} model"
    from core.model.inputs import needs_pandas

    if needs_pandas(schema):
        return ModelNeeds((DATAFRAME_EXTRA,), fmt.name,
                          f"the model takes its rows as a DataFrame (layout 'frame', from {origin})")
    return ModelNeeds((), fmt.name, f"the model takes its rows as {_layout_text(schema.layout)} (from {origin})")


def _layout_text(layout: str) -> str:
    return {"array": "a float matrix", "text": "a list of texts"}.get(layout, f"layout {layout!r}")


def _manifest_schema(path: Path):
    from core.errors import ModelUnavailable
    from core.model.manifest import MANIFEST_SUFFIX, parse_manifest

    manifest = path.with_name(path.name + MANIFEST_SUFFIX)
    if not manifest.is_file():
        return None
    try:
        return parse_manifest(manifest.read_bytes(), str(manifest)).input_schema
    except ModelUnavailable as exc:
        raise ModelUnreadable(f"--model {path}: {exc.message}") from None


def _fitted_schema(path: Path):
    """The schema core gives the loaded model. A pickle runs code while it loads: --model is for
    the user's own model, on the machine it was trained on."""
    from core.errors import ModelRuntimeMissing, ModelUnavailable
    from core.model.loading import load_model
    from core.storage import parse_uri, store_for

    uri = parse_uri(path.resolve().as_uri())
    trusted = tuple(t.strip() for t in os.environ.get("SKOPS_TRUSTED_TYPES", "").split(",") if t.strip())
    try:
        return load_model(uri, store_for(uri), skops_trusted_types=trusted).schema
    except ModelRuntimeMissing as exc:
        raise ModelUnreadable(
            f"--model {path} could not be loaded here to read its input schema: {exc.message}. "
            f"Install what it names here, or say what the bundle needs with --extra {DATAFRAME_EXTRA}") from None
    except ModelUnavailable as exc:
        raise ModelUnreadable(f"--model {path} could not be loaded to read its input schema: {exc.message}") from None
