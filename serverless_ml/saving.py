"""Saving a fitted model from training code, with the manifest core serves it by.

    >>> import pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.impute import SimpleImputer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> import serverless_ml
    >>> frame = pd.DataFrame({"age": [22.0, None, 38.0, 26.0], "pclass": [3, 1, 1, 3],
    ...                       "sex": ["male", "female", "female", "male"]})
    >>> model = Pipeline([
    ...     ("prepare", ColumnTransformer([("num", SimpleImputer(), ["age", "pclass"]),
    ...                                    ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex"])])),
    ...     ("classify", LogisticRegression()),
    ... ]).fit(frame, [False, True, True, False])
    >>> saved = serverless_ml.save_model(model, "titanic.onnx", sample=frame)  # doctest: +SKIP
    >>> saved.manifest["input_schema"]["columns"][1]  # doctest: +SKIP
    {'name': 'pclass', 'type': 'integer', 'nullable': True}

``titanic.onnx`` and ``titanic.onnx.manifest.json`` are then what ``MODEL_URI`` points at (and
its manifest beside it). The format follows the extension: ``.joblib`` (also ``.pkl``),
``.skops`` or ``.onnx`` (converted with skl2onnx and checked against the model on the sample;
refused, writing nothing, where they disagree).

The input schema is read from the fitted model (core/model/schema_inference.py: encoders'
categories, imputers, text vectorisers, missing-value support) and refined by the sample the way
MLflow infers a signature from an input example: a column the model reads as a number is an
``integer`` or ``boolean`` where the sample's dtype is, ``categorical`` (with the dtype's
categories) where it is a ``category``; a column takes a missing value where the model takes one
or the sample has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.schema import ANY, BOOLEAN, CATEGORICAL, INTEGER, NUMBER, TEXT, Column, InputSchema
from serverless_ml.model_export import Written, write_model
from serverless_ml.onnx_export import ExportRefused

SavedModel = Written
MAX_CHECKED_ROWS = 1000


def save_model(model: Any, path: str | Path, *, sample: Any = None, model_version: str | None = None) -> SavedModel:
    """Write the fitted scikit-learn ``model`` to ``path`` and its manifest to
    ``<path>.manifest.json``; return where they went, the manifest and (ONNX) the check's report.

    ``sample``: some rows of the training data (a DataFrame; for a text model a list of texts; for
    a model fitted on an array, an array or a DataFrame naming its columns). It refines the schema
    and, for ``.onnx``, is what the graph is checked on (at most 1000 rows, evenly spaced). Without
    it the schema is the model's own and the ONNX check uses rows made from that schema.

    Raises ExportRefused (a ValueError) saying why when the model cannot be written as asked.
    """
    from core.file_formats import format_for_name

    out = Path(path).expanduser().resolve()
    fmt = format_for_name(out.name)
    if fmt is None:
        raise ExportRefused(f"{out.name!r} has no model extension; expected .joblib, .pkl, .skops or .onnx")
    described = _describe(model)
    schema = described.schema if sample is None else schema_from_sample(described.schema, sample)
    if schema.columns is not None and described.feature_names_source == "generated":
        described = described._replace(feature_names=schema.names)  # named by the sample's columns
    rows = labels = None
    if sample is not None and fmt.name == "onnx":
        rows, labels = sample_rows(schema, sample)
    written = write_model(described, out, fmt.name, schema=schema, version=model_version, sample=rows, sample_labels=labels)
    return written


def schema_from_sample(schema: InputSchema, sample: Any) -> InputSchema:
    """``schema`` (the fitted model's) refined by a sample of the training data; see the module docstring."""
    if schema.layout == TEXT:
        texts = _texts(sample)
        missing = any(_missing(t) for t in texts)
        return InputSchema([schema.columns[0]._replace(nullable=schema.columns[0].nullable or missing)],
                           layout=TEXT, source=schema.source)
    frame = _frame(sample, schema)
    if schema.columns is None:
        columns = [Column(str(name), NUMBER) for name in frame.columns]
    else:
        missing_names = [c.name for c in schema.columns if c.name not in frame.columns]
        if missing_names:
            raise ExportRefused(f"the sample has no column {', '.join(repr(n) for n in missing_names[:5])}; "
                                f"expected the model's columns: {', '.join(schema.names)}")
        columns = list(schema.columns)
    return InputSchema([_refined(column, frame[column.name]) for column in columns],
                       layout=schema.layout, source=schema.source)


def _refined(column: Column, values: Any) -> Column:
    import pandas as pd

    has_missing = bool(values.isna().any())
    if column.type == ANY:
        return column
    nullable = column.nullable or has_missing
    if column.type != NUMBER:  # the model knows better: categories, strings
        return column._replace(nullable=nullable)
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = tuple(v.item() if hasattr(v, "item") else v for v in dtype.categories)
        return Column(column.name, CATEGORICAL, nullable, categories, True)
    if pd.api.types.is_bool_dtype(dtype):
        return Column(column.name, BOOLEAN, nullable)
    if pd.api.types.is_integer_dtype(dtype):
        return Column(column.name, INTEGER, nullable)
    return column._replace(nullable=nullable)


def sample_rows(schema: InputSchema, sample: Any) -> tuple[list[list[Any]], list[Any]]:
    """At most MAX_CHECKED_ROWS rows of ``sample`` (evenly spaced), in column order, as a client
    would send them (a missing value None), and the sample's label of each (its index)."""
    if schema.layout == TEXT:
        texts = _texts(sample)
        step = max(1, -(-len(texts) // MAX_CHECKED_ROWS))
        picked = list(range(0, len(texts), step))
        return [[None if _missing(texts[i]) else texts[i]] for i in picked], picked
    frame = _frame(sample, schema)
    frame = frame.iloc[:: max(1, -(-len(frame) // MAX_CHECKED_ROWS))]
    columns = []
    for name in schema.names:
        series = frame[name]
        plain = series.astype(object).where(series.notna(), None)
        columns.append([v.item() if hasattr(v, "item") else v for v in plain.tolist()])
    return [list(row) for row in zip(*columns, strict=True)], list(frame.index)


def _describe(model: Any) -> Any:
    from datetime import datetime, timezone

    from core.model.description import describe

    if not hasattr(model, "predict"):
        raise ExportRefused(f"expected a fitted scikit-learn model, found a {type(model).__name__}")
    return describe(model, display="the model", version="unsaved", sha256="", size_bytes=0,
                    loaded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    read_seconds=0.0, deserialize_seconds=0.0)


def _frame(sample: Any, schema: InputSchema) -> Any:
    import pandas as pd

    if isinstance(sample, pd.DataFrame):
        return sample
    names = schema.names
    try:
        return pd.DataFrame(sample, columns=list(names) if names is not None else None)
    except (ValueError, TypeError) as exc:
        raise ExportRefused(f"the sample cannot be read as the model's columns ({exc}); expected a DataFrame") from None


def _texts(sample: Any) -> Sequence[Any]:
    import pandas as pd

    if isinstance(sample, pd.DataFrame):
        if sample.shape[1] != 1:
            raise ExportRefused(f"a text model's sample is one text per row; the DataFrame has {sample.shape[1]} columns")
        sample = sample.iloc[:, 0]
    if isinstance(sample, str):
        raise ExportRefused("a text model's sample is a list of texts, not one string")
    return list(sample)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
