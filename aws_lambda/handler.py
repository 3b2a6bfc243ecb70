"""The Lambda entry point: ``aws_lambda.handler.predict`` (the function's handler setting).

Importing this module is the function's init phase: settings are read and checked (a wrong value
fails the init with a log line naming the variable), logging is set up, the model is loaded right
away when ``PRELOAD_MODEL=true`` (otherwise on the first request or warm-up), and SnapStart hooks
are registered where snapshot-restore-py is available. Without ``PRELOAD_MODEL`` the import loads
neither scikit-learn, NumPy nor an AWS SDK.

``predict(event, context)`` answers API Gateway REST (payload 1.0), HTTP API (payload 2.0),
Lambda Function URL and ALB events with the HTTP API of core, warm-ups by loading the model, and
anything else with ``{"error": {"code": ..., "message": ...}, "request_id": ...}``.

``batch(event, context)`` (handler setting ``aws_lambda.handler.batch``, usually a function of
its own) predicts the ``.csv`` / ``.jsonl`` objects named by S3 notifications delivered directly,
through SQS or through EventBridge; see aws_lambda/batch.py and the README's "Batch" section.

``fanout_plan``, ``fanout_part`` and ``fanout_merge`` are the three steps of the fan-out state
machine that the batch handler starts for a file larger than one part when
BATCH_FANOUT_STATE_MACHINE_ARN is set (aws_lambda/fanout.py, aws_lambda/README.md "Fan-out").
"""

from __future__ import annotations

from typing import Any

from aws_lambda import snapstart
from aws_lambda.app import LambdaApp

__all__ = ["app", "batch", "fanout_merge", "fanout_part", "fanout_plan", "predict"]

app = LambdaApp.from_environment()
snapstart.register(app.preload)


def predict(event: Any, context: Any) -> dict[str, Any]:
    return app.predict(event, context)


def batch(event: Any, context: Any) -> dict[str, Any]:
    # imported on the first batch event: the predict function's cold start does not load the
    # batch trigger's modules (S3 event parsing, the loop guard), about 3 ms
    from aws_lambda.batch import handle

    return handle(app, event, context)


# The fan-out state machine's steps (aws_lambda/fanout.py), each a function of its own; their
# modules are imported on their first invocation, as the batch handler's are.


def fanout_plan(event: Any, context: Any) -> dict[str, Any]:
    from aws_lambda.fanout import plan_step

    return plan_step(app, event, context)


def fanout_part(event: Any, context: Any) -> dict[str, Any]:
    from aws_lambda.fanout import part_step

    return part_step(app, event, context)


def fanout_merge(event: Any, context: Any) -> dict[str, Any]:
    from aws_lambda.fanout import merge_step

    return merge_step(app, event, context)
