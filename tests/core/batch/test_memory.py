"""Peak memory of a run does not grow with the file: it holds a block and a chunk, not the file."""

from __future__ import annotations

import tracemalloc

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from core.batch.engine import run_batch
from core.model import ModelHolder
from core.settings import Settings

CHUNK_ROWS = 2_000
NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory) -> str:
    # a fast model, so the test measures the engine and not a forest
    iris = load_iris()
    model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target_names[iris.target])
    model.feature_names_in_ = np.asarray(NAMES, dtype=object)
    path = tmp_path_factory.mktemp("model") / "lr.joblib"
    joblib.dump(model, path)
    return path.as_uri()


def write_csv(path, rows: int) -> None:
    with open(path, "w") as out:
        out.write(",".join(NAMES) + "\n")
        for i in range(rows):
            out.write(f"{4 + i % 40 / 10},{2 + i % 25 / 10},{1 + i % 60 / 10},{i % 25 / 10}\n")


def peak_bytes(path, model_uri: str) -> int:
    settings = Settings.from_env({"MODEL_URI": model_uri, "BATCH_CHUNK_ROWS": str(CHUNK_ROWS)})
    holder = ModelHolder(settings)
    holder.get()  # the model's own memory is not the engine's
    tracemalloc.start()
    try:
        result = run_batch(path.as_uri(), holder, settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rows_failed == 0
    return peak


def test_peak_memory_stays_flat_as_the_file_grows(tmp_path, model_uri):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    rows = 30 * CHUNK_ROWS  # the small file is already 30 chunks and ~5 read blocks
    write_csv(small, rows)
    write_csv(large, 4 * rows)
    small_peak = peak_bytes(small, model_uri)
    large_peak = peak_bytes(large, model_uri)
    large_size = large.stat().st_size + (tmp_path / "predictions" / "large.csv.predictions.jsonl").stat().st_size
    # four times the rows, about the same peak; and far less than the input and output it went through
    assert large_peak < 1.25 * small_peak, (small_peak, large_peak)
    assert large_peak < large_size / 4, (large_peak, large_size)


def write_json(path, rows: int) -> None:
    with open(path, "w") as out:  # one JSON document, one row per line as json.dumps(indent=...) would not
        out.write('{"instances": [\n')
        for i in range(rows):
            out.write(("," if i else "") + f'{{"sepal_length": {4 + i % 40 / 10}, "sepal_width": {2 + i % 25 / 10}, '
                      f'"petal_length": {1 + i % 60 / 10}, "petal_width": {i % 25 / 10}}}\n')
        out.write("]}\n")


def test_a_json_document_is_read_a_row_at_a_time_not_whole(tmp_path, model_uri):
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    rows = 10 * CHUNK_ROWS
    write_json(small, rows)
    write_json(large, 4 * rows)
    small_peak = peak_bytes(small, model_uri)
    large_peak = peak_bytes(large, model_uri)
    assert large_peak < 1.25 * small_peak, (small_peak, large_peak)
    assert large_peak < large.stat().st_size / 2, (large_peak, large.stat().st_size)
