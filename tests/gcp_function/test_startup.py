"""The function's init phase: cheap to import, settings checked at start, and a deployable folder
that runs on its own copy of core."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import tomllib

from tests.gcp_parts import FUNCTION_SOURCE, function_command, function_env
from tests.support import REPO, isolated_env, serve_command

FUNCTION_DIR = FUNCTION_SOURCE.parent
HEAVY = ["numpy", "sklearn", "scipy", "joblib", "google.cloud.storage"]


def _import_main(env: dict[str, str], cwd: Path, source_dir: Path = FUNCTION_DIR) -> dict:
    """Import main.py the way functions-framework does (its folder appended to sys.path) in a
    fresh interpreter started in ``cwd``; report what got loaded and what was logged."""
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.append({str(source_dir)!r})
        import main, core
        print(json.dumps({{
            "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules),
            "core": core.__file__,
            "predict": callable(main.predict),
        }}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    outcome["log"] = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return outcome


def test_importing_the_function_loads_no_model_and_no_storage_sdk(tmp_path):
    outcome = _import_main(isolated_env(MODEL_URI="gs://models/iris/model.joblib"), tmp_path)
    assert outcome["predict"] is True
    assert outcome["loaded"] == []
    assert outcome["log"] == []


def test_preload_model_loads_it_during_import(tmp_path, gcs_emulator, model_in_gcs):
    outcome = _import_main(isolated_env(MODEL_URI=model_in_gcs, PRELOAD_MODEL="true", **gcs_emulator.env()), tmp_path)
    assert {"sklearn", "google.cloud.storage"} <= set(outcome["loaded"])
    assert [(line["severity"], line["message"]) for line in outcome["log"]] == [("INFO", "model loaded")]


def test_a_wrong_setting_stops_the_start_with_a_message_naming_it(tmp_path):
    result = subprocess.run(
        function_command(FUNCTION_SOURCE), capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=function_env(tmp_path, {"MODEL_URI": "gs://models/iris/model.joblib", "MAX_ROWS": "lots"}),
    )
    assert result.returncode != 0
    assert "MAX_ROWS='lots' is not allowed; expected an integer from 1 to 1000000" in result.stderr


def test_the_bundled_folder_serves_with_its_own_copy_of_core(
    tmp_path, function_factory, gcs_emulator, model_in_gcs
):
    archive = tmp_path / "serverless-ml-gcp.zip"
    done = subprocess.run(
        [*serve_command(), "package", "--provider", "gcp", "--out", str(archive)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    bundle_dir = tmp_path / "gcp_function"
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(bundle_dir)
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["core", "gcp_logging.py", "main.py", "requirements.txt"]
    assert (bundle_dir / "core" / "http" / "openapi.json").is_file()
    assert not list(bundle_dir.rglob("__pycache__"))

    # functions-framework appends the source folder to sys.path: the copy must win over the
    # installed package, as it is the only one in the cloud
    outcome = _import_main(isolated_env(MODEL_URI=model_in_gcs), tmp_path, source_dir=bundle_dir)
    assert Path(outcome["core"]).is_relative_to(bundle_dir)

    function = function_factory(
        {"MODEL_URI": model_in_gcs, **gcs_emulator.env()},
        source=bundle_dir / "main.py",
    )
    status, _, body = function.post_json({"features": [6.7, 3.0, 5.2, 2.3]})
    assert status == 200, body
    assert json.loads(body)["predictions"] == ["virginica"]


def test_requirements_name_every_runtime_dependency_of_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = project["dependencies"] + project["optional-dependencies"]["gcp"]
    required = (FUNCTION_DIR / "requirements.txt").read_text()
    listed = {
        re.match(r"[A-Za-z0-9._-]+", line).group(0).lower()
        for line in required.splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {re.match(r"[A-Za-z0-9._-]+", spec).group(0).lower() for spec in needed} <= listed
