"""pandas goes into a bundle only for a model that takes its rows as a DataFrame (input schema
layout "frame"): ``serverless-ml package --extra pandas``, or ``--model PATH`` that reads the
model's schema. The Lambda bundle with pandas takes aws_lambda/requirements-pandas.txt as its
constraints (what serverless.yml installs with modelNeedsPandas=true), fits Lambda's 250 MB, and
serves the mixed pipeline; the default bundle answers that model with a 503 naming what to install.
Every bundle's description beside the zip (what infra/modules/bundle reads) says what it carries."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from tests.support import REPO

LAMBDA_UNZIPPED_LIMIT = 250 * 2**20
PANDAS_REQUIREMENTS = REPO / "aws_lambda" / "requirements-pandas.txt"
# the mixed pipeline of tests/typed_models.py: numbers imputed and scaled, two one-hot columns
PASSENGERS = [
    {"age": 22, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"},
    {"age": None, "fare": 80.0, "pclass": 1, "sex": "female", "embarked": "C"},
    {"age": 35, "fare": 8.05, "pclass": 3, "sex": "female", "embarked": "Q"},
]

HANDLE = """
    import json, sys
    from aws_lambda import handler

    class Context:
        aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
        function_name = "serverless-ml-predict"
        client_context = None

    answer = handler.predict(json.loads(EVENT), Context())
    pandas = sys.modules.get("pandas")
    print(json.dumps({"answer": answer, "pandas": getattr(pandas, "__file__", None)}))
"""


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    """requirements-pandas.txt's pins with its ``-r requirements.txt`` inlined, as pip and the
    Serverless plugin read it."""
    from serverless_ml.bundles.dependencies import constraint_lines

    return {_normalised(name): version for name, version in (line.split("==") for line in constraint_lines(PANDAS_REQUIREMENTS))}


def _sizes(archive: Path) -> tuple[int, int]:
    with zipfile.ZipFile(archive) as bundle:
        return sum(info.file_size for info in bundle.infolist()), archive.stat().st_size


def _description(archive: Path) -> dict:
    return json.loads(archive.with_name(archive.stem + ".bundle.json").read_text())


@pytest.fixture(scope="module")
def pandas_lambda(package, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The Lambda bundle with --extra pandas, for Lambda's default Python 3.13 (built once)."""
    archive = tmp_path_factory.mktemp("pandas-lambda") / "serverless-ml-aws.zip"
    done = package("--provider", "aws", "--extra", "pandas", "--out", str(archive))
    assert done.returncode == 0, done.stderr
    return archive, done


@pytest.fixture(scope="module")
def pandas_task(pandas_lambda, unzip, tmp_path_factory) -> Path:
    return unzip(pandas_lambda[0], tmp_path_factory.mktemp("var-task-pandas"))


@pytest.fixture(scope="module")
def default_task(built, unzip, tmp_path_factory) -> Path:
    """The default Python 3.13 Lambda bundle (the build test_lambda_bundle.py checks), unzipped."""
    return unzip(built("aws"), tmp_path_factory.mktemp("var-task-default"))


def serve_mixed(folder: Path, python: str, model: Path, in_bundle, predict_event) -> dict:
    code = f"EVENT = {json.dumps(predict_event({'instances': PASSENGERS}))!r}\n" + textwrap.dedent(HANDLE)
    return in_bundle(folder, code, {"MODEL_URI": model.as_uri()}, python=python)


def test_the_pandas_lambda_bundle_ships_what_serverless_yml_deploys(pandas_lambda, tmp_path):
    archive, done = pandas_lambda
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(tmp_path, [n for n in bundle.namelist() if n.split("/", 1)[0].endswith(".dist-info")])
        wheel = bundle.read(next(n for n in bundle.namelist() if re.match(r"pandas-[^/]+\.dist-info/WHEEL$", n))).decode()
    shipped = {_normalised(d.metadata["Name"]): d for d in metadata.distributions(path=[str(tmp_path)])}
    pins = _pins()
    assert {name: shipped[name].version for name in ("pandas", "python-dateutil", "six", "numpy", "scikit-learn")} == {
        name: pins[name] for name in ("pandas", "python-dateutil", "six", "numpy", "scikit-learn")}
    # every run-time dependency of what the bundle carries is pinned: nothing floats with the next release
    needed = {_normalised(re.match(r"[A-Za-z0-9._-]+", r).group())
              for d in shipped.values() for r in d.requires or () if "extra ==" not in r and "sys_platform" not in r}
    assert needed <= set(pins), f"not pinned in {PANDAS_REQUIREMENTS.name}: {sorted(needed - set(pins))}"
    assert set(shipped) <= set(pins), sorted(set(shipped) - set(pins))
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    assert tags and all(t.startswith("cp313-cp313-manylinux") and t.endswith("_x86_64") for t in tags), tags
    assert "pandas 3." in done.stdout  # the report's versions line


def test_the_pandas_lambda_bundle_fits_lambdas_limit_and_reports_both_sizes(pandas_lambda, built):
    archive, done = pandas_lambda
    unzipped, zipped = _sizes(archive)
    default_unzipped, default_zipped = _sizes(built("aws"))
    print(f"\nLambda bundle (python3.13 x86_64): without pandas {default_unzipped / 2**20:.1f} MiB unzipped, "
          f"{default_zipped / 2**20:.1f} MiB zipped; with pandas {unzipped / 2**20:.1f} MiB unzipped, "
          f"{zipped / 2**20:.1f} MiB zipped (+{(unzipped - default_unzipped) / 2**20:.1f} / +{(zipped - default_zipped) / 2**20:.1f})")
    assert unzipped < LAMBDA_UNZIPPED_LIMIT, f"{unzipped} bytes unzipped exceeds Lambda's 250 MB"
    assert f"unzipped {unzipped / 2**20:8.1f} MB of 250 MB" in done.stdout
    assert default_unzipped < unzipped  # pandas is only here
    with zipfile.ZipFile(built("aws")) as default:
        assert not [n for n in default.namelist() if n.startswith(("pandas/", "pandas-"))]


def test_each_bundle_describes_what_it_carries_beside_the_zip(pandas_lambda, built):
    """What Terraform reads (infra/modules/bundle): the zip's digest ties the description to it."""
    for archive, extras in ((pandas_lambda[0], ["pandas"]), (built("aws"), [])):
        description = _description(archive)
        assert description["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
        assert (description["bundle"], description["provider"], description["extras"]) == (archive.name, "aws", extras)
        assert description["python_version"] == "3.13" and description["onnx_only"] is False
        assert ("pandas" in description["dependencies"]) == bool(extras)


def test_the_mixed_pipeline_is_served_from_the_bundle_with_pandas(
        pandas_task, lambda_python, typed_models, in_bundle, predict_event):
    outcome = serve_mixed(pandas_task, lambda_python, typed_models["mixed"], in_bundle, predict_event)
    answer = outcome["answer"]
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    import joblib
    import pandas as pd

    expected = joblib.load(typed_models["mixed"]).predict(pd.DataFrame(PASSENGERS).astype({"age": float}))
    assert body["predictions"] == expected.tolist() == [False, True, True]
    assert body["classes"] == [False, True]
    assert Path(outcome["pandas"]).is_relative_to(pandas_task)  # the bundle's own pandas


def test_without_pandas_the_mixed_pipeline_answers_503_naming_what_to_install(
        default_task, lambda_python, typed_models, in_bundle, predict_event):
    outcome = serve_mixed(default_task, lambda_python, typed_models["mixed"], in_bundle, predict_event)
    answer = outcome["answer"]
    assert answer["statusCode"] == 503, answer
    assert "Traceback" not in answer["body"]
    assert outcome["pandas"] is None
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "model_unavailable", error
    assert "takes its rows as a DataFrame" in error["message"] and "pandas is not installed here" in error["message"]
    assert "serverless-ml package --extra pandas" in error["message"], error
    assert "modelNeedsPandas" in error["message"] and "model_needs_pandas" in error["message"], error


# --- how the command knows: --extra pandas, --model PATH ----------------------------------------

def _requirements_of(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as bundle:
        text = bundle.read("requirements.txt").decode()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("provider", ["gcp", "azure"])
def test_the_platform_installs_pandas_only_when_asked(built, provider):
    assert [line for line in _requirements_of(built(provider, "--extra", "pandas")) if line.startswith("pandas")] == ["pandas>=2.1"]
    assert not [line for line in _requirements_of(built(provider)) if line.startswith("pandas")]
    assert _description(built(provider, "--extra", "pandas"))["extras"] == ["pandas"]


@pytest.mark.parametrize("model, needs", [
    ("mixed", True), ("strict", True), ("hgb", True),  # DataFrame pipelines
    ("logistic", False), ("text", False),  # a float matrix (named numeric columns), a list of texts
])
def test_model_adds_pandas_when_the_fitted_model_takes_a_dataframe(package, typed_models, tmp_path, model, needs):
    archive = tmp_path / "gcp.zip"
    done = package("--provider", "gcp", "--model", str(typed_models[model]), "--out", str(archive))
    assert done.returncode == 0, done.stderr
    assert bool([line for line in _requirements_of(archive) if line.startswith("pandas")]) == needs
    assert _description(archive)["extras"] == (["pandas"] if needs else [])
    if needs:
        assert (f"note: pandas added for --model {typed_models[model]}: the model takes its rows as a DataFrame "
                "(layout 'frame', from the fitted joblib model)") in done.stdout
    else:
        assert f"note: --model {typed_models[model]}: the model takes its rows as a " in done.stdout


def test_model_reads_the_manifests_schema_first(package, typed_models, tmp_path):
    """A manifest's input_schema wins over the fitted model, as when core serves it: here it says
    "frame" for the numeric logistic regression, whose fitted model alone says "array"."""
    model = tmp_path / "model.joblib"
    model.write_bytes(typed_models["logistic"].read_bytes())
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    model.with_name("model.joblib.manifest.json").write_text(json.dumps(
        {"input_schema": {"layout": "frame", "columns": [{"name": c, "type": "number"} for c in columns]}}))
    done = package("--provider", "gcp", "--model", str(model), "--out", str(tmp_path / "out" / "gcp.zip"))
    assert done.returncode == 0, done.stderr
    assert "from its manifest's input_schema" in done.stdout
    assert "pandas>=2.1" in _requirements_of(tmp_path / "out" / "gcp.zip")


def test_extra_pandas_for_a_model_that_does_not_need_it_says_so(package, typed_models, tmp_path):
    done = package("--provider", "gcp", "--extra", "pandas", "--model", str(typed_models["logistic"]),
                   "--out", str(tmp_path / "gcp.zip"))
    assert done.returncode == 0, done.stderr
    assert f"--extra pandas is not needed by --model {typed_models['logistic']}" in done.stdout
    assert "pandas>=2.1" in _requirements_of(tmp_path / "gcp.zip")  # asked for, so kept


@pytest.mark.parametrize("args, expected", [
    (("--onnx-only", "--extra", "pandas"), "--extra pandas is for a scikit-learn model that takes a DataFrame, which --onnx-only leaves out"),
    (("--model", "{missing}"), "is not a file; expected the model file the bundle will serve"),
    (("--model", "{h5}"), "has an extension core cannot load; expected one of"),
    (("--onnx-only", "--model", "{mixed}"), "is a joblib file, and --onnx-only serves .onnx models only"),
])
def test_a_model_or_extra_that_cannot_be_served_is_refused(package, typed_models, tmp_path, args, expected):
    (tmp_path / "model.h5").write_bytes(b"weights")
    paths = {"missing": str(tmp_path / "nowhere.joblib"), "h5": str(tmp_path / "model.h5"), "mixed": str(typed_models["mixed"])}
    archive = tmp_path / "out" / "aws.zip"
    done = package("--provider", "aws", "--no-deps", "--out", str(archive), *(a.format(**paths) for a in args))
    assert done.returncode == 2
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not archive.exists()


def test_constraints_inline_the_files_they_include(tmp_path):
    """pip would install the lines of a file that a constraints file includes with -r."""
    from serverless_ml.bundles.dependencies import constraint_lines

    (tmp_path / "base.txt").write_text("# pins\nnumpy==2.4.6\n\nscikit-learn==1.9.1\n")
    (tmp_path / "more.txt").write_text("-r base.txt\npandas==3.1.1\n")
    assert constraint_lines(tmp_path / "more.txt") == ["numpy==2.4.6", "scikit-learn==1.9.1", "pandas==3.1.1"]
    assert set(_pins()) >= {"scikit-learn", "numpy", "scipy", "pandas", "python-dateutil", "six"}
