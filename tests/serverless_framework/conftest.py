"""`sls package` of serverless.yml, once per session, for the tests of this folder (how it is
made: sls_support.py), started in the background when the run is collected (tests/background.py)."""

from __future__ import annotations

import zipfile

import pytest

from tests.background import PACKAGING, session_build
from tests.serverless_framework.sls_support import (
    ONNX_MODEL_KEY,
    PARAMS,
    SHIFTING_PARAMS,
    Packaged,
    package_service,
)


@session_build(lane=PACKAGING)
def packaged(tmp_path_factory) -> Packaged:
    """The default deployment: a scikit-learn model (models/model.joblib), aws_lambda/requirements.txt."""
    return package_service(tmp_path_factory.mktemp("sls-package"))


@session_build(lane=PACKAGING)
def packaged_onnx(tmp_path_factory) -> Packaged:
    """A deployment of an .onnx model: only the model key says so, and the package installs
    aws_lambda/requirements-onnx.txt (onnxruntime, no scikit-learn)."""
    return package_service(tmp_path_factory.mktemp("sls-package-onnx"), (*PARAMS, f"--param=modelKey={ONNX_MODEL_KEY}"))


@session_build(lane=PACKAGING)
def packaged_pandas(tmp_path_factory) -> Packaged:
    """A deployment of a model that takes a DataFrame: `--param=modelNeedsPandas=true` makes the
    package install aws_lambda/requirements-pandas.txt (requirements.txt and pandas)."""
    return package_service(tmp_path_factory.mktemp("sls-package-pandas"), (*PARAMS, "--param=modelNeedsPandas=true"))


@session_build(lane=PACKAGING)
def packaged_snapstart(tmp_path_factory) -> Packaged:
    """SnapStart for predict on arm64, asked together with the warm-up plugin (which SnapStart
    turns off for predict): `--param=snapStart=true --param=warmup=true --param=architecture=arm64`."""
    return package_service(tmp_path_factory.mktemp("sls-package-snapstart"), (
        *PARAMS, "--param=snapStart=true", "--param=warmup=true", "--param=architecture=arm64"))


@session_build(lane=PACKAGING)
def packaged_shifting(tmp_path_factory) -> Packaged:
    """Traffic shifting of predict by CodeDeploy, with the warm-up plugin on:
    `--param=deploymentPreference=Canary10Percent5Minutes --param=warmup=true`; and the batch
    fan-out on Step Functions (`--param=fanOut=true --param=fanOutMaxConcurrency=25`), in the same
    package because each package costs a minute and a half of pip, and the two touch different
    functions (test_package_fan_out.py)."""
    return package_service(tmp_path_factory.mktemp("sls-package-shifting"), (*PARAMS, *SHIFTING_PARAMS))


@session_build(lane=PACKAGING)
def packaged_shifting_snapstart(tmp_path_factory) -> Packaged:
    """Traffic shifting and SnapStart together: `--param=deploymentPreference=Linear10PercentEvery1Minute
    --param=snapStart=true`, with thresholds and a metrics namespace of its own."""
    return package_service(tmp_path_factory.mktemp("sls-package-shifting-snapstart"), (
        *PARAMS, "--param=deploymentPreference=Linear10PercentEvery1Minute", "--param=snapStart=true",
        "--param=rollbackErrorPercent=2.5", "--param=rollbackDisagreementPercent=20",
        "--param=metricsNamespace=team/churn"))


@pytest.fixture(scope="session")
def package_entries(packaged) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(packaged.zip_path) as archive:
        return {info.filename: info for info in archive.infolist()}
