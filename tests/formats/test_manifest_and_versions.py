"""The manifest next to a model, the model's extension, scikit-learn version drift, and the
digest pin checked before any byte is deserialised, whatever the format."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil

import joblib
import numpy as np
import pytest

from core.errors import SettingsError
from core.http import HttpRequest
from core.settings import Settings
from tests.support import answer, make_service, post_json

ROW = {"features": [5.1, 3.5, 1.4, 0.2]}


def model_info(service) -> dict:
    return answer(service.handle(HttpRequest("GET", "/model")))


@pytest.fixture
def array_model(tmp_path):
    """A classifier fitted on a bare array: it has no feature names of its own."""
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.8], [0.9, 0.2]])
    path = tmp_path / "plain.joblib"
    joblib.dump(LogisticRegression().fit(X, ["no", "yes", "no", "yes"]), path)
    return path


def write_manifest(model_path, **fields):
    (model_path.parent / (model_path.name + ".manifest.json")).write_text(json.dumps(fields))


def test_manifest_names_the_features_of_an_array_model(array_model):
    digest = hashlib.sha256(array_model.read_bytes()).hexdigest()
    write_manifest(array_model, feature_names=["height", "weight"], sha256=digest, model_version="v7")
    service = make_service(array_model.as_uri())
    got = answer(post_json(service, {"data": {"weight": 0.0, "height": 1.0}}))
    assert got["predictions"] == ["yes"] and got["model_version"] == "v7"
    info = model_info(service)
    assert info["feature_names"] == ["height", "weight"] and info["feature_names_source"] == "manifest"
    assert info["manifest"]["model_version"] == "v7"


def test_model_version_setting_wins_over_the_manifest(array_model):
    write_manifest(array_model, model_version="v7")
    assert answer(post_json(make_service(array_model.as_uri(), MODEL_VERSION="v8"), {"features": [1, 0]}))["model_version"] == "v8"


@pytest.mark.parametrize("fields, fragment", [
    ({"sha256": "0" * 64}, "describes a file with sha256 " + "0" * 64),
    ({"feature_names": ["only_one"]}, "lists 1 feature names, but the model file://.../plain.joblib takes 2"),
    ({"classes": ["no", "maybe"]}, 'lists classes ["no", "maybe"], but the model'),
    ({"feature_names": "height"}, "'feature_names' must be a non-empty list"),
])
def test_a_manifest_that_does_not_describe_the_model_is_refused(array_model, fields, fragment):
    write_manifest(array_model, **fields)
    response = post_json(make_service(array_model.as_uri()), {"features": [1, 0]})
    assert response.status == 503
    error = answer(response)["error"]
    assert error["code"] == "model_invalid"
    assert fragment in error["message"]
    assert "plain.joblib.manifest.json" in error["message"]


def test_a_manifest_that_is_not_json_is_refused(array_model):
    (array_model.parent / "plain.joblib.manifest.json").write_text("{not json")
    error = answer(post_json(make_service(array_model.as_uri()), {"features": [1, 0]}))["error"]
    assert "the manifest file://.../plain.joblib.manifest.json is not valid: it is not UTF-8 JSON" in error["message"]


def test_names_the_model_carries_must_agree_with_the_manifest(tmp_path, demo_model_path):
    path = tmp_path / "iris.joblib"
    shutil.copy(demo_model_path, path)
    write_manifest(path, feature_names=["a", "b", "c", "d"])
    error = answer(post_json(make_service(path.as_uri()), ROW))["error"]
    assert 'lists feature names ["a", "b", "c", "d"], but the model' in error["message"]


@pytest.mark.parametrize("uri", ["file:///srv/models/model", "file:///srv/models/model.h5", "s3://bucket/model.json"])
def test_an_unknown_extension_is_refused_at_start_naming_the_supported_ones(uri):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": uri})
    message = caught.value.message
    assert message.startswith(f"MODEL_URI='{uri}' names a file whose extension this service cannot load")
    assert ".joblib, .pkl, .pickle (joblib), .skops (skops), .onnx (onnxruntime)" in message


@pytest.mark.parametrize("name, fmt", [("m.joblib", "joblib"), ("m.PKL", "joblib"), ("m.joblib.gz", "joblib"),
                                       ("m.skops", "skops"), ("m.onnx", "onnx")])
def test_the_format_follows_the_extension(name, fmt):
    assert Settings.from_env({"MODEL_URI": f"file:///srv/{name}"}).model_format == fmt


# --- scikit-learn version drift -----------------------------------------------------------------


@pytest.fixture
def old_pickle(tmp_path, monkeypatch):
    """A forest pickled as scikit-learn 1.5.2 writes it: the version stamp every estimator's
    __getstate__ records is what scikit-learn compares on load."""
    import sklearn
    import sklearn.base
    from sklearn.ensemble import RandomForestClassifier

    X = np.arange(40, dtype=float).reshape(20, 2)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, [0, 1] * 10)
    path = tmp_path / "old.joblib"
    with monkeypatch.context() as patch:
        patch.setattr(sklearn.base, "__version__", "1.5.2")
        joblib.dump(forest, path)
    return path, sklearn.__version__


def test_a_pickle_from_another_scikit_learn_is_reported(old_pickle, caplog):
    path, running = old_pickle
    service = make_service(path.as_uri())
    with caplog.at_level("WARNING", logger="serverless_ml.model"):
        assert post_json(service, {"features": [1.0, 2.0]}).status == 200
    drift = model_info(service)["version_drift"]
    assert drift["saved_with"] == {"scikit-learn": "1.5.2"} and drift["running"] == {"scikit-learn": running}
    assert set(drift["estimators"]) == {"RandomForestClassifier", "DecisionTreeClassifier"}
    assert any(r.getMessage() == "model version drift" and r.fields["saved_with"] == "1.5.2" for r in caplog.records)
    warnings = model_info(service)["warnings"]
    assert len(warnings) == len(set(warnings))  # one line per message, not one per tree


def test_strict_model_version_refuses_it_naming_both_versions(old_pickle):
    path, running = old_pickle
    response = post_json(make_service(path.as_uri(), STRICT_MODEL_VERSION="true"), {"features": [1.0, 2.0]})
    assert response.status == 503
    message = answer(response)["error"]["message"]
    assert f"saved with scikit-learn 1.5.2 and this service runs scikit-learn {running}" in message
    assert "STRICT_MODEL_VERSION=true" in message


def test_strict_model_version_loads_a_model_of_this_version(demo_model_uri):
    service = make_service(demo_model_uri, STRICT_MODEL_VERSION="true")
    assert post_json(service, ROW).status == 200
    assert model_info(service)["version_drift"] is None


def test_strict_model_version_must_be_a_boolean():
    with pytest.raises(SettingsError, match="STRICT_MODEL_VERSION='sometimes' is not allowed; expected true or false"):
        Settings.from_env({"MODEL_URI": "file:///srv/m.joblib", "STRICT_MODEL_VERSION": "sometimes"})


# --- MODEL_SHA256 ---------------------------------------------------------------------------------


class CreatesFile:
    """Unpickling this object creates a file: the proof that a file was deserialised."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["evil.joblib", "evil.pkl"])
def test_a_wrong_digest_is_refused_before_a_byte_is_deserialised(tmp_path, name):
    marker = tmp_path / "created-by-unpickling"
    payload = tmp_path / name
    payload.write_bytes(pickle.dumps(CreatesFile(marker)))
    found = hashlib.sha256(payload.read_bytes()).hexdigest()
    expected = "ab" * 32
    response = post_json(make_service(payload.as_uri(), MODEL_SHA256=expected), ROW)
    assert response.status == 503
    error = answer(response)["error"]
    assert error["code"] == "model_digest_mismatch"
    assert f"does not match MODEL_SHA256: expected {expected}, found {found}" in error["message"]
    assert not marker.exists()

    # the same file with its own digest is deserialised: the marker proves the test can fail
    post_json(make_service(payload.as_uri(), MODEL_SHA256=found), ROW)
    assert marker.exists()


@pytest.mark.parametrize("file_name", ["iris.onnx", "iris.skops"])
def test_a_wrong_digest_refuses_any_format_before_its_library_is_imported(formats_dir, file_name):
    from tests.formats.test_onnx import run_fresh

    outcome = run_fresh(
        """
        import json, sys
        from core.http import HttpRequest
        from core.runtime import service
        response = service().handle(HttpRequest("POST", "/predict", {}, b'{"features": [5.1, 3.5, 1.4, 0.2]}'))
        print(json.dumps({"status": response.status, "body": json.loads(response.body),
                          "imported": sorted(m for m in ("onnxruntime", "skops", "sklearn") if m in sys.modules)}))
        """,
        MODEL_URI=(formats_dir / file_name).as_uri(), MODEL_SHA256="0" * 64, LOG_LEVEL="CRITICAL",
        SKOPS_TRUSTED_TYPES="sklearn.tree._tree.Tree",
    )
    assert outcome["status"] == 503 and outcome["body"]["error"]["code"] == "model_digest_mismatch"
    assert outcome["imported"] == []


def test_onnx_threads_is_validated_at_start():
    assert Settings.from_env({"MODEL_URI": "file:///srv/m.onnx"}).onnx_threads == 1
    assert Settings.from_env({"MODEL_URI": "file:///srv/m.onnx", "ONNX_THREADS": "0"}).onnx_threads == 0
    with pytest.raises(SettingsError, match="ONNX_THREADS='many' is not allowed; expected an integer from 0 to 256"):
        Settings.from_env({"MODEL_URI": "file:///srv/m.onnx", "ONNX_THREADS": "many"})
