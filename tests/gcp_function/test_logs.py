"""What Cloud Logging receives from the function: one JSON entry per line, with ``severity``,
``message``, the request's trace and execution id, and the cold-start flag; the model is read
from storage once however many requests arrive."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.gcp_parts import PROJECT

ROW = [5.1, 3.5, 1.4, 0.2]
SEVERITIES = {"DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _predict(function, execution_id: str, **headers: str) -> None:
    status, _, body = function.request(
        "POST", "/predict", json.dumps({"features": ROW}).encode(),
        {"Content-Type": "application/json", "Function-Execution-Id": execution_id, **headers},
    )
    assert status == 200, body


def _request_line(function, execution_id: str) -> dict:
    (line,) = [
        entry for entry in function.log_lines()
        if entry.get("message") == "request" and entry.get("request_id") == execution_id
    ]
    return line


def test_every_output_line_is_a_cloud_logging_entry(iris_function):
    _predict(iris_function, "lines-1")
    iris_function.request("GET", "/nowhere")
    lines = [line for line in iris_function.log_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)  # a line that is not JSON would reach Cloud Logging as plain text
        assert entry["severity"] in SEVERITIES, entry
        assert isinstance(entry["message"], str) and entry["message"], entry
        assert "level" not in entry, entry


def test_request_line_carries_trace_from_traceparent(iris_function):
    _predict(iris_function, "trace-w3c", traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01")
    line = _request_line(iris_function, "trace-w3c")
    assert line["severity"] == "INFO"
    assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert line["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert line["logging.googleapis.com/trace_sampled"] is True
    assert line["logging.googleapis.com/labels"] == {"execution_id": "trace-w3c"}
    assert (line["route"], line["status"], line["rows"]) == ("/predict", 200, 1)


def test_request_line_carries_trace_from_x_cloud_trace_context(iris_function):
    # Google's own header gives the span id in decimal; Cloud Logging wants 16 hex digits
    _predict(iris_function, "trace-gcp", **{"X-Cloud-Trace-Context": f"{TRACE_ID}/1234567890;o=0"})
    line = _request_line(iris_function, "trace-gcp")
    assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert line["logging.googleapis.com/spanId"] == "00000000499602d2"
    assert line["logging.googleapis.com/trace_sampled"] is False


def test_a_malformed_trace_header_is_ignored_not_failed(iris_function):
    _predict(iris_function, "trace-bad", traceparent="00-not-a-trace-01")
    line = _request_line(iris_function, "trace-bad")
    assert not any(name.startswith("logging.googleapis.com/trace") for name in line)
    assert line["logging.googleapis.com/labels"] == {"execution_id": "trace-bad"}


def test_an_error_answer_is_logged_with_its_code_and_never_the_body(iris_function):
    secret_value = "4111-1111-1111-1111"
    status, _, _ = iris_function.request(
        "POST", "/predict", json.dumps({"features": [secret_value, 1, 2, 3]}).encode(),
        {"Content-Type": "application/json", "Function-Execution-Id": "bad-input-1"},
    )
    assert status == 400
    line = _request_line(iris_function, "bad-input-1")
    assert (line["status"], line["error_code"]) == (400, "invalid_value")
    assert secret_value not in iris_function.log_path.read_text()


def test_only_the_first_request_is_a_cold_start(iris_function):
    _predict(iris_function, "warm-1")
    requests = [entry for entry in iris_function.log_lines() if entry.get("message") == "request"]
    assert [entry["cold_start"] for entry in requests] == [True] + [False] * (len(requests) - 1)


def test_the_model_is_read_once_for_many_requests(iris_function):
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: _predict(iris_function, f"many-{n}"), range(24)))
    loads = [entry for entry in iris_function.log_lines() if entry.get("message") == "model loaded"]
    assert len(loads) == 1
    assert loads[0]["severity"] == "INFO"
    assert loads[0]["model_uri"] == "gs://models/iris/model.joblib"
    predictions = [e for e in iris_function.log_lines() if e.get("route") == "/predict" and e["status"] == 200]
    assert len(predictions) >= 24
