"""Event views: each shared sample event read as it is, the route rule of each source, headers,
query strings, base64 bodies, and odd events that must not raise."""

from __future__ import annotations

import json

import pytest

from aws_lambda.events import (
    HTTP_SOURCES,
    AlbEvent,
    ApiGatewayRestEvent,
    FunctionUrlEvent,
    HttpApiEvent,
    describe_event,
    http_event,
)
from aws_lambda.storage_events import is_storage_notification
from core.errors import RequestError
from tests.aws_lambda.lambda_support import SHARED_EVENTS, make_event


def shared(name: str) -> dict:
    return json.loads((SHARED_EVENTS / name).read_text())


# --- the shared samples, as they are ----------------------------------------------------------------


def test_rest_sample_joins_multi_value_headers_and_keeps_every_query_value():
    view = http_event(shared("apiGatewayProxyEvent.json"))
    assert isinstance(view, ApiGatewayRestEvent)
    assert (view.method, view.path) == ("GET", "/my/path")
    assert view.headers["header2"] == "value1, value2"  # from multiValueHeaders
    assert view.headers["origin"] == "https://aws.amazon.com"
    assert view.query == {"parameter1": "value2", "parameter2": "value"}
    assert view.multi_query["parameter1"] == ["value1", "value2"]
    assert view.body == b"Hello from Lambda!"
    assert view.source_request_id == "id="


def test_http_api_sample_reads_cookies_and_the_raw_query_string():
    view = http_event(shared("apiGatewayProxyV2Event.json"))
    assert type(view) is HttpApiEvent
    assert (view.method, view.path) == ("POST", "/my/path")
    assert view.headers["cookie"] == "cookie1; cookie2"
    assert view.multi_query == {"parameter1": ["value1", "value2"], "parameter2": ["value"]}
    assert json.loads(view.body) == {"message": "hello world", "username": "tom"}
    assert view.has_multi_value_headers is False


def test_function_url_sample_is_told_apart_by_its_host():
    view = http_event(shared("lambdaFunctionUrlEvent.json"))
    assert isinstance(view, FunctionUrlEvent)
    assert (view.method, view.path, view.body) == ("GET", "/", b"")
    assert view.headers["host"] == "<url-id>.lambda-url.us-east-1.on.aws"


def test_alb_sample_single_value():
    view = http_event(shared("albEvent.json"))
    assert isinstance(view, AlbEvent)
    assert (view.method, view.path, view.body) == ("GET", "/lambda", b"Test")
    assert view.query == {"query": "1234ABCD"}
    assert view.has_multi_value_headers is False
    assert view.target_group_arn.endswith("49e9d65c45c6791a")


def test_rest_sample_with_a_named_stage_and_a_proxy_resource():
    event = shared("go-apigw-request.json")
    view = http_event(event)
    assert isinstance(view, ApiGatewayRestEvent)
    assert view.stage == "testStage"
    assert (view.method, view.path) == ("POST", "/hello/world")
    assert view.headers["content-type"] == "application/json"
    assert view.body == b'{\r\n\t"a": 1\r\n}'
    request = view.to_core_request("lambda-id")
    assert (request.path, request.request_id, request.query) == ("/hello/world", "lambda-id", {"name": "me"})


@pytest.mark.parametrize(
    "name, described",
    [
        ("eventBridgeEvent.json", "an EventBridge event (source 'aws.ec2'"),
        ("s3Event.json", "an S3 notification (1 record)"),
        ("go-s3-event.json", "an S3 notification (1 record)"),
        ("s3SqsEvent.json", "an SQS batch (1 record)"),
        ("sqsEvent.json", "an SQS batch (2 records)"),
        ("s3EventBridgeNotificationObjectCreatedEvent.json", "an EventBridge event (source 'aws.s3'"),
        ("scheduledEvent_validation_basic_eventbridge_event.json", "detail-type 'Scheduled Event'"),
    ],
)
def test_non_http_samples_are_not_http_and_are_described_by_kind(name, described):
    event = shared(name)
    assert http_event(event) is None
    assert described in describe_event(event)


@pytest.mark.parametrize(
    "name, storage",
    [
        ("s3Event.json", True), ("go-s3-event.json", True), ("s3SqsEvent.json", True),
        ("s3EventBridgeNotificationObjectCreatedEvent.json", True), ("sqsEvent.json", False),
        ("eventBridgeEvent.json", False), ("apiGatewayProxyEvent.json", False),
    ],
)
def test_storage_notifications_are_recognised_for_the_batch_handler(name, storage):
    assert is_storage_notification(shared(name)) is storage


@pytest.mark.parametrize(
    "name, source",
    [
        ("apiGatewayProxyEvent.json", ApiGatewayRestEvent), ("go-apigw-request.json", ApiGatewayRestEvent),
        ("apiGatewayProxyV2Event.json", HttpApiEvent), ("lambdaFunctionUrlEvent.json", FunctionUrlEvent),
        ("albEvent.json", AlbEvent),
    ],
)
def test_each_sample_is_recognised_by_its_own_source_and_no_source_asked_before_it(name, source):
    event = shared(name)
    recognising = [candidate for candidate in HTTP_SOURCES if candidate.recognises(event)]
    assert recognising[0] is source
    # a Function URL event is also payload 2.0, an ALB event also looks like payload 1.0: the order settles it
    also = {FunctionUrlEvent: [HttpApiEvent], AlbEvent: [ApiGatewayRestEvent]}
    assert recognising == [source, *also.get(source, [])]


# --- the route core sees -----------------------------------------------------------------------------


def rest(resource, path, stage="prod", parameters=None):
    return {"resource": resource, "path": path, "httpMethod": "POST", "pathParameters": parameters,
            "requestContext": {"stage": stage, "requestId": "r"}}


def v2(raw_path, stage="$default", route_key="$default", parameters=None):
    event = {"version": "2.0", "routeKey": route_key, "rawPath": raw_path, "rawQueryString": "",
             "requestContext": {"stage": stage, "http": {"method": "POST", "path": raw_path},
                                "domainName": "abc.execute-api.eu-west-1.amazonaws.com"}}
    if parameters is not None:
        event["pathParameters"] = parameters
    return event


@pytest.mark.parametrize(
    "event, route",
    [
        # REST: the resource, filled in; neither the stage nor a custom domain's base path is in it
        (rest("/predict", "/predict"), "/predict"),
        (rest("/{proxy+}", "/predict", parameters={"proxy": "predict"}), "/predict"),
        (rest("/{proxy+}", "/ml/predict", parameters={"proxy": "predict"}), "/predict"),  # base path /ml
        (rest("/models/{name}", "/models/iris", parameters={"name": "iris"}), "/models/iris"),
        # no usable template: the path, without a leading /{stage}
        (rest("$default", "/dev/predict", stage="dev"), "/predict"),
        (rest("/{proxy+}", "/dev/health", stage="dev", parameters=None), "/health"),
        (rest("$default", "/development/predict", stage="dev"), "/development/predict"),
        (rest("$default", "/dev", stage="dev"), "/"),
        # HTTP API 2.0: a named stage is in rawPath, $default is not
        (v2("/predict"), "/predict"),
        (v2("/dev/predict", stage="dev"), "/predict"),
        (v2("/dev", stage="dev"), "/"),
        (v2("/devices/x", stage="dev"), "/devices/x"),
        (v2("/v1/predict", route_key="ANY /{proxy+}", parameters={"proxy": "predict"}), "/predict"),
        (v2("/v1/predict", route_key="POST /predict"), "/predict"),
        (v2("/pre%64ict"), "/predict"),
    ],
)
def test_route_rule(event, route):
    assert http_event(event).path == route


@pytest.mark.parametrize("source", ["http-api", "function-url", "alb"])  # REST APIs decode it themselves
def test_a_percent_encoded_path_is_the_same_route_on_every_source(source):
    assert http_event(make_event(source, "GET", "/pre%64ict")).path == "/predict"


def test_function_url_and_alb_paths_are_used_as_sent():
    assert http_event(make_event("function-url", "GET", "/health")).path == "/health"
    assert http_event(make_event("alb", "GET", "/ml/health")).path == "/ml/health"


# --- headers, query strings, bodies ------------------------------------------------------------------


@pytest.mark.parametrize("source", ["api-gateway-rest", "http-api", "function-url", "alb"])
def test_every_source_gives_the_same_query_values(source):
    event = make_event(source, "GET", "/health", query=[("a", "1"), ("a", "2 3"), ("b", "x&y=z")])
    view = http_event(event)
    assert view.query == {"a": "2 3", "b": "x&y=z"}
    assert view.multi_query["a"] == ["1", "2 3"]


@pytest.mark.parametrize("raw", [
    "", "a=1", "a=1&a=2&b=", "a&b=&=c&&", "a==b&c=d=e", "x=%20y&z=1", "a+b=c+d", "%zz=1&k=%E2%82%AC", "ü=ß&;=;",
    "&", "==", "a=1&", "&a=1",
])
def test_raw_query_strings_split_as_parse_qsl_splits_them(raw):
    from urllib.parse import parse_qsl

    from aws_lambda.events import _query_pairs

    assert _query_pairs(raw) == parse_qsl(raw, keep_blank_values=True)


def test_alb_single_value_query_is_percent_decoded():
    event = make_event("alb", "GET", "/health", query=[("q", "a b/ü")], multi_value=False)
    assert event["queryStringParameters"] == {"q": "a%20b/%C3%BC"}
    assert http_event(event).query == {"q": "a b/ü"}


@pytest.mark.parametrize("source", ["api-gateway-rest", "http-api", "function-url", "alb"])
def test_base64_bodies_are_decoded(source):
    raw = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}\xff'
    view = http_event(make_event(source, "POST", "/predict", body=raw, base64_body=True))
    assert view.body == raw


def test_a_body_marked_base64_that_is_not_is_a_request_error():
    event = make_event("http-api", "POST", "/predict", body=b"{}")
    event["isBase64Encoded"] = True
    event["body"] = "{not base64!"
    with pytest.raises(RequestError, match="isBase64Encoded but is not valid base64"):
        _ = http_event(event).body


def test_a_body_marked_base64_that_is_not_becomes_a_request_carrying_its_error():
    event = make_event("http-api", "POST", "/predict", body=b"{}", headers={"X-Request-Id": "client-1"})
    event["isBase64Encoded"] = True
    event["body"] = "{not base64!"
    request = http_event(event).to_core_request("id")
    assert isinstance(request.error, RequestError)
    assert "isBase64Encoded but is not valid base64" in request.error.message
    assert (request.method, request.path, request.body, request.header("x-request-id")) == (
        "POST", "/predict", b"", "client-1"
    )


def test_a_lone_surrogate_in_the_body_still_gives_bytes():
    event = make_event("http-api", "POST", "/predict", body=b"{}")
    event["body"] = '{"x": "\ud800"}'
    assert http_event(event).body == '{"x": "\ud800"}'.encode("utf-8", "surrogatepass")


def test_multi_value_headers_win_over_single_and_names_are_lower_case():
    event = {"httpMethod": "GET", "path": "/health", "requestContext": {"stage": "$default"},
             "headers": {"Accept": "b"}, "multiValueHeaders": {"Accept": ["a", "b"], "X-Thing": ["1"],
                                                               "Cookie": ["a=1", "b=2"], "Empty": []}}
    assert http_event(event).headers == {"accept": "a, b", "x-thing": "1", "cookie": "a=1; b=2"}


# --- odd events never raise KeyError ------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"httpMethod": "GET", "requestContext": {"stage": "x"}, "headers": None, "multiValueHeaders": None,
         "queryStringParameters": None, "multiValueQueryStringParameters": None, "path": None, "body": None},
        {"httpMethod": "GET", "requestContext": {"elb": {}}, "headers": {"a": None, "b": 1}},
        {"version": "2.0", "requestContext": {"http": {"method": "GET"}}},
        {"version": "2.0", "requestContext": {"http": {"method": "get"}}, "rawQueryString": None, "cookies": "x"},
    ],
)
def test_sparse_http_events_read_as_empty(event):
    request = http_event(event).to_core_request("id")
    assert request.method == "GET"
    assert request.path.startswith("/")
    assert request.body == b""


@pytest.mark.parametrize(
    "event",
    [None, 42, "text", [], [{"httpMethod": "GET"}], {}, {"requestContext": None},
     {"version": "2.0", "requestContext": {"http": {}}}, {"httpMethod": 3, "requestContext": {"elb": {}}},
     {"Records": "nope"}, {"Records": [None]}, {"detail-type": None, "source": None}],
)
def test_non_events_are_described_not_raised(event):
    assert http_event(event) is None
    text = describe_event(event)
    assert isinstance(text, str) and text
    assert is_storage_notification(event) in (True, False)


def test_a_non_string_body_is_a_request_error():
    event = make_event("http-api", "POST", "/predict")
    event["body"] = {"instances": [[1, 2, 3, 4]]}
    with pytest.raises(RequestError, match="body is a dict; expected a string"):
        _ = http_event(event).body

