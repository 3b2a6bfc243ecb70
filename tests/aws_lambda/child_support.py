"""A fresh interpreter that imports the handler and invokes it, as Lambda does, reporting what it
saw after each step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.aws_lambda.moto_support import AWS_VARIABLES_TO_CLEAR, REPO

# The child counts GetObject requests for the model in moto's log after each step; it prints its
# findings as one line tagged RESULT (stdout also carries the EMF metric lines).
PRELUDE = """
import json, os, re, sys
LOG, KEY = os.environ["TEST_MOTO_LOG"], os.environ["TEST_MODEL_PATH"]
def gets():
    pattern = re.compile('"GET ' + re.escape(KEY) + r'(\\?[^ ]*)? HTTP/1')
    return sum(1 for line in open(LOG, errors="replace") if pattern.search(re.sub(r"\\x1b\\[[0-9;]*m", "", line)))
class Context:
    client_context = None
    def __init__(self, request_id): self.aws_request_id = request_id
event = {"version": "2.0", "routeKey": "$default", "rawPath": "/predict", "rawQueryString": "",
         "headers": {"content-type": "application/json"},
         "requestContext": {"http": {"method": "POST", "path": "/predict"}, "stage": "$default",
                            "requestId": "r", "domainName": "x.execute-api.us-east-1.amazonaws.com"},
         "body": json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}), "isBase64Encoded": False}
steps = {}
def record(name, answer=None):
    steps[name] = {"gets": gets(), "sklearn": "sklearn" in sys.modules, "numpy": "numpy" in sys.modules,
                   "botocore": "botocore" in sys.modules, "boto3": "boto3" in sys.modules,
                   "status": None if answer is None else answer.get("statusCode", answer.get("model"))}
"""


def run_child(code: str, moto, model_uri: str, **env: str) -> tuple[dict, list[dict], list[dict]]:
    """Run PRELUDE + code in a fresh interpreter; (steps, EMF lines, JSON log lines)."""
    child_env = {k: v for k, v in os.environ.items() if k not in AWS_VARIABLES_TO_CLEAR and not k.startswith("AWS_")}
    child_env.pop("MODEL_URI", None)
    child_env.pop("PRELOAD_MODEL", None)
    child_env.update(moto.env())
    child_env.update(
        MODEL_URI=model_uri,
        TEST_MOTO_LOG=str(moto.log_path),
        TEST_MODEL_PATH="/" + model_uri[len("s3://"):],
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        AWS_LAMBDA_FUNCTION_NAME="cold-start-test",
        **env,
    )
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code) + "\nprint('RESULT ' + json.dumps(steps))"],
        capture_output=True, text=True, env=child_env, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    (result,) = [line for line in out if line.startswith("RESULT ")]
    emf = [json.loads(line) for line in out if line.startswith('{"_aws"')]
    logs = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    return json.loads(result[len("RESULT "):]), emf, logs
