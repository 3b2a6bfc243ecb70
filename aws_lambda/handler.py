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
"""

from __future__ import annotations

from typing import Any

from aws_lambda import snapstart
from aws_lambda.app import LambdaApp

__all__ = ["app", "batch", "predict"]

app = LambdaApp.from_environment()
snapstart.register(app.preload)


def predict(event: Any, context: Any) -> dict[str, Any]:
    return app.predict(event, context)


def batch(event: Any, context: Any) -> dict[str, Any]:
    # imported on the first batch event: the predict function's cold start does not load the
    # batch trigger's modules (S3 event parsing, the loop guard), about 3 ms
    from aws_lambda.batch import handle

    return handle(app, event, context)
