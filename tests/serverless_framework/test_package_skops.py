"""A .skops model deploys the first time with the default package: aws_lambda/requirements.txt
carries skops (and what it needs) at its pins, the predict function loads a .skops model from the
unzipped package with the types SKOPS_TRUSTED_TYPES lists, answering as the .joblib does, and
refuses it, naming the type and the setting, without them."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest

from tests.serverless_framework import sls_support as sls
from tests.support import REPO

REQUIREMENTS = REPO / "aws_lambda" / "requirements.txt"
SKOPS_PROJECTS = ("skops", "prettytable", "wcwidth", "packaging")
# what the demo forest's skops file holds beyond the types skops trusts by default
FOREST_TYPE = "sklearn.tree._tree.Tree"
ROWS = [[6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5]]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    lines = [line for line in REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {_normalised(name): version.strip() for name, version in (line.split("==") for line in lines)}


def _shipped(entries) -> dict[str, str]:
    """``{project: version}`` of the package's .dist-info folders."""
    folders = {PurePosixPath(name).parts[0][: -len(".dist-info")] for name in entries
               if PurePosixPath(name).parts[0].endswith(".dist-info")}
    return {_normalised(folder.rsplit("-", 1)[0]): folder.rsplit("-", 1)[1] for folder in folders}


def _skip_without_python312(packaged):
    if packaged.bytecode_python is None:
        pytest.skip("python3.12 (the function's runtime, whose wheels the package holds) is not on this machine")


@pytest.fixture(scope="module")
def demo_skops_model(exported_demo_model) -> Path:
    path, printed = exported_demo_model("skops")
    assert FOREST_TYPE in printed  # what the user is told to trust
    return path


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Path:
    """One /var/task for the invocations of this module: the package is unzipped once."""
    return tmp_path_factory.mktemp("skops-task") / "task"


def _project_of(name: str) -> str:
    """The project a package entry belongs to, by its top-level folder (``skops/...``,
    ``skops-0.16.0.dist-info/...``)."""
    top = PurePosixPath(name).parts[0]
    return _normalised(top.rsplit("-", 1)[0] if top.endswith(".dist-info") else top.split(".")[0])


def test_the_default_package_ships_skops_at_the_pins_of_requirements_txt(packaged, package_entries):
    pins = _pins()
    assert set(SKOPS_PROJECTS) <= set(pins), f"{REQUIREMENTS.name} does not pin {sorted(set(SKOPS_PROJECTS) - set(pins))}"
    # exactly the pinned projects at their pins: nothing floats with the next release
    assert _shipped(package_entries) == pins
    assert "skops/io/__init__.py" in package_entries
    # small next to the scikit-learn stack, which is why one requirements file serves both formats
    added = [info for name, info in package_entries.items() if _project_of(name) in SKOPS_PROJECTS]
    unzipped = sum(info.file_size for info in package_entries.values())
    print(f"\n{', '.join(SKOPS_PROJECTS)} in {packaged.zip_path.name}: {sum(i.file_size for i in added) / 1024:.0f} KB "
          f"unzipped, {sum(i.compress_size for i in added) / 1024:.0f} KB zipped, of {unzipped / 2**20:.1f} MiB unzipped")
    assert 0 < sum(i.file_size for i in added) < unzipped / 50


def test_the_unzipped_package_serves_a_skops_model_as_it_serves_the_joblib(
        packaged, demo_skops_model, demo_model_uri, task):
    _skip_without_python312(packaged)
    body = {"instances": ROWS}
    joblib_outcome = sls.invoke_unzipped(packaged, task, demo_model_uri, body, watched=("skops",))
    skops_outcome = sls.invoke_unzipped(packaged, task, demo_skops_model.as_uri(), body, watched=("skops",),
                                                env={"SKOPS_TRUSTED_TYPES": FOREST_TYPE})
    assert joblib_outcome["answer"]["statusCode"] == 200, joblib_outcome["answer"]
    assert skops_outcome["answer"]["statusCode"] == 200, skops_outcome["answer"]
    expected, got = (json.loads(o["answer"]["body"]) for o in (joblib_outcome, skops_outcome))
    assert got["predictions"] == expected["predictions"] == ["virginica", "setosa", "versicolor"]
    assert got["probabilities"] == expected["probabilities"]
    # skops is imported for a .skops model only: a .joblib deployment's cold start does not pay for it
    assert skops_outcome["imported"] == ["skops"]
    assert joblib_outcome["imported"] == []


def test_without_the_trusted_type_the_skops_model_is_refused_naming_it_and_the_setting(
        packaged, demo_skops_model, task):
    _skip_without_python312(packaged)
    answer = sls.invoke_unzipped(packaged, task, demo_skops_model.as_uri(), {"instances": ROWS})["answer"]
    assert answer["statusCode"] == 503, answer
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "model_invalid", error
    assert f"holds types that are not trusted: {FOREST_TYPE}" in error["message"], error
    assert f"SKOPS_TRUSTED_TYPES={FOREST_TYPE}" in error["message"], error
