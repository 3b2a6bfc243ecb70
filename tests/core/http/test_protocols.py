"""The inference protocols clients already speak, through clients no one here wrote: the Triton
HTTP client (Open Inference Protocol v2, binary data by default) against `serverless-ml serve`
and against functions-framework's server; KServe's InferenceRESTClient against `serverless-ml
serve` (from the KServe venv the Makefile builds, .venv-kserve); MLflow's /invocations request
forms (JSON and CSV). Answers are compared with the model's own predict/predict_proba."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import joblib
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from core.http import HttpRequest
from tests.gcp_parts import start_function
from tests.support import make_service, stop_process

NAME = "iris-random-forest"  # the demo model's file name without its extension
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
X = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])
# the demo model has feature names; the direct model.predict(X) calls here pass an array
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.fixture(scope="module")
def gcp_function(tmp_path_factory, demo_model_uri):
    server = start_function(tmp_path_factory.mktemp("oip-gcp"), {"MODEL_URI": demo_model_uri, "MAX_ROWS": "50"})
    yield server
    stop_process(server.process)


@pytest.fixture(params=["serve", "functions-framework"])
def server(request, endpoint, gcp_function):
    return endpoint if request.param == "serve" else gcp_function


def client_of(server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=30)


def test_triton_client_health_metadata_and_binary_infer(server, demo_model_path):
    model = joblib.load(demo_model_path)
    client = client_of(server)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(NAME)
    metadata = client.get_model_metadata(NAME)
    assert [i["name"] for i in metadata["inputs"]] == FEATURES
    assert metadata["outputs"][1]["parameters"]["classes"] == model.classes_.tolist()

    tensor = triton.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X, binary_data=True)
    outputs = [triton.InferRequestedOutput("predict", binary_data=True),
               triton.InferRequestedOutput("predict_proba", binary_data=True)]
    result = client.infer(NAME, [tensor], outputs=outputs, request_id="oip-1")
    assert [label.decode() for label in result.as_numpy("predict")] == model.predict(X).tolist()
    assert np.array_equal(result.as_numpy("predict_proba"), model.predict_proba(X))
    assert result.get_response()["id"] == "oip-1"


def test_triton_client_one_json_tensor_per_column_and_only_the_outputs_asked(server, demo_model_path):
    model = joblib.load(demo_model_path)
    client = client_of(server)
    tensors = []
    for j, name in enumerate(FEATURES):
        tensor = triton.InferInput(name, [len(X)], "FP32")
        tensor.set_data_from_numpy(X[:, j].astype(np.float32), binary_data=False)
        tensors.append(tensor)
    result = client.infer(NAME, tensors, outputs=[triton.InferRequestedOutput("predict_proba", binary_data=False)])
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["predict_proba"]
    expected = model.predict_proba(X.astype(np.float32).astype(np.float64))
    assert np.allclose(np.array(response["outputs"][0]["data"]).reshape(expected.shape), expected, rtol=0, atol=1e-12)


def test_protocol_errors_name_what_is_wrong(server):
    client = client_of(server)
    tensor = triton.InferInput("input-0", [1, 3], "FP64")
    tensor.set_data_from_numpy(np.ones((1, 3)), binary_data=True)
    with pytest.raises(InferenceServerException, match=r"\[400\] input 'input-0' has shape \[1, 3\]; expected \[rows, 4\]"):
        client.infer(NAME, [tensor])
    with pytest.raises(InferenceServerException, match=r"\[404\] no model named 'other'; this deployment serves"):
        client.infer("other", [tensor])
    status, _, body = server.request("POST", f"/v2/models/{NAME}/infer", json.dumps(
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, "x"]}]}).encode(),
        {"Content-Type": "application/json"})
    assert (status, json.loads(body)) == (400, {"error": "input 'input-0' is FP64; expected its data as numbers"})
    too_many = np.ones((51, 4))
    status, _, body = server.request("POST", f"/v2/models/{NAME}/infer", json.dumps(
        {"inputs": [{"name": "input-0", "shape": [51, 4], "datatype": "FP64", "data": too_many.ravel().tolist()}]}).encode())
    assert status == 413 and "MAX_ROWS" in json.loads(body)["error"]


def test_a_request_over_the_protocol_writes_the_same_log_line(endpoint):
    status, headers, _ = endpoint.request("POST", f"/v2/models/{NAME}/infer", json.dumps(
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": X[0].tolist()}]}).encode(),
        {"X-Request-Id": "oip-log-1"})
    assert status == 200 and headers["x-request-id"] == "oip-log-1"
    (line,) = [line for line in endpoint.log_lines() if line.get("request_id") == "oip-log-1"]
    assert (line["route"], line["status"], line["rows"]) == ("/v2/models/{name}/infer", 200, 1)


# --- KServe's REST client ------------------------------------------------------------------------

KSERVE_HINT = "make .venv-kserve/.installed (or set KSERVE_PYTHON to a Python with kserve installed)"


def kserve_python() -> str:
    """KSERVE_PYTHON, else the Makefile's .venv-kserve: kserve pins pandas<3, so it is not in the
    test venv. Missing, the test is skipped with the command that installs it, except in CI."""
    configured = os.environ.get("KSERVE_PYTHON")
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / ".venv-kserve" / "bin" / "python"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"KServe's client is not installed at {path}: {KSERVE_HINT}")
        pytest.skip(f"KServe's client is not installed at {path}: {KSERVE_HINT}")
    return str(path)


def test_kserve_rest_client_health_binary_and_json_infer(server, demo_model_path):
    script = Path(__file__).with_name("kserve_client.py")
    done = subprocess.run([kserve_python(), str(script), server.url, NAME], input=json.dumps(X.tolist()),
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    model = joblib.load(demo_model_path)
    assert (seen["live"], seen["ready"], seen["model_ready"], seen["other_model_ready"]) == (True, True, True, False)
    for kind in ("binary", "json"):
        assert seen[kind]["predict"] == model.predict(X).tolist(), kind
        assert np.array_equal(np.asarray(seen[kind]["predict_proba"]), model.predict_proba(X)), kind
    assert (seen["binary_id"], seen["json_id"]) == ("kserve-binary", "kserve-json")
    assert "no model named 'other'; this deployment serves 'iris-random-forest'" in seen["other_error"]
    assert "404" in seen["other_error"]


# --- MLflow's scoring server contract ----------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": FEATURES, "data": X.tolist()}},
    {"dataframe_records": [dict(zip(FEATURES, row, strict=True)) for row in X.tolist()]},
    {"instances": X.tolist()},
    {"inputs": X.tolist(), "params": {"ignored": True}},
])
def test_invocations_takes_mlflows_json_forms(server, demo_model_path, body):
    status, _, raw = server.request("POST", "/invocations", json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert (status, json.loads(raw)) == (200, {"predictions": joblib.load(demo_model_path).predict(X).tolist()})


def test_invocations_takes_csv_with_a_header_and_refuses_a_bad_cell(server, demo_model_path):
    csv_body = ("petal_width,sepal_length,sepal_width,petal_length\n"
                + "\n".join(f"{r[3]},{r[0]},{r[1]},{r[2]}" for r in X.tolist()) + "\n").encode()
    status, _, raw = server.request("POST", "/invocations", csv_body, {"Content-Type": "text/csv"})
    assert (status, json.loads(raw)) == (200, {"predictions": joblib.load(demo_model_path).predict(X).tolist()})
    status, _, raw = server.request("POST", "/invocations", b"sepal_length,sepal_width,petal_length,petal_width\n5.1,x,1,1\n",
                                    {"Content-Type": "text/csv"})
    assert status == 400
    assert json.loads(raw) == {"error_code": "BAD_REQUEST",
                               "message": "the CSV body: line 2, column 'sepal_width' is the string 'x'; expected a number"}


def test_ping_answers_once_the_model_can_be_served(server):
    status, _, body = server.request("GET", "/ping")
    assert (status, body) == (200, b"\n")


# --- what the protocol refuses, and how (in process, through service.handle) ---------------------


def infer(service, body, headers=None, name: str = NAME):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = service.handle(HttpRequest("POST", f"/v2/models/{name}/infer", headers=headers or {}, body=raw))
    return response.status, response.headers, response.body


def tensor(name="input-0", shape=(1, 4), datatype="FP64", data=(5.1, 3.5, 1.4, 0.2), **extra):
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": list(data), **extra}


@pytest.fixture(scope="module")
def plain_service(tmp_path_factory):
    """A model of plain numbers (no missing value taken): its rows are one float matrix."""
    from sklearn.linear_model import LogisticRegression

    path = tmp_path_factory.mktemp("plain") / "plain.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(X.repeat(2, axis=0), [0, 1, 2] * 2), path)
    return make_service(path.as_uri(), MODEL_NAME=NAME)


@pytest.mark.parametrize("body, message", [
    ({"inputs": [tensor(data=[True, False, True, True], datatype="BOOL")]},
     "input 'input-0' is BOOL; column 'sepal_length' takes numbers (FP64, FP32 or an integer datatype)"),
    ({"inputs": [tensor(data=["5.1", "3.5", "1.4", "0.2"], datatype="BYTES")]}, "input 'input-0' is BYTES"),
    ({"inputs": [tensor(shape=[0, 4], data=[])]}, "input 'input-0' has shape [0, 4]; expected at least one row"),
    ({"inputs": [tensor(name=n, shape=[1], data=[1.0]) for n in FEATURES[:3] + FEATURES[:1]]},
     "input tensors named twice: 'sepal_length'"),
    ({"inputs": [tensor(name=n, shape=[1], data=[True], datatype="BOOL") for n in FEATURES]},
     "input 'sepal_length' is BOOL; it takes numbers"),
    ({"inputs": [tensor(data=[[[5.1, 3.5, 1.4, 0.2]]])]}, "input 'input-0' has data nested more than 2 levels deep"),
])
def test_a_wrong_datatype_or_shape_is_a_400_naming_the_tensor(service, body, message):
    status, headers, raw = infer(service, body)
    assert (status, headers["cache-control"]) == (400, "no-store")
    assert json.loads(raw)["error"].startswith(message), raw


def test_data_nested_a_thousand_levels_deep_is_a_400_not_a_server_error(service):
    deep = b'{"inputs": [{"name": "sepal_length", "shape": [1], "datatype": "FP64", "data": ' + b"[" * 1000 + b"1" \
        + b"]" * 1000 + b"}]}"
    status, _, raw = infer(service, deep)
    assert status == 400 and "nested more than 1 level deep" in json.loads(raw)["error"]


def test_a_plain_numeric_model_refuses_what_predict_refuses(plain_service):
    huge = b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1' + b"0" * 400 \
        + b', 1, 1, 1]}]}'
    status, _, raw = infer(plain_service, huge)
    assert (status, json.loads(raw)) == (400, {"error": "input 'input-0' holds a number outside the 64-bit float range; "
                                                        "expected finite numbers"})
    header = json.dumps({"inputs": [tensor(data=(), parameters={"binary_data_size": 32})]}).encode()
    status, _, raw = infer(plain_service, header + np.array([1.0, np.nan, 1.0, 1.0]).tobytes(),
                           {"Inference-Header-Content-Length": str(len(header))})
    assert (status, json.loads(raw)) == (400, {"error": "input 'input-0' holds nan at [0, 1]; expected finite numbers"})


def test_nan_is_a_missing_value_where_the_model_takes_one(service, demo_model_path):
    """The demo forest takes missing values: NaN in a binary tensor is one, as null is in /predict."""
    rows = X.copy()
    rows[1, 2] = np.nan
    header = json.dumps({"inputs": [tensor(shape=rows.shape, data=(), parameters={"binary_data_size": rows.size * 8})],
                         "outputs": [{"name": "predict"}]}).encode()
    status, _, raw = infer(service, header + rows.tobytes(), {"Inference-Header-Content-Length": str(len(header))})
    assert status == 200
    assert json.loads(raw)["outputs"][0]["data"] == joblib.load(demo_model_path).predict(rows).tolist()
    rows[1, 2] = np.inf
    status, _, raw = infer(service, header + rows.tobytes(), {"Inference-Header-Content-Length": str(len(header))})
    assert (status, json.loads(raw)) == (
        400, {"error": "input 'input-0' holds inf at [1, 2]; expected finite numbers (NaN for a missing value)"})


def test_answers_are_never_cached_and_a_503_says_when_to_retry(tmp_path):
    missing = make_service((tmp_path / "absent.joblib").as_uri(), MODEL_NAME=NAME)
    for path in (f"/v2/models/{NAME}", "/v2/health/ready"):
        response = missing.handle(HttpRequest("GET", path))
        assert (response.status, response.headers["retry-after"], response.headers["cache-control"]) == (503, "5", "no-store")
    status, headers, _ = infer(missing, {"inputs": [tensor()]})
    assert (status, headers["retry-after"]) == (503, "5")


def test_a_percent_encoded_version_is_the_version(service):
    """A client that encodes the ':' of a digest version (%3A) reaches the same model version."""
    from urllib.parse import quote

    version = json.loads(service.handle(HttpRequest("GET", "/model")).body)["model_version"]
    assert ":" in version
    response = service.handle(HttpRequest("GET", f"/v2/models/{NAME}/versions/{quote(version, safe='')}/ready"))
    assert (response.status, json.loads(response.body)) == (200, {"name": NAME, "ready": True})
    response = service.handle(HttpRequest("GET", f"/v2/models/{NAME}/versions/sha256%3A0/ready"))
    assert response.status == 404 and "has no version 'sha256:0'" in json.loads(response.body)["error"]
