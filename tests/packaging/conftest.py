"""Bundles built once per session by the real command, ``serverless-ml package``.

Only ``lambda_bundle`` and the ``--onnx-only`` Lambda bundle install dependencies (NumPy, SciPy,
scikit-learn, or NumPy and onnxruntime, for Lambda's Linux, from pip's cache after the first run);
the others are built with what the platform installs itself, or with ``--no-deps``, and take well
under a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import REPO, isolated_env, serve_command

AWS_EVENTS = REPO / "tests" / "events" / "aws"


def run_package(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``serverless-ml package ARGS`` in a fresh process; its exit status and output."""
    return subprocess.run(
        [*serve_command(), "package", *args], capture_output=True, text=True, timeout=600,
        env=isolated_env(**(env or {})),
    )


def api_gateway_post(path: str, body: object) -> dict:
    """The API Gateway REST (payload 1.0) sample event, made a POST of ``body`` as JSON to ``path``."""
    event = json.loads((AWS_EVENTS / "apiGatewayProxyEvent.json").read_text())
    event.update(resource=path, path=path, httpMethod="POST", isBase64Encoded=False, body=json.dumps(body))
    event["headers"]["Content-Type"] = "application/json"
    event["multiValueHeaders"]["Content-Type"] = ["application/json"]
    event["requestContext"]["resourcePath"] = path
    event["requestContext"]["httpMethod"] = "POST"
    return event


def run_in_bundle(folder: Path, code: str, env: dict[str, str] | None = None, python: str = sys.executable) -> dict:
    """Run ``code`` in a fresh ``python`` whose sys.path is the bundle plus the standard library
    only (-I -S: no site-packages, no PYTHONPATH, no editable install of this checkout); the JSON
    its last line prints."""
    prelude = f"import sys\nsys.path.insert(0, {str(folder)!r})\n"
    done = subprocess.run(
        [python, "-I", "-S", "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=300, cwd=folder,
        env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "ERROR", **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def unzip_to(archive: Path, folder: Path) -> Path:
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(folder)
    return folder


@pytest.fixture(scope="session")
def unzip() -> Callable[[Path, Path], Path]:
    """``unzip(archive, folder)``: the archive's files under ``folder``; returns ``folder``."""
    return unzip_to


@pytest.fixture(scope="session")
def package() -> Callable[..., subprocess.CompletedProcess]:
    return run_package


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Callable[..., Path]:
    """``built(provider, *args)``: the zip of a successful build (cached per arguments)."""
    cache: dict[tuple, Path] = {}

    def build(provider: str, *args: str) -> Path:
        key = (provider, *args)
        if key not in cache:
            archive = tmp_path_factory.mktemp(f"bundle-{provider}") / f"serverless-ml-{provider}.zip"
            done = run_package("--provider", provider, "--out", str(archive), *args)
            assert done.returncode == 0, done.stderr
            cache[key] = archive
        return cache[key]

    return build


@pytest.fixture(scope="session")
def lambda_bundle(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The Lambda zip with its dependencies really installed for manylinux x86_64 and the default
    runtime, CPython 3.13 (run here by ``lambda_python``)."""
    archive = tmp_path_factory.mktemp("lambda-bundle") / "serverless-ml-aws.zip"
    done = run_package("--provider", "aws", "--out", str(archive))
    assert done.returncode == 0, done.stderr
    return archive, done


@pytest.fixture(scope="session")
def lambda_folder(lambda_bundle, tmp_path_factory) -> Path:
    """That zip unpacked, as Lambda unpacks it into /var/task."""
    return unzip_to(lambda_bundle[0], tmp_path_factory.mktemp("var-task"))


@pytest.fixture(scope="session")
def in_bundle() -> Callable[..., dict]:
    """``in_bundle(folder, code, env=None, python=sys.executable)``: see :func:`run_in_bundle`."""
    return run_in_bundle


@pytest.fixture(scope="session")
def predict_event() -> Callable[[object], dict]:
    """``predict_event(body)``: API Gateway's sample event, a POST of ``body`` to /predict."""
    return lambda body: api_gateway_post("/predict", body)


@pytest.fixture(scope="session")
def lambda_python() -> str:
    """A Python of the Lambda runtime `serverless-ml package --provider aws` builds for by default
    (3.13): a bundle built for it, its compiled wheels and bytecode, can only be run by it."""
    from serverless_ml.bundles.dependencies import find_interpreter
    from serverless_ml.bundles.providers import LAMBDA_DEFAULT_PYTHON

    found = find_interpreter(LAMBDA_DEFAULT_PYTHON)
    if found is None:
        pytest.skip(f"python{LAMBDA_DEFAULT_PYTHON} (the Lambda runtime the bundle is built for) is not on this machine")
    return found
