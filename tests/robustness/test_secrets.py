"""Connection strings, keys and tokens never reach an answer or a log line.

Each provider's adapter is served locally (``serverless-ml serve --provider aws|azure|gcp``, and
the core service) with recognisable fake secrets where a deployment keeps real ones: AWS keys and
a session token against an IAM-enforcing moto, an Azure connection string whose account key
Azurite refuses, a Google service-account key file that cannot be used. The storage refuses them
(503), and the client sends secrets of its own (a bearer token, an API key, a function key in the
query string, a cookie). Every answer body, every header and every line the process writes is
scanned for every secret.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.aws_lambda import moto_support
from tests.azure_function.azurite import Azurite
from tests.robustness.generated import FuzzRequest
from tests.robustness.runs import WorkerReplay
from tests.support import start_endpoint

ACCOUNT_KEY = base64.b64encode(b"FAKE-AZURE-ACCOUNT-KEY-robustness-do-not-leak-0004").decode()
AWS_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEROBUSTNESS42",
    "AWS_SECRET_ACCESS_KEY": "fakeSecretKey/ROBUSTNESS+do-not-leak-0001",
    "AWS_SESSION_TOKEN": "FAKE-SESSION-TOKEN-ROBUSTNESS-do-not-leak-0002",
}
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nFAKEPRIVATEKEYrobustnessDoNotLeak0005\n-----END PRIVATE KEY-----\n"
CLIENT_TOKEN = "fake-client-token-ROBUSTNESS-do-not-leak-0003"
CLIENT_HEADERS = {
    "Authorization": f"Bearer {CLIENT_TOKEN}", "X-Api-Key": CLIENT_TOKEN, "Cookie": f"session={CLIENT_TOKEN}",
    "X-Functions-Key": CLIENT_TOKEN,
}
REQUESTS = [
    ("GET", "/health", None), ("GET", "/model", None), ("POST", "/predict", b'{"features": [5.1, 3.5, 1.4, 0.2]}'),
    ("POST", "/predict", b'{"features": [5.1'), ("POST", "/predict", json.dumps({"data": {"x": CLIENT_TOKEN}}).encode()),
    ("GET", "/nope", None), ("DELETE", "/predict", None),
]


@pytest.fixture(scope="module")
def locked_moto(tmp_path_factory, demo_model_path):
    """moto checking every request's signature once the model is uploaded (2 free actions)."""
    import boto3

    server = moto_support.start_moto(tmp_path_factory.mktemp("moto"), {"INITIAL_NO_AUTH_ACTION_COUNT": "2"}, name="locked")
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="iris.joblib", Body=demo_model_path.read_bytes())
    yield server
    moto_support.stop_moto(server)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory, demo_model_path):
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    server.put("models", "iris.joblib", demo_model_path.read_bytes())
    yield server
    server.stop()


def settings_for(provider: str, locked_moto, azurite, tmp_path: Path) -> tuple[dict, list[str]]:
    """The environment of the served function, and the secrets in it."""
    if provider in ("aws", "core"):
        env = {**locked_moto.env(), **AWS_SECRETS, "MODEL_URI": "s3://models/iris.joblib"}
        return env, list(AWS_SECRETS.values())
    if provider == "azure":
        connection = azurite.connection_string.replace(azurite.key, ACCOUNT_KEY)
        return {"AZURE_STORAGE_CONNECTION_STRING": connection, "MODEL_URI": "az://models/iris.joblib"}, [
            ACCOUNT_KEY, connection]
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": "fake-project", "private_key_id": "fakekeyid0006robustness",
        "private_key": PRIVATE_KEY, "client_email": "fake@fake-project.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "http://127.0.0.1:9/token",
    }))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(key_file), "GOOGLE_CLOUD_PROJECT": "fake-project",
           "MODEL_URI": "gs://models/iris.joblib"}
    return env, ["FAKEPRIVATEKEYrobustnessDoNotLeak0005", "fakekeyid0006robustness", str(key_file)]


def served(provider: str, env: dict, tmp_path: Path) -> tuple[list[tuple[int, dict, bytes]], str]:
    """The answers to REQUESTS (with the client's secrets) and everything the process wrote.

    AWS, GCP and the core service: ``serverless-ml serve``. Azure: replay.py, which hands each
    request to the app's function as a ``func.HttpRequest`` with the root logger writing to stderr,
    where the Functions worker would collect it (``serve --provider azure`` shows only warnings).
    """
    if provider == "azure":
        requests = [
            FuzzRequest(method, path, (("code", CLIENT_TOKEN), ("sig", CLIENT_TOKEN)),
                        tuple(dict(CLIENT_HEADERS, **({"Content-Type": "application/json"} if body else {})).items()),
                        body or b"")
            for method, path, body in REQUESTS
        ]
        corpus = tmp_path / "requests.jsonl"
        corpus.write_text("".join(json.dumps(r.as_json()) + "\n" for r in requests))
        run = WorkerReplay("azure", corpus, env, tmp_path).result()
        return run.answers, "\n".join(run.log_lines)
    args = () if provider == "core" else ("--provider", provider)
    endpoint = start_endpoint(tmp_path, env, args)
    try:
        answers = []
        for method, path, body in REQUESTS:
            headers = dict(CLIENT_HEADERS, **({"Content-Type": "application/json"} if body else {}))
            answers.append(endpoint.request(method, f"{path}?code={CLIENT_TOKEN}&sig={CLIENT_TOKEN}", body, headers))
    finally:
        endpoint.process.terminate()
        endpoint.process.wait(timeout=15)
        stdout = endpoint.process.stdout.read()
        endpoint.process.stdout.close()
    return answers, stdout + endpoint.log_path.read_text(errors="replace")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("provider", ["core", "aws", "azure", "gcp"])
def test_no_secret_reaches_an_answer_or_a_log_line(provider, locked_moto, azurite, tmp_path):
    env, secrets = settings_for(provider, locked_moto, azurite, tmp_path)
    secrets.append(CLIENT_TOKEN)
    env.update(STORAGE_TIMEOUT_SECONDS="3", LOG_LEVEL="DEBUG")
    answers, written = served(provider, env, tmp_path)
    status, _, body = answers[2]
    assert status == 503, body  # the storage refused the fake credentials
    assert json.loads(body)["error"]["code"] == "model_unavailable"
    assert written.count('"request"') >= len(REQUESTS), "every request is logged"
    for status, headers, body in answers:
        for secret in secrets:
            assert secret not in body.decode("utf-8", "replace"), (status, body)
            assert secret not in json.dumps(headers)
    for number, line in enumerate(written.splitlines(), 1):
        for secret in secrets:
            assert secret not in line, f"line {number} of the log carries a secret: {line[:300]}"
