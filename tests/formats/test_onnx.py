"""ONNX models: the same JSON as the scikit-learn path, through the real local endpoint, and a
process that never imports scikit-learn, SciPy, pandas or joblib."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.formats.format_support import FEATURES, iris_rows
from tests.support import answer, isolated_env, make_service, post_json, start_endpoint, stop_endpoint

ROWS = iris_rows()[::7]  # 22 rows over the three classes


@pytest.fixture(scope="module")
def served(formats_dir, tmp_path_factory):
    """One real endpoint per model file, started lazily and stopped at the end."""
    endpoints = {}

    def endpoint(file_name: str):
        if file_name not in endpoints:
            endpoints[file_name] = start_endpoint(
                tmp_path_factory.mktemp("endpoint"), {"MODEL_URI": (formats_dir / file_name).as_uri(), "LOG_LEVEL": "WARNING"})
        return endpoints[file_name]

    yield endpoint
    for ep in endpoints.values():
        stop_endpoint(ep)


def predict_over_http(endpoint, body) -> dict:
    status, _, raw = endpoint.post_json(body)
    assert status == 200, raw
    return json.loads(raw)


@pytest.mark.parametrize("onnx_file", ["iris.onnx", "iris-zipmap.onnx", "iris-nozipmap.onnx"])
def test_onnx_answers_what_scikit_learn_answers(served, onnx_file):
    body = {"instances": ROWS.tolist()}
    expected = predict_over_http(served("iris.joblib"), body)
    got = predict_over_http(served(onnx_file), body)
    assert set(got) == set(expected)
    assert got["predictions"] == expected["predictions"]
    assert got["classes"] == expected["classes"] == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=0, atol=1e-5)


def test_named_rows_need_the_manifest_or_get_generated_names(served):
    named = {"instances": [dict(zip(FEATURES, row, strict=True)) for row in ROWS[:3].tolist()]}
    with_manifest = predict_over_http(served("iris.onnx"), named)
    assert with_manifest["predictions"] == predict_over_http(served("iris.joblib"), named)["predictions"]

    status, _, raw = served("iris-zipmap.onnx").post_json(named)  # no manifest: f0..f3
    assert status == 400
    assert json.loads(raw)["error"]["code"] == "invalid_features"
    generated = {"instances": [{f"f{i}": v for i, v in enumerate(row)} for row in ROWS[:3].tolist()]}
    assert predict_over_http(served("iris-zipmap.onnx"), generated)["predictions"] == with_manifest["predictions"]


def test_model_route_describes_the_onnx_model_and_its_manifest(served, formats_dir):
    status, _, raw = served("iris.onnx").request("GET", "/model")
    info = json.loads(raw)
    assert status == 200
    assert info["format"] == "onnx"
    assert info["feature_names"] == FEATURES and info["feature_names_source"] == "manifest"
    assert info["classes"] == ["setosa", "versicolor", "virginica"]
    assert info["estimator"] == "RandomForestClassifier"
    manifest = json.loads((formats_dir / "iris.onnx.manifest.json").read_text())
    assert info["manifest"] == manifest
    assert manifest["sha256"] == info["sha256"]

    bare = json.loads(served("iris-nozipmap.onnx").request("GET", "/model")[2])
    assert bare["manifest"] is None
    assert bare["feature_names"] == ["f0", "f1", "f2", "f3"] and bare["feature_names_source"] == "generated"
    assert bare["classes"] == ["setosa", "versicolor", "virginica"]  # read from the graph itself
    assert bare["estimator"] == "TreeEnsembleClassifier (ONNX)"


def test_regressor_predictions_agree_with_scikit_learn(formats_dir):
    rows = iris_rows()[::5, :3].tolist()
    expected = answer(post_json(make_service((formats_dir / "petal-width.joblib").as_uri()), {"instances": rows}))
    got = answer(post_json(make_service((formats_dir / "petal-width.onnx").as_uri()), {"instances": rows}))
    assert "probabilities" not in got and "classes" not in got
    assert all(isinstance(v, float) for v in got["predictions"])  # one value per row, not [value]
    np.testing.assert_allclose(got["predictions"], expected["predictions"], rtol=1e-5, atol=1e-5)


def test_one_input_per_feature_gives_the_feature_names(tmp_path):
    """A graph with one [N, 1] input per column (what skl2onnx makes of DataFrame columns)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    X = iris_rows()
    model = make_pipeline(ColumnTransformer([("keep", "passthrough", [0, 1])]), LinearRegression()).fit(X[:, :2], X[:, 3])
    onx = to_onnx(model, initial_types=[("width", FloatTensorType([None, 1])), ("length", FloatTensorType([None, 1]))],
                  target_opset={"": 17, "ai.onnx.ml": 3})
    path = tmp_path / "two-inputs.onnx"
    path.write_bytes(onx.SerializeToString())
    service = make_service(path.as_uri())
    got = answer(post_json(service, {"instances": [{"length": 3.5, "width": 5.1}]}))
    expected = model.predict(np.array([[5.1, 3.5]]))
    assert got["predictions"] == pytest.approx(expected.tolist(), abs=1e-5)
    info = answer(_get(service, "/model"))
    assert info["feature_names"] == ["width", "length"] and info["feature_names_source"] == "model"


def _get(service, path):
    from core.http import HttpRequest

    return service.handle(HttpRequest("GET", path))


def run_fresh(code: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=isolated_env(**env))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_serving_onnx_never_imports_scikit_learn_scipy_pandas_or_joblib(formats_dir):
    outcome = run_fresh(
        """
        import json, sys
        from core.http import HttpRequest
        from core.runtime import service
        body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
        response = service().handle(HttpRequest("POST", "/predict", {"content-type": "application/json"}, body))
        info = service().handle(HttpRequest("GET", "/model"))
        print(json.dumps({"status": response.status, "body": json.loads(response.body),
                          "format": json.loads(info.body)["format"],
                          "loaded": sorted(m for m in ("sklearn", "scipy", "pandas", "joblib", "onnx")
                                           if m in sys.modules),
                          "onnxruntime": "onnxruntime" in sys.modules}))
        """,
        MODEL_URI=(formats_dir / "iris.onnx").as_uri(), LOG_LEVEL="ERROR",
    )
    assert outcome["status"] == 200, outcome
    assert outcome["body"]["predictions"] == ["setosa"]
    assert outcome["format"] == "onnx" and outcome["onnxruntime"] is True
    assert outcome["loaded"] == []


BLOCK = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {module!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize("file_name, module, extra", [("iris.onnx", "onnxruntime", "serverless-ml[onnx]"),
                                                       ("iris.skops", "skops", "serverless-ml[skops]")])
def test_a_missing_runtime_is_a_503_naming_the_extra(formats_dir, file_name, module, extra):
    outcome = run_fresh(
        BLOCK.format(module=module) + textwrap.dedent(
            """
            import json
            from core.http import HttpRequest
            from core.runtime import service
            body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
            response = service().handle(HttpRequest("POST", "/predict", {"content-type": "application/json"}, body))
            print(json.dumps({"status": response.status, "body": json.loads(response.body)}))
            """),
        MODEL_URI=(formats_dir / file_name).as_uri(), LOG_LEVEL="CRITICAL",
        SKOPS_TRUSTED_TYPES="sklearn.tree._tree.Tree",
    )
    assert outcome["status"] == 503
    assert outcome["body"]["error"]["code"] == "model_unavailable"
    assert f"pip install '{extra}'" in outcome["body"]["error"]["message"]
    assert module in outcome["body"]["error"]["message"]


def test_a_file_onnxruntime_cannot_load_is_503(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07garbage that is not a graph")
    response = post_json(make_service(path.as_uri()), {"features": [1.0, 2.0, 3.0, 4.0]})
    assert response.status == 503
    error = answer(response)["error"]
    assert error["code"] == "model_invalid"
    assert "could not be loaded by onnxruntime" in error["message"] and "file://.../model.onnx" in error["message"]
    assert str(tmp_path) not in response.body.decode()
