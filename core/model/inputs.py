"""Checked rows -> what the model's predict takes, by the schema's layout.

* ``array``: a float64 matrix (NumPy only; a missing number is already NaN);
* ``text``: a list of strings, one per row;
* ``frame``: a pandas DataFrame with the schema's columns, numbers as float64, integers as int64
  (float64 when one is missing), strings and categories as pandas makes them from Python values
  (missing ones NaN, as ``read_csv`` gives them). pandas is imported here and only here, on the
  first request of a model whose layout is ``frame``.
"""

from __future__ import annotations

from typing import Any

from core.errors import ModelRuntimeMissing
from core.schema import BOOLEAN, CATEGORICAL, FRAME, INTEGER, NUMBER, STRING, TEXT, Column, InputSchema


def needs_pandas(schema: InputSchema) -> bool:
    return schema.layout == FRAME


def check_frame_library(schema: InputSchema, display: str) -> None:
    """Refuse (503 naming what to install) a model that needs pandas where it is not installed."""
    if not needs_pandas(schema):
        return
    from core.installed import is_installed

    if not is_installed("pandas"):
        raise ModelRuntimeMissing(
            f"the model at {display} takes its rows as a DataFrame (columns selected by name or not "
            "numbers), and pandas is not installed here; install it with pip install 'serverless-ml[pandas]' "
            "(serverless-ml package --extra pandas; sls: --param=\"modelNeedsPandas=true\"; Terraform: "
            "model_needs_pandas = true)"
        )


def model_input(schema: InputSchema, rows: Any) -> Any:
    """``rows`` (lists of checked values in column order, or a float matrix) as the model takes them."""
    if schema.layout == TEXT:
        return [row[0] for row in rows]
    if schema.layout == FRAME:
        return _frame(schema, rows)
    import numpy as np  # already loaded with the model; kept out of core's import

    return np.asarray(rows, dtype=np.float64)


def _frame(schema: InputSchema, rows: Any) -> Any:
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for j, column in enumerate(schema.columns or ()):
        values = [row[j] for row in rows]
        if column.type == NUMBER:
            data[column.name] = np.asarray(values, dtype=np.float64)
        elif column.type == INTEGER:
            has_missing = any(isinstance(v, float) for v in values)
            data[column.name] = np.asarray(values, dtype=np.float64 if has_missing else np.int64)
        elif column.type == BOOLEAN and not any(isinstance(v, float) for v in values):
            data[column.name] = np.asarray(values, dtype=bool)
        elif _text_column(column) and all(isinstance(v, float) for v in values):
            # only missing values: pandas would make the column float64, which an encoder fitted
            # on strings refuses; an object column of NaN is what read_csv gives a text column
            data[column.name] = np.array(values, dtype=object)
        else:
            # a Python list: pandas infers the dtype it gives the same values in a notebook
            # (object for strings on pandas 2, str on pandas 3), missing values as NaN
            data[column.name] = values
    return pd.DataFrame(data, columns=list(schema.names or ()))


def _text_column(column: Column) -> bool:
    if column.type == STRING:
        return True
    return column.type == CATEGORICAL and bool(column.categories and isinstance(column.categories[0], str))
