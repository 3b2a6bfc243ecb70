"""The Azure and GCP configurations, read with python-hcl2 (their providers are not on this
machine, so `terraform validate` cannot run on them), and what all three share: the same settings,
entry points that exist in the code, bundles where `serverless-ml package` writes them, and
outputs for the endpoint URLs.

What these tests cannot see: whether azurerm/google accept every argument (only `terraform
validate` with those providers can tell; see infra/README.md).
"""

from __future__ import annotations

import ast
import json
import re

import pytest

from core.batch.formats import FORMATS, input_format
from core.errors import SettingsError
from core.file_formats import format_for_name
from core.settings import Settings
from core.storage import StorageURI
from core.storage.locations import output_locations, parse_output_prefix
from tests.infra import terraform_support as tf

SUFFIXES = {f".{kind}{gz}" for kind in FORMATS for gz in ("", ".gz")}
BUNDLES = {
    "aws": "build/aws/serverless-ml-aws.zip",
    "azure": "build/azure/serverless-ml-azure.zip",
    "gcp": "build/gcp/serverless-ml-gcp.zip",
}
# roles that would let the functions do far more than read a model and inputs and write outputs
BROAD_ROLES = {
    "Owner", "Contributor", "Storage Account Contributor", "Storage Blob Data Owner",
    "roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectAdmin",
}


@pytest.fixture(scope="module", params=tf.CLOUDS)
def any_config(request, hcl2_module):
    return request.param, tf.parse_config(tf.INFRA / request.param)





def defined_functions(path) -> set[str]:
    tree = ast.parse(path.read_text())  # nested too: function_app.py defines its batch functions under a setting
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


# --- all three ----------------------------------------------------------------------------------

def test_functions_get_every_setting_core_reads(any_config):
    cloud, config = any_config
    settings = config.locals["settings"]
    missing = set(tf.FUNCTION_SETTINGS) - set(settings)
    assert not missing, f"infra/{cloud} does not set {sorted(missing)}"
    core_settings = (tf.REPO / "core" / "settings.py").read_text()
    for name in tf.FUNCTION_SETTINGS:
        assert f'"{name}"' in core_settings  # a name core does not read would be silently ignored
    for name, (variable, expression) in tf.SETTING_VARIABLES.items():
        assert settings[name] == expression, f"infra/{cloud}: {name} = {settings[name]!r}, expected {expression!r}"
        assert variable in config.variables, f"infra/{cloud} has no variable {variable} for {name}"
    # empty values are left out, as if unset (an empty skops_trusted_types list among them)
    environment = config.locals["app_settings" if cloud == "azure" else "function_environment"]
    assert '{for key, value in local.settings : key => value if value != ""}' in environment, environment


@pytest.mark.parametrize("cloud", ["azure", "gcp"])
def test_setting_variables_are_the_same_as_on_aws(cloud, aws, request):
    """What the AWS configuration's apply proves (test_terraform.py: the strings the functions
    get, the values refused at plan) holds for Azure and GCP through the same declarations."""
    config = request.getfixturevalue(cloud)
    for name, (variable, _) in tf.SETTING_VARIABLES.items():
        for part in ("type", "default", "validation"):
            assert config.variables[variable].get(part) == aws.variables[variable].get(part), (
                f"infra/{cloud}: variable {variable} ({name}) has {part} {config.variables[variable].get(part)!r}, "
                f"infra/aws has {aws.variables[variable].get(part)!r}")


# One list element each, as a user writes them: core also strips spaces around and splits on
# commas, which only matter in the joined string.
TYPE_NAMES = (
    "sklearn.tree._tree.Tree", "numpy.dtype", "_private._Type", "a.b.c.d1", "sklearn.ensemble.RandomForestClassifier",
    "*", "true", "all", "sklearn.*", "sklearn.tree.*", "Tree", ".Tree", "sklearn.", "sklearn..Tree", "1sklearn.Tree", "sklearn.1Tree",
    "sklearn.tree-x.Tree", "sklearn.tree._tree.Tree()", "sklearn/tree.Tree",
)


def test_skops_trusted_types_are_refused_where_core_refuses_them(any_config):
    """The validation's regex against what core accepts at start, name by name."""
    cloud, config = any_config
    (validation,) = config.variables["skops_trusted_types"]["validation"]
    quoted = re.search(r'regex\((".*?(?<!\\)"), type_name\)', validation["condition"]).group(1)
    pattern = json.loads(quoted)  # HCL's string escapes are JSON's
    for type_name in TYPE_NAMES:
        try:
            Settings.from_env({"MODEL_URI": "file:///m.skops", "SKOPS_TRUSTED_TYPES": type_name})
            core_accepts = True
        except SettingsError:
            core_accepts = False
        assert bool(re.search(pattern, type_name)) == core_accepts, (
            f"infra/{cloud}: skops_trusted_types [{type_name!r}] is {'refused' if core_accepts else 'accepted'} "
            f"by {pattern!r}, core {'accepts' if core_accepts else 'refuses'} it")
    assert "trusting every type" in validation["error_message"]


MODEL_FILE_NAMES = (
    "model.joblib", "model.PKL", "model.pickle", "model.joblib.gz", "model.pkl.xz", "model.joblib.Z", "model.pickle.lzma",
    "model.skops", "model.onnx", "model.ONNX", "model.h5", "model.pt", "model.joblib.zip", "model.skops.gz",
    "model.onnx.gz", "model", ".joblib", ".onnx", "joblib",
)


def test_a_model_file_extension_is_refused_where_core_refuses_it(any_config):
    """The model location's extension validation against core's choice of format, name by name."""
    cloud, config = any_config
    variable = "model_file" if cloud == "azure" else "model_uri"
    (validation,) = [v for v in config.variables[variable]["validation"] if "extension" in v["error_message"]]
    quoted = re.search(r'regex\((".*?(?<!\\)"), var\.\w+\)', validation["condition"]).group(1)
    pattern = json.loads(quoted)  # HCL's string escapes are JSON's
    for name in MODEL_FILE_NAMES:
        core_accepts = format_for_name(name) is not None
        assert bool(re.search(pattern, f"models/{name}")) == core_accepts, (
            f"infra/{cloud}: {variable} ending in {name!r} is {'refused' if core_accepts else 'accepted'} by "
            f"{pattern!r}, core {'accepts' if core_accepts else 'refuses'} it")


def test_bundle_defaults_to_what_the_packager_writes(any_config):
    cloud, config = any_config
    assert config.locals["bundle_path"].endswith(f'/../../{BUNDLES[cloud]}")}}'), config.locals["bundle_path"]
    assert config.variables["bundle_path"]["default"] is None


def test_outputs_name_the_endpoint_urls(any_config):
    cloud, config = any_config
    assert {"endpoint_url", "predict_url"} <= set(config.outputs), f"infra/{cloud} outputs {sorted(config.outputs)}"
    assert config.outputs["predict_url"]["value"].endswith('/predict"') or "/predict" in config.outputs["predict_url"]["value"]


def test_every_variable_is_described(any_config):
    cloud, config = any_config
    undocumented = [name for name, body in config.variables.items() if not body.get("description")]
    assert not undocumented, f"infra/{cloud}: variables without a description: {undocumented}"


def test_no_broad_roles(any_config):
    """One exception, on Azure: Storage Blob Data Owner on the host's own account, the least the
    Functions host takes for an identity-based AzureWebJobsStorage; never on the data account."""
    cloud, config = any_config
    text = "\n".join(config.texts.values())
    used = [match.group(2) for match in re.finditer(r'(role|role_definition_name)\s*=\s*"([^"]+)"', text)
            if match.group(2) in BROAD_ROLES]
    allowed = [body for body in config.resources.get("azurerm_role_assignment", {}).values()
               if body["role_definition_name"] == "Storage Blob Data Owner"
               and body["scope"] == "${azurerm_storage_account.host.id}"]
    assert len(used) == len(allowed), f"infra/{cloud} grants {sorted(used)}"


# --- AWS (applied against moto in test_terraform.py; what moto cannot show is checked here) ---

def test_aws_buckets_refuse_requests_without_tls(aws):
    """moto cannot evaluate this policy's condition, so test_terraform.py swaps it out."""
    (statement,) = aws.data["aws_iam_policy_document"]["tls_only"]["statement"]
    assert statement["effect"] == "Deny" and statement["actions"] == ["s3:*"]
    assert tf.block(statement, "condition") == {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}
    assert aws.resource("aws_s3_bucket_policy", "this")["for_each"] == "${local.buckets}"
    for hardening in ("aws_s3_bucket_public_access_block", "aws_s3_bucket_server_side_encryption_configuration",
                      "aws_s3_bucket_ownership_controls", "aws_s3_bucket_versioning"):
        assert aws.resource(hardening, "this")["for_each"] == "${local.buckets}"
    assert set(aws.locals["buckets"]) == {"data", "artifacts"}


def test_aws_lambda_code_comes_from_s3(aws):
    """The bundle with its dependencies is larger than the 50 MB of a direct upload."""
    for name in ("predict", "batch"):
        function = aws.resource("aws_lambda_function", name)
        assert "filename" not in function
        assert function["s3_key"] == "${aws_s3_object.bundle.key}"


# --- Azure --------------------------------------------------------------------------------------

def test_azure_deploys_to_flex_consumption_by_default(azure):
    """FC1 by default, Elastic Premium as the option, Linux Consumption (Y1) not offered; one app
    exists for the chosen plan, on the Python the variable names."""
    assert "azurerm_function_app" not in azure.resources  # removed in azurerm 4
    plan = azure.variables["sku_name"]
    assert plan["default"] == "FC1"
    (validation,) = plan["validation"]
    assert set(validation["condition"].split('"')[1::2]) == {"FC1", "EP1", "EP2", "EP3"}
    assert "30 September 2028" in validation["error_message"] and "30 September 2028" in plan["description"]
    assert azure.locals["flex"] == '${var.sku_name == "FC1"}'
    assert azure.resource("azurerm_service_plan", "this")["sku_name"] == "${var.sku_name}"

    flex = azure.resource("azurerm_function_app_flex_consumption", "this")
    assert flex["count"] == "${local.flex ? 1 : 0}"
    assert (flex["runtime_name"], flex["runtime_version"]) == ("python", "${var.python_version}")
    assert flex["instance_memory_in_mb"] == "${var.instance_memory_in_mb}"
    assert flex["maximum_instance_count"] == "${var.maximum_instance_count}"
    assert tf.block(flex, "always_ready") == {"name": "http", "instance_count": "${var.always_ready_http}"}
    assert azure.variables["always_ready_http"]["default"] == 0
    assert flex["https_only"] is True
    assert flex["app_settings"] == "${local.app_settings}"
    # azurerm's zip deploy does not reach Flex (the Azure CLI's one-deploy does, below)
    assert "zip_deploy_file" not in flex

    premium = azure.resource("azurerm_linux_function_app", "this")
    assert premium["count"] == "${local.flex ? 0 : 1}"
    assert tf.block(tf.block(premium, "site_config"), "application_stack")["python_version"] == "${var.python_version}"
    assert premium["zip_deploy_file"] == "${module.bundle.path}"  # the bundle checked for pandas
    assert premium["https_only"] is True
    for app in (flex, premium):
        assert tf.block(app, "identity") == {"type": "UserAssigned", "identity_ids": ["${azurerm_user_assigned_identity.app.id}"]}

    # every reference to the app goes through the one of the chosen plan
    source = "".join(text for name, text in azure.texts.items() if name in ("events.tf", "outputs.tf"))
    assert "azurerm_linux_function_app.this." not in source and "azurerm_function_app_flex_consumption.this" not in source
    assert {"app_id", "app_name", "app_hostname"} <= set(azure.locals)


def test_azure_flex_package_comes_from_the_deployment_container_through_the_identity(azure):
    flex = azure.resource("azurerm_function_app_flex_consumption", "this")
    container = azure.resource("azurerm_storage_container", "deployments")
    assert container["storage_account_id"] == "${azurerm_storage_account.host.id}"
    assert container["container_access_type"] == "private"
    assert flex["storage_container_type"] == "blobContainer"
    assert flex["storage_container_endpoint"] == (
        "${azurerm_storage_account.host.primary_blob_endpoint}${azurerm_storage_container.deployments[0].name}")
    assert flex["storage_authentication_type"] == "UserAssignedIdentity"
    assert flex["storage_user_assigned_identity_id"] == "${azurerm_user_assigned_identity.app.id}"
    assert "storage_access_key" not in flex
    # the host's account takes no key when the plan is Flex (Elastic Premium's content share needs one)
    assert azure.resource("azurerm_storage_account", "host")["shared_access_key_enabled"] == "${local.flex ? false : true}"
    host_role = azure.resource("azurerm_role_assignment", "host_storage")
    assert (host_role["scope"], host_role["principal_id"]) == (
        "${azurerm_storage_account.host.id}", "${azurerm_user_assigned_identity.app.principal_id}")
    assert flex["depends_on"] == ["${azurerm_role_assignment.host_storage}"]

    # the deploy: the bundle checked for pandas, redone when the zip changes
    deploy = azure.resource("terraform_data", "deploy")
    assert deploy["count"] == "${local.flex ? 1 : 0}"
    assert "${filesha256(module.bundle.path)}" in deploy["triggers_replace"]
    (provisioner,) = deploy["provisioner"]
    command = provisioner["local-exec"]["command"]
    assert "az functionapp deployment source config-zip" in command and "abspath(module.bundle.path)" in command
    assert "--build-remote ${var.remote_build}" in command


def test_azure_flex_host_storage_and_blobs_use_the_identity(azure):
    """No key in the app's settings: AzureWebJobsStorage, the blob trigger's connection and core's
    DefaultAzureCredential all name the user-assigned identity's client id."""
    settings = azure.locals["settings"]
    client_id = "${azurerm_user_assigned_identity.app.client_id}"
    assert settings["AZURE_CLIENT_ID"] == client_id  # DefaultAzureCredential's managed identity
    assert settings["BatchStorage__credential"] == "managedidentity"
    assert settings["BatchStorage__clientId"] == client_id
    host = azure.locals["host_storage_settings"]
    assert "local.flex ?" in host
    for line in ('AzureWebJobsStorage = ""', 'AzureWebJobsStorage__credential = "managedidentity"',
                 "AzureWebJobsStorage__clientId = azurerm_user_assigned_identity.app.client_id",
                 "AzureWebJobsStorage__accountName = azurerm_storage_account.host.name"):
        assert line in " ".join(host.split()), f"{line!r} not in {host!r}"
    # Flex refuses the deployment settings of the other plans
    assert azure.locals["deployment_settings"].startswith("${local.flex ? {} :")
    assert "local.host_storage_settings" in azure.locals["app_settings"]


def test_azure_app_settings_match_the_function_app(azure):
    """The names function_app.py reads: BATCH_INPUT_CONTAINER, BATCH_STORAGE_CONNECTION (and the
    connection's own settings), FUNCTION_AUTH_LEVEL; and the account core signs in to."""
    function_app = (tf.REPO / "azure_function" / "function_app.py").read_text()
    settings = azure.locals["settings"]
    for name in ("BATCH_INPUT_CONTAINER", "BATCH_STORAGE_CONNECTION", "FUNCTION_AUTH_LEVEL"):
        assert name in settings and f'"{name}"' in function_app
    connection = settings["BATCH_STORAGE_CONNECTION"]
    assert f"{connection}__blobServiceUri" in settings
    assert "AZURE_STORAGE_ACCOUNT_URL" in settings
    assert "AZURE_STORAGE_ACCOUNT_URL" in (tf.REPO / "core" / "storage" / "azure_blob.py").read_text()
    assert settings["BATCH_OUTPUT_URI"] == "${local.output_uri}"
    assert azure.locals["output_uri"] == "az://${var.output_container}/${var.output_prefix}"


def test_azure_event_grid_delivers_created_input_blobs_only(azure):
    subscription = azure.resource("azurerm_eventgrid_system_topic_event_subscription", "batch_inputs")
    topic = azure.resource("azurerm_eventgrid_system_topic", "data")
    assert topic["topic_type"] == "Microsoft.Storage.StorageAccounts"
    assert topic["source_arm_resource_id"] == "${azurerm_storage_account.data.id}"
    assert subscription["included_event_types"] == ["Microsoft.Storage.BlobCreated"]
    # loop guard: only blobs of the input container; outputs are in another container
    subject = tf.block(subscription, "subject_filter")["subject_begins_with"]
    assert subject == "/blobServices/default/containers/${azurerm_storage_container.inputs.name}/blobs/"
    assert azure.variables["input_container"]["default"] != azure.variables["output_container"]["default"]
    ends_with = tf.block(tf.block(subscription, "advanced_filter"), "string_ends_with")
    assert ends_with["key"] == "subject" and ends_with["values"] == "${local.batch_suffixes}"
    assert set(azure.locals["batch_suffixes"]) == SUFFIXES
    # a dead-letter destination: an event that cannot be delivered is kept, not dropped
    assert tf.block(subscription, "storage_blob_dead_letter_destination")


def test_azure_outputs_never_match_the_subscription_with_the_default_names(azure):
    """Where core writes the outputs of an input blob, with the defaults of the variables, and
    the subject Event Grid would give each output blob: none passes the subject filter."""
    defaults = {name: body.get("default") for name, body in azure.variables.items()}
    inputs, outputs, prefix = defaults["input_container"], defaults["output_container"], defaults["output_prefix"]
    subscription = azure.resource("azurerm_eventgrid_system_topic_event_subscription", "batch_inputs")
    begins = tf.block(subscription, "subject_filter")["subject_begins_with"].replace(
        "${azurerm_storage_container.inputs.name}", inputs)
    output_prefix = parse_output_prefix(f"az://{outputs}/{prefix}")
    for name in ("day.csv", "2026/day.jsonl.gz"):
        source = StorageURI("az", inputs, name)
        assert f"/blobServices/default/containers/{inputs}/blobs/{name}".startswith(begins)
        produced = output_locations(source, output_prefix)
        for output in (produced.predictions, produced.errors):
            subject = f"/blobServices/default/containers/{output.bucket}/blobs/{output.key}"
            assert not subject.startswith(begins), f"{output.display} would reach the batch function"


def test_azure_subscription_targets_a_function_the_app_defines(azure):
    subscription = azure.resource("azurerm_eventgrid_system_topic_event_subscription", "batch_inputs")
    defined = defined_functions(tf.REPO / "azure_function" / "function_app.py")
    function_endpoint = subscription["dynamic"][0]["azure_function_endpoint"]["content"][0]["function_id"]
    webhook = subscription["dynamic"][1]["webhook_endpoint"]["content"][0]["url"]
    assert function_endpoint.endswith("/functions/batch_event_grid\"") or function_endpoint.endswith("/functions/batch_event_grid")
    assert "functionName=Host.Functions.batch_blob&" in webhook
    assert "blobs_extension_key" in webhook
    assert {"batch_event_grid", "batch_blob", "predict"} <= defined
    choices = azure.variables["batch_function"]["validation"][0]["condition"]
    assert "batch_event_grid" in choices and "batch_blob" in choices


def test_azure_identity_reads_the_model_blob_and_inputs_and_writes_outputs(azure):
    assignments = azure.resources["azurerm_role_assignment"]
    assert {body["principal_id"] for body in assignments.values()} == {"${azurerm_user_assigned_identity.app.principal_id}"}
    scope = "${local.container_scope}/${azurerm_storage_container.%s.name}"
    model = assignments["model_reader"]
    assert (model["role_definition_name"], model["scope"]) == ("Storage Blob Data Reader", scope % "models")
    assert "blobs:path] StringEquals '${local.model_blob}'" in model["condition"]
    assert (assignments["input_reader"]["role_definition_name"], assignments["input_reader"]["scope"]) == (
        "Storage Blob Data Reader", scope % "inputs")
    assert (assignments["output_writer"]["role_definition_name"], assignments["output_writer"]["scope"]) == (
        "Storage Blob Data Contributor", scope % "outputs")


def test_azure_logs_have_a_retention(azure):
    workspace = azure.resource("azurerm_log_analytics_workspace", "this")
    assert workspace["retention_in_days"] == "${var.log_retention_days}"
    assert azure.resource("azurerm_application_insights", "this")["workspace_id"] == "${azurerm_log_analytics_workspace.this.id}"


# --- GCP ----------------------------------------------------------------------------------------

def test_gcp_http_function_is_predict(gcp):
    predict = gcp.resource("google_cloudfunctions2_function", "predict")
    assert tf.block(predict, "build_config")["entry_point"] == "predict"
    assert "event_trigger" not in predict
    assert "predict" in defined_functions(tf.REPO / "gcp_function" / "main.py")
    service = tf.block(predict, "service_config")
    assert service["service_account_email"] == "${google_service_account.functions.email}"
    assert service["environment_variables"] == "${local.function_environment}"


def test_gcp_storage_trigger_watches_the_input_bucket_in_its_region(gcp):
    batch = gcp.resource("google_cloudfunctions2_function", "batch")
    assert tf.block(batch, "build_config")["entry_point"] == "batch"
    assert "batch" in defined_functions(tf.REPO / "gcp_function" / "main.py")
    trigger = tf.block(batch, "event_trigger")
    assert trigger["event_type"] == "google.cloud.storage.object.v1.finalized"
    assert trigger["event_type"] == ast.literal_eval(
        re.search(r"^FINALIZED = (.+)$", (tf.REPO / "gcp_function" / "main.py").read_text(), re.M).group(1))
    assert trigger["trigger_region"] == "${lower(google_storage_bucket.inputs.location)}"
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert tf.block(trigger, "event_filters") == {"attribute": "bucket", "value": "${google_storage_bucket.inputs.name}"}
    # loop guard: a storage trigger cannot filter by prefix, so outputs go to another bucket
    assert tf.block(batch, "service_config")["environment_variables"].startswith("${merge(local.batch_environment,")
    env = gcp.locals["batch_environment"]  # the batch function's, and the fan-out steps'
    assert "BATCH_OUTPUT_URI = local.output_uri" in env
    assert "BATCH_INPUT_URI = local.input_uri" in env  # an output prefix equal to it is refused at start
    assert gcp.locals["input_uri"] == "gs://${google_storage_bucket.inputs.name}/"
    assert gcp.locals["output_uri"].startswith("gs://${google_storage_bucket.outputs.name}/")


def test_gcp_storage_agent_may_publish_and_the_trigger_may_invoke(gcp):
    publisher = gcp.resource("google_project_iam_member", "storage_agent_publishes")
    assert publisher["role"] == "roles/pubsub.publisher"
    assert publisher["member"] == "${data.google_storage_project_service_account.this.member}"
    receiver = gcp.resource("google_project_iam_member", "trigger_receives_events")
    assert receiver["role"] == "roles/eventarc.eventReceiver"
    invoker = gcp.resource("google_cloud_run_v2_service_iam_member", "trigger_invokes_batch")
    assert (invoker["role"], invoker["name"]) == ("roles/run.invoker", "${google_cloudfunctions2_function.batch.name}")
    batch = gcp.resource("google_cloudfunctions2_function", "batch")
    assert tf.block(batch, "event_trigger")["service_account_email"] == "${google_service_account.trigger.email}"


def test_gcp_service_account_reads_the_model_object_and_inputs_and_writes_outputs(gcp):
    members = gcp.resources["google_storage_bucket_iam_member"]
    model = members["model_reader"]
    assert model["role"] == "roles/storage.objectViewer" and model["bucket"] == "${local.model_bucket}"
    assert tf.block(model, "condition")["expression"] == (
        'resource.name == \\"projects/_/buckets/${local.model_bucket}/objects/${local.model_key}\\" || '
        'resource.name == \\"projects/_/buckets/${local.model_bucket}/objects/${local.model_key}.manifest.json\\"')
    assert (members["input_reader"]["role"], members["input_reader"]["bucket"]) == (
        "roles/storage.objectViewer", "${google_storage_bucket.inputs.name}")
    assert (members["output_writer"]["role"], members["output_writer"]["bucket"]) == (
        "roles/storage.objectUser", "${google_storage_bucket.outputs.name}")
    assert all(m["member"] == "${google_service_account.functions.member}" for m in members.values())
    # predict is public only when asked for
    assert gcp.resource("google_cloud_run_v2_service_iam_member", "public_predict")["count"] == "${var.allow_unauthenticated ? 1 : 0}"


def test_gcp_buckets_are_private(gcp):
    for name, bucket in gcp.resources["google_storage_bucket"].items():
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name


@pytest.mark.parametrize("suffix", sorted(SUFFIXES))
def test_suffixes_are_what_core_reads(suffix):
    assert not isinstance(input_format("day" + suffix), str)


# --- pandas: the bundle checked against the model's needs -------------------------------------

def test_the_deployed_bundle_is_the_one_checked_for_pandas(any_config):
    """Every configuration passes its bundle through infra/modules/bundle (test_bundle_module.py
    plans it) and deploys the path the module hands back, so a refused bundle stops the plan."""
    cloud, config = any_config
    call = config.modules.get("bundle")
    assert call is not None, f"infra/{cloud} does not call ../modules/bundle"
    assert (call["source"], call["bundle_path"], call["provider_name"], call["model_needs_pandas"]) == (
        "../modules/bundle", "${local.bundle_path}", cloud, "${var.model_needs_pandas}")
    source = "".join(config.texts.values())
    # the unchecked path goes only into the module; what is uploaded or hashed is the module's
    assert source.count("local.bundle_path") == 1, f"infra/{cloud} deploys local.bundle_path unchecked"
    assert "module.bundle.path" in source
    variable = config.variables["model_needs_pandas"]
    assert (variable["type"], variable["default"]) == ("bool", False), variable
    assert f"serverless-ml package --provider {cloud} --extra pandas" in variable["description"]
