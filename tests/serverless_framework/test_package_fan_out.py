"""`sls package` with `--param=fanOut=true`: the batch fan-out's state machine (serverless-step-functions,
completed by serverless_ml/bundles/fan_out.js), its three step functions and least-privilege roles,
the batch function allowed to start that state machine alone; nothing of it without the param.

The definition in the template is infra/aws/fanout.asl.json.tftpl with the steps' ARNs put in (the
source Terraform reads too), and passes asl-validator (npm, pinned in package.json). cfn-lint and
checkov run on this template (test_template.py: it is packaged_shifting's), `sls deploy` into moto
in test_deploy_moto.py.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.aws_lambda.test_fanout import rendered_definition
from tests.serverless_framework import sls_support as sls
from tests.support import REPO

ASL_VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"
STEPS = {"plan": "FanoutPlanLambdaFunction", "part": "FanoutPartLambdaFunction", "merge": "FanoutMergeLambdaFunction"}
MACHINE_NAME = f"{sls.SERVICE}-{sls.STAGE}-batch-fanout"


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _grants(role: dict) -> dict[str, list]:
    granted: dict[str, list] = {}
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in _as_list(statement["Action"]):
                granted.setdefault(action, []).extend(_as_list(statement["Resource"]))
    return granted


def definition_of(packaged) -> tuple[dict, dict[str, str]]:
    """The state machine's DefinitionString, its pseudo parameters put in as moto's us-east-1 and
    account would; and the ARN of each step it invokes."""
    text = packaged.template()["Resources"]["BatchFanOutStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    assert isinstance(text, str), "an Fn::Sub variables map (which moto's CloudFormation cannot read)"
    for name, value in (("AWS::Partition", "aws"), ("AWS::Region", "us-east-1"), ("AWS::AccountId", "123456789012")):
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, "a placeholder was left in the definition"
    arns = {step: f"arn:aws:lambda:us-east-1:123456789012:function:{sls.SERVICE}-{sls.STAGE}-fanout{step.capitalize()}"
            for step in STEPS}
    return json.loads(text), arns


def test_without_the_param_nothing_of_the_fan_out_is_deployed(packaged):
    resources = packaged.template()["Resources"]
    assert not packaged.resources("AWS::StepFunctions::StateMachine")
    assert not {name for name in resources if name.startswith(("Fanout", "FanOut"))}
    batch = resources["BatchLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert not {name for name in batch if name.startswith("BATCH_FANOUT")}
    actions = json.dumps(resources["BatchRole"]["Properties"]["Policies"])
    assert "states:" not in actions
    rules = resources["S3BucketInputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [r["Id"] for r in rules] == ["expire-replaced-versions"]


def test_the_definition_is_the_shared_template_and_asl_validator_passes_it(packaged_shifting, tmp_path):
    definition, arns = definition_of(packaged_shifting)
    assert definition == json.loads(rendered_definition(
        plan_function_arn=arns["plan"], part_function_arn=arns["part"], merge_function_arn=arns["merge"],
        max_concurrency=str(sls.FAN_OUT_MAX_CONCURRENCY)))
    parts = definition["States"]["Parts"]
    assert parts["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert parts["MaxConcurrency"] == sls.FAN_OUT_MAX_CONCURRENCY
    assert parts["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"

    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    checked = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = {**definition, "States": {k: v for k, v in definition["States"].items() if k != "Merge"}}
    path.write_text(json.dumps(broken))
    refused = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "Merge" in refused.stdout + refused.stderr  # it does check


def test_the_state_machine_logs_traces_and_runs_on_its_own_role(packaged_shifting):
    machine = packaged_shifting.template()["Resources"]["BatchFanOutStateMachine"]["Properties"]
    assert machine["StateMachineName"] == MACHINE_NAME and machine["StateMachineType"] == "STANDARD"
    assert machine["RoleArn"] == {"Fn::GetAtt": ["FanOutStateMachineRole", "Arn"]}
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ERROR"
    # the states hold URIs, versions and counts (never rows): a failed one's input names its part
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is True


def test_each_role_may_do_only_its_part(packaged_shifting):
    resources = packaged_shifting.template()["Resources"]
    machine_role = resources["FanOutStateMachineRole"]["Properties"]
    (trust,) = machine_role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted = _grants(resources["FanOutStateMachineRole"])
    assert granted["lambda:InvokeFunction"] == [{"Fn::GetAtt": [function, "Arn"]} for function in STEPS.values()]
    assert granted["s3:GetObject"] == [{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{sls.INPUT_BUCKET}/predictions/_parts/*"}]
    machine_arn = f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{MACHINE_NAME}"
    assert granted["states:StartExecution"] == [{"Fn::Sub": machine_arn}]
    executions = machine_arn.replace(":stateMachine:", ":execution:") + "/*"
    assert granted["states:DescribeExecution"] == granted["states:StopExecution"] == [{"Fn::Sub": executions}]
    # only the APIs that take no resource (X-Ray, CloudWatch Logs' delivery) are on "*"
    on_everything = {action for action, where in granted.items() if "*" in where}
    assert on_everything and all(a.startswith(("xray:", "logs:")) for a in on_everything)
    assert not {a for a in on_everything if a in ("logs:PutLogEvents", "logs:CreateLogStream")}

    steps = _grants(resources["FanOutStepsRole"])
    assert not {a for a in steps if a.startswith(("states:", "sqs:", "lambda:"))}
    assert steps["s3:PutObject"] == [{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{sls.INPUT_BUCKET}/predictions/*"}]

    batch = _grants(resources["BatchRole"])
    assert batch["states:StartExecution"] == [{"Ref": "BatchFanOutStateMachine"}]
    assert not {a for a in batch if a.startswith("states:") and a != "states:StartExecution"}


def test_batch_starts_it_and_the_steps_are_the_handlers_the_definition_invokes(packaged_shifting):
    resources = packaged_shifting.template()["Resources"]
    batch = resources["BatchLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert batch["BATCH_FANOUT_STATE_MACHINE_ARN"] == {"Ref": "BatchFanOutStateMachine"}
    for step, function in STEPS.items():
        properties = resources[function]["Properties"]
        assert properties["Handler"] == f"aws_lambda/handler.fanout_{step}"
        assert properties["Role"] == {"Fn::GetAtt": ["FanOutStepsRole", "Arn"]}
        assert properties["Timeout"] == 900
        assert "BATCH_FANOUT_STATE_MACHINE_ARN" not in properties["Environment"]["Variables"]
    assert "BATCH_FANOUT_PART_BYTES" in resources["FanoutPlanLambdaFunction"]["Properties"]["Environment"]["Variables"]
    # the warm-up plugin (warmup=true in this package) pings predict only
    warmer = json.dumps(resources.get("WarmUpPluginDefaultLambdaFunction", {}))
    assert not re.search(r"fanout", warmer, re.IGNORECASE)
    rules = resources["S3BucketInputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (parts_rule,) = [r for r in rules if r["Id"] == "expire-unmerged-fanout-parts"]
    assert parts_rule["Prefix"] == "predictions/_parts/" and parts_rule["ExpirationInDays"] == 7


@pytest.fixture(scope="module")
def service_copy(tmp_path_factory):
    return sls.copy_service(tmp_path_factory.mktemp("sls-print-fan-out") / "service")


@pytest.mark.parametrize("param, expected", [
    ("--param=fanOut=maybe", "fanOut=maybe is not allowed; expected true or false"),
    ("--param=fanOutMaxConcurrency=0", "fanOutMaxConcurrency=0 is not allowed; expected a whole number from 1 to 10000"),
])
def test_a_wrong_fan_out_param_fails_before_anything_is_built(service_copy, param, expected):
    result = sls.run_sls(["print", "--stage", "dev", *sls.PARAMS, param, "--format", "json", "--path", "custom.fanOut"],
                         sls.sls_env(), timeout=120, service=service_copy)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
