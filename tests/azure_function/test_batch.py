"""Batch on Azure: the blob trigger (``batch_blob``) and the Event Grid trigger (``batch_event_grid``)
of the same ``app``, called through the azure-functions library's own types (``func.InputStream``,
``func.EventGridEvent`` built from the sample events in tests/events/azure/ as they are, subject,
url and eTag adapted to the blob in Azurite), with the inputs in Azurite and the outputs read back
from it."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.blob import InputStream  # the func.InputStream the worker builds

from core.errors import ObjectNotFound
from tests.support import CSV_WITH_A_BAD_ROW, GOOD_CSV

EVENTS = Path(__file__).resolve().parents[1] / "events" / "azure"
CONTAINER = "batch-input"  # the default BATCH_INPUT_CONTAINER


class RootRecords(logging.Handler):
    """Stands where the Functions worker's handler is: on the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, *messages: str) -> list[dict]:
        found = [json.loads(r.getMessage()) for r in self.records if r.name.startswith("serverless_ml")]
        return [line for line in found if line["message"] in messages]


@pytest.fixture
def logs():
    handler = RootRecords()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def stored(azurite, container: str = CONTAINER) -> dict[str, bytes]:
    client = azurite.client().get_container_client(container)
    if not client.exists():
        return {}
    return {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}


def lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


def blob_event(azurite, container: str, name: str, data: bytes, etag: str | None = None) -> InputStream:
    """What the worker hands the blob trigger: the blob's path (container/name), URL and content,
    and the properties the host read with it (its ``ETag``)."""
    return InputStream(
        data=data, name=f"{container}/{name}", length=len(data),
        uri=f"http://127.0.0.1:{azurite.port}/{azurite.account}/{container}/{name}",
        blob_properties={"ETag": etag, "ContentLength": len(data), "BlobType": "BlockBlob"} if etag else None,
    )


def event_grid_event(sample: dict, azurite=None, container: str = "", name: str = "",
                     etag: str | None = None) -> func.EventGridEvent:
    """A ``func.EventGridEvent`` from a sample event, its subject and url moved to ``container``/``name``
    and its ``data.eTag`` to the blob's (unquoted, as Event Grid sends it)."""
    sample = copy.deepcopy(sample)
    if container:
        sample["subject"] = f"/blobServices/default/containers/{container}/blobs/{name}"
        sample["data"]["url"] = f"http://127.0.0.1:{azurite.port}/{azurite.account}/{container}/{name}"
    if etag:
        sample["data"]["eTag"] = etag.strip('"')
    return func.EventGridEvent(
        id=sample["id"], data=sample["data"], topic=sample["topic"], subject=sample["subject"],
        event_type=sample["eventType"], event_time=None, data_version=sample["dataVersion"],
    )


def blob_created_sample() -> dict:
    (event,) = json.loads((EVENTS / "StorageBlobCreatedEvent.json").read_text())  # an array of one
    return event


def test_the_blob_trigger_writes_predictions_and_the_errors_of_bad_rows(batch_app, azurite_with_model, logs):
    app = batch_app()
    name = "incoming/day 1.csv"
    etag = azurite_with_model.put(CONTAINER, name, CSV_WITH_A_BAD_ROW.encode())

    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, name, CSV_WITH_A_BAD_ROW.encode(), etag))

    outputs = stored(azurite_with_model)
    predictions = lines(outputs["predictions/incoming/day 1.csv.predictions.jsonl"])
    assert [(row["line"], row["prediction"]) for row in predictions] == [(2, "setosa"), (4, "virginica")]
    assert set(predictions[0]["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert lines(outputs["predictions/incoming/day 1.csv.errors.jsonl"]) == [{
        "line": 3, "code": "invalid_value",
        "message": "line 3, column 'petal_length' is the string 'abc'; expected a number",
    }]
    (finished,) = logs.lines("batch finished")
    assert finished["input"] == f"az://{CONTAINER}/{name}"
    assert (finished["rows_predicted"], finished["rows_failed"], finished["function_name"]) == (2, 1, "batch_blob")


def test_the_same_blob_event_twice_gives_byte_identical_outputs(batch_app, azurite_with_model):
    app = batch_app()
    data = CSV_WITH_A_BAD_ROW.encode()
    etag = azurite_with_model.put(CONTAINER, "incoming/twice.csv", data)
    event = blob_event(azurite_with_model, CONTAINER, "incoming/twice.csv", data, etag)

    app.host.trigger("batch_blob", event)
    first = stored(azurite_with_model)
    app.host.trigger("batch_blob", event)
    second = stored(azurite_with_model)

    assert second == first
    assert "predictions/incoming/twice.csv.errors.jsonl" in second


def test_a_blob_created_event_grid_event_is_processed(batch_app, azurite_with_model, logs):
    app = batch_app()
    rows = b'{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}\n[6.7,3.0,5.2,2.3]\n'
    etag = azurite_with_model.put("uploads", "2026/rows.jsonl", rows)  # any container the subscription sends

    event = event_grid_event(blob_created_sample(), azurite_with_model, "uploads", "2026/rows.jsonl", etag)
    app.host.trigger("batch_event_grid", event)

    predictions = lines(stored(azurite_with_model, "uploads")["predictions/2026/rows.jsonl.predictions.jsonl"])
    assert [(row["line"], row["prediction"]) for row in predictions] == [(1, "setosa"), (2, "virginica")]
    (finished,) = logs.lines("batch finished")
    assert (finished["event_id"], finished["function_name"]) == ("602a88ef-0001-00e6-1233-1646070610ea", "batch_event_grid")
    assert finished["version"] == f"eTag {etag}"
    metadata = azurite_with_model.client().get_blob_client(
        "uploads", "predictions/2026/rows.jsonl.predictions.jsonl").get_blob_properties().metadata
    assert metadata == {"input_etag": etag.strip('"'), "input_sequencer": "00000000000000EB000000000000C65A"}


def test_outputs_other_events_and_other_names_are_skipped(batch_app, azurite_with_model, logs):
    app = batch_app()
    etag = azurite_with_model.put(CONTAINER, "root.csv", GOOD_CSV.encode())  # its outputs sit right under the prefix
    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, "root.csv", GOOD_CSV.encode(), etag))
    azurite_with_model.put(CONTAINER, "predictions/manual/stray.csv", GOOD_CSV.encode())
    before = stored(azurite_with_model)

    output = before["predictions/root.csv.predictions.jsonl"]
    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, "predictions/root.csv.predictions.jsonl", output))
    app.host.trigger("batch_event_grid", event_grid_event(
        blob_created_sample(), azurite_with_model, CONTAINER, "predictions/manual/stray.csv"))
    # the samples as they are: a BlobDeleted event, and a BlobCreated event for a .txt blob
    app.host.trigger("batch_event_grid", event_grid_event(json.loads((EVENTS / "EventGridEventNoArray.json").read_text())))
    app.host.trigger("batch_event_grid", event_grid_event(blob_created_sample()))

    assert stored(azurite_with_model) == before
    assert logs.lines("batch failed") == []
    assert [line["reason"] for line in logs.lines("batch input skipped", "event skipped")] == [
        f"az://{CONTAINER}/predictions/root.csv.predictions.jsonl is named like a batch output "
        "(.predictions.jsonl or .errors.jsonl); outputs are never inputs",
        f"az://{CONTAINER}/predictions/manual/stray.csv is under the output prefix az://{CONTAINER}/predictions/; "
        "outputs are never inputs",
        "event type 'Microsoft.Storage.BlobDeleted' is not Microsoft.Storage.BlobCreated",
        "'file1.txt' is not a batch input; expected a name ending in .csv, .jsonl, .json, .csv.gz, .jsonl.gz or .json.gz",
    ]


def test_a_blob_deleted_before_it_is_read_is_skipped_not_retried(batch_app, azurite_with_model, logs):
    app = batch_app()
    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, "incoming/gone.csv", b""))
    (skipped,) = logs.lines("batch input skipped")
    assert skipped["reason"] == f"az://{CONTAINER}/incoming/gone.csv does not exist (deleted after the event was sent?)"


def test_an_output_container_out_of_reach_fails_the_invocation_so_the_host_retries(batch_app, azurite_with_model, logs):
    app = batch_app(BATCH_OUTPUT_URI="az://no-such-container/predictions/")
    etag = azurite_with_model.put(CONTAINER, "incoming/ok.csv", GOOD_CSV.encode())

    with pytest.raises(ObjectNotFound):
        app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, "incoming/ok.csv", GOOD_CSV.encode(), etag))

    assert [(line["error_code"], line["retry"], line["reason"]) for line in logs.lines("batch failed")] == [(
        "object_not_found", True,
        "az://no-such-container/predictions/incoming/ok.csv.predictions.jsonl cannot be written: "
        "there is no container 'no-such-container'",
    )]


def test_the_blob_trigger_watches_the_configured_container(batch_app, monkeypatch):
    monkeypatch.setenv("BATCH_INPUT_CONTAINER", "daily-uploads")
    monkeypatch.setenv("BATCH_STORAGE_CONNECTION", "DataStorage")
    app = batch_app()
    binding, _ = app.host.triggers["batch_blob"]
    assert binding == {
        "direction": "IN", "type": "blobTrigger", "name": "blob", "path": "daily-uploads/{name}",
        "connection": "DataStorage", "source": "EventGrid",
    }
    assert app.host.triggers["batch_event_grid"][0] == {"direction": "IN", "type": "eventGridTrigger", "name": "event"}


def test_a_mixed_pipeline_is_predicted_from_a_blob(batch_app, azurite_with_model, typed_models):
    azurite_with_model.put("models", "mixed.joblib", typed_models["mixed"].read_bytes())
    app = batch_app(MODEL_URI="az://models/mixed.joblib")
    name = "incoming/people.json"
    data = json.dumps([
        {"age": 22, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"},
        {"age": None, "fare": 71.28, "pclass": 1, "sex": "female", "embarked": "C"},
        {"age": "x", "fare": 8.05, "pclass": 3, "sex": "male", "embarked": "S"},
    ], indent=2).encode()
    etag = azurite_with_model.put(CONTAINER, name, data)

    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, name, data, etag))

    outputs = stored(azurite_with_model)
    predictions = lines(outputs["predictions/incoming/people.json.predictions.jsonl"])
    assert [(row["line"], row["prediction"]) for row in predictions] == [(1, False), (2, True)]
    assert lines(outputs["predictions/incoming/people.json.errors.jsonl"]) == [{
        "line": 3, "code": "invalid_value", "message": "row 3.age is the string 'x'; expected a number",
    }]


# --- versions ------------------------------------------------------------------------------------------


def test_blob_created_events_for_v1_and_v2_out_of_order_leave_v2s_predictions(batch_app, azurite_with_model, logs):
    app = batch_app()
    name = "incoming/versions.csv"
    v1 = azurite_with_model.put(CONTAINER, name, CSV_WITH_A_BAD_ROW.encode())
    v2 = azurite_with_model.put(CONTAINER, name, GOOD_CSV.encode())

    for etag in (v2, v1):  # Event Grid's delivery order is not the order of the uploads
        app.host.trigger("batch_event_grid", event_grid_event(blob_created_sample(), azurite_with_model, CONTAINER, name, etag))

    outputs = stored(azurite_with_model)
    predictions = lines(outputs["predictions/incoming/versions.csv.predictions.jsonl"])
    assert [row["line"] for row in predictions] == [2, 3]  # v2's rows
    assert "predictions/incoming/versions.csv.errors.jsonl" not in outputs
    assert logs.lines("batch failed") == []  # not an error, and not retried
    (skipped,) = logs.lines("batch input skipped")
    assert skipped["reason"] == (
        f"superseded: az://{CONTAINER}/{name} is no longer the version that was to be read: it was replaced")
    assert skipped["version"] == f"eTag {v1}"


def test_a_blob_trigger_late_for_a_replaced_blob_changes_nothing(batch_app, azurite_with_model, logs):
    app = batch_app()
    name = "incoming/late.csv"
    v1 = azurite_with_model.put(CONTAINER, name, CSV_WITH_A_BAD_ROW.encode())
    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, name, CSV_WITH_A_BAD_ROW.encode(), v1))
    v2 = azurite_with_model.put(CONTAINER, name, GOOD_CSV.encode())
    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, name, GOOD_CSV.encode(), v2))
    published = stored(azurite_with_model)

    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, name, CSV_WITH_A_BAD_ROW.encode(), v1))

    assert stored(azurite_with_model) == published
    assert "predictions/incoming/late.csv.errors.jsonl" not in published
    assert logs.lines("batch input skipped")[-1]["reason"].startswith("superseded: ")


def test_an_output_over_the_part_size_is_committed_as_blocks(batch_app, azurite_with_model):
    app = batch_app(BATCH_PART_BYTES=str(5 * 1024 * 1024), BATCH_CHUNK_ROWS="10000")
    name = "incoming/large.csv"
    data = (GOOD_CSV.splitlines(keepends=True)[0] + "5.1,3.5,1.4,0.2\n" * 60_000).encode()
    etag = azurite_with_model.put(CONTAINER, name, data)

    app.host.trigger("batch_blob", blob_event(azurite_with_model, CONTAINER, name, data, etag))

    blob = azurite_with_model.client().get_blob_client(CONTAINER, "predictions/incoming/large.csv.predictions.jsonl")
    blocks, uncommitted = blob.get_block_list("all")
    assert len(blocks) == 2 and uncommitted == []
    assert blob.get_blob_properties().metadata == {"input_etag": etag.strip('"')}
