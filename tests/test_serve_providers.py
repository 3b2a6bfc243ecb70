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
    logged = [json.loads(line) for line in endpoint.log_path.read_text().splitlines() if line.startswith("{")]
    # one line per request, the same on every provider (the start-up probe is the GET /health)
    assert [(line["message"], line.get("route"), line.get("status")) for line in logged] == [
        ("request", "/health", 200), ("model loaded", None, None), ("request", "/predict", 200),
        ("request", "/predict", 400), ("request", "/predict", 415), ("request", "/model", 200),
        ("request", "unmatched", 404), ("request", "/predict", 405),
    ]


def test_a_missing_extra_is_named_with_the_install_command(tmp_path, demo_model_uri):
    import subprocess

    from support import isolated_env, serve_command

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
