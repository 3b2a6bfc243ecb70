"""When the model cannot be read from Cloud Storage the function answers 503 with a message that
names the location and the cause, and the next request after the fault is gone succeeds, without
a restart."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

ROW = [5.1, 3.5, 1.4, 0.2]


def _predict(function):
    return function.post_json({"features": ROW})


def _error(answer) -> dict:
    status, headers, body = answer
    assert status == 503, body
    assert headers["retry-after"] == "5"
    error = json.loads(body)["error"]
    assert "Traceback" not in error["message"] and "127.0.0.1" not in error["message"]
    return error


def test_missing_bucket_then_missing_object_then_recovers(function_factory, gcs_emulator, model_bytes):
    function = function_factory(
        {
            "MODEL_URI": "gs://late-models/iris/model.joblib",
            **gcs_emulator.env(),
            "STORAGE_TIMEOUT_SECONDS": "5",
        }
    )

    error = _error(_predict(function))
    assert error == {
        "code": "model_unavailable",
        "message": "the model could not be read: gs://late-models/iris/model.joblib does not exist: "
        "bucket 'late-models' does not exist",
    }
    assert json.loads(function.request("GET", "/health")[2])["model"] == "load_failed"

    gcs_emulator.create_bucket("late-models")
    error = _error(function.request("GET", "/model"))
    assert error["message"] == (
        "the model could not be read: gs://late-models/iris/model.joblib does not exist: "
        "no object 'iris/model.joblib' in bucket 'late-models'"
    )

    gcs_emulator.upload("late-models", "iris/model.joblib", model_bytes)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: _predict(function), range(6)))
    assert [status for status, _, _ in answers] == [200] * 6
    assert {json.loads(body)["predictions"][0] for _, _, body in answers} == {"setosa"}

    lines = function.log_lines()
    failures = [entry for entry in lines if entry["message"] == "model load failed"]
    assert [(entry["severity"], entry["error_code"]) for entry in failures] == [("ERROR", "model_unavailable")] * 2
    assert sum(entry["message"] == "model loaded" for entry in lines) == 1


@pytest.mark.timeout(120)  # the SDK's own retry would keep a request for about two minutes
def test_stopped_storage_answers_503_within_the_timeout_then_recovers(
    function_factory, own_gcs_emulator, model_bytes
):
    function = function_factory(
        {
            "MODEL_URI": "gs://models/iris/model.joblib",
            **own_gcs_emulator.env(),
            "STORAGE_TIMEOUT_SECONDS": "1",
        }
    )
    own_gcs_emulator.stop()

    error = _error(_predict(function))  # the client gives up after 60 s
    assert error["code"] == "model_unavailable"
    assert error["message"].startswith(
        "the model could not be read: gs://models/iris/model.joblib cannot be read: "
        "Cloud Storage did not answer within 1 s (STORAGE_TIMEOUT_SECONDS)"
    )
    failure = [entry for entry in function.log_lines() if entry["message"] == "model load failed"]
    assert failure[0]["error_code"] == "model_unavailable"

    own_gcs_emulator.start()  # same port, empty
    own_gcs_emulator.create_bucket("models")
    own_gcs_emulator.upload("models", "iris/model.joblib", model_bytes)
    status, _, body = _predict(function)
    assert status == 200, body
