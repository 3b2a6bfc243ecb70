"""Fixtures for the Lambda adapter: moto's real S3 server, AWS settings pointing at it, events of
the four HTTP sources as Lambda delivers them, and an app with captured logs and metrics."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from core.http import PredictionService
from core.logs import JsonFormatter
from core.settings import Settings
from tests.aws_lambda.lambda_support import LambdaContext

# --- moto ------------------------------------------------------------------------------------------


@pytest.fixture
def s3(aws_env):
    """A boto3 client for the tests' own set-up (uploads), separate from the store under test."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=5)
    )


@pytest.fixture
def bucket(s3) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_model_uri(s3, bucket, model_bytes) -> str:
    """The demo model uploaded to moto with boto3; its s3:// URI."""
    key = f"models/{uuid.uuid4().hex[:8]}/iris.joblib"
    s3.put_object(Bucket=bucket, Key=key, Body=model_bytes)
    return f"s3://{bucket}/{key}"


# --- the app -------------------------------------------------------------------------------------


@dataclass
class Harness:
    """A LambdaApp over a real service, with its metrics lines and log lines captured."""

    app: Any
    metrics_stream: io.StringIO
    log_stream: io.StringIO

    def invoke(self, event: Any, request_id: str = "req-0001", client_context: Any = None) -> Any:
        return self.app.predict(
            event, LambdaContext(aws_request_id=request_id, client_context=client_context)
        )

    def metrics(self) -> list[dict]:
        return [json.loads(line) for line in self.metrics_stream.getvalue().splitlines() if line]

    def logs(self) -> list[dict]:
        return [json.loads(line) for line in self.log_stream.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def make_app(monkeypatch) -> Iterator:
    """``make_app(model_uri, **env)`` -> Harness, as a fresh Lambda instance (its first invocation
    is the cold start); log capture removed afterwards."""
    from aws_lambda.app import LambdaApp
    from aws_lambda.metrics import EmfMetrics

    logger = logging.getLogger("serverless_ml")
    old_level = logger.level
    handlers: list[logging.Handler] = []

    def build(model_uri: str, **env: str) -> Harness:
        service = PredictionService(Settings.from_env({"MODEL_URI": model_uri, **env}))
        monkeypatch.setattr("core.http.service._cold_start", True)  # a new instance: not yet invoked
        metrics_stream, log_stream = io.StringIO(), io.StringIO()
        handler = logging.StreamHandler(log_stream)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(env.get("LOG_LEVEL", "INFO"))
        handlers.append(handler)
        app = LambdaApp(service, EmfMetrics("serverless-ml-test", "serverless-ml-test", stream=metrics_stream))
        return Harness(app, metrics_stream, log_stream)

    yield build
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(old_level)


