"""Model loading: lazy, once per process under concurrency, digest checked before
deserialising, failures reported as 503 and never cached."""

from __future__ import annotations

import hashlib
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.http import HttpRequest
from core.storage.local import LocalObjectStore
from tests.support import answer, make_service, post_json

ROW = {"features": [5.1, 3.5, 1.4, 0.2]}


class CountingStore(LocalObjectStore):
    """The real local store, counting reads (and slowed, so that the threads really overlap)."""

    def __init__(self, delay: float = 0.2):
        self.reads = 0
        self.delay = delay
        self._count_lock = threading.Lock()

    def read_bytes(self, uri):
        if uri.key.endswith(".manifest.json"):  # the optional manifest: read once too, not counted
            return super().read_bytes(uri)
        with self._count_lock:
            self.reads += 1
        threading.Event().wait(self.delay)
        return super().read_bytes(uri)


def test_model_is_not_loaded_before_first_use(service):
    assert service.model.loaded is None
    health = answer(service.handle(HttpRequest("GET", "/health")))
    assert health == {"status": "ok", "model": "not_loaded"}
    assert service.model.loaded is None  # /health never loads it


def test_32_concurrent_first_requests_read_and_load_once(demo_model_uri):
    from core.http import PredictionService
    from core.model import ModelHolder
    from core.settings import Settings

    settings = Settings.from_env({"MODEL_URI": demo_model_uri})
    store = CountingStore()
    service = PredictionService(settings, ModelHolder(settings, store_for=lambda uri, timeout_seconds: store))
    barrier = threading.Barrier(32)

    def first_request(_):
        barrier.wait()
        return post_json(service, ROW)

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(first_request, range(32)))
    assert [r.status for r in responses] == [200] * 32
    assert {tuple(answer(r)["predictions"]) for r in responses} == {("setosa",)}
    assert store.reads == 1
    assert service.model.load_attempts == 1


def test_missing_model_is_503_then_recovers_without_restart(tmp_path, demo_model_path):
    target = tmp_path / "later" / "model.joblib"
    service = make_service(target.as_uri())
    response = post_json(service, ROW)
    body = answer(response)
    assert response.status == 503
    assert response.headers["retry-after"] == "5"
    assert body["error"]["code"] == "model_unavailable"
    assert body["error"]["message"] == "the model could not be read: file://.../model.joblib does not exist"
    assert str(tmp_path) not in response.body.decode()
    assert answer(service.handle(HttpRequest("GET", "/health")))["model"] == "load_failed"
    assert service.handle(HttpRequest("GET", "/model")).status == 503

    target.parent.mkdir()
    shutil.copy(demo_model_path, target)  # the failure was not cached: the next request loads it
    assert answer(post_json(service, ROW))["predictions"] == ["setosa"]
    assert answer(service.handle(HttpRequest("GET", "/health")))["model"] == "loaded"


def test_digest_mismatch_is_refused_before_deserialising(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "evil.joblib"
    # A pickle that creates a file when loaded: if it were deserialised, the marker would exist.
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload.write_bytes(pickle.dumps(Evil()))
    expected = "0" * 64
    found = hashlib.sha256(payload.read_bytes()).hexdigest()
    service = make_service(payload.as_uri(), MODEL_SHA256=expected)
    response = post_json(service, ROW)
    assert response.status == 503
    error = answer(response)["error"]
    assert error["code"] == "model_digest_mismatch"
    assert f"expected {expected}, found {found}" in error["message"]
    assert "MODEL_SHA256" in error["message"]
    assert not marker.exists()


def test_matching_digest_loads(demo_model_path):
    digest = hashlib.sha256(demo_model_path.read_bytes()).hexdigest()
    service = make_service(demo_model_path.as_uri(), MODEL_SHA256=digest.upper())
    assert post_json(service, ROW).status == 200
    info = answer(service.handle(HttpRequest("GET", "/model")))
    assert info["sha256"] == digest


@pytest.mark.parametrize(
    "content, code, fragment",
    [
        (b"this is not a pickle", "model_invalid", "could not be deserialised as a joblib/pickle model"),
        (b"", "model_invalid", "could not be deserialised"),
    ],
)
def test_a_file_that_is_not_a_model_is_503(tmp_path, content, code, fragment):
    path = tmp_path / "model.joblib"
    path.write_bytes(content)
    response = post_json(make_service(path.as_uri()), ROW)
    assert response.status == 503
    assert answer(response)["error"]["code"] == code
    assert fragment in answer(response)["error"]["message"]
    assert "Traceback" not in response.body.decode()


def test_an_object_without_predict_is_503(tmp_path):
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump({"weights": [1, 2, 3]}, path)
    error = answer(post_json(make_service(path.as_uri()), ROW))["error"]
    assert error == {
        "code": "model_invalid",
        "message": "the file at file://.../model.joblib holds a dict, which has no predict(); "
        "expected a fitted scikit-learn estimator or pipeline",
    }


def test_model_info_describes_what_is_loaded(service, demo_model_path):
    info = answer(service.handle(HttpRequest("GET", "/model")))
    assert info["model_version"] == "sha256:" + info["sha256"][:12]
    assert info["sha256"] == hashlib.sha256(demo_model_path.read_bytes()).hexdigest()
    assert info["feature_names"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert info["n_features"] == 4
    assert info["classes"] == ["setosa", "versicolor", "virginica"]
    assert info["estimator"] == "RandomForestClassifier"
    assert info["has_probabilities"] is True
    assert info["load_seconds"] > 0
    assert str(demo_model_path.parent) not in service.handle(HttpRequest("GET", "/model")).body.decode()


def test_model_version_setting_is_reported(demo_model_uri):
    service = make_service(demo_model_uri, MODEL_VERSION="2026-11-iris")
    assert answer(post_json(service, ROW))["model_version"] == "2026-11-iris"
