"""The real local endpoint (`serverless-ml serve`), started on a free port and driven over HTTP."""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import joblib
import numpy as np
import pytest

from tests.support import start_endpoint, stop_endpoint

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_predict_over_http(endpoint, demo_model_path):
    status, headers, body = endpoint.post_json({"instances": ROWS})
    assert status == 200
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["predictions"] == joblib.load(demo_model_path).predict(np.array(ROWS)).tolist()
    assert headers["x-request-id"] == answer["request_id"]


def test_health_model_and_openapi_over_http(endpoint):
    assert json.loads(endpoint.request("GET", "/health")[2])["status"] == "ok"
    status, _, body = endpoint.request("GET", "/model")
    assert status == 200 and json.loads(body)["feature_names"][0] == "sepal_length"
    status, _, body = endpoint.request("GET", "/openapi.json")
    assert status == 200 and json.loads(body)["openapi"].startswith("3.1")


def test_errors_over_http_are_json(endpoint):
    for method, path, body, headers, expected in [
        ("POST", "/predict", b"{", {"Content-Type": "application/json"}, 400),
        ("POST", "/predict", b"{}", {"Content-Type": "text/plain"}, 415),
        ("POST", "/predict", json.dumps({"instances": ROWS * 20}).encode(), {"Content-Type": "application/json"}, 413),
        ("GET", "/predict", None, {}, 405),
        ("GET", "/missing", None, {}, 404),
    ]:
        status, response_headers, raw = endpoint.request(method, path, body, headers)
        assert status == expected, raw
        assert set(json.loads(raw)) == {"error", "request_id"}


def test_body_over_the_limit_is_refused_before_it_is_read(tmp_path, demo_model_uri):
    ep = start_endpoint(tmp_path, {"MODEL_URI": demo_model_uri, "MAX_BODY_BYTES": "1000"})
    try:
        parts = urlsplit(ep.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(50_000_000))  # announced, never sent
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert "at most 1000 bytes" in json.loads(response.read())["error"]["message"]
        conn.close()
        # and the server is still fine
        assert ep.post_json({"features": ROWS[0]})[0] == 200
    finally:
        stop_endpoint(ep)


def test_chunked_body_is_read(endpoint):
    parts = urlsplit(endpoint.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body = json.dumps({"instances": ROWS}).encode()
    conn.request("POST", "/predict", body=iter([body[:10], body[10:]]),
                 headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200
    assert len(json.loads(response.read())["predictions"]) == 3
    conn.close()


def test_keep_alive_connection_serves_many_requests(endpoint):
    parts = urlsplit(endpoint.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    for _ in range(20):
        conn.request("POST", "/predict", body=json.dumps({"features": ROWS[1]}), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert json.loads(response.read())["predictions"] == ["virginica"]
    conn.close()


def test_200_requests_from_8_threads_all_answered(endpoint):
    expected = {0: "setosa", 1: "virginica", 2: "versicolor"}

    def one(i):
        status, _, body = endpoint.post_json({"features": ROWS[i % 3]})
        return i, status, json.loads(body)["predictions"][0]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(200)))
    assert len(results) == 200
    assert all(status == 200 for _, status, _ in results)
    assert all(prediction == expected[i % 3] for i, _, prediction in results)


def test_log_lines_are_json_one_per_request(endpoint):
    endpoint.request("GET", "/health", headers={"X-Request-Id": "log-probe-1"})
    lines = [line for line in endpoint.log_lines() if line.get("request_id") == "log-probe-1"]
    assert len(lines) == 1
    assert lines[0]["route"] == "/health" and lines[0]["status"] == 200


def test_serve_without_model_uri_trains_and_serves_the_demo(tmp_path):
    ep = start_endpoint(tmp_path, {})
    try:
        status, _, body = ep.post_json({"data": {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}})
        assert status == 200 and json.loads(body)["predictions"] == ["virginica"]
        assert (tmp_path / ".serverless-ml" / "demo" / "iris-random-forest.joblib").is_file()
    finally:
        stop_endpoint(ep)


def test_first_request_is_logged_as_cold_start(tmp_path, demo_model_uri):
    ep = start_endpoint(tmp_path, {"MODEL_URI": demo_model_uri})
    try:
        ep.post_json({"features": ROWS[0]})
        ep.post_json({"features": ROWS[0]})
    finally:
        stop_endpoint(ep)
    requests = [line for line in ep.log_lines() if line["message"] == "request"]
    # the fixture's readiness probe was the first request of this process
    assert [line["cold_start"] for line in requests] == [True, False, False]
    assert [line["route"] for line in requests] == ["/health", "/predict", "/predict"]
