"""``serverless-ml export MODEL --to onnx|skops [--out PATH] [--model-version V]``

Converts a scikit-learn model (``.joblib``/``.pkl``/``.pickle`` or ``.skops``) to ONNX (served by
onnxruntime, without scikit-learn) or to skops (loaded without running pickle code), and writes
the manifest next to it (``<out>.manifest.json``: feature names, classes, versions, digest).

ONNX export needs skl2onnx (``pip install skl2onnx``); it takes the model's number of features
from ``n_features_in_``, writes float32 inputs and probabilities as a tensor (no ZipMap), and
checks the ONNX model's labels against scikit-learn's on random rows before reporting success.

Prints one JSON line describing what it wrote. Exit status 0 written, 2 not written.
"""

from __future__ import annotations

import argparse

# what onnxruntime >= 1.17 (the extra's floor) runs; skl2onnx's default when a converter needs more
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="the model: a local path or a file://, s3://, gs://, az:// URI")
    parser.add_argument("--to", required=True, choices=("onnx", "skops"), help="the format to write")
    parser.add_argument("--out", help="where to write it (default: next to a local MODEL, with the new extension)")
    parser.add_argument("--model-version", help="the model_version to record in the manifest")


def run(args: argparse.Namespace) -> int:
    import sys

    from core.errors import ServerlessMLError

    try:
        print(_export(args), flush=True)
    except (ServerlessMLError, _ExportError) as exc:
        print(f"serverless-ml export: {exc.message}", file=sys.stderr)
        return 2
    return 0


class _ExportError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _export(args: argparse.Namespace) -> str:
    import json
    import os
    from pathlib import Path

    from core.model import load_model
    from core.model_formats import format_for_name, format_named, supported_extensions
    from core.settings import _type_names
    from core.storage import parse_uri, store_for

    source = args.model if "://" in args.model else Path(args.model).expanduser().resolve().as_uri()
    try:
        uri = parse_uri(source)
    except ValueError as exc:
        raise _ExportError(f"MODEL {args.model!r} is not a usable location: {exc}") from None
    fmt = format_for_name(uri.name)
    if fmt is None or fmt.name == "onnx":
        raise _ExportError(
            f"MODEL {uri.name!r} is not a scikit-learn model file; expected one of "
            f"{supported_extensions().replace(', .onnx (onnxruntime)', '')}"
        )
    if args.out:
        out = Path(args.out).expanduser().resolve()
    elif uri.scheme == "file":
        out = Path(uri.key).with_name(_stem(uri.name) + format_named(args.to).suffixes[0])
    else:
        raise _ExportError("--out is required when MODEL is not a local file")
    if format_for_name(out.name) is not format_named(args.to):
        raise _ExportError(f"--out {out.name!r} must end with {format_named(args.to).suffixes[0]} for --to {args.to}")
    if uri.scheme == "file" and out == Path(uri.key):
        raise _ExportError("--out is the model itself; choose another file")

    trusted = _type_names("SKOPS_TRUSTED_TYPES", os.environ.get("SKOPS_TRUSTED_TYPES"))
    model = load_model(uri, store_for(uri, 30.0), skops_trusted_types=trusted)
    estimator = model.estimator
    if args.to == "onnx":
        data, opset, check = _to_onnx(estimator, model)
        extra = {"onnx_opset": opset, "zipmap": False}
    else:
        data, extra, check = _to_skops(estimator), {}, None
        extra["skops_untrusted_types"] = _skops_untrusted(data)
    manifest = _manifest(model, out.name, args.to, data, args.model_version, source_uri=uri, extra=extra)
    _write(out, data)
    manifest_path = out.with_name(out.name + ".manifest.json")
    _write(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    report = {"written": str(out), "manifest": str(manifest_path), "format": args.to, "sha256": manifest["sha256"]}
    if check is not None:
        report["check"] = check
    if extra.get("skops_untrusted_types"):
        report["serve_with"] = {"SKOPS_TRUSTED_TYPES": ",".join(extra["skops_untrusted_types"])}
    return json.dumps(report)


def _stem(name: str) -> str:
    from core.model_formats import FORMATS

    lowered = name.lower()
    for fmt in FORMATS:
        for suffix in fmt.suffixes:
            at = lowered.rfind(suffix)
            if at > 0:
                return name[:at]
    return name


def _to_onnx(estimator, model) -> tuple[bytes, int, dict]:
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError:
        raise _ExportError("--to onnx needs skl2onnx, which is not installed here; install it with pip install skl2onnx") from None
    import numpy as np

    if model.n_features is None:
        raise _ExportError("the model does not say how many features it takes (no n_features_in_); it cannot be exported")
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if model.classes is not None and model.has_probabilities else None
    inputs = [("input", FloatTensorType([None, model.n_features]))]
    try:
        onx = to_onnx(estimator, initial_types=inputs, options=options, target_opset=ONNX_OPSET)
        opset = ONNX_OPSET[""]
    except Exception:
        # some converters (HistGradientBoosting) need a newer ai.onnx.ml opset: skl2onnx's default,
        # which the installed onnxruntime is then checked against below
        try:
            onx = to_onnx(estimator, initial_types=inputs, options=options)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise _ExportError(f"skl2onnx could not convert {model.estimator_type}: {first}") from None
        opset = next((o.version for o in onx.opset_import if o.domain in ("", "ai.onnx")), None)
    data = onx.SerializeToString()
    return data, opset, _check_onnx(estimator, data, model.n_features, np)


def _check_onnx(estimator, data: bytes, n_features: int, np) -> dict:
    """Labels of the ONNX model against scikit-learn's on random rows (a smoke test, not a proof)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"skipped": "onnxruntime is not installed"}
    rows = np.random.default_rng(0).normal(size=(64, n_features))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: rows.astype(np.float32)})[0]
    expected = estimator.predict(rows.astype(np.float32).astype(np.float64))
    if got.ndim == 2 and got.shape[1] == 1:
        got = got[:, 0]
    if expected.dtype.kind in "fc" and got.dtype.kind in "fc":
        agree = int(np.sum(np.isclose(got, expected, rtol=1e-4, atol=1e-4)))
    else:
        agree = int(np.sum(np.asarray(got).astype(str) == np.asarray(expected).astype(str)))
    return {"random_rows": len(rows), "same_prediction": agree}


def _to_skops(estimator) -> bytes:
    try:
        import skops.io as sio
    except ImportError:
        raise _ExportError("--to skops needs skops, which is not installed here; install it with pip install 'serverless-ml[skops]'") from None
    return sio.dumps(estimator)


def _skops_untrusted(data: bytes) -> list[str]:
    import skops.io as sio

    return [str(t) for t in sio.get_untrusted_types(data=data)]


def _manifest(model, file_name: str, fmt: str, data: bytes, version, *, source_uri, extra: dict) -> dict:
    import hashlib
    import platform
    import sys
    from datetime import datetime, timezone

    from core.model.manifest import MANIFEST_VERSION

    sklearn = sys.modules.get("sklearn")
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
        "sklearn_version": getattr(sklearn, "__version__", None),
        "python_version": platform.python_version(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": {"file": source_uri.name, "sha256": model.sha256},
        **extra,
    }
    return {k: v for k, v in manifest.items() if v is not None}


def _write(path, data: bytes) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)  # a reader never sees half a model
