# Event Grid delivers Microsoft.Storage.BlobCreated events of the data account to the batch
# function. Loop guard: the subject filter admits only blobs of the input container, and the
# outputs go to a container of their own, so an output never matches; the advanced filter
# admits only the suffixes core reads.

resource "azurerm_eventgrid_system_topic" "data" {
  name                   = "${var.name}-data-events"
  resource_group_name    = azurerm_resource_group.this.name
  location               = azurerm_resource_group.this.location
  source_arm_resource_id = azurerm_storage_account.data.id
  topic_type             = "Microsoft.Storage.StorageAccounts"
  tags                   = var.tags
}

# The webhook of the blob trigger needs the host's blobs_extension system key, which exists once
# the app has started with the code deployed.
data "azurerm_function_app_host_keys" "this" {
  count               = var.batch_function == "batch_blob" ? 1 : 0
  name                = local.app_name
  resource_group_name = azurerm_resource_group.this.name

  # the key exists once the host has started with the blob trigger deployed
  depends_on = [terraform_data.deploy, azurerm_linux_function_app.this]
}

resource "azurerm_eventgrid_system_topic_event_subscription" "batch_inputs" {
  name                 = "${var.name}-batch-inputs"
  system_topic         = azurerm_eventgrid_system_topic.data.name
  resource_group_name  = azurerm_resource_group.this.name
  included_event_types = ["Microsoft.Storage.BlobCreated"]

  subject_filter {
    subject_begins_with = "/blobServices/default/containers/${azurerm_storage_container.inputs.name}/blobs/"
    case_sensitive      = true
  }

  advanced_filter {
    string_ends_with {
      key    = "subject"
      values = local.batch_suffixes
    }
  }

  dynamic "azure_function_endpoint" {
    for_each = var.batch_function == "batch_event_grid" ? [1] : []
    content {
      function_id          = "${local.app_id}/functions/batch_event_grid"
      max_events_per_batch = 1
    }
  }

  dynamic "webhook_endpoint" {
    for_each = var.batch_function == "batch_blob" ? [1] : []
    content {
      url = "https://${local.app_hostname}/runtime/webhooks/blobs?functionName=Host.Functions.batch_blob&code=${data.azurerm_function_app_host_keys.this[0].blobs_extension_key}"
    }
  }

  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }

  # an event still undelivered after a day of retries is kept here, not dropped
  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.data.id
    storage_blob_container_name = azurerm_storage_container.dead_letters.name
  }

  # Event Grid checks that the function exists when the subscription is made: the code must be
  # deployed by then (terraform_data.deploy on Flex, zip_deploy_file on Elastic Premium).
  depends_on = [
    azurerm_role_assignment.input_reader,
    azurerm_role_assignment.output_writer,
    terraform_data.deploy,
    azurerm_linux_function_app.this,
  ]
}
