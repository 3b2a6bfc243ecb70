"""What the Azure and GCP configurations expose of their platforms' own rollouts, read with
python-hcl2 (their providers are not on this machine: no `terraform validate` or plan for them;
checkov runs on them in test_checkov.py): Azure's staging slot on Elastic Premium, refused on Flex
Consumption, and GCP's switch that leaves a new revision of predict without traffic until the
Cloud Run service's split gives it some. infra/aws's traffic shifting is applied to moto in
test_rollout.py; its declarations are checked here against the same names."""

from __future__ import annotations

from tests.infra import terraform_support as tf


def test_azure_has_a_staging_slot_on_elastic_premium_only_when_asked(azure):
    variable = azure.variables["staging_slot"]
    assert (variable["type"], variable["default"]) == ("bool", False)
    slot = azure.resource("azurerm_linux_function_app_slot", "staging")
    assert slot["count"] == "${!local.flex && var.staging_slot ? 1 : 0}"
    assert slot["name"] == "staging"
    assert slot["function_app_id"] == "${azurerm_linux_function_app.this[0].id}"
    # what production has, so that the slot serves the same way before a swap
    app = azure.resource("azurerm_linux_function_app", "this")
    for key in ("identity", "storage_account_name", "storage_account_access_key", "https_only",
                "functions_extension_version", "ftp_publish_basic_authentication_enabled", "builtin_logging_enabled"):
        assert slot[key] == app[key], key
    # production's settings, a Durable Functions task hub of its own, then the slot's own settings
    assert slot["app_settings"] == (
        "${merge(local.app_settings, var.batch_fanout_durable ? {AzureFunctionsJobHost__extensions__durableTask__hubName"
        ' = "${local.task_hub}staging"} : {}, var.staging_app_settings)}')
    slot_site, app_site = tf.block(slot, "site_config"), tf.block(app, "site_config")
    for key in ("minimum_tls_version", "ftps_state", "application_stack", "application_insights_connection_string"):
        assert slot_site[key] == app_site[key], key
    assert azure.variables["staging_app_settings"]["default"] == {}
    assert "azurerm_linux_function_app_slot.staging[0].default_hostname" in azure.outputs["staging_url"]["value"]


def test_azure_refuses_a_staging_slot_on_flex_consumption_saying_what_to_do(azure):
    guard = azure.resource("terraform_data", "no_slot_on_flex")
    assert guard["count"] == "${local.flex && var.staging_slot ? 1 : 0}"
    (precondition,) = tf.block(guard, "lifecycle")["precondition"]
    # with count 1 only when both hold, the condition is false whenever it is evaluated
    assert precondition["condition"] == "${!(local.flex && var.staging_slot)}"
    message = precondition["error_message"]
    assert message.startswith("staging_slot = true with sku_name = FC1: Flex Consumption has no deployment slots.")
    for way in ("Elastic Premium (EP1-EP3)", "Front Door or API Management", "CANDIDATE_MODE=canary"):
        assert way in message


def test_gcp_can_leave_a_new_revision_of_predict_without_traffic(gcp):
    variable = gcp.variables["predict_all_traffic_on_latest_revision"]
    assert (variable["type"], variable["default"]) == ("bool", True)  # as before unless asked
    predict = tf.block(gcp.resource("google_cloudfunctions2_function", "predict"), "service_config")
    assert predict["all_traffic_on_latest_revision"] == "${var.predict_all_traffic_on_latest_revision}"
    batch = tf.block(gcp.resource("google_cloudfunctions2_function", "batch"), "service_config")
    assert batch["all_traffic_on_latest_revision"] is True  # events go to the latest batch code
    assert gcp.outputs["predict_run_service"]["value"] == "${google_cloudfunctions2_function.predict.service_config[0].service}"


def test_aws_alarm_names_and_the_codedeploy_policy_agree(aws):
    """The role may describe exactly the alarms the deployment group watches, by name."""
    names = aws.locals["alarm_names"]
    alarm = aws.resource("aws_cloudwatch_metric_alarm", "predict")
    assert alarm["alarm_name"] == "${local.alarm_names[each.key]}"
    assert set(names) == set(aws.locals["alarms"])
    group = aws.resource("aws_codedeploy_deployment_group", "predict")
    assert tf.block(group, "alarm_configuration")["alarms"] == "${[for alarm in aws_cloudwatch_metric_alarm.predict : alarm.alarm_name]}"
    (statement,) = [s for s in aws.data["aws_iam_policy_document"]["codedeploy"]["statement"] if s.get("sid") == "ReadTheAlarms"]
    assert "values(local.alarm_names)" in statement["resources"]
