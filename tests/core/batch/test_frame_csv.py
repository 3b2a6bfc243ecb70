"""pandas' C parser for the CSV chunks of a DataFrame model (core/batch/frame_csv.py) reads what
readers.py's own converters read: the same predictions and the same errors, line for line, on
files full of the cases where the two could differ; the numbers bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from core.batch.frame_csv import FrameChunks
from core.schema import CATEGORICAL, INTEGER, NUMBER, STRING, Column

from .test_engine import read_jsonl

HEADER = "age,fare,pclass,sex,embarked"
# each block is its own chunk (BATCH_CHUNK_ROWS=4): a chunk with one odd line goes readers.py's
# way, the clean ones pandas'
BLOCKS = [
    ["22,7.25,3,male,S", "38,71.28,1,female,C", ",8.05,3,male,S", "35,53.1,1,female,"],  # empty cells
    ["inf,7.25,3,male,S", "1e999,7.25,3,male,S", "22,7.25,3,male,S", "-inf,1,1,female,C"],  # infinities
    ["nan,7.25,3,male,S", "22,NaN,3,male,S", "22,7.25,3,male,S", "22,7.25,3,male,S"],  # words for NaN
    [" ,7.25,3,male,S", "22,7.25,3,male,S", "22,7.25,3,male,S", "22,7.25,3,male,S"],  # a blank number cell
    ["22,7.25,3, ,S", "22,7.25,3,male,  ", "22,7.25,3,male,S", "22,7.25,3,female,C"],  # blank string cells
    ["22,7.25,2.5,male,S", "22,7.25,1e300,male,S", "22,7.25,2.0,male,S", "22,7.25,9007199254740993,male,S"],  # integers
    ["22,7.25,3,male,X", "22,7.25,3,robot,S", "22,7.25,3,male,S", "22,7.25,3,female,Q"],  # unknown categories
    ["22,7.25,3,male", "22,7.25,3,male,S,extra", "22,7.25,3,male,S", "22,7.25,3,female,C"],  # short and long rows
    ['22,7.25,3,"male",S', '"22",7.25,3,female,C', "22,7.25,3,male,S", "22,7.25,3,male,S"],  # quotes
    ["22,7.25,3,male,S\r", "30,8,2,female,C\r", "41,13,2,male,Q\r", "18,5,3,female,S\r"],  # Windows line ends
    ["1_0,7.25,3,male,S", "+1,.5,3,male,S", "1.,5.,3,male,S", " 22 ,7.25,3,male,S"],  # shapes float() takes
    ["0.1,1e-7,1,female,C", "123456789.123456789,2.2250738585072014e-308,2,male,Q", "5e-324,1.7976931348623157e308,3,male,S",
     "-0,0.30000000000000004,1,female,S"],  # precision
]


def write_file(batch, blocks) -> object:
    return batch.write("mixed.csv", "\n".join([HEADER] + [line for block in blocks for line in block]) + "\n")


def run_both_ways(batch, path, model_uri, monkeypatch) -> tuple[tuple, tuple, list[bool]]:
    """(predictions, errors) read by pandas' parser, the same by readers.py alone, and for each
    chunk whether pandas' parser read it."""
    taken = []
    read = FrameChunks.read

    def counted(self, lines):
        result = read(self, lines)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(FrameChunks, "read", counted)
    fast = batch.run(path, model_uri=model_uri, BATCH_CHUNK_ROWS="4")
    fast_outputs = (read_jsonl(fast.predictions_uri), read_jsonl(fast.errors_uri) if fast.errors_uri else [])
    monkeypatch.setattr(FrameChunks, "for_columns", classmethod(lambda cls, *args: None))
    slow = batch.run(path, model_uri=model_uri, BATCH_CHUNK_ROWS="4")
    slow_outputs = (read_jsonl(slow.predictions_uri), read_jsonl(slow.errors_uri) if slow.errors_uri else [])
    return fast_outputs, slow_outputs, taken


@pytest.mark.parametrize("model", ["mixed", "strict"])
def test_pandas_parser_and_readers_converters_give_the_same_predictions_and_errors(batch, typed_models, model, monkeypatch):
    path = write_file(batch, BLOCKS)
    fast, slow, chunks_by_pandas = run_both_ways(batch, path, typed_models[model].as_uri(), monkeypatch)
    assert fast == slow
    predictions, errors = fast
    assert len(predictions) + len({e["line"] for e in errors}) == sum(map(len, BLOCKS))  # no line lost
    assert sum(chunks_by_pandas) >= 3  # the clean blocks (and, for the mixed model, the empty cells)
    if model == "mixed":  # the first block's empty cells are missing values this model takes
        assert [p["line"] for p in predictions[:4]] == [2, 3, 4, 5]


def test_a_large_clean_file_is_read_by_pandas_parser_with_the_same_answers(batch, typed_models, monkeypatch):
    rng = np.random.default_rng(3)
    lines = [
        f"{'' if i % 7 == 0 else round(float(rng.normal(30, 12)), 3)},{float(rng.exponential(20))!r},{i % 3 + 1},"
        f"{['male', 'female', ''][i % 3]},{['S', 'C', 'Q', 'S', ''][i % 5]}"
        for i in range(3000)
    ]
    path = write_file(batch, [lines])
    fast, slow, chunks_by_pandas = run_both_ways(batch, path, typed_models["mixed"].as_uri(), monkeypatch)
    assert fast == slow and len(fast[0]) == 3000 and fast[1] == []
    assert len(chunks_by_pandas) > 700 and all(chunks_by_pandas)


def test_numbers_are_bit_identical_to_float():
    r = random.Random(5)
    texts = []
    for _ in range(20_000):
        digits = "".join(r.choice("0123456789") for _ in range(r.randint(1, 25)))
        cut = r.randint(0, len(digits))
        text = digits[:cut] + "." + digits[cut:] if r.random() < 0.8 else digits
        if text == ".":
            text = "0"
        if r.random() < 0.3:
            text += f"e{r.randint(-330, 310)}"
        texts.append(("-" if r.random() < 0.5 else "") + text)
    reader = FrameChunks.for_columns([Column("x", NUMBER, nullable=True)], [0], 1)
    assert reader is not None
    (values,), flagged = reader.read(texts)
    expected = np.array([float(t) for t in texts])
    assert np.array_equal(values.view(np.int64), expected.view(np.int64))
    assert flagged == set(np.flatnonzero(np.isinf(expected)).tolist())  # 1e309 and beyond


def test_where_the_columns_are_not_ones_it_reads_exactly_it_declines():
    assert FrameChunks.for_columns([Column("b", "boolean")], [0], 1) is None
    assert FrameChunks.for_columns([Column("c", CATEGORICAL, categories=(1, 2))], [0], 1) is None
    reader = FrameChunks.for_columns(
        [Column("n", NUMBER), Column("i", INTEGER), Column("s", STRING, nullable=True)], [0, 1, 2], 3)
    assert reader is not None
    assert reader.read(["1,2,a", "3,4"]) is None  # a short row
    assert reader.read(["1,2,a", '3,4,"b"']) is None  # a quote
    assert reader.read(["1,2,a", "x,4,b"]) is None  # a word in a number column
    assert reader.read(["1,2,a", "3,4,b\rc"]) is None  # a lone carriage return
    (numbers, integers, strings), flagged = reader.read(["1.5,2,a", "3,4.5,", ",6, "])
    assert integers[:2] == [2, 4] and all(type(v) is int for v in integers)
    assert strings[0] == "a" and all(v != v for v in strings[1:])  # empty and blank: missing
    assert flagged == {1, 2}  # 4.5 is no integer; an empty number cell where none is taken


def test_pandas_before_3_is_not_trusted_with_the_numbers(monkeypatch):
    import pandas as pd

    monkeypatch.setattr(pd, "__version__", "2.2.3")
    assert FrameChunks.for_columns([Column("x", NUMBER)], [0], 1) is None
