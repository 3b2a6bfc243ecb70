# The bucket batch inputs land in (under input_prefix) and outputs are written to (under
# output_prefix), and the bucket of the deployment zips. The model's own bucket is the user's and
# is not managed here.

resource "aws_s3_bucket" "data" {
  # checkov:skip=CKV_AWS_18: server access logs need a second bucket (with its own logging); CloudTrail data events are the user's choice for auditing object access
  # checkov:skip=CKV_AWS_144: inputs are copies the user uploads and outputs are reproducible byte for byte from them; replication to a second region is a user's choice
  # checkov:skip=CKV_AWS_145: encrypted at rest with SSE-S3 (AES-256); a customer key would need kms:Decrypt and kms:GenerateDataKey grants for both roles, the user's choice
  bucket        = var.data_bucket_name
  bucket_prefix = var.data_bucket_name == null ? "${var.name}-data-" : null
}

# The Lambda zip is uploaded here: with its dependencies it is larger than the 50 MB a
# direct upload may be, while code from S3 may be up to 250 MB unzipped.
resource "aws_s3_bucket" "artifacts" {
  # checkov:skip=CKV_AWS_18: server access logs need a second bucket (with its own logging); only Terraform and Lambda read the deployment zips
  # checkov:skip=CKV_AWS_144: the zips are rebuilt by `serverless-ml package` from the repository at any time; replication to a second region adds nothing
  # checkov:skip=CKV_AWS_145: encrypted at rest with SSE-S3 (AES-256); a customer key would need grants for Lambda's code download, the user's choice
  # checkov:skip=CKV2_AWS_62: nothing reacts to a new deployment zip; Terraform itself updates the functions
  bucket_prefix = "${var.name}-artifacts-"
  force_destroy = true # old zips only; `terraform destroy` must not stop at them
}

resource "aws_s3_object" "bundle" {
  bucket      = aws_s3_bucket.artifacts.id
  key         = "lambda/serverless-ml-aws-${filemd5(module.bundle.path)}.zip"
  source      = module.bundle.path
  source_hash = filemd5(module.bundle.path)

  depends_on = [aws_s3_bucket_versioning.this, aws_s3_bucket_server_side_encryption_configuration.this]
}

locals {
  buckets = {
    data      = aws_s3_bucket.data
    artifacts = aws_s3_bucket.artifacts
  }
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = local.buckets
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.buckets
  bucket   = each.value.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # with fan_out: the parts of a run that never merged (fanout.tf; a failed execution can be
  # redriven until then)
  dynamic "rule" {
    for_each = var.fan_out && each.key == "data" ? ["${var.output_prefix}_parts/"] : []
    content {
      id     = "expire-unmerged-fanout-parts"
      status = "Enabled"
      filter {
        prefix = rule.value
      }
      expiration {
        days = 7
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each   = local.buckets
  bucket     = each.value.id
  policy     = data.aws_iam_policy_document.tls_only[each.key].json
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_lambda_permission" "s3_invokes_batch" {
  statement_id   = "AllowS3Invoke"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.batch.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.data.arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_s3_bucket_notification" "batch_inputs" {
  bucket = aws_s3_bucket.data.id

  dynamic "lambda_function" {
    for_each = local.batch_suffixes
    content {
      id                  = "serverless-ml-batch${replace(lambda_function.value, ".", "-")}"
      lambda_function_arn = aws_lambda_function.batch.arn
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = var.input_prefix
      filter_suffix       = lambda_function.value
    }
  }

  lifecycle {
    precondition {
      condition     = !startswith(var.input_prefix, var.output_prefix) && !startswith(var.output_prefix, var.input_prefix)
      error_message = "input_prefix (${var.input_prefix}) and output_prefix (${var.output_prefix}) overlap: the outputs would trigger the batch function. Choose two prefixes neither of which starts with the other."
    }
  }

  depends_on = [aws_lambda_permission.s3_invokes_batch]
}
