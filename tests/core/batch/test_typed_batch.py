"""Batch files typed by the model's schema, as HTTP requests are: strings, categories, missing
values, texts; quoted CSV fields with commas and line ends; .json documents; a header taken by
position for a model fitted without feature names. Predictions are compared with the model's
own answers on the DataFrame a notebook would build."""

from __future__ import annotations

import csv
import io
import json
import logging

import joblib
import numpy as np
import pytest

from tests.typed_models import PASSENGER, TEXTS

from .test_engine import read_jsonl

COLUMNS = list(PASSENGER)


def passenger_rows(n: int) -> list[dict]:
    rng = np.random.default_rng(7)
    return [
        {
            "age": None if i % 10 == 3 else float(round(rng.normal(30, 12), 1)),
            "fare": float(round(rng.exponential(20), 2)),
            "pclass": int(rng.integers(1, 4)),
            "sex": ["male", "female"][i % 2],
            "embarked": ["S", "C", "Q"][i % 3],
        }
        for i in range(n)
    ]


def csv_of(rows: list[dict], columns=COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return out.getvalue()


def expected(model_path, rows: list[dict]) -> list[dict]:
    """What the model itself answers for ``rows``, as predictions lines (line numbers aside)."""
    import pandas as pd

    model = joblib.load(model_path)
    frame = pd.DataFrame([{k: (np.nan if v is None else v) for k, v in r.items()} for r in rows], columns=COLUMNS)
    if getattr(model, "categorical_features", None) == "from_dtype":
        frame = frame.astype({"sex": "category", "embarked": "category"})
    labels = model.predict(frame).tolist()
    probabilities = model.predict_proba(frame)
    return [
        {"prediction": label, "probabilities": dict(zip(map(str, model.classes_.tolist()), p, strict=True))}
        for label, p in zip(labels, probabilities.tolist(), strict=True)
    ]


def assert_same(lines: list[dict], wanted: list[dict], numbers: list[int]) -> None:
    assert [line["line"] for line in lines] == numbers
    for line, want in zip(lines, wanted, strict=True):
        assert line["prediction"] == want["prediction"]
        assert line["probabilities"].keys() == want["probabilities"].keys()
        for key, value in want["probabilities"].items():
            assert line["probabilities"][key] == pytest.approx(value, abs=1e-9)


def test_a_mixed_pipeline_predicts_strings_categories_and_empty_cells(batch, typed_models):
    rows = passenger_rows(50)
    rows[5]["embarked"] = "X"  # a category never seen: the encoder ignores it, as over HTTP
    result = batch.run(batch.write("people.csv", csv_of(rows)), model_uri=typed_models["mixed"].as_uri())
    assert (result.rows_read, result.rows_predicted, result.rows_failed) == (50, 50, 0)
    assert_same(read_jsonl(result.predictions_uri), expected(typed_models["mixed"], rows), list(range(2, 52)))


def test_a_mixed_pipeline_over_many_chunks_gives_what_one_chunk_gives(batch, typed_models):
    rows = passenger_rows(600)
    path = batch.write("many.csv", csv_of(rows))
    whole = batch.run(path, model_uri=typed_models["mixed"].as_uri())
    lines = read_jsonl(whole.predictions_uri)
    chunked = batch.run(path, model_uri=typed_models["mixed"].as_uri(), BATCH_CHUNK_ROWS="7")
    # the same up to the last bit: BLAS sums a matrix product in another order for another size
    assert_same(read_jsonl(chunked.predictions_uri), lines, list(range(2, 602)))
    assert_same(lines, expected(typed_models["mixed"], rows), list(range(2, 602)))


def test_values_a_column_refuses_are_reported_with_the_http_apis_words(batch, typed_models):
    rows = passenger_rows(6)
    text = csv_of(rows).splitlines()
    text[2] = "x,7.25,3,male,S"  # line 3
    text[4] = "22,7.25,nan,male,S"  # line 5
    result = batch.run(batch.write("bad.csv", "\n".join(text) + "\n"), model_uri=typed_models["mixed"].as_uri())
    assert (result.rows_predicted, result.rows_failed) == (4, 2)
    assert [p["line"] for p in read_jsonl(result.predictions_uri)] == [2, 4, 6, 7]
    assert read_jsonl(result.errors_uri) == [
        {"line": 3, "code": "invalid_value", "message": "line 3, column 'age' is the string 'x'; expected a number"},
        {"line": 5, "code": "invalid_value", "message": "line 5, column 'pclass' is NaN; expected a finite number"},
    ]


def test_an_empty_cell_where_the_model_takes_no_missing_value_is_refused(batch, typed_models):
    content = "age,fare,pclass,sex,embarked\n22,7.25,3,male,S\n22,,1,female,C\n30,8,2,,Q\n"
    result = batch.run(batch.write("gaps.csv", content), model_uri=typed_models["strict"].as_uri())
    assert [p["line"] for p in read_jsonl(result.predictions_uri)] == [2]
    assert read_jsonl(result.errors_uri) == [
        {"line": 3, "code": "invalid_value",
         "message": "line 3, column 'fare' is empty; this model cannot take a missing value in 'fare'; expected a number"},
        {"line": 4, "code": "invalid_value",
         "message": "line 4, column 'sex' is empty; this model cannot take a missing value in 'sex'; "
         "expected one of 'female', 'male'"},
    ]


def test_hgb_takes_empty_cells_and_categories(batch, typed_models):
    rows = passenger_rows(40)
    rows[4]["sex"] = None  # a missing category: native missing-value support
    result = batch.run(batch.write("hgb.csv", csv_of(rows)), model_uri=typed_models["hgb"].as_uri())
    assert result.rows_failed == 0, read_jsonl(result.errors_uri)
    assert_same(read_jsonl(result.predictions_uri), expected(typed_models["hgb"], rows), list(range(2, 42)))


def test_an_unknown_category_the_model_cannot_take_is_that_lines_error(batch, typed_models):
    rows = [{**r, "age": r["age"] or 30.0} for r in passenger_rows(4)]
    rows[2]["embarked"] = "Z"
    result = batch.run(batch.write("strict.csv", csv_of(rows)), model_uri=typed_models["strict"].as_uri())
    assert [p["line"] for p in read_jsonl(result.predictions_uri)] == [2, 3, 5]
    assert read_jsonl(result.errors_uri) == [{
        "line": 4, "code": "invalid_value",
        "message": "line 4, column 'embarked' is the string 'Z', a category the model was not fitted on; "
        "expected one of 'C', 'Q', 'S'",
    }]


def test_a_text_model_reads_quoted_texts_with_commas_and_line_ends(batch, typed_models):
    texts = ["free money, now", "see you\nat lunch", 'he said "win cash"', "meeting moved to friday"]
    content = csv_of([{"text": t} for t in texts], ["text"])
    result = batch.run(batch.write("texts.csv", content), model_uri=typed_models["text"].as_uri())
    model = joblib.load(typed_models["text"])
    predicted = read_jsonl(result.predictions_uri)
    assert [p["line"] for p in predicted] == [2, 3, 5, 6]  # the second text spans lines 3 and 4
    assert [p["prediction"] for p in predicted] == model.predict(texts).tolist()


def test_a_text_model_reads_jsonl_strings_objects_and_arrays(batch, typed_models):
    lines = [json.dumps(TEXTS[0]), json.dumps({"text": TEXTS[1]}), json.dumps([TEXTS[2]]), "42"]
    result = batch.run(batch.write("texts.jsonl", "\n".join(lines) + "\n"), model_uri=typed_models["text"].as_uri())
    model = joblib.load(typed_models["text"])
    assert [p["prediction"] for p in read_jsonl(result.predictions_uri)] == model.predict(TEXTS[:3]).tolist()
    assert read_jsonl(result.errors_uri)[0]["line"] == 4


def test_jsonl_rows_of_a_mixed_pipeline_take_null_and_strings(batch, typed_models):
    rows = passenger_rows(12)
    content = "".join(json.dumps(r) + "\n" for r in rows) + json.dumps({**PASSENGER, "sex": 1}) + "\n"
    result = batch.run(batch.write("people.jsonl", content), model_uri=typed_models["mixed"].as_uri())
    assert_same(read_jsonl(result.predictions_uri), expected(typed_models["mixed"], rows), list(range(1, 13)))
    assert read_jsonl(result.errors_uri) == [{
        "line": 13, "code": "invalid_value",
        "message": "line 13.sex is the number 1; expected a string (known categories: 'female', 'male')",
    }]


# --- quoted CSV fields -------------------------------------------------------------------------------


def test_quoted_commas_and_line_ends_keep_rows_whole_and_numbers_right(batch, typed_models):
    content = (
        "age,fare,pclass,sex,embarked\n"
        '22,7.25,3,"male","S"\n'  # line 2
        '38,"71.28",1,"fe\nmale","C"\n'  # line 3, spans 3 and 4: an unknown category, ignored
        "\n"  # line 5: blank
        '26,7.92,3,"female","S, or so"\n'  # line 6: a comma inside quotes
        'x,7.92,3,"a ""quoted"" word",S\n'  # line 7: refused, named by its own line
        "35,53.1,1,female,S\n"  # line 8
    )
    result = batch.run(batch.write("quoted.csv", content), model_uri=typed_models["mixed"].as_uri())
    assert [p["line"] for p in read_jsonl(result.predictions_uri)] == [2, 3, 6, 8]
    assert read_jsonl(result.errors_uri) == [
        {"line": 7, "code": "invalid_value", "message": "line 7, column 'age' is the string 'x'; expected a number"}
    ]


def test_a_quoted_number_in_a_numeric_file_is_still_a_number(batch):
    content = 'sepal_length,sepal_width,petal_length,petal_width\n"5.1",3.5,1.4,0.2\n6.7,3.0,"5.2",2.3\n'
    result = batch.run(batch.write("quoted.csv", content))
    assert [p["prediction"] for p in read_jsonl(result.predictions_uri)] == ["setosa", "virginica"]


# --- .json documents ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["array", "instances", "inputs", "dataframe_records", "dataframe_split"])
def test_a_json_document_in_every_request_form_is_predicted(batch, typed_models, form):
    rows = passenger_rows(30)
    if form == "array":
        document = rows
    elif form == "dataframe_split":
        columns = COLUMNS[::-1]
        document = {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}}
    else:
        document = {form: rows}
    path = batch.write(f"{form}.json", json.dumps(document, indent=1))
    result = batch.run(path, model_uri=typed_models["mixed"].as_uri(), BATCH_CHUNK_ROWS="8")
    assert result.rows_failed == 0, read_jsonl(result.errors_uri)
    assert_same(read_jsonl(result.predictions_uri), expected(typed_models["mixed"], rows), list(range(1, 31)))


def test_bad_rows_of_a_json_document_are_named_as_a_request_would_name_them(batch, typed_models):
    rows = passenger_rows(3)
    document = {"instances": [rows[0], {**rows[1], "age": "old"}, rows[2]]}
    result = batch.run(batch.write("rows.json", json.dumps(document)), model_uri=typed_models["mixed"].as_uri())
    assert [p["line"] for p in read_jsonl(result.predictions_uri)] == [1, 3]
    assert read_jsonl(result.errors_uri) == [{
        "line": 2, "code": "invalid_value", "message": "instances[1].age is the string 'old'; expected a number"
    }]


def test_a_large_json_document_is_read_across_blocks_a_row_at_a_time(batch, monkeypatch):
    from core.batch import lines

    monkeypatch.setattr(lines, "BLOCK_BYTES", 64)  # rows cut by block ends everywhere
    monkeypatch.setattr("core.batch.json_document.BLOCK_BYTES", 64)
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] * 200
    result = batch.run(batch.write("big.json", json.dumps({"inputs": rows})))
    predicted = read_jsonl(result.predictions_uri)
    assert [p["prediction"] for p in predicted] == ["setosa", "virginica"] * 200
    assert [p["line"] for p in predicted] == list(range(1, 401))


def test_a_broken_json_document_keeps_the_rows_before_the_break(batch):
    content = '[\n[5.1, 3.5, 1.4, 0.2],\n[6.7, 3.0, 5.2, 2.3],\n[5.1, 3.5 1.4, 0.2],\n[5.1, 3.5, 1.4, 0.2]]'
    result = batch.run(batch.write("broken.json", content))
    assert result.rows_predicted == 2
    assert result.input_error == (
        "the file stopped being readable: row 3 is not valid JSON (Expecting ',' delimiter) at line 4 of the file"
    )
    assert read_jsonl(result.errors_uri) == [{"line": 3, "code": "invalid_input", "message": result.input_error}]


@pytest.mark.parametrize("content, message", [
    ('{"rows": [[1, 2, 3, 4]]}', "the file has no rows; expected an array of rows or an object with one of the keys"),
    ('"hello"', "the file starts with '\"'; expected an array of rows"),
    ('{"instances": {"a": 1}}', "'instances' is a JSON object; expected an array of rows"),
])
def test_a_json_document_in_no_request_form_is_refused_saying_why(batch, content, message):
    result = batch.run(batch.write("odd.json", content))
    assert result.rows_predicted == 0
    assert result.input_error.startswith(message), result.input_error


def test_a_gzipped_json_document_is_read_too(batch):
    import gzip

    result = batch.run(batch.write("rows.json.gz", gzip.compress(b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}')))
    assert [p["prediction"] for p in read_jsonl(result.predictions_uri)] == ["setosa"]


# --- a model fitted without feature names --------------------------------------------------------------


@pytest.fixture
def unnamed_model_uri(tmp_path) -> str:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    path = tmp_path / "unnamed.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(iris.data, iris.target_names[iris.target]), path)
    return path.as_uri()


def test_a_model_without_feature_names_takes_a_header_of_the_right_width_by_position(batch, unnamed_model_uri, caplog):
    content = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    with caplog.at_level(logging.INFO, logger="serverless_ml.batch"):
        result = batch.run(batch.write("iris.csv", content), model_uri=unnamed_model_uri, BATCH_CHUNK_ROWS="1")
    assert [p["prediction"] for p in read_jsonl(result.predictions_uri)] == ["setosa", "virginica"]
    said = [r for r in caplog.records if r.getMessage() == "batch CSV header taken by position"]
    assert len(said) == 1  # once per file, whatever the number of chunks


def test_a_header_of_the_wrong_width_is_refused_even_by_position(batch, unnamed_model_uri):
    result = batch.run(batch.write("iris.csv", "a,b,c\n1,2,3\n"), model_uri=unnamed_model_uri)
    assert result.rows_read == 0
    assert result.input_error == (
        "the header (line 1) has 3 columns; expected 4: this model was fitted without feature names, "
        "so the header's columns are taken in order, one per feature"
    )


# --- integers and booleans, as a manifest types them ------------------------------------------------------


@pytest.fixture
def counted_model_uri(tmp_path) -> str:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    frame = pd.DataFrame({"visits": [1, 5, 2, 8, 3, 9] * 5, "member": [True, False, True, False, True, True] * 5})
    y = frame["visits"] > 4
    model = Pipeline([
        ("prepare", ColumnTransformer([("n", SimpleImputer(), ["visits"]), ("b", "passthrough", ["member"])])),
        ("classify", LogisticRegression()),
    ]).fit(frame, y)
    path = tmp_path / "counted.joblib"
    joblib.dump(model, path)
    (tmp_path / "counted.joblib.manifest.json").write_text(json.dumps({"input_schema": {"layout": "frame", "columns": [
        {"name": "visits", "type": "integer", "nullable": True}, {"name": "member", "type": "boolean"},
    ]}}))
    return path.as_uri()


def test_integer_and_boolean_columns_are_read_and_refused_as_over_http(batch, counted_model_uri):
    content = "visits,member\n1,true\n9,false\n,yes\n2.5,true\n3,maybe\n7.0,0\n"
    result = batch.run(batch.write("counts.csv", content), model_uri=counted_model_uri)
    assert [p["line"] for p in read_jsonl(result.predictions_uri)] == [2, 3, 4, 7]
    assert read_jsonl(result.errors_uri) == [
        {"line": 5, "code": "invalid_value", "message": "line 5, column 'visits' is the number 2.5; expected an integer"},
        {"line": 6, "code": "invalid_value", "message": "line 6, column 'member' is the string 'maybe'; expected true or false"},
    ]
