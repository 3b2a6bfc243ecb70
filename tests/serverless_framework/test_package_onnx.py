"""`sls package` of an .onnx model: the model key alone (`--param="modelKey=models/model.onnx"`)
makes the package install aws_lambda/requirements-onnx.txt, so the predict function carries
onnxruntime and NumPy, without scikit-learn, SciPy or joblib, and answers from the unzipped package;
`requirementsFile` picks another file, and one that does not exist stops the package."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from tests.serverless_framework import sls_support as sls
from tests.support import REPO

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
ONNX_REQUIREMENTS = REPO / "aws_lambda" / "requirements-onnx.txt"
# what serving an .onnx model never needs, by import name
SCIKIT_LEARN_MODULES = ("sklearn", "scipy", "joblib", "threadpoolctl", "narwhals", "pandas")
ROWS = [[6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5]]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    lines = [line for line in ONNX_REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {_normalised(name): version for name, version in (line.split("==") for line in lines)}


@pytest.fixture(scope="module")
def onnx_entries(packaged_onnx) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(packaged_onnx.zip_path) as archive:
        return {info.filename: info for info in archive.infolist()}


@pytest.fixture(scope="module")
def demo_onnx_model(exported_demo_model) -> Path:
    return exported_demo_model("onnx")[0]


def test_the_predict_function_carries_onnxruntime_and_nothing_of_scikit_learn(packaged_onnx, onnx_entries):
    tops = {PurePosixPath(name).parts[0] for name in onnx_entries}
    modules = {top.split(".")[0] for top in tops if not top.endswith(".dist-info")}
    assert {"core", "aws_lambda", "numpy", "onnxruntime"} <= modules
    assert not modules & set(SCIKIT_LEARN_MODULES), sorted(modules & set(SCIKIT_LEARN_MODULES))
    # exactly the pinned projects, at their pins
    shipped = {_normalised(top[: -len(".dist-info")].rsplit("-", 1)[0]): top[: -len(".dist-info")].rsplit("-", 1)[1]
               for top in tops if top.endswith(".dist-info")}
    assert shipped == _pins()
    assert not [name for name in onnx_entries if name.startswith("aws_lambda/requirements")]
    with zipfile.ZipFile(packaged_onnx.zip_path) as archive:
        wheel = archive.read(f"onnxruntime-{shipped['onnxruntime']}.dist-info/WHEEL").decode()
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    assert tags and all(t.startswith("cp312-cp312-manylinux") and t.endswith("_x86_64") for t in tags), tags
    unzipped = sum(info.file_size for info in onnx_entries.values())
    print(f"\n{packaged_onnx.zip_path.name} (.onnx model): {packaged_onnx.zip_path.stat().st_size / 2**20:.1f} MiB zipped, "
          f"{unzipped / 2**20:.1f} MiB unzipped, {len(onnx_entries)} files; sls package took {packaged_onnx.seconds:.0f} s")
    assert unzipped < LAMBDA_UNZIPPED_LIMIT, f"{unzipped} bytes unzipped exceeds Lambda's 250 MB"


def test_the_functions_read_the_onnx_model_and_may_read_only_it(packaged_onnx):
    resources = packaged_onnx.template()["Resources"]
    model_uri = f"s3://{sls.INPUT_BUCKET}/{sls.ONNX_MODEL_KEY}"
    for function in ("PredictLambdaFunction", "BatchLambdaFunction"):
        assert resources[function]["Properties"]["Environment"]["Variables"]["MODEL_URI"] == model_uri
    model_object = f"arn:${{AWS::Partition}}:s3:::{sls.INPUT_BUCKET}/{sls.ONNX_MODEL_KEY}"
    for role in ("PredictRole", "BatchRole"):
        readable = [r["Fn::Sub"] for policy in resources[role]["Properties"]["Policies"]
                    for s in policy["PolicyDocument"]["Statement"] if s["Action"] == "s3:GetObject"
                    for r in s["Resource"] if "/models/" in r["Fn::Sub"]]
        assert readable == [model_object, model_object + ".manifest.json"], (role, readable)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # scikit-learn's answer, here
def test_the_unzipped_package_serves_the_onnx_model_without_scikit_learn(
        packaged_onnx, demo_onnx_model, demo_model_path, tmp_path):
    if packaged_onnx.bytecode_python is None:
        pytest.skip("python3.12 (the function's runtime, whose wheels the package holds) is not on this machine")
    outcome = sls.invoke_unzipped(packaged_onnx, tmp_path / "task", demo_onnx_model.as_uri(),
                                          {"instances": ROWS}, watched=(*SCIKIT_LEARN_MODULES, "onnxruntime"))
    answer = outcome["answer"]
    assert answer["statusCode"] == 200, answer
    payload = json.loads(answer["body"])
    import joblib  # scikit-learn's answer for the same rows, in this process

    forest = joblib.load(demo_model_path)
    assert payload["predictions"] == forest.predict(np.array(ROWS)).tolist()
    np.testing.assert_allclose(payload["probabilities"], forest.predict_proba(np.array(ROWS)), rtol=0, atol=1e-5)
    assert outcome["imported"] == ["onnxruntime"]


@pytest.fixture(scope="module")
def service_copy(tmp_path_factory) -> Path:
    return sls.copy_service(tmp_path_factory.mktemp("sls-print") / "service")


@pytest.mark.parametrize("params, expected", [
    ((), "aws_lambda/requirements.txt"),
    (("--param=modelKey=models/model.joblib",), "aws_lambda/requirements.txt"),
    (("--param=modelKey=models/iris.ONNX",), "aws_lambda/requirements-onnx.txt"),
    (("--param=modelKey=models/model.joblib", "--param=requirementsFile=aws_lambda/requirements-onnx.txt"),
     "aws_lambda/requirements-onnx.txt"),
    (("--param=modelKey=models/model.onnx", "--param=requirementsFile=aws_lambda/requirements.txt"),
     "aws_lambda/requirements.txt"),
])
def test_the_model_key_picks_the_requirements_unless_requirements_file_is_given(
        service_copy, params, expected):
    done = sls.print_requirements_file(service_copy, *params)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


def test_a_requirements_file_that_does_not_exist_stops_the_package(service_copy):
    """serverless-python-requirements alone would install nothing and go on: a function that
    answers 503 for every request."""
    done = sls.print_requirements_file(service_copy, "--param=requirementsFile=aws_lambda/requirements-onx.txt")
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert ("requirementsFile=aws_lambda/requirements-onx.txt: aws_lambda/requirements-onx.txt is not a file in "
            f"{service_copy}; expected a pip requirements file relative to serverless.yml") in said, said[-2000:]
    assert "    at " not in said, said[-2000:]  # no JavaScript stack
