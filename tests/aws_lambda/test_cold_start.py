"""Cold starts in fresh processes, as Lambda runs them: import the handler (the init phase), then
invoke. GETs are counted in moto's own request log at each step, by the child itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.aws_lambda.child_support import run_child
from tests.aws_lambda.moto_support import REPO


def test_first_invocation_fetches_and_loads_the_second_reuses(moto, s3_model_uri):
    steps, emf, logs = run_child(
        """
        from aws_lambda import handler
        record("imported")
        record("first", handler.predict(event, Context("first-invocation")))
        record("second", handler.predict(event, Context("second-invocation")))
        """,
        moto, s3_model_uri,
    )
    imported, first, second = steps["imported"], steps["first"], steps["second"]
    # the init phase loads nothing heavy: no model library, no AWS SDK
    assert (imported["gets"], imported["sklearn"], imported["numpy"], imported["botocore"]) == (0, False, False, False)
    # credentials in the environment, as on Lambda: the model is a signed GET, no AWS SDK imported
    assert (first["gets"], first["status"], first["sklearn"]) == (1, 200, True)
    assert (first["botocore"], first["boto3"]) == (False, False)
    assert (second["gets"], second["status"]) == (1, 200)
    requests = [line for line in logs if line["message"] == "request"]
    assert [(r["function_request_id"], r["cold_start"]) for r in requests] == [
        ("first-invocation", True), ("second-invocation", False)]
    assert [line.get("ColdStart") for line in emf] == [1, None]
    assert "ModelLoadTime" in emf[0] and "ModelLoadTime" not in emf[1]
    assert emf[0]["service"] == "cold-start-test"


def test_preload_model_loads_during_init(moto, s3_model_uri):
    steps, emf, logs = run_child(
        """
        from aws_lambda import handler
        record("imported")
        record("first", handler.predict(event, Context("first-invocation")))
        """,
        moto, s3_model_uri, PRELOAD_MODEL="true",
    )
    assert (steps["imported"]["gets"], steps["imported"]["sklearn"]) == (1, True)
    assert (steps["first"]["gets"], steps["first"]["status"]) == (1, 200)
    (load,) = [line for line in logs if line["message"] == "model loaded"]
    assert "function_request_id" not in load  # it happened before any invocation
    assert emf[0]["ColdStart"] == 1 and "ModelLoadTime" in emf[0]


def test_a_warmup_then_a_request_is_one_load(moto, s3_model_uri):
    steps, emf, logs = run_child(
        """
        from aws_lambda import handler
        record("warmup", handler.predict({"source": "serverless-plugin-warmup"}, Context("warm")))
        record("request", handler.predict(event, Context("request")))
        """,
        moto, s3_model_uri,
    )
    assert (steps["warmup"]["gets"], steps["warmup"]["status"]) == (1, "loaded")
    assert (steps["request"]["gets"], steps["request"]["status"]) == (1, 200)
    assert len([line for line in logs if line["message"] == "model loaded"]) == 1


@pytest.mark.parametrize(
    "setting, value, reason",
    [
        ("MAX_ROWS", "lots", "MAX_ROWS='lots' is not allowed"),  # core's
        ("METRICS_NAMESPACE", "AWS/Lambda", "METRICS_NAMESPACE='AWS/Lambda' is not allowed"),  # the adapter's
    ],
)
def test_a_wrong_setting_fails_the_init_with_a_line_naming_it(moto, s3_model_uri, setting, value, reason):
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    child_env.pop("MODEL_URI", None)
    child_env.update(moto.env(), MODEL_URI=s3_model_uri, **{setting: value},
                     PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-c", "import aws_lambda.handler"], capture_output=True, text=True,
                          env=child_env, cwd=REPO, timeout=120)
    assert proc.returncode != 0
    (line,) = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    assert (line["message"], line["error_code"]) == ("invalid setting", "invalid_setting")
    assert line["reason"].startswith(reason)
