"""The app as the Functions worker meets it: imported in a fresh process, settings from the
environment, the storage backend from core's registry, and the folder that gets deployed."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
MODEL_URI = "az://models/iris.joblib"
FUNCTION_NAMES = ["predict", "health", "model", "openapi", "unmatched", "batch_blob", "batch_event_grid"]
# model libraries and storage SDKs: none may load at import
HEAVY = [
    "numpy", "sklearn", "scipy", "joblib", "pandas",
    "azure.storage", "azure.storage.blob", "azure.core", "azure.identity", "boto3", "botocore",
    "google.cloud.storage",
]


def run_child(code: str, cwd: Path, env: dict[str, str], *, isolated_from: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in ``cwd`` (the app folder, as the worker does).

    With ``isolated_from``, site is not processed (so the editable install of this repository is
    invisible) and sys.path is that folder plus the installed third-party packages only.
    """
    prelude = "import sys\n"
    command = [sys.executable]
    if isolated_from is not None:
        command.append("-S")
        prelude += f"sys.path[:] = [{str(isolated_from)!r}, *sys.path[1:], {sysconfig.get_paths()['purelib']!r}]\n"
    else:
        prelude += "sys.path.insert(0, '')\n"
    return subprocess.run(
        [*command, "-c", prelude + textwrap.dedent(code)],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "INFO", **env},
    )


def last_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_app_registers_every_function_and_loads_no_model_or_sdk(app_folder):
    # the account points at a closed port: an import that touched storage would fail or hang
    result = run_child(
        f"""
        import json
        before = set(sys.modules)
        import function_app
        loaded = sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before)
        names = [f.get_function_name() for f in function_app.app.get_functions()]
        print(json.dumps({{"loaded": loaded, "functions": names,
                          "model_loaded": function_app.service.model.loaded is not None}}))
        """,
        cwd=app_folder,
        env={"MODEL_URI": MODEL_URI, "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"},
    )
    assert last_json(result) == {"loaded": [], "functions": FUNCTION_NAMES, "model_loaded": False}


@pytest.mark.parametrize("env, expected", [
    ({}, "MODEL_URI is not set; expected the model's location"),
    ({"MODEL_URI": MODEL_URI, "MAX_ROWS": "lots"}, "MAX_ROWS='lots' is not allowed; expected an integer"),
    ({"MODEL_URI": MODEL_URI, "FUNCTION_AUTH_LEVEL": "public"},
     "FUNCTION_AUTH_LEVEL='public' is not allowed; expected one of FUNCTION, ANONYMOUS, ADMIN"),
    ({"MODEL_URI": MODEL_URI, "BATCH_INPUT_CONTAINER": "Daily_Uploads"},
     "BATCH_INPUT_CONTAINER='Daily_Uploads' is not a container name; expected 3-63 lowercase letters, "
     "digits and single hyphens, e.g. batch-input"),
    ({"MODEL_URI": MODEL_URI, "BATCH_OUTPUT_URI": "az://batch-input"},
     "BATCH_OUTPUT_URI=az://batch-input/ is the folder the inputs are in; outputs would be written among "
     "the inputs; expected another prefix, e.g. az://batch-input/predictions/"),
])
def test_a_wrong_setting_fails_the_indexing_with_a_message_naming_it(app_folder, env, expected):
    result = run_child("import function_app", cwd=app_folder, env=env)
    assert result.returncode != 0
    assert "SettingsError: " + expected in result.stderr


DRIVE = """
    import json, logging
    from pathlib import Path

    class WorkerHandler(logging.Handler):  # the worker's handler on the root logger
        lines = []
        def emit(self, record):
            self.lines.append(json.loads(record.getMessage()))

    logging.getLogger().addHandler(WorkerHandler())
    import function_app
    sklearn_after_import = "sklearn" in sys.modules
    from local_host import FunctionsHost

    host = FunctionsHost(function_app.app, Path("host.json"))
    body = json.dumps({{"instances": [[5.1, 3.5, 1.4, 0.2]]}}).encode()
    calls = [host.invoke("GET", "/health"),
             host.invoke("POST", "/predict", headers={{"content-type": "application/json"}}, body=body),
             host.invoke("POST", "/predict", headers={{"content-type": "application/json"}}, body=body)]
    print(json.dumps({{
        "sklearn_after_import": sklearn_after_import,
        "answers": [[c.response.status_code, json.loads(c.response.get_body())] for c in calls],
        "invocations": [c.context.invocation_id for c in calls],
        "logs": WorkerHandler.lines,
    }}))
"""


def test_the_process_wide_service_serves_azurite_with_cold_start_and_invocation_ids_in_the_logs(
    app_folder, azurite_with_model
):
    result = run_child(
        DRIVE.format(),
        cwd=app_folder,
        env={"MODEL_URI": MODEL_URI, "AZURE_STORAGE_CONNECTION_STRING": azurite_with_model.connection_string},
    )
    outcome = last_json(result)
    assert outcome["sklearn_after_import"] is False
    (health_status, health), (first_status, first), (second_status, second) = outcome["answers"]
    assert (health_status, health) == (200, {"status": "ok", "model": "not_loaded"})
    assert first_status == second_status == 200
    assert first["predictions"] == second["predictions"] == ["setosa"]

    requests = [line for line in outcome["logs"] if line["message"] == "request"]
    assert [line["invocation_id"] for line in requests] == outcome["invocations"]
    assert [line["cold_start"] for line in requests] == [True, False, False]
    assert [line["function_name"] for line in requests] == ["health", "predict", "predict"]
    loads = [line for line in outcome["logs"] if line["message"] == "model loaded"]
    assert len(loads) == 1 and loads[0]["invocation_id"] == outcome["invocations"][1]
    # logs go to the Functions logging only, not a second time to stderr
    assert '"message": "request"' not in result.stderr


def test_preload_model_loads_from_azurite_during_indexing(app_folder, azurite_with_model):
    result = run_child(
        """
        import json
        import function_app
        print(json.dumps({"loaded": function_app.service.model.loaded is not None,
                          "sklearn": "sklearn" in sys.modules}))
        """,
        cwd=app_folder,
        env={"MODEL_URI": MODEL_URI, "AZURE_STORAGE_CONNECTION_STRING": azurite_with_model.connection_string,
             "PRELOAD_MODEL": "true", "LOG_LEVEL": "ERROR"},
    )
    assert last_json(result) == {"loaded": True, "sklearn": True}


# --- the deployed folder ---------------------------------------------------------------------


def test_the_source_folder_alone_says_how_to_get_core(app_folder, demo_model_uri):
    result = run_child("import function_app", cwd=app_folder, env={"MODEL_URI": demo_model_uri},
                       isolated_from=app_folder)
    assert result.returncode != 0
    assert "the package 'core' is not importable next to function_app.py" in result.stderr
    assert "serverless-ml package --provider azure" in result.stderr


def test_requirements_are_the_package_dependencies_plus_the_azure_extra(app_folder):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((app_folder.parent / "pyproject.toml").read_text())["project"]
    wanted = {str(Requirement(line)) for line in project["dependencies"] + project["optional-dependencies"]["azure"]}
    listed = {
        str(Requirement(line)) for line in (app_folder / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert listed == wanted
