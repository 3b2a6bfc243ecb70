data "azurerm_client_config" "current" {}

# The bundle checked against the model's needs (pandas) before anything is deployed from it.
module "bundle" {
  source             = "../modules/bundle"
  bundle_path        = local.bundle_path
  provider_name      = "azure"
  model_needs_pandas = var.model_needs_pandas
}

locals {
  bundle_path = coalesce(var.bundle_path, "${path.module}/../../build/azure/serverless-ml-azure.zip")

  # Function app and storage account names are global: a short hash of the subscription, the
  # name and the region keeps them unique and the same from one apply to the next.
  suffix       = substr(sha1("${data.azurerm_client_config.current.subscription_id}/${var.name}/${var.location}"), 0, 6)
  compact_name = substr(replace(var.name, "-", ""), 0, 12)

  models_container = "models"
  model_blob       = basename(var.model_file)
  model_sha256     = var.model_sha256 != "" ? var.model_sha256 : filesha256(var.model_file)
  output_uri       = "az://${var.output_container}/${var.output_prefix}"

  # Task hub names: 3-45 letters and digits, starting with a letter.
  task_hub = "fanout${local.compact_name}${local.suffix}"

  # Flex Consumption (FC1) by default; Elastic Premium (EP1-EP3) keeps the linux function app.
  flex = var.sku_name == "FC1"

  # The suffixes core's batch readers take.
  batch_suffixes = [".csv", ".jsonl", ".json", ".csv.gz", ".jsonl.gz", ".json.gz"]

  settings = {
    MODEL_URI               = "az://${local.models_container}/${local.model_blob}"
    MODEL_SHA256            = local.model_sha256
    MODEL_VERSION           = var.model_version
    MAX_ROWS                = tostring(var.max_rows)
    MAX_BODY_BYTES          = tostring(var.max_body_bytes)
    CORS_ALLOW_ORIGINS      = join(",", var.cors_allow_origins)
    LOG_LEVEL               = var.log_level
    PRELOAD_MODEL           = tostring(var.preload_model)
    STORAGE_TIMEOUT_SECONDS = tostring(var.storage_timeout_seconds)
    SKOPS_TRUSTED_TYPES     = join(",", var.skops_trusted_types)
    STRICT_MODEL_VERSION    = tostring(var.strict_model_version)
    ONNX_THREADS            = tostring(var.onnx_threads)
    BATCH_CHUNK_ROWS        = tostring(var.batch_chunk_rows)
    BATCH_PART_BYTES        = tostring(var.batch_part_bytes)
    BATCH_OUTPUT_URI        = local.output_uri
    BATCH_INPUT_CONTAINER   = var.input_container
    FUNCTION_AUTH_LEVEL     = var.auth_level
    BATCH_FANOUT_DURABLE    = var.batch_fanout_durable ? "true" : ""
    BATCH_FANOUT_PART_BYTES = var.batch_fanout_durable ? tostring(var.batch_fanout_part_bytes) : ""
    # Durable Functions keeps its task hub (queues, tables, blobs) in the host's storage
    # (AzureWebJobsStorage, the Azure Storage backend, which Flex Consumption supports). Its name
    # is set here, over host.json, so that two apps or slots on one account never share a hub.
    AzureFunctionsJobHost__extensions__durableTask__hubName = var.batch_fanout_durable ? local.task_hub : ""
    # core signs in to the data account with the app's managed identity (DefaultAzureCredential);
    # AZURE_CLIENT_ID makes DefaultAzureCredential pick the user-assigned identity
    AZURE_STORAGE_ACCOUNT_URL = azurerm_storage_account.data.primary_blob_endpoint
    AZURE_CLIENT_ID           = azurerm_user_assigned_identity.app.client_id
    # the blob trigger's connection, identity-based: <name>__blobServiceUri / __queueServiceUri
    BATCH_STORAGE_CONNECTION      = "BatchStorage"
    BatchStorage__blobServiceUri  = azurerm_storage_account.data.primary_blob_endpoint
    BatchStorage__queueServiceUri = azurerm_storage_account.data.primary_queue_endpoint
    BatchStorage__credential      = "managedidentity"
    BatchStorage__clientId        = azurerm_user_assigned_identity.app.client_id
  }
  # Flex Consumption refuses these settings (its deployment goes through the deployment container);
  # on Elastic Premium they choose between a remote build and running the zip as it is.
  deployment_settings = local.flex ? {} : var.remote_build ? {
    SCM_DO_BUILD_DURING_DEPLOYMENT = "true"
    ENABLE_ORYX_BUILD              = "true"
    } : {
    WEBSITE_RUN_FROM_PACKAGE = "1"
  }
  # Flex: the host's own storage through the identity as well, no key anywhere. azurerm (4.x) still
  # writes an AzureWebJobsStorage connection string with an empty key when the deployment storage
  # uses an identity (hashicorp/terraform-provider-azurerm#29149, #29693); an explicit empty value
  # replaces it, so the host takes the identity-based AzureWebJobsStorage__* settings.
  host_storage_settings = local.flex ? {
    AzureWebJobsStorage              = ""
    AzureWebJobsStorage__accountName = azurerm_storage_account.host.name
    AzureWebJobsStorage__credential  = "managedidentity"
    AzureWebJobsStorage__clientId    = azurerm_user_assigned_identity.app.client_id
  } : {}
  app_settings = merge({ for key, value in local.settings : key => value if value != "" }, local.deployment_settings, local.host_storage_settings)
}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
  tags     = var.tags
}

# --- storage ----------------------------------------------------------------------------------

# The Functions host's own account (AzureWebJobsStorage) and, on Flex Consumption, the container
# the deployment package is read from; on Elastic Premium, the content share.
resource "azurerm_storage_account" "host" {
  # checkov:skip=CKV_AZURE_43: the name is a lowercase alphanumeric prefix plus 6 hex digits of a hash, at most 24 characters; checkov cannot evaluate the interpolation
  # checkov:skip=CKV_AZURE_59: the app reaches storage over public endpoints (no VNet is created here); access needs Entra ID (Flex) or the account key (Elastic Premium's content share), anonymous access is off
  # checkov:skip=CKV2_AZURE_33: private endpoints need a VNet, private DNS zones and VNet integration of the app, none of which this configuration creates
  # checkov:skip=CKV2_AZURE_1: encrypted at rest with Microsoft-managed keys; a customer-managed key needs a Key Vault the user owns
  # checkov:skip=CKV_AZURE_33: storage diagnostic logging goes to a destination and a cost the user chooses; the app's own logs go to Application Insights
  # checkov:skip=CKV_AZURE_206: holds only the host's own state (keys, leases, the deployed package), recreated by an apply; LRS is enough
  # checkov:skip=CKV2_AZURE_38: holds only the host's own state, recreated by an apply; nothing of the user's to recover
  name                            = "${local.compact_name}host${local.suffix}"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  # Flex reads its package and keeps its state through the app's identity: no key is needed, so
  # none is accepted. Elastic Premium's content share (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING)
  # works with the account key only.
  shared_access_key_enabled = local.flex ? false : true
  tags                      = var.tags

  sas_policy {
    expiration_period = "01.00:00:00"
  }
}

# Flex Consumption runs the package it finds here; the deploy (terraform_data.deploy below, or
# `func azure functionapp publish`) puts it here.
resource "azurerm_storage_container" "deployments" {
  # checkov:skip=CKV2_AZURE_21: blob read logging (storage insights) goes to a destination and a cost the user chooses
  count                 = local.flex ? 1 : 0
  name                  = "app-package"
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

# The model, the batch inputs and outputs, and the events that could not be delivered.
resource "azurerm_storage_account" "data" {
  # checkov:skip=CKV_AZURE_43: the name is a lowercase alphanumeric prefix plus 6 hex digits of a hash, at most 24 characters; checkov cannot evaluate the interpolation
  # checkov:skip=CKV_AZURE_59: the app reaches storage over public endpoints (no VNet is created here); access needs Entra ID (the app) or the account key (Terraform's upload), anonymous access is off
  # checkov:skip=CKV2_AZURE_33: private endpoints need a VNet, private DNS zones and VNet integration of the app, none of which this configuration creates
  # checkov:skip=CKV2_AZURE_1: encrypted at rest with Microsoft-managed keys; a customer-managed key needs a Key Vault the user owns
  # checkov:skip=CKV_AZURE_33: storage diagnostic logging goes to a destination and a cost the user chooses; the app's own logs go to Application Insights
  # checkov:skip=CKV2_AZURE_40: Terraform creates the containers and uploads the model with the deployer's key; the app itself never holds a key (managed identity, RBAC)
  name                            = "${local.compact_name}data${local.suffix}"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  account_tier                    = "Standard"
  account_replication_type        = var.data_replication_type
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = true # see CKV2_AZURE_40 above
  tags                            = var.tags

  sas_policy {
    expiration_period = "01.00:00:00"
  }

  blob_properties {
    # an overwritten or deleted input can be brought back for a week
    versioning_enabled = true
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_container" "models" {
  # checkov:skip=CKV2_AZURE_21: blob read logging (storage insights) goes to a destination and a cost the user chooses
  name                  = local.models_container
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "inputs" {
  # checkov:skip=CKV2_AZURE_21: blob read logging (storage insights) goes to a destination and a cost the user chooses
  name                  = var.input_container
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "outputs" {
  # checkov:skip=CKV2_AZURE_21: blob read logging (storage insights) goes to a destination and a cost the user chooses
  name                  = var.output_container
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"

  lifecycle {
    precondition {
      condition     = var.output_container != var.input_container
      error_message = "output_container must differ from input_container (${var.input_container}): the outputs' own events would reach the batch function."
    }
  }
}

resource "azurerm_storage_container" "dead_letters" {
  # checkov:skip=CKV2_AZURE_21: blob read logging (storage insights) goes to a destination and a cost the user chooses
  name                  = "batch-dead-letters"
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_blob" "model" {
  name                   = local.model_blob
  storage_account_name   = azurerm_storage_account.data.name
  storage_container_name = azurerm_storage_container.models.name
  type                   = "Block"
  source                 = var.model_file
  content_md5            = filemd5(var.model_file) # a new file is uploaded again
}

# --- the function app -------------------------------------------------------------------------

resource "azurerm_service_plan" "this" {
  # checkov:skip=CKV_AZURE_212: Flex Consumption (FC1) scales from zero, with always_ready_http instances kept warm if asked for; Elastic Premium keeps one instance always ready by itself
  # checkov:skip=CKV_AZURE_225: zone redundancy needs at least two always-ready instances (Flex) or three (Elastic Premium) and multiplies the minimum cost; a prediction endpoint that scales from zero has none
  name                = "${var.name}-plan"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  os_type             = "Linux"
  sku_name            = var.sku_name
  tags                = var.tags
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-logs"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_application_insights" "this" {
  name                = "${var.name}-insights"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  workspace_id        = azurerm_log_analytics_workspace.this.id
  application_type    = "other"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}


# The app's identity, made before the app so that its roles exist when the app first starts: the
# host reads its package and its state with it, core reads the model and the batch blobs with it.
resource "azurerm_user_assigned_identity" "app" {
  name                = "${var.name}-app"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  tags                = var.tags
}

# Flex Consumption (the default): the package comes from the deployment container, read with the
# app's identity.
resource "azurerm_function_app_flex_consumption" "this" {
  # checkov:skip=CKV_AZURE_221: the app is the public HTTPS prediction endpoint; function keys (auth_level) guard it
  count               = local.flex ? 1 : 0
  name                = "${var.name}-${local.suffix}"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  service_plan_id     = azurerm_service_plan.this.id

  storage_container_type            = "blobContainer"
  storage_container_endpoint        = "${azurerm_storage_account.host.primary_blob_endpoint}${azurerm_storage_container.deployments[0].name}"
  storage_authentication_type       = "UserAssignedIdentity"
  storage_user_assigned_identity_id = azurerm_user_assigned_identity.app.id

  runtime_name           = "python"
  runtime_version        = var.python_version
  instance_memory_in_mb  = var.instance_memory_in_mb
  maximum_instance_count = var.maximum_instance_count

  # instances of the HTTP functions kept started: no cold start for the first requests
  always_ready {
    name           = "http"
    instance_count = var.always_ready_http
  }

  https_only   = true
  app_settings = local.app_settings
  tags         = var.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }

  site_config {
    minimum_tls_version                    = "1.2"
    http2_enabled                          = true
    application_insights_connection_string = azurerm_application_insights.this.connection_string
  }

  lifecycle {
    precondition {
      condition     = var.always_ready_http <= var.maximum_instance_count
      error_message = "always_ready_http (${var.always_ready_http}) must not exceed maximum_instance_count (${var.maximum_instance_count})."
    }
  }

  depends_on = [azurerm_role_assignment.host_storage]
}

# The deploy of the package: azurerm's zip_deploy_file does not reach Flex Consumption's deployment
# (hashicorp/terraform-provider-azurerm#29630), so the Azure CLI's one-deploy does it, with a
# remote build unless the bundle carries its dependencies (remote_build = false). Needs `az login`.
resource "terraform_data" "deploy" {
  count            = local.flex ? 1 : 0
  triggers_replace = [azurerm_function_app_flex_consumption.this[0].id, filesha256(module.bundle.path)]

  provisioner "local-exec" {
    command = join(" ", [
      "az functionapp deployment source config-zip",
      "--resource-group ${azurerm_resource_group.this.name}",
      "--name ${azurerm_function_app_flex_consumption.this[0].name}",
      "--src ${jsonencode(abspath(module.bundle.path))}",
      "--build-remote ${var.remote_build}",
    ])
  }
}

# Elastic Premium (sku_name EP1-EP3): always-ready instances and VNet features at a monthly price.
resource "azurerm_linux_function_app" "this" {
  # checkov:skip=CKV_AZURE_221: the app is the public HTTPS prediction endpoint; function keys (auth_level) guard it
  count               = local.flex ? 0 : 1
  name                = "${var.name}-${local.suffix}"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  service_plan_id     = azurerm_service_plan.this.id

  # Elastic Premium's content share works with the account key only
  storage_account_name       = azurerm_storage_account.host.name
  storage_account_access_key = azurerm_storage_account.host.primary_access_key

  functions_extension_version              = "~4"
  https_only                               = true
  builtin_logging_enabled                  = false
  ftp_publish_basic_authentication_enabled = false
  zip_deploy_file                          = module.bundle.path
  app_settings                             = local.app_settings
  tags                                     = var.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }

  site_config {
    minimum_tls_version                    = "1.2"
    ftps_state                             = "Disabled"
    http2_enabled                          = true
    application_insights_connection_string = azurerm_application_insights.this.connection_string

    application_stack {
      python_version = var.python_version
    }
  }
}

# A staging slot of the Elastic Premium app (staging_slot = true; Flex Consumption has no slots):
# the same identity and settings as production, with staging_app_settings over them, at
# https://<app>-staging.azurewebsites.net. Its package is yours to deploy (`az functionapp
# deployment source config-zip --slot staging`: azurerm deploys no zip into a slot). Try it there,
# then swap it into production (`az functionapp deployment slot swap --slot staging`), which warms
# the new instances before any request reaches them; swapping again goes back to the previous one.
# A slot receives no batch events: the Event Grid subscription (events.tf) names the production app.
resource "azurerm_linux_function_app_slot" "staging" {
  # checkov:skip=CKV_AZURE_221: the staging slot is reached over public HTTPS like the app it stands in for; function keys (auth_level) guard it
  count           = !local.flex && var.staging_slot ? 1 : 0
  name            = "staging"
  function_app_id = azurerm_linux_function_app.this[0].id

  # Elastic Premium's content share works with the account key only
  storage_account_name       = azurerm_storage_account.host.name
  storage_account_access_key = azurerm_storage_account.host.primary_access_key

  functions_extension_version              = "~4"
  https_only                               = true
  builtin_logging_enabled                  = false
  ftp_publish_basic_authentication_enabled = false
  # a task hub of its own: a slot sharing production's would run production's orchestrations
  app_settings = merge(local.app_settings, var.batch_fanout_durable ? {
    AzureFunctionsJobHost__extensions__durableTask__hubName = "${local.task_hub}staging"
  } : {}, var.staging_app_settings)
  tags = var.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }

  site_config {
    minimum_tls_version                    = "1.2"
    ftps_state                             = "Disabled"
    http2_enabled                          = true
    application_insights_connection_string = azurerm_application_insights.this.connection_string

    application_stack {
      python_version = var.python_version
    }
  }
}

# On Flex Consumption a staging slot is refused, naming why and what to do, rather than silently
# not made (Terraform 1.5 cannot compare two variables in a validation).
resource "terraform_data" "no_slot_on_flex" {
  count = local.flex && var.staging_slot ? 1 : 0

  lifecycle {
    precondition {
      condition     = !(local.flex && var.staging_slot)
      error_message = "staging_slot = true with sku_name = FC1: Flex Consumption has no deployment slots. Use Elastic Premium (EP1-EP3) for a slot, or, on Flex, a second app behind Front Door or API Management with weighted origins, or the in-function canary (CANDIDATE_MODEL_URI, CANDIDATE_MODE=canary); see infra/README.md."
    }
  }
}

locals {
  # the one app of the chosen plan
  app_id       = one(concat(azurerm_function_app_flex_consumption.this[*].id, azurerm_linux_function_app.this[*].id))
  app_name     = one(concat(azurerm_function_app_flex_consumption.this[*].name, azurerm_linux_function_app.this[*].name))
  app_hostname = one(concat(azurerm_function_app_flex_consumption.this[*].default_hostname, azurerm_linux_function_app.this[*].default_hostname))
}

# --- the app's identity: its own storage, the model blob, the inputs, the outputs ---------------

locals {
  container_scope = "${azurerm_storage_account.data.id}/blobServices/default/containers"
}

# Flex: the host's state and the deployment package, on the host's own account only. Storage Blob
# Data Owner is the least the Functions host accepts for an identity-based AzureWebJobsStorage;
# the account holds nothing but the host's state and the package.
resource "azurerm_role_assignment" "host_storage" {
  count                = local.flex ? 1 : 0
  scope                = azurerm_storage_account.host.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  description          = "the Functions host's own state and the deployment package of serverless-ml"
}

resource "azurerm_role_assignment" "model_reader" {
  scope                = "${local.container_scope}/${azurerm_storage_container.models.name}"
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  description          = "serverless-ml reads its model blob and nothing else of the container"
  condition_version    = "2.0"
  condition            = <<-EOT
    (
      (
        !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT SubOperationMatches{'Blob.List'})
      )
      OR
      (
        @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringEquals '${local.model_blob}'
      )
    )
  EOT
}

resource "azurerm_role_assignment" "input_reader" {
  scope                = "${local.container_scope}/${azurerm_storage_container.inputs.name}"
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  description          = "serverless-ml batch reads its inputs"
}

resource "azurerm_role_assignment" "output_writer" {
  scope                = "${local.container_scope}/${azurerm_storage_container.outputs.name}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  description          = "serverless-ml batch writes (and rewrites) its outputs"
}

# Durable Functions' task hub on the host's account through the identity (Flex): its work items and
# history are queues and tables beside the blobs Storage Blob Data Owner already covers. Elastic
# Premium reaches that account with its key.
resource "azurerm_role_assignment" "task_hub" {
  for_each             = local.flex && var.batch_fanout_durable ? toset(["Storage Queue Data Contributor", "Storage Table Data Contributor"]) : toset([])
  scope                = azurerm_storage_account.host.id
  role_definition_name = each.value
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  description          = "the Durable Functions task hub of serverless-ml's batch fan-out"
}

# The parts of a fanned-out run that never merged (an orchestration failed for good, or a part
# finished after the cleanup) are removed after a week; a merged run removes its own at once.
resource "azurerm_storage_management_policy" "parts" {
  storage_account_id = azurerm_storage_account.data.id

  rule {
    name    = "fanout-parts"
    enabled = true
    filters {
      prefix_match = ["${var.output_container}/${var.output_prefix}_parts/"]
      blob_types   = ["blockBlob"]
    }
    actions {
      base_blob {
        delete_after_days_since_modification_greater_than = 7
      }
    }
  }
}

# The blob trigger's extension keeps its poison queue in the trigger's account; only needed when
# the subscription delivers to batch_blob.
resource "azurerm_role_assignment" "blob_trigger_queues" {
  count                = var.batch_function == "batch_blob" ? 1 : 0
  scope                = azurerm_storage_account.data.id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  description          = "the blob trigger's poison queue"
}
