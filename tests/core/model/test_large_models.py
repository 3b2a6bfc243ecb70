"""A large model loads in no more memory than a bare joblib.load of its file (issue 20).

Each measurement is a fresh child process reporting its own peak RSS (VmHWM; ru_maxrss would
start at this test runner's, since Linux keeps it across exec): core loading
the model and answering one prediction, against a bare floor that loads the same file with
joblib from a path and predicts one row. From S3 (moto's server) the floor first downloads the
file with boto3 to a path, as a hand-written function would.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FLOOR_RATIO = 1.05

# core: the model through the service, one POST /predict, the peak, what GET /model says
CORE_CHILD = """
import json, sys
from core.http import PredictionService
from core.http.messages import HttpRequest
from core.settings import Settings
service = PredictionService(Settings.from_env())
body = json.dumps({"instances": [[0.5] * 20]}).encode()
answer = service.handle(HttpRequest("POST", "/predict", {"content-type": "application/json"}, body))
model = service.handle(HttpRequest("GET", "/model", {}, b""))
print(json.dumps({"status": answer.status, "answer": json.loads(answer.body), "model": json.loads(model.body),
                  "peak": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))}))
"""

FLOOR_CHILD = """
import json, os, sys, tempfile
import joblib
path = sys.argv[1]
if path.startswith("s3://"):
    import boto3
    bucket, key = path[5:].split("/", 1)
    local = os.path.join(tempfile.mkdtemp(), "model.joblib")
    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"]).download_file(bucket, key, local)
    path = local
model = joblib.load(path)
model.predict([[0.5] * 20])
print(json.dumps({"peak": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))}))
"""


@pytest.fixture(scope="module")
def large_model(tmp_path_factory) -> Path:
    """A 40 MB model that fits in a second: a brute-force k-NN keeps its 250,000 x 20 training rows."""
    import joblib
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(250_000, 20))
    model = KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(X, X[:, 0] > 0)
    path = tmp_path_factory.mktemp("large") / "knn.joblib"
    joblib.dump(model, path)
    assert path.stat().st_size > 35e6
    return path


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "AWS_"))}
    env.update(PYTHONPATH=str(REPO), LOG_LEVEL="WARNING", **extra)
    return env


def run_child(code: str, env: dict[str, str], *args: str, preexec=None) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=preexec)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def scratch_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("serverless-ml-model-"))


def test_a_large_local_model_loads_from_its_path_at_the_floors_memory(large_model):
    core = run_child(CORE_CHILD, child_env(MODEL_URI=f"file://{large_model}"))
    floor = run_child(FLOOR_CHILD, child_env(), str(large_model))
    assert core["status"] == 200
    load = core["model"]["load"]
    assert load["loaded_from"] == "file" and load["bytes_read"] == large_model.stat().st_size
    assert load["peak_memory_increase_bytes"] > 0, (load, core["peak"], floor["peak"])
    assert core["peak"] <= FLOOR_RATIO * floor["peak"], (core["peak"], floor["peak"])


@pytest.fixture
def model_on_s3(moto, large_model):
    import boto3

    env = moto.env()
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    bucket = "large-models"
    client.create_bucket(Bucket=bucket)
    client.upload_file(str(large_model), bucket, "knn.joblib")
    yield f"s3://{bucket}/knn.joblib", env


def test_a_large_s3_model_is_streamed_to_scratch_and_loads_at_the_floors_memory(model_on_s3, large_model, tmp_path):
    uri, aws = model_on_s3
    core = run_child(CORE_CHILD, child_env(**aws, MODEL_URI=uri, MODEL_SCRATCH_DIR=str(tmp_path)))
    floor = run_child(FLOOR_CHILD, child_env(**aws), uri)
    assert core["status"] == 200, core["answer"]
    assert core["model"]["load"]["loaded_from"] == "scratch"
    assert core["model"]["sha256"] == __import__("hashlib").sha256(large_model.read_bytes()).hexdigest()
    assert scratch_files(tmp_path) == [], "the scratch copy is removed once the model is loaded"
    assert core["peak"] <= FLOOR_RATIO * floor["peak"], (core["peak"], floor["peak"])


def test_a_wrong_digest_is_refused_before_loading_and_leaves_no_copy(model_on_s3, tmp_path):
    uri, aws = model_on_s3
    core = run_child(CORE_CHILD, child_env(**aws, MODEL_URI=uri, MODEL_SCRATCH_DIR=str(tmp_path), MODEL_SHA256="0" * 64))
    assert core["status"] == 503
    assert core["answer"]["error"]["code"] == "model_digest_mismatch"
    assert scratch_files(tmp_path) == []


SERVE_TWICE = CORE_CHILD.replace(
    "model = service.handle",
    "import os\nsys.stdout.write(json.dumps({'first': json.loads(answer.body)}) + '\\n'); sys.stdout.flush()\n"
    "sys.stdin.readline()  # the test frees space here\n"
    "answer = service.handle(HttpRequest('POST', '/predict', {'content-type': 'application/json'}, body))\n"
    "model = service.handle",
)


def test_too_little_scratch_space_is_a_503_with_the_figures_and_the_next_request_loads(model_on_s3, large_model, tmp_path):
    """The child may write files of at most 4 MB (RLIMIT_FSIZE, a real limit of the OS): the copy
    fails as it would on a full /tmp. Then the limit is lifted (prlimit) and the next request loads."""
    import signal

    uri, aws = model_on_s3

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4_000_000, resource.RLIM_INFINITY))

    child = subprocess.Popen(
        [sys.executable, "-c", SERVE_TWICE], env=child_env(**aws, MODEL_URI=uri, MODEL_SCRATCH_DIR=str(tmp_path)),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=small_files,
    )
    try:
        first = json.loads(child.stdout.readline())["first"]
        error = first["error"]
        assert error["code"] == "model_scratch_full"
        assert f"is {large_model.stat().st_size / 1e6:,.1f} MB" in error["message"]
        assert str(tmp_path) in error["message"] and "MODEL_SCRATCH_DIR" in error["message"]
        assert "predictEphemeralStorage" in error["message"] and "predict_ephemeral_storage_mb" in error["message"]
        assert scratch_files(tmp_path) == [], "a refused copy is removed"
        resource.prlimit(child.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        out, err = child.communicate("go\n", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    second = json.loads(out.strip().splitlines()[-1])
    assert second["status"] == 200, (second, err[-2000:])
    assert second["model"]["load"]["loaded_from"] == "scratch"
