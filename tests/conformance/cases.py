"""The conformance table: one list of HTTP cases that every provider must answer identically.

Each case names the configuration it runs under (the environment a function is deployed with),
the request, and the status the core service gives; the runners replay the same cases, in the
same order, through each provider's real entry point.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

ORIGIN = "https://app.example.com"
ROW = [5.1, 3.5, 1.4, 0.2]
ROW2 = [6.7, 3.0, 5.2, 2.3]
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
NAMED = dict(zip(NAMES, ROW, strict=True))
NAMED2 = dict(zip(NAMES, ROW2, strict=True))
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    name: str
    config: str
    method: str
    path: str
    status: int
    body: bytes | None = None
    headers: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "name": self.name, "method": self.method, "path": self.path,
            "headers": self.headers, "body": None if self.body is None else self.body.decode("latin-1"),
        }


def post(name: str, body, status: int = 200, config: str = "classifier", path: str = "/predict", **headers) -> Case:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Case(name, config, "POST", path, status, raw, {**JSON, **headers} if "Content-Type" not in headers else headers)


def call(name: str, method: str, path: str, status: int, config: str = "classifier", **headers) -> Case:
    return Case(name, config, method, path, status, None, headers)


# The configurations a function is deployed with; runners set these environment variables.
# MODEL_URI values are filled in by the test from real model files.
CONFIGS = {
    "classifier": {"MAX_ROWS": "5", "CORS_ALLOW_ORIGINS": ORIGIN, "MODEL_VERSION": "iris-1"},
    "regressor": {"MODEL_VERSION": "diabetes-1"},
    "missing": {"MODEL_VERSION": "missing-1"},
    # the models of tests/typed_models.py, fitted on DataFrames (pandas on every provider)
    "mixed": {"MODEL_VERSION": "passengers-mixed-1"},
    "strict": {"MODEL_VERSION": "passengers-strict-1"},
    "text": {"MODEL_VERSION": "spam-text-1"},
    # the classifier with a candidate beside it (core/rollout.py); CANDIDATE_MODEL_URI filled in by
    # the test; preloaded, so the candidate is ready for the first case as for every later one
    "shadow": {"MODEL_VERSION": "iris-1", "PRELOAD_MODEL": "true", "CANDIDATE_MODE": "shadow",
               "CANDIDATE_PROBABILITY_TOLERANCE": "0.01"},
    "canary": {"MODEL_VERSION": "iris-1", "PRELOAD_MODEL": "true", "CANDIDATE_MODE": "canary", "CANDIDATE_PERCENT": "50"},
    "broken-candidate": {"MODEL_VERSION": "iris-1", "PRELOAD_MODEL": "true", "CANDIDATE_MODE": "canary",
                         "CANDIDATE_PERCENT": "100"},
}


def _keys_for_canary() -> tuple[str, str]:
    """A client key the canary (50%) sends to the candidate, and one it keeps on the primary."""
    from core.rollout import canary_share

    keys = [f"client-{n}" for n in range(100)]
    return (next(k for k in keys if canary_share(k) < 50), next(k for k in keys if canary_share(k) >= 50))


TO_CANDIDATE, TO_PRIMARY = _keys_for_canary()

# a passenger of the typed models (tests/typed_models.py PASSENGER), as an object and as an array
PASSENGER = {"age": 22.0, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"}
PASSENGER2 = {"age": 38.0, "fare": 71.28, "pclass": 1, "sex": "female", "embarked": "C"}
COLUMNS = list(PASSENGER)

# --- the other protocols -------------------------------------------------------------------------
# the Open Inference Protocol's {name}: the demo model's file name (no MODEL_NAME), its version MODEL_VERSION
OIP = "/v2/models/iris-random-forest"
INFER = OIP + "/infer"


def tensor(name: str = "input-0", shape=(2, 4), datatype: str = "FP64", data=(*ROW, *ROW2)) -> dict:
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": list(data)}


def binary_infer(rows: list[list[float]], binary_outputs: bool) -> tuple[bytes, dict]:
    """The binary-data extension as tritonclient sends it: a JSON header, then little-endian float64
    (1.4 is 0x3ff6666666666666: bytes that are not UTF-8, so Lambda sources carry them base64-encoded)."""
    header = json.dumps({
        "id": "binary-1",
        "inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64",
                    "parameters": {"binary_data_size": 32 * len(rows)}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": binary_outputs}},
                    {"name": "predict_proba", "parameters": {"binary_data": binary_outputs}}],
    }).encode()
    raw = struct.pack(f"<{4 * len(rows)}d", *(v for row in rows for v in row))
    return header + raw, {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))}


CSV = ("petal_width,sepal_length,sepal_width,petal_length\n" + f"{ROW[3]},{ROW[0]},{ROW[1]},{ROW[2]}\n"
       + f"{ROW2[3]},{ROW2[0]},{ROW2[1]},{ROW2[2]}\n").encode()
TEXT_CSV = {"Content-Type": "text/csv"}
_BINARY, _BINARY_HEADERS = binary_infer([ROW, ROW2], binary_outputs=True)
_BINARY_IN, _BINARY_IN_HEADERS = binary_infer([ROW], binary_outputs=False)

PROTOCOL_CASES = [
    call("v2-server", "GET", "/v2", 200),
    call("v2-live", "GET", "/v2/health/live", 200),
    call("v2-ready", "GET", "/v2/health/ready", 200),
    call("v2-model-metadata", "GET", OIP, 200),
    call("v2-model-version-metadata", "GET", OIP + "/versions/iris-1", 200),
    call("v2-model-ready", "GET", OIP + "/ready", 200),
    call("v2-head-model-ready", "HEAD", OIP + "/ready", 200),
    post("v2-infer-matrix", {"id": "m-1", "inputs": [tensor()]}, path=INFER),
    post("v2-infer-nested-data", {"id": "m-2", "inputs": [tensor(data=[ROW, ROW2])]}, path=INFER),
    post("v2-infer-per-column", {"id": "c-1", "inputs": [tensor(n, [2], "FP32", [ROW[j], ROW2[j]]) for j, n in enumerate(NAMES)],
                                 "outputs": [{"name": "predict_proba"}]}, path=INFER),
    post("v2-infer-version", {"id": "v-1", "inputs": [tensor()]}, path=OIP + "/versions/iris-1/infer"),
    post("v2-infer-no-id", {"inputs": [tensor()], "outputs": [{"name": "predict"}]}, path=INFER),
    post("v2-infer-binary", _BINARY, path=INFER, **_BINARY_HEADERS),
    post("v2-infer-binary-in-json-out", _BINARY_IN, path=INFER, **_BINARY_IN_HEADERS),
    post("v2-infer-binary-output-default", {"id": "b-2", "inputs": [tensor()], "parameters": {"binary_data_output": True}},
         path=INFER),
    post("v2-infer-wrong-name", {"inputs": [tensor()]}, 404, path="/v2/models/other/infer"),
    post("v2-infer-wrong-version", {"inputs": [tensor()]}, 404, path=OIP + "/versions/iris-0/infer"),
    post("v2-infer-wrong-shape", {"inputs": [tensor(shape=[1, 3], data=ROW[:3])]}, 400, path=INFER),
    post("v2-infer-wrong-datatype", {"inputs": [tensor(datatype="BOOL", data=[True] * 8)]}, 400, path=INFER),
    post("v2-infer-unknown-column", {"inputs": [tensor("petal_widht", [1], data=[0.2])]}, 400, path=INFER),
    post("v2-infer-malformed-json", b'{"inputs": [', 400, path=INFER),
    post("v2-infer-binary-size-wrong", _BINARY[:-8], 400, path=INFER, **_BINARY_HEADERS),
    post("v2-infer-too-many-rows", {"inputs": [tensor(shape=[6, 4], data=ROW * 6)]}, 413, path=INFER),
    call("v2-unknown-path", "GET", "/v2/nowhere", 404),
    call("v2-put-model", "PUT", OIP, 405),
    call("v2-get-infer", "GET", INFER, 405),
    call("v2-preflight", "OPTIONS", INFER, 204, Origin=ORIGIN, **{"Access-Control-Request-Method": "POST"}),
    post("v2-cors-infer", {"id": "o-1", "inputs": [tensor()]}, path=INFER, Origin=ORIGIN),
    post("invocations-split", {"dataframe_split": {"columns": NAMES, "data": [ROW, ROW2]}}, path="/invocations"),
    post("invocations-records", {"dataframe_records": [NAMED, NAMED2]}, path="/invocations"),
    post("invocations-inputs-params", {"inputs": [ROW], "params": {"ignored": True}}, path="/invocations"),
    post("invocations-csv", CSV, path="/invocations", **TEXT_CSV),
    post("invocations-csv-bad-cell", b"sepal_length,sepal_width,petal_length,petal_width\n5.1,x,1,1\n", 400,
         path="/invocations", **TEXT_CSV),
    post("invocations-csv-too-many-rows", CSV.split(b"\n", 1)[0] + b"\n" + b"1,2,3,4\n" * 6, 413, path="/invocations",
         **TEXT_CSV),
    post("invocations-bad-json", b"{", 400, path="/invocations"),
    post("invocations-text-plain", {"instances": [ROW]}, 415, path="/invocations", **{"Content-Type": "text/plain"}),
    call("invocations-get", "GET", "/invocations", 405),
    call("ping", "GET", "/ping", 200),
    call("ping-post", "POST", "/ping", 405),
    # the model cannot load
    call("v2-ready-missing", "GET", "/v2/health/ready", 503, config="missing"),
    call("v2-model-metadata-missing", "GET", "/v2/models/model", 503, config="missing"),
    post("v2-infer-missing", {"inputs": [tensor()]}, 503, config="missing", path="/v2/models/model/infer"),
    post("invocations-missing", {"instances": [ROW]}, 503, config="missing", path="/invocations"),
    call("ping-missing", "GET", "/ping", 503, config="missing"),
    # typed columns (strings, categories, integers), a text model, a regressor without names
    call("v2-typed-metadata", "GET", "/v2/models/mixed/versions/passengers-mixed-1", 200, config="mixed"),
    post("v2-typed-per-column", {"id": "t-1", "inputs": [
        tensor("age", [2], "FP64", [PASSENGER["age"], PASSENGER2["age"]]),
        tensor("fare", [2], "FP32", [7.25, 71.28125]),
        tensor("pclass", [2], "INT64", [3, 1]),
        tensor("sex", [2, 1], "BYTES", [["male"], ["female"]]),
        tensor("embarked", [2], "BYTES", ["S", "C"]),
    ]}, config="mixed", path="/v2/models/mixed/infer"),
    post("v2-typed-number-as-bytes", {"inputs": [
        tensor(c, [1], "BYTES" if c in ("sex", "embarked", "fare") else "FP64", [str(PASSENGER[c]) if c == "fare" else PASSENGER[c]])
        for c in COLUMNS]}, 400, config="mixed", path="/v2/models/mixed/infer"),
    post("v2-typed-matrix-refused", {"inputs": [tensor(shape=[1, 5], data=[22.0, 7.25, 3, 1, 2])]}, 400, config="mixed",
         path="/v2/models/mixed/infer"),
    post("invocations-typed-csv", b"sex,embarked,age,fare,pclass\nmale,S,,7.25,3\nfemale,C,38,71.28,1\n", config="mixed",
         path="/invocations", **TEXT_CSV),
    call("v2-text-metadata", "GET", "/v2/models/text", 200, config="text"),
    post("v2-text-infer", {"id": "x-1", "inputs": [tensor("text", [2], "BYTES", ["free money now", "see you at lunch"])]},
         config="text", path="/v2/models/text/infer"),
    call("v2-regressor-metadata", "GET", "/v2/models/regressor", 200, config="regressor"),
    post("v2-regressor-infer", {"id": "r-1", "inputs": [tensor(shape=[1, 10], data=[0.01] * 10)]}, config="regressor",
         path="/v2/models/regressor/infer"),
]

CASES = [
    # --- every body form ---------------------------------------------------------------------
    post("instances-arrays", {"instances": [ROW, ROW2]}),
    post("instances-objects", {"instances": [NAMED, NAMED2]}),
    post("inputs-arrays", {"inputs": [ROW, ROW2]}),
    post("inputs-objects", {"inputs": [NAMED2]}),
    post("dataframe-split", {"dataframe_split": {"columns": NAMES, "data": [ROW, ROW2]}}),
    post("dataframe-split-shuffled", {"dataframe_split": {"columns": NAMES[::-1], "data": [ROW[::-1]]}}),
    post("dataframe-records", {"dataframe_records": [NAMED, NAMED2]}),
    post("features", {"features": ROW2}),
    post("data", {"data": NAMED}),
    post("integers", {"features": [5, 3, 1, 0]}),
    post("charset-content-type", {"features": ROW}, **{"Content-Type": "application/json; charset=utf-8"}),
    Case("no-content-type", "classifier", "POST", "/predict", 200, json.dumps({"features": ROW}).encode(), {}),
    post("trailing-slash", {"features": ROW}, path="/predict/"),
    post("client-request-id", {"features": ROW}, **{"X-Request-Id": "conformance-42"}),
    # --- validation errors -------------------------------------------------------------------
    post("malformed-json", b'{"instances": [[5.1, 3.5', 400),
    post("empty-body", b"", 400),
    post("json-array-body", b"[[5.1, 3.5, 1.4, 0.2]]", 400),
    post("nan-literal", b'{"features": [5.1, NaN, 1.4, 0.2]}', 400),
    post("invalid-utf8", b'{"features": [5.1, 3.5, 1.4, 0.2], "x": "\xff"}', 400),
    post("deeply-nested", b"[" * 5000 + b"]" * 5000, 400),
    post("no-rows-key", {"rows": [ROW]}, 400),
    post("two-rows-keys", {"instances": [ROW], "features": ROW}, 400),
    post("empty-instances", {"instances": []}, 400),
    post("mixed-row-forms", {"instances": [ROW, NAMED]}, 400),
    post("missing-feature", {"instances": [{k: v for k, v in NAMED.items() if k != "petal_width"}]}, 400),
    post("misspelt-feature", {"data": {**{k: v for k, v in NAMED.items() if k != "petal_width"}, "petal_widht": 0.2}}, 400),
    post("extra-feature", {"dataframe_records": [{**NAMED, "colour": 1}]}, 400),
    post("short-row", {"instances": [ROW[:3]]}, 400),
    post("string-value", {"features": [5.1, "3.5", 1.4, 0.2]}, 400),
    # the forest takes missing values (scikit-learn's allow_nan tag); the linear regressor does not
    post("null-value", {"instances": [[5.1, None, 1.4, 0.2]]}, 200),
    post("boolean-value", {"features": [5.1, 3.5, True, 0.2]}, 400),
    post("overflowing-number", b'{"features": [5.1, 3.5, 1.4, 1e999]}', 400),
    # --- limits, media type, routes, methods -------------------------------------------------
    post("too-many-rows", {"instances": [ROW] * 6}, 413),
    post("text-plain", {"features": ROW}, 415, **{"Content-Type": "text/plain"}),
    call("unknown-route", "GET", "/nope", 404),
    call("unknown-nested-route", "POST", "/predict/extra", 404),
    call("get-predict", "GET", "/predict", 405),
    call("delete-model", "DELETE", "/model", 405),
    call("put-health", "PUT", "/health", 405),
    # --- CORS --------------------------------------------------------------------------------
    call("preflight-allowed", "OPTIONS", "/predict", 204, Origin=ORIGIN, **{"Access-Control-Request-Method": "POST"}),
    call("preflight-other-origin", "OPTIONS", "/predict", 204, Origin="https://evil.example.com",
         **{"Access-Control-Request-Method": "POST"}),
    post("cors-allowed-origin", {"features": ROW}, Origin=ORIGIN),
    post("cors-error-allowed-origin", b"{", 400, Origin=ORIGIN),
    # --- read routes -------------------------------------------------------------------------
    call("health", "GET", "/health", 200),
    call("model", "GET", "/model", 200),
    call("openapi", "GET", "/openapi.json", 200),
    # --- a regressor -------------------------------------------------------------------------
    post("regressor-arrays", {"instances": [[0.01 * i for i in range(10)], [-0.02 * i for i in range(10)]]}, config="regressor"),
    post("regressor-default-names", {"data": {f"f{i}": 0.01 for i in range(10)}}, config="regressor"),
    call("regressor-model", "GET", "/model", 200, config="regressor"),
    post("regressor-null-refused", {"features": [0.01] * 9 + [None]}, 400, config="regressor"),
    # --- model unavailable -------------------------------------------------------------------
    post("model-missing", {"features": ROW}, 503, config="missing"),
    call("model-missing-info", "GET", "/model", 503, config="missing"),
    call("model-missing-health", "GET", "/health", 200, config="missing"),
    call("model-missing-openapi", "GET", "/openapi.json", 200, config="missing"),  # the generic document
    # --- typed columns: a DataFrame pipeline with categories that imputes (mixed) -----------
    post("typed-objects", {"instances": [PASSENGER, PASSENGER2]}, config="mixed"),
    post("typed-arrays", {"instances": [[PASSENGER[c] for c in COLUMNS]]}, config="mixed"),
    post("typed-split-shuffled", {"dataframe_split": {"columns": COLUMNS[::-1],
                                                      "data": [[PASSENGER2[c] for c in COLUMNS[::-1]]]}}, config="mixed"),
    post("typed-records", {"dataframe_records": [PASSENGER2]}, config="mixed"),
    post("typed-features", {"features": [PASSENGER[c] for c in COLUMNS]}, config="mixed"),
    post("typed-data", {"data": PASSENGER2}, config="mixed"),
    post("typed-unknown-category-predicted", {"data": {**PASSENGER, "embarked": "X"}}, config="mixed"),
    post("typed-null-number-imputed", {"data": {**PASSENGER, "age": None}}, config="mixed"),
    post("typed-null-category", {"instances": [PASSENGER, {**PASSENGER2, "sex": None}]}, config="mixed"),
    post("typed-number-as-string", {"data": {**PASSENGER, "fare": "7.25"}}, 400, config="mixed"),
    post("typed-category-as-number", {"data": {**PASSENGER, "sex": 1}}, 400, config="mixed"),
    post("typed-boolean-in-number", {"features": [22.0, True, 3, "male", "S"]}, 400, config="mixed"),
    post("typed-missing-column", {"data": {c: PASSENGER[c] for c in COLUMNS if c != "sex"}}, 400, config="mixed"),
    post("typed-text-rows-refused", {"instances": ["free money now"]}, 400, config="mixed"),
    call("typed-model", "GET", "/model", 200, config="mixed"),
    call("typed-openapi", "GET", "/openapi.json", 200, config="mixed"),
    # --- the same pipeline with handle_unknown="error" and no imputer (strict) --------------
    post("strict-known-categories", {"instances": [PASSENGER, PASSENGER2]}, config="strict"),
    post("strict-unknown-category-refused", {"data": {**PASSENGER, "embarked": "X"}}, 400, config="strict"),
    post("strict-null-number-refused", {"data": {**PASSENGER, "age": None}}, 400, config="strict"),
    post("strict-null-category-refused", {"instances": [PASSENGER, {**PASSENGER2, "sex": None}]}, 400, config="strict"),
    call("strict-model", "GET", "/model", 200, config="strict"),
    # --- one text per row (a TfidfVectorizer pipeline) ----------------------------------------
    post("text-instances", {"instances": ["free money now", "see you at lunch"]}, config="text"),
    post("text-inputs", {"inputs": ["win cash prizes today"]}, config="text"),
    post("text-one-column-arrays", {"instances": [["meeting moved to friday"]]}, config="text"),
    post("text-records", {"dataframe_records": [{"text": "free money now"}]}, config="text"),
    post("text-split", {"dataframe_split": {"columns": ["text"], "data": [["see you at lunch"]]}}, config="text"),
    post("text-features", {"features": "free money now"}, config="text"),
    post("text-data", {"data": "free money now"}, config="text"),
    post("text-number-refused", {"instances": ["free money now", 5]}, 400, config="text"),
    post("text-null-refused", {"instances": [None]}, 400, config="text"),
    post("text-numeric-rows-refused", {"instances": [ROW]}, 400, config="text"),
    call("text-model", "GET", "/model", 200, config="text"),
    call("text-openapi", "GET", "/openapi.json", 200, config="text"),
    # --- the other protocols: Open Inference Protocol v2 and MLflow's /invocations, /ping ------------
    *PROTOCOL_CASES,
    # --- a candidate model: shadow, canary, and a candidate that cannot load ------------------
    post("shadow-predict", {"instances": [ROW, ROW2]}, config="shadow"),
    call("shadow-model", "GET", "/model", 200, config="shadow"),
    call("shadow-health", "GET", "/health", 200, config="shadow"),
    post("canary-to-candidate", {"instances": [ROW]}, config="canary", **{"X-Request-Id": TO_CANDIDATE}),
    post("canary-to-primary", {"instances": [ROW]}, config="canary", **{"X-Request-Id": TO_PRIMARY}),
    call("canary-model", "GET", "/model", 200, config="canary"),
    post("broken-candidate-primary-answers", {"instances": [ROW]}, config="broken-candidate",
         **{"X-Request-Id": TO_CANDIDATE}),
    call("broken-candidate-model", "GET", "/model", 200, config="broken-candidate"),
    call("broken-candidate-health", "GET", "/health", 200, config="broken-candidate"),
]

# Headers whose values must match across providers when core sends them; providers add their
# own (Date, Content-Length, Server, x-amzn-*) which are not part of the contract.
COMPARED_HEADERS = (
    "content-type", "cache-control", "allow", "retry-after", "vary", "inference-header-content-length",
    "access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
    "access-control-max-age", "access-control-expose-headers",
)
# Parts of a body that differ by nature between two processes, not by provider.
VOLATILE_MODEL_FIELDS = ("loaded_at", "load_seconds")


def drop_per_load_fields(document: dict) -> None:
    """Remove what differs from one load of the same model to the next (when, how long, how much
    memory it took), so that answers of two processes compare equal."""
    for volatile in VOLATILE_MODEL_FIELDS:
        document.pop(volatile, None)
    load = document.get("load")
    if isinstance(load, dict):
        load.pop("peak_memory_increase_bytes", None)
    candidate = document.get("candidate")
    if isinstance(candidate, dict) and isinstance(candidate.get("model"), dict):
        drop_per_load_fields(candidate["model"])


def normalise(case_name: str, status: int, headers: dict, body: bytes) -> dict:
    """What must be identical across providers: status, contract headers, body minus volatile parts."""
    lowered = {k.lower(): v for k, v in headers.items()}
    observed = {
        "status": status,
        "headers": {name: lowered[name] for name in COMPARED_HEADERS if name in lowered},
    }
    if body and "inference-header-content-length" in lowered:  # binary-data extension: JSON header, then tensors
        length = int(lowered["inference-header-content-length"])
        observed["body"] = {"header": json.loads(body[:length]), "binary": body[length:].hex()}
    elif body:
        try:
            parsed = json.loads(body)
        except ValueError:
            observed["body"] = body.decode("utf-8", "replace")[:500]
        else:
            if isinstance(parsed, dict):
                request_id = parsed.pop("request_id", None)
                observed["request_id_matches_header"] = request_id == lowered.get("x-request-id")
                drop_per_load_fields(parsed)
                if "outputs" in parsed and parsed.get("id") == lowered.get("x-request-id"):
                    parsed["id"] = "<the request id>"  # an infer request without an id is answered with its request id
            observed["body"] = parsed
    else:
        observed["body"] = None
    if case_name == "client-request-id":
        observed["client_request_id"] = lowered.get("x-request-id")
    return observed
