"""core/http/openapi.json describes the HTTP API exactly as PredictionService answers it.

The other protocols on the same service (the Open Inference Protocol v2 under /v2, MLflow's
/invocations and /ping) are held to it the same way, each error in its protocol's own shape.

Every route and every status the service can give is driven through ``service.handle`` over real
models on disk; each answer must be documented for its (path, method, status), its body must
validate against the documented schema, and every header it carries must be documented for it.
The other direction holds too: every documented (path, method, status) is produced by some call
here, and every ``code`` the Error schema lists is one the service answers.
"""

from __future__ import annotations

import json
import operator
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

import core.errors
import core.http.service
from core.http import HttpRequest, HttpResponse, PredictionService
from core.http.local_server import make_server
from core.model import ModelHolder
from core.settings import Settings
from tests.typed_models import PASSENGER

# a float that is finite in float64 overflows to infinity in the trees' float32 (the prediction_rejected call)
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

DOC_BYTES = Path(core.http.service.OPENAPI_PATH).read_bytes()
DOC = json.loads(DOC_BYTES)
DOC_URI = "urn:serverless-ml:openapi.json"
REGISTRY = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(DOC))

OAS_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "TRACE", "OPTIONS")
# every service here serves its model under this name and version (MODEL_NAME, MODEL_VERSION)
NAME, VERSION = "iris", "iris-1"
V2 = f"/v2/models/{NAME}"
V2_VERSION = f"{V2}/versions/{VERSION}"
# The routes as the service implements them (deliberately not read from the document).
ROUTES = {
    "/predict": {"POST"}, "/health": {"GET"}, "/model": {"GET"}, "/openapi.json": {"GET"},
    "/v2": {"GET"}, "/v2/health/live": {"GET"}, "/v2/health/ready": {"GET"},
    V2: {"GET"}, f"{V2}/ready": {"GET"}, f"{V2}/infer": {"POST"},
    V2_VERSION: {"GET"}, f"{V2_VERSION}/ready": {"GET"}, f"{V2_VERSION}/infer": {"POST"},
    "/invocations": {"POST"}, "/ping": {"GET"},
}
ORIGIN = "https://app.example.com"

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
ROW = [5.1, 3.5, 1.4, 0.2]
ROW2 = [6.7, 3.0, 5.2, 2.3]
OBJ = dict(zip(FEATURES, ROW, strict=True))
OBJ2 = dict(zip(FEATURES, ROW2, strict=True))

# Codes of core/errors.py that no HTTP answer carries, and why.
NOT_ANSWERED = {
    "invalid_setting": "raised at start, before any request",
    "storage_unavailable": "a failed model read is answered as model_unavailable",
    "object_not_found": "a failed model read is answered as model_unavailable",
    "access_denied": "a failed model read is answered as model_unavailable",
    "storage_timeout": "a failed model read is answered as model_unavailable",
    "batch_output_failed": "batch only (core/batch/output_writer.py): it fails a run, never a request",
    "object_superseded": "a model blob replaced while read is answered as model_unavailable; in batch a skip",
    "precondition_failed": "batch only (core/batch/publish.py): a conditional write of an output, looked at again",
    "batch_time_limit": "batch only (core/batch/deadline.py): a run stopped before its invocation's time limit",
    "orchestrator_unavailable": "batch only (aws_lambda/step_functions.py): a fan-out that could not be started, retried",
}
# Codes only the local server's front end answers (it cannot read the body); see the test below.
LOCAL_SERVER_CODES = {"bad_request"}
# answered only for a model this file's calls do not load: asserted where it is (code: where)
ANSWERED_ELSEWHERE = {"model_scratch_full": "a large remote model: tests/core/model/test_large_models.py"}


# --- the calls ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    id: str
    method: str
    path: str
    status: int
    code: str | None = None
    body: Any = b""  # bytes as sent; anything else is sent as JSON
    content_type: str | None = "application/json"
    service: str = "iris"  # a key of SERVICE_KINDS
    before: tuple[tuple[str, str], ...] = ()  # (method, path) calls made first on the same service
    request_valid: bool | None = None  # whether the body must (not) validate as PredictRequest
    request_id: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # more request headers

    @property
    def raw_body(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


def ok(id: str, body: Any, **kw: Any) -> Call:
    return Call(id, "POST", "/predict", 200, body=body, request_valid=True, **kw)


def bad(id: str, code: str, body: Any, request_valid: bool | None = None, **kw: Any) -> Call:
    return Call(id, "POST", "/predict", 400, code, body=body, request_valid=request_valid, **kw)


def tensor_body(**outputs: bool) -> dict:
    """An infer request of the two rows as one 2-D tensor, each named output as JSON or binary."""
    body: dict[str, Any] = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": ROW + ROW2}]}
    if outputs:
        body["outputs"] = [{"name": name, "parameters": {"binary_data": binary}} for name, binary in outputs.items()]
    return body


def binary_infer(rows: list[list[float]], **outputs: bool) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """The binary-data extension: the JSON header, then the rows as little-endian float64."""
    header = json.dumps({
        "inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64",
                    "parameters": {"binary_data_size": 32 * len(rows)}}],
        "outputs": [{"name": name, "parameters": {"binary_data": binary}} for name, binary in outputs.items()],
    }).encode()
    return header + np.asarray(rows, dtype="<f8").tobytes(), (("Inference-Header-Content-Length", str(len(header))),)


BINARY_BODY, BINARY_HEADERS = binary_infer([ROW, ROW2], predict=True, predict_proba=True)
PER_COLUMN = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in OBJ.items()]}


def oip_reads(path: str) -> list[Call]:
    """GET and HEAD of one of the protocol's model routes: served, unknown name, model missing, failing."""
    other = path.replace(f"/models/{NAME}", "/models/other")
    slug = path.replace("/", "-").strip("-")
    calls = []
    for method in ("GET", "HEAD"):
        low = method.lower()
        calls += [
            Call(f"{low}-{slug}", method, path, 200),
            Call(f"{low}-{slug}-other-name", method, other, 404),
            Call(f"{low}-{slug}-missing", method, path, 503, service="missing"),
            Call(f"{low}-{slug}-failing", method, path, 500, "internal_error", service="failing"),
        ]
        if "/versions/" in path:
            calls.append(Call(f"{low}-{slug}-other-version", method, path.replace(VERSION, "iris-0"), 404))
    return calls


def oip_infers(path: str) -> list[Call]:
    slug = path.replace("/", "-").strip("-")
    post = lambda id, status, body=b"", **kw: Call(f"{slug}-{id}", "POST", path, status, body=body, **kw)  # noqa: E731
    return [
        post("matrix", 200, tensor_body()),
        post("per-column", 200, PER_COLUMN),
        post("asked-outputs", 200, tensor_body(predict_proba=False)),
        post("binary", 200, BINARY_BODY, headers=BINARY_HEADERS, content_type="application/octet-stream"),
        post("binary-in-json-out", 200, binary_infer([ROW])[0], headers=binary_infer([ROW])[1], content_type=None),
        post("wrong-width", 400, {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": ROW[:3]}]}),
        post("bool-tensor", 400, {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "BOOL",
                                              "data": [True] * 4}]}),
        post("not-json", 400, b"{"),
        post("unknown-output", 400, {**tensor_body(), "outputs": [{"name": "transform"}]}),
        Call(f"{slug}-other-name", "POST", path.replace(f"/models/{NAME}", "/models/other"), 404, body=tensor_body()),
        post("too-many-rows", 413, {"inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP64",
                                                "data": ROW * 3}]}, service="limits"),
        post("too-many-bytes", 413, {**tensor_body(), "padding": "x" * 300}, service="limits"),
        post("model-fails", 500, {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                                              "data": [1, 2, 3]}]}, service="broken"),
        post("internal", 500, tensor_body(), code="internal_error", service="failing"),
        post("missing", 503, tensor_body(), service="missing"),
    ]


OIP_CALLS: list[Call] = [
    Call("v2", "GET", "/v2", 200),
    Call("head-v2", "HEAD", "/v2", 200),
    Call("v2-live", "GET", "/v2/health/live", 200),
    Call("head-v2-live", "HEAD", "/v2/health/live", 200),
    Call("v2-live-missing", "GET", "/v2/health/live", 200, service="missing"),
    *[Call(f"{method.lower()}-v2-ready{suffix}", method, "/v2/health/ready", status, service=service)
      for method in ("GET", "HEAD")
      for suffix, status, service in (("", 200, "iris"), ("-missing", 503, "missing"), ("-failing", 500, "failing"))],
    *[call for path in (V2, V2_VERSION, f"{V2}/ready", f"{V2_VERSION}/ready") for call in oip_reads(path)],
    *[call for path in (f"{V2}/infer", f"{V2_VERSION}/infer") for call in oip_infers(path)],
    Call("v2-unknown-path", "GET", "/v2/nowhere", 404),
    Call("head-v2-unknown-path", "HEAD", "/v2/nowhere", 404),
    Call("v2-too-deep", "GET", f"{V2}/ready/x", 404),
]
CSV_BODY = ",".join(FEATURES) + "\n" + ",".join(map(str, ROW)) + "\n" + ",".join(map(str, ROW2)) + "\n"
MLFLOW_CALLS: list[Call] = [
    Call("invocations-split", "POST", "/invocations", 200, body={"dataframe_split": {"columns": list(FEATURES),
                                                                                  "data": [ROW, ROW2]}}),
    Call("invocations-records", "POST", "/invocations", 200, body={"dataframe_records": [OBJ, OBJ2]}),
    Call("invocations-inputs-params", "POST", "/invocations", 200, body={"inputs": [ROW], "params": {"x": 1}}),
    Call("invocations-no-content-type", "POST", "/invocations", 200, body={"instances": [ROW]}, content_type=None),
    Call("invocations-csv", "POST", "/invocations", 200, body=CSV_BODY.encode(), content_type="text/csv"),
    Call("invocations-csv-charset", "POST", "/invocations", 200, body=CSV_BODY.encode(),
         content_type="text/csv; charset=utf-8"),
    Call("invocations-bad-json", "POST", "/invocations", 400, body=b"{"),
    Call("invocations-bad-cell", "POST", "/invocations", 400, body=b"sepal_length,sepal_width,petal_length,petal_width\n"
         b"5.1,x,1,1\n", content_type="text/csv"),
    Call("invocations-csv-header-only", "POST", "/invocations", 400, body=",".join(FEATURES).encode() + b"\n",
         content_type="text/csv"),
    Call("invocations-too-many-rows", "POST", "/invocations", 413, body={"instances": [ROW] * 3}, service="limits"),
    Call("invocations-csv-too-many-rows", "POST", "/invocations", 413, service="limits",
         body=(",".join(FEATURES) + "\n" + "1,2,3,4\n" * 3).encode(), content_type="text/csv"),
    Call("invocations-text-plain", "POST", "/invocations", 415, body={"instances": [ROW]}, content_type="text/plain"),
    Call("invocations-model-fails", "POST", "/invocations", 500, body={"instances": [[1, 2, 3]]}, service="broken"),
    Call("invocations-internal", "POST", "/invocations", 500, "internal_error", body={"instances": [ROW]},
         service="failing"),
    Call("invocations-missing", "POST", "/invocations", 503, body={"instances": [ROW]}, service="missing"),
    Call("ping", "GET", "/ping", 200),
    Call("head-ping", "HEAD", "/ping", 200),
    Call("ping-missing", "GET", "/ping", 503, service="missing"),
    Call("head-ping-missing", "HEAD", "/ping", 503, service="missing"),
    Call("ping-failing", "GET", "/ping", 500, "internal_error", service="failing"),
    Call("head-ping-failing", "HEAD", "/ping", 500, "internal_error", service="failing"),
]

CALLS: list[Call] = [
    # 200: every body form, content types, limits
    ok("instances-arrays", {"instances": [ROW, ROW2]}),
    ok("instances-objects", {"instances": [OBJ, OBJ2]}),
    ok("inputs-arrays", {"inputs": [ROW]}),
    ok("inputs-objects", {"inputs": [OBJ2]}),
    ok("dataframe-split", {"dataframe_split": {"columns": list(reversed(FEATURES)), "data": [ROW[::-1]]}}),
    ok("dataframe-split-with-index", {"dataframe_split": {"index": [0], "columns": list(FEATURES), "data": [ROW]}}),
    ok("dataframe-records", {"dataframe_records": [OBJ, OBJ2]}),
    ok("features", {"features": ROW}),
    ok("features-integers", {"features": [5, 3, 1, 0]}),
    ok("data", {"data": OBJ}),
    ok("other-keys-ignored", {"features": ROW, "parameters": {"x": 1}}),
    ok("no-content-type", {"features": ROW}, content_type=None),
    ok("json-with-charset", {"features": ROW}, content_type="application/json; charset=utf-8"),
    ok("plus-json", {"features": ROW}, content_type="application/vnd.api+json"),
    ok("text-json", {"features": ROW}, content_type="text/json"),
    ok("client-request-id", {"features": ROW}, request_id="req-42"),
    ok("at-the-row-limit", {"instances": [ROW, ROW2]}, service="limits"),
    ok("regressor", {"instances": [[1.0, 2.0, 3.0]]}, service="regressor"),
    ok("regressor-objects", {"dataframe_records": [{"f0": 1, "f1": 2, "f2": 3}]}, service="regressor"),
    Call("trailing-slash", "POST", "/predict/", 200, body={"features": ROW}),
    Call("health-not-loaded", "GET", "/health", 200),
    Call("health-loaded", "GET", "/health", 200, before=(("GET", "/model"),)),
    Call("health-load-failed", "GET", "/health", 200, service="missing", before=(("GET", "/model"),)),
    Call("model", "GET", "/model", 200),
    Call("model-regressor", "GET", "/model", 200, service="regressor"),
    Call("openapi", "GET", "/openapi.json", 200),
    Call("head-health", "HEAD", "/health", 200),
    Call("head-model", "HEAD", "/model", 200),
    Call("head-openapi", "HEAD", "/openapi.json", 200),
    *[Call(f"preflight{path}", "OPTIONS", path, 204) for path in ROUTES],
    # 400 malformed_json
    bad("empty-body", "malformed_json", b""),
    bad("not-json", "malformed_json", b"{"),
    bad("json-array", "malformed_json", [ROW], request_valid=False),
    bad("json-number", "malformed_json", 5, request_valid=False),
    bad("not-utf8", "malformed_json", b"\xff\xfe{}"),
    bad("nan-literal", "malformed_json", b'{"features": [NaN, 1, 2, 3]}'),
    bad("nested-too-deeply", "malformed_json", b"[" * 100_000 + b"]" * 100_000),
    # 400 invalid_shape
    bad("no-body-key", "invalid_shape", {"rows": [ROW]}, request_valid=False),
    bad("two-body-keys", "invalid_shape", {"features": ROW, "data": OBJ}, request_valid=False),
    bad("two-body-keys-one-wrong", "invalid_shape", {"instances": [ROW], "features": "x"}, request_valid=False),
    bad("no-rows", "invalid_shape", {"instances": []}, request_valid=False),
    bad("mixed-rows", "invalid_shape", {"instances": [ROW, OBJ]}, request_valid=False),
    bad("features-not-array", "invalid_shape", {"features": 5}, request_valid=False),
    bad("data-not-object", "invalid_shape", {"data": ROW}, request_valid=False),
    bad("records-as-arrays", "invalid_shape", {"dataframe_records": [ROW]}, request_valid=False),
    bad("split-without-data", "invalid_shape", {"dataframe_split": {"columns": list(FEATURES)}}, request_valid=False),
    # 400 invalid_features
    bad("missing-feature", "invalid_features", {"data": {k: v for k, v in OBJ.items() if k != "petal_width"}}),
    bad("misspelt-feature", "invalid_features", {"data": {**OBJ, "petal_widht": 1.0}}),
    bad("row-too-short", "invalid_features", {"features": ROW[:3]}),
    bad("duplicate-columns", "invalid_features",
        {"dataframe_split": {"columns": ["sepal_length"] * 4, "data": [ROW]}}, request_valid=False),
    # 400 invalid_value
    bad("string-value", "invalid_value", {"features": ["5.1", 3.5, 1.4, 0.2]}, request_valid=False),
    bad("boolean-value", "invalid_value", {"instances": [[True, 3.5, 1.4, 0.2]]}, request_valid=False),
    bad("beyond-float-range", "invalid_value", b'{"features": [1e400, 3.5, 1.4, 0.2]}'),
    # 400 prediction_rejected: finite in float64, infinite in the trees' float32
    bad("model-refuses", "prediction_rejected", {"features": [1e300, 3.5, 1.4, 0.2]}, request_valid=True),
    # --- the Open Inference Protocol v2 ---------------------------------------------------------
    *OIP_CALLS,
    # --- MLflow's scoring server ------------------------------------------------------------------
    *MLFLOW_CALLS,
    # 404: any path not documented, whatever the method
    Call("unknown-path", "GET", "/nowhere", 404, "not_found"),
    Call("root", "HEAD", "/", 404, "not_found"),
    Call("wrong-case", "POST", "/PREDICT", 404, "not_found", body={"features": ROW}),
    Call("below-a-route", "DELETE", "/predict/x", 404, "not_found"),
    Call("preflight-unknown", "OPTIONS", "/nowhere", 404, "not_found"),
    # 405: every method OpenAPI can name that a route does not take
    *[
        Call(f"{method.lower()}{path}", method, path, 405, None if path.startswith("/v2") else "method_not_allowed")
        for path, allowed in ROUTES.items()
        for method in OAS_METHODS
        if method not in allowed | {"OPTIONS"} and not (method == "HEAD" and "GET" in allowed)
    ],
    # 413
    Call("too-many-rows", "POST", "/predict", 413, "payload_too_large", body={"instances": [ROW, ROW, ROW]},
         service="limits", request_valid=True),
    Call("too-many-split-rows", "POST", "/predict", 413, "payload_too_large", service="limits",
         body={"dataframe_split": {"columns": list(FEATURES), "data": [ROW, ROW, ROW]}}),
    Call("too-many-bytes", "POST", "/predict", 413, "payload_too_large", service="limits",
         body={"features": ROW, "padding": "x" * 300}),
    # 415
    Call("text-plain", "POST", "/predict", 415, "unsupported_media_type", body={"features": ROW},
         content_type="text/plain"),
    Call("form", "POST", "/predict", 415, "unsupported_media_type", body=b"a=1",
         content_type="application/x-www-form-urlencoded"),
    # 500
    Call("model-fails", "POST", "/predict", 500, "prediction_failed", body={"features": [1, 2, 3]}, service="broken"),
    Call("internal-predict", "POST", "/predict", 500, "internal_error", body={"features": ROW}, service="failing"),
    Call("internal-health", "GET", "/health", 500, "internal_error", service="failing"),
    Call("internal-head-health", "HEAD", "/health", 500, "internal_error", service="failing"),
    Call("internal-model", "GET", "/model", 500, "internal_error", service="failing"),
    Call("internal-head-model", "HEAD", "/model", 500, "internal_error", service="failing"),
    Call("internal-openapi", "GET", "/openapi.json", 500, "internal_error", service="no_document"),
    Call("internal-head-openapi", "HEAD", "/openapi.json", 500, "internal_error", service="no_document"),
    # 503
    Call("model-missing", "POST", "/predict", 503, "model_unavailable", body={"features": ROW}, service="missing"),
    Call("model-missing-info", "GET", "/model", 503, "model_unavailable", service="missing"),
    Call("model-missing-head", "HEAD", "/model", 503, "model_unavailable", service="missing"),
    Call("digest-mismatch", "POST", "/predict", 503, "model_digest_mismatch", body={"features": ROW}, service="digest"),
    Call("digest-mismatch-info", "GET", "/model", 503, "model_digest_mismatch", service="digest"),
    Call("not-a-model", "POST", "/predict", 503, "model_invalid", body={"features": ROW}, service="invalid"),
]


# --- models and services ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_uris(tmp_path_factory) -> dict[str, str]:
    """Real model files: a small iris forest with the demo's feature names, a regressor fitted on arrays,
    a pipeline that fails while predicting, a file that is not a model, and a path with no file."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    folder = tmp_path_factory.mktemp("openapi-models")
    iris = load_iris()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(iris.data, iris.target_names[iris.target])
    forest.feature_names_in_ = np.asarray(FEATURES, dtype=object)
    X = np.arange(30, dtype=float).reshape(10, 3)
    regressor = LinearRegression().fit(X, X.sum(axis=1))
    broken = Pipeline([("pick", FunctionTransformer()), ("reg", LinearRegression())]).fit(X, X.sum(axis=1))
    broken.set_params(pick__func=operator.itemgetter(100))  # IndexError on predict: not the input's fault
    files = {"iris": forest, "regressor": regressor, "broken": broken, "invalid": {"not": "a model"}}
    uris = {}
    for name, obj in files.items():
        joblib.dump(obj, folder / f"{name}.joblib")
        uris[name] = (folder / f"{name}.joblib").as_uri()
    uris["missing"] = (folder / "absent.joblib").as_uri()
    return uris


class FailingHolder(ModelHolder):
    """A model holder that fails unexpectedly on every use: what the service's last guard is for."""

    @property
    def loaded(self):
        raise RuntimeError("unexpected")

    def get(self):
        raise RuntimeError("unexpected")


def build_service(kind: str, uris: dict[str, str], monkeypatch, tmp_path) -> PredictionService:
    env = {"MODEL_URI": uris["iris"], "CORS_ALLOW_ORIGINS": ORIGIN, "MODEL_NAME": NAME, "MODEL_VERSION": VERSION}
    if kind == "limits":
        env.update(MAX_ROWS="2", MAX_BODY_BYTES="200")
    elif kind in ("regressor", "broken", "invalid", "missing"):
        env["MODEL_URI"] = uris[kind]
    elif kind == "digest":
        env["MODEL_SHA256"] = "0" * 64
    elif kind == "no_document":
        monkeypatch.setattr(core.http.service, "OPENAPI_PATH", tmp_path / "not-packaged.json")
    else:
        assert kind in ("iris", "failing"), kind
    settings = Settings.from_env(env)
    if kind == "failing":
        return PredictionService(settings, model=FailingHolder(settings))
    return PredictionService(settings)


def run(call: Call, uris, monkeypatch, tmp_path, origin: str | None) -> HttpResponse:
    service = build_service(call.service, uris, monkeypatch, tmp_path)
    for method, path in call.before:
        service.handle(HttpRequest(method, path))
    headers = {}
    if call.content_type is not None and call.body != b"":
        headers["Content-Type"] = call.content_type
    if origin:
        headers["Origin"] = origin
    if call.request_id:
        headers["X-Request-Id"] = call.request_id
    headers.update(call.headers)
    return service.handle(HttpRequest(call.method, call.path, headers=headers, body=call.raw_body))


# --- reading the document -----------------------------------------------------------------------------


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _lookup(pointer: str, document: dict | None = None) -> Any:
    node = DOC if document is None else document
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def resolved(node: Any, pointer: str, document: dict | None = None) -> tuple[Any, str]:
    """Follow local $refs; return the node and its JSON pointer in the document (the file when None)."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are expected, got {ref}"
        pointer = ref[1:]
        node = _lookup(pointer, document)
    return node, pointer


def validate(instance: Any, schema_pointer: str, document: dict | None = None) -> None:
    """Validate against the schema at ``schema_pointer`` of ``document`` (the file when None); its
    $refs resolve inside that document."""
    registry = REGISTRY if document is None else Registry().with_resource(DOC_URI, DRAFT202012.create_resource(document))
    schema = {"$ref": f"{DOC_URI}#{schema_pointer}"}
    Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    ).validate(instance)


REQUEST_SCHEMA = "/paths/~1predict/post/requestBody/content/application~1json/schema"


def served_document(service: PredictionService) -> dict:
    response = service.handle(HttpRequest("GET", "/openapi.json"))
    assert response.status == 200
    return json.loads(response.body)


def operations() -> Iterator[tuple[str, str, dict]]:
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            if method.upper() in OAS_METHODS:
                yield path, method, operation


def template_of(path: str) -> str | None:
    """The document's path (template) a request path is, or None: ``/v2/models/iris`` is
    ``/v2/models/{name}``."""
    route = path.rstrip("/") or "/"
    if route in DOC["paths"]:
        return route
    parts = route.split("/")
    for template in DOC["paths"]:
        pattern = template.split("/")
        if len(pattern) == len(parts) and all(
            p == q or (p.startswith("{") and p.endswith("}") and q) for p, q in zip(pattern, parts, strict=True)
        ):
            return template
    return None


def documented(path: str, method: str, status: int) -> tuple[dict, str]:
    """The response documented for this answer (resolved) and its pointer; fails if there is none.

    A path the document lists must list the status under the method itself; ``default`` stands only
    for the 404 of paths the document does not list, and must then be on every operation.
    """
    route = template_of(path)
    if route is not None:
        item = DOC["paths"][route]
        assert method.lower() in item, f"{method} {route} is not documented"
        responses = item[method.lower()]["responses"]
        assert str(status) in responses, f"{method} {route} answered {status}, which is not documented"
        at = "/paths/" + _escape(route) + "/" + method.lower() + "/responses/" + str(status)
        return resolved(responses[str(status)], at)
    assert status == 404, f"{method} {path} answered {status} on a path the document does not list"
    found = None
    for doc_path, doc_method, operation in operations():
        assert "default" in operation["responses"], f"{doc_method.upper()} {doc_path} has no default (404) response"
        at = "/paths/" + _escape(doc_path) + "/" + doc_method + "/responses/default"
        response, pointer = resolved(operation["responses"]["default"], at)
        assert "404" in response["description"], f"the default of {doc_method.upper()} {doc_path} does not say 404"
        if doc_method == method.lower() or (found is None and method.upper() not in OAS_METHODS):
            found = (response, pointer)
    assert found is not None, f"no operation documents {method}"
    return found


def check_against_document(call: Call, response: HttpResponse) -> None:
    doc_response, at = documented(call.path, call.method, response.status)

    # the body: present exactly when content is documented, and valid against its schema
    content = doc_response.get("content")
    if call.method == "HEAD" or response.status == 204:
        assert response.body == b""
        assert content is None, f"{call.method} {call.path} {response.status} documents a body it never has"
    else:
        assert content, f"{call.method} {call.path} {response.status} answered a body the document does not describe"
        media_type = response.headers["content-type"].split(";")[0].strip()
        assert media_type in content, f"{media_type} is not documented for {call.method} {call.path}"
        if media_type == "application/octet-stream":  # the binary-data extension: a JSON header, then tensors
            length = int(response.headers["inference-header-content-length"])
            validate(json.loads(response.body[:length]), "/components/schemas/OipInferResponse")
        elif "schema" not in content[media_type]:  # /ping: MLflow's newline, not a JSON document
            assert response.body.strip() == b"", response.body
        else:
            body = json.loads(response.body)
            validate(body, at + "/content/" + _escape(media_type) + "/schema")
            if response.status >= 400 and isinstance(body.get("error"), dict):
                assert body["error"]["code"] in error_codes()

    # the headers: every one sent is documented, every required one is sent, each value valid
    if response.status >= 400:
        assert "x-request-id" in response.headers
    documented_headers = {name.lower(): value for name, value in doc_response.get("headers", {}).items()}
    sent = {name.lower(): value for name, value in response.headers.items()}
    undocumented = set(sent) - set(documented_headers) - {"content-type"}
    assert not undocumented, f"headers sent but not documented for {call.method} {call.path}: {undocumented}"
    for name, node in documented_headers.items():
        header, header_at = resolved(node, at + "/headers/" + _escape(name))
        if header.get("required"):
            assert name in sent, f"required header {name} missing from {call.method} {call.path} {response.status}"
        if name in sent:
            value: Any = sent[name]
            if header["schema"].get("type") == "integer":
                assert value.isdigit(), f"{name}: {value!r} is not an integer"
                value = int(value)
            validate(value, header_at + "/schema")


def error_codes() -> list[str]:
    return DOC["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [None, ORIGIN], ids=["no-origin", "allowed-origin"])
@pytest.mark.parametrize("call", CALLS, ids=[c.id for c in CALLS])
def test_answer_is_documented(call, origin, model_uris, monkeypatch, tmp_path):
    response = run(call, model_uris, monkeypatch, tmp_path, origin)

    assert response.status == call.status, response.body[:300]
    if call.code is not None and call.method != "HEAD":
        assert json.loads(response.body)["error"]["code"] == call.code
    if call.request_id:
        assert response.headers["x-request-id"] == call.request_id
        assert json.loads(response.body)["request_id"] == call.request_id
    if origin:
        assert response.headers["access-control-allow-origin"] == origin
    check_against_document(call, response)

    if call.request_valid is not None:
        # judged by the document this service serves: typed for its model
        document = served_document(build_service(call.service, model_uris, monkeypatch, tmp_path))
        body = json.loads(call.raw_body)
        if call.request_valid:
            validate(body, REQUEST_SCHEMA, document)
        else:
            with pytest.raises(ValidationError):
                validate(body, REQUEST_SCHEMA, document)


def test_every_documented_answer_is_produced(model_uris, monkeypatch, tmp_path):
    """No (path, method, status) is documented that the service never answers."""
    produced = set()
    for call in CALLS:
        response = run(call, model_uris, monkeypatch, tmp_path, None)
        produced.add((template_of(call.path) or call.path, call.method.lower(), str(response.status)))
    monkeypatch.undo()
    documented_answers = {
        (path, method, status)
        for path, method, operation in operations()
        for status in operation["responses"]
        if status != "default"
    }
    assert documented_answers - produced == set()
    assert {(p, m, s) for p, m, s in produced if p in DOC["paths"]} <= documented_answers


def test_error_codes_are_exactly_those_answered(model_uris, monkeypatch, tmp_path):
    answered = set()
    for call in CALLS:
        response = run(call, model_uris, monkeypatch, tmp_path, None)
        if response.status >= 400 and call.method != "HEAD":
            error = json.loads(response.body).get("error")
            if isinstance(error, dict):  # the service's own shape (the protocols answer in theirs)
                answered.add(error["code"])
    enum = error_codes()
    assert len(enum) == len(set(enum))
    assert answered <= set(enum), f"codes answered but not documented: {answered - set(enum)}"
    assert set(enum) == answered | LOCAL_SERVER_CODES | set(ANSWERED_ELSEWHERE)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    defined = {core.errors.ServerlessMLError.code} | {cls.code for cls in subclasses(core.errors.ServerlessMLError)}
    # a new error class must be documented, or listed in NOT_ANSWERED with the reason
    assert set(enum) == defined - set(NOT_ANSWERED)


def test_served_document_is_the_file_when_the_model_cannot_load(model_uris, monkeypatch, tmp_path):
    service = build_service("missing", model_uris, monkeypatch, tmp_path)
    response = service.handle(HttpRequest("GET", "/openapi.json"))
    assert response.status == 200
    assert response.body == DOC_BYTES
    assert DOC["openapi"].startswith("3.1.")
    assert DOC.get("jsonSchemaDialect", "https://json-schema.org/draft/2020-12/schema").startswith(
        "https://json-schema.org/draft/2020-12/"
    )


def test_served_document_is_the_file_typed_for_the_loaded_model(model_uris, monkeypatch, tmp_path):
    """Only the rows change: the paths, the answers and every other schema are the file's."""
    service = build_service("iris", model_uris, monkeypatch, tmp_path)
    first = service.handle(HttpRequest("GET", "/openapi.json"))
    again = service.handle(HttpRequest("GET", "/openapi.json"))
    assert first.status == again.status == 200
    assert again.body is first.body  # built once per loaded model, not per request
    typed = json.loads(first.body)
    assert typed["paths"].keys() == DOC["paths"].keys()
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            assert typed["paths"][path][method]["responses"] == operation["responses"]
    assert typed["components"]["responses"] == DOC["components"]["responses"]
    changed = {name for name, schema in DOC["components"]["schemas"].items()
               if typed["components"]["schemas"][name] != schema}
    rows = {"Value", "RowArray", "RowObject", "Rows", "InstancesBody", "InputsBody", "DataframeSplitBody",
            "DataframeRecordsBody", "FeaturesBody", "DataBody"}
    protocols = {"OipModelMetadata", "OipInferRequest", "InvocationsCsv"}  # examples of this model
    assert changed <= rows | protocols
    parameters = typed["components"]["parameters"]
    assert parameters["OipModelName"]["schema"] == {"type": "string", "enum": [NAME]}
    assert parameters["OipModelVersion"]["schema"] == {"type": "string", "enum": [VERSION]}
    metadata = json.loads(service.handle(HttpRequest("GET", V2)).body)
    assert typed["components"]["schemas"]["OipModelMetadata"]["examples"] == [metadata]
    row = typed["components"]["schemas"]["RowObject"]
    assert row["required"] == list(FEATURES) and row["additionalProperties"] is False
    # the forest takes missing values (its allow_nan tag): null is documented, a string is not
    assert row["properties"]["sepal_length"] == {"type": ["number", "null"]}
    assert typed["info"]["x-input-schema"] == json.loads(service.handle(HttpRequest("GET", "/model")).body)["input_schema"]


@pytest.fixture(scope="module")
def documents(model_uris, typed_models) -> dict[str, dict]:
    """The file, and the document each model's service serves."""
    served = {"file": DOC}
    for name in ("iris", "regressor"):
        served[name] = served_document(PredictionService(Settings.from_env({"MODEL_URI": model_uris[name]})))
    for name, path in typed_models.items():
        served[name] = served_document(PredictionService(Settings.from_env({"MODEL_URI": path.as_uri()})))
    return served


DOCUMENTS = ["file", "iris", "regressor", "mixed", "strict", "hgb", "text", "logistic"]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_is_sound(name, documents):
    """Every schema is a valid 2020-12 schema, every $ref resolves, every example fits its schema."""
    document = documents[name]

    def walk(node, at):
        if isinstance(node, dict):
            if "$ref" in node:
                resolved(node, at, document)
            for key, value in node.items():
                yield from walk(value, at + "/" + _escape(str(key)))
            if "schema" in node and isinstance(node["schema"], dict):
                yield node, at
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{at}/{i}")

    for schema_name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        for example in schema.get("examples", []):
            validate(example, "/components/schemas/" + schema_name, document)
    checked = 0
    for holder, at in walk(document, ""):  # media types, parameters and headers
        Draft202012Validator.check_schema(holder["schema"])
        examples = [e["value"] for e in holder.get("examples", {}).values()]
        if "example" in holder:
            examples.append(holder["example"])
        for example in examples:
            validate(example, at + "/schema", document)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    "name", list(DOC["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"])
)
def test_request_examples_are_answered(name, model_uris, monkeypatch, tmp_path):
    example = DOC["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"][name]
    response = run(ok(name, example["value"]), model_uris, monkeypatch, tmp_path, None)
    assert response.status == 200, response.body
    assert json.loads(response.body)["classes"] == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize("name", DOCUMENTS[1:])
def test_each_model_answers_the_examples_of_its_document(name, documents, model_uris, typed_models):
    uri = model_uris[name] if name in model_uris else typed_models[name].as_uri()
    service = PredictionService(Settings.from_env({"MODEL_URI": uri}))
    examples = documents[name]["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert len(examples) == 8  # every body form
    for key, example in examples.items():
        response = service.handle(HttpRequest("POST", "/predict", {"content-type": "application/json"},
                                              json.dumps(example["value"]).encode()))
        assert response.status == 200, (key, response.body)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_each_model_answers_the_protocol_examples_of_its_document(name, documents, model_uris, typed_models):
    """The infer requests and the /invocations CSV a document shows are answered 200 by its model,
    under the one name the document's {name} admits; the file's by the demo-like iris forest."""
    document = documents[name]
    uri = model_uris["iris" if name == "file" else name] if name in model_uris or name == "file" \
        else typed_models[name].as_uri()
    service = PredictionService(Settings.from_env({"MODEL_URI": uri, **({"MODEL_NAME": "iris-random-forest"}
                                                                          if name == "file" else {})}))
    model_name = (document["components"]["parameters"]["OipModelName"]["schema"].get("enum") or ["iris-random-forest"])[0]
    examples = document["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]
    assert examples["examples"]
    for key, example in examples["examples"].items():
        validate(example["value"], "/components/schemas/OipInferRequest", document)
        response = service.handle(HttpRequest("POST", f"/v2/models/{model_name}/infer", {},
                                              json.dumps(example["value"]).encode()))
        assert response.status == 200, (key, response.body)
        validate(json.loads(response.body), "/components/schemas/OipInferResponse", document)
    for csv_text in document["components"]["schemas"]["InvocationsCsv"].get("examples", []):
        response = service.handle(HttpRequest("POST", "/invocations", {"content-type": "text/csv"}, csv_text.encode()))
        assert response.status == 200, response.body


# --- a typed model's document: a body it admits is answered, a body it refuses is a 400 -------------

P = PASSENGER
NAMES = list(P)
# (id, body, whether the mixed model's document admits it and the mixed model answers 200)
MIXED_BODIES = [
    ("objects", {"instances": [P, {**P, "sex": "female", "pclass": 1}]}, True),
    ("arrays", {"instances": [[P[n] for n in NAMES]]}, True),
    ("split-any-order", {"dataframe_split": {"columns": NAMES[::-1], "data": [[P[n] for n in NAMES[::-1]]]}}, True),
    ("records", {"dataframe_records": [P]}, True),
    ("features", {"features": [P[n] for n in NAMES]}, True),
    ("data", {"data": P}, True),
    ("null-number", {"data": {**P, "age": None}}, True),
    ("null-category", {"instances": [P, {**P, "embarked": None}]}, True),
    ("null-category-alone", {"data": {**P, "embarked": None}}, True),  # a column of only missing values
    ("unknown-category", {"data": {**P, "embarked": "X"}}, True),  # handle_unknown="ignore" predicts it
    ("integer-as-number", {"data": {**P, "pclass": 2}}, True),
    ("number-as-string", {"data": {**P, "age": "22"}}, False),
    ("category-as-number", {"data": {**P, "sex": 1}}, False),
    ("boolean-as-number", {"data": {**P, "fare": True}}, False),
    ("missing-column", {"data": {n: P[n] for n in NAMES[1:]}}, False),
    ("extra-column", {"data": {**P, "cabin": "C85"}}, False),
    ("short-array", {"features": [P[n] for n in NAMES[:4]]}, False),
    ("array-out-of-order", {"features": [P[n] for n in NAMES[::-1]]}, False),
    ("split-unknown-column", {"dataframe_split": {"columns": ["cabin", *NAMES[1:]], "data": [[P[n] for n in NAMES]]}},
     False),
    ("text-rows", {"instances": ["free money now"]}, False),
]
STRICT_BODIES = [
    ("known-categories", {"data": P}, True),
    ("unknown-category", {"data": {**P, "embarked": "X"}}, False),  # handle_unknown="error": refused
    ("null-number", {"data": {**P, "age": None}}, False),  # no imputer: no missing value
    ("null-category", {"data": {**P, "sex": None}}, False),
]
TEXT_BODIES = [
    ("texts", {"instances": ["free money now", "see you at lunch"]}, True),
    ("inputs", {"inputs": ["free money now"]}, True),
    ("one-column-arrays", {"instances": [["free money now"]]}, True),
    ("one-column-objects", {"dataframe_records": [{"text": "free money now"}]}, True),
    ("split", {"dataframe_split": {"columns": ["text"], "data": [["free money now"]]}}, True),
    ("features-text", {"features": "free money now"}, True),
    ("data-text", {"data": "free money now"}, True),
    ("number", {"instances": [5]}, False),
    ("null", {"instances": [None]}, False),
    ("two-columns", {"instances": [["free", "money"]]}, False),
    ("numeric-rows", {"instances": [[5.1, 3.5]]}, False),
]
TYPED_BODIES = [
    pytest.param(model, *body.values, marks=body.marks, id=f"{model}-{body.values[0]}") if hasattr(body, "marks")
    else pytest.param(model, *body, id=f"{model}-{body[0]}")
    for model, bodies in (("mixed", MIXED_BODIES), ("strict", STRICT_BODIES), ("text", TEXT_BODIES))
    for body in bodies
]


@pytest.mark.parametrize("model, id, body, admitted", TYPED_BODIES)
def test_a_typed_document_admits_exactly_what_its_model_answers(model, id, body, admitted, documents, typed_models):
    document = documents[model]
    if admitted:
        validate(body, REQUEST_SCHEMA, document)
    else:
        with pytest.raises(ValidationError):
            validate(body, REQUEST_SCHEMA, document)
    service = PredictionService(Settings.from_env({"MODEL_URI": typed_models[model].as_uri()}))
    response = service.handle(HttpRequest("POST", "/predict", {"content-type": "application/json"},
                                          json.dumps(body).encode()))
    assert response.status == (200 if admitted else 400), response.body


def test_the_mixed_document_types_each_column(documents):
    row = documents["mixed"]["components"]["schemas"]["RowObject"]
    assert row["required"] == NAMES and row["additionalProperties"] is False
    assert row["properties"]["age"] == {"type": ["number", "null"]}
    sex = row["properties"]["sex"]["anyOf"]
    assert sex[0]["enum"] == ["female", "male"] and sex[1]["type"] == "string" and sex[2]["type"] == "null"
    strict = documents["strict"]["components"]["schemas"]["RowObject"]["properties"]
    assert strict["embarked"] == {"enum": ["C", "Q", "S"]} and strict["age"] == {"type": "number"}
    text = documents["text"]["components"]["schemas"]
    assert text["Rows"]["oneOf"][-1]["items"] == {"$ref": "#/components/schemas/Text"}
    assert "rows as texts" not in json.dumps(documents["mixed"]["components"]["schemas"]["Rows"])


def test_categories_are_an_enum_only_where_short():
    from core.http.openapi import MAX_ENUM, column_value_schema
    from core.schema import Column

    short = tuple(f"c{i}" for i in range(MAX_ENUM))
    long = tuple(f"c{i}" for i in range(MAX_ENUM + 1))
    assert column_value_schema(Column("c", "categorical", False, short, False)) == {"enum": list(short)}
    assert column_value_schema(Column("c", "categorical", True, short, False)) == {"enum": [*short, None]}
    assert column_value_schema(Column("c", "categorical", False, long, False))["type"] == "string"
    assert "anyOf" not in column_value_schema(Column("c", "categorical", True, long, True))
    assert column_value_schema(Column("n", "categorical", False, (1, 2, 3), False)) == {"enum": [1, 2, 3]}
    assert column_value_schema(Column("b", "boolean", True)) == {"type": ["boolean", "null"]}
    assert column_value_schema(Column("i", "integer")) == {"type": "integer"}
    assert column_value_schema(Column("x", "any", True)) == {"type": ["number", "string", "boolean", "null"]}


def test_every_body_form_has_an_example():
    examples = DOC["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    keys = {key for example in examples.values() for key in example["value"]}
    assert keys == {"instances", "inputs", "dataframe_split", "dataframe_records", "features", "data"}
    forms = DOC["components"]["schemas"]["PredictRequest"]["oneOf"]
    assert len(forms) == 6


# --- the local server's own answers (it rejects a body it cannot read before the service sees it) ----


def _raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.fixture
def local_server(model_uris, monkeypatch, tmp_path):
    service = build_service("limits", model_uris, monkeypatch, tmp_path)
    server = make_server(service, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


LOCAL_SERVER_CALLS = [
    ("bad-content-length", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "bad_request"),
    ("bad-chunks", b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad_request"),
    ("declared-too-large", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n", 413, "payload_too_large"),
]


@pytest.mark.parametrize("id, raw, status, code", LOCAL_SERVER_CALLS, ids=[c[0] for c in LOCAL_SERVER_CALLS])
def test_local_server_rejections_match_the_document(local_server, id, raw, status, code):
    answered, headers, body = _raw_exchange(local_server, raw)
    assert answered == status
    doc_response, at = documented("/predict", "POST", status)
    payload = json.loads(body)
    assert payload["error"]["code"] == code
    validate(payload, at + "/content/application~1json/schema")


def test_local_server_rejections_carry_the_request_id_header(local_server):
    _, headers, body = _raw_exchange(local_server, LOCAL_SERVER_CALLS[0][1])
    assert headers.get("x-request-id") == json.loads(body)["request_id"]
