"""Every Lambda runtime and architecture `serverless-ml package --provider aws` builds for gets
every pin of aws_lambda/requirements*.txt from PyPI as a manylinux wheel: pip resolves, without
installing, what the command would install (its own pip command: the same platforms, Python
version and constraints), for python3.12, 3.13 and 3.14 on x86_64 and arm64, and it is exactly
the pinned versions. A pin without a wheel for one of them fails here, not at a user's deploy.
The bundles themselves are built and run for the default runtime in the other tests here."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from serverless_ml.bundles import dependencies, sources
from serverless_ml.bundles.builder import SCIKIT_LEARN_REQUIREMENTS, BundleOptions, lambda_platform
from serverless_ml.bundles.providers import AWS, LAMBDA_ARCHITECTURES, LAMBDA_PYTHON_VERSIONS
from tests.support import REPO

# what the command installs for each requirements file: (its options, the file)
BUNDLES = {
    "default": ({"extras": ("skops",)}, "requirements.txt"),
    "onnx-only": ({"onnx_only": True}, "requirements-onnx.txt"),
    "pandas": ({"extras": ("pandas", "skops")}, "requirements-pandas.txt"),
}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    return {_normalised(name): version for name, version in (
        line.split("==") for line in dependencies.constraint_lines(path))}


def _resolve(options: BundleOptions) -> dict[str, str]:
    """What pip would install into the bundle, ``{project: version}``."""
    requirements = sources.without(sources.declared_requirements(options.source, options.model_extras),
                                   options.left_out)
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "constraints.txt"
        constraints.write_text("".join(f"{line}\n" for line in dependencies.constraint_lines(options.constraints)))
        report = Path(folder) / "report.json"
        command = dependencies.pip_install_command(requirements, Path(folder) / "target", lambda_platform(options),
                                                   constraints)
        done = subprocess.run([*command, "--dry-run", "--ignore-installed", "--report", str(report)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{options.python_version} {options.architecture}:\n{done.stderr[-3000:]}"
        installed = json.loads(report.read_text())["install"]
    return {_normalised(item["metadata"]["name"]): item["metadata"]["version"] for item in installed}


@pytest.mark.parametrize("bundle", sorted(BUNDLES))
@pytest.mark.parametrize("architecture", sorted(LAMBDA_ARCHITECTURES))
@pytest.mark.parametrize("python_version", LAMBDA_PYTHON_VERSIONS)
def test_every_pin_has_a_wheel_for_each_lambda_runtime_and_architecture(python_version, architecture, bundle):
    settings, file_name = BUNDLES[bundle]
    pinned = REPO / "aws_lambda" / file_name
    options = BundleOptions(provider=AWS, output=Path("unused.zip"), source=REPO, python_version=python_version,
                            architecture=architecture, constraints=pinned, **settings)
    resolved = _resolve(options)
    assert resolved == _pins(pinned), f"python{python_version} {architecture}, {file_name}"
    if options.onnx_only:
        assert not set(resolved) & set(SCIKIT_LEARN_REQUIREMENTS)
