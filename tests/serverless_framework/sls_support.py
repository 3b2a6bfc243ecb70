"""`sls` run the way a user runs it, on a copy of the repository's sources: the service's names,
the environment, the package it makes, and its predict handler run from the unzipped package.

The framework works in `<service>/.serverless/` while it packages, so it runs in a copy of the
repository's sources (node_modules linked), never in the working tree: two test sessions at
once would otherwise write into the same folder.

The package is made the way a user makes it (`npm run package`: osls, the Serverless Framework v3 fork, and its
plugins from node_modules, pip fetching the Lambda wheels from PyPI), for the stage ``local`` so
that the deploy test can send the very same artifacts into moto's server. AWS settings point at a
port nobody listens on: packaging needs no AWS account and no endpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.aws_lambda import lambda_support, moto_support
from tests.support import REPO, free_port, isolated_env

SLS = REPO / "node_modules" / ".bin" / "sls"
STAGE = "local"
SERVICE = "serverless-ml"
INPUT_BUCKET = "serverless-ml-local-input"
BUCKET_PARAM = f"--param=inputBucket={INPUT_BUCKET}"
# The packages these tests make are for python3.12, not the default (python3.13): their handler is
# run from the unzipped package by this machine's Python 3.12 (invoke_unzipped), whose NumPy
# wheels must be its own. What the default and the other runtimes resolve to is checked by `sls
# print` (test_runtime_params.py) and their wheels by tests/packaging/test_lambda_runtimes.py.
RUNTIME_HERE = "python3.12"
PARAMS = (BUCKET_PARAM, f"--param=runtime={RUNTIME_HERE}")
ONNX_MODEL_KEY = "models/model.onnx"
# the CodeDeploy configuration the traffic-shifting package and its deploy into moto use
SHIFTING_PREFERENCE = "Canary10Percent5Minutes"
# the params of that package (conftest.packaged_shifting), the fan-out with them
FAN_OUT_MAX_CONCURRENCY = 25
SHIFTING_PARAMS = (f"--param=deploymentPreference={SHIFTING_PREFERENCE}", "--param=warmup=true",
                   "--param=fanOut=true", f"--param=fanOutMaxConcurrency={FAN_OUT_MAX_CONCURRENCY}")
# Any fixed value: pip then writes hash-checked bytecode, as `npm run package` does.
SOURCE_DATE_EPOCH = "315532800"


def find_python312() -> str | None:
    """A Python 3.12 with pip (the runtime's version), or None. A pyenv shim on the PATH may name
    a version that is not selected, so each candidate is run before it is trusted."""
    candidates = [os.environ.get("PYTHON312"), shutil.which("python3.12")]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    candidates += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys, pip; print(sys.version_info[:2] == (3, 12))"],
                capture_output=True, text=True, timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def sls_env(**extra: str) -> dict[str, str]:
    """No AWS setting of the developer's shell, no telemetry, no update checks, no dashboard."""
    env = {k: v for k, v in isolated_env().items() if not k.startswith("AWS_")}
    env.update({
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        "SLS_INTERACTIVE_SETUP_DISABLE": "1",
        "SLS_DEPRECATION_DISABLE": "*",
        "CI": "1",
        **moto_support.DUMMY_CREDENTIALS,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })
    env.update(extra)
    return env


# What the service folder holds: serverless.yml, what it packages, and what it must leave out.
SERVICE_SOURCES = (
    "serverless.yml", "package.json", "core", "aws_lambda", "serverless_ml", "tests", "bench",
    "azure_function", "gcp_function", "infra",
)


def copy_service(folder: Path) -> Path:
    """The repository's sources under ``folder`` with node_modules linked, plus a decoy
    virtualenv that the package must not pick up."""
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".terraform", "*.pyc")
    for name in SERVICE_SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore, symlinks=True)
        elif source.exists():
            shutil.copy2(source, folder / name)
    (folder / "node_modules").symlink_to(REPO / "node_modules")
    (folder / ".venv" / "lib").mkdir(parents=True)
    (folder / ".venv" / "lib" / "decoy.py").write_text("raise SystemExit('a virtualenv was packaged')\n")
    return folder


def run_sls(args: list[str], env: dict[str, str], timeout: float, service: Path) -> subprocess.CompletedProcess:
    if not SLS.exists():
        pytest.fail(f"{SLS} is missing: `npm ci` installs the Serverless Framework (make node_modules/.installed)")
    return subprocess.run(
        [str(SLS), *args], cwd=service, env=env, capture_output=True, text=True, timeout=timeout,
    )


def print_requirements_file(service: Path, *params: str) -> subprocess.CompletedProcess:
    """`sls print` of the requirements file the package installs: resolves the variables only."""
    return run_sls(
        ["print", "--stage", "dev", *PARAMS, *params, "--format", "json", "--path", "custom.pythonRequirements.fileName"],
        sls_env(), timeout=120, service=service)


@dataclass(frozen=True)
class Packaged:
    service: Path  # the copy `sls` ran in; deploy from here too
    folder: Path
    zip_path: Path
    update_template: Path
    create_template: Path
    pip_python: str  # the interpreter pip ran under
    bytecode_python: str | None  # that interpreter when it is a Python 3.12, else None
    seconds: float

    def template(self) -> dict:
        return json.loads(self.update_template.read_text())

    def resources(self, type_: str) -> dict[str, dict]:
        return {k: v for k, v in self.template()["Resources"].items() if v["Type"] == type_}


def package_service(base: Path, params: tuple[str, ...] = PARAMS) -> Packaged:
    """`sls package` with ``params`` in a copy of the sources under ``base``, as `npm run package` runs it."""
    service = copy_service(base / "service")
    folder = base / "package"
    python312 = find_python312()
    pip_python = python312 or sys.executable
    env = sls_env(
        PYTHON_REQUIREMENTS_BIN=pip_python,
        SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH,
        # the AWS SDK inside osls sends any AWS call here, and nothing listens there: packaging
        # makes none
        AWS_ENDPOINT_URL=f"http://localhost:{free_port()}",
    )
    started = time.monotonic()
    result = run_sls(["package", "--stage", STAGE, *params, "--package", str(folder)], env, timeout=900, service=service)
    seconds = time.monotonic() - started
    assert result.returncode == 0, f"sls package failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return Packaged(
        service=service,
        folder=folder,
        zip_path=folder / f"{SERVICE}.zip",
        update_template=folder / "cloudformation-template-update-stack.json",
        create_template=folder / "cloudformation-template-create-stack.json",
        pip_python=pip_python,
        bytecode_python=python312,
        seconds=seconds,
    )


def invoke_unzipped(packaged: Packaged, task: Path, model_uri: str, body: dict, watched: tuple[str, ...] = (),
                    env: dict[str, str] | None = None) -> dict:
    """The predict function's handler, as the template names it, run by Python 3.12 from the
    unzipped package alone (/var/task: no site-packages, no bytecode writes) on an HTTP API POST
    /predict of ``body``, with ``env`` added to the function's environment; its answer, and which
    of the ``watched`` top-level modules it imported. The package is unzipped into ``task`` once:
    a later call with the same folder reuses it (unzipping takes seconds), each in a fresh process."""
    if not (task / "aws_lambda").is_dir():
        with zipfile.ZipFile(packaged.zip_path) as archive:
            archive.extractall(task)
    event = lambda_support.make_event("http-api", "POST", "/predict", body=json.dumps(body).encode(),
                                      headers={"content-type": "application/json"})
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /predict"  # the route serverless.yml declares
    event_file = task.parent / f"{task.name}-event.json"
    event_file.write_text(json.dumps(event))
    handler = packaged.template()["Resources"]["PredictLambdaFunction"]["Properties"]["Handler"]
    module, function = handler.rsplit(".", 1)
    script = (
        "import json, sys, types\n"
        f"sys.path[:0] = [{str(task)!r}]\n"
        f"import importlib; handler = importlib.import_module({module.replace('/', '.')!r})\n"
        "context = types.SimpleNamespace(aws_request_id='req-1', function_name='serverless-ml-local-predict', client_context=None)\n"
        f"answer = getattr(handler, {function!r})(json.load(open(sys.argv[1])), context)\n"
        f"imported = sorted({{name.split('.')[0] for name in sys.modules}} & set({watched!r}))\n"
        "print(json.dumps({'answer': answer, 'imported': imported}))\n"
    )
    result = subprocess.run(
        [packaged.bytecode_python, "-I", "-S", "-B", "-c", script, str(event_file)],
        cwd=task, capture_output=True, text=True, timeout=120,
        env={"MODEL_URI": model_uri, "LAMBDA_TASK_ROOT": str(task), "PATH": "/usr/bin:/bin",
             "AWS_LAMBDA_FUNCTION_NAME": "serverless-ml-local-predict", **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
