"""Fixtures for the Terraform configurations in infra/: the Terraform CLI with the AWS provider
from this machine's filesystem mirror, moto's server as the AWS API, checkov, python-hcl2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra import terraform_support as tf


@pytest.fixture(scope="session")
def terraform() -> str:
    return tf.require_terraform()


@pytest.fixture(scope="session")
def aws_provider_mirror(terraform):
    return tf.require_provider_mirror("hashicorp/aws")


@pytest.fixture(scope="session")
def cli_config(aws_provider_mirror, tmp_path_factory) -> Path:
    """A Terraform CLI configuration that installs hashicorp/aws from the mirror and only there."""
    return tf.write_cli_config(tmp_path_factory.mktemp("terraform-cli") / "terraformrc", aws_provider_mirror)


@pytest.fixture(scope="session")
def aws_workdir(cli_config, tmp_path_factory):
    """A copy of infra/aws, initialised offline (terraform init -backend=false); its .terraform
    folder and lock file stay in tmp."""
    workdir = tf.Workdir(tf.copy_config("aws", tmp_path_factory.mktemp("infra-aws")), cli_config)
    result = workdir.run("init", "-backend=false", "-input=false")
    assert result.returncode == 0, f"terraform init failed:\n{result.stdout}\n{result.stderr}"
    return workdir


@pytest.fixture(scope="session")
def checkov() -> str:
    found = tf.checkov_executable()
    if not found:
        pytest.skip("checkov is not installed: `make .venv-checkov/.installed` builds it, or set CHECKOV")
    return found


@pytest.fixture(scope="session")
def hcl2_module():
    return pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install -e '.[test]')")


# Each configuration parsed once for every test file that reads it (test_configs,
# test_rollout_configs, test_fanout_configs); the parsed form is only read.
@pytest.fixture(scope="session")
def aws(hcl2_module):
    return tf.parse_config(tf.INFRA / "aws")


@pytest.fixture(scope="session")
def azure(hcl2_module):
    return tf.parse_config(tf.INFRA / "azure")


@pytest.fixture(scope="session")
def gcp(hcl2_module):
    return tf.parse_config(tf.INFRA / "gcp")
