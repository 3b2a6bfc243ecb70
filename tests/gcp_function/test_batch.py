"""The Cloud Storage trigger: functions-framework's own server runs ``batch`` (``--signature-type
cloudevent``) on the GCS emulator; events are built from the sample events in tests/events/gcp/
(structured CloudEvent, binary-mode CloudEvent, legacy background event), each naming the generation
the upload created, as Cloud Storage does; the outputs are read back from the emulator."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.gcp_parts import FunctionServer, function_servers
from tests.support import CSV_WITH_A_BAD_ROW, GOOD_CSV

EVENTS = Path(__file__).resolve().parents[1] / "events" / "gcp"
BUCKET = "batch-data"
FINALIZED = "google.cloud.storage.object.v1.finalized"

_ids = itertools.count(1)


def _sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def structured_event(bucket: str, name: str, generation: int | None = None) -> tuple[dict, bytes]:
    """StorageObjectDataWorkflows.json (a structured CloudEvent) naming ``bucket``/``name`` and the
    ``generation`` the upload created (a number here, as in the sample)."""
    event = _sample("StorageObjectDataWorkflows.json")
    event["bucket"] = event["data"]["bucket"] = bucket
    event["data"]["name"] = name
    if generation is not None:
        event["data"]["generation"] = generation
    event["data"]["id"] = f"{bucket}/{name}/{event['data']['generation']}"
    event["source"] = f"//storage.googleapis.com/projects/_/buckets/{bucket}"
    event["subject"] = f"objects/{name}"
    event["id"] = str(next(_ids))
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(event).encode()


def binary_event(bucket: str, name: str, event_type: str = FINALIZED, generation: int | None = None) -> tuple[dict, bytes]:
    """A binary-mode CloudEvent: ce-* headers, StorageObjectData-simple.json as the body (its
    ``generation`` a string, as in the sample)."""
    data = _sample("StorageObjectData-simple.json")
    data["bucket"], data["name"] = bucket, name
    if generation is not None:
        data["generation"] = str(generation)
        data["id"] = f"{bucket}/{name}/{generation}"
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-type": event_type,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-subject": f"objects/{name}",
        "ce-id": str(next(_ids)),
        "ce-time": "2020-04-23T07:38:57.230Z",
    }
    return headers, json.dumps(data).encode()


def legacy_event(bucket: str, name: str, generation: int | None = None) -> tuple[dict, bytes]:
    """storage-legacy-input.json: a background event functions-framework turns into a CloudEvent."""
    event = _sample("storage-legacy-input.json")
    event["context"]["eventId"] = str(next(_ids))
    event["context"]["resource"]["name"] = f"projects/_/buckets/{bucket}/objects/{name}"
    event["data"]["bucket"], event["data"]["name"] = bucket, name
    if generation is not None:
        event["data"]["generation"] = str(generation)
    return {"Content-Type": "application/json"}, json.dumps(event).encode()


@pytest.fixture(scope="module")
def data_bucket(gcs_emulator, model_in_gcs) -> str:
    gcs_emulator.create_bucket(BUCKET)
    return BUCKET


@pytest.fixture(scope="module")
def start_batch(tmp_path_factory, gcs_emulator, model_in_gcs, data_bucket) -> Iterator[Callable[..., FunctionServer]]:
    """``start_batch(**settings)``: the batch function on the emulator's model, with ``settings``."""
    with function_servers(tmp_path_factory.mktemp("batch-functions")) as start_server:

        def start(**settings: str) -> FunctionServer:
            return start_server({
                "MODEL_URI": model_in_gcs,
                **gcs_emulator.env(),
                "STORAGE_TIMEOUT_SECONDS": "5",
                "BATCH_CHUNK_ROWS": "2",  # several chunks even in these small files
                **settings,
            }, target="batch", signature_type="cloudevent")

        yield start


@pytest.fixture(scope="module")
def batch_function(start_batch) -> FunctionServer:
    return start_batch()


def post(function: FunctionServer, event: tuple[dict, bytes]) -> int:
    headers, body = event
    status, _, _ = function.request("POST", "/", body=body, headers=headers)
    return status


def objects(gcs_emulator, bucket: str = BUCKET) -> dict[str, bytes]:
    client = gcs_emulator.client()
    return {blob.name: blob.download_as_bytes() for blob in client.list_blobs(bucket)}


def lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_a_structured_event_writes_the_predictions_next_to_the_input(batch_function, gcs_emulator, data_bucket):
    name = "incoming/2026/day 1.csv"  # Cloud Storage events carry the name as is, space included
    generation = gcs_emulator.upload(data_bucket, name, GOOD_CSV.encode())

    assert post(batch_function, structured_event(data_bucket, name, generation)) == 200

    stored = objects(gcs_emulator)
    predictions = lines(stored["predictions/incoming/2026/day 1.csv.predictions.jsonl"])
    assert [(row["line"], row["prediction"]) for row in predictions] == [(2, "setosa"), (3, "virginica")]
    assert set(predictions[0]["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert "predictions/incoming/2026/day 1.csv.errors.jsonl" not in stored
    finished = [e for e in batch_function.log_lines() if e["message"] == "batch finished"][-1]
    assert finished["input"] == f"gs://{data_bucket}/{name}"
    assert (finished["rows_predicted"], finished["rows_failed"], finished["generation"]) == (2, 0, generation)
    assert finished["version"] == f"generation {generation}"


def test_a_binary_mode_event_reports_bad_rows_and_predicts_the_others(batch_function, gcs_emulator, data_bucket):
    name = "incoming/mixed.csv"
    generation = gcs_emulator.upload(data_bucket, name, CSV_WITH_A_BAD_ROW.encode())

    assert post(batch_function, binary_event(data_bucket, name, generation=generation)) == 200

    stored = objects(gcs_emulator)
    predictions = lines(stored["predictions/incoming/mixed.csv.predictions.jsonl"])
    assert [(row["line"], row["prediction"]) for row in predictions] == [(2, "setosa"), (4, "virginica")]
    assert lines(stored["predictions/incoming/mixed.csv.errors.jsonl"]) == [{
        "line": 3, "code": "invalid_value",
        "message": "line 3, column 'petal_length' is the string 'abc'; expected a number",
    }]
    # size and generation came as strings in this sample
    finished = [e for e in batch_function.log_lines() if e["message"] == "batch finished"][-1]
    assert (finished["generation"], finished["size"]) == (generation, 352)


def test_a_legacy_background_event_is_converted_and_processed(batch_function, gcs_emulator, data_bucket):
    name = "legacy/rows.jsonl"
    generation = gcs_emulator.upload(
        data_bucket, name, b'{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}\n'
        b"[6.7,3.0,5.2,2.3]\n")

    assert post(batch_function, legacy_event(data_bucket, name, generation)) == 200

    predictions = lines(objects(gcs_emulator)["predictions/legacy/rows.jsonl.predictions.jsonl"])
    assert [(row["line"], row["prediction"]) for row in predictions] == [(1, "setosa"), (2, "virginica")]


def test_the_same_event_twice_gives_byte_identical_outputs(batch_function, gcs_emulator, data_bucket):
    name = "incoming/twice.csv"
    event = structured_event(data_bucket, name, gcs_emulator.upload(data_bucket, name, CSV_WITH_A_BAD_ROW.encode()))

    assert post(batch_function, event) == 200
    first = objects(gcs_emulator)
    assert post(batch_function, event) == 200
    second = objects(gcs_emulator)

    outputs = ["predictions/incoming/twice.csv.predictions.jsonl", "predictions/incoming/twice.csv.errors.jsonl"]
    assert [second[key] for key in outputs] == [first[key] for key in outputs]
    assert second.keys() == first.keys()


def test_objects_under_the_output_prefix_and_other_events_are_skipped(batch_function, gcs_emulator, data_bucket):
    # an output's own finalize event, and a CSV someone put under the output prefix
    generation = gcs_emulator.upload(data_bucket, "incoming/loop.csv", GOOD_CSV.encode())
    assert post(batch_function, binary_event(data_bucket, "incoming/loop.csv", generation=generation)) == 200
    generation = gcs_emulator.upload(data_bucket, "root.csv", GOOD_CSV.encode())  # its outputs sit right under the prefix
    assert post(batch_function, structured_event(data_bucket, "root.csv", generation)) == 200
    gcs_emulator.upload(data_bucket, "predictions/manual/stray.csv", GOOD_CSV.encode())
    before = objects(gcs_emulator)
    assert {"predictions/incoming/loop.csv.predictions.jsonl", "predictions/root.csv.predictions.jsonl"} <= before.keys()

    assert post(batch_function, binary_event(data_bucket, "predictions/incoming/loop.csv.predictions.jsonl")) == 200
    assert post(batch_function, binary_event(data_bucket, "predictions/root.csv.predictions.jsonl")) == 200
    assert post(batch_function, structured_event(data_bucket, "predictions/manual/stray.csv")) == 200
    # a deleted object, a Pub/Sub message and the Workflows sample as it is (an object "MyFile")
    assert post(batch_function, binary_event(data_bucket, "incoming/loop.csv", "google.cloud.storage.object.v1.deleted")) == 200
    pubsub = _sample("pubsub_text-cloud-event-output.json")
    assert post(batch_function, ({"Content-Type": "application/cloudevents+json"}, json.dumps(pubsub).encode())) == 200
    workflows = (EVENTS / "StorageObjectDataWorkflows.json").read_bytes()
    assert post(batch_function, ({"Content-Type": "application/cloudevents+json"}, workflows)) == 200

    assert objects(gcs_emulator) == before
    assert not [e for e in batch_function.log_lines() if e["message"] == "batch failed"]
    skipped = [e for e in batch_function.log_lines() if e["message"] in ("batch input skipped", "event skipped")][-6:]
    assert [e.get("reason") for e in skipped] == [
        f"gs://{data_bucket}/predictions/incoming/loop.csv.predictions.jsonl is named like a batch output "
        "(.predictions.jsonl or .errors.jsonl); outputs are never inputs",
        f"gs://{data_bucket}/predictions/root.csv.predictions.jsonl is named like a batch output "
        "(.predictions.jsonl or .errors.jsonl); outputs are never inputs",
        f"gs://{data_bucket}/predictions/manual/stray.csv is under the output prefix gs://{data_bucket}/predictions/; "
        "outputs are never inputs",
        f"event type 'google.cloud.storage.object.v1.deleted' is not {FINALIZED}",
        f"event type 'google.cloud.pubsub.topic.v1.messagePublished' is not {FINALIZED}",
        "'MyFile' is not a batch input; expected a name ending in .csv, .jsonl, .json, .csv.gz, .jsonl.gz or .json.gz",
    ]


def test_an_input_deleted_before_it_is_read_is_skipped_not_retried(batch_function, gcs_emulator, data_bucket):
    assert post(batch_function, binary_event(data_bucket, "incoming/gone.csv")) == 200
    skipped = [e for e in batch_function.log_lines() if e["message"] == "batch input skipped"][-1]
    assert skipped["reason"] == (
        f"gs://{data_bucket}/incoming/gone.csv does not exist: no object 'incoming/gone.csv' in bucket "
        f"'{data_bucket}' (deleted after the event was sent?)"
    )


def test_an_output_bucket_out_of_reach_answers_500_so_the_platform_retries(start_batch, gcs_emulator, data_bucket):
    function = start_batch(BATCH_OUTPUT_URI="gs://no-output-bucket/predictions/")
    generation = gcs_emulator.upload(data_bucket, "incoming/ok.csv", GOOD_CSV.encode())

    assert post(function, binary_event(data_bucket, "incoming/ok.csv", generation=generation)) == 500

    failed = [e for e in function.log_lines() if e["message"] == "batch failed"]
    assert [(e["error_code"], e["retry"], e["reason"]) for e in failed] == [(
        "object_not_found", True,
        "gs://no-output-bucket/predictions/incoming/ok.csv.predictions.jsonl cannot be written: "
        "bucket 'no-output-bucket' does not exist",
    )]
    assert "no-output-bucket" not in "".join(objects(gcs_emulator))


def test_an_output_prefix_that_is_the_input_folder_is_refused_once_not_retried(start_batch, gcs_emulator, data_bucket):
    function = start_batch(BATCH_OUTPUT_URI=f"gs://{data_bucket}/incoming/")
    generation = gcs_emulator.upload(data_bucket, "incoming/same-folder.csv", GOOD_CSV.encode())
    before = objects(gcs_emulator)

    assert post(function, binary_event(data_bucket, "incoming/same-folder.csv", generation=generation)) == 200

    assert objects(gcs_emulator) == before
    failed = [e for e in function.log_lines() if e["message"] == "batch failed"]
    assert [(e["error_code"], e["retry"], e["reason"]) for e in failed] == [(
        "invalid_setting", False,
        f"BATCH_OUTPUT_URI=gs://{data_bucket}/incoming/ is the folder the inputs are in; outputs would be "
        f"written among the inputs; expected another prefix, e.g. gs://{data_bucket}/predictions/",
    )]


def test_a_mixed_pipeline_is_predicted_from_cloud_storage(start_batch, gcs_emulator, data_bucket, typed_models):
    gcs_emulator.upload(data_bucket, "models/mixed.joblib", typed_models["mixed"].read_bytes())
    function = start_batch(MODEL_URI=f"gs://{data_bucket}/models/mixed.joblib")
    name = "incoming/people.csv"
    generation = gcs_emulator.upload(data_bucket, name, (
        b"age,fare,pclass,sex,embarked\n22,7.25,3,male,S\n,71.28,1,female,C\nx,8.05,3,male,S\n"
        b'35,53.1,1,"fe\nmale","S, Q"\n'
    ))

    assert post(function, binary_event(data_bucket, name, generation=generation)) == 200

    stored = objects(gcs_emulator)
    predictions = lines(stored["predictions/incoming/people.csv.predictions.jsonl"])
    assert [(row["line"], row["prediction"]) for row in predictions] == [(2, False), (3, True), (5, True)]
    assert lines(stored["predictions/incoming/people.csv.errors.jsonl"]) == [{
        "line": 4, "code": "invalid_value", "message": "line 4, column 'age' is the string 'x'; expected a number",
    }]


def test_finalized_events_for_v1_and_v2_out_of_order_leave_v2s_predictions(batch_function, gcs_emulator, data_bucket):
    """Cloud Storage generations: v1's run is held back by the check of the object's current
    generation before publishing. (The emulator serves the current object whatever generation a
    read names, so v1's run here reads v2's bytes before it stops; Cloud Storage answers 404.)"""
    name = "incoming/versions.csv"
    v1 = gcs_emulator.upload(data_bucket, name, CSV_WITH_A_BAD_ROW.encode())
    v2 = gcs_emulator.upload(data_bucket, name, GOOD_CSV.encode())

    assert post(batch_function, structured_event(data_bucket, name, v2)) == 200
    assert post(batch_function, legacy_event(data_bucket, name, v1)) == 200  # the older one, delivered last

    stored = objects(gcs_emulator)
    assert [row["line"] for row in lines(stored["predictions/incoming/versions.csv.predictions.jsonl"])] == [2, 3]
    assert "predictions/incoming/versions.csv.errors.jsonl" not in stored
    blob = gcs_emulator.client().bucket(data_bucket).get_blob("predictions/incoming/versions.csv.predictions.jsonl")
    assert blob.metadata == {"input-generation": str(v2)}
    skipped = [e for e in batch_function.log_lines() if e["message"] == "batch input skipped"][-1]
    assert skipped["reason"] == (
        f"superseded: gs://{data_bucket}/{name} was read at generation {v1}, and generation {v2} is its current "
        "version now; that version's own event publishes its predictions"
    )
    assert not [e for e in batch_function.log_lines() if e["message"] == "batch failed"]
