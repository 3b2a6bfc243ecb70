"""S3ObjectStore against moto's real S3 server: round trips, streaming, the endpoint settings,
one client under many threads, error mapping, and bounded time when the server is gone."""

from __future__ import annotations

import io
import threading
import uuid
from pathlib import Path

import pytest

from core.errors import (
    ObjectNotFound,
    ObjectSuperseded,
    PreconditionFailed,
    StorageAccessDenied,
    StorageError,
    StorageTimeout,
)
from core.storage import parse_uri, s3_direct, store_for
from core.storage.parts import MIN_PART_BYTES
from core.storage.s3 import S3ObjectStore, drop_all_clients, retry_plan
from core.storage.s3_errors import botocore_error
from core.storage.sdk_errors import mapped_errors
from core.storage.versions import ObjectVersion, Precondition
from tests.aws_lambda import moto_support


@pytest.fixture
def bucket(aws_env) -> str:
    name = f"store-{uuid.uuid4().hex[:12]}"
    S3ObjectStore(5).client().create_bucket(Bucket=name)
    return name


def test_write_then_read_through_the_registry(bucket, aws_env):
    uri = parse_uri(f"s3://{bucket}/dir/model.joblib")
    store = store_for(uri, 5.0)
    assert isinstance(store, S3ObjectStore)
    store.write_bytes(uri, b"first")
    store.write_bytes(uri, b"second")
    assert store.read_bytes(uri) == b"second"
    assert aws_env.count("PUT", f"/{bucket}/dir/model.joblib") == 2  # one PutObject per write


def test_open_read_streams_in_pieces(bucket):
    uri = parse_uri(f"s3://{bucket}/rows.csv")
    store = S3ObjectStore(5)
    lines = "".join(f"{i},{i * 2}\n" for i in range(50_000)).encode()
    store.write_bytes(uri, lines)
    with store.open_read(uri) as stream:
        assert stream.read(4) == b"0,0\n"
        text = io.TextIOWrapper(stream, encoding="utf-8")
        rest = text.readlines()
    assert len(rest) == 49_999 and rest[-1] == "49999,99998\n"


def test_the_generic_endpoint_variable_works_too(bucket, moto, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    drop_all_clients()
    uri = parse_uri(f"s3://{bucket}/generic.bin")
    S3ObjectStore(5).write_bytes(uri, b"x")
    assert S3ObjectStore(5).read_bytes(uri) == b"x"


def test_one_client_however_many_threads_ask(aws_env):
    store = S3ObjectStore(5)
    barrier = threading.Barrier(32)
    clients = []

    def take():
        barrier.wait()
        clients.append(store.client())

    threads = [threading.Thread(target=take) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in clients}) == 1


def test_a_dropped_client_is_rebuilt_from_the_current_environment(bucket, aws_env):
    store = S3ObjectStore(5)
    first = store.client()
    store.drop_client()
    assert store.client() is not first
    store.write_bytes(parse_uri(f"s3://{bucket}/after-drop"), b"ok")


def test_delete_removes_the_object_and_a_second_delete_succeeds(bucket, aws_env):
    uri = parse_uri(f"s3://{bucket}/out/partial.jsonl")
    store = S3ObjectStore(5)
    store.write_bytes(uri, b"{}\n")
    store.delete(uri)
    with pytest.raises(ObjectNotFound):
        store.read_bytes(uri)
    store.delete(uri)  # already gone: a repeated cleanup succeeds
    assert aws_env.count("DELETE", f"/{bucket}/out/partial.jsonl") == 2
    with pytest.raises(ObjectNotFound, match=r"cannot be deleted: bucket 'bucket-that-is-not-there' does not exist"):
        store.delete(parse_uri("s3://bucket-that-is-not-there/out/partial.jsonl"))


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["direct", "botocore"])
def test_missing_key(bucket, path, monkeypatch, tmp_path):
    if path == "botocore":
        credentials_from_a_file(monkeypatch, tmp_path)
    uri = parse_uri(f"s3://{bucket}/nope.joblib")
    with pytest.raises(ObjectNotFound) as raised:
        S3ObjectStore(5).read_bytes(uri)
    assert raised.value.message == f"s3://{bucket}/nope.joblib does not exist (NoSuchKey)"
    assert raised.value.uri == f"s3://{bucket}/nope.joblib"


def test_missing_key_when_streaming(bucket):
    with pytest.raises(ObjectNotFound, match="does not exist"):
        S3ObjectStore(5).open_read(parse_uri(f"s3://{bucket}/nope.csv"))


@pytest.mark.parametrize("path", ["direct", "botocore"])
def test_missing_bucket(aws_env, path, monkeypatch, tmp_path):
    if path == "botocore":
        credentials_from_a_file(monkeypatch, tmp_path)
    uri = parse_uri("s3://bucket-that-is-not-there/m.joblib")
    with pytest.raises(ObjectNotFound, match=r"bucket 'bucket-that-is-not-there' does not exist \(NoSuchBucket\)"):
        S3ObjectStore(5).read_bytes(uri)
    with pytest.raises(ObjectNotFound, match="cannot be written"):
        S3ObjectStore(5).write_bytes(uri, b"x")


@pytest.mark.parametrize("path", ["direct", "botocore"])
def test_an_archived_object_says_so_and_how_to_get_it_back(bucket, path, monkeypatch, tmp_path):
    import boto3

    boto3.client("s3").put_object(Bucket=bucket, Key="cold/model.joblib", Body=b"x", StorageClass="GLACIER")
    if path == "botocore":
        credentials_from_a_file(monkeypatch, tmp_path)
    with pytest.raises(StorageError) as raised:
        S3ObjectStore(5).read_bytes(parse_uri(f"s3://{bucket}/cold/model.joblib"))
    assert type(raised.value) is StorageError  # not access denied: no permission would help
    assert raised.value.message.startswith(f"s3://{bucket}/cold/model.joblib cannot be read: the object is archived")
    assert "restore it (aws s3api restore-object)" in raised.value.message


def test_a_bucket_name_s3_cannot_have(aws_env):
    with pytest.raises(StorageError, match="not a valid S3 location"):
        S3ObjectStore(5).read_bytes(parse_uri("s3://Not_A_Bucket!/m.joblib"))


def test_no_credentials_is_access_denied_without_secrets(bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageAccessDenied) as raised:
        S3ObjectStore(5).read_bytes(parse_uri(f"s3://{bucket}/m.joblib"))
    assert "no usable AWS credentials were found (NoCredentialsError)" in raised.value.message


def test_credentials_s3_rejects_are_access_denied(bucket, moto, monkeypatch, tmp_path):
    # moto's server enforcing IAM (only the first 2 actions, the set-up, go unchecked)
    server = moto_support.start_moto(tmp_path, {"INITIAL_NO_AUTH_ACTION_COUNT": "2"}, name="auth")
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.url)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-never-shown")
        drop_all_clients()
        uri = parse_uri("s3://guarded/m.joblib")
        store = S3ObjectStore(5)
        store.client().create_bucket(Bucket="guarded")
        store.write_bytes(uri, b"x")
        with pytest.raises(StorageAccessDenied) as raised:
            store.read_bytes(uri)
        assert raised.value.message == (
            "s3://guarded/m.joblib cannot be read: access denied (InvalidAccessKeyId); "
            "the function's role needs s3:GetObject on it (s3:GetObjectVersion to read one of its versions)"
        )
        with pytest.raises(StorageAccessDenied, match="needs s3:PutObject"):
            store.write_bytes(uri, b"y")
    finally:
        moto_support.stop_moto(server)
        drop_all_clients()


def credentials_from_a_file(monkeypatch, folder: Path) -> None:
    """The same dummy credentials from a shared-credentials file instead of the environment: reads
    then go through botocore, not core.storage.s3_direct."""
    path = folder / "credentials"
    path.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))


# reads go straight to S3 when the credentials are in the environment, through botocore otherwise
READ_PATHS = ["direct", "botocore"]


@pytest.mark.timeout(60)  # a retry loop that hangs fails here, not the whole run
@pytest.mark.parametrize("path", READ_PATHS)
def test_a_stopped_server_fails_fast(tmp_path, monkeypatch, path):
    server = moto_support.start_moto(tmp_path, name="stopped")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    if path == "botocore":
        credentials_from_a_file(monkeypatch, tmp_path)
    drop_all_clients()
    store = S3ObjectStore(2)
    store.client().create_bucket(Bucket="gone-soon")
    moto_support.stop_moto(server)
    with pytest.raises(StorageError) as raised:
        store.read_bytes(parse_uri("s3://gone-soon/m.joblib"))
    assert raised.value.message == (
        "s3://gone-soon/m.joblib cannot be read: the S3 endpoint could not be reached (connection refused)"
    )
    assert server.url not in raised.value.message
    drop_all_clients()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", READ_PATHS)
def test_a_frozen_server_is_a_timeout(tmp_path, monkeypatch, path):
    server = moto_support.start_moto(tmp_path, name="frozen")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    if path == "botocore":
        credentials_from_a_file(monkeypatch, tmp_path)
    drop_all_clients()
    store = S3ObjectStore(1.5)
    store.client().create_bucket(Bucket="frozen")
    store.write_bytes(parse_uri("s3://frozen/m.joblib"), b"x")
    server.freeze()
    try:
        with pytest.raises(StorageTimeout, match=r"did not answer in time \(read timeout; STORAGE_TIMEOUT_SECONDS=1.5\)"):
            store.read_bytes(parse_uri("s3://frozen/m.joblib"))
    finally:
        server.thaw()
        moto_support.stop_moto(server)
        drop_all_clients()


def _client_error(code: str, status: int):
    from botocore.exceptions import ClientError

    # the shape botocore parses S3's XML error answers into
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


@pytest.mark.parametrize(
    "code, status, kind, fragment",
    [
        ("SlowDown", 503, StorageError, "S3 is throttling requests (SlowDown) and still did after retrying for 10 s"),
        ("503", 503, StorageError, "throttling requests (503)"),
        ("RequestTimeout", 400, StorageTimeout, "S3 timed out (RequestTimeout)"),
        ("", 403, StorageAccessDenied, "access denied (403)"),
        ("", 404, ObjectNotFound, "does not exist (404)"),
        ("InternalError", 500, StorageError, "S3 answered 500 InternalError"),
        ("ExpiredToken", 400, StorageAccessDenied, "access denied (ExpiredToken)"),
    ],
)
def test_s3_error_answers_map_to_core_errors(code, status, kind, fragment):
    error = botocore_error(_client_error(code, status), parse_uri("s3://b-b-b/k"), "read", 10)
    assert type(error) is kind
    assert fragment in error.message
    assert error.message.startswith("s3://b-b-b/k")


def test_a_bug_is_not_disguised_as_a_storage_error():
    store = S3ObjectStore(10)
    with pytest.raises(ZeroDivisionError), mapped_errors(store._storage_error, parse_uri("s3://b-b-b/k"), "read"):
        raise ZeroDivisionError()


@pytest.mark.parametrize(
    "timeout, plan",
    [(10, (3, 7 / 3)), (6, (3, 1.0)), (5.9, (2, 2.45)), (3, (2, 1.0)), (2.5, (1, 2.5)), (1, (1, 1)), (0.1, (1, 0.1))],
)
def test_retries_fit_in_the_timeout(timeout, plan):
    attempts, per_attempt = retry_plan(timeout)
    assert (attempts, round(per_attempt, 6)) == (plan[0], round(plan[1], 6))
    worst_backoff = 2 ** (attempts - 1) - 1
    assert attempts * per_attempt + worst_backoff <= timeout + 1e-9


def test_the_client_config_is_the_plan():
    config = S3ObjectStore(10).config
    assert config.retries == {"total_max_attempts": 3, "mode": "standard"}
    assert config.connect_timeout == config.read_timeout == pytest.approx(7 / 3)


# --- write_file --------------------------------------------------------------------------------------


def test_write_file_uploads_the_file_in_one_put_and_replaces_the_object(bucket, aws_env, tmp_path):
    uri = parse_uri(f"s3://{bucket}/out/my data+v2.csv.predictions.jsonl")
    store = S3ObjectStore(5)
    first = tmp_path / "first.jsonl"
    first.write_bytes(b'{"line":2,"prediction":"setosa"}\n')
    store.write_file(uri, str(first))
    second = tmp_path / "second.jsonl"
    content = b"".join(b'{"line":%d,"prediction":"virginica"}\n' % n for n in range(200_000))  # ~7 MB
    second.write_bytes(content)
    store.write_file(uri, str(second))
    assert store.read_bytes(uri) == content
    assert aws_env.count("PUT", f"/{bucket}/out/my%20data+v2.csv.predictions.jsonl") == 2  # one PutObject each


def test_write_file_streams_from_the_file(bucket, tmp_path):
    import tracemalloc

    path = tmp_path / "big.jsonl"
    with open(path, "wb") as out:
        block = b"x" * (1 << 20)
        for _ in range(32):
            out.write(block)
    store = S3ObjectStore(30)
    store.client()  # built outside the measurement
    uri = parse_uri(f"s3://{bucket}/big.jsonl")
    tracemalloc.start()
    try:
        store.write_file(uri, str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * (1 << 20), f"uploading a 32 MiB file held {peak / (1 << 20):.1f} MiB at once"
    head = store.client().head_object(Bucket=bucket, Key="big.jsonl")
    assert head["ContentLength"] == 32 * (1 << 20)


def test_write_file_to_a_missing_bucket(aws_env, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"{}\n")
    with pytest.raises(ObjectNotFound) as raised:
        S3ObjectStore(5).write_file(parse_uri("s3://bucket-that-is-not-there/p.jsonl"), str(path))
    assert raised.value.message == (
        "s3://bucket-that-is-not-there/p.jsonl cannot be written: bucket 'bucket-that-is-not-there' "
        "does not exist (NoSuchBucket)"
    )


def test_write_file_of_a_missing_local_file_names_the_target_not_the_path(bucket, tmp_path):
    with pytest.raises(StorageError) as raised:
        S3ObjectStore(5).write_file(parse_uri(f"s3://{bucket}/p.jsonl"), str(tmp_path / "gone.jsonl"))
    assert raised.value.message == (
        f"s3://{bucket}/p.jsonl cannot be written: the local file to upload cannot be read (No such file or directory)"
    )
    assert str(tmp_path) not in raised.value.message


def test_write_file_over_5_tib_is_refused_before_sending(bucket, aws_env, tmp_path):
    path = tmp_path / "huge.jsonl"
    try:
        with open(path, "wb") as out:  # sparse: no disk space used
            out.truncate(5 * 2**40 + 1)
    except OSError as exc:
        pytest.skip(f"this file system cannot hold a sparse 5 TiB file ({exc.strerror})")
    with pytest.raises(StorageError) as raised:
        S3ObjectStore(5).write_file(parse_uri(f"s3://{bucket}/huge.jsonl"), str(path))
    assert raised.value.message == (
        f"s3://{bucket}/huge.jsonl cannot be written: the file is 5.0 TiB and S3 stores at most 5 TiB in one "
        "object; expected a smaller output (split the input into several files)"
    )
    assert aws_env.count("PUT", f"/{bucket}/huge.jsonl") == 0
    assert aws_env.count("POST", f"/{bucket}/huge.jsonl") == 0  # no multipart upload begun either


def test_write_file_with_credentials_s3_rejects(tmp_path, monkeypatch, aws_env):
    server = moto_support.start_moto(tmp_path, {"INITIAL_NO_AUTH_ACTION_COUNT": "1"}, name="auth-write")
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.url)
        drop_all_clients()
        store = S3ObjectStore(5)
        store.client().create_bucket(Bucket="guarded-write")
        path = tmp_path / "p.jsonl"
        path.write_bytes(b"{}\n")
        with pytest.raises(StorageAccessDenied) as raised:
            store.write_file(parse_uri("s3://guarded-write/p.jsonl"), str(path))
        assert raised.value.message == (
            "s3://guarded-write/p.jsonl cannot be written: access denied (InvalidAccessKeyId); "
            "the function's role needs s3:PutObject on it"
        )
    finally:
        moto_support.stop_moto(server)
        drop_all_clients()


# --- versions, conditional writes, parts ---------------------------------------------------------------


@pytest.fixture
def versioned_bucket(aws_env) -> str:
    name = f"versioned-{uuid.uuid4().hex[:12]}"
    client = S3ObjectStore(5).client()
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture(params=["direct", "botocore"])
def reader(request, monkeypatch) -> S3ObjectStore:
    """The store, reading through the direct GET (as on Lambda) or through botocore."""
    if request.param == "botocore":
        monkeypatch.setattr(s3_direct, "direct_target", lambda uri: None)
    return S3ObjectStore(5)


def _put(store: S3ObjectStore, bucket: str, key: str, body: bytes) -> ObjectVersion:
    answer = store.client().put_object(Bucket=bucket, Key=key, Body=body)
    return ObjectVersion(version_id=answer.get("VersionId"), etag=answer["ETag"])


def test_a_versioned_bucket_gives_exactly_the_version_asked_for(versioned_bucket, reader):
    uri = parse_uri(f"s3://{versioned_bucket}/in/day.csv")
    v1 = _put(reader, versioned_bucket, "in/day.csv", b"v1")
    v2 = _put(reader, versioned_bucket, "in/day.csv", b"v2")
    assert reader.stat(uri) == ObjectVersion(version_id=v2.version_id, etag=v2.etag, size=2)

    with reader.open_read(uri, v1) as stream:
        assert stream.read() == b"v1"  # not the current one
    reader.client().delete_object(Bucket=versioned_bucket, Key="in/day.csv", VersionId=v1.version_id)
    with pytest.raises(ObjectSuperseded) as raised:
        reader.open_read(uri, v1)
    assert raised.value.message == f"{uri.display} no longer has the version that was to be read (NoSuchVersion)"


def test_without_versioning_a_read_is_held_to_the_etag(bucket, reader):
    uri = parse_uri(f"s3://{bucket}/in/day.csv")
    v1 = _put(reader, bucket, "in/day.csv", b"v1")
    assert reader.stat(uri) == ObjectVersion(etag=v1.etag, size=2)
    assert reader.open_read(uri, v1).read() == b"v1"
    v2 = _put(reader, bucket, "in/day.csv", b"v2")

    with pytest.raises(ObjectSuperseded) as raised:
        reader.open_read(uri, v1)
    assert raised.value.message == (
        f"{uri.display} is no longer the version that was to be read: it was replaced since (PreconditionFailed)"
    )
    assert reader.open_read(uri, ObjectVersion(etag=v2.etag.strip('"'))).read() == b"v2"  # as an event sends it
    with pytest.raises(ObjectNotFound):  # deleted: not superseded, gone
        reader.open_read(parse_uri(f"s3://{bucket}/in/never.csv"), v1)
    assert reader.stat(parse_uri(f"s3://{bucket}/in/never.csv")) is None


def test_a_write_on_a_precondition_replaces_only_what_was_found(versioned_bucket, tmp_path):
    store = S3ObjectStore(5)
    uri = parse_uri(f"s3://{versioned_bucket}/out/day.csv.predictions.jsonl")
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"line":2}\n')

    first = store.write_file(uri, str(path), metadata={"input-etag": "abc"}, precondition=Precondition(None))
    assert store.stat(uri) == first._replace(size=11)  # the write does not tell the size; a look does
    with pytest.raises(PreconditionFailed) as raised:  # If-None-Match: * on an object that exists
        store.write_file(uri, str(path), precondition=Precondition(None))
    assert raised.value.message == (
        f"{uri.display} cannot be written: it is no longer as it was found; another writer came first (PreconditionFailed)"
    )
    second = store.write_file(uri, str(path), metadata={"input-etag": "def"}, precondition=Precondition(first))
    with pytest.raises(PreconditionFailed):  # If-Match on a version that is no longer the current one
        store.write_file(uri, str(path), precondition=Precondition(ObjectVersion(etag="0123456789abcdef")))
    head = store.client().head_object(Bucket=versioned_bucket, Key=uri.key)
    assert head["Metadata"] == {"input-etag": "def"} and head["VersionId"] == second.version_id


def test_a_delete_on_a_precondition_removes_only_what_was_found(bucket, tmp_path):
    store = S3ObjectStore(5)
    uri = parse_uri(f"s3://{bucket}/out/day.csv.errors.jsonl")
    stale = _put(store, bucket, uri.key, b"old")
    current = _put(store, bucket, uri.key, b"new")
    with pytest.raises(PreconditionFailed):
        store.delete(uri, precondition=Precondition(ObjectVersion(etag="0123456789abcdef")))
    assert stale.etag != current.etag and store.read_bytes(uri) == b"new"
    store.delete(uri, precondition=Precondition(current))
    assert store.stat(uri) is None
    with pytest.raises(PreconditionFailed, match=r"it was removed since it was found; another writer came first \(NoSuchKey\)$"):
        store.delete(uri, precondition=Precondition(current))


def test_a_file_over_the_part_size_is_a_multipart_upload_committed_once(versioned_bucket, aws_env, tmp_path):
    store = S3ObjectStore(5)
    uri = parse_uri(f"s3://{versioned_bucket}/out/big.jsonl")
    data = b"".join(b'{"line":%d,"prediction":"setosa"}\n' % n for n in range(330_000))  # ~12 MB
    assert 2 * MIN_PART_BYTES < len(data) <= 3 * MIN_PART_BYTES
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)

    written = store.write_file(uri, str(path), metadata={"input-generation": "7"}, part_bytes=MIN_PART_BYTES,
                               precondition=Precondition(None))

    first_part = store.client().head_object(Bucket=versioned_bucket, Key=uri.key, PartNumber=1)
    assert written.etag.endswith('-3"') and first_part["PartsCount"] == 3  # three parts, one object
    assert first_part["ContentLength"] == MIN_PART_BYTES
    assert store.client().head_object(Bucket=versioned_bucket, Key=uri.key)["Metadata"] == {"input-generation": "7"}
    assert store.read_bytes(uri) == data
    assert aws_env.count("PUT", f"/{versioned_bucket}/out/big.jsonl") == 3  # UploadPart; no PutObject
    assert not store.client().list_multipart_uploads(Bucket=versioned_bucket).get("Uploads")


def test_a_multipart_upload_whose_precondition_fails_changes_nothing_and_leaves_no_parts(bucket, tmp_path):
    """CompleteMultipartUpload with If-None-Match: *. (moto 5.2 honours If-None-Match there but
    ignores If-Match, so a stale If-Match on a completion cannot be shown failing against it; the
    store sends it, and PutObject's If-Match is shown above.)"""
    store = S3ObjectStore(5)
    uri = parse_uri(f"s3://{bucket}/out/big.jsonl")
    store.write_bytes(uri, b"published by another run")
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"x" * (MIN_PART_BYTES + 1))

    with pytest.raises(PreconditionFailed):
        store.write_file(uri, str(path), part_bytes=MIN_PART_BYTES, precondition=Precondition(None))

    assert store.read_bytes(uri) == b"published by another run"
    assert not store.client().list_multipart_uploads(Bucket=bucket).get("Uploads")  # aborted


def test_an_sdk_without_conditional_writes_says_which_version_is_needed():
    from botocore.exceptions import ParamValidationError

    error = botocore_error(
        ParamValidationError(report='Unknown parameter in input: "IfMatch", must be one of: ACL, Body'),
        parse_uri("s3://b/out.jsonl"), "written", 5,
    )
    assert "predates S3's conditional writes (If-Match); expected botocore 1.35.69 or later" in error.message


# --- byte ranges and compose (batch fan-out) -----------------------------------------------------------


def test_a_byte_range_of_one_version(versioned_bucket, reader):
    uri = parse_uri(f"s3://{versioned_bucket}/in/rows.csv")
    v1 = _put(reader, versioned_bucket, "in/rows.csv", b"0123456789")
    _put(reader, versioned_bucket, "in/rows.csv", b"abcdefghij")
    assert reader.open_read(uri, v1, start=2, end=5).read() == b"234"
    assert reader.open_read(uri, v1, start=7).read() == b"789"
    assert reader.open_read(uri, v1, start=4, end=4).read() == b""
    assert reader.open_read(uri, start=8, end=10).read() == b"ij"  # the current version


def test_compose_copies_large_sources_on_s3_and_gathers_small_ones(versioned_bucket, aws_env):
    """Sources of 100 B, 12 MiB and 50 B: the first part is the 100 B and the big source's head
    (5 MiB in all, downloaded), the second the rest of the big one, copied by S3 (UploadPartCopy),
    the third the 50 B."""
    store = S3ObjectStore(5)
    client = store.client()
    small, big, tail = b"a" * 100, bytes(range(256)) * (12 * 4096), b"z" * 50
    keys = ["parts/0.jsonl", "parts/1.jsonl", "parts/2.jsonl"]
    for key, data in zip(keys, (small, big, tail), strict=True):
        client.put_object(Bucket=versioned_bucket, Key=key, Body=data)
    uri = parse_uri(f"s3://{versioned_bucket}/out/all.jsonl")

    written = store.compose(uri, [parse_uri(f"s3://{versioned_bucket}/{k}") for k in keys],
                            metadata={"input-etag": "abc"}, precondition=Precondition(None))

    assert store.read_bytes(uri) == small + big + tail
    assert written.etag.endswith('-3"')
    sizes = [client.head_object(Bucket=versioned_bucket, Key=uri.key, PartNumber=n)["ContentLength"] for n in (1, 2, 3)]
    assert sizes == [MIN_PART_BYTES, len(big) - (MIN_PART_BYTES - 100), 50]
    assert aws_env.count("GET", f"/{versioned_bucket}/parts/1.jsonl") == 1  # its head only: the rest was copied
    assert client.head_object(Bucket=versioned_bucket, Key=uri.key)["Metadata"] == {"input-etag": "abc"}
    assert not client.list_multipart_uploads(Bucket=versioned_bucket).get("Uploads")
    with pytest.raises(PreconditionFailed):  # If-None-Match: * on an object that exists now
        store.compose(uri, [parse_uri(f"s3://{versioned_bucket}/{k}") for k in keys], precondition=Precondition(None))
    assert not client.list_multipart_uploads(Bucket=versioned_bucket).get("Uploads")  # aborted


def test_compose_of_small_sources_is_one_put_and_a_missing_source_is_named(bucket, aws_env):
    store = S3ObjectStore(5)
    for n, data in enumerate((b"one\n", b"", b"two\n")):
        store.write_bytes(parse_uri(f"s3://{bucket}/parts/{n}"), data)
    uri = parse_uri(f"s3://{bucket}/out/all")
    store.compose(uri, [parse_uri(f"s3://{bucket}/parts/{n}") for n in range(3)])
    assert store.read_bytes(uri) == b"one\ntwo\n"
    assert aws_env.count("POST", f"/{bucket}/out/all") == 0  # no multipart upload
    with pytest.raises(ObjectNotFound, match=rf"^s3://{bucket}/parts/9 does not exist \(it was to be composed"):
        store.compose(uri, [parse_uri(f"s3://{bucket}/parts/0"), parse_uri(f"s3://{bucket}/parts/9")])
