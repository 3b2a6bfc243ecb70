"""Each kind of bad input gets its status, its code and a message naming what was wrong and
what was expected, through the same service the adapters call."""

from __future__ import annotations

import pytest

from tests.support import answer, make_service, post_json

NAMES = "sepal_length, sepal_width, petal_length, petal_width"
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def expect_error(response, status: int, code: str, *fragments: str) -> str:
    body = answer(response)
    assert response.status == status, body
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize(
    "raw, fragments",
    [
        (b"", ("body is empty", "expected a JSON object")),
        (b"   \n", ("body is empty",)),
        (b"{instances: [[1, 2, 3, 4]]}", ("not valid JSON", "line 1 column 2", "expected a JSON object")),
        (b'{"instances": [[1, 2, 3, 4]]', ("not valid JSON",)),
        (b"\xff\xfe{}", ("not valid UTF-8", "0xff", "position 0")),
        (b'{"instances": [[5.1, 3.5, NaN, 0.2]]}', ("NaN", "finite numbers")),
        (b'{"instances": [[5.1, 3.5, Infinity, 0.2]]}', ("Infinity",)),
        (b'{"instances": [[5.1, 3.5, -Infinity, 0.2]]}', ("-Infinity",)),
        (b"[" * 200_000, ("nested too deeply",)),
        (b"[[5.1, 3.5, 1.4, 0.2]]", ("JSON array", "expected a JSON object")),
        (b'"instances"', ("JSON string",)),
        (b"null", ("JSON null",)),
    ],
)
def test_malformed_json_is_400(service, raw, fragments):
    expect_error(post_json(service, raw), 400, "malformed_json", *fragments)


@pytest.mark.parametrize(
    "body, fragments",
    [
        ({}, ("no rows", "'instances'", "'dataframe_split'", "received the keys: none")),
        ({"instance": [[1, 2, 3, 4]]}, ("no rows", "received the keys: 'instance'")),
        ({"instances": [[5.1, 3.5, 1.4, 0.2]], "inputs": [[5.1, 3.5, 1.4, 0.2]]}, ("'instances', 'inputs'", "exactly one")),
        ({"instances": []}, ("'instances' is empty", "at least one row")),
        ({"inputs": []}, ("'inputs' is empty",)),
        ({"instances": {"a": 1}}, ("'instances' is a JSON object", "array of rows")),
        ({"instances": [5.1, 3.5, 1.4, 0.2]}, ("instances[0] is a JSON number", "arrays or objects")),
        ({"instances": [[5.1, 3.5, 1.4, 0.2], ROW]}, ("instances[1] is a JSON object", "instances[0] is a JSON array", "same form")),
        ({"dataframe_records": [[5.1, 3.5, 1.4, 0.2]]}, ("dataframe_records[0] is a JSON array", "objects")),
        ({"dataframe_split": [[5.1, 3.5, 1.4, 0.2]]}, ("'columns'", "'data'")),
        ({"dataframe_split": {"columns": "sepal_length", "data": [[1]]}}, ("columns' must be an array of feature names",)),
        ({"dataframe_split": {"columns": NAMES.split(", "), "data": []}}, ("'dataframe_split.data' is empty",)),
        ({"features": {"sepal_length": 5.1}}, ("'features' is a JSON object", "array of numbers")),
        ({"data": [[5.1, 3.5, 1.4, 0.2]]}, ("'data' is a JSON array", "object of feature names", "instances")),
    ],
)
def test_wrong_shape_is_400(service, body, fragments):
    expect_error(post_json(service, body), 400, "invalid_shape", *fragments)


@pytest.mark.parametrize(
    "body, fragments",
    [
        (
            {"instances": [ROW, ROW, ROW, {k: v for k, v in ROW.items() if k != "petal_width"}]},
            ("instances[3]: missing feature 'petal_width'", f"expected 4 features: {NAMES}"),
        ),
        (
            {"instances": [{**{k: v for k, v in ROW.items() if k != "petal_width"}, "petal_widht": 0.2}]},
            ("missing feature 'petal_width'", "unknown feature 'petal_widht' (did you mean 'petal_width'?)"),
        ),
        ({"instances": [{**ROW, "colour": 1.0}]}, ("instances[0]: unknown feature 'colour'", "expected 4 features")),
        ({"data": {"sepal_length": 5.1}}, ("data: missing features 'sepal_width', 'petal_length', 'petal_width'",)),
        ({"dataframe_records": [ROW, {**ROW, "x": 1}]}, ("dataframe_records[1]: unknown feature 'x'",)),
        ({"instances": [[5.1, 3.5, 1.4]]}, ("instances[0] has 3 values", f"expected 4 features: {NAMES}")),
        ({"instances": [[5.1, 3.5, 1.4, 0.2], [5.1, 3.5, 1.4, 0.2, 9.9]]}, ("instances[1] has 5 values",)),
        ({"features": [5.1, 3.5]}, ("features has 2 values", "expected 4 features")),
        ({"features": []}, ("features has 0 values",)),
        (
            {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_widht"], "data": [[1, 2, 3, 4]]}},
            ("dataframe_split.columns: missing feature 'petal_width'", "did you mean 'petal_width'?"),
        ),
        (
            {"dataframe_split": {"columns": ["sepal_length", "sepal_length"], "data": [[1, 2]]}},
            ("names 'sepal_length' more than once",),
        ),
        (
            {"dataframe_split": {"columns": NAMES.split(", "), "data": [[1, 2, 3]]}},
            ("dataframe_split.data[0] has 3 values",),
        ),
    ],
)
def test_wrong_features_is_400(service, body, fragments):
    expect_error(post_json(service, body), 400, "invalid_features", *fragments)


@pytest.mark.parametrize(
    "body, fragments",
    [
        ({"instances": [[5.1, 3.5, "1.4", 0.2]]}, ("instances[0][2] ('petal_length') is the string '1.4'", "expected a number")),
        ({"instances": [[5.1, True, 1.4, 0.2]]}, ("instances[0][1] ('sepal_width') is a JSON boolean",)),
        ({"instances": [[5.1, [3.5], 1.4, 0.2]]}, ("is a JSON array; expected a number",)),
        (b'{"instances": [[5.1, 3.5, 1e999, 0.2]]}', ("instances[0][2] ('petal_length') is a number outside the 64-bit float range",)),
        ({"instances": [[5.1, 3.5, 10**400, 0.2]]}, ("too large for a 64-bit float",)),
        ({"instances": [{**ROW, "petal_width": "wide"}]}, ("instances[0].petal_width is the string 'wide'",)),
        ({"data": {**ROW, "sepal_width": {"cm": 3}}}, ("data.sepal_width is a JSON object",)),
        (b'{"features": [5.1, 3.5, 1.4, -1e400]}', ("features[3] ('petal_width') is a number outside",)),
    ],
)
def test_non_numbers_are_400(service, body, fragments):
    expect_error(post_json(service, body), 400, "invalid_value", *fragments)


def test_too_many_rows_is_413(demo_model_uri):
    limited = make_service(demo_model_uri, MAX_ROWS="3")
    assert post_json(limited, {"instances": [[5.1, 3.5, 1.4, 0.2]] * 3}).status == 200
    expect_error(
        post_json(limited, {"instances": [[5.1, 3.5, 1.4, 0.2]] * 4}),
        413, "payload_too_large", "4 rows received", "at most 3 rows", "MAX_ROWS",
    )


def test_too_large_body_is_413_before_parsing(demo_model_uri):
    limited = make_service(demo_model_uri, MAX_BODY_BYTES="100")
    # not even valid JSON: the size is refused before any parsing is attempted
    expect_error(post_json(limited, b"{" * 101), 413, "payload_too_large", "101 bytes", "at most 100 bytes", "MAX_BODY_BYTES")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_non_json_content_type_is_415(service, content_type):
    response = post_json(service, {"features": [5.1, 3.5, 1.4, 0.2]}, **{"content-type": content_type})
    expect_error(response, 415, "unsupported_media_type", "is not supported", "expected application/json")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"])
def test_json_content_types_are_accepted(service, content_type):
    assert post_json(service, {"features": [5.1, 3.5, 1.4, 0.2]}, **{"content-type": content_type}).status == 200


def test_no_error_message_carries_a_server_path(service, demo_model_path):
    folder = str(demo_model_path.parent)
    for raw in (b"", b"[", b'{"instances": [[1]]}', b'{"data": {"x": "y"}}'):
        assert folder not in post_json(service, raw).body.decode()
