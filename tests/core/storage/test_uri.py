from __future__ import annotations

import pytest

from core.storage import parse_uri


@pytest.mark.parametrize(
    "text, scheme, key, display",
    [
        ("file:///srv/m/model.joblib", "file", "/srv/m/model.joblib", "file://.../model.joblib"),
        ("file://localhost/srv/model.joblib", "file", "/srv/model.joblib", "file://.../model.joblib"),
        ("file:///srv/my%20models/model%201.joblib", "file", "/srv/my models/model 1.joblib", "file://.../model 1.joblib"),
    ],
)
def test_file_uris(text, scheme, key, display):
    uri = parse_uri(text)
    assert (uri.scheme, uri.key, uri.display) == (scheme, key, display)


def test_display_never_shows_the_folder():
    assert "srv" not in parse_uri("file:///srv/secret-folder/model.joblib").display


@pytest.mark.parametrize(
    "text, bucket, key",
    [
        ("s3://my-bucket/models/iris.joblib", "my-bucket", "models/iris.joblib"),
        ("gs://my-bucket/a/b/c.joblib", "my-bucket", "a/b/c.joblib"),
        ("az://models/iris v2.joblib", "models", "iris v2.joblib"),
    ],
)
def test_bucket_uris(text, bucket, key):
    uri = parse_uri(text)
    assert (uri.bucket, uri.key) == (bucket, key)
    assert uri.display == text  # bucket locations are not server paths: shown whole


@pytest.mark.parametrize("text", ["http://x/y", "s4://b/k", "C:/models/m.joblib"])
def test_unknown_schemes_are_refused_with_the_list(text):
    with pytest.raises(ValueError, match="expected one of file://, s3://, gs://, az://"):
        parse_uri(text)


@pytest.mark.parametrize("text", ["s3://bucket", "s3://bucket/", "gs:///key", "az://container"])
def test_bucket_uris_need_both_parts(text):
    with pytest.raises(ValueError, match="with both parts present"):
        parse_uri(text)


def test_missing_sdk_is_named_with_its_extra(monkeypatch):
    import importlib.util

    from core.storage import missing_sdk

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "boto3" else real_find_spec(name, *a))
    monkeypatch.setattr("core.installed._on_sys_path", lambda module: False)  # as if no site-packages had it
    assert missing_sdk("s3") == "s3:// locations need boto3, which is not installed; install serverless-ml[aws]"
    assert missing_sdk("file") is None
