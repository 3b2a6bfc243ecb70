"""infra/aws applied into moto's server: the provider override that points Terraform there, the
variables every apply sets, and :func:`started`, one stack's own moto server and initialised copy
of the configuration. The stacks themselves are session builds of the tests that read them
(test_terraform.py, test_rollout.py), started in the background (tests/background.py): an apply
spends most of its minute waiting on the AWS provider's own polls.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aws_lambda import moto_support
from tests.infra import terraform_support as tf

MODEL_URI = "s3://team-models/iris/v3/model.joblib"
MODEL_SHA256 = hashlib.sha256(b"a model").hexdigest()

# cloudwatch and codedeploy: the alarms and CodeDeploy of traffic shifting (test_rollout.py)
SERVICES = ("apigatewayv2", "cloudwatch", "cloudwatchlogs", "codedeploy", "iam", "lambda", "s3", "sfn", "sqs", "sts")


def moto_override(url: str) -> str:
    endpoints = "\n".join(f'    {service} = "{url}"' for service in SERVICES)
    return (
        'provider "aws" {\n'
        '  region                      = "us-east-1"\n'
        '  access_key                  = "testing"\n'
        '  secret_key                  = "testing"\n'
        "  skip_credentials_validation = true\n"
        "  skip_metadata_api_check     = true\n"
        "  skip_requesting_account_id  = true\n"
        "  s3_use_path_style           = true\n"
        f"  endpoints {{\n{endpoints}\n  }}\n"
        "}\n"
        # moto refuses every request to a bucket whose policy has a Deny statement (it ignores
        # conditions and principals), so the buckets' TLS-only Deny (aws:SecureTransport false)
        # would refuse the bundle's upload. Here the policy is a harmless Allow instead; its real
        # content is checked in test_configs.py.
        'data "aws_iam_policy_document" "tls_only" {\n'
        "  statement {\n"
        '    effect    = "Allow"\n'
        '    actions   = ["s3:GetObject"]\n'
        '    resources = ["${each.value.arn}/*"]\n'
        "    principals {\n"
        '      type        = "AWS"\n'
        '      identifiers = ["arn:aws:iam::123456789012:root"]\n'
        "    }\n"
        "  }\n"
        "}\n"
    )


def tiny_bundle(path: Path) -> Path:
    """A zip with the handler's module path; moto stores it, nothing runs it."""
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("aws_lambda/__init__.py", "")
        bundle.writestr("aws_lambda/handler.py", "def predict(event, context):\n    return {}\n")
    return path


def other_bundle(path: Path) -> Path:
    """Another zip than tiny_bundle's: a new hash, so the apply publishes a new version."""
    tiny_bundle(path)
    with zipfile.ZipFile(path, "a") as bundle:
        bundle.writestr("aws_lambda/changed.py", "CHANGED = True\n")
    return path


APPLY_VARIABLES = {
    "model_uri": MODEL_URI,
    "model_sha256": MODEL_SHA256,
    "model_version": "iris-3",
    "max_rows": "500",
    "cors_allow_origins": '["https://app.example.com"]',
    "log_retention_days": "30",
    # a .skops forest's types, the bounds' edge (0: one thread per core), not the defaults
    "skops_trusted_types": '["sklearn.tree._tree.Tree", "sklearn.ensemble._forest.RandomForestClassifier"]',
    "strict_model_version": "true",
    "onnx_threads": "0",
    "batch_chunk_rows": "2500",
    "batch_part_bytes": "5242880",  # the smallest part S3 takes
}


def var_args(variables: dict[str, str]) -> list[str]:
    return [f"-var={name}={value}" for name, value in variables.items()]


@dataclass(frozen=True)
class Stack:
    """A copy of infra/aws, initialised, and the moto server its applies go to."""

    workdir: tf.Workdir
    server: moto_support.MotoServer

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.server.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def apply(self, variables: dict[str, str], plan_name: str, *options: str) -> dict:
        """`terraform plan -out` then `apply` of that plan; the plan, as `terraform show -json`."""
        planned = self.workdir.run("plan", "-input=false", *options, f"-out={plan_name}", *var_args(variables))
        assert planned.returncode == 0, f"terraform plan failed:\n{planned.stdout[-4000:]}\n{planned.stderr}"
        plan = json.loads(self.workdir.run("show", "-json", plan_name).stdout)
        applied = self.workdir.run("apply", "-auto-approve", "-input=false", plan_name, timeout=280)
        assert applied.returncode == 0, f"terraform apply failed:\n{applied.stdout[-4000:]}\n{applied.stderr}"
        return plan

    def outputs(self) -> dict[str, Any]:
        return {name: item["value"] for name, item in json.loads(self.workdir.run("output", "-json").stdout).items()}


@contextmanager
def started(tmp_path_factory: pytest.TempPathFactory, label: str, extra_override: str = "") -> Iterator[Stack]:
    """A moto server of its own (with Step Functions' ValidateStateMachineDefinition, which the
    AWS provider sends and moto lacks, answered by asl-validator) and a copy of infra/aws pointed
    at it and initialised offline; the server stops when the block ends."""
    cli_config = tf.write_cli_config(tmp_path_factory.mktemp(f"{label}-cli") / "terraformrc", tf.require_provider_mirror())
    launcher = [sys.executable, str(Path(__file__).with_name("moto_with_asl_validation.py"))]
    server = moto_support.start_moto(tmp_path_factory.mktemp(f"{label}-moto"), name=f"moto-{label}", command=launcher)
    try:
        workdir = tf.Workdir(tf.copy_config("aws", tmp_path_factory.mktemp(label)), cli_config)
        (workdir.path / "moto_override.tf").write_text(moto_override(server.url) + extra_override)
        init = workdir.run("init", "-backend=false", "-input=false")
        assert init.returncode == 0, init.stderr
        yield Stack(workdir, server)
    finally:
        moto_support.stop_moto(server)

