"""The one error mapping and stream wrapper every backend uses (core/storage/sdk_errors.py), on
in-memory bodies; each backend's own mapping is tested against its emulator."""

from __future__ import annotations

import io

import pytest

from core.errors import ObjectNotFound, StorageError, StorageTimeout
from core.storage import parse_uri
from core.storage.sdk_errors import mapped_errors, mapped_stream
from core.storage.uri import StorageURI

URI = parse_uri("s3://bucket/rows.csv")


class ProviderTimeout(Exception):
    """Stands for an SDK's exception type."""


def to_storage_error(exc: Exception, uri: StorageURI, done: str) -> StorageError | None:
    if isinstance(exc, ProviderTimeout):
        return StorageTimeout(f"{uri.display} cannot be {done}: timed out", uri.display)
    return None


def test_a_provider_exception_becomes_the_mapped_error_without_the_providers_text():
    with pytest.raises(StorageTimeout) as raised, mapped_errors(to_storage_error, URI, "written"):
        raise ProviderTimeout("https://host.example/bucket?X-Amz-Signature=secret")
    assert raised.value.message == "s3://bucket/rows.csv cannot be written: timed out"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_what_the_mapper_does_not_know_propagates_unchanged():
    with pytest.raises(ZeroDivisionError), mapped_errors(to_storage_error, URI, "read"):
        raise ZeroDivisionError()


def test_a_core_error_raised_in_the_block_passes_as_it_is():
    error = ObjectNotFound("s3://bucket/rows.csv does not exist", "s3://bucket/rows.csv")
    with pytest.raises(ObjectNotFound) as raised, mapped_errors(to_storage_error, URI, "read"):
        raise error
    assert raised.value is error


class FailingBody:
    """A download that gives its bytes and then fails, with no close (like Azure's downloader)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if not chunk:
            raise ProviderTimeout("connection reset by 10.0.0.1")
        return chunk


def test_a_failing_read_of_the_stream_is_the_mapped_error():
    stream = mapped_stream(FailingBody(b"a,b\n1,2\n"), to_storage_error, URI)
    assert stream.readline() == b"a,b\n"
    with pytest.raises(StorageTimeout, match="^s3://bucket/rows.csv cannot be read: timed out$"):
        stream.read()
    stream.close()  # a body without close() is fine


def test_the_stream_seeks_where_the_body_can_and_closes_the_body():
    body = io.BytesIO(b"0123456789")
    with mapped_stream(body, to_storage_error, URI) as stream:
        assert stream.seekable()
        stream.seek(4)
        assert stream.read(3) == b"456"
        assert stream.tell() == 7
    assert body.closed


def test_a_body_that_cannot_seek_gives_a_stream_that_cannot_either():
    stream = mapped_stream(FailingBody(b"x"), to_storage_error, URI)
    assert not stream.seekable()
    with pytest.raises(io.UnsupportedOperation):
        stream.seek(0)
