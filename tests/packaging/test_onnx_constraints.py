"""``serverless-ml package --provider aws --onnx-only`` takes aws_lambda/requirements-onnx.txt as
its constraints, the file serverless.yml installs for an .onnx model: the Terraform zip and
`sls deploy` ship the same onnxruntime and the same dependencies of it."""

from __future__ import annotations

import re
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from tests.support import REPO

ONNX_REQUIREMENTS = REPO / "aws_lambda" / "requirements-onnx.txt"
# an onnxruntime older than the file's pin, with the same dependencies and wheels for Lambda's Pythons
OLDER_ONNXRUNTIME = "1.31.1"


def pins(text: str) -> dict[str, str]:
    """``{project: version}`` of a requirements file's ``name==version`` lines, names normalised."""
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, version = line.split("==")
            found[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
    return found


def bundled_versions(archive: Path, folder: Path) -> dict[str, metadata.Distribution]:
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(folder, [n for n in bundle.namelist() if n.split("/", 1)[0].endswith(".dist-info")])
    return {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d for d in metadata.distributions(path=[str(folder)])}


def test_the_onnx_only_lambda_bundle_installs_exactly_what_requirements_onnx_pins(built, package, tmp_path):
    pinned = pins(ONNX_REQUIREMENTS.read_text())
    assert not {"scikit-learn", "scipy", "joblib"} & set(pinned), pinned

    shipped = bundled_versions(built("aws", "--onnx-only"), tmp_path / "default")
    assert {name: shipped[name].version for name in pinned if name in shipped} == pinned
    # every run-time dependency of onnxruntime is pinned there too, so nothing in the bundle floats
    needed = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", r).group()).lower()
              for r in shipped["onnxruntime"].requires or () if "extra ==" not in r}
    assert needed and needed <= set(pinned), f"not pinned in {ONNX_REQUIREMENTS.name}: {sorted(needed - set(pinned))}"
    assert set(shipped) == set(pinned), f"the bundle carries unpinned projects: {sorted(set(shipped) - set(pinned))}"

    # the same source tree with onnxruntime pinned lower: the bundle follows the file, not the newest release
    source = tmp_path / "source"
    for name in ("core", "aws_lambda"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", source / "pyproject.toml")
    assert OLDER_ONNXRUNTIME != pinned["onnxruntime"]
    lowered = re.sub(r"(?m)^onnxruntime==.*$", f"onnxruntime=={OLDER_ONNXRUNTIME}", ONNX_REQUIREMENTS.read_text())
    (source / "aws_lambda" / "requirements-onnx.txt").write_text(lowered)
    archive = tmp_path / "older" / "serverless-ml-aws.zip"
    done = package("--provider", "aws", "--onnx-only", "--source", str(source), "--out", str(archive))
    assert done.returncode == 0, done.stderr
    assert f"onnxruntime {OLDER_ONNXRUNTIME}" in done.stdout
    assert bundled_versions(archive, tmp_path / "older-metadata")["onnxruntime"].version == OLDER_ONNXRUNTIME
    with zipfile.ZipFile(archive) as bundle:  # the pins are for the build, not a file of the function
        assert not [n for n in bundle.namelist() if n.startswith("aws_lambda/requirements")]


def test_both_lambda_requirements_pin_the_same_numpy():
    """The two Lambda packages carry one NumPy: a pin bumped in one file only is caught here."""
    default = pins((REPO / "aws_lambda" / "requirements.txt").read_text())
    assert pins(ONNX_REQUIREMENTS.read_text())["numpy"] == default["numpy"]
