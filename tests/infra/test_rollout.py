"""Traffic shifting in infra/aws (rollout.tf), applied to moto's server: with deployment_config,
the alias `live` that the HTTP API invokes (the only alias, SnapStart or not), the CodeDeploy
application and deployment group, the three alarms and CodeDeploy's role; a second apply with a
new bundle publishes a version that the alias does not take until a CodeDeploy deployment moves
it, whose revision (the output) moto's CodeDeploy accepts; by hand, the alias' routing config
sends the new version its weight; nothing of it by default.

What moto does not do, so what is checked from Terraform's plan or state only: moto's CodeDeploy
keeps no alarm configuration (it answers {}) nor tags of a deployment group (the copy applied here
ignores those after the group's creation, since putting them back would need UpdateDeploymentGroup,
which moto does not implement), and a deployment stays "Created" there: CodeDeploy's own traffic shifting, its alarm checks and rollbacks are AWS's and
run nowhere here. So the apply's own deployment (terraform_data.shift_predict_traffic, the AWS
CLI's create-deployment and wait) runs here only where it has nothing to do (the alias' version
is the one published); the second apply leaves it to the test (start_deployment = false).
"""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest

from tests.background import MOTO, session_build
from tests.infra import moto_stacks
from tests.infra.moto_stacks import APPLY_VARIABLES, other_bundle, tiny_bundle, var_args

CONFIG = "Canary10Percent5Minutes"
# the model the new version shadows: what the disagreement alarm measures
CANDIDATE_URI = "s3://team-models/iris/v2/model.joblib"
CANDIDATE_SHA256 = hashlib.sha256(b"another model").hexdigest()


# Two stacks of two applies each into moto: the first test of each may wait for its stack's build
# (tests/background.py), on a machine shared with other work longer than the suite's 300 s.
pytestmark = pytest.mark.timeout(900)


# moto's CodeDeploy keeps neither the alarm configuration nor the tags of a deployment group, and
# answers an empty load balancer block: every apply after the first would find them changed and
# update the group, which moto does not implement (UpdateDeploymentGroup). In this copy only,
# Terraform leaves those as created; what it sent is checked in the first plan.
MOTO_KEEPS_NO_ALARM_CONFIGURATION = (
    'resource "aws_codedeploy_deployment_group" "predict" {\n'
    "  lifecycle {\n"
    "    ignore_changes = [alarm_configuration, load_balancer_info, tags_all]\n"
    "  }\n"
    "}\n"
)


@session_build(lane=MOTO)
def codedeploy_stack(tmp_path_factory):
    """deployment_config and snap_start: applied once (version 1, the alias on it), then again
    with a new bundle and start_deployment = false (version 2 published, the alias left)."""
    with moto_stacks.started(tmp_path_factory, "infra-aws-rollout", MOTO_KEEPS_NO_ALARM_CONFIGURATION) as started:
        folder = started.workdir.path.parent
        variables = {**APPLY_VARIABLES, "name": "serverless-ml-shift", "deployment_config": CONFIG, "snap_start": "true",
                     "bundle_path": str(tiny_bundle(folder / "bundle-1.zip")), "metrics_namespace": "team/churn",
                     "candidate_model_uri": CANDIDATE_URI, "candidate_model_sha256": CANDIDATE_SHA256}
        first_plan = started.apply(variables, "first.tfplan")
        first = started.outputs()
        second_variables = {**variables, "bundle_path": str(other_bundle(folder / "bundle-2.zip")), "start_deployment": "false"}
        started.apply(second_variables, "second.tfplan")
        yield started.workdir, first_plan, first, started.outputs(), started.client


def test_turned_off_there_is_no_alias_codedeploy_or_alarm(codedeploy_stack):
    """A plan of the same stack with the defaults (deployment_config and snap_start off): all of
    it goes, and the HTTP API invokes the function itself again."""
    workdir, *_ = codedeploy_stack
    variables = {**APPLY_VARIABLES, "name": "serverless-ml-shift", "bundle_path": str(workdir.path.parent / "bundle-2.zip")}
    result = workdir.run("plan", "-input=false", "-refresh=false", "-out=off.tfplan", *var_args(variables))
    assert result.returncode == 0, result.stderr
    plan = json.loads(workdir.run("show", "-json", "off.tfplan").stdout)
    shifting = {"aws_lambda_alias", "aws_codedeploy_app", "aws_codedeploy_deployment_group", "aws_cloudwatch_metric_alarm",
                "terraform_data", "aws_iam_role_policy"}
    changes = {c["address"]: c["change"] for c in plan["resource_changes"]}
    gone = {address for address, change in changes.items() if change["actions"] == ["delete"]}
    assert {a for a in changes if a.split(".")[0] in shifting and not a.startswith("aws_iam_role_policy.")} <= gone
    assert {"aws_iam_role.codedeploy[0]", "aws_iam_role_policy.codedeploy[0]", "aws_lambda_alias.live[0]"} <= gone
    assert changes["aws_lambda_function.predict"]["after"]["publish"] is False
    integration = changes["aws_apigatewayv2_integration.predict"]["after"]
    assert integration["integration_uri"] is None or ":live/" not in integration["integration_uri"]


def test_the_http_api_invokes_the_one_alias_live_on_a_published_version(codedeploy_stack):
    _, plan, first, _, client = codedeploy_stack
    name = first["function_names"]["predict"]
    aliases = client("lambda").list_aliases(FunctionName=name)["Aliases"]
    assert [a["Name"] for a in aliases] == ["live"]  # SnapStart's own alias is not made beside it
    assert aliases[0]["FunctionVersion"] == first["traffic_shifting"]["target_version"] != "$LATEST"
    (api,) = [a for a in client("apigatewayv2").get_apis()["Items"] if a["Name"] == "serverless-ml-shift"]
    (integration,) = client("apigatewayv2").get_integrations(ApiId=api["ApiId"])["Items"]
    assert integration["IntegrationUri"].endswith(f":function:{name}:live/invocations"), integration
    policy = json.loads(client("lambda").get_policy(FunctionName=name, Qualifier="live")["Policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "apigateway.amazonaws.com"}]
    # moto answers SnapStart ApplyOn None whatever it was sent: the plan says what Terraform sends
    (predict,) = [c["change"]["after"] for c in plan["resource_changes"] if c["address"] == "aws_lambda_function.predict"]
    assert predict["snap_start"] == [{"apply_on": "PublishedVersions"}] and predict["publish"] is True
    configuration = client("lambda").get_function_configuration(FunctionName=name)
    assert configuration["Environment"]["Variables"]["METRICS_NAMESPACE"] == "team/churn"


def test_predict_shadows_the_candidate_model_and_may_read_it_and_batch_neither(codedeploy_stack):
    _, _, first, _, client = codedeploy_stack
    from core.settings import Settings

    predict = client("lambda").get_function_configuration(FunctionName=first["function_names"]["predict"])
    batch = client("lambda").get_function_configuration(FunctionName=first["function_names"]["batch"])
    environment = predict["Environment"]["Variables"]
    assert {k: v for k, v in environment.items() if k.startswith("CANDIDATE_")} == {
        "CANDIDATE_MODEL_URI": CANDIDATE_URI, "CANDIDATE_MODEL_SHA256": CANDIDATE_SHA256, "CANDIDATE_MODE": "shadow"}
    candidate = Settings.from_env(environment).candidate  # core accepts what the deployment sets
    assert candidate is not None and (candidate.mode, candidate.model_sha256) == ("shadow", CANDIDATE_SHA256)
    assert not [k for k in batch["Environment"]["Variables"] if k.startswith("CANDIDATE_")]
    iam = client("iam")
    role = predict["Role"].rsplit("/", 1)[1]
    documents = [iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in iam.list_role_policies(RoleName=role)["PolicyNames"]]
    reads = {r for d in documents for s in (json.loads(d) if isinstance(d, str) else d)["Statement"]
             if "s3:GetObject" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
             for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    model, other = "arn:aws:s3:::team-models/iris/v3/model.joblib", "arn:aws:s3:::team-models/iris/v2/model.joblib"
    assert reads == {model, model + ".manifest.json", other, other + ".manifest.json"}


def test_codedeploy_has_an_application_and_a_deployment_group_for_predict(codedeploy_stack):
    _, plan, first, _, client = codedeploy_stack
    codedeploy = client("codedeploy")
    shifting = first["traffic_shifting"]
    application = codedeploy.get_application(applicationName=shifting["application"])["application"]
    assert application["computePlatform"] == "Lambda"
    group = codedeploy.get_deployment_group(
        applicationName=shifting["application"], deploymentGroupName=shifting["deployment_group"])["deploymentGroupInfo"]
    assert group["deploymentConfigName"] == f"CodeDeployDefault.Lambda{CONFIG}"
    assert group["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert group["autoRollbackConfiguration"]["enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["autoRollbackConfiguration"]["events"]
    assert group["serviceRoleArn"].endswith(":role/serverless-ml-shift-predict-codedeploy")
    # moto keeps no alarm configuration (it answers {}): the plan says what Terraform sent
    (planned,) = [c["change"]["after"] for c in plan["resource_changes"] if c["type"] == "aws_codedeploy_deployment_group"]
    (alarms,) = planned["alarm_configuration"]
    assert alarms["enabled"] is True
    assert sorted(alarms["alarms"]) == sorted(shifting["alarms"]) == [
        "serverless-ml-shift-predict-error-rate", "serverless-ml-shift-predict-http-5xx-rate",
        "serverless-ml-shift-predict-shadow-disagreement-rate"]
    warnings.warn("moto's CodeDeploy keeps no alarm configuration and never runs a deployment: the alarms of the "
                  "deployment group are checked in the plan, the traffic shift itself nowhere", stacklevel=1)


def _metric(alarm: dict, metric_id: str) -> dict:
    (query,) = [m for m in alarm["Metrics"] if m["Id"] == metric_id]
    return query


def test_the_alarms_are_shares_of_what_the_new_version_changes(codedeploy_stack):
    _, _, first, _, client = codedeploy_stack
    name = first["function_names"]["predict"]
    alarms = {a["AlarmName"]: a for a in client("cloudwatch").describe_alarms(AlarmNamePrefix="serverless-ml-shift-")["MetricAlarms"]}
    assert set(alarms) == set(first["traffic_shifting"]["alarms"])
    expected = {
        "serverless-ml-shift-predict-error-rate": (5, "AWS/Lambda", "Errors", "Invocations", {"FunctionName": name, "Resource": f"{name}:live"}),
        "serverless-ml-shift-predict-http-5xx-rate": (5, "AWS/ApiGateway", "5xx", "Count", None),
        "serverless-ml-shift-predict-shadow-disagreement-rate": (10, "team/churn", "ShadowDisagreements", "ShadowRows", {"service": name}),
    }
    for alarm_name, (threshold, namespace, part, whole, dimensions) in expected.items():
        alarm = alarms[alarm_name]
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
            threshold, "GreaterThanThreshold", "notBreaching"), alarm_name
        assert _metric(alarm, "percent")["Expression"] == "IF(whole > 0, 100 * part / whole, 0)"
        for metric_id, metric_name in (("part", part), ("whole", whole)):
            stat = _metric(alarm, metric_id)["MetricStat"]
            assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"], stat["Period"], stat["Stat"]) == (
                namespace, metric_name, 60, "Sum"), alarm_name
            got = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
            if dimensions is None:  # the HTTP API's id
                assert set(got) == {"ApiId", "Stage"} and got["Stage"] == "$default"
            else:
                assert got == dimensions, alarm_name


def test_codedeploy_may_move_predicts_alias_and_read_the_alarms_only(codedeploy_stack):
    _, _, first, _, client = codedeploy_stack
    iam = client("iam")
    role = iam.get_role(RoleName="serverless-ml-shift-predict-codedeploy")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "codedeploy.amazonaws.com"}]
    assert not iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    (policy_name,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document

    def as_list(value):
        return [value] if isinstance(value, str) else list(value)
    granted = {(a, r) for s in document["Statement"] for a in as_list(s["Action"]) for r in as_list(s["Resource"])}
    function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{first['function_names']['predict']}"
    alarm = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:serverless-ml-shift-predict-"
    assert granted == {
        ("lambda:GetAlias", function_arn), ("lambda:GetAlias", f"{function_arn}:live"),
        ("lambda:UpdateAlias", function_arn), ("lambda:UpdateAlias", f"{function_arn}:live"),
        ("lambda:GetProvisionedConcurrencyConfig", function_arn), ("lambda:GetProvisionedConcurrencyConfig", f"{function_arn}:*"),
        ("cloudwatch:DescribeAlarms", alarm + "error-rate"), ("cloudwatch:DescribeAlarms", alarm + "http-5xx-rate"),
        ("cloudwatch:DescribeAlarms", alarm + "shadow-disagreement-rate"),
    }


def test_a_new_version_waits_for_codedeploy_which_takes_the_revision_terraform_writes(codedeploy_stack):
    _, _, first, second, client = codedeploy_stack
    name = first["function_names"]["predict"]
    before, after = first["traffic_shifting"], second["traffic_shifting"]
    assert before["current_version"] == before["target_version"]  # the first apply had nothing to shift
    assert after["current_version"] == before["target_version"]
    assert int(after["target_version"]) > int(after["current_version"])
    # Terraform published the version and left the alias to CodeDeploy
    assert client("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"] == after["current_version"]
    assert {v["Version"] for v in client("lambda").list_versions_by_function(FunctionName=name)["Versions"]} >= {
        after["current_version"], after["target_version"]}
    assert f"CurrentVersion: \"{after['current_version']}\"" in after["appspec"]
    assert f"TargetVersion: \"{after['target_version']}\"" in after["appspec"]
    assert "version: 0.0" in after["appspec"] and "Alias: \"live\"" in after["appspec"]

    # what the apply would run (start_deployment = true), sent by boto3 instead of the AWS CLI
    revision = json.loads(after["command"].split("--revision '", 1)[1].rstrip("'"))
    codedeploy = client("codedeploy")
    deployment_id = codedeploy.create_deployment(
        applicationName=after["application"], deploymentGroupName=after["deployment_group"], revision=revision)["deploymentId"]
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["deploymentConfigName"] == f"CodeDeployDefault.Lambda{CONFIG}"
    assert info["revision"]["appSpecContent"]["content"] == after["appspec"]


@session_build(lane=MOTO)
def weighted_stack(tmp_path_factory):
    """stable_version = 1 with new_version_weight = 0.1: applied once (version 1 is the stable
    one, so the alias has no second version), then with a new bundle (version 2 gets 10%)."""
    with moto_stacks.started(tmp_path_factory, "infra-aws-weighted") as started:
        folder = started.workdir.path.parent
        variables = {**APPLY_VARIABLES, "name": "serverless-ml-weighted", "stable_version": "1",
                     "new_version_weight": "0.1", "bundle_path": str(tiny_bundle(folder / "bundle-1.zip"))}
        started.apply(variables, "first.tfplan")
        first = started.outputs()
        second_plan = started.apply({**variables, "bundle_path": str(other_bundle(folder / "bundle-2.zip"))}, "second.tfplan")
        yield started.workdir, variables, first, second_plan, started.outputs(), started.client


def test_by_hand_the_alias_keeps_the_stable_version_and_gives_the_new_one_its_weight(weighted_stack):
    _, _, first, second_plan, second, client = weighted_stack
    name = second["function_names"]["predict"]
    assert first["traffic_shifting"]["current_version"] == first["traffic_shifting"]["target_version"] == "1"
    alias = client("lambda").get_alias(FunctionName=name, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {second["traffic_shifting"]["target_version"]: 0.1}
    assert second["traffic_shifting"]["target_version"] == "2"
    types = {c["type"] for c in second_plan["resource_changes"]}
    assert not types & {"aws_codedeploy_app", "aws_codedeploy_deployment_group", "aws_cloudwatch_metric_alarm"}
    (api,) = [a for a in client("apigatewayv2").get_apis()["Items"] if a["Name"] == "serverless-ml-weighted"]
    (integration,) = client("apigatewayv2").get_integrations(ApiId=api["ApiId"])["Items"]
    assert integration["IntegrationUri"].endswith(f":function:{name}:live/invocations"), integration


WRONG_VARIABLES = {
    "deployment_config": ("Canary10Percent", "deployment_config must be empty (no traffic shifting) or one of CodeDeploy's Lambda configurations"),
    "rollback_error_percent": ("0", "rollback_error_percent must be a percentage above 0 and at most 100"),
    "rollback_disagreement_percent": ("101", "rollback_disagreement_percent must be a percentage above 0 and at most 100"),
    "stable_version": ("$LATEST", "stable_version must be a published version number of predict, such as 7, or empty"),
    "new_version_weight": ("1", "new_version_weight must be from 0 to below 1"),
    "metrics_namespace": ("AWS/Lambda", "metrics_namespace must be 1-255 characters"),
    "candidate_model_uri": ("s3://team-models/iris/v2/model.h5", "candidate_model_uri must be empty or an S3 object with a model file extension"),
    "candidate_mode": ("blue", "candidate_mode must be shadow or canary"),
    "candidate_percent": ("101", "candidate_percent must be from 0 to 100"),
}


def test_wrong_rollout_variables_are_refused_naming_them(weighted_stack):
    workdir, variables, *_ = weighted_stack
    wrong = {name: value for name, (value, _) in WRONG_VARIABLES.items()}
    result = workdir.run("plan", "-input=false", "-refresh=false", *var_args({**variables, **wrong}))
    assert result.returncode != 0
    said = " ".join(result.stderr.split())
    for name, (value, expected) in WRONG_VARIABLES.items():
        assert expected in said, f"-var {name}={value} was not refused with {expected!r}:\n{said}"


def test_both_ways_at_once_are_refused(weighted_stack):
    workdir, variables, *_ = weighted_stack
    result = workdir.run("plan", "-input=false", "-refresh=false", *var_args({**variables, "deployment_config": CONFIG}))
    assert result.returncode != 0
    assert ('deployment_config = "Canary10Percent5Minutes" and stable_version = "1": choose one way of shifting traffic'
            in " ".join(result.stderr.split())), result.stderr
