output "endpoint_url" {
  description = "Base URL of the HTTP API: POST <url>/predict, GET <url>/health, GET <url>/model."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "predict_url" {
  description = "The prediction route."
  value       = "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/predict"
}

output "data_bucket" {
  description = "Bucket of the batch inputs and outputs."
  value       = aws_s3_bucket.data.bucket
}

output "batch_input_uri" {
  description = "Upload .csv/.jsonl(.gz) files here to have them predicted."
  value       = local.input_uri
}

output "batch_output_uri" {
  description = "Where the batch outputs land (BATCH_OUTPUT_URI)."
  value       = local.output_uri
}

output "batch_dead_letter_queue_url" {
  description = "Events the batch function still failed after its retries."
  value       = aws_sqs_queue.batch_failures.url
}

output "function_names" {
  description = "The two Lambda functions."
  value = {
    predict = aws_lambda_function.predict.function_name
    batch   = aws_lambda_function.batch.function_name
  }
}
