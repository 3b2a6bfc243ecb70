"""Checked rows -> what the model's predict takes, by the schema's layout.

* ``array``: a float64 matrix (NumPy only; a missing number is already NaN);
* ``text``: a list of strings, one per row;
* ``frame``: a pandas DataFrame with the schema's columns, numbers as float64, integers as int64
  (float64 when one is missing), strings and categories as pandas makes them from Python values
  (missing ones NaN, as ``read_csv`` gives them). pandas is imported here and only here, on the
  first request of a model whose layout is ``frame``.

Rows come as a list of rows (a request) or as :class:`Columns` (batch, which reads a chunk
column by column and would otherwise build a tuple per row only for this module to take them
apart again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import ModelRuntimeMissing
from core.schema import BOOLEAN, CATEGORICAL, FRAME, INTEGER, NUMBER, STRING, TEXT, Column, InputSchema


class Columns:
    """Checked rows held column by column: one sequence per schema column, all the same length
    (a float64 array for a number column, a list otherwise). Sliced and indexed like the list of
    rows it stands for, which is all the batch engine and the model's inputs ask of rows."""

    __slots__ = ("columns",)

    def __init__(self, columns: list[Any]) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def __getitem__(self, rows: slice) -> Columns:
        return Columns([column[rows] for column in self.columns])

    def replace_row(self, i: int, values: Sequence[Any]) -> None:
        for column, value in zip(self.columns, values, strict=True):
            column[i] = value

    def take(self, keep: list[int]) -> Columns:
        return Columns([column[keep] if hasattr(column, "take") else [column[i] for i in keep] for column in self.columns])


def column_values(rows: Any, j: int) -> Any:
    """Column ``j`` of ``rows`` (a list of rows, or Columns)."""
    if isinstance(rows, Columns):
        return rows.columns[j]
    return [row[j] for row in rows]


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
        return list(column_values(rows, 0))
    if schema.layout == FRAME:
        return _frame(schema, rows)
    import numpy as np  # already loaded with the model; kept out of core's import

    return np.asarray(rows, dtype=np.float64)


def _frame(schema: InputSchema, rows: Any) -> Any:
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for j, column in enumerate(schema.columns or ()):
        values = column_values(rows, j)
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
    return pd.DataFrame(data)  # the dict is in the schema's column order, which columns= would check again


def _text_column(column: Column) -> bool:
    if column.type == STRING:
        return True
    return column.type == CATEGORICAL and bool(column.categories and isinstance(column.categories[0], str))
