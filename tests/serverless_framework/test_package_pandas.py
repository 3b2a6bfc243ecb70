"""`sls package` with `--param="modelNeedsPandas=true"`: the package installs
aws_lambda/requirements-pandas.txt (requirements.txt and pandas, pinned), still fits Lambda's
250 MB unzipped, and serves a DataFrame pipeline from the unzipped package; the default package
carries no pandas and answers that model 503. Which file a set of params picks, and the params it
refuses, are read with `sls print`."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from tests.serverless_framework import sls_support as sls
from tests.support import REPO

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
PANDAS_REQUIREMENTS = REPO / "aws_lambda" / "requirements-pandas.txt"
PASSENGERS = [
    {"age": 22, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"},
    {"age": None, "fare": 80.0, "pclass": 1, "sex": "female", "embarked": "C"},
    {"age": 35, "fare": 8.05, "pclass": 3, "sex": "female", "embarked": "Q"},
]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    """The file's pins with its `-r requirements.txt` inlined, as serverless-python-requirements reads it."""
    from serverless_ml.bundles.dependencies import constraint_lines

    return {_normalised(name): version for name, version in (line.split("==") for line in constraint_lines(PANDAS_REQUIREMENTS))}


def _shipped(names) -> dict[str, str]:
    tops = {PurePosixPath(name).parts[0][: -len(".dist-info")] for name in names
            if PurePosixPath(name).parts[0].endswith(".dist-info")}
    return {_normalised(top.rsplit("-", 1)[0]): top.rsplit("-", 1)[1] for top in tops}


def _skip_without_python312(packaged):
    if packaged.bytecode_python is None:
        pytest.skip("python3.12 (the function's runtime, whose wheels the package holds) is not on this machine")


@pytest.fixture(scope="module")
def pandas_entries(packaged_pandas) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(packaged_pandas.zip_path) as archive:
        return {info.filename: info for info in archive.infolist()}


# `sls package` takes about four minutes here (pip for Lambda's platform, bytecode, zip): the
# first test to ask for a package pays for it in its setup, beyond the suite's 300 s default
SLS_PACKAGE_TIMEOUT = pytest.mark.timeout(900)


@SLS_PACKAGE_TIMEOUT
def test_the_package_ships_requirements_pandas_txt_at_its_pins(packaged_pandas, pandas_entries):
    # exactly the pinned projects at their pins (skops and its dependencies come with requirements.txt)
    assert _shipped(pandas_entries) == _pins()
    assert "pandas/__init__.py" in pandas_entries
    assert not [name for name in pandas_entries if name.startswith("aws_lambda/requirements")]
    unzipped = sum(info.file_size for info in pandas_entries.values())
    print(f"\n{packaged_pandas.zip_path.name} (modelNeedsPandas=true): {packaged_pandas.zip_path.stat().st_size / 2**20:.1f} MiB "
          f"zipped, {unzipped / 2**20:.1f} MiB unzipped; sls package took {packaged_pandas.seconds:.0f} s")
    assert unzipped < LAMBDA_UNZIPPED_LIMIT, f"{unzipped} bytes unzipped exceeds Lambda's 250 MB"


@SLS_PACKAGE_TIMEOUT
def test_the_default_package_carries_no_pandas(packaged, package_entries, pandas_entries):
    assert not [name for name in package_entries if name.startswith(("pandas/", "pandas-"))]
    unzipped = sum(info.file_size for info in package_entries.values())
    with_pandas = sum(info.file_size for info in pandas_entries.values())
    print(f"\n{packaged.zip_path.name} (default): {packaged.zip_path.stat().st_size / 2**20:.1f} MiB zipped, "
          f"{unzipped / 2**20:.1f} MiB unzipped; pandas adds {(with_pandas - unzipped) / 2**20:.1f} MiB unzipped")
    assert unzipped < with_pandas


@SLS_PACKAGE_TIMEOUT
def test_the_unzipped_package_serves_the_mixed_pipeline(packaged_pandas, typed_models, tmp_path):
    _skip_without_python312(packaged_pandas)
    outcome = sls.invoke_unzipped(packaged_pandas, tmp_path / "task", typed_models["mixed"].as_uri(),
                                          {"instances": PASSENGERS}, watched=("pandas",))
    answer = outcome["answer"]
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    import joblib
    import pandas as pd

    expected = joblib.load(typed_models["mixed"]).predict(pd.DataFrame(PASSENGERS).astype({"age": float}))
    assert body["predictions"] == expected.tolist() == [False, True, True]
    assert outcome["imported"] == ["pandas"]


@SLS_PACKAGE_TIMEOUT
def test_the_default_package_answers_the_mixed_pipeline_503(packaged, typed_models, tmp_path):
    """Never a 500: a 503 naming pandas and the param that adds it."""
    _skip_without_python312(packaged)
    outcome = sls.invoke_unzipped(packaged, tmp_path / "task", typed_models["mixed"].as_uri(),
                                          {"instances": PASSENGERS}, watched=("pandas",))
    answer = outcome["answer"]
    assert answer["statusCode"] == 503, answer
    assert "Traceback" not in answer["body"]
    assert "pandas is not installed" in answer["body"] and "modelNeedsPandas=true" in answer["body"]
    assert outcome["imported"] == []


@pytest.fixture(scope="module")
def service_copy(tmp_path_factory) -> Path:
    return sls.copy_service(tmp_path_factory.mktemp("sls-print-pandas") / "service")


@pytest.mark.parametrize("params, expected", [
    (("--param=modelNeedsPandas=true",), "aws_lambda/requirements-pandas.txt"),
    (("--param=modelNeedsPandas=YES", "--param=modelKey=models/titanic.pkl.gz"), "aws_lambda/requirements-pandas.txt"),
    (("--param=modelNeedsPandas=false",), "aws_lambda/requirements.txt"),
    (("--param=modelNeedsPandas=true", "--param=requirementsFile=aws_lambda/requirements.txt"), "aws_lambda/requirements.txt"),
])
def test_model_needs_pandas_picks_the_pandas_requirements(service_copy, params, expected):
    done = sls.print_requirements_file(service_copy, *params)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


@pytest.mark.parametrize("params, expected", [
    (("--param=modelNeedsPandas=maybe",), "modelNeedsPandas=maybe is not allowed; expected true or false (empty: false)"),
    (("--param=modelNeedsPandas=true", "--param=modelKey=models/model.onnx"),
     "modelNeedsPandas=true with modelKey=models/model.onnx: an .onnx model is served by onnxruntime"),
])
def test_a_model_needs_pandas_that_cannot_be_served_stops_the_package(service_copy, params, expected):
    done = sls.print_requirements_file(service_copy, *params)
    assert done.returncode != 0
    said = " ".join((done.stdout + done.stderr).split())
    assert expected in said, said[-2000:]
    assert " at " not in said.split(expected, 1)[1][:200]  # no JavaScript stack after the message
