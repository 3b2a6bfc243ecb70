"""A candidate model beside the primary (core/rollout.py): shadow and canary through the service,
a broken candidate that never takes the primary down, the settings' refusals."""

from __future__ import annotations

import json
import logging
import uuid

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from core.errors import SettingsError
from core.http import HttpRequest, PredictionService
from core.rollout import RETRY_SECONDS, canary_share
from core.settings import Settings

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rollout")
    X, y = load_iris(return_X_y=True)
    primary = LogisticRegression(max_iter=500).fit(X, y)
    candidate = RandomForestClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X, y)
    joblib.dump(primary, folder / "primary.joblib")
    joblib.dump(candidate, folder / "candidate.joblib")
    return {"folder": folder, "X": X, "primary": primary, "candidate": candidate}


def service(models, **env) -> PredictionService:
    folder = models["folder"]
    settings = Settings.from_env({
        "MODEL_URI": (folder / "primary.joblib").as_uri(),
        "CANDIDATE_MODEL_URI": (folder / "candidate.joblib").as_uri(), "PRELOAD_MODEL": "true", **env,
    })
    built = PredictionService(settings)
    built.preload()
    return built


def post(svc: PredictionService, rows, request_id: str | None = None):
    headers = {**JSON, **({"x-request-id": request_id} if request_id else {})}
    response = svc.handle(HttpRequest("POST", "/predict", headers=headers, body=json.dumps({"instances": rows}).encode()))
    return response, json.loads(response.body)


def get(svc: PredictionService, path: str) -> dict:
    return json.loads(svc.handle(HttpRequest("GET", path)).body)


def test_shadow_answers_with_the_primary_and_counts_what_sklearn_counts(models, caplog):
    svc = service(models, CANDIDATE_MODE="shadow", CANDIDATE_PROBABILITY_TOLERANCE="0.1")
    rows = models["X"][::5]
    with caplog.at_level(logging.INFO, logger="serverless_ml"):
        response, answer = post(svc, rows.tolist(), "shadow-1")
    primary, candidate = models["primary"], models["candidate"]
    assert answer["predictions"] == primary.predict(rows).tolist()
    assert np.allclose(answer["probabilities"], primary.predict_proba(rows), rtol=0, atol=1e-12)
    assert answer["model_version"] == svc.model.get().version

    labels_differ = primary.predict(rows) != candidate.predict(rows)
    gaps = np.abs(primary.predict_proba(rows) - candidate.predict_proba(rows)).max(axis=1)
    disagreeing = np.flatnonzero(labels_differ | (gaps > 0.1))
    assert len(disagreeing) > 0  # two kinds of model: the case must show something
    assert response.rollout == {
        "answered_by": "primary", "shadow_rows": len(rows), "shadow_disagreements": len(disagreeing),
        "shadow_max_probability_gap": pytest.approx(gaps.max()),
    }
    (line,) = [r for r in caplog.records if r.getMessage() == "shadow disagreement"]
    assert line.fields["request_id"] == "shadow-1"
    assert line.fields["positions"] == disagreeing[:20].tolist()
    assert line.fields["labels_differ"] == int(labels_differ.sum())
    for record in caplog.records:  # never a row's values in the logs
        assert str(rows[0][0]) not in json.dumps(getattr(record, "fields", {}), default=str)


def test_canary_answers_its_share_by_a_stable_key(models):
    svc = service(models, CANDIDATE_MODE="canary", CANDIDATE_PERCENT="30")
    primary_version, candidate_version = svc.model.get().version, svc.candidate.holder.get().version
    answered = []
    for n in range(300):
        key = uuid.UUID(int=n * 7919).hex
        _, answer = post(svc, [models["X"][0].tolist()], key)
        answered.append(answer["model_version"])
        assert answer["model_version"] == (candidate_version if canary_share(key) < 30 else primary_version)
    assert 0.2 < answered.count(candidate_version) / len(answered) < 0.4
    # one client stays on one model
    assert len({post(svc, [models["X"][1].tolist()], "client-42")[1]["model_version"] for _ in range(10)}) == 1


def test_canary_share_is_even_and_the_same_everywhere():
    shares = np.array([canary_share(uuid.uuid4().hex) for _ in range(10_000)])
    for percent in (1, 5, 30, 50):
        assert abs((shares < percent).mean() * 100 - percent) < 1.5
    assert canary_share("client-42") == canary_share("client-42") == pytest.approx(canary_share("client-42"))
    assert round(canary_share("client-42"), 6) == 54.288057  # BLAKE2b: no process or cloud changes it


def test_model_and_health_show_both_models_and_the_rollout(models):
    svc = service(models, CANDIDATE_MODE="canary", CANDIDATE_PERCENT="5", CANDIDATE_KEY_HEADER="X-User-Id")
    model = get(svc, "/model")
    assert model["estimator"] == "LogisticRegression"
    assert model["candidate"]["state"] == "loaded"
    assert model["candidate"]["model"]["estimator"] == "RandomForestClassifier"
    assert (model["candidate"]["mode"], model["candidate"]["percent"], model["candidate"]["key_header"]) == ("canary", 5.0, "x-user-id")
    health = get(svc, "/health")
    assert health["candidate"]["model_version"] == model["candidate"]["model"]["model_version"]


@pytest.mark.parametrize("broken", ["missing", "digest"])
def test_a_broken_candidate_never_takes_the_primary_down(models, broken, caplog):
    folder = models["folder"]
    env = {"CANDIDATE_MODE": "canary", "CANDIDATE_PERCENT": "100"}
    if broken == "missing":
        env["CANDIDATE_MODEL_URI"] = (folder / "absent.joblib").as_uri()
    else:
        env["CANDIDATE_MODEL_SHA256"] = "0" * 64
    with caplog.at_level(logging.ERROR, logger="serverless_ml"):
        svc = service(models, **env)
        for n in range(20):
            response, answer = post(svc, [models["X"][0].tolist()], f"r{n}")
            assert response.status == 200 and answer["model_version"] == svc.model.get().version
            assert response.rollout == {"answered_by": "primary", "candidate_state": "load_failed"}
    # one load at preload and no other within RETRY_SECONDS: a broken candidate costs requests nothing
    assert svc.candidate.holder.load_attempts == 1 and RETRY_SECONDS >= 60
    assert sum(r.getMessage() == "model load failed" for r in caplog.records) == 1
    candidate = get(svc, "/model")["candidate"]
    assert candidate["state"] == "load_failed"
    assert candidate["error"]["code"] == {"missing": "model_unavailable", "digest": "model_digest_mismatch"}[broken]
    assert get(svc, "/health")["candidate"]["state"] == "load_failed"


def test_without_preload_the_candidate_loads_after_the_first_answer(models):
    folder = models["folder"]
    svc = PredictionService(Settings.from_env({
        "MODEL_URI": (folder / "primary.joblib").as_uri(), "CANDIDATE_MODEL_URI": (folder / "candidate.joblib").as_uri(),
    }))
    response, _ = post(svc, [models["X"][0].tolist()])
    assert response.rollout == {"answered_by": "primary", "candidate_state": "not_loaded"}
    svc.candidate._loader.join(30)  # started after that answer was ready
    response, _ = post(svc, [models["X"][0].tolist()])
    assert response.rollout["shadow_rows"] == 1


@pytest.mark.parametrize(("env", "message"), [
    ({"CANDIDATE_MODE": "shadow"}, r"^CANDIDATE_MODE is set but CANDIDATE_MODEL_URI is not"),
    ({"CANDIDATE_MODEL_URI": "file:///m/c.joblib", "CANDIDATE_MODE": "blue"}, r"^CANDIDATE_MODE='blue' is not allowed"),
    ({"CANDIDATE_MODEL_URI": "file:///m/c.joblib", "CANDIDATE_MODE": "canary"}, r"^CANDIDATE_MODE=canary needs CANDIDATE_PERCENT"),
    ({"CANDIDATE_MODEL_URI": "file:///m/c.joblib", "CANDIDATE_MODE": "canary", "CANDIDATE_PERCENT": "101"}, r"^CANDIDATE_PERCENT="),
    ({"CANDIDATE_MODEL_URI": "file:///m/c.txt"}, r"^CANDIDATE_MODEL_URI='file:///m/c.txt' names a file"),
    ({"CANDIDATE_MODEL_URI": "file:///m/c.joblib", "CANDIDATE_MODEL_SHA256": "abc"}, r"^CANDIDATE_MODEL_SHA256='abc' is not"),
    ({"CANDIDATE_MODEL_URI": "file:///m/c.joblib", "CANDIDATE_KEY_HEADER": "x user"}, r"^CANDIDATE_KEY_HEADER="),
])
def test_candidate_settings_are_checked_naming_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"MODEL_URI": "file:///m/p.joblib", **env})


def test_canary_reads_the_rows_by_the_schema_of_the_model_that_answers(models):
    """The candidate (a forest, which takes missing values) answers a row with a null; where the
    primary (a logistic regression, which takes none) answers, the same row is refused."""
    row = models["X"][0].tolist()
    row[1] = None
    response, answer = post(service(models, CANDIDATE_MODE="canary", CANDIDATE_PERCENT="100"), [row])
    assert response.status == 200, answer
    assert response.rollout == {"answered_by": "candidate"}
    with_nan = np.array([[np.nan if value is None else value for value in row]])
    assert answer["predictions"] == models["candidate"].predict(with_nan).tolist()

    response, answer = post(service(models, CANDIDATE_MODE="canary", CANDIDATE_PERCENT="0"), [row])
    assert response.status == 400
    assert "instances[0]" in answer["error"]["message"] and "null" in answer["error"]["message"]
