"""`sls package` with `--param=deploymentPreference=...`: predict's published versions behind the
alias `live`, which the HTTP API invokes and CodeDeploy shifts from one version to the next
(serverless-plugin-canary-deployments, completed by serverless_ml/bundles/traffic_shifting.js),
rolled back by three alarms, with a CodeDeploy role allowed only that; nothing of it without the
param; one alias for SnapStart and the shift together. cfn-lint and checkov run on these templates
too (test_template.py), `sls deploy` into moto in test_deploy_moto.py."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from tests.serverless_framework import sls_support as sls

SHIFTING_TYPES = {"AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentGroup", "AWS::CloudWatch::Alarm"}
ALARMS = ("PredictErrorRateAlarm", "PredictHttp5xxRateAlarm", "PredictShadowDisagreementRateAlarm")
ALIAS_V2_URI = {"Fn::Join": ["", [
    "arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"}, ":lambda:path/2015-03-31/functions/",
    {"Ref": "PredictLambdaFunctionAliaslive"}, "/invocations"]]}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _only(packaged, type_: str) -> tuple[str, dict]:
    found = packaged.resources(type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def test_without_the_param_there_is_no_codedeploy_alias_or_alarm(packaged):
    types = {r["Type"] for r in packaged.template()["Resources"].values()}
    assert not types & (SHIFTING_TYPES | {"AWS::Lambda::Alias"}), sorted(types & SHIFTING_TYPES)
    assert "PredictCodeDeployRole" not in packaged.template()["Resources"]
    (integration,) = packaged.resources("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": ["PredictLambdaFunction", "Arn"]}


def test_codedeploy_shifts_predicts_alias_and_rolls_back_on_the_alarms(packaged_shifting):
    resources = packaged_shifting.template()["Resources"]
    app_id, app = _only(packaged_shifting, "AWS::CodeDeploy::Application")
    assert app["Properties"] == {"ComputePlatform": "Lambda"}
    group_id, group = _only(packaged_shifting, "AWS::CodeDeploy::DeploymentGroup")
    properties = group["Properties"]
    assert properties["ApplicationName"] == {"Ref": app_id}
    template, names = properties["DeploymentConfigName"]["Fn::Sub"]
    assert template.replace("${ConfigName}", names["ConfigName"]) == f"CodeDeployDefault.Lambda{sls.SHIFTING_PREFERENCE}"
    assert properties["DeploymentStyle"] == {"DeploymentType": "BLUE_GREEN", "DeploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert properties["AutoRollbackConfiguration"]["Enabled"] is True
    assert {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"} <= set(properties["AutoRollbackConfiguration"]["Events"])
    assert properties["AlarmConfiguration"] == {"Enabled": True, "Alarms": [{"Name": {"Ref": name}} for name in ALARMS]}
    assert properties["ServiceRoleArn"] == {"Fn::GetAtt": ["PredictCodeDeployRole", "Arn"]}

    alias_id, alias = _only(packaged_shifting, "AWS::Lambda::Alias")
    assert alias_id == "PredictLambdaFunctionAliaslive"
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionName"] == {"Ref": "PredictLambdaFunction"}
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert resources[version_id]["Type"] == "AWS::Lambda::Version"
    assert resources[version_id]["Properties"]["FunctionName"] == {"Ref": "PredictLambdaFunction"}
    # CloudFormation hands a change of the alias' version to CodeDeploy instead of making it
    assert alias["UpdatePolicy"] == {"CodeDeployLambdaAliasUpdate": {
        "ApplicationName": {"Ref": app_id}, "DeploymentGroupName": {"Ref": group_id}}}


def test_the_http_api_invokes_the_alias_and_batch_stays_on_its_function(packaged_shifting):
    (integration,) = packaged_shifting.resources("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationUri"] == ALIAS_V2_URI
    permissions = packaged_shifting.resources("AWS::Lambda::Permission").values()
    by_principal = {p["Properties"]["Principal"]: p["Properties"]["FunctionName"] for p in permissions}
    assert by_principal["apigateway.amazonaws.com"] == {"Ref": "PredictLambdaFunctionAliaslive"}
    assert by_principal["s3.amazonaws.com"] == {"Fn::GetAtt": ["BatchLambdaFunction", "Arn"]}
    bucket = packaged_shifting.template()["Resources"]["S3BucketInputBucket"]["Properties"]
    assert {c["Function"]["Fn::GetAtt"][0] for c in bucket["NotificationConfiguration"]["LambdaConfigurations"]} == {
        "BatchLambdaFunction"}


def test_the_codedeploy_role_may_move_predicts_alias_and_read_its_alarms_only(packaged_shifting):
    resources = packaged_shifting.template()["Resources"]
    role = resources["PredictCodeDeployRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "codedeploy.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert "ManagedPolicyArns" not in role  # not AWSCodeDeployRoleForLambda, which allows any function
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert all(s["Effect"] == "Allow" for s in statements)
    granted: dict[str, list] = {}
    for statement in statements:
        for action in _as_list(statement["Action"]):
            granted.setdefault(action, []).extend(_as_list(statement["Resource"]))
    function_arn = {"Fn::GetAtt": ["PredictLambdaFunction", "Arn"]}
    assert granted == {
        "lambda:GetAlias": [function_arn, {"Fn::Sub": "${PredictLambdaFunction.Arn}:live"}],
        "lambda:UpdateAlias": [function_arn, {"Fn::Sub": "${PredictLambdaFunction.Arn}:live"}],
        "lambda:GetProvisionedConcurrencyConfig": [function_arn, {"Fn::Sub": "${PredictLambdaFunction.Arn}:*"}],
        "cloudwatch:DescribeAlarms": [
            {"Fn::Sub": f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{resources[name]['Properties']['AlarmName']}"}
            for name in ALARMS],
    }
    # the plugin's own role (AWSLambda_FullAccess) is not made
    assert "CodeDeployServiceRole" not in resources


def _metrics(alarm: dict) -> dict[str, dict]:
    return {m["Id"]: m for m in alarm["Properties"]["Metrics"]}


def _dimensions(metric: dict) -> dict:
    return {d["Name"]: d["Value"] for d in metric["MetricStat"]["Metric"]["Dimensions"]}


@pytest.mark.parametrize("fixture, error_percent, disagreement_percent, namespace", [
    ("packaged_shifting", 5, 10, "serverless-ml"),  # the defaults
    ("packaged_shifting_snapstart", 2.5, 20, "team/churn"),
])
def test_each_alarm_is_a_share_over_one_minute_of_what_the_new_version_changes(
        request, fixture, error_percent, disagreement_percent, namespace):
    packaged = request.getfixturevalue(fixture)
    resources = packaged.template()["Resources"]
    assert {k for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"} == set(ALARMS)
    for name in ALARMS:
        properties = resources[name]["Properties"]
        assert properties["AlarmName"] == f"{sls.SERVICE}-{sls.STAGE}-" + {
            "PredictErrorRateAlarm": "predict-error-rate", "PredictHttp5xxRateAlarm": "predict-http-5xx-rate",
            "PredictShadowDisagreementRateAlarm": "predict-shadow-disagreement-rate"}[name]
        assert (properties["ComparisonOperator"], properties["EvaluationPeriods"]) == ("GreaterThanThreshold", 1)
        # no traffic, or no candidate model, is no reason to roll back
        assert properties["TreatMissingData"] == "notBreaching"
        assert all(m["MetricStat"]["Period"] == 60 for m in properties["Metrics"] if "MetricStat" in m)
        (shown,) = [m for m in properties["Metrics"] if m.get("ReturnData")]
        assert re.fullmatch(r"IF\((\w+) > 0, 100 \* (\w+) / \1, 0\)", shown["Expression"]), shown["Expression"]

    errors = _metrics(resources["PredictErrorRateAlarm"])
    assert resources["PredictErrorRateAlarm"]["Properties"]["Threshold"] == error_percent
    for metric, name in (("errors", "Errors"), ("invocations", "Invocations")):
        assert errors[metric]["MetricStat"]["Metric"]["MetricName"] == name
        assert errors[metric]["MetricStat"]["Metric"]["Namespace"] == "AWS/Lambda"
        # the alias: both versions while it shifts, so the new one's share moves it
        assert _dimensions(errors[metric]) == {
            "FunctionName": {"Ref": "PredictLambdaFunction"}, "Resource": {"Fn::Sub": "${PredictLambdaFunction}:live"}}

    http = _metrics(resources["PredictHttp5xxRateAlarm"])
    assert resources["PredictHttp5xxRateAlarm"]["Properties"]["Threshold"] == error_percent
    assert {m: http[m]["MetricStat"]["Metric"]["MetricName"] for m in ("failed", "requests")} == {"failed": "5xx", "requests": "Count"}
    assert _dimensions(http["failed"]) == {"ApiId": {"Ref": "HttpApi"}, "Stage": "$default"}

    shadow = _metrics(resources["PredictShadowDisagreementRateAlarm"])
    assert resources["PredictShadowDisagreementRateAlarm"]["Properties"]["Threshold"] == disagreement_percent
    for metric, name in (("disagreeing", "ShadowDisagreements"), ("compared", "ShadowRows")):
        # what aws_lambda/app.py writes in predict's EMF line, under METRICS_NAMESPACE
        assert shadow[metric]["MetricStat"]["Metric"]["MetricName"] == name
        assert shadow[metric]["MetricStat"]["Metric"]["Namespace"] == namespace
        assert _dimensions(shadow[metric]) == {"service": {"Ref": "PredictLambdaFunction"}}
    for function in ("PredictLambdaFunction", "BatchLambdaFunction"):
        environment = resources[function]["Properties"]["Environment"]["Variables"]
        assert environment["METRICS_NAMESPACE"] == ("" if namespace == "serverless-ml" else namespace)


def test_the_metric_names_are_the_ones_the_function_writes():
    """The alarm reads ShadowDisagreements and ShadowRows; the Lambda adapter writes them."""
    from aws_lambda.app import _rollout_counts

    counts = _rollout_counts({"shadow_rows": 4, "shadow_disagreements": 1})
    assert counts == {"ShadowRows": 4, "ShadowDisagreements": 1}


def _warmer_source(packaged) -> str:
    for archive in Path(packaged.folder).glob("*.zip"):
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                if name.endswith("index.mjs"):
                    return opened.read(name).decode()
    raise AssertionError(f"no warm-up function in {sorted(p.name for p in Path(packaged.folder).iterdir())}")


def test_the_warmup_pings_the_alias_that_serves(packaged_shifting):
    source = _warmer_source(packaged_shifting)
    (functions,) = re.findall(r"const functions = (\[.*?\]);", source, re.S)
    (predict,) = json.loads(functions)
    assert predict["name"] == f"{sls.SERVICE}-{sls.STAGE}-predict"
    assert predict["config"]["alias"] == "live"


def test_snapstart_and_the_shift_share_one_alias(packaged_shifting_snapstart):
    resources = packaged_shifting_snapstart.template()["Resources"]
    assert resources["PredictLambdaFunction"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    alias_id, alias = _only(packaged_shifting_snapstart, "AWS::Lambda::Alias")  # osls' `snapstart` is merged into it
    assert (alias_id, alias["Properties"]["Name"]) == ("PredictLambdaFunctionAliaslive", "live")
    assert "CodeDeployLambdaAliasUpdate" in alias["UpdatePolicy"]
    (integration,) = packaged_shifting_snapstart.resources("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationUri"] == ALIAS_V2_URI
    (permission,) = [p for p in packaged_shifting_snapstart.resources("AWS::Lambda::Permission").values()
                     if p["Properties"]["Principal"] == "apigateway.amazonaws.com"]
    assert permission["Properties"]["FunctionName"] == {"Ref": alias_id}
    text = json.dumps(packaged_shifting_snapstart.template())
    assert "PredictSnapStartLambdaAlias" not in text and '"snapstart"' not in text, "osls' alias is left"
    _, group = _only(packaged_shifting_snapstart, "AWS::CodeDeploy::DeploymentGroup")
    template, names = group["Properties"]["DeploymentConfigName"]["Fn::Sub"]
    assert template.replace("${ConfigName}", names["ConfigName"]) == "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"
    # the snapshot holds the model, as with SnapStart alone
    assert resources["PredictLambdaFunction"]["Properties"]["Environment"]["Variables"]["PRELOAD_MODEL"] == "true"


@pytest.fixture(scope="module")
def service_copy(tmp_path_factory) -> Path:
    return sls.copy_service(tmp_path_factory.mktemp("sls-print-shifting") / "service")


def _print(service: Path, *params: str):
    return sls.run_sls(["print", "--stage", "dev", *sls.PARAMS, *params, "--format", "json"],
                       sls.sls_env(), timeout=120, service=service)


@pytest.mark.parametrize("param, expected", [
    ("deploymentPreference=Canary10Percent", "deploymentPreference=Canary10Percent is not allowed; expected one of "
     "Canary10Percent5Minutes, Canary10Percent10Minutes, Canary10Percent15Minutes, Canary10Percent30Minutes, "
     "Linear10PercentEvery1Minute, Linear10PercentEvery2Minutes, Linear10PercentEvery3Minutes, "
     "Linear10PercentEvery10Minutes, AllAtOnce"),
    ("rollbackErrorPercent=0", "rollbackErrorPercent=0 is not allowed; expected a percentage above 0 and at most 100"),
    ("rollbackDisagreementPercent=ten", "rollbackDisagreementPercent=ten is not allowed; expected a percentage above 0"),
    ("metricsNamespace=AWS/Lambda", "metricsNamespace=AWS/Lambda is not allowed; expected 1-255 characters"),
])
def test_a_value_codedeploy_or_cloudwatch_would_refuse_fails_before_anything_is_built(service_copy, param, expected):
    done = _print(service_copy, "--param=deploymentPreference=AllAtOnce", f"--param={param}")
    assert done.returncode != 0
    assert expected in done.stdout + done.stderr, (done.stdout + done.stderr)[-2000:]


def test_provisioned_concurrency_with_traffic_shifting_is_refused(tmp_path):
    """osls would give provisioned concurrency an alias of its own, which CodeDeploy never moves."""
    service = sls.copy_service(tmp_path / "service")
    config = service / "serverless.yml"
    config.write_text(config.read_text().replace(
        "    handler: aws_lambda/handler.predict\n", "    handler: aws_lambda/handler.predict\n    provisionedConcurrency: 1\n", 1))
    done = _print(service, "--param=deploymentPreference=Canary10Percent5Minutes")
    assert done.returncode != 0
    assert ("deploymentPreference=Canary10Percent5Minutes with functions.predict.provisionedConcurrency set: "
            "provisioned concurrency lives on an alias of its own") in done.stdout + done.stderr
    assert _print(service).returncode == 0  # without traffic shifting it is the user's to set


def test_without_the_param_the_settings_are_resolved_and_unused(service_copy):
    done = _print(service_copy)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    config = json.loads(done.stdout[done.stdout.index("{"):])
    assert config["custom"]["trafficShifting"]["type"] == ""
    assert "deploymentSettings" not in config["functions"]["predict"]
    assert config["functions"]["predict"]["warmup"]["default"]["alias"] == ""


def _predict_reads(config: dict) -> list:
    statements = config["resources"]["Resources"]["PredictRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (reads,) = [s["Resource"] for s in statements if s["Action"] == "s3:GetObject"]
    return reads


def test_a_candidate_model_is_predicts_to_read_and_shadow(service_copy):
    """The model the new version shadows, whose disagreements the rollback alarm counts."""
    from core.settings import Settings

    done = _print(service_copy, "--param=candidateModelKey=models/model-v2.joblib", "--param=candidateMode=shadow")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    config = json.loads(done.stdout[done.stdout.index("{"):])
    predict = config["functions"]["predict"]["environment"]
    assert predict["CANDIDATE_MODEL_URI"] == f"s3://{sls.INPUT_BUCKET}/models/model-v2.joblib"
    assert predict["CANDIDATE_MODE"] == "shadow"
    settings = Settings.from_env({**config["provider"]["environment"], **predict})
    assert settings.candidate is not None and settings.candidate.mode == "shadow"
    assert not [k for k in config["provider"]["environment"] if k.startswith("CANDIDATE_")]  # batch serves the primary
    bucket = f"arn:${{AWS::Partition}}:s3:::{sls.INPUT_BUCKET}/models/"
    assert _predict_reads(config) == [{"Fn::Sub": bucket + name} for name in (
        "model.joblib", "model.joblib.manifest.json", "model-v2.joblib", "model-v2.joblib.manifest.json")]

    plain = json.loads((out := _print(service_copy).stdout)[out.index("{"):])
    assert plain["functions"]["predict"]["environment"]["CANDIDATE_MODEL_URI"] == ""
    assert _predict_reads(plain) == [{"Fn::Sub": bucket + name} for name in ("model.joblib", "model.joblib.manifest.json")]


@pytest.mark.parametrize("params, expected", [
    (("--param=candidateMode=canary",), "candidateMode=canary is set but candidateModelKey is not"),
    (("--param=candidateModelKey=models/model.joblib",), "candidateModelKey=models/model.joblib is the model itself (modelKey)"),
])
def test_candidate_params_core_would_refuse_fail_the_package(service_copy, params, expected):
    done = _print(service_copy, *params)
    assert done.returncode != 0
    assert expected in done.stdout + done.stderr, (done.stdout + done.stderr)[-2000:]
