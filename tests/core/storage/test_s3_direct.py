"""The botocore-free GetObject (core/storage/s3_direct.py): its signatures equal botocore's and are
accepted by moto's server with authentication enforced; it is taken only when the environment holds
everything it needs, and leaves every other case to botocore; a read through it imports no botocore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import pytest

from core.errors import ObjectSuperseded, StorageAccessDenied
from core.storage import parse_uri
from core.storage.s3 import S3ObjectStore, drop_all_clients
from core.storage.s3_direct import direct_target
from core.storage.sigv4 import Credentials, query_string, s3_path, signed_get_headers
from core.storage.versions import ObjectVersion
from tests.aws_lambda import moto_support
from tests.support import REPO

# keys a model or a batch input may really have: spaces, '+', unicode, characters S3 asks to encode
AWKWARD_KEYS = ["models/iris v2+final.joblib", "modèles/ünïcode/m.joblib", "a/b=c&d;e,f/%41~x(1)*!.joblib",
                "deep/./../dots//double-slash.joblib"]


# --- the signature against botocore's signer ------------------------------------------------------


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDO+token/with=chars"])
@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_the_signature_is_the_one_botocore_computes(key, token):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    moment = datetime(2026, 11, 24, 16, 40, 1, tzinfo=timezone.utc)
    host, path = "127.0.0.1:4566", s3_path("my-bucket", key)
    ours = signed_get_headers(host, path, "eu-central-1", Credentials("AKIDEXAMPLE", "wJalr/K7MDENG+bPxRfiCY", token), now=moment)

    request = AWSRequest(method="GET", url=f"http://{host}{path}")
    signer = S3SigV4Auth(BotoCredentials("AKIDEXAMPLE", "wJalr/K7MDENG+bPxRfiCY", token), "s3", "eu-central-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment.replace(tzinfo=None)):
        signer.add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]


@pytest.mark.parametrize("query, extra", [
    ({"versionId": "3HL4kqtJvjVBH40Nrjfkd.Zs_1+/x=="}, {}),  # a version of a versioned bucket
    ({}, {"if-match": '"d41d8cd98f00b204e9800998ecf8427e-3"'}),  # an eTag, without versioning
])
def test_the_signature_of_a_read_of_one_version_is_the_one_botocore_computes(query, extra):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    moment = datetime(2026, 11, 24, 16, 40, 1, tzinfo=timezone.utc)
    host, path = "127.0.0.1:4566", s3_path("my-bucket", AWKWARD_KEYS[1])
    ours = signed_get_headers(host, path, "eu-central-1", Credentials("AKIDEXAMPLE", "wJalr/K7MDENG+bPxRfiCY", None),
                              now=moment, query=query, extra_headers=extra)

    url = f"http://{host}{path}" + (f"?{query_string(query)}" if query else "")
    request = AWSRequest(method="GET", url=url, headers={"If-Match": extra["if-match"]} if extra else {})
    signer = S3SigV4Auth(BotoCredentials("AKIDEXAMPLE", "wJalr/K7MDENG+bPxRfiCY"), "s3", "eu-central-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment.replace(tzinfo=None)):
        signer.add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]


def test_credentials_never_show_their_secrets():
    shown = repr(Credentials("AKIDEXAMPLE", "very-secret", "token-secret"))
    assert "very-secret" not in shown and "token-secret" not in shown


# --- the signature against moto's server, authentication enforced -----------------------------------


@pytest.fixture(scope="module")
def guarded_moto(tmp_path_factory):
    """moto checking every request's signature and IAM permissions after the set-up (10 actions):
    a bucket with objects under awkward keys, a user allowed to read it, and a role it may assume
    (temporary credentials with a session token, as Lambda's)."""
    import boto3

    server = moto_support.start_moto(
        tmp_path_factory.mktemp("guarded"), {"INITIAL_NO_AUTH_ACTION_COUNT": "10"}, name="guarded"
    )
    try:
        options = dict(endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        s3, iam = boto3.client("s3", **options), boto3.client("iam", **options)
        s3.create_bucket(Bucket="guarded-models")  # 1
        for key in AWKWARD_KEYS:  # 2-5
            s3.put_object(Bucket="guarded-models", Key=key, Body=key.encode())
        iam.create_user(UserName="reader")  # 6
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "sts:AssumeRole"], "Resource": "*"}]})
        iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=policy)  # 7
        server.reader_key = iam.create_access_key(UserName="reader")["AccessKey"]  # 8
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
        server.role_arn = iam.create_role(RoleName="function-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]  # 9
        iam.put_role_policy(RoleName="function-role", PolicyName="read", PolicyDocument=policy)  # 10
        yield server
    finally:
        moto_support.stop_moto(server)


@pytest.fixture
def as_reader(guarded_moto, monkeypatch):
    with moto_support.pointed_at(guarded_moto, monkeypatch):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", guarded_moto.reader_key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", guarded_moto.reader_key["SecretAccessKey"])
        yield guarded_moto


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_moto_accepts_the_signature_of_every_key(as_reader, key):
    uri = parse_uri(f"s3://guarded-models/{key}")
    assert direct_target(uri) is not None
    assert S3ObjectStore(5).read_bytes(uri) == key.encode()


def test_moto_accepts_the_signature_of_a_read_held_to_an_etag(as_reader):
    import hashlib

    key = AWKWARD_KEYS[1]
    uri = parse_uri(f"s3://guarded-models/{key}")
    etag = hashlib.md5(key.encode()).hexdigest()  # a single-part upload's eTag
    assert S3ObjectStore(5).open_read(uri, ObjectVersion(etag=etag)).read() == key.encode()
    with pytest.raises(ObjectSuperseded):
        S3ObjectStore(5).open_read(uri, ObjectVersion(etag="0" * 32))


def test_moto_accepts_a_roles_temporary_credentials_with_their_session_token(as_reader, monkeypatch):
    import boto3

    sts = boto3.client("sts", endpoint_url=as_reader.url, region_name="us-east-1",
                       aws_access_key_id=as_reader.reader_key["AccessKeyId"],
                       aws_secret_access_key=as_reader.reader_key["SecretAccessKey"])
    temporary = sts.assume_role(RoleArn=as_reader.role_arn, RoleSessionName="lambda")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", temporary["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", temporary["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", temporary["SessionToken"])
    uri = parse_uri(f"s3://guarded-models/{AWKWARD_KEYS[0]}")
    assert direct_target(uri).credentials.token == temporary["SessionToken"]
    assert S3ObjectStore(5).read_bytes(uri) == AWKWARD_KEYS[0].encode()


def test_a_wrong_secret_is_access_denied_without_the_secret(as_reader, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-" + uuid.uuid4().hex)
    uri = parse_uri(f"s3://guarded-models/{AWKWARD_KEYS[0]}")
    with pytest.raises(StorageAccessDenied) as raised:
        S3ObjectStore(5).read_bytes(uri)
    assert raised.value.message == (
        f"{uri.display} cannot be read: access denied (SignatureDoesNotMatch); "
        "the function's role needs s3:GetObject on it (s3:GetObjectVersion to read one of its versions)"
    )
    assert "not-the-secret" not in raised.value.message


# --- when the direct path is taken --------------------------------------------------------------------

LAMBDA_LIKE = {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
               "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}


def test_on_lambda_the_request_goes_to_the_regional_virtual_host():
    target = direct_target(parse_uri("s3://my-models/iris/m v1.joblib"), {**LAMBDA_LIKE, "HOME": "/nonexistent"})
    assert (target.https, target.host, target.path) == (True, "my-models.s3.eu-west-1.amazonaws.com", "/iris/m%20v1.joblib")


def test_a_dotted_bucket_goes_path_style_and_china_to_its_domain():
    env = {**LAMBDA_LIKE, "HOME": "/nonexistent", "AWS_DEFAULT_REGION": "cn-north-1"}
    target = direct_target(parse_uri("s3://models.example.com/m.joblib"), env)
    assert (target.host, target.path) == ("s3.cn-north-1.amazonaws.com.cn", "/models.example.com/m.joblib")


def test_an_endpoint_setting_is_used_path_style():
    # a CA bundle does not matter to a plain-HTTP endpoint
    env = {**LAMBDA_LIKE, "HOME": "/nonexistent", "AWS_ENDPOINT_URL": "http://localhost:9000",
           "AWS_CA_BUNDLE": "/etc/corporate-ca.pem"}
    target = direct_target(parse_uri("s3://models/m.joblib"), env)
    assert (target.https, target.host, target.path) == (False, "localhost:9000", "/models/m.joblib")
    env["AWS_ENDPOINT_URL_S3"] = "https://minio.internal:9443/"
    del env["AWS_CA_BUNDLE"]
    assert direct_target(parse_uri("s3://models/m.joblib"), env).host == "minio.internal:9443"


@pytest.mark.parametrize(
    "change",
    [
        {"AWS_ACCESS_KEY_ID": ""},  # a role profile, SSO, the container or instance endpoint: botocore's chain
        {"AWS_DEFAULT_REGION": ""},  # botocore would look in the config file
        {"HTTPS_PROXY": "http://proxy:3128"},
        {"AWS_USE_FIPS_ENDPOINT": "true"},
        {"AWS_ENDPOINT_URL_S3": "http://gateway.internal/s3-prefix"},
        {"AWS_DEFAULT_REGION": "us-iso-east-1"},
        {"AWS_CA_BUNDLE": "/etc/corporate-ca.pem"},
        {"AWS_CA_BUNDLE": "/etc/corporate-ca.pem", "AWS_ENDPOINT_URL_S3": "https://minio.internal:9443"},
    ],
)
def test_other_settings_go_to_botocore(change):
    env = {**LAMBDA_LIKE, "HOME": "/nonexistent", **change}
    assert direct_target(parse_uri("s3://my-models/m.joblib"), env) is None


@pytest.mark.parametrize("bucket", ["arn:aws:s3:eu-west-1:123456789012:accesspoint/models", "models--euw1-az1--x-s3",
                                    "Not_A_Bucket!", "192.168.1.1"])
def test_access_points_directory_buckets_and_invalid_names_go_to_botocore(bucket):
    assert direct_target(parse_uri(f"s3://{bucket}/m.joblib"), {**LAMBDA_LIKE, "HOME": "/nonexistent"}) is None


def test_an_aws_config_file_sends_the_request_to_botocore(tmp_path):
    config = tmp_path / "config"
    env = {**LAMBDA_LIKE, "AWS_CONFIG_FILE": str(config)}
    config.write_text("")
    assert direct_target(parse_uri("s3://my-models/m.joblib"), env) is not None
    config.write_text("[default]\ns3 =\n    addressing_style = virtual\n")
    assert direct_target(parse_uri("s3://my-models/m.joblib"), env) is None


# --- in a fresh process: what a cold start imports ----------------------------------------------------

CHILD = """\
import sys
from core.storage import parse_uri, store_for
data = store_for(parse_uri(sys.argv[1]), 5.0).read_bytes(parse_uri(sys.argv[1]))
print(len(data), int("botocore" in sys.modules), int("boto3" in sys.modules))
"""


@pytest.fixture(scope="module")
def stored_object(moto) -> str:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="fresh-process")
    s3.put_object(Bucket="fresh-process", Key="m.joblib", Body=b"x" * 1000)
    return "s3://fresh-process/m.joblib"


def run_child(moto, uri: str, tmp_path: Path, **extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in moto_support.AWS_VARIABLES_TO_CLEAR}
    env.update(moto.env(), PYTHONPATH=str(REPO), HOME=str(tmp_path), **extra)
    done = subprocess.run([sys.executable, "-c", CHILD, uri], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_read_with_credentials_in_the_environment_imports_no_aws_sdk(moto, stored_object, tmp_path):
    assert run_child(moto, stored_object, tmp_path) == ["1000", "0", "0"]


def test_without_them_botocore_reads_the_same_object(moto, stored_object, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    size, botocore_loaded, boto3_loaded = run_child(
        moto, stored_object, tmp_path, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="",
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
    )
    assert (size, botocore_loaded, boto3_loaded) == ("1000", "1", "0")


def test_the_store_reads_through_botocore_when_a_proxy_is_set(moto, stored_object, monkeypatch):
    # NO_PROXY keeps botocore from using the proxy for the local server; the direct path steps aside
    with moto_support.pointed_at(moto, monkeypatch):
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert direct_target(parse_uri(stored_object)) is None
        assert S3ObjectStore(5).read_bytes(parse_uri(stored_object)) == b"x" * 1000
    drop_all_clients()
