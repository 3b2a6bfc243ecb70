"""Concurrency: 32 simultaneous first requests make one model download and one load; 200
requests from 8 threads, good and bad mixed, are each answered correctly and none is lost.

Already proven elsewhere: 32 concurrent first invocations make one GET on moto
(tests/aws_lambda/test_s3_model.py) and one download from Azurite
(tests/azure_function/test_function_app.py); 32 concurrent first requests read and load once in
core (tests/core/model/test_loading.py); 200 good requests from 8 threads to the local endpoint
(tests/core/http/test_local_server.py). Added here: GCP through functions-framework, and the
mixed load with answers checked one by one against their request.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gcp_parts import GcsEmulator, start_function
from tests.support import free_port, stop_process

ROWS = {"setosa": [5.1, 3.5, 1.4, 0.2], "virginica": [6.7, 3.0, 5.2, 2.3], "versicolor": [5.9, 3.0, 4.2, 1.5]}


@pytest.fixture
def emulator(tmp_path):
    server = GcsEmulator(free_port(), tmp_path).start()
    yield server
    server.stop()


def test_32_concurrent_first_requests_to_the_gcp_function_download_and_load_once(emulator, tmp_path, demo_model_path):
    emulator.create_bucket("models")
    emulator.upload("models", "iris.joblib", demo_model_path.read_bytes())
    function = start_function(tmp_path / "function", {
        "MODEL_URI": "gs://models/iris.joblib", **emulator.env(), "STORAGE_TIMEOUT_SECONDS": "10",
    })
    try:
        download = re.compile(r'"GET /download/storage/v1/b/models/o/iris\.joblib\?')  # not its manifest
        before = len(download.findall(emulator_log(emulator)))
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _: function.post_json({"features": ROWS["virginica"]}), range(32)))
        assert [status for status, _, _ in answers] == [200] * 32
        assert {json.loads(body)["predictions"][0] for _, _, body in answers} == {"virginica"}
        assert len(download.findall(emulator_log(emulator))) - before == 1
        lines = [json.loads(line) for line in function.log_path.read_text().splitlines() if line.startswith("{")]
        assert sum(line["message"] == "model loaded" for line in lines) == 1
        assert sum(line["message"] == "request" and line.get("route") == "/predict" for line in lines) == 32
    finally:
        stop_process(function.process)


def emulator_log(emulator: GcsEmulator) -> str:
    return (emulator.log_dir / f"gcs-emulator-{emulator.port}.log").read_text(errors="replace")


def test_200_mixed_requests_from_8_threads_are_each_answered_for_themselves(endpoint):
    """Every 4th request is malformed; each carries its own id, and its answer must be its own."""
    names = list(ROWS)

    def one(number: int):
        request_id = f"load-{number}"
        expected = names[number % 3]
        body = b'{"features": [1, 2' if number % 4 == 0 else json.dumps({"features": ROWS[expected]}).encode()
        status, headers, raw = endpoint.request(
            "POST", "/predict", body, {"Content-Type": "application/json", "X-Request-Id": request_id})
        return number, expected, status, headers, json.loads(raw)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(200)))
    assert len(results) == 200
    for number, expected, status, headers, answer in results:
        assert answer["request_id"] == f"load-{number}" == headers["x-request-id"]
        if number % 4 == 0:
            assert (status, answer["error"]["code"]) == (400, "malformed_json")
        else:
            assert (status, answer["predictions"]) == (200, [expected])
    logged = {line["request_id"]: line["status"] for line in endpoint.log_lines()
              if str(line.get("request_id", "")).startswith("load-")}
    assert logged == {f"load-{n}": 400 if n % 4 == 0 else 200 for n in range(200)}
