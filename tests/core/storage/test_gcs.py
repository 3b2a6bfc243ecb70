"""gs:// storage against a real GCS emulator (PyPI ``gcp-storage-emulator``): round trips, streams,
and every failure a caller can act on, each as a core StorageError that names the location."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from core.errors import ObjectNotFound, ObjectSuperseded, PreconditionFailed, StorageAccessDenied, StorageTimeout
from core.model import ModelHolder
from core.settings import Settings
from core.storage import gcs, parse_uri, store_for
from core.storage.gcs import GCSObjectStore
from core.storage.versions import ObjectVersion, Precondition
from tests.gcp_parts import GcsEmulator
from tests.support import free_port

BUCKET = "store-tests"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[GcsEmulator]:
    running = GcsEmulator(free_port(), tmp_path_factory.mktemp("gcs")).start()
    running.create_bucket(BUCKET)
    yield running
    running.stop()


def _store_for(emulator: GcsEmulator, monkeypatch, timeout_seconds: float = 5) -> GCSObjectStore:
    # the SDK reads STORAGE_EMULATOR_HOST when the store builds its client, on the first call
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    return GCSObjectStore(timeout_seconds)


@pytest.fixture
def store(emulator, monkeypatch) -> GCSObjectStore:
    return _store_for(emulator, monkeypatch)


def test_write_then_read_round_trip(store, emulator):
    uri = parse_uri(f"gs://{BUCKET}/out/predictions.csv")
    store.write_bytes(uri, b"id,prediction\n1,setosa\n")
    assert store.read_bytes(uri) == b"id,prediction\n1,setosa\n"
    blob = emulator.client().bucket(BUCKET).get_blob("out/predictions.csv")
    assert blob.content_type == "text/csv"


def test_open_read_streams_lines_and_ranges(store, monkeypatch):
    monkeypatch.setattr(gcs, "READ_CHUNK_BYTES", 64 * 1024)  # many ranges, lines cut across them
    uri = parse_uri(f"gs://{BUCKET}/in/rows.jsonl")
    lines = [f'{{"row": {n}, "values": [{n}.5, 1.0]}}\n' for n in range(20_000)]
    store.write_bytes(uri, "".join(lines).encode())

    with store.open_read(uri) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8")
        assert [next(text) for _ in range(3)] == lines[:3]
        assert sum(1 for _ in text) == len(lines) - 3

    with store.open_read(uri) as stream:
        stream.seek(len(lines[0]))
        assert stream.read(len(lines[1])) == lines[1].encode()
        assert stream.tell() == len(lines[0]) + len(lines[1])


def test_missing_object_names_the_object(store):
    uri = parse_uri(f"gs://{BUCKET}/models/nope.joblib")
    with pytest.raises(ObjectNotFound) as raised:
        store.read_bytes(uri)
    assert raised.value.message == (
        f"gs://{BUCKET}/models/nope.joblib does not exist: no object 'models/nope.joblib' in bucket '{BUCKET}'"
    )
    assert raised.value.uri == f"gs://{BUCKET}/models/nope.joblib"


def test_missing_bucket_names_the_bucket(store):
    uri = parse_uri("gs://no-such-bucket/model.joblib")
    with pytest.raises(ObjectNotFound, match=r"^gs://no-such-bucket/model.joblib does not exist: bucket 'no-such-bucket' does not exist$"):
        store.read_bytes(uri)
    with pytest.raises(ObjectNotFound, match=r"cannot be written: bucket 'no-such-bucket' does not exist$"):
        store.write_bytes(uri, b"x")


def test_open_read_of_a_missing_object_fails_at_open_not_later(store):
    with pytest.raises(ObjectNotFound, match="does not exist"):
        store.open_read(parse_uri(f"gs://{BUCKET}/in/missing.csv"))


def test_readers_see_the_old_or_the_new_object_never_a_mix(store):
    uri = parse_uri(f"gs://{BUCKET}/swap.bin")
    versions = (b"A" * 1_000_000, b"B" * 1_000_000)
    store.write_bytes(uri, versions[0])
    stop = threading.Event()

    def keep_writing() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            store.write_bytes(uri, versions[n % 2])

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        seen = {store.read_bytes(uri) for _ in range(30)}
    finally:
        stop.set()
        writer.join()
    assert seen <= set(versions)


def test_one_client_serves_concurrent_calls(store):
    uri = parse_uri(f"gs://{BUCKET}/shared.bin")
    store.write_bytes(uri, b"shared")
    threads_results: list[bytes] = []
    threads = [threading.Thread(target=lambda: threads_results.append(store.read_bytes(uri))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert threads_results == [b"shared"] * 16


@pytest.mark.timeout(120)  # the SDK's default retry would take about two minutes here
def test_stopped_server_fails_within_the_timeout(tmp_path, monkeypatch):
    stopped = GcsEmulator(free_port(), tmp_path).start()
    stopped.stop()
    store = _store_for(stopped, monkeypatch, timeout_seconds=1)
    uri = parse_uri("gs://models/iris/model.joblib")
    for call in (lambda: store.read_bytes(uri), lambda: store.open_read(uri), lambda: store.write_bytes(uri, b"x")):
        with pytest.raises(StorageTimeout) as raised:
            call()
        assert "gs://models/iris/model.joblib cannot be" in raised.value.message
        assert "did not answer within 1 s (STORAGE_TIMEOUT_SECONDS)" in raised.value.message
        assert str(stopped.port) not in raised.value.message


@pytest.mark.timeout(120)
def test_frozen_server_times_out_then_the_next_call_succeeds(tmp_path, monkeypatch):
    frozen = GcsEmulator(free_port(), tmp_path).start()
    try:
        frozen.client().create_bucket("models", timeout=10)
        store = _store_for(frozen, monkeypatch, timeout_seconds=1)
        uri = parse_uri("gs://models/model.joblib")
        store.write_bytes(uri, b"model bytes")

        os.kill(frozen.process.pid, signal.SIGSTOP)  # accepts connections, never answers
        try:
            with pytest.raises(StorageTimeout, match=r"did not answer within 1 s"):
                store.read_bytes(uri)
        finally:
            os.kill(frozen.process.pid, signal.SIGCONT)
        assert store.read_bytes(uri) == b"model bytes"
    finally:
        frozen.stop()


def test_missing_credentials_is_access_denied_without_naming_the_file(tmp_path, monkeypatch):
    # no emulator: the SDK looks for Application Default Credentials, and the file is not there
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    key_file = tmp_path / "secret-service-account-key.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    store = GCSObjectStore(2)
    with pytest.raises(StorageAccessDenied) as raised:
        store.read_bytes(parse_uri("gs://models/model.joblib"))
    message = raised.value.message
    assert message.startswith("gs://models/model.joblib cannot be read: no usable Google Cloud credentials were found")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message
    assert "secret-service-account-key" not in message and str(tmp_path) not in message


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout_seconds must be a positive number of seconds; got 0"):
        GCSObjectStore(0)


def test_registry_builds_one_gcs_store_per_timeout():
    uri = parse_uri("gs://models/a.joblib")
    assert isinstance(store_for(uri, 7.5), GCSObjectStore)
    assert store_for(uri, 7.5) is store_for(parse_uri("gs://other/b.joblib"), 7.5)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_model_is_read_once_however_many_callers_wait(emulator, monkeypatch, demo_model_path):
    emulator.client().bucket(BUCKET).blob("iris.joblib").upload_from_filename(str(demo_model_path), timeout=10)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    reads: list[str] = []

    class CountingStore(GCSObjectStore):
        def read_bytes(self, uri):
            reads.append(uri.display)
            return super().read_bytes(uri)

        def open_read(self, uri):  # how a model is read (core/model/fetch.py)
            reads.append(uri.display)
            return super().open_read(uri)

    settings = Settings.from_env({"MODEL_URI": f"gs://{BUCKET}/iris.joblib"})
    holder = ModelHolder(settings, store_for=lambda uri, timeout: CountingStore(timeout))
    with_models = []
    threads = [threading.Thread(target=lambda: with_models.append(holder.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r for r in reads if not r.endswith(".manifest.json")] == [f"gs://{BUCKET}/iris.joblib"]
    assert len({id(model) for model in with_models}) == 1
    assert holder.get().feature_names == ("sepal_length", "sepal_width", "petal_length", "petal_width")


# --- write_file: what the batch engine publishes its outputs with ------------------------------


def test_write_file_uploads_a_local_file_and_replaces_the_old_object(store, emulator, tmp_path):
    uri = parse_uri(f"gs://{BUCKET}/predictions/day.csv.predictions.jsonl")
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b'{"line":2,"prediction":"setosa"}\n' * 1000)
    store.write_file(uri, str(path))
    path.write_bytes(b'{"line":2,"prediction":"virginica"}\n')
    store.write_file(uri, str(path))
    assert store.read_bytes(uri) == b'{"line":2,"prediction":"virginica"}\n'
    blob = emulator.client().bucket(BUCKET).get_blob("predictions/day.csv.predictions.jsonl")
    assert blob.content_type == "application/jsonl"


def test_write_file_sends_a_large_file_in_pieces_and_it_arrives_whole(store, emulator, tmp_path):
    path = tmp_path / "big.jsonl"
    data = b"".join(b'{"line":%d,"prediction":"setosa"}\n' % n for n in range(300_000))  # ~10 MB: resumable
    assert len(data) > 8 * 1024 * 1024
    path.write_bytes(data)
    uri = parse_uri(f"gs://{BUCKET}/predictions/big.jsonl")
    store.write_file(uri, str(path), part_bytes=200 * 1024)  # rounded up to 256 KiB, the smallest piece GCS allows
    assert emulator.client().bucket(BUCKET).blob("predictions/big.jsonl").download_as_bytes() == data


def test_write_file_to_a_missing_bucket_names_the_bucket(store, tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"{}\n")
    with pytest.raises(ObjectNotFound) as raised:
        store.write_file(parse_uri("gs://no-such-bucket/predictions/out.jsonl"), str(path))
    assert raised.value.message == (
        "gs://no-such-bucket/predictions/out.jsonl cannot be written: bucket 'no-such-bucket' does not exist"
    )


def test_delete_removes_the_object_and_a_second_delete_succeeds(store, emulator):
    uri = parse_uri(f"gs://{BUCKET}/out/partial.jsonl")
    store.write_bytes(uri, b"{}\n")
    store.delete(uri)
    assert emulator.client().bucket(BUCKET).get_blob("out/partial.jsonl") is None
    store.delete(uri)  # already gone: a repeated cleanup succeeds
    with pytest.raises(ObjectNotFound, match=r"cannot be deleted: bucket 'no-such-bucket' does not exist$"):
        store.delete(parse_uri("gs://no-such-bucket/out/partial.jsonl"))


# --- generations ------------------------------------------------------------------------------------------
# The emulator keeps generations and metadata, and answers stat truly; it ignores ?generation= on a
# read (it serves the current object) and ifGenerationMatch on writes and deletes (never 412). So
# a pinned read and a conditional write are shown here as far as the emulator goes, and their
# failures through the store's own mapping, fed the SDK's exceptions.


def test_stat_names_the_current_generation_and_writes_record_metadata(store, emulator, tmp_path):
    uri = parse_uri(f"gs://{BUCKET}/in/day.csv")
    assert store.stat(uri) is None
    first = emulator.upload(BUCKET, "in/day.csv", b"v1")
    assert store.stat(uri) == ObjectVersion(generation=first, size=2)
    second = emulator.upload(BUCKET, "in/day.csv", b"v2")
    assert second > first and store.stat(uri) == ObjectVersion(generation=second, size=2)
    assert store.open_read(uri, ObjectVersion(generation=second)).read() == b"v2"

    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"line":2}\n')
    out = parse_uri(f"gs://{BUCKET}/out/day.csv.predictions.jsonl")
    written = store.write_file(out, str(path), metadata={"input-generation": str(second)}, precondition=Precondition(None))
    blob = emulator.client().bucket(BUCKET).get_blob("out/day.csv.predictions.jsonl")
    assert blob.metadata == {"input-generation": str(second)} and written == ObjectVersion(generation=blob.generation)


def test_a_gone_generation_and_a_failed_precondition_are_mapped(store, emulator):
    from google.api_core import exceptions as api_exceptions

    emulator.upload(BUCKET, "in/kept.csv", b"current")
    kept, gone = parse_uri(f"gs://{BUCKET}/in/kept.csv"), parse_uri(f"gs://{BUCKET}/in/deleted.csv")
    # a 404 for a generation while the object exists: that generation was replaced
    superseded = store._storage_error(api_exceptions.NotFound("No such object"), kept, "read")
    assert isinstance(superseded, ObjectSuperseded)
    assert superseded.message == f"{kept.display} no longer has the generation that was to be read (HTTP 404)"
    assert isinstance(store._storage_error(api_exceptions.NotFound("No such object"), gone, "read"), ObjectNotFound)
    # 412: ifGenerationMatch did not hold
    failed = store._storage_error(api_exceptions.PreconditionFailed("conditionNotMet"), kept, "written")
    assert isinstance(failed, PreconditionFailed)
    assert failed.message == (
        f"{kept.display} cannot be written: it is no longer the generation that was found; another writer came "
        "first (HTTP 412)"
    )
    assert isinstance(store._storage_error(api_exceptions.PreconditionFailed("x"), kept, "read"), ObjectSuperseded)


def test_the_emulator_still_ignores_preconditions(store, emulator, tmp_path):
    """A tripwire: when this fails, the emulator enforces ifGenerationMatch, and the race tests of
    tests/core/batch/test_versions.py can run on Cloud Storage too."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"x")
    uri = parse_uri(f"gs://{BUCKET}/out/ignored.jsonl")
    store.write_file(uri, str(path))
    store.write_file(uri, str(path), precondition=Precondition(None))  # GCS: 412
    assert store.stat(uri) is not None


def test_a_byte_range_is_read_in_ranges(store, monkeypatch):
    monkeypatch.setattr(gcs, "READ_CHUNK_BYTES", 4)
    uri = parse_uri(f"gs://{BUCKET}/in/range.csv")
    store.write_bytes(uri, b"0123456789abcdef")
    assert store.open_read(uri, start=3, end=13).read() == b"3456789abc"
    assert store.open_read(uri, start=14).read() == b"ef"
    assert store.open_read(uri, start=5, end=5).read() == b""


def test_compose_of_more_than_32_sources_is_a_tree_whose_temporaries_are_removed(store, emulator):
    pieces = [f'{{"line":{n}}}\n'.encode() for n in range(70)]
    sources = []
    for n, data in enumerate(pieces):
        sources.append(parse_uri(f"gs://{BUCKET}/compose/parts/{n:05d}"))
        store.write_bytes(sources[-1], data)
    uri = parse_uri(f"gs://{BUCKET}/compose/out/all.jsonl")

    written = store.compose(uri, sources, metadata={"input-generation": "7"}, precondition=Precondition(None))

    blob = emulator.client().bucket(BUCKET).get_blob("compose/out/all.jsonl")
    assert blob.metadata == {"input-generation": "7"} and written.generation == blob.generation
    assert blob.download_as_bytes() == b"".join(pieces)
    assert [b.name for b in emulator.client().list_blobs(BUCKET, prefix="compose/out/")] == ["compose/out/all.jsonl"]
    with pytest.raises(ObjectNotFound, match=r"compose/parts/99999 does not exist \(it was to be composed"):
        store.compose(uri, [sources[0], parse_uri(f"gs://{BUCKET}/compose/parts/99999")])
    store.compose(uri, [])
    assert store.read_bytes(uri) == b""
