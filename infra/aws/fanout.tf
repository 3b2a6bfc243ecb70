# The batch fan-out on Step Functions (fan_out = true; aws_lambda/README.md, "Fan-out"): a batch
# input larger than one part (fan_out_part_bytes) is handed by the batch function to this state
# machine instead of being predicted in one invocation. Its definition is fanout.asl.json.tftpl,
# the file serverless.yml's fanOut=true deploys too (serverless_ml/bundles/fan_out.js), so the two
# deployments cannot drift. Nothing here exists with fan_out = false (the default).

locals {
  fan_out_steps = var.fan_out ? toset(["plan", "part", "merge"]) : toset([])
  # by name, not by reference: the state machine's role stands apart from the state machine
  fan_out_name           = "${var.name}-batch-fanout"
  fan_out_arn            = "arn:${data.aws_partition.current.partition}:states:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:stateMachine:${local.fan_out_name}"
  fan_out_executions_arn = "arn:${data.aws_partition.current.partition}:states:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:execution:${local.fan_out_name}/*"
  # what batch and the plan step cut by: the trigger and the plan agree on what one part is
  fan_out_settings = var.fan_out ? { BATCH_FANOUT_PART_BYTES = tostring(var.fan_out_part_bytes) } : {}
  fan_out_step_settings = {
    plan  = { memory = 1024, timeout = 900 }
    part  = { memory = var.fan_out_part_memory_mb, timeout = var.fan_out_part_timeout_seconds }
    merge = { memory = 1024, timeout = 900 }
  }
}

resource "aws_lambda_function" "fan_out" {
  # checkov:skip=CKV_AWS_117: no VPC needed: the steps reach only S3 and CloudWatch, through AWS's public endpoints with IAM; a VPC would add NAT or endpoints and slow cold starts
  # checkov:skip=CKV_AWS_272: the zip is built locally by `serverless-ml package` and uploaded by this config; code signing needs an AWS Signer profile of the user's own
  # checkov:skip=CKV_AWS_173: the environment holds no secret (a model location, a digest, limits); Lambda encrypts it at rest with an AWS managed key
  # checkov:skip=CKV_AWS_115: the Distributed Map's fan_out_max_concurrency bounds the parts at once; a reserved concurrency would take from the account's shared pool
  # checkov:skip=CKV_AWS_116: the state machine invokes synchronously and keeps every failure in its history and retries; a dead-letter queue only applies to asynchronous invocations
  for_each         = local.fan_out_steps
  function_name    = "${var.name}-fanout-${each.key}"
  description      = "serverless-ml batch fan-out: the ${each.key} step of ${local.fan_out_name}"
  role             = aws_iam_role.fan_out_steps[0].arn
  s3_bucket        = aws_s3_object.bundle.bucket
  s3_key           = aws_s3_object.bundle.key
  source_code_hash = filebase64sha256(module.bundle.path)
  handler          = "aws_lambda.handler.fanout_${each.key}"
  runtime          = var.runtime
  architectures    = [var.architecture]
  memory_size      = local.fan_out_step_settings[each.key].memory
  timeout          = local.fan_out_step_settings[each.key].timeout

  ephemeral_storage {
    size = var.batch_ephemeral_storage_mb
  }

  environment {
    variables = merge(local.function_environment, local.fan_out_settings,
    { BATCH_OUTPUT_URI = local.output_uri, BATCH_INPUT_URI = local.input_uri })
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.fan_out[each.key].name
  }

  tracing_config {
    mode = "PassThrough"
  }

  depends_on = [aws_iam_role_policy.fan_out_steps]
}

resource "aws_cloudwatch_log_group" "fan_out" {
  # checkov:skip=CKV_AWS_158: the lines carry no rows and no secrets (core never logs them); CloudWatch encrypts them at rest with a service key
  for_each          = local.fan_out_steps
  name              = "/aws/lambda/${var.name}-fanout-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "fan_out_state_machine" {
  # checkov:skip=CKV_AWS_158: the state machine logs URIs, versions and row counts, never rows or secrets; CloudWatch encrypts them at rest with a service key
  count             = var.fan_out ? 1 : 0
  name              = "/aws/vendedlogs/states/${local.fan_out_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_sfn_state_machine" "fan_out" {
  count    = var.fan_out ? 1 : 0
  name     = local.fan_out_name
  type     = "STANDARD"
  role_arn = aws_iam_role.fan_out_state_machine[0].arn
  definition = templatefile("${path.module}/fanout.asl.json.tftpl", {
    plan_function_arn  = aws_lambda_function.fan_out["plan"].arn
    part_function_arn  = aws_lambda_function.fan_out["part"].arn
    merge_function_arn = aws_lambda_function.fan_out["merge"].arn
    max_concurrency    = var.fan_out_max_concurrency
  })

  logging_configuration {
    log_destination = "${aws_cloudwatch_log_group.fan_out_state_machine[0].arn}:*"
    # the states carry URIs, versions and row counts, never rows: a failed state's input says which part
    include_execution_data = true
    level                  = "ERROR"
  }

  tracing_configuration {
    enabled = true
  }

  depends_on = [aws_iam_role_policy.fan_out_state_machine]
}

# --- IAM ------------------------------------------------------------------------------------------

resource "aws_iam_role" "fan_out_state_machine" {
  count              = var.fan_out ? 1 : 0
  name               = "${var.name}-fanout-state-machine"
  assume_role_policy = data.aws_iam_policy_document.assume["states"].json
}

resource "aws_iam_role" "fan_out_steps" {
  count              = var.fan_out ? 1 : 0
  name               = "${var.name}-fanout-steps"
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
}

data "aws_iam_policy_document" "fan_out_state_machine" {
  statement {
    sid       = "InvokeTheThreeSteps"
    actions   = ["lambda:InvokeFunction"]
    resources = [for step in aws_lambda_function.fan_out : step.arn]
  }
  statement {
    # the Distributed Map's S3 ItemReader: the parts lists the plan step writes
    sid       = "ReadThePartsLists"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${var.output_prefix}_parts/*"]
  }
  statement {
    # a Distributed Map runs its items as child executions of this state machine
    sid       = "RunItsOwnChildExecutions"
    actions   = ["states:StartExecution"]
    resources = [local.fan_out_arn]
  }
  statement {
    sid       = "WatchItsOwnChildExecutions"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = [local.fan_out_executions_arn]
  }
  statement {
    # X-Ray and CloudWatch Logs' delivery APIs take no resource but "*"
    sid = "TracesAndLogDelivery"
    actions = [
      "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "fan_out_steps" {
  # a part reads and writes what a batch run does; the parts lists and parts' outputs are under
  # the output prefix too
  source_policy_documents = [data.aws_iam_policy_document.batch_data.json]
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.fan_out : "${group.arn}:*"]
  }
}

resource "aws_iam_role_policy" "fan_out_state_machine" {
  count  = var.fan_out ? 1 : 0
  name   = "serverless-ml-batch-fanout"
  role   = aws_iam_role.fan_out_state_machine[0].id
  policy = data.aws_iam_policy_document.fan_out_state_machine.json
}

resource "aws_iam_role_policy" "fan_out_steps" {
  count  = var.fan_out ? 1 : 0
  name   = "serverless-ml-batch-fanout-steps"
  role   = aws_iam_role.fan_out_steps[0].id
  policy = data.aws_iam_policy_document.fan_out_steps.json
}
