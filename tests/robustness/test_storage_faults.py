"""Storage faults against the GCP function (functions-framework's server, the GCS emulator):
the cases tests/gcp_function/test_model_faults.py leaves open. A fault is answered 503 with a
message naming the cause, within a bound set by STORAGE_TIMEOUT_SECONDS (far below the SDK's own
two minutes of retries), and the first request after the fault clears succeeds.

Already proven elsewhere, through each provider's entry point and real local server:
- AWS on moto (tests/aws_lambda/test_s3_model.py): missing object then recovery, missing bucket,
  no credentials, access denied (IAM-enforcing moto), unknown key, server stopped, server frozen
  past the timeout then recovery;
- Azure on Azurite (tests/azure_function/test_function_app.py): missing blob and missing container
  then recovery, refused account key then recovery, stopped service then recovery, frozen service
  past the timeout then recovery;
- GCP (tests/gcp_function/test_model_faults.py): missing bucket, missing object, then recovery;
  emulator stopped after the function started (mid-run), answered within the timeout, then
  recovery.
"""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gcp_parts import PROJECT, GcsEmulator, function_servers, start_function
from tests.support import free_port, stop_process

ROW = {"features": [5.1, 3.5, 1.4, 0.2]}
TIMEOUT = 1  # STORAGE_TIMEOUT_SECONDS of these functions
# The bound on an answer during a fault: the timeout, plus the time to answer, with room for a
# busy machine. Without the setting the SDK retries for about two minutes.
WITHIN = 10 * TIMEOUT


@pytest.fixture
def emulator_with_model(tmp_path, demo_model_path):
    emulator = GcsEmulator(free_port(), tmp_path).start()
    emulator.create_bucket("models")
    emulator.upload("models", "iris.joblib", demo_model_path.read_bytes())
    yield emulator
    os.kill(emulator.process.pid, signal.SIGCONT)
    emulator.stop()


@pytest.fixture
def function_on(tmp_path):
    with function_servers(tmp_path) as start_server:

        def start(emulator: GcsEmulator, **env: str):
            return start_server({"MODEL_URI": "gs://models/iris.joblib", **emulator.env(),
                                   "STORAGE_TIMEOUT_SECONDS": str(TIMEOUT), **env})

        yield start


def timed_predict(function):
    started = time.monotonic()
    status, headers, body = function.post_json(ROW)
    return status, headers, json.loads(body), time.monotonic() - started


def expect_storage_503(status, headers, answer, seconds, *fragments):
    assert status == 503, answer
    assert headers["retry-after"] == "5"
    message = answer["error"]["message"]
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message and "127.0.0.1" not in message
    assert seconds < WITHIN, f"the answer took {seconds:.1f} s with STORAGE_TIMEOUT_SECONDS={TIMEOUT}"


@pytest.mark.timeout(120)
def test_a_frozen_storage_server_is_503_within_the_timeout_then_the_next_request_succeeds(
    emulator_with_model, function_on
):
    function = function_on(emulator_with_model)
    os.kill(emulator_with_model.process.pid, signal.SIGSTOP)  # connections accepted, never answered
    try:
        status, headers, answer, seconds = timed_predict(function)
        expect_storage_503(status, headers, answer, seconds, "gs://models/iris.joblib",
                           f"did not answer within {TIMEOUT} s (STORAGE_TIMEOUT_SECONDS)")
    finally:
        os.kill(emulator_with_model.process.pid, signal.SIGCONT)
    status, _, answer, _ = timed_predict(function)
    assert status == 200 and answer["predictions"] == ["setosa"]


@pytest.mark.timeout(120)
def test_concurrent_requests_during_an_outage_each_answer_within_the_timeout(emulator_with_model, function_on):
    function = function_on(emulator_with_model)
    os.kill(emulator_with_model.process.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: timed_predict(function), range(8)))
    finally:
        os.kill(emulator_with_model.process.pid, signal.SIGCONT)
    assert [status for status, *_ in answers] == [503] * 8
    slowest = max(seconds for *_, seconds in answers)
    assert slowest < 3 * TIMEOUT + 2, f"the slowest of 8 concurrent requests took {slowest:.1f} s"


def test_credentials_that_cannot_be_used_are_503_naming_the_cause_not_the_file(tmp_path, function_on, demo_model_path):
    # no emulator: the SDK reads GOOGLE_APPLICATION_CREDENTIALS, here a key file that is not there
    key_file = tmp_path / "secret-service-account-key.json"
    function = start_function(tmp_path / "function", {
        "MODEL_URI": "gs://models/iris.joblib", "GOOGLE_CLOUD_PROJECT": PROJECT,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file), "STORAGE_TIMEOUT_SECONDS": str(TIMEOUT),
    })
    try:
        status, headers, answer, seconds = timed_predict(function)
        expect_storage_503(status, headers, answer, seconds, "gs://models/iris.joblib",
                           "no usable Google Cloud credentials", "GOOGLE_APPLICATION_CREDENTIALS")
        assert "secret-service-account-key" not in json.dumps(answer)
        assert str(tmp_path) not in function.log_path.read_text()
    finally:
        stop_process(function.process)
