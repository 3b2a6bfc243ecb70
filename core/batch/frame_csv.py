"""CSV chunks for a model that takes a DataFrame, cut and converted by pandas' C parser.

Such a model has pandas loaded already (core.model.inputs builds its frames), and ``read_csv``
tokenises and converts a chunk of 5 numbers and 3 strings about six times faster than
``str.split`` and readers.py's column converters (10,000 rows: 2.5 ms against 15 ms here). It is
used only where it reads exactly what those converters read; anywhere else :meth:`FrameChunks.read`
returns None and readers.py reads the chunk its own way, naming each bad line:

* no quote in the chunk, and every line holds the header's number of fields: ``read_csv`` pads a
  short row with missing values and drops a long row's extra fields without a word;
* number columns: with ``na_values=[""]`` and no default NA words, ``read_csv`` refuses ``nan``,
  ``NA``, a blank cell and any word (the chunk then goes the other way), so a NaN it returns is an
  empty cell; an infinity (``inf``, ``1e999``) is flagged for the per-value check, as readers.py
  flags it. Its float parser is correctly rounded from pandas 3 on (bit-identical to ``float()``
  on 700,000 texts of up to 25 digits and any exponent; tests/core/batch/test_frame_csv.py),
  while pandas 2's default was not, so pandas 2 never takes this path;
* string columns (strings, string categories, untyped): one object per distinct text, as
  readers.py makes them; an empty cell is NaN, a blank one made NaN here; a missing value where
  the column takes none, and a category the model refuses, are flagged.
* integer columns: read as numbers, a fraction flagged, the values ints (floats where a cell is
  empty), as readers.py gives them.
Booleans and number categories keep readers.py's converters.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from core.schema import ANY, CATEGORICAL, INTEGER, NUMBER, STRING, Column

_NAN = float("nan")
_EXACT_INTEGER = 2.0**53  # a float at or above this may not be the integer the text spelled


class FrameChunks:
    """Reads the chunks of one file: its header's width and where each model column sits."""

    def __init__(self, kinds: list[tuple[str, bool, frozenset | None]], file_index: list[int], width: int) -> None:
        import numpy as np

        self._kinds = kinds
        self._file_index = file_index
        self._width = width
        self._dtypes = {file_index[j]: (object if kind == STRING else np.float64) for j, (kind, _, _) in enumerate(kinds)}
        self._usecols = sorted(set(file_index))

    @classmethod
    def for_columns(cls, columns: Sequence[Column], file_index: list[int], width: int) -> FrameChunks | None:
        """The reader for these model columns, or None where pandas' parser cannot stand in."""
        import pandas as pd  # the model's rows are DataFrames: loaded already

        if int(pd.__version__.split(".", 1)[0]) < 3 or not columns:
            return None
        kinds: list[tuple[str, bool, frozenset | None]] = []
        for column in columns:
            if column.type in (NUMBER, INTEGER):
                kinds.append((column.type, column.nullable, None))
            elif column.type in (STRING, ANY):
                kinds.append((STRING, column.nullable or column.type == ANY, None))
            elif column.type == CATEGORICAL and (not column.categories or isinstance(column.categories[0], str)):
                refused_unknown = bool(column.categories) and not column.unknown_predicted
                kinds.append((STRING, column.nullable, frozenset(column.categories or ()) if refused_unknown else None))
            else:
                return None
        return cls(kinds, file_index, width)

    def read(self, lines: list[str]) -> tuple[list[Any], set[int]] | None:
        """Each model column's values for these lines, and the rows to check one by one; None
        when the chunk is not one this path reads exactly."""
        import numpy as np
        import pandas as pd

        text = "\n".join(lines)
        if '"' in text:
            return None
        if "\r" in text:  # Windows line ends; any other carriage return is the csv module's to read
            text = text.replace("\r\n", "\n").removesuffix("\r")
            if "\r" in text:
                return None
        if text.count("\n") != len(lines) - 1:
            return None
        if not _every_line_has(self._width - 1, text):
            return None
        try:
            frame = pd.read_csv(
                io.StringIO(text), header=None, names=range(self._width), usecols=self._usecols,
                dtype=self._dtypes, keep_default_na=False, na_values=[""], skip_blank_lines=False,
                index_col=False, engine="c",
            )
        except ValueError:  # a word in a number column (ParserError is a ValueError too)
            return None
        if len(frame) != len(lines):
            return None
        values: list[Any] = []
        flagged: set[int] = set()
        for (kind, nullable, known), where in zip(self._kinds, self._file_index, strict=True):
            array = frame[where].to_numpy()
            if kind == STRING:
                values.append(_strings(array, nullable, known, flagged))
                continue
            finite = np.isfinite(array)
            bad = np.isinf(array) if nullable else ~finite  # a NaN is an empty cell
            if kind == NUMBER:
                flagged.update(np.flatnonzero(bad).tolist())
                values.append(array)
                continue
            # integers as readers.py's converter gives them: ints, or floats where a cell is empty
            bad |= finite & ((array != np.trunc(array)) | (np.abs(array) >= _EXACT_INTEGER))
            flagged.update(np.flatnonzero(bad).tolist())
            if nullable and not finite.all() and np.isnan(array).any():
                values.append(array.tolist())
            else:
                values.append(np.where(finite, array, 0).astype(np.int64).tolist())
        return values, flagged


def _every_line_has(commas: int, text: str) -> bool:
    """Whether each line of ``text`` (no quotes in it) holds ``commas`` commas: counted by NumPy
    over the UTF-8 bytes (no multi-byte character holds a comma's or a newline's byte), twice as
    fast as str.count line by line."""
    import numpy as np

    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
    if not len(data):
        return commas == 0
    commas_so_far = np.cumsum(data == 44, dtype=np.int64)  # ","
    at_line_ends = np.append(commas_so_far[data == 10], commas_so_far[-1])  # "\n", and the text's end
    return bool((np.diff(at_line_ends, prepend=0) == commas).all())


def _strings(array: Any, nullable: bool, known: frozenset | None, flagged: set[int]) -> Any:
    """An object column as readers.py's string converter leaves it (blank cells missing)."""
    distinct = set(array.tolist())
    blank = {t for t in distinct if type(t) is str and t.isspace()}
    if blank:
        array = array.copy()
        for i, value in enumerate(array.tolist()):
            if value in blank:
                array[i] = _NAN
        distinct -= blank
        distinct.add(_NAN)
    missing = {value for value in distinct if type(value) is not str}  # NaN: read_csv's one object
    if missing and not nullable:
        flagged.update(i for i, value in enumerate(array.tolist()) if type(value) is not str)
    if known is not None:
        unknown = distinct - known - missing
        if unknown:
            flagged.update(i for i, value in enumerate(array.tolist()) if value in unknown)
    return array
