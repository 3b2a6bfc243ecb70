"""Routes, methods, CORS and request logging of the HTTP service."""

from __future__ import annotations

import io
import json
import logging

import pytest

from core.http import HttpRequest
from core.logs import JsonFormatter
from tests.support import answer, make_service, post_json

ROW = {"features": [5.1, 3.5, 1.4, 0.2]}


def call(service, method, path, **headers):
    return service.handle(HttpRequest(method, path, headers=headers))


@pytest.mark.parametrize("path", ["/", "/predict/x", "/api/predict", "/PREDICT", "/health.json"])
def test_unknown_route_is_json_404(service, path):
    response = call(service, "GET", path)
    assert response.status == 404
    assert response.headers["content-type"] == "application/json"
    error = answer(response)["error"]
    assert error["code"] == "not_found"
    assert "expected one of: POST /predict, GET /health, GET /model" in error["message"]


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("GET", "/predict", "POST, OPTIONS"),
        ("PUT", "/predict", "POST, OPTIONS"),
        ("DELETE", "/model", "GET, HEAD, OPTIONS"),
        ("POST", "/health", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_is_json_405_with_allow(service, method, path, allow):
    response = call(service, method, path)
    assert response.status == 405
    assert response.headers["allow"] == allow
    error = answer(response)["error"]
    assert error["code"] == "method_not_allowed"
    assert f"'{method}' is not allowed on {path}" in error["message"]


def test_trailing_slash_is_the_same_route(service):
    assert post_json(service, ROW, path="/predict/").status == 200


def test_head_answers_like_get_without_body(service):
    response = call(service, "HEAD", "/health")
    assert response.status == 200 and response.body == b""


def test_openapi_document_is_served(service):
    response = call(service, "GET", "/openapi.json")
    assert response.status == 200
    assert json.loads(response.body)["openapi"].startswith("3.1")


# --- CORS ----------------------------------------------------------------------------------------


def test_no_cors_headers_by_default(service):
    response = post_json(service, ROW, origin="https://app.example.com")
    assert response.status == 200
    assert not any(name.startswith("access-control-") for name in response.headers)
    preflight = call(service, "OPTIONS", "/predict", origin="https://app.example.com",
                     **{"access-control-request-method": "POST"})
    assert preflight.status == 204
    assert "access-control-allow-origin" not in preflight.headers


def test_listed_origin_is_allowed_and_others_are_not(demo_model_uri):
    service = make_service(demo_model_uri, CORS_ALLOW_ORIGINS="https://app.example.com")
    preflight = call(service, "OPTIONS", "/predict", origin="https://app.example.com",
                     **{"access-control-request-method": "POST", "access-control-request-headers": "content-type"})
    assert preflight.status == 204
    assert preflight.body == b""
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert preflight.headers["access-control-allow-methods"] == "POST, OPTIONS"
    assert "content-type" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["vary"] == "Origin"

    allowed = post_json(service, ROW, origin="https://app.example.com")
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-expose-headers"] == "x-request-id"
    refused = post_json(service, ROW, origin="https://evil.example.com")
    assert "access-control-allow-origin" not in refused.headers
    # errors carry CORS headers too, or the browser hides the message from the page
    error = post_json(service, b"{", origin="https://app.example.com")
    assert error.status == 400 and error.headers["access-control-allow-origin"] == "https://app.example.com"


def test_star_allows_any_origin(demo_model_uri):
    service = make_service(demo_model_uri, CORS_ALLOW_ORIGINS="*")
    response = post_json(service, ROW, origin="https://anywhere.example")
    assert response.headers["access-control-allow-origin"] == "*"


def test_local_server_rejection_is_logged_with_the_clients_request_id(tmp_path, demo_model_uri):
    import http.client
    from urllib.parse import urlsplit

    from tests.support import start_endpoint, stop_endpoint

    ep = start_endpoint(tmp_path, {"MODEL_URI": demo_model_uri, "MAX_BODY_BYTES": "10", "CORS_ALLOW_ORIGINS": "*"})
    try:
        parts = urlsplit(ep.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("POST", "/predict", body=b"x" * 11, headers={"X-Request-Id": "too-big-1", "Origin": "https://a.example"})
        response = conn.getresponse()
        assert response.status == 413
        assert response.getheader("x-request-id") == "too-big-1"
        assert response.getheader("access-control-allow-origin") == "*"
        conn.close()
    finally:
        stop_endpoint(ep)
    (line,) = [line for line in ep.log_lines() if line.get("request_id") == "too-big-1"]
    assert line["status"] == 413 and line["error_code"] == "payload_too_large"


def test_preflight_on_unknown_route_is_404(service):
    assert call(service, "OPTIONS", "/nowhere", origin="https://a.example").status == 404


# --- logs ----------------------------------------------------------------------------------------


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("serverless_ml")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_one_log_line_per_request_without_the_body(service, log_lines):
    post_json(service, {"instances": [[5.1, 3.5, 1.4, 0.2], [6.123456, 3.0, 5.2, 2.3]]}, **{"x-request-id": "req-1"})
    post_json(service, {"instances": [[5.1, 3.5, "secret-value", 0.2]]}, **{"x-request-id": "req-2"})
    requests = [line for line in log_lines() if line["message"] == "request"]
    assert len(requests) == 2
    first, second = requests
    assert first["request_id"] == "req-1" and first["route"] == "/predict" and first["method"] == "POST"
    assert first["status"] == 200 and first["rows"] == 2 and first["latency_ms"] > 0
    assert isinstance(first["cold_start"], bool) and second["cold_start"] is False
    assert second["status"] == 400 and second["error_code"] == "invalid_value"
    text = json.dumps(log_lines())
    assert "6.123456" not in text and "secret-value" not in text
    loads = [line for line in log_lines() if line["message"] == "model loaded"]
    assert len(loads) == 1 and loads[0]["deserialize_ms"] > 0


def test_unmatched_routes_are_logged_as_unmatched(service, log_lines):
    call(service, "GET", "/wp-admin/" + "x" * 500)
    (line,) = [line for line in log_lines() if line["message"] == "request"]
    assert line["route"] == "unmatched" and line["status"] == 404


def test_log_context_fields_are_on_every_line_of_the_invocation(service, log_lines):
    from core.logs import log_context

    with log_context(invocation_id="inv-7", provider="test"):
        post_json(service, ROW)
    post_json(service, ROW)
    lines = [line for line in log_lines() if line["message"] == "request"]
    assert lines[0]["invocation_id"] == "inv-7" and lines[0]["provider"] == "test"
    assert "invocation_id" not in lines[1]


def test_cold_start_is_true_for_the_first_invocation_only(service, log_lines, monkeypatch):
    monkeypatch.setattr("core.http.service._cold_start", True)  # as in a fresh process
    post_json(service, ROW)
    post_json(service, ROW)
    assert [line["cold_start"] for line in log_lines() if line["message"] == "request"] == [True, False]


def test_an_adapter_that_took_the_cold_start_passes_it_on(service, log_lines, monkeypatch):
    from core.http.service import take_cold_start

    monkeypatch.setattr("core.http.service._cold_start", True)
    assert take_cold_start() is True  # e.g. a Lambda warm-up was the first invocation
    service.handle(HttpRequest("GET", "/health", cold_start=False))
    service.handle(HttpRequest("GET", "/health"))
    assert take_cold_start() is False
    assert [line["cold_start"] for line in log_lines() if line["message"] == "request"] == [False, False]
