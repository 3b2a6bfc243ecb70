"""The writer process: the same bytes as formatting in one process, and a failure loses nothing.

On a machine with two or more CPUs, every chunk after the first is formatted and written by a
second process (core/batch/output_writer.py). These tests run the real child process.
"""

from __future__ import annotations

import joblib
import pytest

import core.batch.output_writer as output_writer
import core.batch.outputs as outputs
from tests.support import OverflowingRegressor

HEADER = "sepal_length,sepal_width,petal_length,petal_width"
SETOSA, VIRGINICA, VERSICOLOR = "5.1,3.5,1.4,0.2", "6.7,3.0,5.2,2.3", "5.9,3.0,4.2,1.5"


@pytest.fixture
def processes_started(monkeypatch):
    """How many writer processes the runs started (the real class, counted)."""
    started = []
    real = output_writer.OutputWriterProcess

    class Counted(real):
        def __init__(self, *args, **kwargs):
            started.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(outputs, "OutputWriterProcess", Counted)
    return started


def outputs_of(batch, path, monkeypatch, *, several_cpus: bool, **env):
    monkeypatch.setattr(outputs, "_several_cpus", lambda: several_cpus)
    result = batch.run(path, BATCH_CHUNK_ROWS="300", **env)
    predictions = (batch.folder / "predictions" / (path.name + ".predictions.jsonl")).read_bytes()
    errors_file = batch.folder / "predictions" / (path.name + ".errors.jsonl")
    return result, predictions, errors_file.read_bytes() if errors_file.exists() else None


def test_a_classifier_file_gives_the_same_bytes_with_and_without_the_writer_process(batch, monkeypatch, processes_started):
    rows = [SETOSA, VIRGINICA, VERSICOLOR] * 700 + ["5.0,oops,1.4,0.2"] + [VERSICOLOR] * 400
    path = batch.write("many.csv", HEADER + "\n" + "\n".join(rows) + "\n")

    alone, alone_predictions, alone_errors = outputs_of(batch, path, monkeypatch, several_cpus=False)
    assert processes_started == []
    paired, paired_predictions, paired_errors = outputs_of(batch, path, monkeypatch, several_cpus=True)
    assert processes_started == [1]

    assert paired == alone
    assert (paired.rows_predicted, paired.rows_failed) == (2500, 1)
    assert paired_predictions == alone_predictions
    assert paired_errors == alone_errors and b'"line":2102' in paired_errors
    lines = paired_predictions.decode().splitlines()
    assert len(lines) == 2500
    assert lines[0].startswith('{"line":2,"prediction":"setosa","probabilities":{"setosa":')
    assert lines[-1].startswith('{"line":2502,"prediction":"versicolor"')


def test_a_regressor_with_infinite_predictions_gives_the_same_bytes(batch, tmp_path, monkeypatch, processes_started):
    model = tmp_path / "overflowing.joblib"
    joblib.dump(OverflowingRegressor(), model)
    rows = [f"{i % 7}.5,{i}" for i in range(1000)] + ["1e9,1"] + [f"{i % 50}.25,2" for i in range(600)]
    path = batch.write("regress.csv", "f0,f1\n" + "\n".join(rows) + "\n")

    _, alone, _ = outputs_of(batch, path, monkeypatch, several_cpus=False, MODEL_URI=model.as_uri())
    result, paired, _ = outputs_of(batch, path, monkeypatch, several_cpus=True, MODEL_URI=model.as_uri())

    assert processes_started == [1]
    assert paired == alone
    assert result.rows_predicted == 1601
    lines = paired.decode().splitlines()
    assert lines[0] == '{"line":2,"prediction":0.5}'
    assert lines[1000] == '{"line":1002,"prediction":null}'  # infinity is not JSON: null, as in the HTTP API
    assert lines[-1] == '{"line":1602,"prediction":51.25}'


def test_a_writer_process_that_fails_fails_the_run_and_publishes_nothing(batch, monkeypatch):
    from core.batch.output_writer import WriterProcessFailed

    monkeypatch.setattr(output_writer, "_START", "import sys; sys.stderr.write('disk full\\n'); sys.exit(3)")
    monkeypatch.setattr(outputs, "_several_cpus", lambda: True)
    path = batch.write("many.csv", HEADER + "\n" + "\n".join([SETOSA] * 1000) + "\n")

    with pytest.raises(WriterProcessFailed) as failure:
        batch.run(path, BATCH_CHUNK_ROWS="300")

    assert failure.value.message == "the predictions writer process stopped with exit status 3: disk full"
    assert not (batch.folder / "predictions").exists()  # nothing half-written was published
