"""Models fitted on DataFrames (strings, categories, missing values, texts) answer the request
forms of the HTTP API through the service every adapter calls; a value their schema refuses is a
400 naming the row, the column, what was expected and what came."""

from __future__ import annotations

import pytest

from tests.support import answer, make_service, post_json
from tests.typed_models import PASSENGER, TEXTS


@pytest.fixture(scope="module")
def services(typed_models):
    return {name: make_service(path.as_uri()) for name, path in typed_models.items()}


def ok(response) -> dict:
    body = answer(response)
    assert response.status == 200, body
    return body


def refused(response, code: str, *fragments: str) -> str:
    body = answer(response)
    assert response.status == 400, body
    assert body["error"]["code"] == code, body
    for fragment in fragments:
        assert fragment in body["error"]["message"], body["error"]["message"]
    return body["error"]["message"]


def expected_labels(path, rows):
    import joblib
    import pandas as pd

    return joblib.load(path).predict(pd.DataFrame(rows)).tolist()


@pytest.mark.parametrize("name", ["mixed", "hgb"])
def test_strings_and_categories_are_predicted_as_the_model_does(services, typed_models, name):
    rows = [PASSENGER, {**PASSENGER, "sex": "female", "pclass": 1, "embarked": "C"}]
    body = ok(post_json(services[name], {"instances": rows}))
    assert body["predictions"] == expected_labels(typed_models[name], rows)
    assert body["classes"] == [False, True]
    assert len(body["probabilities"]) == 2


@pytest.mark.parametrize("name", ["mixed", "hgb"])
def test_every_body_form_gives_the_same_answer(services, name):
    names = list(PASSENGER)
    forms = [
        {"instances": [PASSENGER]},
        {"inputs": [PASSENGER]},
        {"instances": [[PASSENGER[n] for n in names]]},
        {"dataframe_split": {"columns": names[::-1], "data": [[PASSENGER[n] for n in names[::-1]]]}},
        {"dataframe_records": [PASSENGER]},
        {"features": [PASSENGER[n] for n in names]},
        {"data": PASSENGER},
    ]
    answers = {str(ok(post_json(services[name], form))["probabilities"]) for form in forms}
    assert len(answers) == 1


@pytest.mark.parametrize("name", ["mixed", "hgb"])
def test_null_is_a_missing_value_where_the_model_takes_one(services, typed_models, name):
    row = {**PASSENGER, "age": None}
    body = ok(post_json(services[name], {"instances": [row]}))
    assert body["predictions"] == expected_labels(typed_models[name], [{**row, "age": float("nan")}])


def test_null_is_refused_where_the_model_cannot_take_it(services):
    refused(
        post_json(services["logistic"], {"data": {"sepal_length": 5.1, "sepal_width": None, "petal_length": 1.4, "petal_width": 0.2}}),
        "invalid_value", "data.sepal_width is null", "missing",
    )
    refused(
        post_json(services["strict"], {"instances": [PASSENGER, {**PASSENGER, "age": None}]}),
        "invalid_value", "instances[1].age is null", "cannot take a missing value in 'age'", "expected a number",
    )


def test_unknown_category_is_predicted_when_the_model_ignores_it(services):
    ok(post_json(services["mixed"], {"instances": [{**PASSENGER, "embarked": "Z"}]}))
    ok(post_json(services["hgb"], {"instances": [{**PASSENGER, "embarked": "Z"}]}))


def test_unknown_category_is_refused_where_the_model_would_raise(services):
    refused(
        post_json(services["strict"], {"instances": [{**PASSENGER, "embarked": "Z"}]}),
        "invalid_value", "instances[0].embarked is the string 'Z'", "not fitted on", "'C', 'Q', 'S'",
    )


@pytest.mark.parametrize(
    "row, fragments",
    [
        ({**PASSENGER, "sex": 1}, ("instances[0].sex is the number 1", "expected a string")),
        ({**PASSENGER, "age": "old"}, ("instances[0].age is the string 'old'", "expected a number")),
        ({**PASSENGER, "embarked": ["S"]}, ("instances[0].embarked is a JSON array",)),
    ],
)
def test_a_value_of_the_wrong_type_names_row_column_expected_and_received(services, row, fragments):
    refused(post_json(services["mixed"], {"instances": [row]}), "invalid_value", *fragments)


def test_text_model_takes_one_text_per_row(services, typed_models):
    import joblib

    texts = ["free money", "lunch on friday"]
    expected = joblib.load(typed_models["text"]).predict(texts).tolist()
    for form in (
        {"instances": texts},
        {"inputs": texts},
        {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}},
        {"dataframe_records": [{"text": t} for t in texts]},
    ):
        assert ok(post_json(services["text"], form))["predictions"] == expected
    assert ok(post_json(services["text"], {"data": {"text": TEXTS[0]}}))["predictions"] == ["spam"]


def test_text_model_refuses_a_number(services):
    refused(post_json(services["text"], {"instances": ["fine", 3]}), "invalid_shape", "instances[1]", "expected")
    refused(post_json(services["text"], {"instances": [[3]]}), "invalid_value", "instances[0][0]", "expected a string")


def test_model_route_shows_the_schema_and_where_it_came_from(services):
    schema = answer(services["mixed"].handle(_get("/model")))["input_schema"]
    assert schema["source"] == "model" and schema["layout"] == "frame"
    by_name = {c["name"]: c for c in schema["columns"]}
    assert by_name["age"] == {"name": "age", "type": "number", "nullable": True}
    assert by_name["sex"]["type"] == "categorical" and by_name["sex"]["categories"] == ["female", "male"]
    assert by_name["sex"]["unknown"] == "predicted"
    strict = answer(services["strict"].handle(_get("/model")))["input_schema"]
    assert {c["name"]: c["nullable"] for c in strict["columns"]}["age"] is False
    text = answer(services["text"].handle(_get("/model")))["input_schema"]
    assert text["layout"] == "text" and text["columns"] == [{"name": "text", "type": "string", "nullable": False}]


def _get(path: str):
    from core.http import HttpRequest

    return HttpRequest("GET", path, {}, b"")


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ([5.1, 3.5, True, 0.2], "instances[1][2] ('petal_length') is a JSON boolean"),
        ([5.1, 3.5, "1.4", 0.2], "instances[1][2] ('petal_length') is the string '1.4'"),
        ([5.1, 3.5, 1.4], "instances[1] has 3 values"),
        ([5.1, 3.5, 1.4, 10**400], "instances[1][3] ('petal_width') is a number too large"),
        ([5.1, 3.5, None, 0.2], "instances[1][2] ('petal_length') is null"),
    ],
)
def test_rows_checked_in_bulk_name_the_same_value_as_one_by_one(services, bad, fragment):
    # two or more rows of numbers are checked as one matrix; a bad one falls back to the row checks
    good = [5.1, 3.5, 1.4, 0.2]
    refused(post_json(services["logistic"], {"instances": [good, bad, good]}),
            "invalid_features" if len(bad) != 4 else "invalid_value", fragment)


def test_null_rows_in_bulk_are_missing_values_for_a_model_that_takes_them(demo_model_uri):
    from urllib.parse import urlparse

    import joblib

    service = make_service(demo_model_uri)
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, None, 5.2, 2.3], [None, None, None, None]]
    body = ok(post_json(service, {"instances": rows}))
    forest = joblib.load(urlparse(demo_model_uri).path)
    assert body["predictions"] == forest.predict([[v if v is not None else float("nan") for v in r] for r in rows]).tolist()
    refused(post_json(service, b'{"instances": [[5.1, 3.5, 1.4, 0.2], [1e999, 1, 1, 1]]}'), "invalid_value", "outside the 64-bit float range")


def test_a_text_column_with_only_missing_values_is_still_text(services, typed_models):
    row = {**PASSENGER, "sex": None, "embarked": None}
    body = ok(post_json(services["mixed"], {"instances": [row]}))
    import joblib
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({k: [np.nan if v is None else v] for k, v in row.items()}).astype({"sex": object, "embarked": object})
    assert body["predictions"] == joblib.load(typed_models["mixed"]).predict(frame).tolist()


def test_a_frame_model_where_pandas_is_missing_is_503_naming_the_extra(typed_models, monkeypatch):
    import core.installed

    real = core.installed.is_installed
    monkeypatch.setattr(core.installed, "is_installed", lambda name: False if name == "pandas" else real(name))
    body = answer(post_json(make_service(typed_models["mixed"].as_uri()), {"instances": [PASSENGER]}))
    assert body["error"]["code"] == "model_unavailable", body
    assert "pandas is not installed" in body["error"]["message"] and "serverless-ml[pandas]" in body["error"]["message"]
