output "endpoint_url" {
  description = "Base URL of the app: POST <url>/predict, GET <url>/health, GET <url>/model (host.json's route prefix is empty)."
  value       = "https://${local.app_hostname}"
}

output "predict_url" {
  description = "The prediction route; with auth_level FUNCTION add ?code=<key> (az functionapp keys list)."
  value       = "https://${local.app_hostname}/predict"
}

output "function_app_name" {
  description = "Name of the function app (for az functionapp commands)."
  value       = local.app_name
}

output "resource_group_name" {
  description = "Resource group of everything here."
  value       = azurerm_resource_group.this.name
}

output "data_storage_account" {
  description = "Account of the model, the batch inputs and the outputs."
  value       = azurerm_storage_account.data.name
}

output "model_uri" {
  description = "MODEL_URI of the app."
  value       = local.settings.MODEL_URI
}

output "batch_input_uri" {
  description = "Upload .csv/.jsonl(.gz) blobs here to have them predicted."
  value       = "az://${azurerm_storage_container.inputs.name}/"
}

output "batch_output_uri" {
  description = "Where the batch outputs land (BATCH_OUTPUT_URI)."
  value       = local.output_uri
}

output "staging_url" {
  description = "With staging_slot (Elastic Premium): base URL of the staging slot; null otherwise."
  value       = length(azurerm_linux_function_app_slot.staging) > 0 ? "https://${azurerm_linux_function_app_slot.staging[0].default_hostname}" : null
}
