"""A run reads the version its event names and never publishes over a newer one (core/batch/publish.py),
on real local storage: moto's S3 server with versioning on (versionIds) and off (eTags), Azurite
(eTags) and the GCS emulator (generations).

The GCS emulator ignores ?generation= on reads (it serves the current object) and ifGenerationMatch
on writes (it never answers 412): on it, a late event's run is still held back, by the check of
the input's current generation before publishing, but the race in which another run publishes
between that check and the write cannot be shown, and is not run there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from core.batch.engine import BatchResult, run_batch
from core.model import ModelHolder
from core.settings import Settings
from core.storage import StorageURI, store_for
from core.storage.parts import MIN_PART_BYTES
from core.storage.versions import ObjectVersion
from tests.core.batch.places import Place, open_place
from tests.support import CSV_WITH_A_BAD_ROW, GOOD_CSV

KEY = "incoming/day.csv"
PREDICTIONS = "predictions/incoming/day.csv.predictions.jsonl"
ERRORS = "predictions/incoming/day.csv.errors.jsonl"
V1 = CSV_WITH_A_BAD_ROW  # line 3 fails: v1 has an errors file
V2 = GOOD_CSV + "5.9,3.0,4.2,1.5\n"  # no failed line: v2 has none


PLACES = ["s3-versioned", "s3-etag", "azure", "gcs"]


@pytest.fixture(params=PLACES)
def place(request, monkeypatch) -> Place:
    return open_place(request.param, request, monkeypatch)


@pytest.fixture
def run(demo_model_uri):
    """``run(place, version, **settings)``: the engine on ``KEY`` of ``place`` at ``version``, as a
    trigger calls it."""

    def go(place: Place, version: ObjectVersion | None, store=store_for, **env: str) -> BatchResult:
        settings = Settings.from_env({"MODEL_URI": demo_model_uri, "STORAGE_TIMEOUT_SECONDS": "5", **env})
        return run_batch(place.uri(KEY), ModelHolder(settings), settings, version=version, store_for=store)

    return go


def lines(data: bytes | None) -> list[dict]:
    assert data is not None, "no such output"
    return [json.loads(line) for line in data.decode().splitlines()]


def assert_v2_published(place: Place, v2: ObjectVersion) -> None:
    assert [row["line"] for row in lines(place.get(PREDICTIONS))] == [2, 3, 4]  # v2's three rows, all good
    assert place.get(ERRORS) is None  # v1's errors file is not left beside them
    assert _recorded(place.metadata(PREDICTIONS)) == _recorded(v2.metadata())


def _recorded(metadata: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in metadata.items()}  # Azure's names use "_"


@pytest.mark.parametrize("order", ["v2 then v1", "v1 then v2"])
def test_events_for_v1_and_v2_in_either_order_leave_v2s_predictions(place, run, order):
    v1 = place.put(KEY, V1)
    v2 = place.put(KEY, V2)
    events = [v2, v1] if order == "v2 then v1" else [v1, v2]

    results = {version: run(place, version) for version in events}

    assert results[v2].skipped is None and results[v2].rows_predicted == 3
    assert results[v1].skipped.startswith("superseded: ")
    assert results[v1].predictions_uri is None
    assert_v2_published(place, v2)


def test_a_run_that_published_before_the_newer_upload_is_replaced_and_its_late_repeat_changes_nothing(place, run):
    v1 = place.put(KEY, V1)
    assert run(place, v1).rows_failed == 1
    assert place.get(ERRORS) is not None
    assert _recorded(place.metadata(ERRORS)) == _recorded(v1.metadata())

    v2 = place.put(KEY, V2)
    assert run(place, v2).skipped is None
    published = place.get(PREDICTIONS)
    late = run(place, v1)  # v1's event again, delivered late

    assert late.skipped.startswith("superseded: ")
    assert place.get(PREDICTIONS) == published
    assert_v2_published(place, v2)


def test_a_repeated_event_for_the_same_version_gives_byte_identical_outputs(place, run):
    v1 = place.put(KEY, V1)
    first = run(place, v1)
    outputs = {key: place.get(key) for key in (PREDICTIONS, ERRORS)}
    metadata = place.metadata(PREDICTIONS)

    again = run(place, v1)

    assert (again.skipped, again.rows_predicted, again.rows_failed) == (None, first.rows_predicted, first.rows_failed)
    assert {key: place.get(key) for key in (PREDICTIONS, ERRORS)} == outputs
    assert place.metadata(PREDICTIONS) == metadata


def test_an_event_without_a_version_reads_the_current_one_and_records_it(place, run):
    place.put(KEY, V1)
    v2 = place.put(KEY, V2)
    result = run(place, None)
    assert result.version == v2.describe()
    assert_v2_published(place, v2._replace(sequencer=None))  # only an event has a sequencer


class Interleaved:
    """The real store, with another run's whole upload-and-publish slipped in after this run's
    first look at its input's current version (the step before its conditional writes)."""

    def __init__(self, store, source: StorageURI, meanwhile) -> None:
        self._store = store
        self._source = source
        self._meanwhile = meanwhile
        self.versioned = store.versioned

    def stat(self, uri):
        found = self._store.stat(uri)
        if uri == self._source and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return found

    def __getattr__(self, name):
        return getattr(self._store, name)


# not on the GCS emulator: it ignores ifGenerationMatch, so a stale write is never refused there
@pytest.mark.parametrize("place", ["s3-versioned", "s3-etag", "azure"], indirect=True)
def test_a_newer_version_published_while_this_run_was_writing_is_kept(place, run, caplog):
    v1 = place.put(KEY, V1)
    newer: dict[str, ObjectVersion] = {}

    def another_run() -> None:  # v2 uploaded and published between v1's look and v1's writes
        newer["v2"] = place.put(KEY, V2)
        assert run(place, newer["v2"]).skipped is None

    def racing(uri, timeout):
        store = store_for(uri, timeout)
        return Interleaved(store, place.uri(KEY), another_run) if uri == place.uri(KEY) else store

    caplog.set_level(logging.INFO, logger="serverless_ml.batch")
    result = run(place, v1, store=racing)

    # v1 found the input current, wrote its errors file (v2 has none to be in the way), lost the
    # predictions write to v2's, looked again, found itself superseded and took its errors file back
    (lost,) = [r for r in caplog.records if r.getMessage() == "batch outputs changed while publishing; looking again"
               and r.fields["version"] == v1.describe()]
    assert "another writer came first" in lost.fields["reason"]
    assert result.skipped.startswith("superseded: ")
    assert_v2_published(place, newer["v2"])


# not on GCS: a resumable upload's pieces leave no trace in the finished object to check
@pytest.mark.parametrize("place", ["s3-versioned", "s3-etag", "azure"], indirect=True)
def test_an_output_over_the_part_size_is_uploaded_in_parts(place, run):
    rows = 60_000  # ~100 bytes of predictions each: over 5 MiB
    v1 = place.put(KEY, "sepal_length,sepal_width,petal_length,petal_width\n" + "5.1,3.5,1.4,0.2\n" * rows)

    result = run(place, v1, BATCH_PART_BYTES=str(MIN_PART_BYTES))

    assert result.rows_predicted == rows
    data = place.get(PREDICTIONS)
    assert MIN_PART_BYTES < len(data) <= 2 * MIN_PART_BYTES
    assert data.count(b"\n") == rows and data.startswith(b'{"line":2,"prediction":"setosa"')
    if place.scheme == "s3":
        head = place.client.head_object(Bucket=place.bucket, Key=PREDICTIONS)
        assert head["ETag"].endswith('-2"')  # a multipart upload of two parts
    else:
        blocks, uncommitted = place.container.get_blob_client(PREDICTIONS).get_block_list("all")
        assert [block.size for block in blocks] == [MIN_PART_BYTES, len(data) - MIN_PART_BYTES]
        assert uncommitted == []
    assert _recorded(place.metadata(PREDICTIONS)) == _recorded(v1.metadata())


def test_local_files_are_read_and_written_as_before(tmp_path, run, demo_model_uri):
    """file:// has no versions: no pin, no condition, no metadata; the outputs as they always were."""
    from core.batch.engine import run_batch as engine

    path = Path(tmp_path) / "day.csv"
    path.write_text(V1)
    settings = Settings.from_env({"MODEL_URI": demo_model_uri})
    result = engine(path.as_uri(), ModelHolder(settings), settings)
    assert (result.skipped, result.version, result.rows_failed) == (None, None, 1)
    assert (tmp_path / "predictions" / "day.csv.errors.jsonl").exists()
