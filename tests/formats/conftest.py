"""Model files of every format, made from the demo classifier and a regressor with the real
exporters: `serverless-ml export` (writes a manifest) and skl2onnx directly (no manifest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.formats.format_support import export, iris_rows


@pytest.fixture(scope="session")
def formats_dir(tmp_path_factory, demo_model_path) -> Path:
    """The demo forest as .joblib, as exported .onnx and .skops (with manifests), and as .onnx
    written by skl2onnx directly with and without ZipMap (no manifest); a regressor likewise."""
    import shutil

    import joblib
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestRegressor

    folder = tmp_path_factory.mktemp("formats")
    forest_path = folder / "iris.joblib"
    shutil.copy(demo_model_path, forest_path)
    for to in ("onnx", "skops"):
        done = export(forest_path, to)
        assert done.returncode == 0, done.stderr

    forest = joblib.load(forest_path)
    sample = iris_rows()[:1].astype(np.float32)
    for name, options in (("iris-zipmap.onnx", None), ("iris-nozipmap.onnx", {id(forest): {"zipmap": False}})):
        (folder / name).write_bytes(to_onnx(forest, sample, options=options, target_opset={"": 17, "ai.onnx.ml": 3}).SerializeToString())

    X = iris_rows()
    regressor = RandomForestRegressor(n_estimators=20, random_state=0).fit(X[:, :3], X[:, 3])
    joblib.dump(regressor, folder / "petal-width.joblib")
    (folder / "petal-width.onnx").write_bytes(
        to_onnx(regressor, X[:1, :3].astype(np.float32), target_opset={"": 17, "ai.onnx.ml": 3}).SerializeToString())
    return folder
