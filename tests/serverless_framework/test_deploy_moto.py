"""`sls deploy` of the packaged artifacts into moto's server, through AWS_ENDPOINT_URL (which the
AWS SDK for JavaScript v3 in osls honours, as it does for LocalStack); then boto3 asks moto what
exists.

What this proves: the framework's whole deploy path runs against an AWS API (stack creation,
artifact upload to the deployment bucket, the change sets of the update), moto's CloudFormation
accepts the template and creates the two functions from the uploaded zip (same SHA-256), their
roles and their policies, log groups, the input bucket (with its encryption), S3's permission to
invoke batch, and the failure queue.
What it does not: moto's CloudFormation applies only a bucket's encryption and tags (the four
notifications, versioning and public access block are checked in the template), and has no model for AWS::ApiGatewayV2::* (the HTTP API),
AWS::Lambda::EventInvokeConfig (retries, on-failure destination) or AWS::S3::BucketPolicy (the
deployment bucket's TLS-only policy); it skips them with a warning, and they are checked only as
template (test_template.py, cfn-lint). ValidateTemplate is skipped (moto_plugin.js): moto's runs
cfn-lint and fails on the W3005 warnings osls writes, which AWS's does not check. No function runs here: moto invokes Lambdas only in Docker.

With traffic shifting (`--param=deploymentPreference=...`, test_package_traffic_shifting.py) the
stack also holds AWS::CodeDeploy::Application, AWS::CodeDeploy::DeploymentGroup,
AWS::Lambda::Alias and AWS::CloudWatch::Alarm, none of which moto's CloudFormation models (its
CodeDeploy API exists, its CloudFormation has no resource for it). Worse than skipped: a Ref to a
skipped resource resolves to nothing, so the HTTP API's Lambda::Permission on the alias fails in
moto and takes the stack with it. That deploy runs with moto_unmodelled_plugin.js, which removes
those four types and whatever refers to them before the upload and says which (the permission);
moto then creates the rest, the CodeDeploy role with its policy among it, and the removed ones are
checked as template only.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import warnings
from urllib.parse import unquote

import pytest

from tests.aws_lambda import moto_support
from tests.serverless_framework import sls_support as sls

NOT_MODELLED_BY_MOTO = {
    "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route", "AWS::Lambda::EventInvokeConfig", "AWS::S3::BucketPolicy",
}


def deploy_into_moto(packaged, folder, params=sls.PARAMS, plugins=("moto_plugin.js",), **env_extra: str):
    """`sls deploy --package` of ``packaged`` into a moto server of its own; the server."""
    server = moto_support.start_moto(folder, name="moto-cfn")
    try:
        port = server.url.rsplit(":", 1)[1]
        # AWS_ENDPOINT_URL: the AWS SDK for JavaScript v3, which osls calls AWS with, sends every
        # service there. An IP address, not localhost: S3 then takes the bucket in the path
        # (bucket.localhost would need a DNS name); the stack's TemplateURL stays
        # https://s3.amazonaws.com/<bucket>/..., which moto reads from its own S3.
        # moto's ValidateTemplate fails on cfn-lint warnings that AWS's does not check: skipped
        # in this copy only (moto_plugin.js says which)
        config = packaged.service / "serverless.yml"
        listed = "".join(f"  - ./tests/serverless_framework/{plugin}\n" for plugin in plugins)
        config.write_text(config.read_text().replace("plugins:\n", "plugins:\n" + listed, 1))
        env = sls.sls_env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", **env_extra)
        result = sls.run_sls(
            ["deploy", "--stage", sls.STAGE, *params, "--package", str(packaged.folder)],
            env, timeout=600, service=packaged.service,
        )
        assert result.returncode == 0, f"sls deploy failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    except BaseException:
        moto_support.stop_moto(server)
        raise
    return server


@pytest.fixture(scope="module")
def deployed(packaged, tmp_path_factory):
    server = deploy_into_moto(packaged, tmp_path_factory.mktemp("moto-cfn"))
    yield server
    moto_support.stop_moto(server)


def _client(server, service: str):
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1",
    ).client(service, endpoint_url=server.url)


def test_the_stack_is_complete_with_every_resource_moto_models(deployed, packaged):
    cloudformation = _client(deployed, "cloudformation")
    stack_name = f"{sls.SERVICE}-{sls.STAGE}"
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), stack
    listed = {r["LogicalResourceId"]: r for r in cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]}
    expected = {k for k, v in packaged.template()["Resources"].items() if v["Type"] not in NOT_MODELLED_BY_MOTO}
    assert expected <= set(listed), sorted(expected - set(listed))
    assert all(listed[k]["ResourceStatus"].endswith("_COMPLETE") for k in expected)
    skipped = sorted({v["Type"] for v in packaged.template()["Resources"].values()} & NOT_MODELLED_BY_MOTO)
    warnings.warn(f"moto's CloudFormation does not create {', '.join(skipped)}; checked as template only", stacklevel=1)


@pytest.mark.parametrize("name, handler, role", [
    ("predict", "aws_lambda/handler.predict", "PredictRole"),
    ("batch", "aws_lambda/handler.batch", "BatchRole"),
])
def test_both_functions_exist_with_the_packaged_code(deployed, packaged, name, handler, role):
    function_name = f"{sls.SERVICE}-{sls.STAGE}-{name}"
    configuration = _client(deployed, "lambda").get_function(FunctionName=function_name)["Configuration"]
    assert configuration["Handler"] == handler
    assert configuration["Runtime"] == "python3.12"
    assert configuration["Architectures"] == ["x86_64"]
    digest = base64.b64encode(hashlib.sha256(packaged.zip_path.read_bytes()).digest()).decode()
    assert configuration["CodeSha256"] == digest, "the function's code is not the packaged zip"
    variables = configuration["Environment"]["Variables"]
    assert variables["MODEL_URI"] == f"s3://{sls.INPUT_BUCKET}/models/model.joblib"
    assert variables["BATCH_OUTPUT_URI"] == f"s3://{sls.INPUT_BUCKET}/predictions/"
    assert variables["BATCH_INPUT_URI"] == f"s3://{sls.INPUT_BUCKET}/incoming/"
    role_name = configuration["Role"].rsplit("/", 1)[1]
    assert role in role_name
    iam = _client(deployed, "iam")
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        # moto keeps a document that came through CloudFormation as the text of a Python dict
        document = ast.literal_eval(unquote(document))
    statements = document["Statement"]
    writes = [s for s in statements if "s3:PutObject" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    if name == "predict":
        assert not writes
    else:
        assert [s["Resource"] for s in writes] == [f"arn:aws:s3:::{sls.INPUT_BUCKET}/predictions/*"]


def test_the_input_bucket_exists_and_s3_may_invoke_batch(deployed):
    s3 = _client(deployed, "s3")
    s3.head_bucket(Bucket=sls.INPUT_BUCKET)
    encryption = s3.get_bucket_encryption(Bucket=sls.INPUT_BUCKET)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # moto's CloudFormation applies only a bucket's encryption and tags: the notifications,
    # versioning and public access block are checked in the template (test_template.py).
    policy = json.loads(_client(deployed, "lambda").get_policy(
        FunctionName=f"{sls.SERVICE}-{sls.STAGE}-batch")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == f"arn:aws:s3:::{sls.INPUT_BUCKET}"
    queue = _client(deployed, "sqs").get_queue_url(QueueName=f"{sls.SERVICE}-{sls.STAGE}-batch-failed-events")
    assert queue["QueueUrl"]


# --- with traffic shifting ------------------------------------------------------------------------

SHIFTING_NOT_MODELLED = {
    "AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentGroup", "AWS::Lambda::Alias", "AWS::CloudWatch::Alarm",
}


@pytest.fixture(scope="module")
def deployed_shifting(packaged_shifting, tmp_path_factory):
    """The traffic-shifting package deployed into moto, minus what moto cannot create (see the
    module's text); the server and what was removed (logical id -> type)."""
    folder = tmp_path_factory.mktemp("moto-cfn-shifting")
    pruned_file = folder / "pruned.json"
    server = deploy_into_moto(
        packaged_shifting, folder, (*sls.PARAMS, *sls.SHIFTING_PARAMS),
        plugins=("moto_plugin.js", "moto_unmodelled_plugin.js"),
        MOTO_UNMODELLED_TYPES=",".join(sorted(SHIFTING_NOT_MODELLED)), MOTO_PRUNED_FILE=str(pruned_file))
    yield server, json.loads(pruned_file.read_text())
    moto_support.stop_moto(server)


def test_with_traffic_shifting_moto_creates_all_but_what_it_does_not_model(deployed_shifting, packaged_shifting):
    server, pruned = deployed_shifting
    resources = packaged_shifting.template()["Resources"]
    # the four types, what refers to them that moto skips anyway (the HTTP API's integration and
    # routes), and one resource moto does model: the HTTP API's permission on the alias
    assert {k for k, v in resources.items() if v["Type"] in SHIFTING_NOT_MODELLED} <= set(pruned)
    assert set(pruned.values()) <= SHIFTING_NOT_MODELLED | NOT_MODELLED_BY_MOTO | {"AWS::Lambda::Permission"}
    assert {k for k, t in pruned.items() if t not in SHIFTING_NOT_MODELLED | NOT_MODELLED_BY_MOTO} == {
        "PredictLambdaPermissionHttpApi"}

    cloudformation = _client(server, "cloudformation")
    stack_name = f"{sls.SERVICE}-{sls.STAGE}"
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), stack
    listed = {r["LogicalResourceId"]: r for r in cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]}
    expected = {k for k, v in resources.items() if v["Type"] not in NOT_MODELLED_BY_MOTO and k not in pruned}
    assert expected <= set(listed), sorted(expected - set(listed))
    assert {"PredictCodeDeployRole", "PredictLambdaFunction", "WarmUpPluginDefaultLambdaFunction"} <= expected
    assert all(listed[k]["ResourceStatus"].endswith("_COMPLETE") for k in expected)
    warnings.warn(
        "moto's CloudFormation does not create " + ", ".join(sorted(SHIFTING_NOT_MODELLED)) + ", nor therefore "
        + "PredictLambdaPermissionHttpApi (AWS::Lambda::Permission on the alias); checked as template only "
        "(test_package_traffic_shifting.py)", stacklevel=1)


def test_with_traffic_shifting_the_codedeploy_role_exists_with_its_policy(deployed_shifting):
    server, _ = deployed_shifting
    iam = _client(server, "iam")
    (role,) = [r for r in iam.list_roles()["Roles"] if "PredictCodeDeployRole" in r["RoleName"]]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(unquote(trust)) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "codedeploy.amazonaws.com"}]
    assert not iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    (policy_name,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        document = ast.literal_eval(unquote(document))
    function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{sls.SERVICE}-{sls.STAGE}-predict"
    granted = {(a, r) for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
               for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    assert ("lambda:UpdateAlias", f"{function_arn}:live") in granted
    alarm = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{sls.SERVICE}-{sls.STAGE}-predict-"
    assert {r for a, r in granted if a == "cloudwatch:DescribeAlarms"} == {
        alarm + "error-rate", alarm + "http-5xx-rate", alarm + "shadow-disagreement-rate"}
    assert {a for a, _ in granted} == {
        "lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig", "cloudwatch:DescribeAlarms"}


def test_with_traffic_shifting_predict_is_published_as_a_version(deployed_shifting, packaged_shifting):
    """The version the alias would point at exists; the alias itself is not made by moto."""
    server, _ = deployed_shifting
    versions = _client(server, "lambda").list_versions_by_function(FunctionName=f"{sls.SERVICE}-{sls.STAGE}-predict")["Versions"]
    assert [v["Version"] for v in versions if v["Version"] != "$LATEST"]
    digest = base64.b64encode(hashlib.sha256(packaged_shifting.zip_path.read_bytes()).digest()).decode()
    assert all(v["CodeSha256"] == digest for v in versions)


def test_with_fan_out_the_state_machine_and_its_steps_exist_and_batch_may_start_it(deployed_shifting):
    """`--param=fanOut=true` (in the same package): moto's CloudFormation creates the state
    machine with the definition of infra/aws/fanout.asl.json.tftpl, on its own role, and batch
    gets its ARN; moto does not run it (its Lambda tasks would need Docker)."""
    server, _ = deployed_shifting
    sfn = _client(server, "stepfunctions")
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"]
                  if m["name"] == f"{sls.SERVICE}-{sls.STAGE}-batch-fanout"]
    described = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
    definition = json.loads(described["definition"])
    assert definition["StartAt"] == "Plan"
    assert definition["States"]["Parts"]["MaxConcurrency"] == sls.FAN_OUT_MAX_CONCURRENCY
    lambda_client = _client(server, "lambda")
    for step in ("plan", "part", "merge"):
        name = f"{sls.SERVICE}-{sls.STAGE}-fanout{step.capitalize()}"
        arn = lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        assert json.dumps(definition).count(f'"{arn}"') == (2 if step == "part" else 1)  # Part, and Whole
    assert "FanOutStateMachineRole" in described["roleArn"]
    batch = lambda_client.get_function(FunctionName=f"{sls.SERVICE}-{sls.STAGE}-batch")["Configuration"]
    assert batch["Environment"]["Variables"]["BATCH_FANOUT_STATE_MACHINE_ARN"] == machine["stateMachineArn"]
