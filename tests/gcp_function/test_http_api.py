"""The function behind functions-framework's real server answers exactly what the core service
answers: same status, same JSON body (apart from a generated request id), same API headers."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

import pytest

from core.http import HttpRequest
from tests.conformance.cases import drop_per_load_fields

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = [5.1, 3.5, 1.4, 0.2]
ROW2 = [6.7, 3.0, 5.2, 2.3]
JSON = {"Content-Type": "application/json"}
ALLOWED_ORIGIN = {"Origin": "https://app.example.com"}
# headers that are the API's (not the server's own, such as Date or Server)
API_HEADERS = (
    "content-type", "cache-control", "allow", "retry-after", "vary", "access-control-allow-origin",
    "access-control-expose-headers", "access-control-allow-methods", "access-control-allow-headers",
    "access-control-max-age",
)
# fields that differ between two loads of the same file by nature
# the core twin predicts in this process, on arrays, from a model fitted with feature names
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def _json(value) -> bytes:
    return json.dumps(value).encode()


# (name, method, path, headers, body)
CASES = [
    ("rows as lists", "POST", "/predict", JSON, _json({"instances": [ROW, ROW2]})),
    ("rows as objects", "POST", "/predict", JSON, _json({"instances": [dict(zip(IRIS, ROW, strict=True))]})),
    ("inputs", "POST", "/predict", JSON, _json({"inputs": [ROW]})),
    ("dataframe_split", "POST", "/predict", JSON, _json({"dataframe_split": {"columns": IRIS, "data": [ROW, ROW2]}})),
    ("dataframe_records", "POST", "/predict", JSON, _json({"dataframe_records": [dict(zip(IRIS, ROW2, strict=True))]})),
    ("one row as a list", "POST", "/predict", JSON, _json({"features": ROW})),
    ("one row as an object", "POST", "/predict", JSON, _json({"data": dict(zip(IRIS, ROW, strict=True))})),
    ("json with charset", "POST", "/predict", {"Content-Type": "application/json; charset=utf-8"}, _json({"features": ROW})),
    ("no content type", "POST", "/predict", {}, _json({"features": ROW})),
    ("trailing slash", "POST", "/predict/", JSON, _json({"features": ROW})),
    ("query string", "POST", "/predict?verbose=1", JSON, _json({"features": ROW})),
    ("client request id", "POST", "/predict", {**JSON, "X-Request-Id": "order-42.a"}, _json({"features": ROW})),
    ("cors on an answer", "POST", "/predict", {**JSON, **ALLOWED_ORIGIN}, _json({"features": ROW})),
    ("malformed json", "POST", "/predict", JSON, b'{"instances": [[5.1, 3.5,'),
    ("empty body", "POST", "/predict", JSON, b""),
    ("not utf-8", "POST", "/predict", JSON, b'{"features": [5.1, 3.5, 1.4, 0.2], "x": "\xff"}'),
    ("not an object", "POST", "/predict", JSON, _json([ROW])),
    ("no known key", "POST", "/predict", JSON, _json({"rows": [ROW]})),
    ("missing feature", "POST", "/predict", JSON, _json({"instances": [dict(zip(IRIS[:3], ROW, strict=False))]})),  # one feature left out on purpose
    ("wrong row length", "POST", "/predict", JSON, _json({"instances": [ROW[:3]]})),
    ("string value", "POST", "/predict", JSON, _json({"features": [5.1, "3.5", 1.4, 0.2]})),
    ("NaN literal", "POST", "/predict", JSON, b'{"features": [NaN, 3.5, 1.4, 0.2]}'),
    ("too many rows", "POST", "/predict", JSON, _json({"instances": [ROW] * 51})),
    ("body too large", "POST", "/predict", JSON, _json({"instances": [ROW] * 4000})),
    ("not json", "POST", "/predict", {"Content-Type": "text/plain"}, b"5.1,3.5,1.4,0.2"),
    ("GET /predict", "GET", "/predict", {}, None),
    ("PUT /predict", "PUT", "/predict", JSON, _json({"features": ROW})),
    ("POST /health", "POST", "/health", JSON, b"{}"),
    ("DELETE /model", "DELETE", "/model", {}, None),
    ("unknown route", "GET", "/predictions", {}, None),
    ("root", "GET", "/", {}, None),
    ("health", "GET", "/health", {}, None),
    ("model", "GET", "/model", {}, None),
    ("openapi", "GET", "/openapi.json", {}, None),
    ("HEAD /health", "HEAD", "/health", {}, None),
    ("preflight", "OPTIONS", "/predict", {**ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"}, None),
    ("preflight, other origin", "OPTIONS", "/predict", {"Origin": "https://evil.example"}, None),
    ("preflight, no origin", "OPTIONS", "/model", {}, None),
    ("preflight, unknown route", "OPTIONS", "/nowhere", ALLOWED_ORIGIN, None),
]


@pytest.fixture(scope="module")
def warm_function(iris_function):
    """The function with its model loaded, like the core twin (/health reports the load state)."""
    status, _, body = iris_function.post_json({"features": ROW})
    assert status == 200, body
    return iris_function


def _comparable(status: int, headers: dict, body: bytes, *, request_id_sent: bool) -> dict:
    headers = {name.lower(): value for name, value in headers.items()}
    shown = {"status": status, "headers": {name: headers[name] for name in API_HEADERS if name in headers}}
    if body and headers.get("content-type") == "application/json":
        document = json.loads(body)
        if not request_id_sent:
            document.pop("request_id", None)
        drop_per_load_fields(document)
        shown["body"] = document
    else:
        shown["body"] = body
    return shown


@pytest.mark.parametrize("name, method, path, headers, body", CASES, ids=[case[0] for case in CASES])
def test_function_answers_what_core_answers(warm_function, core_twin, name, method, path, headers, body):
    status, got_headers, got_body = warm_function.request(method, path, body, headers)

    route, _, query = path.partition("?")
    expected = core_twin.handle(
        HttpRequest(method, route, headers=headers, body=body or b"", query=dict(parse_qsl(query)))
    )
    sent_id = "X-Request-Id" in headers
    assert _comparable(status, got_headers, got_body, request_id_sent=sent_id) == _comparable(
        expected.status, expected.headers, expected.body, request_id_sent=sent_id
    )


def test_every_answer_carries_its_request_id_in_body_and_header(warm_function):
    for method, path, body in (("POST", "/predict", _json({"features": ROW})), ("GET", "/nope", None)):
        _, headers, raw = warm_function.request(method, path, body, JSON)
        assert json.loads(raw)["request_id"] == headers["x-request-id"]


def test_request_id_is_the_function_execution_id(warm_function):
    # functions-framework gives every call an execution id (or keeps the platform's); it is the
    # id the call's log entries are labelled with
    status, headers, raw = warm_function.request(
        "POST", "/predict", _json({"features": ROW}), {**JSON, "Function-Execution-Id": "exec-7Hq2"}
    )
    assert status == 200
    assert json.loads(raw)["request_id"] == "exec-7Hq2" == headers["x-request-id"]


def test_predictions_come_from_the_model_in_gcs(warm_function, core_twin):
    status, _, raw = warm_function.request("GET", "/model")
    assert status == 200
    described = json.loads(raw)
    assert described["sha256"] == core_twin.model.get().sha256
    assert described["classes"] == ["setosa", "versicolor", "virginica"]

    status, _, raw = warm_function.post_json({"instances": [ROW, ROW2]})
    assert status == 200
    assert json.loads(raw)["predictions"] == ["setosa", "virginica"]


def test_concurrent_requests_all_answered(warm_function):
    bodies = [{"instances": [ROW] * n} for n in range(1, 17)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(warm_function.post_json, bodies))
    assert [status for status, _, _ in answers] == [200] * len(bodies)
    assert [len(json.loads(raw)["predictions"]) for _, _, raw in answers] == list(range(1, 17))
