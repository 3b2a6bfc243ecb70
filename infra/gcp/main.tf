data "google_project" "this" {}

# The bundle checked against the model's needs (pandas) before anything is deployed from it.
module "bundle" {
  source             = "../modules/bundle"
  bundle_path        = local.bundle_path
  provider_name      = "gcp"
  model_needs_pandas = var.model_needs_pandas
}

data "google_storage_project_service_account" "this" {
  depends_on = [google_project_service.this]
}

locals {
  bundle_path     = coalesce(var.bundle_path, "${path.module}/../../build/gcp/serverless-ml-gcp.zip")
  bucket_location = upper(coalesce(var.bucket_location, var.region))

  model_parts  = regex("^gs://([^/]+)/(.+)$", var.model_uri)
  model_bucket = local.model_parts[0]
  model_key    = local.model_parts[1]

  output_uri = "gs://${google_storage_bucket.outputs.name}/${var.output_prefix}"
  input_uri  = "gs://${google_storage_bucket.inputs.name}/"

  settings = {
    MODEL_URI               = var.model_uri
    MODEL_SHA256            = var.model_sha256
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
    GOOGLE_CLOUD_PROJECT    = var.project_id
  }
  function_environment = { for key, value in local.settings : key => value if value != "" }
  batch_environment = merge(local.function_environment, {
    BATCH_OUTPUT_URI = local.output_uri
    BATCH_INPUT_URI  = local.input_uri
    }, var.batch_fanout ? {
    BATCH_FANOUT_PART_BYTES = tostring(var.batch_fanout_part_bytes)
  } : {})

  # The steps of the fan-out workflow, each an HTTP function of gcp_function/main.py (entry point).
  fanout_steps = var.batch_fanout ? { plan = "fanout_plan", part = "fanout_part", merge = "fanout_merge" } : {}

  services = concat(var.batch_fanout ? ["workflows.googleapis.com", "workflowexecutions.googleapis.com"] : [], [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "this" {
  for_each           = toset(local.services)
  service            = each.value
  disable_on_destroy = false
}

# --- buckets ----------------------------------------------------------------------------------
# A Cloud Storage trigger cannot filter by prefix: it fires for every object of its bucket. So the
# inputs and the outputs live in two buckets and the trigger watches the input bucket only; an
# output can never fire it.

resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62: usage logs need a second bucket and cost the user chooses; Cloud Audit Logs (data access) are the usual way to audit object reads
  name                        = "${var.project_id}-${var.name}-source"
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 3
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket" "inputs" {
  # checkov:skip=CKV_GCP_62: usage logs need a second bucket and cost the user chooses; Cloud Audit Logs (data access) are the usual way to audit object reads
  name                        = "${var.project_id}-${var.name}-input"
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket" "outputs" {
  # checkov:skip=CKV_GCP_62: usage logs need a second bucket and cost the user chooses; Cloud Audit Logs (data access) are the usual way to audit object reads
  name                        = "${var.project_id}-${var.name}-output"
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }

  # A fanned-out run that never merged (its workflow failed for good) leaves its parts, plan and
  # results under _parts/; a merged run removes its own at once.
  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["${var.output_prefix}_parts/"]
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "bundle" {
  # the content's hash in the name: a new zip makes Terraform rebuild and redeploy the functions
  name   = "serverless-ml-gcp-${filemd5(module.bundle.path)}.zip"
  bucket = google_storage_bucket.source.name
  source = module.bundle.path
}

# --- identities -------------------------------------------------------------------------------

resource "google_service_account" "functions" {
  account_id   = "${var.name}-fn"
  display_name = "serverless-ml functions (runtime)"
}

resource "google_service_account" "trigger" {
  account_id   = "${var.name}-trigger"
  display_name = "serverless-ml storage trigger (Eventarc)"
}

# The model object and its optional manifest, nothing else of its bucket (the condition needs
# uniform bucket-level access on that bucket).
resource "google_storage_bucket_iam_member" "model_reader" {
  bucket = local.model_bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.functions.member

  condition {
    title      = "serverless-ml-model-only"
    expression = "resource.name == \"projects/_/buckets/${local.model_bucket}/objects/${local.model_key}\" || resource.name == \"projects/_/buckets/${local.model_bucket}/objects/${local.model_key}.manifest.json\""
  }
}

resource "google_storage_bucket_iam_member" "input_reader" {
  bucket = google_storage_bucket.inputs.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.functions.member
}

# objectUser: create and replace (a repeated event rewrites the same outputs), in the output
# bucket only.
resource "google_storage_bucket_iam_member" "output_writer" {
  bucket = google_storage_bucket.outputs.name
  role   = "roles/storage.objectUser"
  member = google_service_account.functions.member
}

# Cloud Storage publishes its events through Pub/Sub as the project's storage service agent.
resource "google_project_iam_member" "storage_agent_publishes" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = data.google_storage_project_service_account.this.member
}

resource "google_project_iam_member" "trigger_receives_events" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.trigger.member
}

resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_batch" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.batch.name
  role     = "roles/run.invoker"
  member   = google_service_account.trigger.member
}

resource "google_cloud_run_v2_service_iam_member" "public_predict" {
  count    = var.allow_unauthenticated ? 1 : 0
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.predict.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- functions --------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "predict" {
  # checkov:skip=CKV_GCP_124: this is the HTTPS prediction endpoint its clients call from anywhere; roles/run.invoker guards it (allUsers only with allow_unauthenticated)
  name        = "${var.name}-predict"
  location    = var.region
  description = "serverless-ml: POST /predict, GET /health, GET /model"
  labels      = var.labels

  build_config {
    runtime     = var.runtime
    entry_point = "predict"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.bundle.name
      }
    }
  }

  service_config {
    available_memory      = var.predict_memory
    timeout_seconds       = var.predict_timeout_seconds
    min_instance_count    = var.predict_min_instances
    max_instance_count    = var.predict_max_instances
    service_account_email = google_service_account.functions.email
    environment_variables = local.function_environment
    ingress_settings      = "ALLOW_ALL"
    # false: a deploy makes a revision that takes no traffic until the split of the Cloud Run
    # service behind the function says so (infra/README.md, "Rollouts")
    all_traffic_on_latest_revision   = var.predict_all_traffic_on_latest_revision
    max_instance_request_concurrency = 1
  }

  depends_on = [google_project_service.this, google_storage_bucket_iam_member.model_reader]
}

resource "google_cloudfunctions2_function" "batch" {
  name        = "${var.name}-batch"
  location    = var.region
  description = "serverless-ml: batch prediction of objects finalized in the input bucket"
  labels      = var.labels

  build_config {
    runtime     = var.runtime
    entry_point = "batch"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.bundle.name
      }
    }
  }

  service_config {
    available_memory      = var.batch_memory
    timeout_seconds       = var.batch_timeout_seconds
    max_instance_count    = var.batch_max_instances
    service_account_email = google_service_account.functions.email
    environment_variables = merge(local.batch_environment, var.batch_fanout ? {
      BATCH_FANOUT_WORKFLOW = google_workflows_workflow.fanout[0].id
    } : {})
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
  }

  event_trigger {
    # a storage trigger must run where its bucket is
    trigger_region        = lower(google_storage_bucket.inputs.location)
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email

    event_filters {
      attribute = "bucket"
      value     = google_storage_bucket.inputs.name
    }
  }

  depends_on = [
    google_project_service.this,
    google_project_iam_member.storage_agent_publishes,
    google_project_iam_member.trigger_receives_events,
    google_storage_bucket_iam_member.model_reader,
    google_storage_bucket_iam_member.input_reader,
    google_storage_bucket_iam_member.output_writer,
  ]
}

# --- fan-out: Cloud Workflows over the steps of core/batch/fanout.py (batch_fanout = true) -------
# The batch function hands a file larger than batch_fanout_part_bytes to the workflow
# (workflow.yaml): plan -> every part, batch_fanout_concurrency at a time -> merge, each an HTTP
# function below, called with an OIDC token of the workflow's own service account.

resource "google_service_account" "workflow" {
  count        = var.batch_fanout ? 1 : 0
  account_id   = "${var.name}-fanout"
  display_name = "serverless-ml batch fan-out workflow"
}

resource "google_cloudfunctions2_function" "fanout" {
  # checkov:skip=CKV_GCP_124: Workflows calls the step over its URL from outside any VPC; roles/run.invoker for the workflow's service account alone guards it
  for_each    = local.fanout_steps
  name        = "${var.name}-fanout-${each.key}"
  location    = var.region
  description = "serverless-ml: the ${each.key} step of the batch fan-out workflow"
  labels      = var.labels

  build_config {
    runtime     = var.runtime
    entry_point = each.value
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.bundle.name
      }
    }
  }

  service_config {
    available_memory = var.batch_memory
    # the longest a workflow waits for one HTTP call: a part must be done within it
    timeout_seconds                  = 1800
    max_instance_count               = var.batch_max_instances
    service_account_email            = google_service_account.functions.email
    environment_variables            = local.batch_environment
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    max_instance_request_concurrency = 1
  }

  depends_on = [
    google_project_service.this,
    google_storage_bucket_iam_member.model_reader,
    google_storage_bucket_iam_member.input_reader,
    google_storage_bucket_iam_member.output_writer,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "workflow_invokes_steps" {
  for_each = local.fanout_steps
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fanout[each.key].name
  role     = "roles/run.invoker"
  member   = google_service_account.workflow[0].member
}

resource "google_workflows_workflow" "fanout" {
  count           = var.batch_fanout ? 1 : 0
  name            = "${var.name}-fanout"
  region          = var.region
  description     = "serverless-ml: plan, predict the parts in parallel, merge (workflow.yaml)"
  service_account = google_service_account.workflow[0].id
  call_log_level  = "LOG_ERRORS_ONLY"
  labels          = var.labels
  # concurrency_limit takes a number, not an expression: the one placeholder of workflow.yaml
  source_contents = replace(file("${path.module}/workflow.yaml"), "__CONCURRENCY_LIMIT__", tostring(var.batch_fanout_concurrency))
  user_env_vars = {
    FANOUT_PLAN_URL  = google_cloudfunctions2_function.fanout["plan"].url
    FANOUT_PART_URL  = google_cloudfunctions2_function.fanout["part"].url
    FANOUT_MERGE_URL = google_cloudfunctions2_function.fanout["merge"].url
  }
  deletion_protection = false

  depends_on = [google_project_service.this, google_cloud_run_v2_service_iam_member.workflow_invokes_steps]
}

# The batch function starts executions of this workflow only.
resource "google_project_iam_member" "batch_starts_fanout" {
  count   = var.batch_fanout ? 1 : 0
  project = var.project_id
  role    = "roles/workflows.invoker"
  member  = google_service_account.functions.member

  condition {
    title      = "serverless-ml-fanout-workflow-only"
    expression = "resource.name == \"${google_workflows_workflow.fanout[0].id}\" || resource.name.startsWith(\"${google_workflows_workflow.fanout[0].id}/\")"
  }
}
