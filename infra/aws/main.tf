data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

# The bundle checked against the model's needs (pandas) before anything is deployed from it.
module "bundle" {
  source             = "../modules/bundle"
  bundle_path        = local.bundle_path
  provider_name      = "aws"
  model_needs_pandas = var.model_needs_pandas
}

locals {
  bundle_path = coalesce(var.bundle_path, "${path.module}/../../build/aws/serverless-ml-aws.zip")
  # What `serverless-ml package` wrote beside this very zip (see ../modules/bundle): the Python and
  # the architecture its wheels and bytecode are for. A zip that nothing describes is not checked.
  bundle_description_path = "${trimsuffix(module.bundle.path, ".zip")}.bundle.json"
  bundle_description      = fileexists(local.bundle_description_path) ? jsondecode(file(local.bundle_description_path)) : null
  bundle_described        = local.bundle_description != null && try(local.bundle_description.sha256 == filesha256(module.bundle.path), false)
  bundle_python           = local.bundle_described ? try(local.bundle_description.python_version, null) : null
  bundle_architecture     = local.bundle_described ? try(local.bundle_description.architecture, null) : null

  model_parts  = regex("^s3://([^/]+)/(.+)$", var.model_uri)
  model_bucket = local.model_parts[0]
  model_key    = local.model_parts[1]
  model_arn    = "arn:${data.aws_partition.current.partition}:s3:::${local.model_bucket}/${local.model_key}"
  # the candidate model predict compares or shares traffic with (core/rollout.py), if any
  candidate_arn = var.candidate_model_uri == "" ? null : "arn:${data.aws_partition.current.partition}:s3:::${trimprefix(var.candidate_model_uri, "s3://")}"
  # what predict alone gets: batch serves the primary only
  candidate_settings = {
    CANDIDATE_MODEL_URI    = var.candidate_model_uri
    CANDIDATE_MODEL_SHA256 = var.candidate_model_sha256
    CANDIDATE_MODE         = var.candidate_model_uri == "" ? "" : var.candidate_mode
    CANDIDATE_PERCENT      = var.candidate_model_uri == "" || var.candidate_mode != "canary" ? "" : tostring(var.candidate_percent)
  }

  output_uri = "s3://${aws_s3_bucket.data.bucket}/${var.output_prefix}"
  input_uri  = "s3://${aws_s3_bucket.data.bucket}/${var.input_prefix}"

  # The suffixes core's batch readers take (core/batch/formats.py), in lower and upper case since
  # S3's filters are case-sensitive and core is not; one notification rule per suffix, all under
  # the input prefix, so objects under the output prefix never invoke the function.
  batch_suffixes = flatten([for suffix in [".csv", ".jsonl", ".json", ".csv.gz", ".jsonl.gz", ".json.gz"] : [suffix, upper(suffix)]])

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
    # the namespace of the functions' own metrics, which the disagreement alarm reads (rollout.tf)
    METRICS_NAMESPACE = var.metrics_namespace
  }
  # An empty value would mean "unset" to core anyway; leaving it out keeps the console readable.
  function_environment = { for key, value in local.settings : key => value if value != "" }
}

# --- functions --------------------------------------------------------------------------------

resource "aws_lambda_function" "predict" {
  # checkov:skip=CKV_AWS_117: no VPC needed: the functions reach only S3 and CloudWatch, through AWS's public endpoints with IAM; a VPC would add NAT or endpoints and slow cold starts
  # checkov:skip=CKV_AWS_272: the zip is built locally by `serverless-ml package` and uploaded by this config; code signing needs an AWS Signer profile of the user's own
  # checkov:skip=CKV_AWS_173: the environment holds no secret (a model location, a digest, limits); Lambda encrypts it at rest with an AWS managed key
  # checkov:skip=CKV_AWS_115: a reserved concurrency is a cap each account sizes for itself; a default here would throttle real traffic or take from the account's shared pool
  # checkov:skip=CKV_AWS_116: the HTTP API invokes synchronously and gets every error back; a dead-letter queue only applies to asynchronous invocations
  function_name    = "${var.name}-predict"
  description      = "serverless-ml: POST /predict, GET /health, GET /model behind the HTTP API"
  role             = aws_iam_role.predict.arn
  s3_bucket        = aws_s3_object.bundle.bucket
  s3_key           = aws_s3_object.bundle.key
  source_code_hash = filebase64sha256(module.bundle.path)
  handler          = "aws_lambda.handler.predict"
  runtime          = var.runtime
  architectures    = [var.architecture]
  memory_size      = var.predict_memory_mb
  timeout          = var.predict_timeout_seconds
  # SnapStart snapshots published versions only, and traffic shifting moves an alias between
  # them (rollout.tf); the alias points at the one published here
  publish = local.publish_predict

  ephemeral_storage {
    size = var.predict_ephemeral_storage_mb
  }

  dynamic "snap_start" {
    for_each = var.snap_start ? ["PublishedVersions"] : []
    content {
      apply_on = snap_start.value
    }
  }

  environment {
    # with SnapStart the snapshot should hold the model: loaded at init, whatever preload_model says
    variables = merge(
      local.function_environment,
      { for key, value in local.candidate_settings : key => value if value != "" },
      var.snap_start ? { PRELOAD_MODEL = "true" } : {},
    )
  }

  logging_config {
    # core writes one JSON object per line itself; Text keeps each line as it is
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.predict.name
  }

  tracing_config {
    mode = "PassThrough"
  }

  lifecycle {
    # NumPy's compiled modules load only under the CPython and on the machine they were built for:
    # a mismatch deploys fine and then fails every cold start
    precondition {
      condition     = local.bundle_python == null ? true : "python${local.bundle_python}" == var.runtime
      error_message = "runtime = ${var.runtime}, but ${module.bundle.path} was built for Python ${coalesce(local.bundle_python, "?")}; its compiled wheels do not load under another Python. Build it with `serverless-ml package --provider aws --python-version ${trimprefix(var.runtime, "python")}` or set runtime = \"python${coalesce(local.bundle_python, "?")}\"."
    }
    precondition {
      condition     = !var.snap_start || var.predict_ephemeral_storage_mb <= 512
      error_message = "snap_start = true with predict_ephemeral_storage_mb = ${var.predict_ephemeral_storage_mb}: SnapStart allows at most 512 MB of /tmp; set predict_ephemeral_storage_mb = 512, or snap_start = false for a model that needs more /tmp."
    }
    precondition {
      condition     = local.bundle_architecture == null ? true : local.bundle_architecture == var.architecture
      error_message = "architecture = ${var.architecture}, but ${module.bundle.path} was built for ${coalesce(local.bundle_architecture, "?")}; its compiled wheels do not load on another machine. Build it with `serverless-ml package --provider aws --arch ${var.architecture}` or set architecture = \"${coalesce(local.bundle_architecture, "?")}\"."
    }
  }

  depends_on = [aws_iam_role_policy.predict]
}

# The version the HTTP API invokes when SnapStart is on: each apply that changes the function
# publishes a new version (and Lambda snapshots it), and the alias follows. With traffic shifting
# the alias `live` (rollout.tf) serves instead, and moves by its own rules.
resource "aws_lambda_alias" "predict" {
  count            = var.snap_start && !local.shifting ? 1 : 0
  name             = "snapstart"
  description      = "The latest published version of predict, started from its SnapStart snapshot"
  function_name    = aws_lambda_function.predict.function_name
  function_version = aws_lambda_function.predict.version
}

resource "aws_lambda_function" "batch" {
  # checkov:skip=CKV_AWS_117: no VPC needed: the functions reach only S3 and CloudWatch, through AWS's public endpoints with IAM; a VPC would add NAT or endpoints and slow cold starts
  # checkov:skip=CKV_AWS_272: the zip is built locally by `serverless-ml package` and uploaded by this config; code signing needs an AWS Signer profile of the user's own
  # checkov:skip=CKV_AWS_173: the environment holds no secret (a model location, a digest, limits); Lambda encrypts it at rest with an AWS managed key
  # checkov:skip=CKV_AWS_115: a reserved concurrency is a cap each account sizes for itself; events that fail for lack of it go to the dead-letter queue after retries
  function_name    = "${var.name}-batch"
  description      = "serverless-ml: batch prediction of objects created under s3://<data bucket>/${var.input_prefix}"
  role             = aws_iam_role.batch.arn
  s3_bucket        = aws_s3_object.bundle.bucket
  s3_key           = aws_s3_object.bundle.key
  source_code_hash = filebase64sha256(module.bundle.path)
  handler          = "aws_lambda.handler.batch"
  runtime          = var.runtime
  architectures    = [var.architecture]
  memory_size      = var.batch_memory_mb
  timeout          = var.batch_timeout_seconds

  ephemeral_storage {
    size = var.batch_ephemeral_storage_mb
  }

  environment {
    # BATCH_INPUT_URI: the watched prefix; an output prefix equal to it is refused at start
    # with fan_out, the state machine it hands a file larger than one part to (fanout.tf)
    variables = merge(local.function_environment, { BATCH_OUTPUT_URI = local.output_uri, BATCH_INPUT_URI = local.input_uri },
    local.fan_out_settings, var.fan_out ? { BATCH_FANOUT_STATE_MACHINE_ARN = aws_sfn_state_machine.fan_out[0].arn } : {})
  }

  # S3 invokes asynchronously: after Lambda's two retries an event that still fails lands here,
  # so no input is silently dropped.
  dead_letter_config {
    target_arn = aws_sqs_queue.batch_failures.arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.batch.name
  }

  tracing_config {
    mode = "PassThrough"
  }

  depends_on = [aws_iam_role_policy.batch]
}

resource "aws_lambda_function_event_invoke_config" "batch" {
  function_name                = aws_lambda_function.batch.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600
}

resource "aws_cloudwatch_log_group" "predict" {
  # checkov:skip=CKV_AWS_158: the lines carry no request bodies and no secrets (core never logs them); CloudWatch encrypts them at rest with a service key
  name              = "/aws/lambda/${var.name}-predict"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "batch" {
  # checkov:skip=CKV_AWS_158: the lines carry no request bodies and no secrets (core never logs them); CloudWatch encrypts them at rest with a service key
  name              = "/aws/lambda/${var.name}-batch"
  retention_in_days = var.log_retention_days
}

resource "aws_sqs_queue" "batch_failures" {
  name                      = "${var.name}-batch-failures"
  message_retention_seconds = 1209600 # 14 days, SQS's longest: time to look and replay
  sqs_managed_sse_enabled   = true
}

# --- IAM: one role per function, each allowed exactly what its code does ----------------------

# Who may take each role: the service that runs it, from this account only (Lambda for the
# functions; Step Functions and CodeDeploy for fanout.tf's and rollout.tf's)
data "aws_iam_policy_document" "assume" {
  for_each = toset(["lambda", "states", "codedeploy"])
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "predict" {
  name               = "${var.name}-predict"
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
}

resource "aws_iam_role" "batch" {
  name               = "${var.name}-batch"
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
}

data "aws_iam_policy_document" "predict" {
  statement {
    sid     = "ReadTheModel"
    actions = ["s3:GetObject"]
    # the model, the candidate model if any, and their optional manifests
    resources = concat(
      [local.model_arn, "${local.model_arn}.manifest.json"],
      local.candidate_arn == null ? [] : [local.candidate_arn, "${local.candidate_arn}.manifest.json"],
    )
  }
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.predict.arn}:*"]
  }
}

# What a batch run reads and writes in S3: the batch function's and the fan-out steps' (fanout.tf)
# share it, since each fan-out step is a part of one batch run
data "aws_iam_policy_document" "batch_data" {
  statement {
    sid       = "ReadTheModel"
    actions   = ["s3:GetObject"]
    resources = [local.model_arn, "${local.model_arn}.manifest.json"] # the model and its optional manifest
  }
  statement {
    # GetObjectVersion: a run reads the version its event names (?versionId=), even when a newer
    # one has replaced it since
    sid       = "ReadInputs"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.data.arn}/${var.input_prefix}*"]
  }
  statement {
    # Without it S3 answers 403 instead of 404 for an input deleted before it was read, and the
    # run would be retried as a failure instead of skipped. Listing reveals names, not contents.
    sid       = "TellMissingInputsFromDenied"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
  }
  statement {
    sid = "WriteOutputs"
    # Get: the outputs' current versions (HeadObject), on which the writes are conditional
    # (If-Match / If-None-Match), as a delete on If-Match needs it too. Delete: a re-run without
    # failed rows removes the errors file an earlier run left. AbortMultipartUpload: an output
    # upload in parts that fails is not left behind.
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.data.arn}/${var.output_prefix}*"]
  }
}

data "aws_iam_policy_document" "batch" {
  source_policy_documents = [data.aws_iam_policy_document.batch_data.json]
  dynamic "statement" {
    # with fan_out: start the fan-out state machine (fanout.tf), and no other
    for_each = var.fan_out ? [local.fan_out_arn] : []
    content {
      sid       = "StartTheFanOut"
      actions   = ["states:StartExecution"]
      resources = [statement.value]
    }
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.batch_failures.arn]
  }
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.batch.arn}:*"]
  }
}

resource "aws_iam_role_policy" "predict" {
  name   = "serverless-ml-predict"
  role   = aws_iam_role.predict.id
  policy = data.aws_iam_policy_document.predict.json
}

resource "aws_iam_role_policy" "batch" {
  name   = "serverless-ml-batch"
  role   = aws_iam_role.batch.id
  policy = data.aws_iam_policy_document.batch.json
}
