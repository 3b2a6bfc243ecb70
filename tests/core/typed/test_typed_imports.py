"""What a fresh process imports while it serves, adapter by adapter, as a function runs: the
adapter's module import (the init phase), then the first request.

* the demo forest (all numbers): neither core nor an adapter asks for pandas, and the answer is
  the same where pandas is not installed (scikit-learn 1.9 itself imports pandas when it is);
* the mixed pipeline (a DataFrame model): pandas is imported by the first request (which loads
  the model), never by the import of core or of the adapter.

Core and the in-process adapters (the four AWS event sources, Azure's function app) run in a
child through tests/conformance/worker.py's runners; GCP runs under functions-framework's own
server, whose imports a sitecustomize hook writes down.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.gcp_parts import function_servers
from tests.support import REPO
from tests.typed_models import PASSENGER

IN_PROCESS = ["core", "aws-rest", "aws-http-api", "aws-function-url", "aws-alb", "azure"]
DEMO_BODY = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
MIXED_BODY = {"instances": [PASSENGER, {**PASSENGER, "age": None, "sex": "female"}]}

# Installed first in the process: writes down which module asked for pandas (the first frame
# outside the import system), and with PANDAS_BLOCKED=1 refuses it as if it were not installed
# (a bundle built for a numeric model carries no pandas).
HOOK = """
import importlib.abc, os, sys

class WatchPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "pandas":
            return None
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith("<") or frame.f_code is self.find_spec.__code__):
            frame = frame.f_back
        with open(os.environ["PANDAS_IMPORT_MARKER"], "a") as marker:
            marker.write((frame.f_code.co_filename if frame is not None else "?") + "\\n")
        if os.environ.get("PANDAS_BLOCKED") == "1":
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")
        return None

sys.meta_path.insert(0, WatchPandas())
"""

CHILD = HOOK + """
import json, sys
sys.path.insert(0, {repo!r})
from tests.conformance.worker import RUNNERS

def seen():
    return {{name: name in sys.modules for name in ("pandas", "sklearn", "numpy")}}

steps = {{"start": seen()}}
run = RUNNERS[{provider!r}]()  # imports the adapter, as the function's init phase does
steps["imported"] = seen()
case = {{"name": "first", "method": "POST", "path": "/predict",
         "headers": {{"Content-Type": "application/json"}}, "body": {body!r}}}
status, _, answer = run(case)
steps["first"] = {{**seen(), "status": status, "answer": json.loads(answer)}}
print(json.dumps(steps))
"""


def serve_first_request(provider: str, model_uri: str, body: dict, marker, blocked: bool = False) -> dict:
    code = HOOK + CHILD[len(HOOK):].format(repo=str(REPO), provider=provider, body=json.dumps(body))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "MAX_", "CORS_", "PRELOAD_"))}
    env.update(MODEL_URI=model_uri, LOG_LEVEL="ERROR", PANDAS_IMPORT_MARKER=str(marker),
               PANDAS_BLOCKED="1" if blocked else "0")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def askers(marker) -> list[str]:
    """The modules that asked for pandas, in order."""
    return marker.read_text().splitlines() if marker.exists() else []


def only_scikit_learn(files: list[str]) -> bool:
    # scikit-learn 1.9 itself tries `import pandas` in sklearn/utils/fixes.py whenever pandas is
    # installed; what is checked is that neither core nor an adapter ever asks for it
    ours = tuple(str(REPO / part) + os.sep for part in ("core", "aws_lambda", "azure_function", "gcp_function"))
    return all(os.sep + "sklearn" + os.sep in f and not f.startswith(ours) for f in files)


@pytest.mark.parametrize("provider", IN_PROCESS)
def test_a_numeric_model_never_imports_pandas(provider, demo_model_uri, tmp_path):
    steps = serve_first_request(provider, demo_model_uri, DEMO_BODY, tmp_path / "asked")
    assert steps["first"]["status"] == 200, steps["first"]["answer"]
    assert steps["first"]["answer"]["predictions"] == ["setosa"]
    assert steps["first"]["sklearn"] is True  # the model was loaded and used
    assert (steps["start"]["pandas"], steps["imported"]["pandas"]) == (False, False)
    assert only_scikit_learn(askers(tmp_path / "asked")), askers(tmp_path / "asked")
    # where pandas is not installed (a numeric model's bundle), the same answer
    blocked = serve_first_request(provider, demo_model_uri, DEMO_BODY, tmp_path / "asked-blocked", blocked=True)
    assert blocked["first"]["status"] == 200 and blocked["first"]["pandas"] is False
    assert blocked["first"]["answer"]["predictions"] == ["setosa"]


@pytest.mark.parametrize("provider", IN_PROCESS)
def test_a_dataframe_model_imports_pandas_with_its_first_request_only(provider, typed_models, tmp_path):
    steps = serve_first_request(provider, typed_models["mixed"].as_uri(), MIXED_BODY, tmp_path / "asked")
    assert steps["first"]["status"] == 200, steps["first"]["answer"]
    assert len(steps["first"]["answer"]["predictions"]) == 2
    assert (steps["start"]["pandas"], steps["imported"]["pandas"]) == (False, False)
    assert (steps["imported"]["sklearn"], steps["imported"]["numpy"]) == (False, False)
    assert steps["first"]["pandas"] is True


# --- GCP: functions-framework's own server, its imports written down by a sitecustomize hook --------

@pytest.fixture
def recorded_gcp(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    python_path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    markers = (tmp_path / f"asked{n}" for n in itertools.count())

    with function_servers(tmp_path) as start_server:

        def start(model_uri: str, blocked: bool = False):
            marker = next(markers)
            server = start_server({
                "MODEL_URI": model_uri, "LOG_LEVEL": "ERROR", "PYTHONPATH": python_path,
                "PANDAS_IMPORT_MARKER": str(marker), "PANDAS_BLOCKED": "1" if blocked else "0",
            })
            return server, marker

        yield start


def _post(server, body: dict):
    status, _, raw = server.request("POST", "/predict", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return status, json.loads(raw)


@pytest.mark.parametrize("blocked", [False, True], ids=["pandas-installed", "pandas-not-installed"])
def test_gcp_a_numeric_model_never_imports_pandas(recorded_gcp, demo_model_uri, blocked):
    server, marker = recorded_gcp(demo_model_uri, blocked)
    status, answer = _post(server, DEMO_BODY)
    assert (status, answer["predictions"]) == (200, ["setosa"])
    assert only_scikit_learn(askers(marker)), askers(marker)


def test_gcp_a_dataframe_model_imports_pandas_with_its_first_request_only(recorded_gcp, typed_models):
    server, marker = recorded_gcp(typed_models["mixed"].as_uri())
    assert askers(marker) == []  # the server started and answered /health: the function is imported
    status, answer = _post(server, MIXED_BODY)
    assert status == 200, answer
    assert len(answer["predictions"]) == 2
    assert askers(marker)
