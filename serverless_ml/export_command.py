"""``serverless-ml export MODEL --to onnx|skops [--out PATH] [--model-version V]``

Converts a scikit-learn model (``.joblib``/``.pkl``/``.pickle`` or ``.skops``) to ONNX (served by
onnxruntime, without scikit-learn) or to skops (loaded without running pickle code), and writes
the manifest next to it (``<out>.manifest.json``: feature names, classes, the input schema,
versions, digest).

ONNX export needs skl2onnx (``pip install skl2onnx``). A model fitted on numbers gets one float32
input; a DataFrame pipeline (strings, categories, missing values) one typed input per column; a
text pipeline one string input (see serverless_ml/onnx_export.py). The graph is checked against
scikit-learn on rows made from the model's schema (labels equal, probabilities within 1e-5) and not
written if they disagree; a step skl2onnx cannot convert is named.

Prints one JSON line describing what it wrote. Exit status 0 written, 2 not written.
"""

from __future__ import annotations

import argparse

from serverless_ml.onnx_export import ONNX_OPSET, ExportRefused  # noqa: F401  (ONNX_OPSET: its old home)


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
    except (ServerlessMLError, ExportRefused) as exc:
        print(f"serverless-ml export: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _export(args: argparse.Namespace) -> str:
    import json
    import os
    from pathlib import Path

    from core.file_formats import format_for_name, format_named, supported_extensions
    from core.model import load_model
    from core.settings import _type_names
    from core.storage import parse_uri, store_for
    from serverless_ml.model_export import write_model

    source = args.model if "://" in args.model else Path(args.model).expanduser().resolve().as_uri()
    try:
        uri = parse_uri(source)
    except ValueError as exc:
        raise ExportRefused(f"MODEL {args.model!r} is not a usable location: {exc}") from None
    fmt = format_for_name(uri.name)
    if fmt is None or fmt.name == "onnx":
        raise ExportRefused(
            f"MODEL {uri.name!r} is not a scikit-learn model file; expected one of "
            f"{supported_extensions().replace(', .onnx (onnxruntime)', '')}"
        )
    if args.out:
        out = Path(args.out).expanduser().resolve()
    elif uri.scheme == "file":
        out = Path(uri.key).with_name(_stem(uri.name) + format_named(args.to).suffixes[0])
    else:
        raise ExportRefused("--out is required when MODEL is not a local file")
    if format_for_name(out.name) is not format_named(args.to):
        raise ExportRefused(f"--out {out.name!r} must end with {format_named(args.to).suffixes[0]} for --to {args.to}")
    if uri.scheme == "file" and out == Path(uri.key):
        raise ExportRefused("--out is the model itself; choose another file")

    trusted = _type_names("SKOPS_TRUSTED_TYPES", os.environ.get("SKOPS_TRUSTED_TYPES"))
    model = load_model(uri, store_for(uri, 30.0), skops_trusted_types=trusted)
    written = write_model(model, out, args.to, schema=model.schema, version=args.model_version,
                          source={"file": uri.name, "sha256": model.sha256})
    return json.dumps(written.report)


def _stem(name: str) -> str:
    from core.file_formats import FORMATS

    lowered = name.lower()
    for fmt in FORMATS:
        for suffix in fmt.suffixes:
            at = lowered.rfind(suffix)
            if at > 0:
                return name[:at]
    return name
