"""The batch handler on moto's real S3 server: S3 notifications delivered directly, through SQS and
through EventBridge, built from the shared sample events; outputs read back with boto3.

The key holds a space and a '+', so every delivery must decode it (S3 sends ``my+data%2Bv2.csv``).
Each event names the version S3 created (the eTag, and the versionId in a versioned bucket), as
S3 does: the run reads that version and no other.
"""

from __future__ import annotations

import copy
import json
import uuid
from urllib.parse import quote, quote_plus

import pytest

from tests.aws_lambda.child_support import run_child
from tests.aws_lambda.lambda_support import SHARED_EVENTS, LambdaContext

HEADER = "sepal_length,sepal_width,petal_length,petal_width\n"
GOOD_ROWS = "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n"
KEY = "incoming/my data+v2.csv"
OUTPUT = "predictions/incoming/my data+v2.csv.predictions.jsonl"
ERRORS = "predictions/incoming/my data+v2.csv.errors.jsonl"


def shared(name: str) -> dict:
    return json.loads((SHARED_EVENTS / name).read_text())


# --- events built from the shared samples --------------------------------------------------------


def put(s3, bucket: str, key: str, body: str | bytes, **options) -> dict:
    """Upload as a user would; S3's answer holds the ETag (and VersionId) its event names."""
    return s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body, **options)


def name_version(obj: dict, created: dict | None, etag: str = "eTag", version_id: str = "versionId") -> None:
    """The sample's version fields replaced by those of the object S3 created (``created``: its
    PutObject answer); without one, an event of a bucket without versioning (no versionId)."""
    if created is None:
        obj.pop(version_id, None)
        return
    obj[etag] = created["ETag"].strip('"')
    if created.get("VersionId"):
        obj[version_id] = created["VersionId"]
    else:
        obj.pop(version_id, None)


def direct_event(bucket: str, key: str, created: dict | None = None, *, encode=quote_plus,
                 event_name: str = "ObjectCreated:Put", sample: str = "s3Event.json") -> dict:
    event = shared(sample)
    record = event["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["s3"]["object"]["key"] = encode(key, safe="/")
    name_version(record["s3"]["object"], created)
    return event


def sqs_event(*messages: tuple) -> dict:
    """One SQS record per (message id, bucket, key[, PutObject answer]), each body an S3
    notification, as S3 sends it."""
    sample = shared("s3SqsEvent.json")
    template = sample["Records"][0]
    records = []
    for message_id, bucket, key, *created in messages:
        body = json.loads(template["body"])
        body["Records"][0]["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
        body["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
        name_version(body["Records"][0]["s3"]["object"], created[0] if created else None)
        record = copy.deepcopy(template)
        record.update(messageId=message_id, body=json.dumps(body))
        records.append(record)
    return {"Records": records}


def eventbridge_event(bucket: str, key: str, created: dict | None = None, detail_type: str = "Object Created") -> dict:
    event = shared("s3EventBridgeNotificationObjectCreatedEvent.json")
    event["detail-type"] = detail_type
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = quote_plus(key, safe="/")
    name_version(event["detail"]["object"], created, etag="etag", version_id="version-id")
    return event


DELIVERIES = {
    "direct": lambda bucket, key, created: direct_event(bucket, key, created),
    "direct-%20": lambda bucket, key, created: direct_event(bucket, key, created, encode=quote, sample="go-s3-event.json"),
    "sqs": lambda bucket, key, created: sqs_event(("msg-1", bucket, key, created)),
    "eventbridge": lambda bucket, key, created: eventbridge_event(bucket, key, created),
}


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def harness(make_app, s3_model_uri):
    return make_app(s3_model_uri)


@pytest.fixture
def batch(harness):
    """``aws_lambda.handler.batch`` is ``aws_lambda.batch.handle`` on the module's app; here the
    app is the harness's, so its logs and metrics are captured."""
    from aws_lambda.batch import handle

    def invoke(event, request_id: str = "batch-0001"):
        return handle(harness.app, event, LambdaContext(aws_request_id=request_id))

    return invoke


def read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(s3, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


# --- the three deliveries ------------------------------------------------------------------------------


@pytest.mark.parametrize("delivery", list(DELIVERIES))
def test_each_delivery_predicts_the_decoded_key_and_a_repeat_gives_the_same_bytes(delivery, batch, s3, bucket):
    created = put(s3, bucket, KEY, HEADER + GOOD_ROWS)
    event = DELIVERIES[delivery](bucket, KEY, created)

    answer = batch(event)

    result = {
        "status": "predicted", "input": f"s3://{bucket}/{KEY}", "rows_predicted": 3, "rows_failed": 0,
        "predictions": f"s3://{bucket}/{OUTPUT}",
    }
    assert {k: answer["results"][0][k] for k in result} == result
    assert "errors" not in answer["results"][0]
    if delivery == "sqs":
        assert answer["batchItemFailures"] == []
    else:
        assert "batchItemFailures" not in answer
    first = read(s3, bucket, OUTPUT)
    rows = jsonl(first)
    assert [(r["line"], r["prediction"]) for r in rows] == [(2, "setosa"), (3, "virginica"), (4, "versicolor")]
    assert ERRORS not in keys(s3, bucket)

    assert batch(event)["results"][0]["status"] == "predicted"
    assert read(s3, bucket, OUTPUT) == first


def test_bad_rows_give_predictions_and_an_errors_file(batch, s3, bucket):
    created = put(s3, bucket, KEY, HEADER + "5.1,3.5,1.4,0.2\n5.0,abc,1.4,0.2\n6.7,3.0,5.2\n6.7,3.0,5.2,2.3\n")

    (result,) = batch(direct_event(bucket, KEY, created))["results"]

    assert (result["status"], result["rows_predicted"], result["rows_failed"]) == ("predicted", 2, 2)
    assert result["errors"] == f"s3://{bucket}/{ERRORS}"
    assert [r["line"] for r in jsonl(read(s3, bucket, OUTPUT))] == [2, 5]
    errors = jsonl(read(s3, bucket, ERRORS))
    assert [(e["line"], e["code"]) for e in errors] == [(3, "invalid_value"), (4, "invalid_features")]
    assert errors[0]["message"] == "line 3, column 'sepal_width' is the string 'abc'; expected a number"


def test_the_input_replaced_without_bad_rows_removes_the_old_errors_file(batch, s3, bucket):
    batch(direct_event(bucket, KEY, put(s3, bucket, KEY, HEADER + "5.1,3.5,1.4,0.2\n5.0,abc,1.4,0.2\n")))
    assert ERRORS in keys(s3, bucket)

    (result,) = batch(direct_event(bucket, KEY, put(s3, bucket, KEY, HEADER + GOOD_ROWS)))["results"]

    assert (result["status"], result["rows_predicted"], result["rows_failed"]) == ("predicted", 3, 0)
    assert "errors" not in result
    assert [k for k in keys(s3, bucket) if k.startswith("predictions/")] == [OUTPUT]


def test_an_object_under_the_output_prefix_is_not_an_input(batch, s3, bucket):
    s3.put_object(Bucket=bucket, Key="predictions/incoming/old.csv", Body=(HEADER + GOOD_ROWS).encode())
    before = keys(s3, bucket)

    answers = [batch(direct_event(bucket, "predictions/incoming/old.csv")),
               batch(eventbridge_event(bucket, OUTPUT))]

    for answer in answers:
        (result,) = answer["results"]
        assert result["status"] == "skipped"
        assert "outputs are never inputs" in result["reason"]
    assert keys(s3, bucket) == before


def test_delete_events_and_other_names_are_skipped_without_touching_storage(batch, s3, bucket, aws_env):
    answers = [
        batch(direct_event(bucket, KEY, event_name="ObjectRemoved:Delete")),
        batch(eventbridge_event(bucket, KEY, detail_type="Object Deleted")),
        batch(direct_event(bucket, "incoming/photo.jpg")),
    ]
    reasons = [a["results"][0]["reason"] for a in answers]
    assert [a["results"][0]["status"] for a in answers] == ["skipped"] * 3
    assert reasons[0] == "'ObjectRemoved:Delete' is not an object-created event"
    assert reasons[1] == "'Object Deleted' is not an object-created event"
    assert "'photo.jpg' is not a batch input; expected a name ending in .csv, .jsonl" in reasons[2]
    assert aws_env.count("GET", f"/{bucket}/incoming/photo.jpg") == 0


# --- versions ---------------------------------------------------------------------------------------------

V1_ROWS = HEADER + "5.1,3.5,1.4,0.2\n5.0,abc,1.4,0.2\n"  # a failed line: v1 has an errors file


@pytest.mark.parametrize("versioning", ["versioned", "unversioned"])
def test_events_for_v1_and_v2_in_one_sqs_batch_out_of_order_leave_v2s_predictions(batch, s3, bucket, versioning):
    if versioning == "versioned":  # as serverless.yml and infra/aws create the bucket
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = put(s3, bucket, KEY, V1_ROWS)
    v2 = put(s3, bucket, KEY, HEADER + GOOD_ROWS)
    assert ("VersionId" in v1) == (versioning == "versioned")

    answer = batch(sqs_event(("m-v2", bucket, KEY, v2), ("m-v1", bucket, KEY, v1)))

    assert answer["batchItemFailures"] == []  # superseded is not a failure: nothing to retry
    newer, older = answer["results"]
    named = f"versionId {v2['VersionId']}" if versioning == "versioned" else f"eTag {v2['ETag']}"
    assert (newer["status"], newer["version"], newer["rows_predicted"]) == ("predicted", named, 3)
    assert (older["status"], older["message_id"]) == ("skipped", "m-v1")
    assert older["reason"].startswith(f"superseded: s3://{bucket}/{KEY} ")
    assert [r["line"] for r in jsonl(read(s3, bucket, OUTPUT))] == [2, 3, 4]
    assert ERRORS not in keys(s3, bucket)
    metadata = s3.head_object(Bucket=bucket, Key=OUTPUT)["Metadata"]
    assert metadata["input-etag"] == v2["ETag"].strip('"')
    assert metadata.get("input-version-id") == v2.get("VersionId")
    assert metadata["input-sequencer"] == "00643717F9F8B85354"  # the sample's


def test_a_late_eventbridge_event_for_an_older_version_changes_nothing(batch, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = put(s3, bucket, KEY, V1_ROWS)
    assert batch(eventbridge_event(bucket, KEY, v1))["results"][0]["rows_failed"] == 1
    v2 = put(s3, bucket, KEY, HEADER + GOOD_ROWS)
    assert batch(eventbridge_event(bucket, KEY, v2))["results"][0]["status"] == "predicted"
    published = read(s3, bucket, OUTPUT)
    assert ERRORS not in keys(s3, bucket)  # v2 has no failed line: v1's errors file is gone

    (late,) = batch(eventbridge_event(bucket, KEY, v1))["results"]

    assert (late["status"], late["version"]) == ("skipped", f"versionId {v1['VersionId']}")
    assert late["reason"] == (
        f"superseded: s3://{bucket}/{KEY} was read at versionId {v1['VersionId']}, and versionId {v2['VersionId']} "
        "is its current version now; that version's own event publishes its predictions"
    )
    assert read(s3, bucket, OUTPUT) == published and ERRORS not in keys(s3, bucket)


def test_an_output_over_the_part_size_is_a_multipart_upload(make_app, s3_model_uri, s3, bucket):
    from aws_lambda.batch import handle

    harness = make_app(s3_model_uri, BATCH_PART_BYTES=str(5 * 1024 * 1024))
    created = put(s3, bucket, KEY, HEADER + "5.1,3.5,1.4,0.2\n" * 60_000)

    (result,) = handle(harness.app, direct_event(bucket, KEY, created), LambdaContext())["results"]

    assert (result["status"], result["rows_predicted"]) == ("predicted", 60_000)
    assert s3.head_object(Bucket=bucket, Key=OUTPUT)["ETag"].endswith('-2"')  # two parts, one object


# --- failures ---------------------------------------------------------------------------------------------


ARCHIVED = "incoming/archived.csv"  # in S3 Glacier: GetObject answers 403 InvalidObjectState until restored


def test_sqs_partial_failure_lists_exactly_the_failing_message(batch, s3, bucket, harness):
    created = put(s3, bucket, KEY, HEADER + GOOD_ROWS)
    archived_created = put(s3, bucket, ARCHIVED, HEADER + GOOD_ROWS, StorageClass="GLACIER")
    good, archived = f"good-{uuid.uuid4()}", f"archived-{uuid.uuid4()}"

    answer = batch(sqs_event((good, bucket, KEY, created), (archived, bucket, ARCHIVED, archived_created)))

    assert answer["batchItemFailures"] == [{"itemIdentifier": archived}]
    ok, failed = answer["results"]
    assert (ok["message_id"], ok["status"]) == (good, "predicted")
    assert (failed["status"], failed["message_id"], failed["input"], failed["retry"]) == (
        "failed", archived, f"s3://{bucket}/{ARCHIVED}", True)
    assert failed["error"]["message"].startswith(f"s3://{bucket}/{ARCHIVED} cannot be read")
    assert "InvalidObjectState" in failed["error"]["message"]
    assert OUTPUT in keys(s3, bucket)
    records = [line for line in harness.logs() if line["message"] == "batch record"]
    assert [(r["level"], r["status"], r["message_id"]) for r in records] == [
        ("INFO", "predicted", good), ("ERROR", "failed", archived)]
    assert "Traceback" not in json.dumps(records)
    (metrics,) = harness.metrics()
    assert (metrics["Rows"], metrics["RowsFailed"], metrics["InputsFailed"]) == (3, 0, 1)
    assert metrics["source"] == "batch-sqs"


def test_a_failed_direct_event_is_raised_for_lambda_to_retry(batch, s3, bucket):
    from aws_lambda.batch import BatchFailed

    created = put(s3, bucket, ARCHIVED, HEADER + GOOD_ROWS, StorageClass="GLACIER")
    with pytest.raises(BatchFailed) as raised:
        batch(direct_event(bucket, ARCHIVED, created))
    assert str(raised.value).startswith(
        f"1 of 1 input(s) failed; Lambda retries the event: s3://{bucket}/{ARCHIVED} cannot be read")


def test_an_input_deleted_before_it_was_read_is_skipped_as_on_the_other_clouds(batch, s3, bucket):
    """A retry would find it missing for ever; GCP and Azure skip it the same way (core/batch/triggered.py)."""
    answer = batch(sqs_event(("gone-1", bucket, "incoming/not there.csv")))

    assert answer["batchItemFailures"] == []
    (result,) = answer["results"]
    assert (result["status"], result["input"]) == ("skipped", f"s3://{bucket}/incoming/not there.csv")
    assert result["reason"] == (
        f"s3://{bucket}/incoming/not there.csv does not exist (NoSuchKey) (deleted after the event was sent?)")
    assert not [k for k in keys(s3, bucket) if k.startswith("predictions/")]


def test_an_output_prefix_among_the_inputs_fails_naming_the_setting_and_is_not_retried(make_app, s3_model_uri, s3, bucket):
    from aws_lambda.batch import handle

    harness = make_app(s3_model_uri, BATCH_OUTPUT_URI=f"s3://{bucket}/incoming/")
    created = put(s3, bucket, KEY, HEADER + GOOD_ROWS)

    answer = handle(harness.app, sqs_event(("m-1", bucket, KEY, created)), LambdaContext())

    assert answer["batchItemFailures"] == []  # every retry would fail the same way: not retried, as on GCP and Azure
    assert (answer["results"][0]["status"], answer["results"][0]["retry"]) == ("failed", False)
    error = answer["results"][0]["error"]
    assert error["code"] == "invalid_setting"
    assert error["message"].startswith(f"BATCH_OUTPUT_URI=s3://{bucket}/incoming/ is the folder the inputs are in")


# --- queue messages that are not S3 notifications -------------------------------------------------------


def test_sqs_messages_that_are_not_s3_notifications_are_reported_not_retried(batch, harness):
    answer = batch(shared("sqsEvent.json"))

    assert answer["batchItemFailures"] == []
    assert answer["results"] == [
        {"status": "unrecognised", "message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
         "reason": "an SQS message whose body is not JSON; expected an S3 notification"},
        {"status": "unrecognised", "message_id": "2e1424d4-f796-459a-8184-9c92662be6da",
         "reason": "an SQS message whose body is a JSON object with keys 'message', not an S3 notification"},
    ]
    assert [line["level"] for line in harness.logs() if line["message"] == "batch record"] == ["WARNING"] * 2


def test_the_s3_test_event_and_an_sns_envelope_through_sqs(batch, s3, bucket):
    created = put(s3, bucket, KEY, HEADER + GOOD_ROWS)
    test_event = sqs_event(("t-1", bucket, KEY))
    test_event["Records"][0]["body"] = json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00Z", "Bucket": bucket})
    via_sns = sqs_event(("n-1", bucket, KEY, created))
    via_sns["Records"][0]["body"] = json.dumps({"Type": "Notification", "Message": via_sns["Records"][0]["body"]})

    assert batch(test_event) == {"batchItemFailures": [], "results": [
        {"status": "skipped", "message_id": "t-1",
         "reason": "S3's s3:TestEvent (sent once when a notification is configured)"}]}
    (result,) = batch(via_sns)["results"]
    assert (result["status"], result["input"]) == ("predicted", f"s3://{bucket}/{KEY}")


# --- every shared storage or queue sample, as it is ------------------------------------------------------


SAMPLES = {
    # file: [(status, input)] of the results
    "s3Event.json": [("skipped", "s3://lambda-artifacts-deafc19498e3f2df/b21b84d653bb07b05b1e6b33684dc11b")],
    "go-s3-event.json": [("skipped", "s3://sourcebucket/Happy Face.jpg")],
    "s3SqsEvent.json": [("skipped", "s3://xxx/test.pdf")],
    "s3EventBridgeNotificationObjectCreatedEvent.json": [("skipped", "s3://example-bucket/IMG_m7fzo3.jpg")],
    "sqsEvent.json": [("unrecognised", None), ("unrecognised", None)],
    "eventBridgeEvent.json": [("unrecognised", None)],
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_shared_storage_and_queue_sample_as_it_is(name, batch):
    answer = batch(shared(name))
    assert [(r["status"], r.get("input")) for r in answer["results"]] == SAMPLES[name]
    assert all(r.get("reason") for r in answer["results"])
    assert ("batchItemFailures" in answer) == name.startswith(("sqs", "s3Sqs"))
    json.dumps(answer)  # the answer is plain JSON


def test_the_unrelated_eventbridge_sample_says_what_batch_takes(batch):
    (result,) = batch(shared("eventBridgeEvent.json"))["results"]
    assert result["reason"] == (
        "batch(event, context) takes S3 object events (direct, via SQS, via EventBridge 'Object Created'); "
        "it received an EventBridge event (source 'aws.ec2', detail-type 'EC2 Instance State-change Notification')"
    )


def test_the_scheduled_sample_warms_the_batch_function_up(batch):
    answer = batch(shared("scheduledEvent_validation_basic_eventbridge_event.json"))
    assert (answer["warmup"], answer["model"]) == (True, "loaded")


# --- the real entry point -------------------------------------------------------------------------------


def test_the_handler_module_entry_point_in_a_fresh_interpreter(moto, s3, bucket, s3_model_uri):
    created = put(s3, bucket, KEY, HEADER + GOOD_ROWS)
    code = """
        from aws_lambda.handler import batch
        steps["answer"] = batch(json.loads(os.environ["TEST_EVENT"]), Context("entry-1"))
    """
    steps, emf, logs = run_child(code, moto, s3_model_uri, TEST_EVENT=json.dumps(direct_event(bucket, KEY, created)))
    (result,) = steps["answer"]["results"]
    assert (result["status"], result["rows_predicted"]) == ("predicted", 3)
    assert [line["Rows"] for line in emf] == [3]
    (record,) = [line for line in logs if line["message"] == "batch record"]
    assert (record["function_request_id"], record["input"]) == ("entry-1", f"s3://{bucket}/{KEY}")
    assert jsonl(read(s3, bucket, OUTPUT))[0]["prediction"] == "setosa"


# --- typed models ------------------------------------------------------------------------------------------

PEOPLE = (
    "age,fare,pclass,sex,embarked\n"
    '22,7.25,3,male,S\n'
    ',71.28,1,female,"C"\n'  # a missing age: the model imputes it
    'x,8.05,3,male,S\n'  # refused with the HTTP API's words
    '35,53.1,1,"fe\nmale","S, Q"\n'  # quoted line end and comma: unknown categories, ignored by the model
)


@pytest.mark.parametrize("name, body", [
    ("incoming/people.csv", PEOPLE),
    ("incoming/people.json", json.dumps({"instances": [
        {"age": 22, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"},
        {"age": None, "fare": 71.28, "pclass": 1, "sex": "female", "embarked": "C"},
        {"age": "x", "fare": 8.05, "pclass": 3, "sex": "male", "embarked": "S"},
        {"age": 35, "fare": 53.1, "pclass": 1, "sex": "fe\nmale", "embarked": "S, Q"},
    ]})),
])
def test_a_mixed_pipeline_is_predicted_from_s3(make_app, s3, bucket, typed_models, name, body):
    from aws_lambda.batch import handle

    model_key = f"models/{uuid.uuid4().hex[:8]}/mixed.joblib"
    s3.put_object(Bucket=bucket, Key=model_key, Body=typed_models["mixed"].read_bytes())
    harness = make_app(f"s3://{bucket}/{model_key}")
    created = put(s3, bucket, name, body)

    answer = handle(harness.app, direct_event(bucket, name, created), LambdaContext(aws_request_id="typed-1"))

    (result,) = answer["results"]
    assert (result["status"], result["rows_predicted"], result["rows_failed"]) == ("predicted", 3, 1)
    csv_input = name.endswith(".csv")
    lines = jsonl(read(s3, bucket, f"predictions/{name}.predictions.jsonl"))
    assert [r["line"] for r in lines] == ([2, 3, 5] if csv_input else [1, 2, 4])
    assert [r["prediction"] for r in lines] == [False, True, True]
    (error,) = jsonl(read(s3, bucket, f"predictions/{name}.errors.jsonl"))
    where = "line 4, column 'age'" if csv_input else "instances[2].age"
    assert error == {"line": 4 if csv_input else 3, "code": "invalid_value",
                     "message": f"{where} is the string 'x'; expected a number"}


# --- Lambda's time limit --------------------------------------------------------------------------------


class TimedContext(LambdaContext):
    """The runtime's context with its clock: the milliseconds left in the invocation."""

    def __init__(self, remaining_ms: int) -> None:
        super().__init__(aws_request_id="timed-1")
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_a_file_that_cannot_be_finished_in_time_stops_publishes_nothing_and_names_the_fanout_setting(
        harness, s3, bucket, caplog):
    from aws_lambda.batch import handle

    created = put(s3, bucket, KEY, HEADER + GOOD_ROWS)

    late = handle(harness.app, direct_event(bucket, KEY, created), TimedContext(remaining_ms=3_000))
    in_time = handle(harness.app, direct_event(bucket, "incoming/other.csv", put(s3, bucket, "incoming/other.csv",
                                                                               HEADER + GOOD_ROWS)),
                     TimedContext(remaining_ms=600_000))

    (result,) = late["results"]  # a direct invocation that is not raised: a retry would stop the same way
    assert (result["status"], result["retry"], result["error"]["code"]) == ("failed", False, "batch_time_limit")
    message = result["error"]["message"]
    assert message.startswith(f"s3://{bucket}/{KEY} cannot be finished in this invocation: 3 rows were done in ")
    assert "nothing was published" in message and message.endswith("when BATCH_FANOUT_STATE_MACHINE_ARN is set")
    assert not [k for k in keys(s3, bucket) if k.startswith(f"predictions/{KEY}")]
    logged = [r for r in caplog.records if getattr(r, "fields", {}).get("error_code") == "batch_time_limit"]
    assert logged and all(r.levelname == "ERROR" for r in logged)
    assert in_time["results"][0]["status"] == "predicted"
