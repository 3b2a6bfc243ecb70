"""infra/modules/bundle, which infra/aws, infra/azure and infra/gcp call on the bundle they
deploy: with model_needs_pandas = true, `terraform plan` refuses a bundle that does not carry
pandas (a model that takes a DataFrame would answer 503 to every request), telling how to build
it. It reads the description `serverless-ml package` writes beside the zip; here the bundles are
built by that command (GCP: no dependencies to install, well under a second each) and the module
is planned on its own: it needs no provider, so this runs wherever terraform does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra import terraform_support as tf
from tests.support import isolated_env, serve_command


def build_bundle(archive: Path, *args: str) -> Path:
    done = subprocess.run([*serve_command(), "package", "--provider", "gcp", "--out", str(archive), *args],
                          capture_output=True, text=True, timeout=300, env=isolated_env())
    assert done.returncode == 0, done.stderr
    return archive


@pytest.fixture(scope="module")
def module(terraform, tmp_path_factory) -> tf.Workdir:
    workdir = tf.Workdir(tf.copy_config("modules/bundle", tmp_path_factory.mktemp("bundle-module")), Path(os.devnull))
    init = workdir.run("init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stderr
    return workdir


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """Zips as the command writes them (each with its .bundle.json), and two without a description
    of their own: one never described, one replaced after its description was written."""
    folder = tmp_path_factory.mktemp("bundles")
    found = {
        "pandas": build_bundle(folder / "pandas" / "serverless-ml-gcp.zip", "--extra", "pandas"),
        "default": build_bundle(folder / "default" / "serverless-ml-gcp.zip"),
    }
    undescribed = folder / "undescribed" / "serverless-ml-gcp.zip"
    undescribed.parent.mkdir()
    shutil.copy2(found["pandas"], undescribed)
    found["undescribed"] = undescribed
    replaced = folder / "replaced" / "serverless-ml-gcp.zip"
    replaced.parent.mkdir()
    shutil.copy2(found["default"], replaced)  # another zip ...
    shutil.copy2(found["pandas"].with_name("serverless-ml-gcp.bundle.json"), replaced.with_name("serverless-ml-gcp.bundle.json"))  # ... the old description
    found["replaced"] = replaced
    return found


def plan(module: tf.Workdir, bundle: Path, needs_pandas: bool) -> subprocess.CompletedProcess:
    return module.run("plan", "-input=false", "-out=check.tfplan", f"-var=bundle_path={bundle}",
                      "-var=provider_name=gcp", f"-var=model_needs_pandas={str(needs_pandas).lower()}")


def planned_outputs(module: tf.Workdir) -> dict:
    shown = json.loads(module.run("show", "-json", "check.tfplan").stdout)
    return {name: item["value"] for name, item in shown["planned_values"]["outputs"].items()}


@pytest.mark.parametrize("bundle", ["pandas", "default", "undescribed", "replaced"])
def test_a_model_that_takes_no_dataframe_deploys_from_any_bundle(module, bundles, bundle):
    done = plan(module, bundles[bundle], needs_pandas=False)
    assert done.returncode == 0, done.stderr
    assert planned_outputs(module)["path"] == str(bundles[bundle])


def test_a_bundle_with_pandas_is_accepted_for_a_model_that_needs_it(module, bundles):
    done = plan(module, bundles["pandas"], needs_pandas=True)
    assert done.returncode == 0, done.stderr
    assert planned_outputs(module) == {"path": str(bundles["pandas"]), "extras": ["pandas"]}


@pytest.mark.parametrize("bundle, reason", [
    ("default", "{zip} was built without pandas"),
    ("undescribed", "nothing says that {zip} carries pandas: {description}, which serverless-ml package writes "
                    "beside the zip, is missing"),
    ("replaced", "{description} describes another zip than {zip} (the zip was replaced after it was built), "
                 "so nothing says that it carries pandas"),
])
def test_a_bundle_without_pandas_is_refused_at_plan_saying_how_to_build_it(module, bundles, bundle, reason):
    archive = bundles[bundle]
    done = plan(module, archive, needs_pandas=True)
    assert done.returncode != 0
    said = " ".join(done.stderr.split())
    expected = reason.format(zip=archive, description=archive.with_name("serverless-ml-gcp.bundle.json"))
    assert f"model_needs_pandas = true (the model takes its rows as a DataFrame), but {expected}; " in said, said
    assert "without pandas such a model answers 503 to every request" in said
    assert ("Build the bundle with `serverless-ml package --provider gcp --extra pandas` (or with --model MODEL_FILE, "
            "which adds pandas for such a model) and plan again.") in said


def test_the_module_is_formatted(terraform):
    result = tf.run_terraform(["fmt", "-check", "-diff", "-recursive", str(tf.INFRA / "modules")], tf.REPO,
                              tf.terraform_env(Path(os.devnull), Path(os.devnull)))
    assert result.returncode == 0, f"`terraform fmt` would change infra/modules:\n{result.stdout}{result.stderr}"
