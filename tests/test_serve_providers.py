"""``serverless-ml serve --provider aws|azure|gcp``: the local endpoint answers through each
provider's adapter exactly what the core service answers."""

from __future__ import annotations

import json

import pytest

from support import start_endpoint, stop_endpoint

REQUESTS = [
    ("POST", "/predict", json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode(), {"Content-Type": "application/json"}),
    ("POST", "/predict", b'{"features": [5.1, "x", 1.4, 0.2]}', {"Content-Type": "application/json"}),
    ("POST", "/predict", b"{}", {"Content-Type": "text/plain"}),
    ("GET", "/model", None, {}),
    ("GET", "/nope", None, {}),
    ("DELETE", "/predict", None, {}),
]


def observe(endpoint) -> list:
    observed = []
    for method, path, body, headers in REQUESTS:
        status, answer_headers, raw = endpoint.request(method, path, body, headers)
        answer = json.loads(raw)
        answer.pop("request_id", None)
        for volatile in ("loaded_at", "load_seconds"):
            answer.pop(volatile, None)
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
