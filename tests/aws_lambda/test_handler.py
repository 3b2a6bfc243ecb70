"""The handler in one process: every shared sample event, the four sources answered in their own
shape, base64 bodies, query strings, CORS preflight, warm-ups, odd events, logs and EMF metrics.

The model is the demo model, loaded through ``file://`` here (S3 has its own test modules), so
these tests are about the adapter, not about storage.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.aws_lambda.lambda_support import (
    SHARED_EVENTS,
    SOURCES,
    ClientContext,
    make_event,
    response_headers,
    response_json,
)

ROW = [5.1, 3.5, 1.4, 0.2]
PREDICT_BODY = json.dumps({"instances": [ROW, [6.7, 3.0, 5.2, 2.3]]}).encode()
JSON_HEADERS = {"Content-Type": "application/json"}
ORIGIN = "https://app.example.com"

HTTP_SAMPLES = {
    # file: (status, error code) as sent: GETs and a POST on paths that are not routes
    "albEvent.json": (404, "not_found"),
    "apiGatewayProxyEvent.json": (404, "not_found"),
    "apiGatewayProxyV2Event.json": (404, "not_found"),
    "lambdaFunctionUrlEvent.json": (404, "not_found"),
    "go-apigw-request.json": (404, "not_found"),
}
NON_HTTP_SAMPLES = {
    "eventBridgeEvent.json": "unsupported_event",
    "sqsEvent.json": "unsupported_event",
    "s3Event.json": "batch_event_not_handled_here",
    "go-s3-event.json": "batch_event_not_handled_here",
    "s3SqsEvent.json": "batch_event_not_handled_here",
    "s3EventBridgeNotificationObjectCreatedEvent.json": "batch_event_not_handled_here",
}
ANSWER_KEYS = {
    "api-gateway-rest": {"statusCode", "headers", "body", "isBase64Encoded"},
    "http-api": {"statusCode", "headers", "body", "isBase64Encoded"},
    "function-url": {"statusCode", "headers", "body", "isBase64Encoded"},
    "alb": {"statusCode", "statusDescription", "multiValueHeaders", "body", "isBase64Encoded"},
}


def shared(name: str) -> dict:
    return json.loads((SHARED_EVENTS / name).read_text())


@pytest.fixture
def harness(make_app, demo_model_uri):
    return make_app(demo_model_uri, CORS_ALLOW_ORIGINS=ORIGIN)


def test_every_shared_sample_is_covered_here():
    names = {path.name for path in SHARED_EVENTS.glob("*.json")}
    covered = set(HTTP_SAMPLES) | set(NON_HTTP_SAMPLES) | {"scheduledEvent_validation_basic_eventbridge_event.json"}
    assert names == covered


# --- the shared samples, as they are -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HTTP_SAMPLES))
def test_shared_http_sample_gets_a_json_answer_in_its_shape(harness, name):
    status, code = HTTP_SAMPLES[name]
    answer = harness.invoke(shared(name), request_id="lambda-req-1")
    assert answer["statusCode"] == status
    assert answer["isBase64Encoded"] is False
    body = response_json(answer)
    assert body["error"]["code"] == code
    assert body["request_id"] == "lambda-req-1"
    assert response_headers(answer)["content-type"] == "application/json"
    if name == "albEvent.json":
        assert answer["statusDescription"] == "404 Not Found"
        assert "headers" in answer and "multiValueHeaders" not in answer  # the request was single-value


def test_shared_rest_sample_with_its_origin_gets_cors_headers(make_app, demo_model_uri):
    harness = make_app(demo_model_uri, CORS_ALLOW_ORIGINS="https://aws.amazon.com")
    answer = harness.invoke(shared("apiGatewayProxyEvent.json"))
    assert answer["headers"]["access-control-allow-origin"] == "https://aws.amazon.com"


def test_shared_post_sample_sent_to_predict_is_a_400_naming_the_problem(harness):
    event = shared("go-apigw-request.json")  # body {"a": 1}: JSON, but not a prediction request
    event["pathParameters"] = {"proxy": "predict"}
    answer = harness.invoke(event)
    assert answer["statusCode"] == 400
    assert response_json(answer)["error"]["code"] == "invalid_shape"


@pytest.mark.parametrize("name", sorted(NON_HTTP_SAMPLES))
def test_shared_non_http_sample_gets_a_structured_error_and_a_log_line(harness, name):
    answer = harness.invoke(shared(name), request_id="lambda-req-2")
    code = NON_HTTP_SAMPLES[name]
    assert answer["error"]["code"] == code
    assert answer["request_id"] == "lambda-req-2"
    assert "it received" in answer["error"]["message"]
    (line,) = [line for line in harness.logs() if line["message"] == "unsupported event"]
    assert line["level"] == "ERROR"
    assert line["error_code"] == code
    assert line["function_request_id"] == "lambda-req-2"
    assert not [line for line in harness.logs() if line["message"] == "request"]
    assert harness.app.service.model.loaded is None  # nothing was loaded for it


def test_batch_events_point_at_the_batch_handler(harness):
    answer = harness.invoke(shared("s3Event.json"))
    assert "aws_lambda.handler.batch" in answer["error"]["message"]


@pytest.mark.parametrize("event", [None, [], "hello", 3, {}, {"foo": "bar"}, {"Records": [{}]}])
def test_anything_else_gets_a_structured_error_never_an_exception(harness, event):
    answer = harness.invoke(event)
    assert answer["error"]["code"] == "unsupported_event"


# --- warm-ups ----------------------------------------------------------------------------------------


def test_scheduled_event_sample_warms_up_without_the_http_path(harness):
    answer = harness.invoke(shared("scheduledEvent_validation_basic_eventbridge_event.json"))
    assert answer == {"warmup": True, "source": "scheduled-event", "model": "loaded",
                      "model_version": harness.app.service.model.loaded.version}
    assert not [line for line in harness.logs() if line["message"] == "request"]
    (line,) = [line for line in harness.logs() if line["message"] == "warm-up"]
    assert line["loaded_now"] is True


def test_warmup_plugin_payload_then_requests_load_once(harness):
    assert harness.invoke({"source": "serverless-plugin-warmup"})["model"] == "loaded"
    assert harness.invoke({"source": "serverless-plugin-warmup"})["model"] == "loaded"
    answer = harness.invoke(make_event("http-api", "POST", "/predict", body=PREDICT_BODY, headers=JSON_HEADERS))
    assert answer["statusCode"] == 200
    assert harness.app.service.model.load_attempts == 1
    warmups = [line for line in harness.logs() if line["message"] == "warm-up"]
    assert [line["loaded_now"] for line in warmups] == [True, False]


def test_warmup_marker_in_the_client_context(harness):
    answer = harness.invoke({}, client_context=ClientContext(custom={"source": "serverless-plugin-warmup"}))
    assert answer["warmup"] is True and answer["model"] == "loaded"


def test_a_warmup_that_cannot_load_says_why_and_the_next_call_retries(make_app, tmp_path, demo_model_path):
    target = tmp_path / "later.joblib"
    harness = make_app(target.as_uri())
    answer = harness.invoke({"source": "serverless-plugin-warmup"})
    assert answer["model"] == "load_failed"
    assert answer["error"]["code"] == "model_unavailable"
    assert "file://.../later.joblib does not exist" in answer["error"]["message"]
    target.write_bytes(demo_model_path.read_bytes())
    assert harness.invoke({"source": "serverless-plugin-warmup"})["model"] == "loaded"


# --- the four sources, each in its own shape ---------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_predict_through_each_source(harness, source):
    event = make_event(source, "POST", "/predict", body=PREDICT_BODY, headers=JSON_HEADERS)
    answer = harness.invoke(event, request_id="req-predict")
    assert set(answer) == ANSWER_KEYS[source]
    assert answer["statusCode"] == 200
    body = response_json(answer)
    assert body["predictions"] == ["setosa", "virginica"]
    assert body["request_id"] == "req-predict"
    assert response_headers(answer)["x-request-id"] == "req-predict"
    if source == "alb":
        assert answer["statusDescription"] == "200 OK"
        assert answer["multiValueHeaders"]["content-type"] == ["application/json"]


def test_alb_without_multi_value_headers_is_answered_with_headers(harness):
    event = make_event("alb", "POST", "/predict", body=PREDICT_BODY, headers=JSON_HEADERS, multi_value=False)
    answer = harness.invoke(event)
    assert set(answer) == {"statusCode", "statusDescription", "headers", "body", "isBase64Encoded"}
    assert answer["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("source", SOURCES)
def test_base64_body_through_each_source(harness, source):
    event = make_event(source, "POST", "/predict", body=PREDICT_BODY, headers=JSON_HEADERS, base64_body=True)
    answer = harness.invoke(event)
    assert answer["statusCode"] == 200
    assert len(response_json(answer)["predictions"]) == 2


@pytest.mark.parametrize("source", SOURCES)
def test_broken_base64_is_a_400_in_the_sources_shape(harness, source):
    event = make_event(source, "POST", "/predict", body=PREDICT_BODY, headers=JSON_HEADERS, base64_body=True)
    event["body"] = "%%%"
    answer = harness.invoke(event)
    assert answer["statusCode"] == 400
    assert "not valid base64" in response_json(answer)["error"]["message"]
    assert set(answer) == ANSWER_KEYS[source]


@pytest.mark.parametrize("source", SOURCES)
def test_query_strings_do_not_change_the_route(harness, source):
    event = make_event(source, "GET", "/health", query=[("verbose", "1"), ("verbose", "2"), ("x", "a b")])
    answer = harness.invoke(event)
    assert answer["statusCode"] == 200
    assert response_json(answer) == {"status": "ok", "model": "not_loaded"}


@pytest.mark.parametrize("source", SOURCES)
def test_cors_preflight_through_each_source(harness, source):
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    answer = harness.invoke(make_event(source, "OPTIONS", "/predict", headers=headers))
    assert answer["statusCode"] == 204
    assert answer["body"] == ""
    got = response_headers(answer)
    assert got["access-control-allow-origin"] == ORIGIN
    assert got["access-control-allow-methods"] == "POST, OPTIONS"
    assert "content-type" in got["access-control-allow-headers"]
    if source == "alb":
        assert answer["statusDescription"] == "204 No Content"


def test_preflight_from_an_origin_not_allowed_gets_no_cors_headers(harness):
    answer = harness.invoke(make_event("http-api", "OPTIONS", "/predict", headers={"Origin": "https://evil.example"}))
    assert answer["statusCode"] == 204
    assert not any(name.startswith("access-control-") for name in answer["headers"])


def test_a_named_http_api_stage_is_not_part_of_the_route(harness):
    event = make_event("http-api", "POST", "/predict", body=PREDICT_BODY, headers=JSON_HEADERS, stage="prod")
    assert event["rawPath"] == "/prod/predict"
    assert harness.invoke(event)["statusCode"] == 200


@pytest.mark.parametrize("source", SOURCES)
def test_head_gets_headers_and_no_body(harness, source):
    answer = harness.invoke(make_event(source, "HEAD", "/health"))
    assert answer["statusCode"] == 200
    assert answer["body"] == ""


@pytest.mark.parametrize("source", SOURCES)
def test_wrong_method_is_405_with_allow(harness, source):
    answer = harness.invoke(make_event(source, "GET", "/predict"))
    assert answer["statusCode"] == 405
    assert response_headers(answer)["allow"] == "POST, OPTIONS"


def test_the_clients_request_id_wins(harness):
    headers = {**JSON_HEADERS, "X-Request-Id": "client-abc.1"}
    answer = harness.invoke(make_event("api-gateway-rest", "POST", "/predict", body=PREDICT_BODY, headers=headers))
    assert response_json(answer)["request_id"] == "client-abc.1"


def test_a_non_json_body_is_400_not_500(harness):
    answer = harness.invoke(make_event("function-url", "POST", "/predict", body=b"Hello from Lambda!", headers=JSON_HEADERS))
    assert answer["statusCode"] == 400
    assert response_json(answer)["error"]["code"] == "malformed_json"


def test_an_answer_that_is_not_utf8_goes_out_base64():
    from aws_lambda.events import http_event
    from core.http import HttpResponse

    view = http_event(make_event("http-api", "GET", "/x"))
    answer = view.reply(HttpResponse(200, {"content-type": "application/octet-stream"}, b"\xff\x00"))
    assert answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == b"\xff\x00"


# --- logs and metrics --------------------------------------------------------------------------------


def test_logs_carry_the_lambda_request_id_and_the_cold_start_flag(harness):
    harness.invoke({"source": "serverless-plugin-warmup"}, request_id="warm-id")
    event = make_event("http-api", "POST", "/predict", body=PREDICT_BODY, headers=JSON_HEADERS)
    harness.invoke(event, request_id="first-id")
    harness.invoke(event, request_id="second-id")
    (warm,) = [line for line in harness.logs() if line["message"] == "warm-up"]
    (load,) = [line for line in harness.logs() if line["message"] == "model loaded"]
    for line in (warm, load):  # the instance's first invocation
        assert (line["function_request_id"], line["cold_start"]) == ("warm-id", True)
    requests = [line for line in harness.logs() if line["message"] == "request"]
    assert [(r["function_request_id"], r["request_id"], r["rows"]) for r in requests] == [
        ("first-id", "first-id", 2), ("second-id", "second-id", 2)
    ]
    # the warm-up was the cold start: the requests after it are warm, in every line
    assert [r["cold_start"] for r in requests] == [False, False]
    assert PREDICT_BODY.decode() not in json.dumps(harness.logs())  # bodies are never logged


def test_one_emf_line_per_invocation_with_latency_rows_cold_start_and_load_time(harness):
    event = make_event("http-api", "POST", "/predict", body=PREDICT_BODY, headers=JSON_HEADERS)
    harness.invoke(event, request_id="first-id")
    harness.invoke(make_event("http-api", "POST", "/predict", body=json.dumps({"features": ROW}).encode(),
                              headers=JSON_HEADERS), request_id="second-id")
    first, second = harness.metrics()
    for line in (first, second):
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "serverless-ml-test"
        assert directive["Dimensions"] == [["service"]]
        assert line["service"] == "serverless-ml-test"
        for metric in directive["Metrics"]:  # every declared metric has a number
            assert isinstance(line[metric["Name"]], (int, float))
        assert isinstance(line["_aws"]["Timestamp"], int)
    assert {m["Name"] for m in first["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
        "Latency", "Rows", "ColdStart", "ModelLoadTime"}
    assert (first["Rows"], first["ColdStart"], first["status"], first["route"]) == (2, 1, 200, "/predict")
    assert first["ModelLoadTime"] > 0
    assert {m["Name"] for m in second["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {"Latency", "Rows"}
    assert (second["Rows"], second["function_request_id"], second["source"]) == (1, "second-id", "http-api")


def test_the_emf_line_is_the_text_json_dumps_writes_for_its_document():
    """The line is written in pieces (the metric definitions once per set of metrics); its text
    must still be json.dumps' of the one document, whatever the properties hold."""
    import io

    from aws_lambda.metrics import EmfMetrics

    stream = io.StringIO()
    metrics = EmfMetrics("team/ml", "fn-\u00e9", stream)
    cases = [
        dict(latency_ms=1.23456, rows=2, cold_start=True, model_load_ms=381.0,
             properties={"function_request_id": "r-\u2028\u00e9", "source": "http-api", "status": 200}),
        dict(latency_ms=0.5, rows=1, properties={"route": "/predict", "status": 400, "_aws": "ignored", "none": None}),
        dict(counts={"RowsFailed": 3, "InputsFailed": 0}, properties={"big": 2**70, "small": 1e-7, "nan": float("nan")}),
        dict(latency_ms=0.5, rows=1, properties={"route": "/predict", "status": 200}),  # definitions again
    ]
    for case in cases:
        line = metrics.emit(**case)
        document = json.loads(line)
        assert line == json.dumps(document, separators=(",", ":"), default=str, allow_nan=True)
        assert list(document)[:2] == ["_aws", "service"] and document["service"] == "fn-\u00e9"
        assert "ignored" not in line and "none" not in document
    assert stream.getvalue().count("\n") == len(cases)


def test_model_load_time_is_reported_once_also_after_a_warmup(harness):
    harness.invoke({"source": "serverless-plugin-warmup"})
    harness.invoke(make_event("alb", "GET", "/health"))
    warm, request = harness.metrics()
    assert warm["source"] == "warmup" and "ModelLoadTime" in warm and warm["ColdStart"] == 1
    assert "ModelLoadTime" not in request and "ColdStart" not in request
    assert "Rows" not in request  # /health predicts no rows


def test_metrics_namespace_setting_is_checked():
    from aws_lambda.metrics import namespace_from_env
    from core.errors import SettingsError

    assert namespace_from_env({}) == "serverless-ml"
    assert namespace_from_env({"METRICS_NAMESPACE": "team/ml"}) == "team/ml"
    for bad in ("AWS/Lambda", "x" * 256, "bad{name}"):
        with pytest.raises(SettingsError, match="METRICS_NAMESPACE="):
            namespace_from_env({"METRICS_NAMESPACE": bad})


def test_rows_metric_does_not_depend_on_the_log_level(demo_model_uri):
    """The Rows metric comes from core's answer itself, so LOG_LEVEL=ERROR keeps it."""
    import json
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import json, sys
        sys.path.insert(0, ".")
        from aws_lambda.handler import predict
        event = json.load(open(sys.argv[1]))
        event.update(rawPath="/predict", body=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 3}),
                     headers={"content-type": "application/json"}, isBase64Encoded=False)
        event["requestContext"]["http"].update(method="POST", path="/predict")
        event.pop("cookies", None)
        class Context:
            aws_request_id = "rows-1"
        predict(event, Context())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(SHARED_EVENTS / "apiGatewayProxyV2Event.json")],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "MODEL_URI": demo_model_uri, "LOG_LEVEL": "ERROR"},
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert result.returncode == 0, result.stderr
    (emf,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"_aws"')]
    assert emf["Rows"] == 3


def test_a_candidate_models_work_is_in_the_emf_line(make_app, demo_model_path, tmp_path):
    """Shadow: ShadowRows and ShadowDisagreements; canary: CandidateAnswers 1 or 0; a candidate
    that cannot load: CandidateUnavailable, with the primary answering."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    from core.rollout import canary_share

    data = load_iris()
    tree = DecisionTreeClassifier(max_depth=1, random_state=0).fit(data.data, data.target_names[data.target])
    tree.feature_names_in_ = joblib.load(demo_model_path).feature_names_in_
    joblib.dump(tree, tmp_path / "candidate.joblib")
    rows = json.dumps({"instances": data.data[::10].tolist()}).encode()

    def metrics_of(mode: str, candidate: str, key: str = "k", **env: str) -> dict:
        harness = make_app(demo_model_path.as_uri(), CANDIDATE_MODEL_URI=(tmp_path / candidate).as_uri(),
                           CANDIDATE_MODE=mode, **env)
        harness.app.preload()
        answer = harness.invoke(make_event("http-api", "POST", "/predict", body=rows,
                                           headers={**JSON_HEADERS, "x-request-id": key}))
        assert answer["statusCode"] == 200
        (line,) = harness.metrics()
        return {name: line.get(name) for name in ("ShadowRows", "ShadowDisagreements", "CandidateAnswers", "CandidateUnavailable")}

    shadow = metrics_of("shadow", "candidate.joblib")
    assert shadow["ShadowRows"] == 15 and shadow["ShadowDisagreements"] >= 5  # a one-split tree misses a class
    keys = [f"k{n}" for n in range(50)]
    inside, outside = next(k for k in keys if canary_share(k) < 50), next(k for k in keys if canary_share(k) >= 50)
    assert metrics_of("canary", "candidate.joblib", inside, CANDIDATE_PERCENT="50")["CandidateAnswers"] == 1
    assert metrics_of("canary", "candidate.joblib", outside, CANDIDATE_PERCENT="50")["CandidateAnswers"] == 0
    assert metrics_of("shadow", "absent.joblib")["CandidateUnavailable"] == 1
