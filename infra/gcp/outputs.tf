output "endpoint_url" {
  description = "Base URL of the predict function: POST <url>/predict, GET <url>/health, GET <url>/model."
  value       = google_cloudfunctions2_function.predict.url
}

output "predict_url" {
  description = "The prediction route (without allow_unauthenticated: send Authorization: Bearer $(gcloud auth print-identity-token))."
  value       = "${trimsuffix(google_cloudfunctions2_function.predict.url, "/")}/predict"
}

output "batch_input_uri" {
  description = "Upload .csv/.jsonl/.json(.gz) objects here to have them predicted."
  value       = local.input_uri
}

output "batch_output_uri" {
  description = "Where the batch outputs land (BATCH_OUTPUT_URI)."
  value       = local.output_uri
}

output "function_names" {
  description = "The two functions."
  value = {
    predict = google_cloudfunctions2_function.predict.name
    batch   = google_cloudfunctions2_function.batch.name
  }
}

output "service_account" {
  description = "The functions' runtime service account."
  value       = google_service_account.functions.email
}

output "predict_run_service" {
  description = "The Cloud Run service behind the predict function, whose revisions and traffic split `gcloud run services update-traffic` and `gcloud run revisions list --service` manage."
  value       = google_cloudfunctions2_function.predict.service_config[0].service
}

output "fanout_workflow" {
  description = "The batch fan-out workflow (BATCH_FANOUT_WORKFLOW; null without batch_fanout): `gcloud workflows executions list` takes it."
  value       = var.batch_fanout ? google_workflows_workflow.fanout[0].id : null
}
