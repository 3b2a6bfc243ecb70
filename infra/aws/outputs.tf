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

output "traffic_shifting" {
  description = "With deployment_config or stable_version: the alias the HTTP API invokes and the versions it is on and the apply published; with deployment_config also the CodeDeploy application, deployment group, alarms, the AppSpec and the command that starts a deployment to the version published last (what the apply runs unless start_deployment = false). Null when off."
  value = local.shifting ? {
    alias            = local.predict_aliases[0].name
    current_version  = local.predict_aliases[0].function_version
    target_version   = aws_lambda_function.predict.version
    application      = local.codedeploy ? aws_codedeploy_app.predict[0].name : null
    deployment_group = local.codedeploy ? aws_codedeploy_deployment_group.predict[0].deployment_group_name : null
    alarms           = [for alarm in aws_cloudwatch_metric_alarm.predict : alarm.alarm_name]
    appspec          = local.appspec
    command          = local.codedeploy ? "aws deploy create-deployment --region ${data.aws_region.current.name} --application-name ${aws_codedeploy_app.predict[0].name} --deployment-group-name ${aws_codedeploy_deployment_group.predict[0].deployment_group_name} --revision '${local.codedeploy_revision}'" : null
  } : null
}

output "fan_out_state_machine_arn" {
  description = "With fan_out: the Step Functions state machine the batch function hands files larger than one part to (BATCH_FANOUT_STATE_MACHINE_ARN); null without."
  value       = var.fan_out ? aws_sfn_state_machine.fan_out[0].arn : null
}
