"""On object storage the manifest is read beside the model (on a thread, overlapping the model's
read): through the real GCS emulator, an ONNX model with its manifest, then without one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from core.http import HttpRequest
from tests.support import answer, free_port, make_service, post_json

BUCKET = "format-models"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator:
    from tests.gcp_parts import GcsEmulator

    running = GcsEmulator(free_port(), tmp_path_factory.mktemp("gcs")).start()
    running.create_bucket(BUCKET)
    yield running
    running.stop()


@pytest.fixture
def gcs_env(emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    return emulator


def test_an_onnx_model_and_its_manifest_from_gcs(gcs_env, formats_dir):
    gcs_env.upload(BUCKET, "iris/model.onnx", (formats_dir / "iris.onnx").read_bytes())
    manifest = json.loads((formats_dir / "iris.onnx.manifest.json").read_text())
    gcs_env.upload(BUCKET, "iris/model.onnx.manifest.json", json.dumps(manifest).encode())
    service = make_service(f"gs://{BUCKET}/iris/model.onnx")
    got = answer(post_json(service, {"data": {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}}))
    assert got["predictions"] == ["virginica"]
    info = answer(service.handle(HttpRequest("GET", "/model")))
    assert info["manifest"] == manifest and info["feature_names_source"] == "manifest"


def test_without_a_manifest_on_gcs_the_model_is_served_alone(gcs_env, formats_dir):
    gcs_env.upload(BUCKET, "bare/model.onnx", (formats_dir / "iris-nozipmap.onnx").read_bytes())
    service = make_service(f"gs://{BUCKET}/bare/model.onnx")
    assert answer(post_json(service, {"features": [5.1, 3.5, 1.4, 0.2]}))["predictions"] == ["setosa"]
    assert answer(service.handle(HttpRequest("GET", "/model")))["manifest"] is None
