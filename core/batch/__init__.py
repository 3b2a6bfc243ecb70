"""Batch prediction: a ``.csv`` or ``.jsonl`` object (optionally ``.gz``) in, predictions out.

One engine for every trigger: a provider adapter (or the ``serverless-ml batch`` command) turns
its event into an input URI and calls :func:`run_batch`. Importing this package loads neither
NumPy nor a cloud SDK; the first run pays for them.

    engine.py     run_batch(): read in chunks, predict, write, publish; the BatchResult
    formats.py    which object names are inputs (.csv, .jsonl, optionally .gz), and why not
    lines.py      a byte stream -> chunks of numbered text lines, bounded memory
    readers.py    numbered lines -> rows of floats in feature order + per-line failures
    outputs.py    the predictions and errors files: their format, temp files, publishing
    locations.py  output keys from the input key, the loop guard, the output prefix check
    triggered.py  run_for_created_object(): what every storage trigger does with one object
"""

from typing import Any

__all__ = ["BatchResult", "run_batch", "run_for_created_object"]


def __getattr__(name: str) -> Any:
    # the engine is imported on first use: core.settings imports core.batch.locations, and the
    # engine imports the model loader, which imports core.settings
    if name == "run_for_created_object":
        from core.batch import triggered

        return triggered.run_for_created_object
    if name in __all__:
        from core.batch import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'core.batch' has no attribute {name!r}")
