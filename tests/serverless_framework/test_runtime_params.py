"""The runtime and architecture params of serverless.yml (`sls print`: resolved, nothing packaged):
the function's Runtime and Architectures and the wheels pip is asked for follow them, the default is
python3.13 on x86_64, and a value Lambda would run the package badly on fails before anything is
built, naming the param."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.serverless_framework import sls_support as sls


@pytest.fixture(scope="module")
def service_copy(tmp_path_factory) -> Path:
    return sls.copy_service(tmp_path_factory.mktemp("sls-print-runtime") / "service")


def _print(service: Path, *params: str):
    env = sls.sls_env()
    env.pop("PYTHON_REQUIREMENTS_BIN", None)
    return sls.run_sls(["print", "--stage", "dev", sls.BUCKET_PARAM, *params, "--format", "json"],
                       env, timeout=120, service=service)


def _resolved(service: Path, *params: str) -> dict:
    done = _print(service, *params)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def _wheel_args(config: dict) -> tuple[str, str, list[str]]:
    requirements = config["custom"]["pythonRequirements"]
    args = requirements["pipCmdExtraArgs"]
    (version,) = [a.split("=", 1)[1] for a in args if a.startswith("--python-version=")]
    platforms = [a.split("=", 1)[1] for a in args if a.startswith("--platform=")]
    return requirements["pythonBin"], version, platforms


def test_by_default_the_functions_run_python3_13_on_x86_64_with_its_wheels(service_copy):
    """python3.13, as `serverless-ml package --provider aws` and infra/aws default to."""
    from serverless_ml.bundles.providers import LAMBDA_DEFAULT_PYTHON

    config = _resolved(service_copy)
    assert (config["provider"]["runtime"], config["provider"]["architecture"]) == ("python3.13", "x86_64")
    assert LAMBDA_DEFAULT_PYTHON == "3.13"
    assert _wheel_args(config) == (
        "python3.13", "3.13", ["manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64"])


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13", "python3.14"])
@pytest.mark.parametrize("architecture, machine", [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_each_allowed_runtime_and_architecture_picks_its_wheels(service_copy, runtime, architecture, machine):
    config = _resolved(service_copy, f"--param=runtime={runtime}", f"--param=architecture={architecture}")
    assert (config["provider"]["runtime"], config["provider"]["architecture"]) == (runtime, architecture)
    bin_, version, platforms = _wheel_args(config)
    assert (bin_, version) == (runtime, runtime.removeprefix("python"))
    assert platforms and all(p.endswith(f"_{machine}") for p in platforms)


@pytest.mark.parametrize("param, expected", [
    ("runtime=python3.11", "runtime=python3.11 is not allowed; expected one of python3.12, python3.13, python3.14"),
    ("runtime=3.14", "runtime=3.14 is not allowed; expected one of python3.12, python3.13, python3.14"),
    ("architecture=aarch64", "architecture=aarch64 is not allowed; expected x86_64 or arm64"),
    ("snapStart=yes please", "snapStart=yes please is not allowed; expected true or false"),
])
def test_a_runtime_or_architecture_lambda_cannot_serve_this_package_on_is_refused(service_copy, param, expected):
    done = _print(service_copy, f"--param={param}")
    assert done.returncode != 0
    assert expected in done.stdout + done.stderr


def test_snapstart_with_more_than_512_mb_of_tmp_is_refused(service_copy):
    done = _print(service_copy, "--param=snapStart=true", "--param=predictEphemeralStorage=1024")
    assert done.returncode != 0
    assert ("snapStart=true with predictEphemeralStorage=1024: SnapStart allows at most 512 MB of /tmp; "
            "expected predictEphemeralStorage=512") in done.stdout + done.stderr


@pytest.mark.parametrize("key, value, what", [
    ("fileSystemConfig", {"localMountPath": "/mnt/models",
                          "arn": "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0"},
     "EFS file systems"),
    ("provisionedConcurrency", 2, "provisioned concurrency"),
])
def test_snapstart_with_efs_or_provisioned_concurrency_added_to_predict_is_refused(tmp_path, key, value, what):
    """Neither is a param: a user who adds one to functions.predict and asks for SnapStart is told
    before anything is built (Lambda would refuse the deploy); without SnapStart it is kept."""
    service = sls.copy_service(tmp_path / "service")
    config = service / "serverless.yml"
    anchor = "    ephemeralStorageSize: ${param:predictEphemeralStorage}\n"
    assert anchor in config.read_text()
    config.write_text(config.read_text().replace(anchor, anchor + f"    {key}: {json.dumps(value)}\n", 1))
    refused = _print(service, "--param=snapStart=true")
    assert refused.returncode != 0
    assert (f"snapStart=true with functions.predict.{key} set: SnapStart does not support {what}; "
            f"expected no functions.predict.{key}") in refused.stdout + refused.stderr
    assert _resolved(service, "--param=snapStart=false")["functions"]["predict"][key] == value
