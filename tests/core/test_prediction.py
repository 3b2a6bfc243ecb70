"""Every accepted body form gives the model's own predictions, as plain JSON, in row order."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tests.support import BrokenModel, NegativeRefusingModel, answer, make_service, post_json

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.8, 5.1, 1.5]]


def as_objects(rows, names=NAMES):
    return [dict(zip(names, row, strict=True)) for row in rows]


BODY_FORMS = {
    "instances arrays": {"instances": ROWS},
    "instances objects": {"instances": as_objects(ROWS)},
    "instances objects in another key order": {"instances": [dict(reversed(list(r.items()))) for r in as_objects(ROWS)]},
    "inputs arrays": {"inputs": ROWS},
    "inputs objects": {"inputs": as_objects(ROWS)},
    "dataframe_split": {"dataframe_split": {"columns": NAMES, "data": ROWS}},
    "dataframe_split shuffled columns": {
        "dataframe_split": {
            "columns": [NAMES[i] for i in (3, 1, 0, 2)],
            "data": [[row[i] for i in (3, 1, 0, 2)] for row in ROWS],
            "index": [0, 1, 2, 3],
        }
    },
    "dataframe_records": {"dataframe_records": as_objects(ROWS)},
}


@pytest.mark.parametrize("form", list(BODY_FORMS))
def test_every_body_form_gives_the_models_predictions(service, demo_model_path, form):
    model = joblib.load(demo_model_path)
    response = post_json(service, BODY_FORMS[form])
    body = answer(response)
    assert response.status == 200, body
    assert body["predictions"] == model.predict(np.array(ROWS)).tolist()
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    assert np.allclose(body["probabilities"], model.predict_proba(np.array(ROWS)), atol=1e-12)
    assert body["model_version"].startswith("sha256:")
    assert len(body["request_id"]) >= 16


@pytest.mark.parametrize("body", [{"features": ROWS[1]}, {"data": as_objects(ROWS)[1]}])
def test_single_row_forms(service, body):
    assert answer(post_json(service, body))["predictions"] == ["virginica"]


def test_integers_are_numbers(service):
    assert post_json(service, {"features": [5, 3, 1, 0]}).status == 200


def test_request_id_from_the_client_is_echoed(service):
    response = post_json(service, {"features": ROWS[0]}, **{"x-request-id": "client-42"})
    assert answer(response)["request_id"] == "client-42"
    assert response.headers["x-request-id"] == "client-42"


def test_unsafe_request_id_is_replaced(service):
    response = post_json(service, {"features": ROWS[0]}, **{"x-request-id": "<script>"})
    assert answer(response)["request_id"] != "<script>"


@pytest.fixture(scope="module")
def iris():
    data = load_iris()
    return data.data, data.target


def _save(tmp_path, model, name="model.joblib") -> str:
    path = tmp_path / name
    joblib.dump(model, path)
    return path.as_uri()


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(max_iter=1000),
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        RandomForestClassifier(n_estimators=20, random_state=0),
        # Platt scaling: SVC's predict is not argmax(proba), so core must call both
        pytest.param(SVC(probability=True, random_state=0), marks=pytest.mark.filterwarnings("ignore::FutureWarning")),
    ],
    ids=["logistic", "pipeline", "forest", "svc"],
)
def test_predictions_equal_model_predict_for_unnamed_features(tmp_path, iris, estimator):
    X, y = iris
    model = estimator.fit(X, y)
    service = make_service(_save(tmp_path, model))
    rng = np.random.default_rng(0)
    rows = (X + rng.normal(0, 0.3, X.shape)).round(3).tolist()
    body = answer(post_json(service, {"instances": rows}))
    assert body["predictions"] == model.predict(np.array(rows)).tolist()
    assert body["classes"] == [0, 1, 2]
    # without names from the model, rows as objects use f0..fN-1
    named = answer(post_json(service, {"instances": as_objects(rows[:3], ["f0", "f1", "f2", "f3"])}))
    assert named["predictions"] == body["predictions"][:3]


def test_regressor_has_no_probabilities(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y)
    service = make_service(_save(tmp_path, model))
    body = answer(post_json(service, {"instances": X[:5].tolist()}))
    assert "probabilities" not in body and "classes" not in body
    assert np.allclose(body["predictions"], model.predict(X[:5]))
    assert all(type(p) is float for p in body["predictions"])


def test_model_rejecting_rows_is_400_not_500(tmp_path):
    service = make_service(_save(tmp_path, NegativeRefusingModel()))
    response = post_json(service, {"instances": [[1, -1]]})
    assert response.status == 400
    assert answer(response)["error"] == {
        "code": "prediction_rejected",
        "message": "the model rejected the rows: Input X contains negative values",
    }
    assert answer(post_json(service, {"instances": [[1, 2]]}))["predictions"] == [3.0]


def test_model_failing_is_500_without_details(tmp_path, caplog):
    service = make_service(_save(tmp_path, BrokenModel()))
    response = post_json(service, {"instances": [[1, 2]]})
    assert response.status == 500
    assert answer(response)["error"]["code"] == "prediction_failed"
    assert "secret-internal-state" not in response.body.decode()
    assert "Traceback" not in response.body.decode()


def test_multi_output_classifier_gives_one_list_per_row(tmp_path, iris):
    X, y = iris
    Y = np.column_stack([y, (y == 2).astype(int)])
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)
    service = make_service(_save(tmp_path, model))
    body = answer(post_json(service, {"instances": X[:3].tolist()}))
    assert body["predictions"] == model.predict(X[:3]).tolist()
    assert "probabilities" not in body
    info = answer(service.handle(__import__("core.http", fromlist=["HttpRequest"]).HttpRequest("GET", "/model")))
    assert info["classes"] == [[0, 1, 2], [0, 1]]


@pytest.mark.filterwarnings("ignore:X has feature names")  # the manifest names columns the model was not fitted with
def test_a_manifest_that_lets_null_through_still_meets_the_models_own_refusal(tmp_path, iris):
    # core skips scikit-learn's second finite check only for plain numeric rows, which it has
    # checked itself; a column a manifest calls nullable keeps the model's check, whichever kind
    # of model this thread served before
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    plain = make_service(_save(tmp_path, model, "plain.joblib"))
    claimed = make_service(_save(tmp_path, model, "claimed.joblib"))
    (tmp_path / "claimed.joblib.manifest.json").write_text(json.dumps({"input_schema": {"columns": [
        {"name": f"f{i}", "type": "number", "nullable": True} for i in range(4)
    ]}}))
    for _ in range(2):
        ok = answer(post_json(plain, {"instances": ROWS}))
        assert ok["predictions"] == model.predict(np.array(ROWS)).tolist()
        assert post_json(plain, {"instances": [[5.1, None, 1.4, 0.2]]}).status == 400
        refused = post_json(claimed, {"instances": [[5.1, None, 1.4, 0.2]]})
        assert refused.status == 400, answer(refused)
        assert answer(refused)["error"]["code"] == "prediction_rejected"
        assert "NaN" in answer(refused)["error"]["message"]


def test_a_schema_read_from_the_model_answers_as_the_model_with_its_checks_on(tmp_path):
    # the finite checks are skipped for a schema read from the fitted pipeline too (an imputer
    # takes the null); the answer is still the model's own, and an infinity is still core's 400
    import pandas as pd
    import sklearn

    from tests.typed_models import PASSENGER, mixed

    model = mixed()
    service = make_service(_save(tmp_path, model))
    rows = [{**PASSENGER, "age": None}, {**PASSENGER, "sex": "female", "fare": 80.0}]
    body = answer(post_json(service, {"instances": rows}))
    with sklearn.config_context(assume_finite=False):
        assert body["predictions"] == model.predict(pd.DataFrame(rows)).tolist()
        assert np.allclose(body["probabilities"], model.predict_proba(pd.DataFrame(rows)), rtol=0, atol=1e-12)
    assert sklearn.get_config()["assume_finite"] is False  # the caller's setting, back as it was
    refused = post_json(service, b'{"instances": [{"age": 1e999, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"}]}')
    assert refused.status == 400
    assert answer(refused)["error"]["code"] == "invalid_value"
    assert "outside the 64-bit float range" in answer(refused)["error"]["message"]


@pytest.mark.parametrize("kind", ["forest (takes NaN: schema from the model)", "gradient boosting (plain numeric)"])
def test_a_number_beyond_float32_still_meets_a_tree_models_own_refusal(tmp_path, iris, kind):
    # 1e300 is a finite float64 core accepts, and an infinity in the float32 a tree predicts in:
    # scikit-learn's check is the one that refuses it, so it is not skipped for such rows
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = iris
    estimator = RandomForestClassifier(n_estimators=5, random_state=0) if kind.startswith("forest") \
        else GradientBoostingClassifier(n_estimators=5, random_state=0)
    service = make_service(_save(tmp_path, estimator.fit(X, y)))
    refused = post_json(service, {"instances": [[1e300, 3.5, 1.4, 0.2]]})
    assert refused.status == 400, answer(refused)
    assert answer(refused)["error"]["code"] == "prediction_rejected"
    assert "float32" in answer(refused)["error"]["message"]
    assert answer(post_json(service, {"instances": ROWS}))["predictions"] == estimator.predict(np.array(ROWS)).tolist()
