"""azure_function/requirements.txt and gcp_function/requirements.txt resolve, with pip's own
resolver against the package registry, to wheels for every Python version the cloud runs
(tests/infra/test_python_versions.py holds the list) on that cloud's Linux: the platform installs
these files at deploy time, so a version without wheels would only fail there.

`pip install --dry-run --report` resolves without installing; only wheels for the target
(``--only-binary=:all:`` with ``--platform``/``--python-version``) may be chosen, as the Azure
bundle builder chooses them for `--vendor-deps`. pip's cache keeps a second run off the network.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from serverless_ml.bundles import builder, dependencies
from serverless_ml.bundles.providers import manylinux_platforms
from tests.infra.test_python_versions import SUPPORTED
from tests.support import REPO

# the glibc of each platform's Linux: Azure's workers (Debian 11, 2.31, as the bundle builder
# assumes); Cloud Run functions' python312/python313 on Ubuntu 22.04 (2.35), python314 on
# Ubuntu 24.04 (2.39)
PLATFORMS = {
    ("azure", version): builder.AZURE_PLATFORM.platforms for version in SUPPORTED["azure"]
} | {
    ("gcp", version): tuple(manylinux_platforms("x86_64", 39 if version == "3.14" else 35))
    for version in SUPPORTED["gcp"]
}
FOLDERS = {"azure": "azure_function", "gcp": "gcp_function"}
# what each file is for: a resolution that left one out would be no check of the file
NEEDED = {
    "azure": {"azure-functions", "azure-storage-blob", "azure-identity", "numpy", "scikit-learn", "joblib", "orjson"},
    "gcp": {"functions-framework", "google-cloud-storage", "numpy", "scikit-learn", "joblib", "orjson"},
}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize(("cloud", "version"), sorted(PLATFORMS))
def test_the_requirements_file_resolves_to_wheels_for_each_supported_python(cloud, version, tmp_path):
    requirements = REPO / FOLDERS[cloud] / "requirements.txt"
    platform = dependencies.TargetPlatform(PLATFORMS[cloud, version], version)
    report = tmp_path / "report.json"
    command = dependencies.pip_install_command(["-r", str(requirements)], tmp_path / "target", platform)
    command = [part for part in command if part != "--quiet"]
    command += ["--dry-run", "--ignore-installed", "--report", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"{requirements.relative_to(REPO)} does not resolve for {platform.describe()}:\n{done.stderr[-3000:]}")

    chosen = {normalised(item["metadata"]["name"]): item for item in json.loads(report.read_text())["install"]}
    assert NEEDED[cloud] <= set(chosen), f"not resolved: {sorted(NEEDED[cloud] - set(chosen))}"
    for name, item in chosen.items():
        wheel = item["download_info"]["url"].rsplit("/", 1)[-1]
        assert wheel.endswith(".whl"), f"{name}: {wheel} is not a wheel"
        # a wheel for this interpreter: pure Python, the stable ABI, or built for this version
        tags = wheel[:-4].split("-")[-3:]
        assert tags[0] in ("py3", "py2.py3") or tags[1] == "abi3" or tags[0] == f"cp{version.replace('.', '')}", (
            f"{name}: {wheel} is not for CPython {version}")
