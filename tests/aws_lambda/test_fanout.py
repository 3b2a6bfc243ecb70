"""Fan-out on AWS: the state machine's three steps (aws_lambda/fanout.py) called directly, in the
order the definition runs them, against moto's S3; and the batch trigger with
BATCH_FANOUT_STATE_MACHINE_ARN starting executions on moto's Step Functions.

moto records a StartExecution (its name, its input) but does not run the state machine here: its
execution of a definition invokes Lambda tasks in Docker, which this machine does not have. So the
steps are run by the test, as the definition would: plan, every item of the parts list the plan
wrote (what the Distributed Map's S3 ItemReader reads), one part again (a retry), merge with the
Map's results. The definition itself is checked by asl-validator (tests/serverless_framework/
test_fanout_definition.py) and created by `sls deploy` and `terraform apply` into moto.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aws_lambda.step_functions import SETTING, execution_name, state_machine_arn_from_env
from core.errors import SettingsError
from tests.aws_lambda.lambda_support import LambdaContext
from tests.aws_lambda.test_batch import direct_event, put, sqs_event
from tests.core.batch.test_fanout import SMALL_PARTS, csv_file

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "aws" / "fanout.asl.json.tftpl"
KEY = "incoming/big day.csv"


def rendered_definition(**values: str) -> str:
    """The definition template with ``values`` put in, as Terraform's templatefile and
    serverless_ml/bundles/fan_out.js do."""
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], TEMPLATE.read_text())


@pytest.fixture
def bucket(s3) -> str:
    """A versioned bucket, as the deployments make it."""
    import uuid

    name = f"data-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def harness(make_app, s3_model_uri, bucket):
    return make_app(s3_model_uri, BATCH_OUTPUT_URI=f"s3://{bucket}/predictions/", **SMALL_PARTS)


def keys(s3, bucket: str, prefix: str = "") -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}


def read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


# --- the steps, in the definition's order ---------------------------------------------------------


def test_plan_every_part_and_merge_write_the_bytes_of_one_run_and_leave_no_part(harness, s3, bucket):
    from aws_lambda import fanout
    from core.batch.engine import run_batch
    from core.storage import parse_uri

    data, bad = csv_file()
    created = put(s3, bucket, KEY, data)
    context = LambdaContext(aws_request_id="step-1")
    request = {"input": f"s3://{bucket}/{KEY}", "version": {"version_id": created["VersionId"]}}

    planned = fanout.plan_step(harness.app, request, context)
    assert planned["status"] == "fan_out", planned
    parts_key = planned["parts"]["key"]
    assert parts_key.startswith("predictions/_parts/incoming/big day.csv/") and parts_key.endswith("/parts.json")
    assert "parts" not in planned["plan"] and len(json.dumps(planned)) < 2048  # the state stays small
    parts = json.loads(read(s3, planned["parts"]["bucket"], parts_key))  # what the S3 ItemReader reads
    assert len(parts) == planned["parts"]["count"] >= 3

    results = [fanout.part_step(harness.app, part, context) for part in parts]
    again = fanout.part_step(harness.app, parts[1], context)  # a retried part writes the same objects
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in results[1].items() if k != "seconds"}
    state = {**planned, "results": results}  # the Map's ResultPath
    merged = fanout.merge_step(harness.app, state, context)
    assert merged["status"] == "predicted" and merged["rows_failed"] == len(bad)
    assert not keys(s3, bucket, "predictions/_parts/"), "parts or the parts list were left behind"

    one_run = run_batch(parse_uri(f"s3://{bucket}/{KEY}"), harness.app.service.model, harness.app.service.settings,
                        output_prefix=parse_uri(f"s3://{bucket}/one-run/"))
    assert one_run.rows_failed == len(bad)
    for suffix in (".predictions.jsonl", ".errors.jsonl"):
        assert read(s3, bucket, f"predictions/{KEY}{suffix}") == read(s3, bucket, f"one-run/{KEY}{suffix}")

    lines = harness.logs()
    steps = [(line["step"], line["status"]) for line in lines if line.get("message") == "fanout step"]
    assert steps == [("plan", "fan_out"), *[("part", "predicted")] * (len(parts) + 1), ("merge", "predicted")]
    sources = [m["source"] for m in harness.metrics()]
    assert sources == ["fanout-plan", *["fanout-part"] * (len(parts) + 1), "fanout-merge"]
    assert harness.metrics()[-1]["Rows"] == merged["rows_predicted"]


def test_a_small_file_is_one_run_and_a_replaced_input_ends_skipped_not_retried(harness, s3, bucket):
    from aws_lambda import fanout

    context = LambdaContext()
    small = put(s3, bucket, "incoming/small.csv", "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    request = {"input": f"s3://{bucket}/incoming/small.csv", "version": {"version_id": small["VersionId"]}}
    planned = fanout.plan_step(harness.app, request, context)
    assert planned["status"] == "whole", planned
    ran = fanout.part_step(harness.app, {"whole": planned["request"]}, context)  # the definition's Whole state
    assert ran["status"] == "predicted" and ran["rows_predicted"] == 1

    old = put(s3, bucket, KEY, csv_file()[0])
    put(s3, bucket, KEY, csv_file(seed=9)[0])  # replaced before the execution planned it
    skipped = fanout.plan_step(harness.app, {"input": f"s3://{bucket}/{KEY}", "version": {"version_id": old["VersionId"]}},
                               context)
    assert skipped["status"] == "skipped" and skipped["reason"].startswith("superseded:")


def test_what_no_retry_can_cure_raises_the_name_the_definitions_retry_skips(harness):
    from aws_lambda import fanout

    with pytest.raises(fanout.StepNotRetried, match="takes one part of a plan"):
        fanout.part_step(harness.app, {"input": "s3://b/k"}, LambdaContext())
    with pytest.raises(fanout.StepNotRetried, match=r"takes \{\"input\""):
        fanout.plan_step(harness.app, {"key": "k"}, LambdaContext())
    definition = json.loads(rendered_definition(plan_function_arn="p", part_function_arn="q", merge_function_arn="m",
                                                max_concurrency="10"))
    tasks = [definition["States"][name] for name in ("Plan", "Merge", "Whole")]
    tasks.append(definition["States"]["Parts"]["ItemProcessor"]["States"]["Part"])
    for task in tasks:
        first = task["Retry"][0]
        assert fanout.StepNotRetried.__name__ in first["ErrorEquals"] and first["MaxAttempts"] == 0
        assert task["Retry"][-1]["ErrorEquals"] == ["States.ALL"] and task["Retry"][-1]["BackoffRate"] > 1


# --- the trigger, on moto's Step Functions ---------------------------------------------------------


@pytest.fixture
def state_machine(aws_env, monkeypatch) -> str:
    """The fan-out definition created in moto's Step Functions (the same server as S3)."""
    import uuid

    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", aws_env.url)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:serverless-ml-local-fanout-{}"
    definition = rendered_definition(plan_function_arn=arn.format("plan"), part_function_arn=arn.format("part"),
                                     merge_function_arn=arn.format("merge"), max_concurrency="4")
    created = boto3.client("stepfunctions").create_state_machine(
        name=f"fanout-{uuid.uuid4().hex[:8]}", definition=definition,
        roleArn="arn:aws:iam::123456789012:role/serverless-ml-local-fanout")
    return created["stateMachineArn"]


def executions(arn: str) -> list[dict]:
    import boto3

    sfn = boto3.client("stepfunctions")
    return [sfn.describe_execution(executionArn=e["executionArn"])
            for e in sfn.list_executions(stateMachineArn=arn)["executions"]]


def test_the_trigger_starts_one_execution_for_a_large_file_and_runs_a_small_one_itself(
        harness, state_machine, s3, bucket):
    from aws_lambda.batch import handle

    harness.app.state_machine_arn = state_machine_arn_from_env({SETTING: state_machine})
    big = put(s3, bucket, KEY, csv_file()[0])
    answer = handle(harness.app, direct_event(bucket, KEY, big), LambdaContext())
    (result,) = answer["results"]
    assert result["status"] == "fanned_out", result
    (execution,) = executions(state_machine)
    assert result["execution"] == execution["executionArn"]
    started = json.loads(execution["input"])
    assert started["input"] == f"s3://{bucket}/{KEY}" and started["version"]["version_id"] == big["VersionId"]
    assert execution["name"] == execution_name(started)
    assert not keys(s3, bucket, "predictions/"), "the trigger itself wrote outputs"

    # the same event again, directly and through SQS (at-least-once delivery): no second execution
    again = handle(harness.app, direct_event(bucket, KEY, big), LambdaContext())
    queued = sqs_event(("m-1", bucket, KEY, big))
    body = json.loads(queued["Records"][0]["body"])
    # S3's own notification, relayed by SQS: the same sequencer as the direct one
    body["Records"][0]["s3"]["object"]["sequencer"] = direct_event(bucket, KEY, big)["Records"][0]["s3"]["object"]["sequencer"]
    queued["Records"][0]["body"] = json.dumps(body)
    via_sqs = handle(harness.app, queued, LambdaContext())
    assert again["results"][0]["execution"] == via_sqs["results"][0]["execution"] == execution["executionArn"]
    assert via_sqs["batchItemFailures"] == []
    assert len(executions(state_machine)) == 1

    small = put(s3, bucket, "incoming/small.csv", "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    ran = handle(harness.app, direct_event(bucket, "incoming/small.csv", small), LambdaContext())
    assert ran["results"][0]["status"] == "predicted"
    assert len(executions(state_machine)) == 1
    assert [m["InputsFannedOut"] for m in harness.metrics()] == [1, 1, 1, 0]


def test_a_state_machine_that_does_not_exist_is_a_setting_not_retried_and_a_wrong_arn_fails_the_init(
        harness, state_machine, s3, bucket):
    from aws_lambda.batch import handle

    harness.app.state_machine_arn = state_machine + "-gone"
    big = put(s3, bucket, KEY, csv_file()[0])
    answer = handle(harness.app, sqs_event(("m-1", bucket, KEY, big)), LambdaContext())
    (result,) = answer["results"]
    assert result["status"] == "failed" and result["retry"] is False and answer["batchItemFailures"] == []
    assert result["error"]["code"] == "invalid_setting" and SETTING in result["error"]["message"]

    with pytest.raises(SettingsError, match=f"{SETTING}='arn:aws:lambda:.*' is not a state machine ARN; expected"):
        state_machine_arn_from_env({SETTING: "arn:aws:lambda:us-east-1:123456789012:function:x"})
    assert state_machine_arn_from_env({SETTING: " "}) is None
