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


@pytest.mark.parametrize("text", ["s3://bucket/key", "gs://bucket/key", "az://container/blob", "http://x/y"])
def test_schemes_without_a_backend_yet_are_refused_with_the_list(text):
    with pytest.raises(ValueError, match="expected one of file://"):
        parse_uri(text)
