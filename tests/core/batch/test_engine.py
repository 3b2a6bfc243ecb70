"""The engine on real files: what lands in the predictions and errors files, and what does not."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import joblib
import pytest

from core.errors import SettingsError
from tests.support import NegativeRefusingModel

HEADER = "sepal_length,sepal_width,petal_length,petal_width"
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
SETOSA_LINE = {"prediction": "setosa", "probabilities": {"setosa": 1.0, "versicolor": 0.0, "virginica": 0.0}}
VIRGINICA_LINE = {"prediction": "virginica", "probabilities": {"setosa": 0.0, "versicolor": 0.01, "virginica": 0.99}}


def file_of(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri[len("file://"):])


def read_jsonl(uri: str) -> list[dict]:
    return [json.loads(line) for line in file_of(uri).read_text().splitlines()]


def csv_text(*rows) -> str:
    return HEADER + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def test_csv_rows_are_predicted_with_their_line_numbers(batch):
    result = batch.run(batch.write("day.csv", csv_text(SETOSA, VIRGINICA)))
    assert (result.rows_read, result.rows_predicted, result.rows_failed) == (2, 2, 0)
    assert result.errors_uri is None and result.skipped is None
    assert result.predictions_uri == (batch.folder / "predictions" / "day.csv.predictions.jsonl").as_uri()
    assert read_jsonl(result.predictions_uri) == [{"line": 2, **SETOSA_LINE}, {"line": 3, **VIRGINICA_LINE}]
    assert not (batch.folder / "predictions" / "day.csv.errors.jsonl").exists()


def test_csv_columns_in_another_order_are_reordered_by_name(batch):
    text = "petal_width,petal_length,sepal_width,sepal_length\n0.2,1.4,3.5,5.1\n2.3,5.2,3.0,6.7\n"
    result = batch.run(batch.write("shuffled.csv", text))
    assert read_jsonl(result.predictions_uri) == [{"line": 2, **SETOSA_LINE}, {"line": 3, **VIRGINICA_LINE}]


def test_jsonl_objects_and_arrays_are_predicted(batch):
    obj = dict(zip(HEADER.split(","), SETOSA, strict=True))
    result = batch.run(batch.write("rows.jsonl", json.dumps(obj) + "\n\n" + json.dumps(VIRGINICA) + "\n"))
    assert read_jsonl(result.predictions_uri) == [{"line": 1, **SETOSA_LINE}, {"line": 3, **VIRGINICA_LINE}]


@pytest.mark.parametrize("name", ["day.csv.gz", "rows.jsonl.gz"])
def test_gzip_inputs_give_the_same_predictions(batch, name):
    text = csv_text(SETOSA, VIRGINICA) if ".csv" in name else json.dumps(SETOSA) + "\n" + json.dumps(VIRGINICA) + "\n"
    result = batch.run(batch.write(name, gzip.compress(text.encode())))
    first = 2 if ".csv" in name else 1
    assert read_jsonl(result.predictions_uri) == [{"line": first, **SETOSA_LINE}, {"line": first + 1, **VIRGINICA_LINE}]


def test_bad_csv_rows_are_reported_and_the_good_rows_still_predicted(batch):
    # the demo forest takes missing values (its allow_nan tag), so the empty cell of line 6 is one
    text = csv_text(SETOSA, ["x", 3.5, 1.4, 0.2], [5.1, "nan", 1.4, 0.2], [5.1, 3.5, 1.4], ["", 1, 2, 3], VIRGINICA)
    result = batch.run(batch.write("bad.csv", text))
    assert (result.rows_read, result.rows_predicted, result.rows_failed) == (6, 3, 3)
    predicted = read_jsonl(result.predictions_uri)
    assert [p["line"] for p in predicted] == [2, 6, 7]
    assert [predicted[0], predicted[2]] == [{"line": 2, **SETOSA_LINE}, {"line": 7, **VIRGINICA_LINE}]
    assert read_jsonl(result.errors_uri) == [
        {"line": 3, "code": "invalid_value", "message": "line 3, column 'sepal_length' is the string 'x'; expected a number"},
        {"line": 4, "code": "invalid_value", "message": "line 4, column 'sepal_width' is NaN; expected a finite number"},
        {"line": 5, "code": "invalid_features", "message": "line 5 has 3 values; expected 4, one per header column"},
    ]


def test_an_empty_cell_is_refused_where_the_model_takes_no_missing_value(batch, typed_models):
    text = HEADER + "\n5.1,3.5,1.4,0.2\n,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    result = batch.run(batch.write("gap.csv", text), model_uri=typed_models["logistic"].as_uri())
    assert [p["line"] for p in read_jsonl(result.predictions_uri)] == [2, 4]
    assert read_jsonl(result.errors_uri) == [{
        "line": 3, "code": "invalid_value",
        "message": "line 3, column 'sepal_length' is empty; expected a number (missing values are not accepted)",
    }]


def test_bad_jsonl_lines_are_reported_with_the_http_apis_words(batch):
    lines = [
        json.dumps(SETOSA),
        "{not json",
        json.dumps({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}),
        json.dumps([1, 2]),
        '"a string"',
        json.dumps(VIRGINICA),
    ]
    result = batch.run(batch.write("bad.jsonl", "\n".join(lines) + "\n"))
    assert read_jsonl(result.predictions_uri) == [{"line": 1, **SETOSA_LINE}, {"line": 6, **VIRGINICA_LINE}]
    errors = read_jsonl(result.errors_uri)
    assert [(e["line"], e["code"]) for e in errors] == [
        (2, "malformed_json"), (3, "invalid_features"), (4, "invalid_features"), (5, "invalid_shape")
    ]
    assert errors[0]["message"].startswith("line 2 is not valid JSON (")
    assert errors[1]["message"] == (
        "line 3: missing feature 'petal_width'; expected 4 features: sepal_length, sepal_width, petal_length, petal_width"
    )
    assert errors[2]["message"] == (
        "line 4 has 2 values; expected 4 features: sepal_length, sepal_width, petal_length, petal_width"
    )


def test_one_bad_row_among_many_costs_one_error_line(batch):
    rows = [SETOSA] * 2500 + [["oops", 1, 1, 1]] + [VIRGINICA] * 2500
    result = batch.run(batch.write("many.csv", csv_text(*rows)), BATCH_CHUNK_ROWS="700")
    assert (result.rows_predicted, result.rows_failed) == (5000, 1)
    predicted = read_jsonl(result.predictions_uri)
    assert [p["line"] for p in predicted] == list(range(2, 2502)) + list(range(2503, 5003))
    assert [e["line"] for e in read_jsonl(result.errors_uri)] == [2502]


def test_the_same_input_twice_gives_byte_identical_outputs(batch):
    path = batch.write("again.csv", csv_text(SETOSA, ["bad", 1, 1, 1], VIRGINICA))
    first = batch.run(path)
    before = file_of(first.predictions_uri).read_bytes(), file_of(first.errors_uri).read_bytes()
    second = batch.run(path, BATCH_CHUNK_ROWS="1")  # chunking never shows in the output
    assert (second.predictions_uri, second.errors_uri) == (first.predictions_uri, first.errors_uri)
    assert (file_of(second.predictions_uri).read_bytes(), file_of(second.errors_uri).read_bytes()) == before
    assert sorted(p.name for p in (batch.folder / "predictions").iterdir()) == [
        "again.csv.errors.jsonl", "again.csv.predictions.jsonl"
    ]  # no temporary file left behind


def test_a_replaced_input_without_bad_rows_leaves_no_stale_errors_file(batch):
    path = batch.write("fixed.csv", csv_text(SETOSA, ["bad", 1, 1, 1]))
    assert batch.run(path).errors_uri is not None

    batch.write("fixed.csv", csv_text(SETOSA, VIRGINICA))  # the same name, the bad row corrected
    second = batch.run(path)

    assert (second.rows_predicted, second.rows_failed, second.errors_uri) == (2, 0, None)
    assert sorted(p.name for p in (batch.folder / "predictions").iterdir()) == ["fixed.csv.predictions.jsonl"]


def test_an_output_is_skipped_not_predicted(batch):
    batch.run(batch.write("day.csv", csv_text(SETOSA)))
    output = batch.folder / "predictions" / "day.csv.predictions.jsonl"
    before = output.read_bytes()
    result = batch.run(output)
    assert result.skipped and "outputs are never inputs" in result.skipped
    assert result.predictions_uri is None
    assert output.read_bytes() == before
    assert not (batch.folder / "predictions" / "predictions").exists()


def test_an_input_under_a_configured_output_prefix_is_skipped(batch):
    path = batch.write("results/day.csv", csv_text(SETOSA))
    result = batch.run(path, BATCH_OUTPUT_URI=batch.folder.as_uri())
    assert result.skipped == "file://.../day.csv is under the output prefix file://.../incoming/; outputs are never inputs"
    assert not (batch.folder / "day.csv.predictions.jsonl").exists()


def test_an_unknown_extension_is_skipped_with_its_reason(batch):
    result = batch.run(batch.write("data.parquet", b"PAR1"))
    assert result.skipped == "'data.parquet' is not a batch input; expected a name ending in .csv, .jsonl, .json, .csv.gz, .jsonl.gz or .json.gz"
    assert not (batch.folder / "predictions").exists()


def test_an_output_prefix_equal_to_the_input_folder_is_refused(batch):
    path = batch.write("day.csv", csv_text(SETOSA))
    with pytest.raises(SettingsError) as caught:
        batch.run(path, BATCH_OUTPUT_URI=batch.folder.as_uri())
    assert caught.value.message.startswith("BATCH_OUTPUT_URI=file://.../incoming/ is the folder the inputs are in")


def test_a_header_without_the_models_features_is_one_error_and_no_predictions(batch):
    result = batch.run(batch.write("wrong.csv", "sepal_length,sepal_width,petal_length,petal_widht\n1,2,3,4\n"))
    assert result.rows_predicted == 0
    assert read_jsonl(result.predictions_uri) == []
    assert read_jsonl(result.errors_uri) == [{
        "line": 1, "code": "invalid_input",
        "message": "the header (line 1): missing feature 'petal_width'; unknown feature 'petal_widht' "
        "(did you mean 'petal_width'?); expected 4 features: sepal_length, sepal_width, petal_length, petal_width",
    }]


def test_a_csv_without_a_header_says_a_header_is_expected(batch):
    result = batch.run(batch.write("noheader.csv", "5.1,3.5,1.4,0.2\n"))
    assert read_jsonl(result.errors_uri)[0]["message"] == (
        "the header (line 1) holds numbers, not names; expected a header row of "
        "4 features: sepal_length, sepal_width, petal_length, petal_width"
    )


def test_a_truncated_gzip_keeps_the_rows_before_the_break(batch):
    rows = [[i % 8, i % 5, i % 7, i % 3] for i in range(400_000)]  # ~3 MB: several 1 MiB blocks
    data = gzip.compress(csv_text(*rows).encode())
    result = batch.run(batch.write("cut.csv.gz", data[: len(data) // 2]), BATCH_CHUNK_ROWS="1000")
    assert 0 < result.rows_predicted < 400_000
    assert result.input_error.startswith("the input is not a complete gzip stream")
    errors = read_jsonl(result.errors_uri)
    assert errors == [{"line": result.rows_predicted + 2, "code": "invalid_input", "message": result.input_error}]


def test_rows_the_model_refuses_are_isolated_and_reported(batch, tmp_path):
    model = tmp_path / "refuses-negatives.joblib"
    joblib.dump(NegativeRefusingModel(), model)
    text = "f0,f1\n" + "".join(f"{i},1\n" for i in range(10)) + "-1,1\n" + "".join(f"{i},2\n" for i in range(10))
    result = batch.run(batch.write("neg.csv", text), model_uri=model.as_uri(), BATCH_CHUNK_ROWS="8")
    assert (result.rows_predicted, result.rows_failed) == (20, 1)
    predicted = read_jsonl(result.predictions_uri)
    assert predicted[:2] == [{"line": 2, "prediction": 1.0}, {"line": 3, "prediction": 2.0}]  # no probabilities
    assert [p["line"] for p in predicted] == [n for n in range(2, 23) if n != 12]
    assert read_jsonl(result.errors_uri) == [{
        "line": 12, "code": "prediction_rejected",
        "message": "line 12: the model rejected the rows: Input X contains negative values",
    }]
