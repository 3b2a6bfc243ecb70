"""An input stream -> chunks of rows as the model takes them, plus one failure per bad row.

Every value is typed by the model's input schema (core.schema) with the HTTP API's own checks
and words (core.request.cells, core.request.rows), so a value refused in a request is refused in
a file the same way: ``line 3, column 'age' is the string 'x'; expected a number``.

    CsvReader           a header row, then one record per row (quoted fields may hold commas
                        and line ends; see lines.py)
    JsonlReader         one JSON row per line: an object, an array, or a text for a text model
    JsonDocumentReader  one JSON document (``.json``): an array of rows, or an object in one of
                        the request forms (see json_document.py)

CSV, fastest first:

* plain numeric schemas (and all-number schemas while a chunk has no empty cell): the whole
  chunk is parsed at once, by orjson where every line is plain decimal numbers (number_text.py:
  2x NumPy's ``loadtxt`` and independent of how CPython was built), else by ``loadtxt``, without
  bringing pandas or pyarrow into a cold start; a chunk both refuse, or that holds a non-finite
  value, is read again by the next path to name each bad line;
* a model that takes a DataFrame (pandas loaded already): pandas' C parser reads a chunk of
  number and string columns without quotes, where it reads exactly what the converters below
  read (frame_csv.py says where that is);
* every other schema and chunk: the ``csv`` module splits the chunk, and each column is converted at once
  (numbers through number_text, else ``float`` in ``map``; strings and categories kept as they
  are; an empty cell as a missing value); only the rows some column flags go through the
  per-value checks (``text_readers_for`` + ``checkers_for``), which accept them or word the refusal.
"""

from __future__ import annotations

import csv
import gc
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from core.batch.frame_csv import FrameChunks
from core.batch.lines import MAX_LINE_BYTES, LineChunk, line_chunks
from core.batch.number_text import float_column, float_matrix
from core.errors import InvalidFeatures, InvalidShape, InvalidValue, MalformedJSON, PayloadTooLarge, RequestError
from core.model.inputs import Columns
from core.request.cells import CellRefused, text_readers_for
from core.request.json_body import json_type
from core.request.rows import RowSchema, array_row, check_names, first_non_number, object_row, text_row, value_message
from core.schema import ANY, ARRAY, CATEGORICAL, FRAME, INTEGER, NUMBER, STRING, Column

logger = logging.getLogger("serverless_ml.batch")
_NAN = float("nan")
_EXACT_INTEGER = 2.0**53  # a float at or above this may not be the integer the text spelled


class BatchInputError(Exception):
    """The file as a whole cannot be read as rows (a bad CSV header, an unreadable stream).

    Not a ServerlessMLError: no HTTP answer carries it; it ends up in the errors file."""

    code = "invalid_input"

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line  # where reading stopped: the errors file lists the message at this line


@dataclass(frozen=True)
class RowFailure:
    line: int
    code: str
    message: str


@dataclass
class ParsedChunk:
    numbers: list[int]  # line numbers of the good rows, in file order
    rows: Any  # the good rows as model_input takes them: a float matrix, Columns, or lists of checked values
    failures: list[RowFailure] = field(default_factory=list)
    last_line: int = 0  # the last line this chunk read (where a broken stream stopped)


def _too_long(chunk: LineChunk) -> list[RowFailure]:
    return [
        RowFailure(n, PayloadTooLarge.code, f"line {n} is longer than {MAX_LINE_BYTES // 1024} KiB; expected one row per line")
        for n in chunk.too_long
    ]


def _last_line(chunk: LineChunk) -> int:
    return max(chunk.numbers[-1:] + chunk.too_long[-1:], default=0)


def _matrix(rows: list, width: int | None):
    import numpy as np

    if not rows:
        return np.empty((0, width or 0), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


class CsvReader:
    """A header row of feature names (any order), then one record per row.

    ``by_position``: the model was fitted without feature names (its names are the generated
    f0, f1, ...), so a header of the right width whose names are not those is taken column by
    column, in order, instead of refusing the file.
    """

    def __init__(self, schema: RowSchema, *, by_position: bool = False) -> None:
        self.schema = schema
        self.by_position = by_position
        self.header_read = False
        self.columns: list[str] = []  # the header's names, once read
        self.order: list[int] | None = None  # file column of each feature; None: same order
        self._typed: _TypedColumns | None = None

    def chunks(self, stream: BinaryIO, chunk_rows: int, first_line: int = 1, offset: int = 0) -> Iterator[ParsedChunk]:
        """``first_line``, ``offset``: the stream is a range of the file (see lines.line_chunks)."""
        for chunk in line_chunks(stream, chunk_rows, quoted=True, first_line=first_line, offset=offset):
            yield self.parse(chunk)

    def parse(self, chunk: LineChunk) -> ParsedChunk:
        failures = _too_long(chunk)
        numbers, lines = chunk.numbers, chunk.lines
        last = _last_line(chunk)
        if not self.header_read:
            if failures and (not numbers or failures[0].line < numbers[0]):
                header_line = failures[0].line
                raise BatchInputError(
                    f"the header (line {header_line}) is longer than {MAX_LINE_BYTES // 1024} KiB", header_line
                )
            if not numbers:
                return ParsedChunk([], _matrix([], None), failures, last)
            self._read_header(numbers[0], lines[0])
            numbers, lines = numbers[1:], lines[1:]
        if not lines:
            return ParsedChunk([], self._empty(), failures, last)
        schema = self.schema
        if schema.plain_numeric or (schema.numbers_only and schema.schema.layout == ARRAY):
            rows = self._fast(lines)
            if rows is not None:
                return ParsedChunk(list(numbers), rows, failures, last)
        if not schema.plain_numeric:
            good_numbers, rows = self._typed_rows(numbers, lines, failures)
            failures.sort(key=lambda f: f.line)
            return ParsedChunk(good_numbers, rows, failures, last)
        good_numbers, good_rows = [], []
        for number, line in zip(numbers, lines, strict=True):
            row = self._one_line(number, line, failures)
            if row is not None:
                good_numbers.append(number)
                good_rows.append(row)
        failures.sort(key=lambda f: f.line)
        return ParsedChunk(good_numbers, _matrix(good_rows, len(self.columns)), failures, last)

    def _empty(self) -> Any:
        return _matrix([], len(self.columns or ())) if self.schema.schema.layout == ARRAY else []

    def _read_header(self, number: int, line: str) -> None:
        where = f"the header (line {number})"
        try:
            columns = [name.strip() for name in next(csv.reader([line]))]
        except csv.Error as exc:
            raise BatchInputError(f"{where} is not valid CSV ({exc}); expected a row of feature names", number) from None
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise BatchInputError(f"{where} names {', '.join(map(repr, duplicated))} more than once", number)
        names = self.schema.names
        if names is not None:
            if all(_is_number(c) for c in columns):
                raise BatchInputError(
                    f"{where} holds numbers, not names; expected a header row of {self.schema.expected()}", number
                )
            if self.by_position and set(columns) != set(names):
                if len(columns) != len(names):
                    raise BatchInputError(
                        f"{where} has {len(columns)} columns; expected {len(names)}: this model was fitted "
                        "without feature names, so the header's columns are taken in order, one per feature",
                        number,
                    )
                logger.info(
                    "batch CSV header taken by position",
                    extra={"fields": {"header": columns[:12], "features": list(names[:12]), "reason": (
                        "the model was fitted without feature names; column i of the file is feature i")}},
                )
                self.columns, self.header_read = columns, True
                self.order = None
                return
            try:
                check_names(set(columns), where, self.schema)
            except InvalidFeatures as exc:
                raise BatchInputError(exc.message, number) from None
            order = [columns.index(name) for name in names]
            self.order = None if order == list(range(len(columns))) else order
        self.columns, self.header_read = columns, True

    def _fast(self, lines: list[str]):
        """The whole chunk at once (number_text, else loadtxt for quoted numbers and words such as
        ``nan``), or None when any line needs a closer look."""
        import numpy as np

        rows = float_matrix(lines, len(self.columns))
        if rows is None:
            try:
                rows = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2, comments=None, quotechar='"')
            except ValueError:
                return None
        if rows.shape != (len(lines), len(self.columns)) or not np.isfinite(rows).all():
            return None
        return rows if self.order is None else rows[:, self.order]

    def _one_line(self, number: int, line: str, failures: list[RowFailure]) -> list[float] | None:
        fields = self._fields(number, line, failures)
        if fields is None:
            return None
        columns = self.columns
        order = self.order or range(len(columns))
        values = [_to_float(fields[j]) for j in order]
        j = first_non_number(values)
        if j is None:
            return values
        where = f"line {number}, column '{columns[order[j]]}'"
        if values[j] == "":
            message = f"{where} is empty; expected a number (missing values are not accepted)"
        else:
            message = value_message(where, values[j])
        failures.append(RowFailure(number, InvalidValue.code, message))
        return None

    def _fields(self, number: int, line: str, failures: list[RowFailure]) -> list[str] | None:
        """One record's fields, or None after adding why it cannot be a row."""
        try:
            fields = next(csv.reader([line]))
        except csv.Error as exc:
            failures.append(RowFailure(number, InvalidShape.code, f"line {number} is not valid CSV ({exc})"))
            return None
        except StopIteration:
            fields = []
        if len(fields) != len(self.columns):
            failures.append(RowFailure(
                number, InvalidFeatures.code,
                f"line {number} has {len(fields)} values; expected {len(self.columns)}, one per header column",
            ))
            return None
        return fields

    def _typed_rows(self, numbers: list[int], lines: list[str], failures: list[RowFailure]) -> tuple[list[int], Any]:
        """Rows of a typed schema: converted column by column, checked value by value only where
        a column flags a row."""
        if self._typed is None:
            self._typed = _TypedColumns(self.schema, self.columns, self.order)
        typed = self._typed
        width = len(self.columns)
        with _collector_paused():
            from_frame = typed.frame_rows(numbers, lines, failures)
            if from_frame is not None:
                return from_frame
            columns = _plain_columns(lines, width)
            if columns is not None:
                return typed.rows(numbers, columns, None, failures)
            try:
                records = list(csv.reader(lines))
            except csv.Error:  # one bad record: read them one by one to name it
                records = None
            if records is None or any(len(r) != width for r in records):
                kept = [(n, self._fields(n, line, failures)) for n, line in zip(numbers, lines, strict=True)]
                numbers = [n for n, fields in kept if fields is not None]
                records = [fields for _, fields in kept if fields is not None]
            if not records:
                return [], self._empty()
            return typed.rows(numbers, list(zip(*records, strict=True)), records, failures)


def _plain_columns(lines: list[str], width: int) -> list[Sequence[str]] | None:
    """The columns of a chunk without quotes, cut with str.split over the whole chunk (several
    times faster than the csv module, and no list per row); None when the chunk needs the csv
    module (a quote, a stray carriage return, a row of another width)."""
    text = "\n".join(lines)
    if '"' in text:
        return None
    if "\r" in text:  # Windows line ends; any other carriage return is the csv module's to read
        text = text.replace("\r\n", "\n").removesuffix("\r")
        if "\r" in text:
            return None
    fields = text.replace("\n", ",").split(",")
    if len(fields) != width * len(lines) or text.count("\n") != len(lines) - 1:
        return None
    return [fields[j::width] for j in range(width)]


class _collector_paused:
    """The cyclic garbage collector off while a chunk's rows are built: they are tens of thousands
    of small lists and tuples, none in a cycle, and each 700 of them would otherwise start a
    collection (measured here: half the time of splitting a chunk)."""

    def __enter__(self) -> None:
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: Any) -> None:
        if self.was_enabled:
            gc.enable()


class _TypedColumns:
    """One converter per model column, built once per file: texts of a whole column -> values
    as the model takes them, and the rows that need the per-value check."""

    def __init__(self, schema: RowSchema, header: list[str], order: list[int] | None) -> None:
        self.schema = schema
        self.columns: Sequence[Column] = schema.schema.columns or ()
        self.header = header
        self.file_index = order or list(range(len(self.columns)))
        self.readers = text_readers_for(schema.schema) or []
        self.checkers = schema.checkers or []
        self.converters = [_converter_for(column) for column in self.columns]
        self.matrix = schema.schema.layout == ARRAY  # numbers only: a float matrix
        self.frame_chunks = (
            FrameChunks.for_columns(self.columns, self.file_index, len(header)) if schema.schema.layout == FRAME else None
        )

    def rows(
        self, numbers: list[int], texts: list[Sequence[str]], records: list[list[str]] | None,
        failures: list[RowFailure],
    ) -> tuple[list[int], Any]:
        """``texts``: the chunk's columns in file order; ``records``: its rows, when already cut."""
        values, flagged = [], set()
        for j, convert in enumerate(self.converters):
            column_values, column_flagged = convert(texts[self.file_index[j]])
            values.append(column_values)
            flagged.update(column_flagged)

        def fields_of(i: int) -> list[str]:
            return records[i] if records is not None else [column[i] for column in texts]

        return self._finish(numbers, values, flagged, fields_of, failures)

    def frame_rows(self, numbers: list[int], lines: list[str], failures: list[RowFailure]) -> tuple[list[int], Any] | None:
        """The chunk read by pandas' parser (frame_csv.py), or None where it does not read it exactly."""
        if self.frame_chunks is None:
            return None
        read = self.frame_chunks.read(lines)
        if read is None:
            return None
        values, flagged = read
        # a chunk frame_csv reads has no quote: a line's fields are its texts between commas
        return self._finish(numbers, values, flagged, lambda i: lines[i].removesuffix("\r").split(","), failures)

    def _finish(
        self, numbers: list[int], values: list[Any], flagged: set[int], fields_of: Callable[[int], list[str]],
        failures: list[RowFailure],
    ) -> tuple[list[int], Any]:
        """Whole-column values -> rows; the flagged rows through the per-value checks."""
        import numpy as np

        if self.matrix:
            rows: Any = np.column_stack(values) if values else np.empty((len(numbers), 0))
        else:
            rows = Columns([v if hasattr(v, "dtype") or isinstance(v, list) else list(v) for v in values])
        if not flagged:
            return list(numbers), rows
        refused = []
        for i in sorted(flagged):
            checked = self._checked(numbers[i], fields_of(i), failures)
            if checked is None:
                refused.append(i)
            elif self.matrix:
                rows[i] = checked
            else:
                rows.replace_row(i, checked)
        if not refused:
            return list(numbers), rows
        drop = set(refused)
        keep = [i for i in range(len(numbers)) if i not in drop]
        return [numbers[i] for i in keep], rows[keep] if self.matrix else rows.take(keep)

    def _checked(self, number: int, fields: list[str], failures: list[RowFailure]) -> list[Any] | None:
        """One row through the HTTP API's per-value checks; None after adding why it is refused."""
        out = []
        for j, (read, check) in enumerate(zip(self.readers, self.checkers, strict=True)):
            text = fields[self.file_index[j]]
            try:
                out.append(check(read(text)))
            except CellRefused as refused:
                tail = refused.tail
                if tail.startswith("is null") and (not text or text.isspace()):
                    tail = "is empty" + tail[len("is null"):]  # a CSV has no null: it has an empty cell
                where = f"line {number}, column '{self.header[self.file_index[j]]}'"
                failures.append(RowFailure(number, InvalidValue.code, f"{where} {tail}"))
                return None
        return out


# --- whole-column converters: (texts of one column) -> (values, indexes of rows to check) ---------

Converter = Callable[[Sequence[str]], tuple[Any, list[int]]]


def _converter_for(column: Column) -> Converter:
    if column.type == NUMBER:
        return _numbers(column.nullable)
    if column.type == INTEGER:
        return _integers(column.nullable)
    if column.type in (STRING, ANY):
        return _strings(column.nullable or column.type == ANY, None)
    if column.type == CATEGORICAL and (not column.categories or isinstance(column.categories[0], str)):
        refused_unknown = bool(column.categories) and not column.unknown_predicted
        return _strings(column.nullable, frozenset(column.categories or ()) if refused_unknown else None)
    return _flag_all  # booleans, number categories: rare; every row through the per-value checks


def _flag_all(texts: Sequence[str]) -> tuple[Any, list[int]]:
    return [_NAN] * len(texts), list(range(len(texts)))


def _floats(texts: Sequence[str], nullable: bool) -> tuple[Any, list[int], bool]:
    """(float array, rows to check, whether any cell was empty)."""
    import numpy as np

    empty = False
    array = float_column(texts)  # an empty cell reads as NaN, and is told apart below
    if array is None:
        array = _float_array(texts)
    non_finite = np.flatnonzero(~np.isfinite(array))
    if not len(non_finite):
        return array, [], False
    flagged = []
    for i in non_finite.tolist():
        if not texts[i] or texts[i].isspace():
            empty = True
            if nullable:
                continue
        flagged.append(i)
    return array, flagged, empty


def _float_array(texts: Sequence[str]) -> Any:
    """The exact way, through ``float``: what number_text leaves, words such as ``nan`` and shapes
    JSON does not take (``+1``, ``.5``); a text that is no number reads as NaN."""
    import numpy as np

    count = len(texts)
    try:
        return np.fromiter(map(float, texts), np.float64, count)
    except ValueError:
        try:  # an empty cell (the usual reason)
            return np.fromiter(map(float, [t or "nan" for t in texts]), np.float64, count)
        except ValueError:  # text in a number column (or a blank cell): cell by cell
            return np.fromiter(map(_float_or_nan, texts), np.float64, count)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return _NAN  # refused or missing: told apart by the caller from the text


def _numbers(nullable: bool) -> Converter:
    def convert(texts: Sequence[str]) -> tuple[Any, list[int]]:
        array, flagged, _ = _floats(texts, nullable)
        return array, flagged

    return convert


def _integers(nullable: bool) -> Converter:
    def convert(texts: Sequence[str]) -> tuple[Any, list[int]]:
        import numpy as np

        array, flagged, empty = _floats(texts, nullable)
        finite = np.isfinite(array)
        fractional = np.flatnonzero(finite & ((array != np.trunc(array)) | (np.abs(array) >= _EXACT_INTEGER)))
        flagged.extend(fractional.tolist())
        if empty and nullable:
            return array.tolist(), flagged  # floats with NaN: a float64 column, as over HTTP
        return np.where(finite, array, 0).astype(np.int64).tolist(), flagged

    return convert


def _strings(nullable: bool, known: frozenset | None) -> Converter:
    """Strings and string categories: the texts as they are; an empty (or blank) cell is missing.
    ``known``: the categories, where a value outside them is refused."""

    def convert(texts: Sequence[str]) -> tuple[Any, list[int]]:
        distinct = set(texts)
        blank = {t for t in distinct if not t or t.isspace()}
        # one object per distinct text, as read_csv gives them: the model's encoders look every
        # value up in dicts and sets, and a few shared strings stay in the CPU's cache where ten
        # thousand equal copies do not (the mixed pipeline predicted 1.6x faster)
        canonical: dict[str, Any] = {t: t for t in distinct}
        canonical.update(dict.fromkeys(blank, _NAN))
        values: Any = list(map(canonical.__getitem__, texts))
        flagged: list[int] = []
        if blank and not nullable:
            flagged = [i for i, t in enumerate(texts) if t in blank]
        if known is not None:
            unknown = distinct - known - blank
            if unknown:
                flagged.extend(i for i, t in enumerate(texts) if t in unknown)
        return values, flagged

    return convert


# --- JSON rows (JSONL lines, or the rows of a .json document) ---------------------------------------


class JsonRows:
    """Checks JSON rows (objects, arrays, or texts for a text model) with the HTTP API's words."""

    def __init__(self, schema: RowSchema) -> None:
        self.schema = schema
        self.width = schema.count  # a model without names: the first row's length
        self.matrix = schema.schema.layout == ARRAY

    def checked(self, row: Any, where: str) -> list[Any]:
        """The row's values as the model takes them; a RequestError saying why not."""
        schema = self.schema
        if schema.text and type(row) is str:
            return text_row(row, where, schema)
        if type(row) is list:
            values = array_row(row, where, schema, self.width)
            self.width = len(values)
            return values
        if type(row) is dict:
            return object_row(row, where, schema)
        if schema.text:
            raise InvalidShape(f"{where} is a JSON {json_type(row)}; expected a text (a JSON string) per row")
        raise InvalidShape(
            f"{where} is a JSON {json_type(row)}; expected an object of feature names to values or an array of values"
        )

    def rows(self, good_rows: list) -> Any:
        return _matrix(good_rows, self.width) if self.matrix else good_rows


class JsonlReader:
    """One row per line: an object of feature names to values, an array in feature order, or
    (a text model) a JSON string."""

    def __init__(self, schema: RowSchema) -> None:
        self.schema = schema
        self.json_rows = JsonRows(schema)

    def chunks(self, stream: BinaryIO, chunk_rows: int, first_line: int = 1, offset: int = 0) -> Iterator[ParsedChunk]:
        """``first_line``, ``offset``: the stream is a range of the file (see lines.line_chunks)."""
        for chunk in line_chunks(stream, chunk_rows, first_line=first_line, offset=offset):
            yield self.parse(chunk)

    def parse(self, chunk: LineChunk) -> ParsedChunk:
        failures = _too_long(chunk)
        good_numbers, good_rows = [], []
        for number, line in zip(chunk.numbers, chunk.lines, strict=True):
            where = f"line {number}"
            try:
                row = json.loads(line)
            except ValueError as exc:  # JSONDecodeError; the position helps find the typo
                failures.append(RowFailure(
                    number, MalformedJSON.code,
                    f"{where} is not valid JSON ({getattr(exc, 'msg', exc)}, column {getattr(exc, 'colno', '?')}); "
                    "expected one row per line: an object of feature names to values or an array of values",
                ))
                continue
            try:
                values = self.json_rows.checked(row, where)
            except RequestError as exc:
                failures.append(RowFailure(number, exc.code, exc.message))
                continue
            good_numbers.append(number)
            good_rows.append(values)
        failures.sort(key=lambda f: f.line)
        return ParsedChunk(good_numbers, self.json_rows.rows(good_rows), failures, _last_line(chunk))


def _to_float(text: str) -> Any:
    """A CSV field as a float, or the stripped text when it is not a number (for the message)."""
    try:
        return float(text)
    except ValueError:
        return text.strip()


def _is_number(text: str) -> bool:
    return isinstance(_to_float(text), float)
