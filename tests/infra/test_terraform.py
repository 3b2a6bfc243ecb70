"""Terraform itself on infra/: every configuration is formatted, the AWS one validates offline with
the provider of this machine's filesystem mirror and applies against moto's server (the real AWS
APIs, locally), and what it creates is what the functions and the loop guard need.

The azurerm and google providers are not on this machine, so Azure and GCP are checked by
test_configs.py (python-hcl2) and test_checkov.py instead of `terraform validate`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from core.batch.formats import FORMATS, input_format
from core.settings import Settings
from core.storage import StorageURI
from core.storage.locations import loop_guard, output_locations, parse_output_prefix
from tests.background import MOTO, session_build
from tests.infra import moto_stacks
from tests.infra import terraform_support as tf
from tests.infra.moto_stacks import APPLY_VARIABLES, MODEL_SHA256, MODEL_URI, tiny_bundle, var_args


@pytest.mark.parametrize("cloud", tf.CLOUDS)
def test_configuration_is_formatted(cloud, terraform):
    result = tf.run_terraform(
        ["fmt", "-check", "-diff", "-recursive", str(tf.INFRA / cloud)], tf.REPO,
        tf.terraform_env(Path(os.devnull), Path(os.devnull)),
    )
    assert result.returncode == 0, f"`terraform fmt` would change infra/{cloud}:\n{result.stdout}{result.stderr}"


def test_aws_validates_offline_with_the_mirror_provider(aws_workdir, aws_provider_mirror):
    result = aws_workdir.run("validate", "-json")
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)

    versions = json.loads(aws_workdir.run("version", "-json").stdout)
    selected = versions["provider_selections"]["registry.terraform.io/hashicorp/aws"]
    assert selected in aws_provider_mirror.versions  # versions.tf's constraint admits the mirror's


def test_init_leaves_nothing_in_the_repository(aws_workdir):
    for name in (".terraform", ".terraform.lock.hcl", "terraform.tfstate"):
        assert not (tf.INFRA / "aws" / name).exists(), f"infra/aws/{name} was written by a test run"
    assert (aws_workdir.path / ".terraform.lock.hcl").exists()  # it went to the copy instead


# --- apply against moto's server (tests/infra/moto_stacks.py) -----------------------------------

@session_build(lane=MOTO)
def stack(tmp_path_factory):
    """infra/aws applied to moto: the workdir, the variables, the outputs, and boto3 clients of
    the same server."""
    with moto_stacks.started(tmp_path_factory, "infra-aws-moto") as started:
        variables = {**APPLY_VARIABLES, "bundle_path": str(tiny_bundle(started.workdir.path / "bundle.zip"))}
        applied = started.workdir.run("apply", "-auto-approve", "-input=false", *var_args(variables), timeout=280)
        assert applied.returncode == 0, f"terraform apply failed:\n{applied.stdout[-4000:]}\n{applied.stderr}"
        yield started.workdir, variables, started.outputs(), started.client


def function_config(client, name: str) -> dict:
    return client("lambda").get_function_configuration(FunctionName=name)


def test_functions_get_the_entry_points_and_settings_core_accepts(stack):
    _, variables, outputs, client = stack
    predict = function_config(client, outputs["function_names"]["predict"])
    batch = function_config(client, outputs["function_names"]["batch"])
    assert predict["Handler"] == "aws_lambda.handler.predict"
    assert batch["Handler"] == "aws_lambda.handler.batch"
    assert (predict["Runtime"], batch["Runtime"]) == ("python3.13", "python3.13")  # the default
    assert (predict["Architectures"], batch["Architectures"]) == (["x86_64"], ["x86_64"])

    for function in (predict, batch):
        env = function["Environment"]["Variables"]
        assert set(tf.FUNCTION_SETTINGS) <= set(env), sorted(set(tf.FUNCTION_SETTINGS) - set(env))
        settings = Settings.from_env(env)  # what the function does at init: a wrong value raises here
        assert str(settings.model_uri.display) == MODEL_URI
        assert settings.model_sha256 == MODEL_SHA256
        assert settings.max_rows == 500
        assert settings.cors_allow_origins == ("https://app.example.com",)
        assert settings.preload_model is True

    batch_settings = Settings.from_env(batch["Environment"]["Variables"])
    assert batch_settings.batch_output_uri == parse_output_prefix(outputs["batch_output_uri"])
    assert batch_settings.batch_input_uri == parse_output_prefix(outputs["batch_input_uri"])  # checked apart at start


def test_functions_get_the_model_format_and_batch_settings(stack):
    _, _, outputs, client = stack
    for role in ("predict", "batch"):
        env = function_config(client, outputs["function_names"][role])["Environment"]["Variables"]
        names = ("SKOPS_TRUSTED_TYPES", "STRICT_MODEL_VERSION", "ONNX_THREADS", "BATCH_CHUNK_ROWS", "BATCH_PART_BYTES")
        assert {name: env.get(name) for name in names} == {
            "SKOPS_TRUSTED_TYPES": "sklearn.tree._tree.Tree,sklearn.ensemble._forest.RandomForestClassifier",
            "STRICT_MODEL_VERSION": "true",
            "ONNX_THREADS": "0",
            "BATCH_CHUNK_ROWS": "2500",
            "BATCH_PART_BYTES": "5242880",
        }, role
        settings = Settings.from_env(env)
        assert settings.skops_trusted_types == ("sklearn.tree._tree.Tree", "sklearn.ensemble._forest.RandomForestClassifier")
        assert (settings.strict_model_version, settings.onnx_threads, settings.batch_chunk_rows) == (True, 0, 2500)
        assert settings.batch_part_bytes == 5 * 1024 * 1024


def planned_environments(workdir, variables: dict[str, str]) -> dict[str, dict[str, str]]:
    """The functions' environment as `terraform plan` would set it, read from the saved plan."""
    result = workdir.run("plan", "-input=false", "-refresh=false", "-out=check.tfplan", *var_args(variables))
    assert result.returncode == 0, f"terraform plan failed:\n{result.stdout[-4000:]}\n{result.stderr}"
    plan = json.loads(workdir.run("show", "-json", "check.tfplan").stdout)
    return {
        change["name"]: change["change"]["after"]["environment"][0]["variables"]
        for change in plan["resource_changes"] if change["type"] == "aws_lambda_function"
    }


def test_default_variables_give_cores_defaults(stack):
    """Only the required variables: what the functions get is what core would use with nothing
    set, except PRELOAD_MODEL (true: Lambda's init phase loads the model); an empty
    skops_trusted_types is left out like every empty value."""
    workdir, variables, _, _ = stack
    environments = planned_environments(workdir, {name: variables[name] for name in ("model_uri", "bundle_path")})
    assert set(environments) == {"predict", "batch"}
    defaults = Settings._field_defaults
    for role, env in environments.items():
        assert "SKOPS_TRUSTED_TYPES" not in env, env
        assert (env["STRICT_MODEL_VERSION"], env["ONNX_THREADS"], env["BATCH_CHUNK_ROWS"]) == ("false", "1", "10000")
        assert env["BATCH_PART_BYTES"] == str(16 * 1024 * 1024)
        settings = Settings.from_env(env)
        differ = {name for name, default in defaults.items() if getattr(settings, name) != default}
        expected = {"preload_model"} | ({"batch_output_uri", "batch_input_uri"} if role == "batch" else set())
        assert differ == expected, f"{role}: {sorted(differ)} differ from core's defaults"


def test_batch_notifications_cover_the_inputs_and_never_the_outputs(stack):
    _, _, outputs, client = stack
    bucket = outputs["data_bucket"]
    batch_arn = function_config(client, outputs["function_names"]["batch"])["FunctionArn"]
    rules = client("s3").get_bucket_notification_configuration(Bucket=bucket)["LambdaFunctionConfigurations"]
    assert rules and all(rule["LambdaFunctionArn"] == batch_arn for rule in rules)
    assert all(rule["Events"] == ["s3:ObjectCreated:*"] for rule in rules)

    def filters(rule) -> dict[str, str]:
        return {item["Name"].lower(): item["Value"] for item in rule["Filter"]["Key"]["FilterRules"]}

    def fires(key: str) -> bool:  # S3's rule: the key starts with the prefix and ends with the suffix
        return any(key.startswith(f["prefix"]) and key.endswith(f["suffix"]) for f in map(filters, rules))

    # every suffix core reads, as S3 compares them (case-sensitive), under the input prefix
    suffixes = {f.get("suffix") for f in map(filters, rules)}
    assert {f".{kind}{gz}" for kind in FORMATS for gz in ("", ".gz")} <= suffixes
    assert all(input_format("x" + suffix) for suffix in suffixes)

    input_uri = parse_output_prefix(outputs["batch_input_uri"])
    output_prefix = parse_output_prefix(outputs["batch_output_uri"])
    for name in ("day.csv", "2026/11/day.jsonl", "day.csv.gz", "export.JSONL.GZ", "DATA.CSV"):
        source = StorageURI("s3", bucket, input_uri.key + name)
        assert fires(source.key), f"uploading {source.display} would not run the batch function"
        produced = output_locations(source, output_prefix)
        for output in (produced.predictions, produced.errors):
            assert loop_guard(output, output_prefix)  # core would skip it ...
            assert not fires(output.key), f"the output {output.display} would trigger the batch function"  # ... and S3 never sends it
    for name in ("notes.txt", "day.parquet"):
        assert not fires(input_uri.key + name)
    assert not fires("day.csv")  # outside the input prefix


def allowed_statements(client, role: str) -> list[dict]:
    iam = client("iam")
    statements = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        statements += [s for s in document["Statement"] if s["Effect"] == "Allow"]
    assert not iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], "no managed policies"
    return statements


def grants(statements: list[dict]) -> set[tuple[str, str]]:
    def as_list(value):
        return [value] if isinstance(value, str) else list(value)
    return {(action, resource) for s in statements for action in as_list(s["Action"]) for resource in as_list(s["Resource"])}


def test_roles_allow_the_model_object_the_input_prefix_and_the_output_prefix_only(stack):
    _, _, outputs, client = stack
    bucket_arn = f"arn:aws:s3:::{outputs['data_bucket']}"
    model_arn = "arn:aws:s3:::" + MODEL_URI[len("s3://"):]
    log_group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/"
    predict = grants(allowed_statements(client, outputs["function_names"]["predict"]))
    batch = grants(allowed_statements(client, outputs["function_names"]["batch"]))

    for granted in (predict, batch):
        assert not [action for action, _ in granted if "*" in action], "wildcard actions"
        assert ("s3:GetObject", model_arn) in granted
        assert ("s3:GetObject", model_arn + ".manifest.json") in granted  # the optional manifest
        assert {r for a, r in granted if a.startswith("logs:")} <= {log_group + "serverless-ml-predict:*", log_group + "serverless-ml-batch:*"}
    assert {a for a, _ in predict} == {"s3:GetObject", "logs:CreateLogStream", "logs:PutLogEvents"}
    assert {r for a, r in predict if a.startswith("s3:")} == {model_arn, model_arn + ".manifest.json"}
    assert {r for a, r in batch if a == "s3:GetObject"} == {
        model_arn, model_arn + ".manifest.json", f"{bucket_arn}/incoming/*", f"{bucket_arn}/predictions/*"}
    # a version of an input, even one replaced since; never of the model or an output
    assert {r for a, r in batch if a == "s3:GetObjectVersion"} == {f"{bucket_arn}/incoming/*"}
    writes = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
    assert {r for a, r in batch if a in writes} == {f"{bucket_arn}/predictions/*"}
    assert {a for a, _ in batch} == {
        "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
        "s3:ListBucket", "sqs:SendMessage", "logs:CreateLogStream", "logs:PutLogEvents",
    }


def test_log_groups_keep_logs_for_the_configured_retention(stack):
    _, _, _, client = stack
    groups = {g["logGroupName"]: g.get("retentionInDays") for g in client("logs").describe_log_groups()["logGroups"]}
    assert groups == {
        "/aws/lambda/serverless-ml-predict": 30, "/aws/lambda/serverless-ml-batch": 30, "/aws/apigateway/serverless-ml": 30,
    }


def test_http_api_sends_every_route_to_predict(stack):
    _, _, outputs, client = stack
    api = client("apigatewayv2")
    (found,) = [a for a in api.get_apis()["Items"] if a["Name"] == "serverless-ml"]
    (route,) = api.get_routes(ApiId=found["ApiId"])["Items"]
    assert route["RouteKey"] == "$default"  # core answers 404/405/OPTIONS itself, as on every provider
    integration = api.get_integration(ApiId=found["ApiId"], IntegrationId=route["Target"].split("/")[-1])
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    assert outputs["function_names"]["predict"] in integration["IntegrationUri"]
    assert outputs["predict_url"] == outputs["endpoint_url"].rstrip("/") + "/predict"


WRONG_VARIABLES = {
    # name: (value, what the refusal says)
    "model_uri": ("https://example.com/model.joblib", "model_uri must be an S3 object"),
    "model_sha256": ("abc123", "model_sha256 must be 64 lowercase hexadecimal"),
    "runtime": ("python3.11", "runtime must be python3.12 or python3.13"),
    "architecture": ("aarch64", "architecture must be x86_64 or arm64"),
    "input_prefix": ("incoming", "input_prefix must be a non-empty key prefix ending with /"),
    "max_rows": ("0", "max_rows must be an integer from 1 to 1000000"),
    "cors_allow_origins": ('["app.example.com"]', "cors_allow_origins must hold"),
    # core refuses these at start, which would answer 503 to every request after a "successful" deploy
    "skops_trusted_types": ('["*"]', "skops_trusted_types must hold fully-qualified type names such as sklearn.tree._tree.Tree"),
    "onnx_threads": ("300", "onnx_threads must be an integer from 0 to 256"),
    "batch_chunk_rows": ("0", "batch_chunk_rows must be an integer from 1 to 1000000"),
    "batch_part_bytes": ("1048576", "batch_part_bytes must be an integer from 5242880 (5 MiB) to 4194304000 (4000 MiB)"),
}


@pytest.fixture(scope="module")
def refused_plan(stack) -> str:
    """One plan with every wrong value at once (Terraform reports each variable it refuses): the
    provider starts once instead of once per value."""
    workdir, variables, _, _ = stack
    wrong = {name: value for name, (value, _) in WRONG_VARIABLES.items()}
    result = workdir.run("plan", "-input=false", "-refresh=false", *var_args({**variables, **wrong}))
    assert result.returncode != 0
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("name", sorted(WRONG_VARIABLES))
def test_a_wrong_variable_is_refused_naming_it(refused_plan, name):
    value, expected = WRONG_VARIABLES[name]
    assert expected in refused_plan, f"-var {name}={value} was not refused with {expected!r}:\n{refused_plan}"


def test_a_model_file_core_cannot_load_is_refused_at_plan(stack):
    workdir, variables, _, _ = stack
    uri = variables["model_uri"].rsplit("/", 1)[0] + "/model.h5"
    result = workdir.run("plan", "-input=false", "-refresh=false", *var_args({**variables, "model_uri": uri}))
    assert result.returncode != 0
    assert ("model_uri must end in a model file extension: .joblib, .pkl or .pickle (also compressed: .gz, .bz2, "
            ".xz, .lzma, .z), .skops or .onnx.") in " ".join(result.stderr.split()), result.stderr


def test_overlapping_input_and_output_prefixes_are_refused(stack):
    workdir, variables, _, _ = stack
    result = workdir.run("plan", "-input=false", "-refresh=false", *var_args({**variables, "input_prefix": "predictions/incoming/"}))
    assert result.returncode != 0
    assert "overlap: the outputs would trigger the batch function" in " ".join(result.stderr.split()), result.stderr


def test_a_model_that_needs_pandas_gets_a_bundle_with_it_or_no_plan(stack, tmp_path):
    """model_needs_pandas = true: the tiny bundle, which nothing describes, is refused at plan
    (infra/modules/bundle, planned on its own in test_bundle_module.py); the same zip described
    as `serverless-ml package --extra pandas` describes it is accepted."""
    workdir, variables, _, _ = stack
    needs = {**variables, "model_needs_pandas": "true"}
    refused = workdir.run("plan", "-input=false", "-refresh=false", *var_args(needs))
    assert refused.returncode != 0
    said = " ".join(refused.stderr.split())
    assert f"model_needs_pandas = true (the model takes its rows as a DataFrame), but nothing says that {variables['bundle_path']} carries pandas" in said, said
    assert "Build the bundle with `serverless-ml package --provider aws --extra pandas`" in said

    described = tiny_bundle(tmp_path / "serverless-ml-aws.zip")
    (tmp_path / "serverless-ml-aws.bundle.json").write_text(json.dumps({
        "bundle": described.name, "sha256": hashlib.sha256(described.read_bytes()).hexdigest(), "provider": "aws",
        "extras": ["pandas"]}))
    accepted = workdir.run("plan", "-input=false", "-refresh=false", *var_args({**needs, "bundle_path": str(described)}))
    assert accepted.returncode == 0, accepted.stderr


def planned_functions(workdir, variables: dict[str, str]) -> dict[str, dict]:
    """The Lambda functions as `terraform plan` would create them, read from the saved plan."""
    result = workdir.run("plan", "-input=false", "-refresh=false", "-out=functions.tfplan", *var_args(variables))
    assert result.returncode == 0, f"terraform plan failed:\n{result.stdout[-4000:]}\n{result.stderr}"
    plan = json.loads(workdir.run("show", "-json", "functions.tfplan").stdout)
    return {change["name"]: change["change"]["after"] for change in plan["resource_changes"]
            if change["type"] == "aws_lambda_function"}


def described_bundle(folder: Path, python_version: str, architecture: str) -> Path:
    """The tiny bundle with the description `serverless-ml package` writes beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    bundle = tiny_bundle(folder / "serverless-ml-aws.zip")
    (folder / "serverless-ml-aws.bundle.json").write_text(json.dumps({
        "bundle": bundle.name, "sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(), "provider": "aws",
        "python_version": python_version, "architecture": architecture, "extras": []}))
    return bundle


@pytest.mark.parametrize("runtime, architecture", [("python3.12", "arm64"), ("python3.13", "x86_64"), ("python3.13", "arm64")])
def test_both_functions_get_the_runtime_and_architecture_the_bundle_is_built_for(stack, tmp_path, runtime, architecture):
    workdir, variables, _, _ = stack
    bundle = described_bundle(tmp_path, runtime.removeprefix("python"), architecture)
    functions = planned_functions(workdir, {**variables, "bundle_path": str(bundle), "runtime": runtime,
                                            "architecture": architecture})
    assert {name: (f["runtime"], f["architectures"]) for name, f in functions.items()} == {
        "predict": (runtime, [architecture]), "batch": (runtime, [architecture])}


@pytest.mark.parametrize("built, asked, expected", [
    (("3.12", "x86_64"), {},
     "runtime = python3.13, but {bundle} was built for Python 3.12; its compiled wheels do not load under another "
     "Python. Build it with `serverless-ml package --provider aws --python-version 3.13` or set runtime = \"python3.12\"."),
    (("3.13", "x86_64"), {"architecture": "arm64"},
     "architecture = arm64, but {bundle} was built for x86_64; its compiled wheels do not load on another machine. "
     "Build it with `serverless-ml package --provider aws --arch arm64` or set architecture = \"x86_64\"."),
])
def test_a_bundle_built_for_another_python_or_architecture_is_refused_at_plan(stack, tmp_path, built, asked, expected):
    workdir, variables, _, _ = stack
    bundle = described_bundle(tmp_path, *built)
    result = workdir.run("plan", "-input=false", "-refresh=false", *var_args({**variables, "bundle_path": str(bundle), **asked}))
    assert result.returncode != 0
    assert expected.format(bundle=bundle) in " ".join(result.stderr.split()), result.stderr


# The fan-out (fanout.tf) is applied with the SnapStart stack: one apply into moto fewer, and the
# two touch different functions.
FAN_OUT_VARIABLES = {"fan_out": "true", "fan_out_max_concurrency": "25", "fan_out_part_bytes": "1048576"}


@session_build(lane=MOTO)
def snapstart_stack(tmp_path_factory):
    """infra/aws with snap_start = true (and preload_model = false, which SnapStart overrides) and
    fan_out = true, planned and then applied to a moto server of its own."""
    with moto_stacks.started(tmp_path_factory, "infra-aws-snapstart") as started:
        variables = {**APPLY_VARIABLES, "bundle_path": str(tiny_bundle(started.workdir.path / "bundle.zip")),
                     "name": "serverless-ml-snap", "snap_start": "true", "preload_model": "false", **FAN_OUT_VARIABLES}
        plan = started.apply(variables, "snap.tfplan", "-refresh=false")
        yield started.workdir, variables, plan, started.outputs(), started.client


def test_snap_start_publishes_predict_with_snapstart_and_its_model_preloaded(snapstart_stack):
    _, _, plan, outputs, client = snapstart_stack
    changes = {(c["type"], c["name"]): c["change"]["after"] for c in plan["resource_changes"]}
    predict, batch = changes[("aws_lambda_function", "predict")], changes[("aws_lambda_function", "batch")]
    assert predict["snap_start"] == [{"apply_on": "PublishedVersions"}] and predict["publish"] is True
    assert batch["snap_start"] == [] and batch["publish"] is False
    # preload_model = false was asked: SnapStart overrides it for predict only
    assert predict["environment"][0]["variables"]["PRELOAD_MODEL"] == "true"
    batch_env = function_config(client, outputs["function_names"]["batch"])["Environment"]["Variables"]
    assert batch_env["PRELOAD_MODEL"] == "false"  # known after apply only (it names the data bucket)
    assert changes[("aws_lambda_alias", "predict")]["name"] == "snapstart"


def test_with_snap_start_the_http_api_invokes_the_alias_of_the_published_version(snapstart_stack):
    _, _, _, outputs, client = snapstart_stack
    name = outputs["function_names"]["predict"]
    alias = client("lambda").get_alias(FunctionName=name, Name="snapstart")
    assert alias["FunctionVersion"] not in ("$LATEST", "")
    (api,) = [a for a in client("apigatewayv2").get_apis()["Items"] if a["Name"] == "serverless-ml-snap"]
    (integration,) = client("apigatewayv2").get_integrations(ApiId=api["ApiId"])["Items"]
    assert integration["IntegrationUri"].endswith(f":function:{name}:snapstart/invocations"), integration
    policy = json.loads(client("lambda").get_policy(FunctionName=name, Qualifier="snapstart")["Policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "apigateway.amazonaws.com"}]


def test_snap_start_with_more_than_512_mb_of_tmp_is_refused_at_plan(snapstart_stack):
    workdir, variables, _, _, _ = snapstart_stack
    result = workdir.run("plan", "-input=false", "-refresh=false",
                         *var_args({**variables, "predict_ephemeral_storage_mb": "1024"}))
    assert result.returncode != 0
    assert ("snap_start = true with predict_ephemeral_storage_mb = 1024: SnapStart allows at most 512 MB of /tmp; "
            "set predict_ephemeral_storage_mb = 512") in " ".join(result.stderr.split()), result.stderr


# --- the batch fan-out (fanout.tf) -------------------------------------------------------------------


def test_without_fan_out_there_is_no_state_machine_and_batch_may_start_none(stack):
    _, _, outputs, client = stack
    assert outputs.get("fan_out_state_machine_arn") is None  # terraform output leaves a null out
    names = [m["name"] for m in client("stepfunctions").list_state_machines()["stateMachines"]]
    assert "serverless-ml-batch-fanout" not in names
    batch = function_config(client, outputs["function_names"]["batch"])["Environment"]["Variables"]
    assert not {name for name in batch if name.startswith("BATCH_FANOUT")}


def test_with_fan_out_the_state_machine_runs_the_three_steps_and_batch_may_start_it_alone(snapstart_stack):
    """The definition moto stores is infra/aws/fanout.asl.json.tftpl with the steps' ARNs: the
    text serverless.yml deploys too (asl-validator checks it: test_package_fan_out.py). moto
    records the state machine; it does not run it (its Lambda tasks would need Docker)."""
    from tests.aws_lambda.test_fanout import rendered_definition

    _, _, _, outputs, client = snapstart_stack
    arn = outputs["fan_out_state_machine_arn"]
    described = client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    assert described["name"] == "serverless-ml-snap-batch-fanout" and described["type"] == "STANDARD"
    steps = {step: function_config(client, f"serverless-ml-snap-fanout-{step}") for step in ("plan", "part", "merge")}
    assert json.loads(described["definition"]) == json.loads(rendered_definition(
        plan_function_arn=steps["plan"]["FunctionArn"], part_function_arn=steps["part"]["FunctionArn"],
        merge_function_arn=steps["merge"]["FunctionArn"], max_concurrency="25"))
    for step, configuration in steps.items():
        assert configuration["Handler"] == f"aws_lambda.handler.fanout_{step}"
        assert configuration["Environment"]["Variables"]["BATCH_FANOUT_PART_BYTES"] == "1048576"

    batch = function_config(client, outputs["function_names"]["batch"])
    assert batch["Environment"]["Variables"]["BATCH_FANOUT_STATE_MACHINE_ARN"] == arn
    assert batch["Environment"]["Variables"]["BATCH_FANOUT_PART_BYTES"] == "1048576"
    batch_grants = grants(allowed_statements(client, batch["Role"].rsplit("/", 1)[1]))
    assert {(a, r) for a, r in batch_grants if a.startswith("states:")} == {("states:StartExecution", arn)}

    machine_grants = grants(allowed_statements(client, described["roleArn"].rsplit("/", 1)[1]))
    assert {r for a, r in machine_grants if a == "lambda:InvokeFunction"} == {c["FunctionArn"] for c in steps.values()}
    bucket_arn = f"arn:aws:s3:::{outputs['data_bucket']}"
    assert {(a, r) for a, r in machine_grants if a.startswith("s3:")} == {("s3:GetObject", f"{bucket_arn}/predictions/_parts/*")}
    assert {r for a, r in machine_grants if a == "states:StartExecution"} == {arn}
    assert {a for a, r in machine_grants if r == "*"} <= {
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"}
    steps_grants = grants(allowed_statements(client, steps["part"]["Role"].rsplit("/", 1)[1]))
    assert not {a for a, _ in steps_grants if a.startswith(("states:", "sqs:", "lambda:"))}

    rules = client("s3").get_bucket_lifecycle_configuration(Bucket=outputs["data_bucket"])["Rules"]
    (parts_rule,) = [r for r in rules if r["ID"] == "expire-unmerged-fanout-parts"]
    assert parts_rule["Filter"]["Prefix"] == "predictions/_parts/" and parts_rule["Expiration"]["Days"] == 7
