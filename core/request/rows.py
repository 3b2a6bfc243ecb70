"""From a parsed JSON body to rows in the model's column order, each value checked against its
column's type (see core.schema).

Every body form of the HTTP API is accepted here and nowhere else::

    {"instances": [[5.1, 3.5, 1.4, 0.2]]}                      rows as arrays, in feature order
    {"instances": [{"sepal_length": 5.1, ...}]}                rows as objects, reordered by name
    {"inputs": ...}                                            the same two forms under "inputs"
    {"dataframe_split": {"columns": [...], "data": [[...]]}}   MLflow's split orientation
    {"dataframe_records": [{...}, ...]}                        MLflow's records orientation
    {"features": [5.1, 3.5, 1.4, 0.2]}                         one row as an array
    {"data": {"sepal_length": 5.1, ...}}                       one row as an object
    {"instances": ["free money now", ...]}                     one text per row (a text model)

Errors name the place in the body the way the client wrote it (``instances[2]``), what was there
and what was expected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from core.errors import InvalidFeatures, InvalidShape, InvalidValue, PayloadTooLarge
from core.request.cells import CellRefused, Checker, checkers_for, number_refusal
from core.request.json_body import json_type
from core.schema import ARRAY, NUMBER, TEXT, InputSchema

BODY_KEYS = ("instances", "inputs", "dataframe_split", "dataframe_records", "features", "data")
_MAX_FLOAT = 1.7976931348623157e308
_MAX_LISTED = 12


class RowSchema:
    """The request side of a model's InputSchema: its names and one checker per column, built
    once per loaded model."""

    __slots__ = ("schema", "names", "index", "checkers", "plain_numeric", "numbers_only", "all_nullable", "numbers_fast", "text")

    def __init__(self, schema: InputSchema) -> None:
        self.schema = schema
        self.names = schema.names
        self.index = schema.index
        self.plain_numeric = schema.plain_numeric
        self.text = schema.layout == TEXT
        self.checkers: list[Checker] | None = None if schema.plain_numeric else checkers_for(schema)
        # every column a number, some nullable: the one-loop check first, the checkers only for a
        # row that holds something else (a null, most often)
        self.numbers_only = schema.columns is not None and all(c.type == NUMBER for c in schema.columns)
        self.all_nullable = self.numbers_only and all(c.nullable for c in schema.columns or ())
        # rows that are numbers for a model whose rows are a float matrix: checked in bulk
        self.numbers_fast = schema.layout == ARRAY and (schema.plain_numeric or self.all_nullable)

    @property
    def count(self) -> int | None:
        return None if self.names is None else len(self.names)

    def expected(self) -> str:
        return self.schema.expected()

    def checked(self, values: list, place: Callable[[int], str]) -> list:
        """``values`` (in column order) as the model takes them; InvalidValue naming
        ``place(j)`` for the first value its column refuses."""
        if self.checkers is None:
            j = first_non_number(values)
            if j is not None:
                raise InvalidValue(f"{place(j)} {number_refusal(values[j])}")
            return values
        if self.numbers_only and first_non_number(values) is None:
            return values
        out = []
        j = 0
        try:
            for j, check in enumerate(self.checkers):
                out.append(check(values[j]))
        except CellRefused as refused:
            raise InvalidValue(f"{place(j)} {refused.tail}") from None
        return out


def rows_from_payload(payload: dict[str, Any], schema: RowSchema, max_rows: int) -> list[list[Any]]:
    """Return the rows of ``payload`` as lists of values in the model's column order, each value
    as its column takes it (a missing number is NaN)."""
    present = [key for key in BODY_KEYS if key in payload]
    if len(present) != 1:
        if present:
            raise InvalidShape(
                f"the body has the keys {', '.join(repr(k) for k in present)}; expected exactly one of "
                f"{', '.join(repr(k) for k in BODY_KEYS)}"
            )
        received = _listed(list(payload)) or "none"
        raise InvalidShape(
            f"the body has no rows; expected one of the keys {', '.join(repr(k) for k in BODY_KEYS)}, "
            f"received the keys: {received}"
        )
    key = present[0]
    value = payload[key]

    if key in ("instances", "inputs"):
        return _rows(value, key, schema, max_rows, objects_allowed=True)
    if key == "dataframe_records":
        return _rows(value, key, schema, max_rows, objects_allowed=True, arrays_allowed=False)
    if key == "dataframe_split":
        return _dataframe_split(value, schema, max_rows)
    if key == "features" and not schema.text:
        if not isinstance(value, list):
            raise InvalidShape(f"'features' is a JSON {json_type(value)}; expected one row as an array of numbers")
        return [array_row(value, "features", schema, schema.count)]
    if key == "features":  # a text model: one text
        return [text_row(value, "features", schema)]
    # key == "data"
    if schema.text and isinstance(value, str):
        return [text_row(value, "data", schema)]
    if not isinstance(value, dict):
        raise InvalidShape(
            f"'data' is a JSON {json_type(value)}; expected one row as an object of feature names to numbers "
            "(for several rows send {\"instances\": [...]})"
        )
    return [object_row(value, "data", schema)]


def _rows(
    value: Any,
    key: str,
    schema: RowSchema,
    max_rows: int,
    *,
    objects_allowed: bool,
    arrays_allowed: bool = True,
) -> list[list[float]]:
    if not isinstance(value, list):
        wanted = _row_forms(arrays_allowed, objects_allowed)
        raise InvalidShape(f"'{key}' is a JSON {json_type(value)}; expected an array of rows ({wanted})")
    if not value:
        raise InvalidShape(f"'{key}' is empty; expected at least one row")
    _check_row_count(len(value), max_rows)
    if schema.numbers_fast and len(value) > 1:
        matrix = _numeric_matrix(value, schema, arrays_allowed, objects_allowed)
        if matrix is not None:
            return matrix
    width = schema.count
    rows = []
    first_kind = type(value[0])
    for i, row in enumerate(value):
        where = f"{key}[{i}]"
        if type(row) is not first_kind:
            raise InvalidShape(
                f"{where} is a JSON {json_type(row)} but {key}[0] is a JSON {json_type(value[0])}; "
                "expected every row in the same form"
            )
        if schema.text and type(row) is str:
            rows.append(text_row(row, where, schema))
        elif arrays_allowed and type(row) is list:
            rows.append(array_row(row, where, schema, width))
            width = len(row)  # a model without a known width still needs equal rows
        elif objects_allowed and type(row) is dict:
            rows.append(object_row(row, where, schema))
        else:
            if schema.text:
                wanted = "a string (this model takes one text per row)"
            else:
                wanted = _row_forms(arrays_allowed, objects_allowed)
            raise InvalidShape(f"{where} is a JSON {json_type(row)}; expected a row as one of: {wanted}")
    return rows


def _row_forms(arrays_allowed: bool, objects_allowed: bool) -> str:
    # for messages only: built when one is raised, not on every request
    return " or ".join(kind for kind, ok in (("arrays", arrays_allowed), ("objects", objects_allowed)) if ok)


_NUMBER_TYPES = frozenset({float, int})
_NULLABLE_NUMBER_TYPES = frozenset({float, int, type(None)})


def _numeric_matrix(value: list, schema: RowSchema, arrays_allowed: bool, objects_allowed: bool) -> Any:
    """Rows of numbers as one float matrix, checked in bulk: every row an array of the model's
    width (or an object with exactly its names), every value a finite number (or null where every
    column takes it). None when anything else is there: the per-row checks then find it and name
    it, so this path changes the speed of good requests and never the message of a bad one."""
    import numpy as np  # loaded with the model, which is loaded before a body is parsed

    names = schema.names
    first = type(value[0])
    if first is list and arrays_allowed:
        rows = value
        if not all(type(row) is list for row in rows):
            return None
        if len(set(map(len, rows))) != 1 or (names is not None and len(rows[0]) != len(names)) or not rows[0]:
            return None
    elif first is dict and objects_allowed and names is not None:
        try:
            rows = [[row[name] for name in names] for row in value]
        except (KeyError, TypeError):
            return None
        if any(len(row) != len(names) for row in value):
            return None
    else:
        return None
    allowed = _NULLABLE_NUMBER_TYPES if schema.all_nullable else _NUMBER_TYPES
    if not set(map(type, chain.from_iterable(rows))) <= allowed:
        return None  # a bool, a string, a null where not allowed: the per-row path names it
    try:
        matrix = np.array(rows, dtype=np.float64)  # null -> NaN
    except (OverflowError, ValueError):
        return None
    finite = np.isfinite(matrix)
    if not finite.all():
        if not schema.all_nullable:
            return None
        # NaN from a null is a missing value; an infinity (1e999) is still refused by the row path
        if np.isinf(matrix).any():
            return None
    return matrix


def _dataframe_split(value: Any, schema: RowSchema, max_rows: int) -> list[list[float]]:
    if not isinstance(value, dict) or "columns" not in value or "data" not in value:
        raise InvalidShape(
            "'dataframe_split' must be an object with 'columns' (feature names) and 'data' (rows as arrays), "
            'e.g. {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}'
        )
    columns, data = value["columns"], value["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidShape("'dataframe_split.columns' must be an array of feature names (strings)")
    if len(set(columns)) != len(columns):
        # counted in one pass: columns.count() per name is quadratic, hours for a 6 MiB body
        duplicated = sorted(name for name, times in Counter(columns).items() if times > 1)
        raise InvalidFeatures(f"'dataframe_split.columns' names {_listed(duplicated)} more than once")
    if schema.names is None:
        order = None
    else:
        check_names(set(columns), "dataframe_split.columns", schema)
        order = [columns.index(name) for name in schema.names]
    if not isinstance(data, list):
        raise InvalidShape(f"'dataframe_split.data' is a JSON {json_type(data)}; expected an array of rows")
    if not data:
        raise InvalidShape("'dataframe_split.data' is empty; expected at least one row")
    _check_row_count(len(data), max_rows)
    rows = []
    width = len(columns)
    for i, row in enumerate(data):
        where = f"dataframe_split.data[{i}]"
        if type(row) is not list:
            raise InvalidShape(f"{where} is a JSON {json_type(row)}; expected a row as an array")
        if len(row) != width:
            raise InvalidFeatures(f"{where} has {len(row)} values; expected {width}, one per column in 'columns'")
        if order is None:
            rows.append(array_row(row, where, schema, width))
        else:
            values = [row[j] for j in order]
            # where=where binds this row's place (mypy cannot type a lambda's default)
            rows.append(schema.checked(
                values, lambda j, where=where: f"{where}[{order[j]}] ('{columns[order[j]]}')"  # type: ignore[misc]
            ))
    return rows


def _check_row_count(count: int, max_rows: int) -> None:
    if count > max_rows:
        raise PayloadTooLarge(
            f"{count} rows received; at most {max_rows} rows are accepted per request (MAX_ROWS); "
            "split them over several requests or use batch prediction"
        )


def array_row(row: list, where: str, schema: RowSchema, width: int | None) -> list[Any]:
    if width is not None and len(row) != width:
        expected = schema.expected() if schema.count == width else f"{width} values like the rows before it"
        raise InvalidFeatures(f"{where} has {len(row)} values; expected {expected}")
    if not row:
        raise InvalidFeatures(f"{where} is empty; expected {schema.expected()}")
    names = schema.names
    return schema.checked(
        row, lambda j: f"{where}[{j}]" + (f" ('{names[j]}')" if names is not None and j < len(names) else "")
    )


def object_row(row: dict, where: str, schema: RowSchema) -> list[Any]:
    names = schema.names
    if names is None:
        raise InvalidShape(
            f"{where} is an object, but this model has no feature names; expected rows as arrays of numbers"
        )
    try:
        values = [row[name] for name in names]
    except KeyError:
        check_names(set(row), where, schema)
        raise  # unreachable: check_names raises whenever a name is missing
    if len(row) != len(values):
        check_names(set(row), where, schema)
    return schema.checked(values, lambda j: f"{where}.{names[j]}")


def text_row(value: Any, where: str, schema: RowSchema) -> list[Any]:
    """One row of a text model: the text itself (or an array or object holding just it)."""
    return schema.checked([value], lambda j: where)


def first_non_number(values: list) -> int | None:
    """The index of the first value that is not a finite number, or None."""
    for j, value in enumerate(values):
        kind = type(value)
        # the common case first: a finite float or a plain int (bool is an int subclass: excluded)
        if kind is float:
            if value - value == 0.0:  # false for NaN and for +-inf, which 1e999 parses to
                continue
        elif kind is int and -_MAX_FLOAT <= value <= _MAX_FLOAT:
            continue
        return j
    return None


def check_names(received: set, where: str, schema: RowSchema) -> None:
    expected = set(schema.names or ())
    missing = [name for name in schema.names or () if name not in received]
    unknown = sorted(str(name) for name in received - expected)
    if not missing and not unknown:
        return
    parts = []
    if missing:
        parts.append(f"missing feature{'s' if len(missing) > 1 else ''} {_listed(missing)}")
    if unknown:
        parts.append(f"unknown feature{'s' if len(unknown) > 1 else ''} {_listed(unknown, missing)}")
    raise InvalidFeatures(f"{where}: {'; '.join(parts)}; expected {schema.expected()}")


def _listed(names: list[str], candidates: Sequence[str] = ()) -> str:
    shown = []
    for name in names[:_MAX_LISTED]:
        text = repr(name if len(name) <= 60 else name[:57] + "...")
        if candidates:
            import difflib  # only on this error path

            close = difflib.get_close_matches(name, candidates, n=1)
            if close:
                text += f" (did you mean '{close[0]}'?)"
        shown.append(text)
    if len(names) > _MAX_LISTED:
        shown.append(f"and {len(names) - _MAX_LISTED} more")
    return ", ".join(shown)


def value_message(where: str, value: Any) -> str:
    return f"{where} {number_refusal(value)}"
