"""az:// storage through azure-storage-blob, against Azurite (started here on a free port)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest

from core.errors import (
    ObjectNotFound,
    ObjectSuperseded,
    PreconditionFailed,
    StorageAccessDenied,
    StorageError,
    StorageTimeout,
)
from core.storage import store_for
from core.storage.azure_blob import AzureBlobObjectStore
from core.storage.parts import MIN_PART_BYTES
from core.storage.uri import parse_uri
from core.storage.versions import ObjectVersion, Precondition
from tests.azure_function.azurite import Azurite


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    server = Azurite(tmp_path_factory.mktemp("azurite-storage")).start()
    server.put("data", "hello.txt", b"hello, blob")
    yield server
    server.stop()


@pytest.fixture
def store(azurite) -> AzureBlobObjectStore:
    return AzureBlobObjectStore(5.0, environ={"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string})


def test_the_registry_builds_this_store_for_az_uris(monkeypatch, azurite):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    # a timeout no other test uses: the registry keeps one store per (scheme, timeout)
    built = store_for(parse_uri("az://data/hello.txt"), 7.125)
    assert isinstance(built, AzureBlobObjectStore)
    assert built.read_bytes(parse_uri("az://data/hello.txt")) == b"hello, blob"


def test_read_bytes(store):
    assert store.read_bytes(parse_uri("az://data/hello.txt")) == b"hello, blob"


def test_write_bytes_replaces_the_whole_blob(store):
    uri = parse_uri("az://data/out/result.jsonl")
    store.write_bytes(uri, b'{"row": 1}\n' * 1000)
    store.write_bytes(uri, b'{"row": 2}\n')
    assert store.read_bytes(uri) == b'{"row": 2}\n'


def test_open_read_streams_a_large_blob_in_pieces(store, azurite):
    lines = b"".join(b"%d,%d\n" % (i, i * i) for i in range(400_000))  # about 5 MB
    azurite.put("data", "big.csv", lines)
    with store.open_read(parse_uri("az://data/big.csv")) as stream:
        assert stream.read(6) == b"0,0\n1,"
        text = io.TextIOWrapper(stream, encoding="utf-8")
        rest = list(text)
    assert rest[0] == "1\n" and rest[-1] == "399999,159999200001\n"
    assert len(rest) == 400_000 - 1


def test_a_missing_blob_is_object_not_found(store):
    uri = parse_uri("az://data/absent.joblib")
    for call in (store.read_bytes, store.open_read):
        with pytest.raises(ObjectNotFound) as failure:
            call(uri)
        assert failure.value.message == "az://data/absent.joblib does not exist"
        assert failure.value.uri == "az://data/absent.joblib"


def test_a_missing_container_is_named(store):
    with pytest.raises(ObjectNotFound) as failure:
        store.read_bytes(parse_uri("az://nowhere/model.joblib"))
    assert failure.value.message == "az://nowhere/model.joblib cannot be read: there is no container 'nowhere'"
    with pytest.raises(ObjectNotFound, match="cannot be written: there is no container 'nowhere'"):
        store.write_bytes(parse_uri("az://nowhere/out.csv"), b"x")


WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="


def test_a_refused_account_key_is_access_denied_without_the_key(azurite):
    connection_string = azurite.connection_string.replace(azurite.key, WRONG_KEY)
    store = AzureBlobObjectStore(5.0, environ={"AZURE_STORAGE_CONNECTION_STRING": connection_string})
    with pytest.raises(StorageAccessDenied) as failure:
        store.read_bytes(parse_uri("az://data/hello.txt"))
    message = failure.value.message
    assert message.startswith("az://data/hello.txt cannot be read: access denied: the storage account refused")
    assert "403" in message
    assert WRONG_KEY not in message and "AccountKey" not in message


def test_a_key_that_is_not_base64_is_access_denied(azurite):
    connection_string = azurite.connection_string.replace(azurite.key, "not-a-key!")
    store = AzureBlobObjectStore(5.0, environ={"AZURE_STORAGE_CONNECTION_STRING": connection_string})
    with pytest.raises(StorageAccessDenied, match="the account key in the connection string is not valid base64"):
        store.read_bytes(parse_uri("az://data/hello.txt"))


def test_a_malformed_connection_string_is_named_but_never_shown():
    secret = "AccountKey=c2VjcmV0LXNlY3JldC1zZWNyZXQ=;no-equals-sign-here"
    store = AzureBlobObjectStore(5.0, environ={"AZURE_STORAGE_CONNECTION_STRING": secret})
    with pytest.raises(StorageError) as failure:
        store.read_bytes(parse_uri("az://data/hello.txt"))
    assert "AZURE_STORAGE_CONNECTION_STRING is not a valid connection string" in failure.value.message
    assert "c2VjcmV0" not in failure.value.message


def test_no_account_configured_names_both_settings():
    with pytest.raises(StorageError) as failure:
        AzureBlobObjectStore(5.0, environ={}).read_bytes(parse_uri("az://data/hello.txt"))
    assert failure.value.message == (
        "az://data/hello.txt cannot be reached: no Azure Storage account is configured; set "
        "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL"
    )


def test_an_account_url_must_be_https():
    store = AzureBlobObjectStore(5.0, environ={"AZURE_STORAGE_ACCOUNT_URL": "http://127.0.0.1:1/devstoreaccount1"})
    with pytest.raises(StorageError, match="AZURE_STORAGE_ACCOUNT_URL is not an https:// URL"):
        store.read_bytes(parse_uri("az://data/hello.txt"))


def run_fresh(code: str, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_azure_identity_is_imported_only_for_an_account_url(azurite):
    """With an account URL and no usable credential the answer is access denied, saying what to do.

    AZURE_TOKEN_CREDENTIALS limits DefaultAzureCredential to environment variables (none are
    set), so the test never reaches for a managed-identity endpoint or a login service.
    """
    outcome = run_fresh(
        f"""
        import json, sys
        from core.errors import StorageError
        from core.storage.azure_blob import AzureBlobObjectStore
        from core.storage.uri import parse_uri
        uri = parse_uri("az://data/hello.txt")
        data = AzureBlobObjectStore(5.0, environ={{"AZURE_STORAGE_CONNECTION_STRING": {azurite.connection_string!r}}}).read_bytes(uri)
        identity_with_key = "azure.identity" in sys.modules
        try:
            AzureBlobObjectStore(5.0, environ={{"AZURE_STORAGE_ACCOUNT_URL": "https://127.0.0.1:1/devstoreaccount1"}}).read_bytes(uri)
        except StorageError as exc:
            failure = [type(exc).__name__, exc.message]
        print(json.dumps({{"data": data.decode(), "identity_with_key": identity_with_key,
                          "identity_with_url": "azure.identity" in sys.modules, "failure": failure}}))
        """,
        AZURE_TOKEN_CREDENTIALS="EnvironmentCredential",
    )
    assert outcome["data"] == "hello, blob"
    assert outcome["identity_with_key"] is False and outcome["identity_with_url"] is True
    kind, message = outcome["failure"]
    assert kind == "StorageAccessDenied"
    assert message.startswith("az://data/hello.txt cannot be read: access denied: DefaultAzureCredential got no token")


@pytest.fixture
def own_azurite(tmp_path):
    server = Azurite(tmp_path).start()
    server.put("data", "hello.txt", b"hello, blob")
    yield server
    server.stop()


@pytest.mark.timeout(30)
def test_a_stopped_service_fails_at_once_and_the_same_store_recovers(own_azurite):
    store = AzureBlobObjectStore(2.0, environ={"AZURE_STORAGE_CONNECTION_STRING": own_azurite.connection_string})
    uri = parse_uri("az://data/hello.txt")
    assert store.read_bytes(uri) == b"hello, blob"  # a pooled connection is now open
    own_azurite.stop()
    with pytest.raises(StorageError) as failure:
        store.read_bytes(uri)
    assert failure.value.message == "az://data/hello.txt cannot be read: the storage service cannot be reached"
    own_azurite.start()
    own_azurite.put("data", "hello.txt", b"hello again")
    assert store.read_bytes(uri) == b"hello again"


@pytest.mark.timeout(30)
def test_a_service_that_stops_answering_times_out(own_azurite):
    store = AzureBlobObjectStore(1.0, environ={"AZURE_STORAGE_CONNECTION_STRING": own_azurite.connection_string})
    uri = parse_uri("az://data/hello.txt")
    own_azurite.freeze()
    with pytest.raises(StorageTimeout) as failure:
        store.read_bytes(uri)
    assert failure.value.message == (
        "az://data/hello.txt cannot be read: the storage service did not answer within the 1 s allowed "
        "(STORAGE_TIMEOUT_SECONDS)"
    )
    own_azurite.thaw()
    assert store.read_bytes(uri) == b"hello, blob"


# --- write_file: what the batch engine publishes its outputs with ------------------------------


def test_write_file_uploads_a_local_file_and_replaces_the_old_blob(store, azurite, tmp_path):
    uri = parse_uri("az://data/predictions/day.csv.predictions.jsonl")
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b'{"line":2,"prediction":"setosa"}\n' * 1000)
    store.write_file(uri, str(path))
    path.write_bytes(b'{"line":2,"prediction":"virginica"}\n')
    store.write_file(uri, str(path))
    downloaded = azurite.client().get_blob_client("data", "predictions/day.csv.predictions.jsonl").download_blob()
    assert downloaded.readall() == b'{"line":2,"prediction":"virginica"}\n'


def test_write_file_sends_a_file_over_the_part_size_as_blocks_and_it_arrives_whole(store, azurite, tmp_path):
    path = tmp_path / "big.jsonl"
    data = b"".join(b'{"line":%d,"prediction":"setosa"}\n' % n for n in range(300_000))  # ~11 MB: 3 blocks
    assert 2 * MIN_PART_BYTES < len(data) <= 3 * MIN_PART_BYTES
    path.write_bytes(data)
    written = store.write_file(parse_uri("az://data/predictions/big.jsonl"), str(path), part_bytes=MIN_PART_BYTES)
    blob = azurite.client().get_blob_client("data", "predictions/big.jsonl")
    assert blob.download_blob().readall() == data
    blocks, uncommitted = blob.get_block_list("all")
    assert [block.size for block in blocks] == [MIN_PART_BYTES, MIN_PART_BYTES, len(data) - 2 * MIN_PART_BYTES]
    assert uncommitted == []  # staged, then committed once
    assert written.plain_etag == blob.get_blob_properties().etag.strip('"')


def test_write_file_up_to_the_part_size_is_one_put_blob(store, azurite, tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_bytes(b'{"line":2,"prediction":"setosa"}\n' * 1000)
    store.write_file(parse_uri("az://data/predictions/small.jsonl"), str(path), part_bytes=MIN_PART_BYTES)
    blocks, _ = azurite.client().get_blob_client("data", "predictions/small.jsonl").get_block_list("all")
    assert blocks == []  # Put Blob: no block list


def test_write_file_to_a_missing_container_names_it(store, tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"{}\n")
    with pytest.raises(ObjectNotFound) as failure:
        store.write_file(parse_uri("az://nowhere/predictions/out.jsonl"), str(path))
    assert failure.value.message == "az://nowhere/predictions/out.jsonl cannot be written: there is no container 'nowhere'"


def test_delete_removes_the_blob_and_a_second_delete_succeeds(store):
    uri = parse_uri("az://data/out/partial.jsonl")
    store.write_bytes(uri, b"{}\n")
    store.delete(uri)
    with pytest.raises(ObjectNotFound):
        store.read_bytes(uri)
    store.delete(uri)  # already gone: a repeated cleanup succeeds
    with pytest.raises(ObjectNotFound, match="cannot be deleted: there is no container 'nowhere'"):
        store.delete(parse_uri("az://nowhere/out.csv"))


# --- versions and conditional writes ----------------------------------------------------------------


def test_a_read_is_held_to_the_etag_it_is_given(store, azurite):
    uri = parse_uri("az://data/in/day.csv")
    first = azurite.put("data", "in/day.csv", b"v1")
    assert store.stat(uri) == ObjectVersion(etag=first, size=2)
    # as Event Grid sends it: unquoted
    assert store.open_read(uri, ObjectVersion(etag=first.strip('"'))).read() == b"v1"
    second = azurite.put("data", "in/day.csv", b"v2")
    assert second != first

    with pytest.raises(ObjectSuperseded) as raised:
        store.open_read(uri, ObjectVersion(etag=first))
    assert raised.value.message == "az://data/in/day.csv is no longer the version that was to be read: it was replaced"
    assert store.open_read(uri, ObjectVersion(etag=second)).read() == b"v2"
    assert store.stat(parse_uri("az://data/in/never.csv")) is None


def test_a_write_on_a_precondition_replaces_only_what_was_found(store, tmp_path):
    uri = parse_uri("az://data/out/day.csv.predictions.jsonl")
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"line":2}\n')
    first = store.write_file(uri, str(path), metadata={"input-etag": "0x8D4E"}, precondition=Precondition(None))
    assert store.stat(uri) == ObjectVersion(etag=first.etag, size=11)

    with pytest.raises(PreconditionFailed) as raised:  # If-None-Match: * on a blob that exists: 409
        store.write_file(uri, str(path), precondition=Precondition(None))
    assert raised.value.message == (
        "az://data/out/day.csv.predictions.jsonl cannot be written: it exists now, though it did not when it was "
        "looked for; another writer came first (BlobAlreadyExists)"
    )
    second = store.write_file(uri, str(path), metadata={"input-etag": "0x8D4F"}, precondition=Precondition(first))
    with pytest.raises(PreconditionFailed, match="it is no longer as it was found; another writer came first$"):
        store.write_file(uri, str(path), precondition=Precondition(first))  # If-Match on the replaced one: 412
    properties = store._blob(uri).get_blob_properties()
    assert properties.metadata == {"input_etag": "0x8D4F"}  # names are C# identifiers on Azure
    assert ObjectVersion(etag=properties.etag).same_as(second)


def test_blocks_are_committed_only_if_the_precondition_holds(store, azurite, tmp_path):
    uri = parse_uri("az://data/out/big.jsonl")
    current = azurite.put("data", "out/big.jsonl", b"published by another run")
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"x" * (MIN_PART_BYTES + 1))

    with pytest.raises(PreconditionFailed):
        store.write_file(uri, str(path), part_bytes=MIN_PART_BYTES, precondition=Precondition(ObjectVersion(etag='"0x1"')))
    assert store.read_bytes(uri) == b"published by another run"

    store.write_file(uri, str(path), part_bytes=MIN_PART_BYTES, precondition=Precondition(ObjectVersion(etag=current)))
    blocks, uncommitted = azurite.client().get_blob_client("data", "out/big.jsonl").get_block_list("all")
    assert [block.size for block in blocks] == [MIN_PART_BYTES, 1] and uncommitted == []


def test_a_delete_on_a_precondition_removes_only_what_was_found(store, azurite):
    uri = parse_uri("az://data/out/day.csv.errors.jsonl")
    current = azurite.put("data", "out/day.csv.errors.jsonl", b"{}\n")
    with pytest.raises(PreconditionFailed):
        store.delete(uri, precondition=Precondition(ObjectVersion(etag='"0x1"')))
    store.delete(uri, precondition=Precondition(ObjectVersion(etag=current)))
    assert store.stat(uri) is None
    with pytest.raises(PreconditionFailed):  # gone: Azurite answers 412 for If-Match on a missing blob
        store.delete(uri, precondition=Precondition(ObjectVersion(etag=current)))


# --- byte ranges and compose (batch fan-out) ---------------------------------------------------------


def test_a_byte_range_of_one_version(store, azurite):
    uri = parse_uri("az://data/in/range.csv")
    etag = azurite.put("data", "in/range.csv", b"0123456789")
    assert store.open_read(uri, ObjectVersion(etag=etag), start=2, end=5).read() == b"234"
    assert store.open_read(uri, start=7).read() == b"789"
    assert store.open_read(uri, start=4, end=4).read() == b""


def test_compose_stages_each_source_from_its_url_and_commits_once(store, azurite):
    pieces = [b'{"line":2}\n', b"", b'{"line":3}\n' * 100]
    sources = []
    for n, data in enumerate(pieces):
        azurite.put("data", f"compose/parts/{n}", data)
        sources.append(parse_uri(f"az://data/compose/parts/{n}"))
    uri = parse_uri("az://data/compose/all.jsonl")

    written = store.compose(uri, sources, metadata={"input-etag": "0x8D4E"}, precondition=Precondition(None))

    blob = azurite.client().get_blob_client("data", "compose/all.jsonl")
    assert blob.download_blob().readall() == b"".join(pieces)
    committed, uncommitted = blob.get_block_list("all")
    assert [block.size for block in committed] == [len(pieces[0]), len(pieces[2])] and uncommitted == []
    properties = blob.get_blob_properties()
    assert properties.metadata == {"input_etag": "0x8D4E"} and written.etag == properties.etag
    with pytest.raises(PreconditionFailed):
        store.compose(uri, sources, precondition=Precondition(None))
    with pytest.raises(ObjectNotFound, match=r"^az://data/compose/parts/9 does not exist \(it was to be composed"):
        store.compose(uri, [sources[0], parse_uri("az://data/compose/parts/9")])
    assert blob.download_blob().readall() == b"".join(pieces)
