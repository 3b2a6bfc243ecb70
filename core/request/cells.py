"""One value of one column: checked against the column's type, from JSON or from CSV text.

``checkers_for(schema)`` builds one function per column once per model; each takes a value and
returns it as the model takes it (a missing number becomes NaN, a CSV field becomes a number), or
raises :class:`CellRefused` with the end of a message (``"is the string 'x'; expected a number"``)
that the caller prefixes with where the value was (``instances[0].age``, ``line 3, column 'age'``).

The all-numeric fast path does not come here: ``core.request.rows`` checks plain numeric rows in
one loop, as before typed columns existed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.request.json_body import json_type
from core.schema import ANY, BOOLEAN, CATEGORICAL, INTEGER, NUMBER, STRING, Column, InputSchema

_MAX_FLOAT = 1.7976931348623157e308
_NAN = float("nan")
_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})

Checker = Callable[[Any], Any]


class CellRefused(Exception):
    """A value its column cannot take; ``tail`` is the message after the value's place."""

    def __init__(self, tail: str) -> None:
        super().__init__(tail)
        self.tail = tail


def received(value: Any) -> str:
    """A value as a message names it: ``the string 'abc'``, ``true``, ``a JSON array``."""
    if isinstance(value, str):
        return "the string " + repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}" if len(repr(value)) <= 40 else "a number"
    return f"a JSON {json_type(value)}"


def number_refusal(value: Any, expected: str = "a number") -> str:
    """Why ``value`` is not a finite number (the messages the HTTP API has always given)."""
    if isinstance(value, float):
        if value != value:
            return "is NaN; expected a finite number"
        return "is a number outside the 64-bit float range; expected a finite number"
    if isinstance(value, int) and not isinstance(value, bool):
        return "is a number too large for a 64-bit float; expected a finite number"
    if value is None:
        return f"is null; expected {expected} (missing values are not accepted)"
    if isinstance(value, str):
        return f"is {received(value)}; expected {expected}"
    return f"is a JSON {json_type(value)}; expected {expected}"


def _missing(column: Column) -> Any:
    if not column.nullable:
        raise CellRefused(
            f"is null; this model cannot take a missing value in '{column.name}'; expected {column.describe()}"
        )
    return _NAN


def _finite(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return value - value == 0.0
    return kind is int and -_MAX_FLOAT <= value <= _MAX_FLOAT


def _number(column: Column) -> Checker:
    def check(value: Any) -> Any:
        if _finite(value):
            return value
        if value is None:
            return _missing(column)
        raise CellRefused(number_refusal(value))

    return check


def _integer(column: Column) -> Checker:
    def check(value: Any) -> Any:
        if type(value) is int and _finite(value):
            return value
        if type(value) is float and _finite(value) and value.is_integer():
            return int(value)
        if value is None:
            return _missing(column)
        raise CellRefused(f"is {received(value)}; expected an integer")

    return check


def _exactly(kind: type, expected: str) -> Callable[[Column], Checker]:
    """A checker builder for a column whose values are JSON values of one Python type."""

    def build(column: Column) -> Checker:
        def check(value: Any) -> Any:
            if type(value) is kind:
                return value
            if value is None:
                return _missing(column)
            raise CellRefused(f"is {received(value)}; expected {expected}")

        return check

    return build


_boolean = _exactly(bool, "true or false")
_string = _exactly(str, "a string")


def _categorical(column: Column) -> Checker:
    known = frozenset(column.categories or ())
    strings = bool(column.categories and isinstance(column.categories[0], str))

    def check(value: Any) -> Any:
        if value is None:
            return _missing(column)
        if not known:  # categories unknown (a manifest that lists none): any string or number
            if type(value) is str or _finite(value):
                return value
            raise CellRefused(f"is {received(value)}; expected {column.describe()}")
        if strings:
            if type(value) is not str:
                raise CellRefused(f"is {received(value)}; expected {column.describe()}")
        elif not _finite(value):
            raise CellRefused(f"is {received(value)}; expected {column.describe()}")
        if value in known or column.unknown_predicted:
            return value
        raise CellRefused(f"is {received(value)}, a category the model was not fitted on; expected {column.describe()}")

    return check


def _anything(column: Column) -> Checker:
    def check(value: Any) -> Any:
        if value is None:
            return _NAN
        if isinstance(value, (str, bool)) or _finite(value):
            return value
        raise CellRefused(f"is {received(value)}; expected {column.describe()}")

    return check


_BUILDERS = {
    NUMBER: _number, INTEGER: _integer, BOOLEAN: _boolean, STRING: _string, CATEGORICAL: _categorical, ANY: _anything,
}


def checkers_for(schema: InputSchema) -> list[Checker] | None:
    """One checker per column, in order; None when the schema has no columns (width unknown)."""
    if schema.columns is None:
        return None
    return [_BUILDERS[column.type](column) for column in schema.columns]


# --- CSV text -> the value JSON would have carried -------------------------------------------------


def _text_number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text.strip()  # refused by the column's checker, which names it


def _text_integer(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return _text_number(text)


def _text_boolean(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return text.strip()


def _text_categorical(column: Column) -> Callable[[str], Any]:
    if column.categories and not isinstance(column.categories[0], str):
        return _text_number
    return str


_FROM_TEXT: dict[str, Callable[[str], Any]] = {
    NUMBER: _text_number, INTEGER: _text_integer, BOOLEAN: _text_boolean, STRING: str, ANY: str,
}


def text_readers_for(schema: InputSchema) -> list[Callable[[str], Any]] | None:
    """One function per column turning a CSV field into the JSON value it stands for; an empty
    field becomes None (a missing value), which the column's checker then takes or refuses."""
    if schema.columns is None:
        return None
    readers = []
    for column in schema.columns:
        convert = _text_categorical(column) if column.type == CATEGORICAL else _FROM_TEXT[column.type]
        readers.append(_empty_is_missing(convert))
    return readers


def _empty_is_missing(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        return None if text == "" or text.isspace() else convert(text)

    return read
