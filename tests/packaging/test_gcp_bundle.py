"""The Cloud Functions source zip: main.py at the root, core beside it, requirements.txt for Cloud
Build; served by functions-framework's own server from the unzipped folder."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from tests.gcp_parts import start_function
from tests.support import REPO, isolated_env, stop_process


def test_functions_framework_serves_predict_from_the_unzipped_source(built, unzip, tmp_path, demo_model_uri):
    folder = unzip(built("gcp"), tmp_path / "source")
    assert sorted(p.name for p in folder.iterdir()) == ["core", "gcp_logging.py", "main.py", "requirements.txt"]
    function = start_function(tmp_path / "run", {"MODEL_URI": demo_model_uri}, source=folder / "main.py")
    try:
        status, _, body = function.post_json({"features": [6.7, 3.0, 5.2, 2.3]})
    finally:
        stop_process(function.process)
    assert status == 200, body
    assert json.loads(body)["predictions"] == ["virginica"]


def test_the_source_folder_imports_its_own_copy_of_core(built, unzip, tmp_path):
    folder = unzip(built("gcp"), tmp_path / "source")
    # functions-framework appends the source folder to sys.path; the copy must win over an
    # installed package, as it is the only one in the cloud
    code = textwrap.dedent(f"""
        import sys
        sys.path.append({str(folder)!r})
        import main, core
        print(core.__file__)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=isolated_env(MODEL_URI="gs://models/iris/model.joblib"))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(folder)


def test_the_source_carries_no_bytecode_and_the_requirements_cloud_build_installs(built):
    with zipfile.ZipFile(built("gcp")) as bundle:
        names = bundle.namelist()
        requirements = bundle.read("requirements.txt").decode()
    assert "core/http/openapi.json" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert requirements == (REPO / "gcp_function" / "requirements.txt").read_text()


def test_a_model_format_extra_adds_its_requirement(built):
    with zipfile.ZipFile(built("gcp", "--extra", "onnx")) as bundle:
        requirements = bundle.read("requirements.txt").decode().splitlines()
    assert any(line.startswith("onnxruntime") for line in requirements)
    assert requirements[: len((REPO / "gcp_function" / "requirements.txt").read_text().splitlines())] == (
        REPO / "gcp_function" / "requirements.txt").read_text().splitlines()
