"""The ``serverless-ml`` command: the one place that knows every provider (core knows none), and
the Python API for training code::

    import serverless_ml
    serverless_ml.save_model(model, "model.onnx", sample=training_frame)  # model + manifest

(see serverless_ml/saving.py).
"""

from __future__ import annotations

from typing import Any

__all__ = ["save_model", "schema_from_sample", "SavedModel", "ExportRefused"]


def __getattr__(name: str) -> Any:
    # imported on first use: `serverless-ml package` and friends never load the saving code
    if name in ("save_model", "schema_from_sample", "SavedModel"):
        from serverless_ml import saving

        return getattr(saving, name)
    if name == "ExportRefused":
        from serverless_ml.onnx_export import ExportRefused

        return ExportRefused
    raise AttributeError(f"module 'serverless_ml' has no attribute {name!r}")
