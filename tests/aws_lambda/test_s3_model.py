"""The model from s3:// on moto's real server, through the handler: one GET however many first
requests, and storage faults answered 503 naming the location and the cause, then recovered."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.aws_lambda.lambda_support import make_event, response_headers, response_json
from tests.aws_lambda.moto_support import start_moto, stop_moto

BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
HEADERS = {"Content-Type": "application/json"}


def predict_event(source: str = "http-api") -> dict:
    return make_event(source, "POST", "/predict", body=BODY, headers=HEADERS)


def key_path(uri: str) -> str:
    """The request path of a GetObject for ``uri`` on moto (path-style addressing)."""
    return "/" + uri[len("s3://"):]


def assert_503_naming(answer: dict, *fragments: str) -> str:
    assert answer["statusCode"] == 503
    assert response_headers(answer)["retry-after"] == "5"
    message = response_json(answer)["error"]["message"]
    for fragment in fragments:
        assert fragment in message
    assert "testing" not in json.dumps(answer)  # the (dummy) credentials never appear
    assert "Traceback" not in message and "127.0.0.1" not in message
    return message


def test_first_request_reads_the_model_once_later_ones_reuse_it(make_app, s3_model_uri, aws_env):
    harness = make_app(s3_model_uri)
    assert aws_env.count("GET", key_path(s3_model_uri)) == 0
    for source in ("http-api", "api-gateway-rest", "alb", "function-url"):
        answer = harness.invoke(predict_event(source))
        assert answer["statusCode"] == 200
        assert response_json(answer)["predictions"] == ["setosa"]
    assert aws_env.count("GET", key_path(s3_model_uri)) == 1


def test_32_concurrent_first_invocations_make_one_get(make_app, s3_model_uri, aws_env):
    harness = make_app(s3_model_uri)
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda i: harness.invoke(predict_event(), request_id=f"r{i}"), range(32)))
    assert [a["statusCode"] for a in answers] == [200] * 32
    assert aws_env.count("GET", key_path(s3_model_uri)) == 1
    assert harness.app.service.model.load_attempts == 1
    assert sum(1 for line in harness.metrics() if "ColdStart" in line) == 1
    assert sum(1 for line in harness.metrics() if "ModelLoadTime" in line) == 1


def test_missing_object_is_503_then_the_next_request_recovers(make_app, s3, bucket, model_bytes, aws_env):
    uri = f"s3://{bucket}/later/model.joblib"
    harness = make_app(uri)
    assert_503_naming(harness.invoke(predict_event()), uri, "does not exist (NoSuchKey)")
    assert harness.invoke({"source": "serverless-plugin-warmup"})["model"] == "load_failed"
    health = response_json(harness.invoke(make_event("http-api", "GET", "/health")))
    assert health["model"] == "load_failed"
    s3.put_object(Bucket=bucket, Key="later/model.joblib", Body=model_bytes)
    assert harness.invoke(predict_event())["statusCode"] == 200
    assert aws_env.count("GET", key_path(uri)) == 3  # each request tried again; none after success
    harness.invoke(predict_event())
    assert aws_env.count("GET", key_path(uri)) == 3


def test_wrong_bucket_is_503_naming_the_bucket(make_app, aws_env):
    uri = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/model.joblib"
    assert_503_naming(make_app(uri).invoke(predict_event()), uri, "bucket", "does not exist (NoSuchBucket)")


def test_no_credentials_is_503_saying_so(make_app, s3_model_uri, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    message = assert_503_naming(make_app(s3_model_uri).invoke(predict_event()), s3_model_uri)
    assert "no usable AWS credentials" in message


# --- a moto server that checks credentials and permissions -------------------------------------------


@pytest.fixture(scope="module")
def locked_moto(tmp_path_factory):
    """moto enforcing IAM: the first 4 actions (the set-up below) run unauthenticated, then every
    request is checked like AWS does. Holds one model and an IAM user with no permission."""
    import boto3

    server = start_moto(tmp_path_factory.mktemp("locked"), {"INITIAL_NO_AUTH_ACTION_COUNT": "4"}, name="locked")
    try:
        options = dict(endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        s3, iam = boto3.client("s3", **options), boto3.client("iam", **options)
        s3.create_bucket(Bucket="locked-models")
        s3.put_object(Bucket="locked-models", Key="model.joblib", Body=b"not read")
        iam.create_user(UserName="no-permissions")
        server.reader_key = iam.create_access_key(UserName="no-permissions")["AccessKey"]
        yield server
    finally:
        stop_moto(server)


def test_access_denied_for_a_role_without_get_object(make_app, locked_moto, monkeypatch):
    for name, value in locked_moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", locked_moto.reader_key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", locked_moto.reader_key["SecretAccessKey"])
    from core.storage.s3 import drop_all_clients

    drop_all_clients()
    uri = "s3://locked-models/model.joblib"
    message = assert_503_naming(make_app(uri).invoke(predict_event()), uri, "access denied (AccessDenied)")
    assert "s3:GetObject" in message
    assert locked_moto.reader_key["SecretAccessKey"] not in message
    drop_all_clients()


def test_unknown_access_key_is_access_denied(make_app, locked_moto, monkeypatch):
    for name, value in locked_moto.env().items():
        monkeypatch.setenv(name, value)
    from core.storage.s3 import drop_all_clients

    drop_all_clients()
    uri = "s3://locked-models/model.joblib"
    assert_503_naming(make_app(uri).invoke(predict_event()), uri, "access denied (InvalidAccessKeyId)")
    drop_all_clients()


# --- a server that stops or freezes ------------------------------------------------------------------


@pytest.fixture
def own_moto(tmp_path, monkeypatch):
    """A moto server of this test's own, which the test may stop or freeze."""
    server = start_moto(tmp_path, name="own")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    from core.storage.s3 import drop_all_clients

    drop_all_clients()
    yield server
    stop_moto(server)
    drop_all_clients()


def upload_model(server, model_bytes, bucket="own-models", key="model.joblib") -> str:
    import boto3

    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=model_bytes)
    return f"s3://{bucket}/{key}"


@pytest.mark.timeout(60)  # a hanging SDK retry loop fails here instead of blocking the run
def test_a_stopped_server_is_503_within_the_storage_timeout(make_app, own_moto, model_bytes):
    uri = upload_model(own_moto, model_bytes)
    harness = make_app(uri, STORAGE_TIMEOUT_SECONDS="3")
    stop_moto(own_moto)
    message = assert_503_naming(harness.invoke(predict_event()), uri)
    assert "could not be reached" in message


@pytest.mark.timeout(60)
def test_a_frozen_server_times_out_then_the_next_request_recovers(make_app, own_moto, model_bytes):
    uri = upload_model(own_moto, model_bytes)
    harness = make_app(uri, STORAGE_TIMEOUT_SECONDS="2")
    own_moto.freeze()
    try:
        message = assert_503_naming(harness.invoke(predict_event()), uri)
        assert "did not answer in time" in message and "STORAGE_TIMEOUT_SECONDS=2" in message
    finally:
        own_moto.thaw()
    assert harness.invoke(predict_event())["statusCode"] == 200
