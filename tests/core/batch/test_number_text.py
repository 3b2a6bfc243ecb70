"""number_text reads numbers as float() does, or declines: never a different value, never a text
float() refuses."""

from __future__ import annotations

import random

import numpy as np
import pytest

from core.batch.number_text import float_column, float_matrix


def spellings(count: int) -> list[str]:
    rng = np.random.default_rng(7)
    values = rng.normal(size=count) * 10.0 ** rng.integers(-300, 300, count)
    texts = []
    for i, value in enumerate(values.tolist()):
        texts.append((repr, "%.6g".__mod__, "%.17g".__mod__, "%.20e".__mod__, "%.3f".__mod__)[i % 5](value))
    random.seed(7)  # long mantissas: more digits than a double holds, rounded once
    for _ in range(count // 5):
        digits = "".join(random.choice("0123456789") for _ in range(random.randint(1, 25))).lstrip("0") or "0"
        texts.append(f"{digits}e{random.randint(-330, 270)}")
    texts += ["0", "-0.0", "-0e3", "4.9e-324", "2.2250738585072011e-308", "1.7976931348623157e308", "1E+05", "18446744073709551616"]
    return texts


def test_every_number_reads_as_float_reads_it():
    texts = spellings(50_000)
    parsed = float_column(texts)
    assert parsed is not None
    expected = np.array([float(t) for t in texts])
    assert np.array_equal(parsed, expected, equal_nan=False)
    assert (np.signbit(parsed) == np.signbit(expected)).all()  # -0 stays -0


@pytest.mark.parametrize(
    "text",
    ["+1", ".5", "1.", "01", "nan", "inf", "1e400", "1_000", '"1"', "1 2", "0x10", "true", "null", "[1]", "", " ", "１", "-0"],
)
def test_declines_what_it_does_not_read_exactly(text):
    """float() takes some of these and refuses others; either way the exact reader decides."""
    assert float_matrix(["1," + text], 2) is None


def test_an_empty_cell_of_a_column_is_nan_and_a_word_declines():
    column = float_column(["1.5", "", "-2"])
    assert column is not None and column[0] == 1.5 and np.isnan(column[1]) and column[2] == -2
    assert float_column(["1.5", "", "null"]) is None
    assert float_column(["1.5", "  "]) is None  # a blank cell: the exact reader says what it is


def test_rows_of_another_width_decline_even_when_the_total_matches():
    assert float_matrix(["1,2,3", "4"], 2) is None
    assert float_matrix(["1,2", "3,4\r"], 2).tolist() == [[1, 2], [3, 4]]  # a CRLF file's line end


@pytest.mark.parametrize("texts", [["", "1", "", "", "2", ""], [""], ["", ""], ["3", "", "", "", "4"]])
def test_runs_of_empty_cells_anywhere_are_each_one_nan(texts):
    column = float_column(texts)
    assert column is not None and len(column) == len(texts)
    assert [t == "" for t in texts] == np.isnan(column).tolist()
