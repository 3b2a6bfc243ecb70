"""``serverless-ml package --provider aws --extra skops`` (Python 3.13, the default) takes
aws_lambda/requirements.txt as its constraints, the file serverless.yml installs for a .joblib or
.skops model: the Terraform zip and `sls deploy` ship the same skops and the same dependencies of it."""

from __future__ import annotations

import re
import zipfile
from importlib import metadata
from pathlib import Path

from tests.support import REPO

REQUIREMENTS = REPO / "aws_lambda" / "requirements.txt"
ONNX_REQUIREMENTS = REPO / "aws_lambda" / "requirements-onnx.txt"
SKOPS_PROJECTS = ("skops", "packaging", "prettytable", "wcwidth")


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    """``{project: version}`` of a requirements file's ``name==version`` lines, names normalised."""
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, version = line.split("==")
            found[_normalised(name.strip())] = version.strip()
    return found


def _bundled(archive: Path, folder: Path) -> dict[str, metadata.Distribution]:
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(folder, [n for n in bundle.namelist() if n.split("/", 1)[0].endswith(".dist-info")])
    return {_normalised(d.metadata["Name"]): d for d in metadata.distributions(path=[str(folder)])}


def _runtime_requirements(distribution: metadata.Distribution) -> set[str]:
    return {_normalised(re.match(r"[A-Za-z0-9._-]+", r).group())
            for r in distribution.requires or () if "extra ==" not in r}


def test_the_skops_lambda_bundle_ships_what_serverless_yml_deploys(built, tmp_path):
    """wcwidth is pinned below its newest release (see requirements.txt), so an install that did
    not follow the file would differ here."""
    pinned = _pins(REQUIREMENTS)
    shipped = _bundled(built("aws", "--extra", "skops"), tmp_path / "skops")
    assert {name: shipped[name].version for name in SKOPS_PROJECTS if name in shipped} == {
        name: pinned[name] for name in SKOPS_PROJECTS}
    # every run-time dependency of what the bundle carries is pinned, so nothing in it floats
    needed = set().union(*(_runtime_requirements(d) for d in shipped.values()))
    assert needed <= set(pinned), f"not pinned in {REQUIREMENTS.name}: {sorted(needed - set(pinned))}"
    assert set(shipped) <= set(pinned), f"the bundle carries unpinned projects: {sorted(set(shipped) - set(pinned))}"


def test_both_lambda_requirements_pin_the_same_packaging():
    """packaging comes with skops in one file and with onnxruntime in the other: one version."""
    assert _pins(REQUIREMENTS)["packaging"] == _pins(ONNX_REQUIREMENTS)["packaging"]
