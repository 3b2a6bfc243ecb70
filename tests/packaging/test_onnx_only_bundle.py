"""``serverless-ml package --onnx-only``: a bundle that serves .onnx models with onnxruntime and
NumPy, without scikit-learn, SciPy or joblib, on every provider; a scikit-learn model given to it
is answered with a 503 that says what to do."""

from __future__ import annotations

import json
import subprocess
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.azure_app import run_in_app
from tests.support import REPO

# what serving an .onnx model never needs (pyproject.toml's core dependencies and what they bring),
# by import name and by project name
SCIKIT_LEARN_MODULES = ("sklearn", "scipy", "joblib", "threadpoolctl", "pandas", "narwhals")
LEFT_OUT_PROJECTS = ("scikit-learn", "scipy", "joblib", "threadpoolctl", "pandas", "narwhals")
ROWS = [[6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2]]

HANDLE = """
    import json, sys
    from aws_lambda import handler

    class Context:
        aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
        function_name = "serverless-ml-predict"
        client_context = None

    answer = handler.predict(json.loads(EVENT), Context())
    imported = sorted({name.split(".")[0] for name in sys.modules} & set(STACK))
    homes = {name: getattr(sys.modules.get(name), "__file__", None) for name in ("numpy", "onnxruntime")}
    print(json.dumps({"answer": answer, "imported": imported, "homes": homes}))
"""


@pytest.fixture(scope="module")
def onnx_only_lambda(package, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The Lambda bundle with --onnx-only (Python 3.13, aws_lambda/requirements-onnx.txt as constraints:
    see test_onnx_constraints.py)."""
    archive = tmp_path_factory.mktemp("onnx-only-lambda") / "serverless-ml-aws.zip"
    done = package("--provider", "aws", "--onnx-only", "--out", str(archive))
    assert done.returncode == 0, done.stderr
    return archive, done


@pytest.fixture(scope="module")
def onnx_only_task(onnx_only_lambda, unzip, tmp_path_factory) -> Path:
    return unzip(onnx_only_lambda[0], tmp_path_factory.mktemp("var-task"))


@pytest.fixture(scope="module")
def models(exported_demo_model) -> Path:
    """The folder of the demo forest as model.joblib, and exported to model.onnx and model.skops."""
    exported_demo_model("skops")
    return exported_demo_model("onnx")[0].parent


@pytest.fixture(scope="module")
def typed_onnx(typed_models, tmp_path_factory) -> Path:
    """The mixed DataFrame pipeline and the text pipeline of tests/typed_models.py, exported to ONNX
    by `serverless-ml export` (one typed input per column; the text graph with the C locale)."""
    import shutil

    from tests.formats.format_support import export

    folder = tmp_path_factory.mktemp("typed-onnx-bundle")
    for name in ("mixed", "text"):
        shutil.copy(typed_models[name], folder / f"{name}.joblib")
        done = export(folder / f"{name}.joblib", "onnx")
        assert done.returncode == 0, done.stderr
    return folder


def serve_in_lambda_bundle(folder: Path, python: str, model: Path, in_bundle, predict_event, rows=ROWS) -> dict:
    event = json.dumps(predict_event({"instances": rows}))
    code = f"EVENT = {event!r}\nSTACK = {SCIKIT_LEARN_MODULES!r}\n" + textwrap.dedent(HANDLE)
    return in_bundle(folder, code, {"MODEL_URI": model.as_uri()}, python=python)


def test_the_lambda_bundle_carries_onnxruntime_and_numpy_and_nothing_of_scikit_learn(onnx_only_lambda):
    archive, _ = onnx_only_lambda
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
    tops = {name.split("/")[0] for name in names}
    modules = {top.split(".")[0] for top in tops if not top.endswith(".dist-info")}  # scipy.libs, threadpoolctl.py
    assert {"core", "aws_lambda", "numpy", "onnxruntime"} <= modules
    assert not modules & set(SCIKIT_LEARN_MODULES), sorted(modules & set(SCIKIT_LEARN_MODULES))
    shipped = {top[: -len(".dist-info")].rsplit("-", 1)[0].replace("_", "-").lower()
               for top in tops if top.endswith(".dist-info")}
    assert "onnxruntime" in shipped and not shipped & set(LEFT_OUT_PROJECTS), shipped
    # compiled for Lambda's Python 3.13, as the default bundle is
    assert "onnxruntime/__pycache__/__init__.cpython-313.pyc" in names


def test_the_report_shows_the_smaller_bundle_and_what_was_left_out(onnx_only_lambda, built):
    archive, done = onnx_only_lambda
    with zipfile.ZipFile(archive) as bundle:
        unzipped = sum(info.file_size for info in bundle.infolist())
    assert f"unzipped {unzipped / 2**20:8.1f} MB of 250 MB" in done.stdout
    assert "ONNX only, without scikit-learn, scipy, joblib" in done.stdout
    (versions,) = [line for line in done.stdout.splitlines() if line.startswith("  numpy ")]
    assert "onnxruntime " in versions and "scikit-learn" not in versions
    with zipfile.ZipFile(built("aws")) as default:  # the same build without --onnx-only (shared with test_lambda_bundle)
        default_unzipped = sum(info.file_size for info in default.infolist())
    assert unzipped < default_unzipped
    assert archive.stat().st_size < built("aws").stat().st_size


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # the expected probabilities, here
def test_the_handler_serves_an_onnx_model_from_the_bundle_alone(
        onnx_only_task, lambda_python, models, in_bundle, predict_event):
    outcome = serve_in_lambda_bundle(onnx_only_task, lambda_python, models / "model.onnx", in_bundle, predict_event)
    answer = outcome["answer"]
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    assert body["predictions"] == ["virginica", "setosa"]
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    import joblib  # the scikit-learn answer, in this process

    expected = joblib.load(models / "model.joblib").predict_proba(np.array(ROWS))
    np.testing.assert_allclose(body["probabilities"], expected, rtol=0, atol=1e-5)
    assert outcome["imported"] == []
    assert all(Path(home).is_relative_to(onnx_only_task) for home in outcome["homes"].values()), outcome["homes"]


TYPED_ROWS = {
    "mixed": [{"age": 22.0, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"},
              {"age": None, "fare": 80.0, "pclass": 1, "sex": "female", "embarked": "X"}],
    "text": ["free money now", "see you at lunch"],
}


@pytest.mark.parametrize("name", ["mixed", "text"])
def test_the_handler_serves_typed_onnx_models_from_the_bundle_alone(
        onnx_only_task, lambda_python, typed_onnx, in_bundle, predict_event, name):
    """Strings, missing values and texts, with onnxruntime and NumPy alone, in an environment with
    no locale settings (the bundle runs with PATH only), as scikit-learn answers them."""
    import joblib
    import pandas as pd

    rows = TYPED_ROWS[name]
    outcome = serve_in_lambda_bundle(onnx_only_task, lambda_python, typed_onnx / f"{name}.onnx", in_bundle, predict_event, rows)
    assert outcome["answer"]["statusCode"] == 200, outcome["answer"]
    body = json.loads(outcome["answer"]["body"])
    model = joblib.load(typed_onnx / f"{name}.joblib")
    X = rows if name == "text" else pd.DataFrame(rows).astype({"sex": object, "embarked": object})
    assert body["predictions"] == model.predict(X).tolist()
    assert body["classes"] == model.classes_.tolist()
    np.testing.assert_allclose(body["probabilities"], model.predict_proba(X), rtol=0, atol=1e-5)
    assert outcome["imported"] == []


@pytest.mark.parametrize("model, missing", [("model.joblib", "scikit-learn and joblib"),
                                            ("model.skops", "scikit-learn and skops")])
def test_a_scikit_learn_model_answers_503_saying_what_to_do(
        onnx_only_task, lambda_python, models, in_bundle, predict_event, model, missing):
    outcome = serve_in_lambda_bundle(onnx_only_task, lambda_python, models / model, in_bundle, predict_event)
    answer = outcome["answer"]
    assert answer["statusCode"] == 503, answer
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "model_unavailable"
    message = error["message"]
    assert f"/{model} is a {model.split('.')[1]} file, which needs {missing}, and they are not installed here" in message
    assert "export the model with `serverless-ml export MODEL --to onnx`" in message
    assert "build the bundle without --onnx-only" in message
    assert "Traceback" not in answer["body"]


def test_onnx_only_refuses_the_skops_extra(package, tmp_path):
    done = package("--provider", "aws", "--onnx-only", "--extra", "skops", "--out", str(tmp_path / "aws.zip"))
    assert done.returncode == 2
    assert "--extra skops needs scikit-learn, which --onnx-only leaves out" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "aws.zip").exists()


def requirement_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("provider, adapter, inside", [("gcp", "gcp_function", "requirements.txt"),
                                                      ("azure", "azure_function", "requirements.txt")])
def test_the_platform_installs_onnxruntime_and_not_scikit_learn(built, provider, adapter, inside):
    with zipfile.ZipFile(built(provider, "--onnx-only")) as bundle:
        text = bundle.read(inside).decode()
    base = requirement_lines((REPO / adapter / "requirements.txt").read_text())
    kept = [line for line in base if not line.startswith(("scikit-learn", "joblib"))]
    assert len(kept) == len(base) - 2  # the adapter's requirements.txt lists both
    onnx_extra = [line for line in requirement_lines(text) if line.startswith("onnxruntime")]
    assert requirement_lines(text) == [*kept, *onnx_extra] and len(onnx_extra) == 1
    assert any(line.startswith("numpy") for line in kept)
    assert ("# left out by `serverless-ml package --onnx-only` (it serves .onnx models only): "
            "scikit-learn, joblib") in text.splitlines()


def test_azure_vendored_from_the_onnx_only_requirements_serves_the_onnx_model(built, models, tmp_path):
    """What the platform installs from the generated requirements.txt, here by the builder's pip
    (--vendor-deps, for the Python running the tests), serves the model with nothing else on sys.path."""
    folder = built("azure", "--onnx-only", "--vendor-deps", "--python-version", "3.11").with_suffix("")
    site_packages = folder / ".python_packages" / "lib" / "site-packages"
    assert (site_packages / "onnxruntime").is_dir()
    assert not [name for name in SCIKIT_LEARN_MODULES if (site_packages / name).exists()]
    outcome = run_in_app(folder, [str(folder), str(site_packages)],
                         {"LOG_LEVEL": "ERROR", "MODEL_URI": (models / "model.onnx").as_uri()},
                         isolated=True, rows=ROWS, report=["onnxruntime", *SCIKIT_LEARN_MODULES])
    assert outcome["status"] == 200, outcome["body"]
    assert outcome["body"]["predictions"] == ["virginica", "setosa"]
    assert set(outcome["modules"]) == {"onnxruntime"}  # nothing of scikit-learn's stack was imported
    assert Path(outcome["modules"]["onnxruntime"]).is_relative_to(site_packages)


def test_a_bundle_with_scikit_learn_and_onnxruntime_says_what_onnx_only_saves(package, onnx_only_lambda, tmp_path):
    archive = tmp_path / "aws.zip"
    # both libraries are over Lambda's 250 MB: the refusal names the way out and its saving
    done = package("--provider", "aws", "--extra", "onnx", "--limit-mb", "1", "--out", str(archive))
    assert done.returncode == 2 and not archive.exists()
    saving = float(done.stderr.split("or --onnx-only, ")[1].split(" MB less, for a model exported to .onnx")[0])
    unzipped = float(done.stderr.split("would be ")[1].split(" MB unzipped")[0])
    with zipfile.ZipFile(onnx_only_lambda[0]) as bundle:
        onnx_only = sum(info.file_size for info in bundle.infolist()) / 2**20
    # what is left out is what it weighs: the two builds differ by it (onnxruntime, NumPy and the sources are in both)
    assert unzipped - saving == pytest.approx(onnx_only, abs=1.0)
    assert saving > 50
