"""A large model loads in no more memory than a bare load of its file (issue 20).

Each measurement is a fresh child process reporting its own peak RSS (VmHWM; ru_maxrss would
start at this test runner's, since Linux keeps it across exec): core loading the model and
answering one prediction, against a bare floor that loads the same file from a path with the
format's own library (``joblib.load``, ``skops.io.load``, an onnxruntime session) and predicts one
row. From remote storage the floor first downloads the file to a path with the cloud's SDK
(boto3's ``download_file``, azure-storage-blob's ``readinto``, google-cloud-storage's
``download_to_filename``), as a hand-written function would. The stores are the real local
servers: moto's S3, Azurite and the GCS emulator, each started on first use.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.model.fetch import MEMORY_BELOW_BYTES
from tests.support import free_port, isolated_env

REPO = Path(__file__).resolve().parents[3]
FLOOR_RATIO = 1.05
FEATURES = 20

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

# the floor: download to a path with the cloud's SDK when remote, then the bare load and one row
FLOOR_CHILD = """
import json, os, sys, tempfile
path = sys.argv[1]
if "://" in path:
    scheme, rest = path.split("://", 1)
    bucket, key = rest.split("/", 1)
    path = os.path.join(tempfile.mkdtemp(), os.path.basename(key))
    if scheme == "s3":
        import boto3
        boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"]).download_file(bucket, key, path)
    elif scheme == "az":
        from azure.storage.blob import BlobClient
        blob = BlobClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"], bucket, key)
        with open(path, "wb") as out:
            blob.download_blob().readinto(out)
    else:
        from google.cloud import storage
        storage.Client().bucket(bucket).blob(key).download_to_filename(path)
if path.endswith(".onnx"):
    import numpy as np
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    session.run(None, {feed.name: np.full((1, 20), 0.5, dtype=np.float64 if "double" in feed.type else np.float32)})
elif path.endswith(".skops"):
    import skops.io as sio
    sio.load(path, trusted=sio.get_untrusted_types(file=path)).predict([[0.5] * 20])
else:
    import joblib
    joblib.load(path).predict([[0.5] * 20])
print(json.dumps({"peak": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))}))
"""


@pytest.fixture(scope="module")
def large_models(tmp_path_factory) -> dict[str, Path]:
    """One model of tens of MB in the three formats, built in a few seconds: a brute-force k-NN
    keeps its 250,000 x 20 training rows (40 MB of float64), saved with joblib.dump, skops.io.dump
    and skl2onnx (the rows as one double initializer). Its first answer costs little memory, so the
    peak is the load's: loaded from bytes in memory each format peaks 16-32% above its floor."""
    import joblib
    import numpy as np
    import skops.io as sio
    from skl2onnx import to_onnx
    from sklearn.neighbors import KNeighborsClassifier

    X = np.random.default_rng(0).normal(size=(250_000, FEATURES))
    model = KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(X, X[:, 0] > 0)
    folder = tmp_path_factory.mktemp("large")
    joblib.dump(model, folder / "knn.joblib")
    sio.dump(model, folder / "knn.skops")
    onnx = to_onnx(model, X[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(model): {"zipmap": False}})
    (folder / "knn.onnx").write_bytes(onnx.SerializeToString())
    paths = {fmt: folder / f"knn.{fmt}" for fmt in ("joblib", "skops", "onnx")}
    for path in paths.values():
        assert path.stat().st_size > 2 * MEMORY_BELOW_BYTES, "the model must be well above the in-memory threshold"
    return paths


@pytest.fixture(scope="module")
def large_model(large_models) -> Path:
    return large_models["joblib"]


@pytest.fixture(scope="module")
def evil_model(tmp_path_factory) -> Path:
    """A pickle above the threshold that creates the file named by LOAD_MARKER when it is
    deserialised: its absence shows that a refused file never was."""

    class Evil:
        def __reduce__(self):
            return (exec, ("open(__import__('os').environ['LOAD_MARKER'], 'w').close()",))

    path = tmp_path_factory.mktemp("evil") / "evil.joblib"
    path.write_bytes(pickle.dumps([Evil(), bytes(MEMORY_BELOW_BYTES + 1_000_000)]))
    return path


class RemoteStores:
    """moto's S3, Azurite and the GCS emulator: each started on first use and each file uploaded
    once; ``put`` gives the URI and the settings a child needs to reach it."""

    BUCKET = "large-models"

    def __init__(self, request: pytest.FixtureRequest, folder: Path) -> None:
        self._request, self._folder = request, folder
        self._servers: dict[str, object] = {}
        self._uploaded: dict[tuple[str, Path], str] = {}

    def put(self, scheme: str, path: Path) -> tuple[str, dict[str, str]]:
        server = self._server(scheme)
        if (scheme, path) not in self._uploaded:
            if scheme == "s3":
                self._s3_client(server).upload_file(str(path), self.BUCKET, path.name)
            elif scheme == "az":
                with open(path, "rb") as data:
                    server.client().get_blob_client(self.BUCKET, path.name).upload_blob(data, overwrite=True)
            else:
                blob = server.client().bucket(self.BUCKET).blob(path.name)
                blob.upload_from_filename(str(path), timeout=60)
            self._uploaded[(scheme, path)] = f"{scheme}://{self.BUCKET}/{path.name}"
        return self._uploaded[(scheme, path)], self.env(scheme)

    def env(self, scheme: str) -> dict[str, str]:
        server = self._server(scheme)
        if scheme == "az":
            return {"AZURE_STORAGE_CONNECTION_STRING": server.connection_string}
        return server.env()

    def _server(self, scheme: str):
        if scheme in self._servers:
            return self._servers[scheme]
        if scheme == "s3":
            server = self._request.getfixturevalue("moto")  # the session's server
            self._s3_client(server).create_bucket(Bucket=self.BUCKET)
        elif scheme == "az":
            from tests.azure_function.azurite import Azurite

            server = Azurite(self._folder).start()
            server.client().create_container(self.BUCKET)
        elif scheme == "gs":
            from tests.gcp_parts import GcsEmulator

            server = GcsEmulator(free_port(), self._folder).start()
            server.create_bucket(self.BUCKET)
        else:
            raise ValueError(f"scheme must be s3, az or gs; got {scheme!r}")
        self._servers[scheme] = server
        return server

    @staticmethod
    def _s3_client(moto):
        import boto3

        env = moto.env()
        return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def stop(self) -> None:
        for scheme, server in self._servers.items():
            if scheme != "s3":  # moto is the session's
                server.stop()


@pytest.fixture(scope="module")
def stores(request, tmp_path_factory) -> Iterator[RemoteStores]:
    started = RemoteStores(request, tmp_path_factory.mktemp("stores"))
    yield started
    started.stop()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in isolated_env().items() if not k.startswith(("MODEL_", "AWS_", "AZURE_"))}
    env.update(PYTHONPATH=str(REPO), LOG_LEVEL="WARNING", **extra)
    return env


def run_child(code: str, env: dict[str, str], *args: str, preexec=None) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=preexec)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def scratch_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("serverless-ml-model-"))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_model_below_the_threshold_is_read_into_memory(demo_model_path):
    from core.http import HttpRequest
    from tests.support import answer, make_service

    assert demo_model_path.stat().st_size < MEMORY_BELOW_BYTES
    service = make_service(demo_model_path.as_uri())
    load = answer(service.handle(HttpRequest("GET", "/model")))["load"]
    assert load["loaded_from"] == "memory" and load["bytes_read"] == demo_model_path.stat().st_size


# joblib from every store; skops and ONNX from file:// and one remote store each
CASES = [("joblib", "file"), ("joblib", "s3"), ("joblib", "az"), ("joblib", "gs"),
         ("skops", "file"), ("skops", "gs"), ("onnx", "file"), ("onnx", "az")]


@pytest.mark.parametrize("fmt, scheme", CASES, ids=[f"{f}-{s}" for f, s in CASES])
def test_a_large_model_loads_from_a_path_at_the_floors_memory(fmt, scheme, large_models, stores, tmp_path):
    """Digest pinned (so it is checked), loaded from its own path or a scratch copy that is gone
    afterwards, and a peak within 5% of the bare load's."""
    path = large_models[fmt]
    if scheme == "file":
        uri, store_env = path.as_uri(), {}
    else:
        uri, store_env = stores.put(scheme, path)
    digest = sha256_of(path)
    core = run_child(CORE_CHILD, child_env(**store_env, MODEL_URI=uri, MODEL_SHA256=digest, MODEL_SCRATCH_DIR=str(tmp_path)))
    floor = run_child(FLOOR_CHILD, child_env(**store_env), uri if scheme != "file" else str(path))
    assert core["status"] == 200, core["answer"]
    assert len(core["answer"]["predictions"]) == 1
    model = core["model"]
    assert model["format"] == fmt and model["sha256"] == digest
    load = model["load"]
    assert load["loaded_from"] == ("file" if scheme == "file" else "scratch")
    assert load["bytes_read"] == path.stat().st_size
    assert load["peak_memory_increase_bytes"] > 0, (load, core["peak"], floor["peak"])
    assert scratch_files(tmp_path) == [], "the scratch copy is removed once the model is loaded"
    assert core["peak"] <= FLOOR_RATIO * floor["peak"], (core["peak"], floor["peak"], core["peak"] / floor["peak"])


@pytest.mark.parametrize("scheme", ["file", "s3", "az", "gs"])
def test_a_wrong_digest_is_refused_before_deserialising_and_leaves_no_copy(scheme, evil_model, stores, tmp_path):
    """The large pickle would create LOAD_MARKER if it were deserialised. With a wrong
    MODEL_SHA256 it is refused and no marker appears; with its own digest it is deserialised (the
    marker appears: the check above could have failed) and refused for having no predict(). Either
    way no scratch copy is left."""
    if scheme == "file":
        uri, store_env = evil_model.as_uri(), {}
    else:
        uri, store_env = stores.put(scheme, evil_model)
    marker = tmp_path / "deserialised"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = child_env(**store_env, MODEL_URI=uri, MODEL_SCRATCH_DIR=str(scratch), LOAD_MARKER=str(marker))

    refused = run_child(CORE_CHILD, {**env, "MODEL_SHA256": "0" * 64})
    assert refused["status"] == 503
    error = refused["answer"]["error"]
    assert error["code"] == "model_digest_mismatch"
    assert f"found {sha256_of(evil_model)}" in error["message"]
    assert not marker.exists(), "a file whose digest did not match was deserialised"
    assert scratch_files(scratch) == []

    loaded = run_child(CORE_CHILD, {**env, "MODEL_SHA256": sha256_of(evil_model)})
    assert loaded["answer"]["error"]["code"] == "model_invalid"
    assert marker.exists(), "with its own digest the file is deserialised"
    assert scratch_files(scratch) == []


def test_a_large_local_model_without_a_pinned_digest_is_hashed_beside_its_load(large_model):
    """No MODEL_SHA256 and no manifest: nothing to check before loading, so the digest is
    computed while the model loads; GET /model still shows it, and the version made from it."""
    from core.http import HttpRequest
    from tests.support import answer, make_service, post_json

    service = make_service(large_model.as_uri())
    assert post_json(service, {"instances": [[0.5] * FEATURES]}).status == 200
    model = answer(service.handle(HttpRequest("GET", "/model")))
    digest = sha256_of(large_model)
    assert model["sha256"] == digest and model["model_version"] == f"sha256:{digest[:12]}"
    assert model["load"]["loaded_from"] == "file" and model["load"]["bytes_read"] == large_model.stat().st_size


def test_a_manifests_digest_is_checked_before_a_large_local_file_is_deserialised(evil_model, tmp_path, monkeypatch):
    """Without MODEL_SHA256 a manifest's sha256 still pins the file: a file it does not describe is
    refused before it is deserialised (the pickle would create LOAD_MARKER)."""
    import shutil

    from tests.support import answer, make_service, post_json

    model = tmp_path / "evil.joblib"
    shutil.copy(evil_model, model)
    (tmp_path / "evil.joblib.manifest.json").write_text(json.dumps({"sha256": "1" * 64}))
    marker = tmp_path / "deserialised"
    monkeypatch.setenv("LOAD_MARKER", str(marker))
    response = post_json(make_service(model.as_uri()), {"instances": [[0.5] * FEATURES]})
    assert response.status == 503
    error = answer(response)["error"]
    assert error["code"] == "model_invalid"
    assert f"has sha256 {sha256_of(evil_model)}" in error["message"] and "manifest" in error["message"]
    assert not marker.exists(), "a file its manifest does not describe was deserialised"


SERVE_TWICE = CORE_CHILD.replace(
    "model = service.handle",
    "import os\nsys.stdout.write(json.dumps({'first': json.loads(answer.body)}) + '\\n'); sys.stdout.flush()\n"
    "sys.stdin.readline()  # the test frees space here\n"
    "answer = service.handle(HttpRequest('POST', '/predict', {'content-type': 'application/json'}, body))\n"
    "model = service.handle",
)


def test_too_little_scratch_space_is_a_503_with_the_figures_and_the_next_request_loads(stores, large_model, tmp_path):
    """The child may write files of at most 4 MB (RLIMIT_FSIZE, a real limit of the OS): the copy
    fails as it would on a full /tmp. Then the limit is lifted (prlimit) and the next request loads."""
    import signal

    uri, aws = stores.put("s3", large_model)

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
