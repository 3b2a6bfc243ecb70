"""The CloudFormation `sls package` wrote: what it wires (routes, the batch trigger and its loop
guard, least-privilege roles), and what cfn-lint and checkov say of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

CHECKOV_HINT = "make .venv-checkov/.installed (or set CHECKOV to a checkov executable)"


def _statements(role: dict) -> list[dict]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _sub_text(value) -> str:
    """'arn:${AWS::Partition}:s3:::bucket/key' from {"Fn::Sub": ...} or a plain string."""
    return value["Fn::Sub"] if isinstance(value, dict) and "Fn::Sub" in value else json.dumps(value)


def _resources_of(statement: dict) -> list[str]:
    resources = statement["Resource"]
    return [_sub_text(r) for r in (resources if isinstance(resources, list) else [resources])]


def test_the_http_api_sends_every_route_to_predict(packaged):
    routes = {r["Properties"]["RouteKey"] for r in packaged.resources("AWS::ApiGatewayV2::Route").values()}
    assert {"POST /predict", "GET /health", "GET /model", "GET /openapi.json"} <= routes
    # OPTIONS preflights, unknown routes (404) and wrong methods (405) are answered by core
    assert "$default" in routes
    (integration,) = packaged.resources("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    function = packaged.template()["Resources"]["PredictLambdaFunction"]["Properties"]
    assert function["Handler"] == "aws_lambda/handler.predict"
    assert function["Runtime"] == "python3.12" and function["Architectures"] == ["x86_64"]


def test_the_batch_trigger_covers_the_input_prefix_and_never_the_outputs(packaged):
    bucket = packaged.template()["Resources"]["S3BucketInputBucket"]["Properties"]
    configurations = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    filters = []
    for configuration in configurations:
        assert configuration["Event"] == "s3:ObjectCreated:*"
        assert configuration["Function"] == {"Fn::GetAtt": ["BatchLambdaFunction", "Arn"]}
        rules = {r["Name"]: r["Value"] for r in configuration["Filter"]["S3Key"]["Rules"]}
        filters.append((rules["prefix"], rules["suffix"]))
    assert sorted(filters) == sorted(("incoming/", s) for s in (".csv", ".jsonl", ".json", ".csv.gz", ".jsonl.gz", ".json.gz"))
    environment = packaged.template()["Resources"]["BatchLambdaFunction"]["Properties"]["Environment"]["Variables"]
    output_prefix = environment["BATCH_OUTPUT_URI"].split("/", 3)[3]
    assert output_prefix == "predictions/"
    assert not any(output_prefix.startswith(prefix) or prefix.startswith(output_prefix) for prefix, _ in filters)
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


def test_each_function_may_do_only_its_own_work(packaged):
    resources = packaged.template()["Resources"]
    assert resources["PredictLambdaFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["PredictRole", "Arn"]}
    assert resources["BatchLambdaFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["BatchRole", "Arn"]}
    model_object = "arn:${AWS::Partition}:s3:::serverless-ml-local-input/models/model.joblib"

    predict = _statements(resources["PredictRole"])
    batch = _statements(resources["BatchRole"])
    for statement in predict + batch:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in action for action in actions), statement
        assert all("*" not in r or r.endswith("/*") for r in _resources_of(statement)), statement

    def granted(statements, action):
        return sorted(r for s in statements if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
                      for r in _resources_of(s))

    assert granted(predict, "s3:GetObject") == [model_object, model_object + ".manifest.json"]
    assert granted(predict, "s3:PutObject") == []
    inputs = "arn:${AWS::Partition}:s3:::serverless-ml-local-input/incoming/*"
    outputs = "arn:${AWS::Partition}:s3:::serverless-ml-local-input/predictions/*"
    # the outputs are looked at (HeadObject) before each conditional write
    assert granted(batch, "s3:GetObject") == sorted([model_object, model_object + ".manifest.json", inputs, outputs])
    assert granted(batch, "s3:GetObjectVersion") == [inputs]  # the version an event names, even replaced since
    assert granted(batch, "s3:PutObject") == [outputs]
    assert granted(batch, "s3:DeleteObject") == granted(batch, "s3:PutObject")  # a stale errors file is removed
    assert granted(batch, "s3:AbortMultipartUpload") == granted(batch, "s3:PutObject")  # a failed upload in parts
    assert granted(predict, "s3:DeleteObject") == []


@pytest.fixture(params=["packaged", "packaged_snapstart", "packaged_shifting", "packaged_shifting_snapstart"])
def any_packaged(request):
    """The default package, the one with SnapStart on arm64 (its alias and version), and the two
    with traffic shifting (CodeDeploy, alarms, its role; with SnapStart: one alias for both)."""
    return request.getfixturevalue(request.param)


def test_cfn_lint_finds_no_error(any_packaged):
    packaged = any_packaged
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint if cfn_lint.exists() else "cfn-lint"), "--format", "json", str(packaged.update_template), str(packaged.create_template)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode in (0, 4, 8, 12), result.stderr[-3000:]  # 2 is the bit for errors
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]
    # What remains are warnings about DependsOn lists the framework itself writes (W3005).
    assert {f["Rule"]["Id"] for f in findings} <= {"W3005"}, json.dumps(findings, indent=1)[:4000]


def _checkov() -> Path:
    configured = os.environ.get("CHECKOV")
    path = Path(configured) if configured else REPO / ".venv-checkov" / "bin" / "checkov"
    if not path.exists():
        pytest.skip(f"checkov is not installed at {path}: {CHECKOV_HINT}")
    return path


def test_checkov_passes_and_every_skipped_check_says_why(any_packaged, tmp_path):
    packaged = any_packaged
    checkov = _checkov()
    result = subprocess.run(
        # The update template is the stack as deployed; the create template is its first step
        # (the deployment bucket alone, which the update template holds too, with its reasons).
        [str(checkov), "--framework", "cloudformation", "--output", "json", "--skip-download",
         "-f", str(packaged.update_template)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert sum(r["summary"]["resource_count"] for r in reports) > 20
    assert not any(r["summary"]["parsing_errors"] for r in reports)
    assert not failed, f"checkov failed checks: {failed}"
    unexplained = [(c["check_id"], c["resource"]) for c in skipped
                   if len((c["check_result"].get("suppress_comment") or "").strip()) < 20]
    assert not unexplained, f"skipped without a written reason: {unexplained}"
