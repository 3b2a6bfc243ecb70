"""A ``.json`` input: one JSON document whose rows are read one at a time, never the whole file.

Accepted documents, the same forms as an HTTP request's body::

    [{"age": 22, "sex": "male"}, {"age": 38, "sex": "female"}]          an array of rows
    {"instances": [...]}  {"inputs": [...]}  {"dataframe_records": [...]}
    {"dataframe_split": {"columns": ["age", "sex"], "data": [[22, "male"], ...]}}
    {"features": [...]}  {"data": {...}}                                 one row

A row's number (the ``line`` of the outputs) is its position in the array of rows, from 1, and
its messages name it as a request's would: ``instances[0].age is the string 'x'; expected a
number`` (a bare array's rows are ``row 1``, ``row 2``, ...).

How: the document is walked by hand (brackets, commas, keys) and each row is decoded by the
standard library's C decoder (``json.JSONDecoder.raw_decode``) straight from a buffer of at most
one block plus one row: as fast per row as ``json.loads`` of a JSONL line, with no dependency (an
incremental parser library such as ijson would add a package to every bundle for this one file
type, and its pure-Python fallback is several times slower). A row cut by a block boundary fails
to decode; more is read and it is decoded again, so a row costs a second parse only at the end of
a block. A row longer than MAX_LINE_BYTES, or a syntax error, ends the reading (a broken JSON
document has no next row to resume at): the rows before it are predicted and the error is reported.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from core.batch.lines import BLOCK_BYTES, MAX_LINE_BYTES
from core.batch.readers import BatchInputError, JsonRows, ParsedChunk, RowFailure
from core.errors import InvalidFeatures, InvalidShape, RequestError
from core.request.json_body import json_type
from core.request.rows import BODY_KEYS, RowSchema, check_names

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_ROWS_KEYS = ("instances", "inputs", "dataframe_records")
_EXPECTED = (
    "expected an array of rows or an object with one of the keys " + ", ".join(repr(k) for k in BODY_KEYS)
)


class _Text:
    """The document's text with a cursor; holds what is not consumed yet, at most a block and a row."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.buffer = ""
        self.pos = 0
        self.eof = False
        self.lines_before = 0  # line ends in the text already dropped from the buffer
        self.first = True

    def more(self) -> bool:
        """Read one more block; False at the end of the stream."""
        if self.eof:
            return False
        block = self.stream.read(BLOCK_BYTES)
        text = self.decoder.decode(block, final=not block)
        if self.first:
            text = text.removeprefix("\ufeff")
            self.first = False
        if not block:
            self.eof = True
        if self.pos:
            self.lines_before += self.buffer.count("\n", 0, self.pos)
            self.buffer = self.buffer[self.pos:]
            self.pos = 0
        self.buffer += text
        return bool(block)

    def peek(self) -> str:
        """The next character that is not white space ("" at the end), not consumed."""
        while True:
            self.pos = _SPACE.match(self.buffer, self.pos).end()  # type: ignore[union-attr]  # the pattern matches the empty string too
            if self.pos < len(self.buffer) or not self.more():
                return self.buffer[self.pos : self.pos + 1]

    def take(self, expected: str, after: str) -> None:
        found = self.peek()
        if found != expected:
            raise self.error(f"expected '{expected}' {after}, found {_shown(found)}")
        self.pos += 1

    def value(self, what: str) -> Any:
        """Decode the next JSON value; ``what`` names it in the errors."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                offset = exc.pos - self.pos  # more() moves the buffer, not the row
                if len(self.buffer) - self.pos > MAX_LINE_BYTES:
                    raise self.error(f"{what} is longer than {MAX_LINE_BYTES // 1024} KiB") from None
                if self.more():
                    continue
                raise self.error(f"{what} is not valid JSON ({exc.msg})", self.pos + offset) from None
            if end == len(self.buffer) and self.more():
                continue  # a number at the end of the buffer may go on in the next block
            self.pos = end
            return value

    def line(self, pos: int | None = None) -> int:
        return self.lines_before + self.buffer.count("\n", 0, self.pos if pos is None else pos) + 1

    def error(self, message: str, pos: int | None = None) -> _Broken:
        return _Broken(f"{message} at line {self.line(pos)} of the file")


class _Broken(Exception):
    """The document cannot be read further; the message says where."""


def _shown(char: str) -> str:
    return "the end of the file" if not char else repr(char)


class JsonDocumentReader:
    """Rows of one JSON document, in chunks of ``chunk_rows``."""

    def __init__(self, schema: RowSchema) -> None:
        self.schema = schema
        self.json_rows = JsonRows(schema)
        self._number = 0  # rows given so far

    def chunks(self, stream: BinaryIO, chunk_rows: int) -> Iterator[ParsedChunk]:
        text = _Text(stream)
        pending: list[tuple[int, str, Any]] = []
        try:
            for row in self._rows(text):
                pending.append(row)
                if len(pending) >= chunk_rows:
                    yield self._parsed(pending)
                    pending = []
        except _Broken as exc:
            if pending:
                yield self._parsed(pending)
            raise BatchInputError(f"the file stopped being readable: {exc}", self._number + 1) from None
        except BatchInputError:
            if pending:
                yield self._parsed(pending)
            raise
        if pending:
            yield self._parsed(pending)

    def _parsed(self, rows: list[tuple[int, str, Any]]) -> ParsedChunk:
        good_numbers, good_rows, failures = [], [], []
        for number, where, value in rows:
            try:
                checked = value(where) if callable(value) else self.json_rows.checked(value, where)
            except RequestError as exc:
                failures.append(RowFailure(number, exc.code, exc.message))
                continue
            good_numbers.append(number)
            good_rows.append(checked)
        return ParsedChunk(good_numbers, self.json_rows.rows(good_rows), failures, rows[-1][0])

    def _row(self, where: str, value: Any) -> tuple[int, str, Any]:
        self._number += 1
        return self._number, where, value

    def _rows(self, text: _Text) -> Iterator[tuple[int, str, Any]]:
        first = text.peek()
        if first == "[":
            yield from self._array(text, lambda i: f"row {i + 1}", "the array of rows")
        elif first == "{":
            yield from self._object(text)
        else:
            raise BatchInputError(f"the file starts with {_shown(first)}; {_EXPECTED}", 1)
        if text.peek():
            raise text.error("there is more after the end of the JSON document")

    def _array(self, text: _Text, where: Callable[[int], str], name: str) -> Iterator[tuple[int, str, Any]]:
        text.take("[", f"to open {name}")
        if text.peek() == "]":
            text.pos += 1
            return
        i = 0
        while True:
            place = where(i)
            yield self._row(place, text.value(place))
            i += 1
            after = text.peek()
            text.pos += 1
            if after == "]":
                return
            if after != ",":
                text.pos -= 1
                raise text.error(f"expected ',' or ']' after {place}, found {_shown(after)}")

    def _object(self, text: _Text) -> Iterator[tuple[int, str, Any]]:
        text.take("{", "to open the document")
        found: list[str] = []
        rows_key: str | None = None
        if text.peek() != "}":
            while True:
                key = text.value("a key")
                if not isinstance(key, str):
                    raise text.error(f"expected a key (a JSON string), found a JSON {json_type(key)}")
                found.append(key)
                text.take(":", f"after the key {key!r}")
                if key in BODY_KEYS:
                    if rows_key is not None:
                        raise BatchInputError(
                            f"the file has the keys {rows_key!r} and {key!r}; expected exactly one of "
                            + ", ".join(repr(k) for k in BODY_KEYS), self._number + 1,
                        )
                    rows_key = key
                    yield from self._rows_of(text, key)
                else:
                    text.value(f"the value of {key!r}")  # not a row: read past it (bounded like a row)
                after = text.peek()
                text.pos += 1
                if after == "}":
                    break
                if after != ",":
                    text.pos -= 1
                    raise text.error(f"expected ',' or '}}' after the value of {key!r}, found {_shown(after)}")
        else:
            text.pos += 1
        if rows_key is None:
            listed = ", ".join(repr(k) for k in found[:12]) or "none"
            raise BatchInputError(f"the file has no rows; {_EXPECTED}, received the keys: {listed}", 1)

    def _rows_of(self, text: _Text, key: str) -> Iterator[tuple[int, str, Any]]:
        if key in _ROWS_KEYS:
            if text.peek() != "[":
                kind = json_type(text.value(f"'{key}'"))
                raise BatchInputError(f"'{key}' is a JSON {kind}; expected an array of rows", self._number + 1)
            yield from self._array(text, lambda i: f"{key}[{i}]", f"'{key}'")
        elif key == "dataframe_split":
            yield from self._split(text)
        else:  # "features" or "data": one row
            value = text.value(f"'{key}'")
            if key == "features" and not self.schema.text and not isinstance(value, list):
                raise BatchInputError(
                    f"'features' is a JSON {json_type(value)}; expected one row as an array of values", 1
                )
            if key == "data" and not isinstance(value, dict) and not (self.schema.text and isinstance(value, str)):
                raise BatchInputError(
                    f"'data' is a JSON {json_type(value)}; expected one row as an object of feature names to values", 1
                )
            yield self._row(key, value)

    def _split(self, text: _Text) -> Iterator[tuple[int, str, Any]]:
        """MLflow's split orientation; 'columns' must come before 'data' (rows are not held)."""
        text.take("{", "to open 'dataframe_split'")
        columns: list[str] | None = None
        order: list[int] | None = None
        while True:
            key = text.value("a key of 'dataframe_split'")
            text.take(":", f"after the key {key!r}")
            if key == "columns":
                columns = text.value("'dataframe_split.columns'")
                order = self._split_order(columns)
            elif key == "data":
                if columns is None:
                    raise BatchInputError(
                        "'dataframe_split.data' comes before 'dataframe_split.columns'; expected 'columns' first, "
                        "so that rows can be read one at a time", self._number + 1,
                    )
                yield from self._array(
                    text, lambda i: f"dataframe_split.data[{i}]", "'dataframe_split.data'"
                ) if order is None else self._split_rows(text, columns, order)
            else:
                text.value(f"the value of {key!r}")
            after = text.peek()
            text.pos += 1
            if after == "}":
                return
            if after != ",":
                text.pos -= 1
                raise text.error(f"expected ',' or '}}' in 'dataframe_split', found {_shown(after)}")

    def _split_order(self, columns: Any) -> list[int] | None:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise BatchInputError("'dataframe_split.columns' must be an array of feature names (strings)", 1)
        if len(set(columns)) != len(columns):
            raise BatchInputError("'dataframe_split.columns' names a column more than once", 1)
        if self.schema.names is None:
            return None
        try:
            check_names(set(columns), "dataframe_split.columns", self.schema)
        except InvalidFeatures as exc:
            raise BatchInputError(exc.message, 1) from None
        return [columns.index(name) for name in self.schema.names]

    def _split_rows(self, text: _Text, columns: list[str], order: list[int]) -> Iterator[tuple[int, str, Any]]:
        width = len(columns)

        def checker(row: Any) -> Callable[[str], list[Any]]:
            def check(where: str) -> list[Any]:
                if type(row) is not list:
                    raise InvalidShape(f"{where} is a JSON {json_type(row)}; expected a row as an array")
                if len(row) != width:
                    raise InvalidFeatures(f"{where} has {len(row)} values; expected {width}, one per column in 'columns'")
                values = [row[j] for j in order]
                return self.schema.checked(values, lambda j: f"{where}[{order[j]}] ('{columns[order[j]]}')")

            return check

        for number, where, row in self._array(text, lambda i: f"dataframe_split.data[{i}]", "'dataframe_split.data'"):
            yield number, where, checker(row)
