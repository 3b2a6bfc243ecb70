# The bundle a configuration deploys, checked against what the model needs before anything is
# created. Terraform cannot look inside a zip, so it reads what `serverless-ml package` writes
# beside it: <bundle>.bundle.json, with the zip's SHA-256 and the extras the bundle carries.
#
# A model that takes its rows as a DataFrame (model_needs_pandas = true) deployed from a bundle
# without pandas would answer 503 to every request after a deploy that looked fine; the plan
# refuses it instead, saying how to build the right bundle. Used by infra/aws, infra/azure and
# infra/gcp; needs no provider (the check is an output's precondition).

terraform {
  required_version = ">= 1.5"
}

variable "bundle_path" {
  description = "The zip written by `serverless-ml package --provider <provider>`."
  type        = string
}

variable "provider_name" {
  description = "aws, azure or gcp: the --provider the bundle is built with, for the messages."
  type        = string
}

variable "model_needs_pandas" {
  description = "true: the model takes its rows as a DataFrame, so the bundle must carry pandas."
  type        = bool
}

locals {
  description_path = "${trimsuffix(var.bundle_path, ".zip")}.bundle.json"
  description      = fileexists(local.description_path) ? jsondecode(file(local.description_path)) : null
  # the description is of this very zip, not of one built before it
  described = local.description != null && try(local.description.sha256 == filesha256(var.bundle_path), false)
  extras    = local.described ? try(tolist(local.description.extras), []) : []
  build     = "`serverless-ml package --provider ${var.provider_name} --extra pandas` (or with --model MODEL_FILE, which adds pandas for such a model)"

  pandas_problem = (
    !var.model_needs_pandas || contains(local.extras, "pandas") ? "" :
    local.description == null ? "nothing says that ${var.bundle_path} carries pandas: ${local.description_path}, which serverless-ml package writes beside the zip, is missing" :
    !local.described ? "${local.description_path} describes another zip than ${var.bundle_path} (the zip was replaced after it was built), so nothing says that it carries pandas" :
    "${var.bundle_path} was built without pandas"
  )
}

output "path" {
  description = "The bundle's path, once checked: the configurations deploy this."
  value       = var.bundle_path

  precondition {
    condition     = local.pandas_problem == ""
    error_message = "model_needs_pandas = true (the model takes its rows as a DataFrame), but ${local.pandas_problem}; without pandas such a model answers 503 to every request. Build the bundle with ${local.build} and plan again."
  }
}

output "extras" {
  description = "The extras the bundle's description lists (empty without a description of this zip)."
  value       = local.extras
}
