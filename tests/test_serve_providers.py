"""``serverless-ml serve --provider aws|azure|gcp``: the local endpoint answers through each
provider's adapter exactly what the core service answers."""

from __future__ import annotations

import json

import pytest

from tests.conformance.cases import drop_per_load_fields
from tests.support import start_endpoint, stop_endpoint
from tests.typed_models import PASSENGER

REQUESTS = [
    ("POST", "/predict", json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode(), {"Content-Type": "application/json"}),
    ("POST", "/predict", b'{"features": [5.1, "x", 1.4, 0.2]}', {"Content-Type": "application/json"}),
    ("POST", "/predict", b"{}", {"Content-Type": "text/plain"}),
    ("GET", "/model", None, {}),
    ("GET", "/nope", None, {}),
    ("DELETE", "/predict", None, {}),
]


def observe(endpoint, requests=REQUESTS) -> list:
    observed = []
    for method, path, body, headers in requests:
        status, answer_headers, raw = endpoint.request(method, path, body, headers)
        answer = json.loads(raw)
        answer.pop("request_id", None)
        drop_per_load_fields(answer)
        lowered = {k.lower(): v for k, v in answer_headers.items()}
        observed.append((status, lowered.get("content-type"), lowered.get("allow"), answer))
    return observed


@pytest.fixture(scope="module")
def core_answers(tmp_path_factory, demo_model_uri):
    endpoint = start_endpoint(tmp_path_factory.mktemp("serve-core"), {"MODEL_URI": demo_model_uri})
    try:
        return observe(endpoint)
    finally:
        stop_endpoint(endpoint)


@pytest.mark.parametrize("provider", ["aws", "azure", "gcp"])
def test_each_provider_answers_like_core(tmp_path, demo_model_uri, core_answers, provider):
    endpoint = start_endpoint(tmp_path, {"MODEL_URI": demo_model_uri}, ("--provider", provider))
    try:
        answers = observe(endpoint)
    finally:
        stop_endpoint(endpoint)
    assert [a[0] for a in answers] == [200, 400, 415, 200, 404, 405]
    assert answers == core_answers
    logged = [json.loads(line) for line in endpoint.log_path.read_text().splitlines() if line.startswith("{")]
    # one line per request, the same on every provider (the start-up probe is the GET /health)
    assert [(line["message"], line.get("route"), line.get("status")) for line in logged] == [
        ("request", "/health", 200), ("model loaded", None, None), ("request", "/predict", 200),
        ("request", "/predict", 400), ("request", "/predict", 415), ("request", "/model", 200),
        ("request", "unmatched", 404), ("request", "/predict", 405),
    ]


# the mixed pipeline of tests/typed_models.py: strings, categories, a missing value, a refusal
TYPED_REQUESTS = [
    ("POST", "/predict", json.dumps({"instances": [PASSENGER, {**PASSENGER, "sex": "female", "pclass": 1}]}).encode(),
     {"Content-Type": "application/json"}),
    ("POST", "/predict", json.dumps({"data": {**PASSENGER, "age": None, "embarked": "X"}}).encode(),
     {"Content-Type": "application/json"}),
    ("POST", "/predict", json.dumps({"data": {**PASSENGER, "sex": 1}}).encode(), {"Content-Type": "application/json"}),
    ("GET", "/model", None, {}),
    ("GET", "/openapi.json", None, {}),
]


@pytest.fixture(scope="module")
def core_typed_answers(tmp_path_factory, typed_models):
    endpoint = start_endpoint(tmp_path_factory.mktemp("serve-typed"), {"MODEL_URI": typed_models["mixed"].as_uri()})
    try:
        return observe(endpoint, TYPED_REQUESTS)
    finally:
        stop_endpoint(endpoint)


def test_the_local_endpoint_answers_a_typed_request(core_typed_answers, typed_models):
    import joblib
    import pandas as pd

    (predicted, imputed, refused, model, document) = core_typed_answers
    assert [a[0] for a in core_typed_answers] == [200, 200, 400, 200, 200]
    rows = [PASSENGER, {**PASSENGER, "sex": "female", "pclass": 1}]
    assert predicted[3]["predictions"] == joblib.load(typed_models["mixed"]).predict(pd.DataFrame(rows)).tolist()
    assert refused[3]["error"]["message"].startswith("data.sex is the number 1")
    assert model[3]["input_schema"]["layout"] == "frame"
    assert document[3]["components"]["schemas"]["RowObject"]["required"] == list(PASSENGER)


@pytest.mark.parametrize("provider", ["aws", "azure", "gcp"])
def test_each_provider_answers_a_typed_request_like_core(tmp_path, typed_models, core_typed_answers, provider):
    endpoint = start_endpoint(tmp_path, {"MODEL_URI": typed_models["mixed"].as_uri()}, ("--provider", provider))
    try:
        answers = observe(endpoint, TYPED_REQUESTS)
    finally:
        stop_endpoint(endpoint)
    assert answers == core_typed_answers


def test_a_missing_extra_is_named_with_the_install_command(tmp_path, demo_model_uri):
    import subprocess

    from tests.support import isolated_env, serve_command

    # hide the azure SDK from the child as if the extra were not installed
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'azure' or name.startswith('azure.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    result = subprocess.run(
        [*serve_command(), "serve", "--port", "0", "--provider", "azure"],
        env=isolated_env(MODEL_URI=demo_model_uri, PYTHONPATH=str(tmp_path)),
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "serve --provider azure needs the 'azure' extra, which is not installed" in result.stderr
    assert "install -e '.[azure]'" in result.stderr
    assert "Traceback" not in result.stderr
