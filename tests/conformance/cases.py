"""The conformance table: one list of HTTP cases that every provider must answer identically.

Each case names the configuration it runs under (the environment a function is deployed with),
the request, and the status the core service gives; the runners replay the same cases, in the
same order, through each provider's real entry point.
"""

from __future__ import annotations

import json
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
    "content-type", "cache-control", "allow", "retry-after", "vary",
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
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            observed["body"] = body.decode("utf-8", "replace")[:500]
        else:
            if isinstance(parsed, dict):
                request_id = parsed.pop("request_id", None)
                observed["request_id_matches_header"] = request_id == lowered.get("x-request-id")
                drop_per_load_fields(parsed)
            observed["body"] = parsed
    else:
        observed["body"] = None
    if case_name == "client-request-id":
        observed["client_request_id"] = lowered.get("x-request-id")
    return observed
