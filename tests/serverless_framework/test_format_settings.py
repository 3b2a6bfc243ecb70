"""The model-format and batch settings of core (SKOPS_TRUSTED_TYPES, STRICT_MODEL_VERSION,
ONNX_THREADS, BATCH_CHUNK_ROWS, BATCH_PART_BYTES) are params of serverless.yml: `--param="skopsTrustedTypes=..."`
reaches both functions' environment as the variable core reads, and no param leaves it empty,
which core takes as its default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.settings import DEFAULT_BATCH_CHUNK_ROWS, DEFAULT_BATCH_PART_BYTES, DEFAULT_ONNX_THREADS, Settings
from tests.serverless_framework import sls_support as sls

# param -> the environment variable core reads
FORMAT_SETTINGS = {
    "skopsTrustedTypes": "SKOPS_TRUSTED_TYPES",
    "strictModelVersion": "STRICT_MODEL_VERSION",
    "onnxThreads": "ONNX_THREADS",
    "batchChunkRows": "BATCH_CHUNK_ROWS",
    "batchPartBytes": "BATCH_PART_BYTES",
}
GIVEN = {
    "skopsTrustedTypes": "sklearn.tree._tree.Tree,my_features.steps.Doubler",
    "strictModelVersion": "true",
    "onnxThreads": "0",
    "batchChunkRows": "2500",
    "batchPartBytes": "5242880",
}


@pytest.fixture(scope="module")
def service_copy(tmp_path_factory) -> Path:
    return sls.copy_service(tmp_path_factory.mktemp("sls-print-settings") / "service")


def _printed_environment(service: Path, *params: str) -> dict[str, str]:
    """`sls print` of provider.environment: the variables resolved, nothing packaged."""
    done = sls.run_sls(
        ["print", "--stage", "dev", *sls.PARAMS, *params, "--format", "json", "--path", "provider.environment"],
        sls.sls_env(), timeout=120, service=service)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def test_given_params_become_the_variables_core_reads(service_copy):
    environment = _printed_environment(service_copy, *(f"--param={k}={v}" for k, v in GIVEN.items()))
    assert {variable: environment[variable] for variable in FORMAT_SETTINGS.values()} == {
        FORMAT_SETTINGS[param]: value for param, value in GIVEN.items()}
    settings = Settings.from_env(environment)  # core accepts what the deployment sets
    assert settings.skops_trusted_types == ("sklearn.tree._tree.Tree", "my_features.steps.Doubler")
    assert settings.strict_model_version is True
    assert settings.onnx_threads == 0
    assert settings.batch_chunk_rows == 2500
    assert settings.batch_part_bytes == 5242880


def test_without_params_both_functions_get_empty_values_and_core_its_defaults(packaged):
    """The default package (`npm run package` with no setting): each variable is there, empty."""
    resources = packaged.template()["Resources"]
    for function in ("PredictLambdaFunction", "BatchLambdaFunction"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert {variable: variables.get(variable) for variable in FORMAT_SETTINGS.values()} == dict.fromkeys(
            FORMAT_SETTINGS.values(), ""), function
        settings = Settings.from_env(variables)
        assert settings.skops_trusted_types == ()
        assert settings.strict_model_version is False
        assert settings.onnx_threads == DEFAULT_ONNX_THREADS
        assert settings.batch_chunk_rows == DEFAULT_BATCH_CHUNK_ROWS
        assert settings.batch_part_bytes == DEFAULT_BATCH_PART_BYTES
