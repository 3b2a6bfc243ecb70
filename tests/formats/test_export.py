"""`serverless-ml export MODEL --to onnx|skops`: the converted model and its manifest."""

from __future__ import annotations

import hashlib
import json
import shutil

from tests.formats.format_support import FEATURES, export


def test_export_to_onnx_writes_the_model_and_its_manifest(formats_dir, tmp_path):
    out = tmp_path / "out" / "served.onnx"
    done = export(formats_dir / "iris.joblib", "onnx", "--out", str(out), "--model-version", "2026-11")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["written"] == str(out)
    check = report["check"]
    assert check["generated_rows"] == check["same_labels"] == 64 and check["max_probability_difference"] <= 1e-5
    # skl2onnx drops the forest's learnt routing of NaN: the ONNX model refuses a missing value
    # instead of answering it differently from scikit-learn
    assert check["missing_values_refused"] == FEATURES
    manifest = json.loads((tmp_path / "out" / "served.onnx.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() == report["sha256"]
    assert manifest["source"]["sha256"] == hashlib.sha256((formats_dir / "iris.joblib").read_bytes()).hexdigest()
    assert manifest["feature_names"] == FEATURES
    assert manifest["classes"] == ["setosa", "versicolor", "virginica"]
    assert manifest["model_version"] == "2026-11" and manifest["format"] == "onnx"
    assert manifest["estimator"] == "RandomForestClassifier" and manifest["task"] == "classification"
    assert {"sklearn_version", "python_version", "created_at"} <= set(manifest)
    assert manifest["input_schema"] == {
        "layout": "array", "columns": [{"name": name, "type": "number", "nullable": False} for name in FEATURES]}


def test_export_to_skops_says_which_types_to_trust(formats_dir, tmp_path):
    model = tmp_path / "iris.pkl"
    shutil.copy(formats_dir / "iris.joblib", model)
    done = export(model, "skops")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["serve_with"] == {"SKOPS_TRUSTED_TYPES": "sklearn.tree._tree.Tree"}
    assert (tmp_path / "iris.skops").is_file() and (tmp_path / "iris.skops.manifest.json").is_file()
    # the forest takes NaN (its allow_nan tag), and so does its skops file, unlike its ONNX graph
    manifest = json.loads((tmp_path / "iris.skops.manifest.json").read_text())
    assert manifest["input_schema"]["columns"] == [{"name": name, "type": "number", "nullable": True} for name in FEATURES]


def test_export_errors_say_what_was_expected(formats_dir, tmp_path):
    wrong_suffix = export(formats_dir / "iris.joblib", "onnx", "--out", str(tmp_path / "model.bin"))
    assert wrong_suffix.returncode == 2
    assert "--out 'model.bin' must end with .onnx for --to onnx" in wrong_suffix.stderr
    from_onnx = export(formats_dir / "iris.onnx", "skops")
    assert from_onnx.returncode == 2 and "is not a scikit-learn model file" in from_onnx.stderr
    missing = export(tmp_path / "absent.joblib", "onnx")
    assert missing.returncode == 2 and "absent.joblib does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr + from_onnx.stderr + wrong_suffix.stderr
