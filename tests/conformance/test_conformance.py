"""The same cases through every provider's real entry point must give the same answers.

The core service in-process is the reference. For every provider and event source, each case's
status, contract headers and JSON body (apart from request_id, and the load time of GET /model)
must equal the reference; a failing case prints the case, the provider and a diff.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from tests.conformance.cases import CASES, CONFIGS, normalise
from tests.gcp_parts import start_function
from tests.support import stop_process

WORKER = Path(__file__).with_name("worker.py")
# replayed in a fresh process per configuration by worker.py
IN_PROCESS_PROVIDERS = ["core", "aws-rest", "aws-http-api", "aws-function-url", "aws-alb", "azure"]
# replayed over HTTP against the provider's own server, one per configuration
SERVED_PROVIDERS = ["gcp"]
PROVIDERS = IN_PROCESS_PROVIDERS + SERVED_PROVIDERS


@pytest.fixture(scope="session")
def config_environments(demo_model_path, typed_models, tmp_path_factory) -> dict[str, dict[str, str]]:
    folder = tmp_path_factory.mktemp("conformance-models")
    X, y = load_diabetes(return_X_y=True)
    regressor = folder / "regressor.joblib"
    joblib.dump(LinearRegression().fit(X, y), regressor)
    # a candidate for the iris classifier: another kind of model on the same named columns
    candidate = folder / "candidate.joblib"
    joblib.dump(_candidate_for(joblib.load(demo_model_path)), candidate)
    uris = {
        "classifier": demo_model_path.as_uri(),
        "regressor": regressor.as_uri(),
        "missing": (folder / "absent" / "model.joblib").as_uri(),
        **{name: typed_models[name].as_uri() for name in ("mixed", "strict", "text")},
    }
    uris.update(shadow=uris["classifier"], canary=uris["classifier"], **{"broken-candidate": uris["classifier"]})
    candidates = {"shadow": candidate.as_uri(), "canary": candidate.as_uri(),
                  "broken-candidate": (folder / "absent" / "candidate.joblib").as_uri()}
    return {
        name: {**env, "MODEL_URI": uris[name], **({"CANDIDATE_MODEL_URI": candidates[name]} if name in candidates else {})}
        for name, env in CONFIGS.items()
    }


def _candidate_for(iris):
    """A decision tree on the demo forest's named columns (set as core/demo.py sets them)."""
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    data = load_iris()
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(data.data, data.target_names[data.target])
    tree.feature_names_in_ = np.asarray(iris.feature_names_in_, dtype=object)
    return tree


def run_worker(provider: str, environment: dict[str, str], cases) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "MAX_", "CORS_"))}
    env.update(environment, LOG_LEVEL="ERROR")
    result = subprocess.run(
        [sys.executable, str(WORKER), provider],
        input=json.dumps([case.as_json() for case in cases]),
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # the last line: an adapter may print its own lines first (Lambda's EMF metrics go to stdout)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_served(provider: str, environment: dict[str, str], cases, workdir: Path) -> list[dict]:
    """Start the provider's own server with ``environment``, replay ``cases`` over HTTP, stop it."""
    assert provider == "gcp"
    server = start_function(workdir, environment)
    try:
        observed = []
        for case in cases:
            status, headers, body = server.request(case.method, case.path, case.body, case.headers)
            observed.append(normalise(case.name, status, headers, body))
        return observed
    finally:
        stop_process(server.process)


@pytest.fixture(scope="session")
def observations(config_environments, tmp_path_factory):
    """Every provider's observation of every case, computed once: {provider: {case name: obs}}."""
    cache: dict[str, dict[str, dict]] = {}

    def observe(provider: str) -> dict[str, dict]:
        if provider not in cache:
            cache[provider] = {}
            for config, environment in config_environments.items():
                cases = [case for case in CASES if case.config == config]
                if provider in SERVED_PROVIDERS:
                    results = run_served(provider, environment, cases, tmp_path_factory.mktemp(provider))
                else:
                    results = run_worker(provider, environment, cases)
                for case, observed in zip(cases, results, strict=True):
                    cache[provider][case.name] = observed
        return cache[provider]

    return observe


def test_the_table_is_large_enough_and_names_are_unique():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_reference_answers_the_expected_status(observations, case):
    observed = observations("core")[case.name]
    assert observed["status"] == case.status, observed
    body = observed.get("body")
    if isinstance(body, dict) and case.status >= 400 and isinstance(body.get("error"), dict):
        assert observed["request_id_matches_header"] is True  # the other protocols' errors carry no request id
    if case.name == "client-request-id":
        assert observed["client_request_id"] == "conformance-42"


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "core"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_provider_answers_like_the_reference(observations, provider, case):
    reference = observations("core")[case.name]
    observed = observations(provider)[case.name]
    if observed != reference:
        diff = "\n".join(
            difflib.unified_diff(
                json.dumps(reference, indent=1, sort_keys=True).splitlines(),
                json.dumps(observed, indent=1, sort_keys=True).splitlines(),
                "core", provider, lineterm="",
            )
        )
        pytest.fail(f"case {case.name!r} ({case.method} {case.path}) differs on {provider}:\n{diff}")


@pytest.mark.parametrize("case_name, fragments", [
    ("typed-number-as-string", ("data.fare", "the string '7.25'", "a number")),
    ("typed-category-as-number", ("data.sex", "the number 1")),
    ("strict-unknown-category-refused", ("data.embarked", "'X'", "not fitted on")),
    ("strict-null-number-refused", ("data.age", "missing value")),
    ("strict-null-category-refused", ("instances[1].sex", "missing value")),
    ("text-number-refused", ("instances[1]", "every row in the same form")),
    ("text-null-refused", ("instances[0]", "null")),
])
def test_typed_refusals_name_the_place_and_what_was_expected(observations, case_name, fragments):
    message = observations("core")[case_name]["body"]["error"]["message"]
    for fragment in fragments:
        assert fragment in message, message


def test_typed_answers_are_the_models_own(observations, typed_models):
    import pandas as pd

    from tests.conformance.cases import PASSENGER, PASSENGER2

    mixed = joblib.load(typed_models["mixed"])
    observed = observations("core")["typed-objects"]["body"]
    assert observed["predictions"] == mixed.predict(pd.DataFrame([PASSENGER, PASSENGER2])).tolist()
    assert observations("core")["typed-unknown-category-predicted"]["status"] == 200
    text = joblib.load(typed_models["text"])
    assert observations("core")["text-instances"]["body"]["predictions"] == text.predict(
        ["free money now", "see you at lunch"]).tolist()


def test_protocol_answers_are_the_models_own(observations, demo_model_path, typed_models):
    """The reference's answers over the other protocols are model.predict / predict_proba of the rows."""
    import numpy as np
    import pandas as pd

    from tests.conformance.cases import PASSENGER, PASSENGER2, ROW, ROW2

    iris = joblib.load(demo_model_path)
    rows = pd.DataFrame([ROW, ROW2], columns=iris.feature_names_in_)
    labels, probabilities = iris.predict(rows).tolist(), iris.predict_proba(rows)
    core = observations("core")
    matrix = {o["name"]: o for o in core["v2-infer-matrix"]["body"]["outputs"]}
    assert matrix["predict"]["data"] == labels
    assert np.array_equal(np.reshape(matrix["predict_proba"]["data"], (2, 3)), probabilities)
    assert core["v2-infer-nested-data"]["body"]["outputs"] == core["v2-infer-matrix"]["body"]["outputs"]
    binary = core["v2-infer-binary"]["body"]
    proba_bytes = np.frombuffer(bytes.fromhex(binary["binary"])[-probabilities.nbytes:], dtype="<f8")
    assert np.array_equal(proba_bytes.reshape(2, 3), probabilities)
    assert core["v2-infer-no-id"]["body"]["id"] == "<the request id>"
    assert core["invocations-csv"]["body"] == core["invocations-split"]["body"] == {"predictions": labels}
    mixed = joblib.load(typed_models["mixed"])
    typed = core["v2-typed-per-column"]["body"]["outputs"][0]
    assert typed["data"] == mixed.predict(pd.DataFrame([PASSENGER, PASSENGER2])).tolist()
    text = joblib.load(typed_models["text"])
    assert core["v2-text-infer"]["body"]["outputs"][0]["data"] == text.predict(["free money now", "see you at lunch"]).tolist()


@pytest.mark.parametrize("case_name, fragment", [
    ("v2-infer-wrong-shape", "input 'input-0' has shape [1, 3]; expected [rows, 4]"),
    ("v2-infer-wrong-datatype", "input 'input-0' is BOOL; column 'sepal_length' takes numbers"),
    ("v2-infer-wrong-name", "no model named 'other'; this deployment serves 'iris-random-forest'"),
    ("v2-typed-number-as-bytes", "input 'fare' is BYTES; it takes numbers"),
    ("v2-typed-matrix-refused", "send one tensor per column"),
    ("v2-infer-binary-size-wrong", "input 'input-0' has binary_data_size 64; the binary part holds 56 more bytes"),
])
def test_protocol_refusals_name_the_tensor(observations, case_name, fragment):
    assert fragment in observations("core")[case_name]["body"]["error"]
