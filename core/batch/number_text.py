"""Texts of plain decimal numbers -> float arrays, without CPython's float() per value.

Why not ``float`` or NumPy's ``loadtxt`` (which calls CPython's string-to-double for every field):
their cost per value depends on how the interpreter was built. Python 3.11 builds switch the x87
control word around every conversion, and on AMD Zen 3 that switch is most of the time: on the
pyenv 3.11.7 here ``float('-1.23456')`` takes 203 ns, 38% of it in ``_Py_set_387controlword``
(``perf``), where Debian's 3.11.2 takes 48 ns and pyenv's 3.12.1 56 ns. A 20-column row then costs
4 µs to parse, more than predicting it, and the same file reads 3x slower on one machine than on
another of the same kind.

orjson (a dependency, see core.installed) parses numbers with its own correctly rounded parser:
the chunk joined into one JSON array is parsed in one call, ~2x loadtxt here and the same on every
build. It agrees with ``float()`` bit for bit (checked on 1.6 M texts: ``repr``, ``%.6g``,
``%.17g``, 25-digit mantissas, subnormals; tests/core/batch/test_number_text.py). It is only asked
about text made of the characters of plain decimal numbers; what it refuses (``+1``, ``.5``,
``1.``, ``01``, an empty cell, an out-of-range exponent) and ``-0`` (an integer to JSON, so its
sign would be lost) return None, and the caller reads those
rows the exact way, which words each refusal. A text it accepts is a number ``float`` accepts too,
with the same value.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

from core.installed import orjson_module

# Every byte a plain decimal number, the comma between numbers, or the blanks float() strips may hold.
_NUMBER_BYTES = b"0123456789.eE+-, \t\r"


def float_matrix(lines: list[str], width: int) -> Any:
    """Lines of ``width`` comma-separated numbers -> a (len(lines), width) float64 array, or None
    when any line needs the exact reader (a quote, a missing or extra value, a word, an empty
    cell), or orjson is not installed."""
    if set(map(str.count, lines, repeat(","))) != {width - 1}:
        return None  # each line's own width: a short line and a long one would otherwise even out
    values = _json_numbers(",".join(lines), len(lines) * width)
    return None if values is None else values.reshape(len(lines), width)


def float_column(texts: Sequence[str]) -> Any:
    """One column's texts -> a float64 array, an empty cell as NaN; None when any text needs the
    exact reader, or orjson is not installed."""
    joined = ",".join(texts)
    if "" not in texts:
        return _json_numbers(joined, len(texts))
    if not _only_number_bytes(joined):
        return None
    # each empty cell as null: every ",," becomes ",null," (twice, for runs of empty cells), with
    # a comma at each end so that the first and last cells are between two commas too
    edged = ("," + joined + ",").replace(",,", ",null,").replace(",,", ",null,")
    return _json_numbers(edged[1:-1], len(texts), nulls=True, checked=True)


def _only_number_bytes(joined: str) -> bool:
    return joined.isascii() and not joined.encode("ascii").translate(None, _NUMBER_BYTES)


def _json_numbers(joined: str, count: int, *, nulls: bool = False, checked: bool = False) -> Any:
    import numpy as np

    orjson = orjson_module()
    if orjson is None or not (checked or _only_number_bytes(joined)):
        return None
    try:
        values = orjson.loads("[" + joined + "]")
    except orjson.JSONDecodeError:  # out of range, or a shape float() takes and JSON does not
        return None
    if len(values) != count:  # each text must have been one number
        return None
    # None (an empty cell) becomes NaN in np.array; fromiter, twice as fast, would refuse it
    array = np.array(values, dtype=np.float64) if nulls else np.fromiter(values, dtype=np.float64, count=count)
    if not array.all() and _integer_minus_zero(joined):
        return None  # JSON reads the integer -0 as the int 0, where float() keeps the sign
    return array


def _integer_minus_zero(joined: str) -> bool:
    """Whether a value is spelled ``-0`` (not ``-0.0``, ``-0e1``, nor an exponent's ``e-0``).
    Asked only of a chunk holding a zero: it costs a quarter of parsing it."""
    import numpy as np

    text = np.frombuffer(("," + joined + ",").encode("ascii"), dtype=np.uint8)
    minus = np.flatnonzero(text == ord("-"))
    zero = minus[text[minus + 1] == ord("0")]
    ends = np.isin(text[zero + 2], np.frombuffer(b", \t\r", dtype=np.uint8))
    in_exponent = np.isin(text[zero - 1], np.frombuffer(b"eE", dtype=np.uint8))
    return bool((ends & ~in_exponent).any())
