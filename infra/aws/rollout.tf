# Gradual traffic shifting of predict between its published versions, behind the alias `live`
# that the HTTP API then invokes. Off by default (a new version takes all traffic at the apply);
# two ways, one at a time:
#
#  - deployment_config (CodeDeploy): each apply that changes predict publishes a version, and a
#    CodeDeploy deployment moves `live` to it by the configuration's steps (10% for 5 minutes,
#    10% more each minute, ...). If an alarm below goes off meanwhile, CodeDeploy moves all
#    traffic back and the apply fails, saying so. The alias' version and weights are CodeDeploy's
#    from its creation on: Terraform never moves them itself.
#  - stable_version + new_version_weight (by hand): `live` stays on stable_version and sends
#    new_version_weight of requests to the version this apply publishes (the alias' routing
#    config). Promote by setting stable_version to that version (or to "" to leave shifting);
#    roll back by new_version_weight = 0. No alarm acts; watch the metrics below.
#
# With snap_start the same alias serves both: the versions it shifts between are snapshotted, and
# the alias `snapstart` is not made.

locals {
  codedeploy = var.deployment_config != ""
  weighted   = var.stable_version != ""
  shifting   = local.codedeploy || local.weighted
  # SnapStart and shifting both need published versions
  publish_predict = var.snap_start || local.shifting

  metrics_namespace = coalesce(var.metrics_namespace, "serverless-ml")
  alarm_names = {
    errors   = "${var.name}-predict-error-rate"
    http_5xx = "${var.name}-predict-http-5xx-rate"
    shadow   = "${var.name}-predict-shadow-disagreement-rate"
  }

  # what the HTTP API invokes: the alias that serves, or the function itself
  predict_aliases    = concat(aws_lambda_alias.live[*], aws_lambda_alias.weighted[*], aws_lambda_alias.predict[*])
  predict_invoke_arn = length(local.predict_aliases) > 0 ? local.predict_aliases[0].invoke_arn : aws_lambda_function.predict.invoke_arn
  predict_qualifier  = length(local.predict_aliases) > 0 ? local.predict_aliases[0].name : null
}

# --- CodeDeploy ---------------------------------------------------------------------------------

resource "aws_lambda_alias" "live" {
  count            = local.codedeploy ? 1 : 0
  name             = "live"
  description      = "predict's version(s) that serve; moved by CodeDeploy (${var.deployment_config})"
  function_name    = aws_lambda_function.predict.function_name
  function_version = aws_lambda_function.predict.version

  lifecycle {
    # CodeDeploy moves it (terraform_data.shift_predict_traffic); Terraform sets it once
    ignore_changes = [function_version, routing_config]

    precondition {
      condition     = !(local.codedeploy && local.weighted)
      error_message = "deployment_config = \"${var.deployment_config}\" and stable_version = \"${var.stable_version}\": choose one way of shifting traffic, CodeDeploy (deployment_config) or by hand (stable_version, new_version_weight)."
    }
  }
}

resource "aws_codedeploy_app" "predict" {
  count            = local.codedeploy ? 1 : 0
  name             = "${var.name}-predict"
  compute_platform = "Lambda"
}

resource "aws_codedeploy_deployment_group" "predict" {
  count                  = local.codedeploy ? 1 : 0
  app_name               = aws_codedeploy_app.predict[0].name
  deployment_group_name  = "${var.name}-predict"
  deployment_config_name = "CodeDeployDefault.Lambda${var.deployment_config}"
  service_role_arn       = aws_iam_role.codedeploy[0].arn

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]
  }

  alarm_configuration {
    enabled = true
    alarms  = [for alarm in aws_cloudwatch_metric_alarm.predict : alarm.alarm_name]
  }
}

# CodeDeploy's role: what AWS's AWSCodeDeployRoleForLambdaLimited allows on every function and
# alarm, here on predict's alias and these alarms only (no hooks, no AppSpec in S3).
resource "aws_iam_role" "codedeploy" {
  count              = local.codedeploy ? 1 : 0
  name               = "${var.name}-predict-codedeploy"
  assume_role_policy = data.aws_iam_policy_document.assume["codedeploy"].json
}

data "aws_iam_policy_document" "codedeploy" {
  statement {
    # the function's ARN as well as the alias': Lambda may authorise alias calls on either
    sid       = "MoveTheAlias"
    actions   = ["lambda:GetAlias", "lambda:UpdateAlias"]
    resources = [aws_lambda_function.predict.arn, "${aws_lambda_function.predict.arn}:live"]
  }
  statement {
    # CodeDeploy asks whether a version has provisioned concurrency to wait for
    sid       = "ReadProvisionedConcurrency"
    actions   = ["lambda:GetProvisionedConcurrencyConfig"]
    resources = [aws_lambda_function.predict.arn, "${aws_lambda_function.predict.arn}:*"]
  }
  statement {
    sid       = "ReadTheAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = [for name in values(local.alarm_names) : "arn:${data.aws_partition.current.partition}:cloudwatch:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:alarm:${name}"]
  }
}

resource "aws_iam_role_policy" "codedeploy" {
  count  = local.codedeploy ? 1 : 0
  name   = "shift-predict-traffic"
  role   = aws_iam_role.codedeploy[0].id
  policy = data.aws_iam_policy_document.codedeploy.json
}

data "aws_region" "current" {}

# The alarms read the alias, whose metrics count both versions while it shifts: the new one's
# share is what moves them. No data (no traffic, no candidate model) is no reason to roll back.
locals {
  alarms = {
    errors = {
      description = "predict invocation errors (timeouts, out of memory, init failures) above ${var.rollback_error_percent}% of the alias' invocations"
      threshold   = var.rollback_error_percent
      namespace   = "AWS/Lambda"
      dimensions  = { FunctionName = aws_lambda_function.predict.function_name, Resource = "${aws_lambda_function.predict.function_name}:live" }
      part        = "Errors"
      whole       = "Invocations"
    }
    http_5xx = {
      description = "HTTP API 5xx answers (core's 503 for a model that cannot load, Lambda failures) above ${var.rollback_error_percent}% of requests"
      threshold   = var.rollback_error_percent
      namespace   = "AWS/ApiGateway"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = "$default" }
      part        = "5xx"
      whole       = "Count"
    }
    shadow = {
      # predict's EMF line (aws_lambda/metrics.py), with CANDIDATE_MODE=shadow
      description = "rows on which a shadowed candidate model disagrees with the primary above ${var.rollback_disagreement_percent}% of the rows compared"
      threshold   = var.rollback_disagreement_percent
      namespace   = local.metrics_namespace
      dimensions  = { service = aws_lambda_function.predict.function_name }
      part        = "ShadowDisagreements"
      whole       = "ShadowRows"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "predict" {
  for_each            = local.codedeploy ? local.alarms : {}
  alarm_name          = local.alarm_names[each.key]
  alarm_description   = "${each.value.description}; rolls a CodeDeploy traffic shift back"
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "percent"
    expression  = "IF(whole > 0, 100 * part / whole, 0)"
    label       = "${each.value.part}, % of ${each.value.whole}"
    return_data = true
  }

  metric_query {
    id = "part"
    metric {
      namespace   = each.value.namespace
      metric_name = each.value.part
      dimensions  = each.value.dimensions
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "whole"
    metric {
      namespace   = each.value.namespace
      metric_name = each.value.whole
      dimensions  = each.value.dimensions
      period      = 60
      stat        = "Sum"
    }
  }
}

locals {
  # The AppSpec of a deployment (YAML: CodeDeploy wants `version: 0.0`, which jsonencode cannot
  # write). The current version is the alias' own as the refresh read it back (CodeDeploy's, not
  # the one Terraform set); the target is the version this apply publishes.
  appspec = local.codedeploy ? join("\n", [
    "version: 0.0",
    "Resources:",
    "  - predict:",
    "      Type: AWS::Lambda::Function",
    "      Properties:",
    "        Name: \"${aws_lambda_function.predict.function_name}\"",
    "        Alias: \"${aws_lambda_alias.live[0].name}\"",
    "        CurrentVersion: \"${aws_lambda_alias.live[0].function_version}\"",
    "        TargetVersion: \"${aws_lambda_function.predict.version}\"",
    "",
  ]) : null
  codedeploy_revision = local.codedeploy ? jsonencode({ revisionType = "AppSpecContent", appSpecContent = { content = local.appspec } }) : null
}

# A new version of predict starts a CodeDeploy deployment to it and waits for its end: a
# deployment stopped by an alarm (traffic back on the version before) fails the apply. Needs the
# AWS CLI, signed in to the same account and region. start_deployment = false leaves that to you
# (CI): output traffic_shifting gives the command.
resource "terraform_data" "shift_predict_traffic" {
  count            = local.codedeploy && var.start_deployment ? 1 : 0
  triggers_replace = [aws_lambda_function.predict.version]

  provisioner "local-exec" {
    command = <<-EOT
      set -eu
      if [ "$CURRENT" = "$TARGET" ]; then
        echo "predict: the alias live is on version $TARGET already"
        exit 0
      fi
      id=$(aws deploy create-deployment --region "$REGION" --application-name "$APP" \
        --deployment-group-name "$GROUP" --revision "$REVISION" --query deploymentId --output text)
      echo "predict: CodeDeploy deployment $id moves the alias live from version $CURRENT to $TARGET ($CONFIG)"
      aws deploy wait deployment-successful --region "$REGION" --deployment-id "$id" || {
        echo "predict: deployment $id did not succeed (an alarm, or a stop): traffic is back on version $CURRENT. aws deploy get-deployment --deployment-id $id says why." >&2
        exit 1
      }
    EOT
    environment = {
      REGION   = data.aws_region.current.name
      APP      = aws_codedeploy_app.predict[0].name
      GROUP    = aws_codedeploy_deployment_group.predict[0].deployment_group_name
      CONFIG   = aws_codedeploy_deployment_group.predict[0].deployment_config_name
      CURRENT  = aws_lambda_alias.live[0].function_version
      TARGET   = aws_lambda_function.predict.version
      REVISION = local.codedeploy_revision
    }
  }

  depends_on = [aws_iam_role_policy.codedeploy, aws_cloudwatch_metric_alarm.predict]
}

# --- by hand ------------------------------------------------------------------------------------

resource "aws_lambda_alias" "weighted" {
  count            = local.weighted ? 1 : 0
  name             = "live"
  description      = "predict's stable version ${var.stable_version}, and ${var.new_version_weight * 100}% of requests to the version published last"
  function_name    = aws_lambda_function.predict.function_name
  function_version = var.stable_version

  dynamic "routing_config" {
    # no weight, or the stable version being the newest: the alias has one version
    for_each = var.new_version_weight > 0 && var.stable_version != aws_lambda_function.predict.version ? [1] : []
    content {
      additional_version_weights = { (aws_lambda_function.predict.version) = var.new_version_weight }
    }
  }
}
