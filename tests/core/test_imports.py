"""Core's import stays cheap and provider-free, and core works where pandas is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY_OR_PROVIDER = [
    "numpy", "sklearn", "scipy", "joblib", "pandas",
    "boto3", "botocore", "azure", "google", "functions_framework", "flask",
    "aws_lambda", "azure_function", "gcp_function",
    "core.rollout",  # only with a candidate model configured
]


def run_fresh(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line that is returned."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_core_loads_no_model_library_and_no_provider():
    loaded = run_fresh(
        f"""
        import json, sys
        # what the interpreter loaded by itself (a .pth file of functions-framework imports the
        # 'google' namespace at start-up) is not core's doing
        before = set(sys.modules)
        import core, core.settings, core.storage, core.model, core.request, core.prediction
        import core.batch.engine, core.batch.triggered
        import core.http, core.http.local_server, core.runtime, core.logs, serverless_ml.cli
        print(json.dumps(sorted(m for m in {HEAVY_OR_PROVIDER!r} if m in sys.modules and m not in before)))
        """
    )
    assert loaded == []


def test_core_predicts_where_pandas_is_not_installed(demo_model_uri):
    outcome = run_fresh(
        """
        import importlib.abc, json, sys

        class NoPandas(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "pandas" or name.startswith("pandas."):
                    raise ModuleNotFoundError("No module named 'pandas'", name="pandas")

        sys.meta_path.insert(0, NoPandas())
        from core.http import HttpRequest
        from core.runtime import service
        body = json.dumps({"dataframe_records": [{"sepal_length": 5.1, "sepal_width": 3.5,
                                                  "petal_length": 1.4, "petal_width": 0.2}]}).encode()
        response = service().handle(HttpRequest("POST", "/predict", {"content-type": "application/json"}, body))
        print(json.dumps({"status": response.status, "body": json.loads(response.body),
                          "pandas": "pandas" in sys.modules, "sklearn": "sklearn" in sys.modules}))
        """,
        MODEL_URI=demo_model_uri,
        LOG_LEVEL="ERROR",
    )
    assert outcome["status"] == 200, outcome
    assert outcome["body"]["predictions"] == ["setosa"]
    assert outcome["sklearn"] is True and outcome["pandas"] is False


def test_settings_are_read_once_per_process(demo_model_uri):
    outcome = run_fresh(
        """
        import json, os
        from core.runtime import service
        first = service()
        os.environ["MAX_ROWS"] = "not read again"
        print(json.dumps({"same": service() is first, "max_rows": service().settings.max_rows}))
        """,
        MODEL_URI=demo_model_uri,
    )
    assert outcome == {"same": True, "max_rows": 10000}


def test_preload_model_loads_at_start(demo_model_uri):
    outcome = run_fresh(
        """
        import json
        from core.runtime import service
        print(json.dumps({"loaded": service().model.loaded is not None}))
        """,
        MODEL_URI=demo_model_uri, PRELOAD_MODEL="true", LOG_LEVEL="ERROR",
    )
    assert outcome == {"loaded": True}
