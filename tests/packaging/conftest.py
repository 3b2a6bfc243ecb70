"""Bundles built once per session by the real command, ``serverless-ml package``.

Only ``lambda_bundle`` installs dependencies (NumPy, SciPy, scikit-learn for Lambda's Linux, from
pip's cache after the first run); the others are built with what the platform installs itself, or
with ``--no-deps``, and take well under a second.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from support import isolated_env, serve_command


def run_package(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``serverless-ml package ARGS`` in a fresh process; its exit status and output."""
    return subprocess.run(
        [*serve_command(), "package", *args], capture_output=True, text=True, timeout=600,
        env=isolated_env(**(env or {})),
    )


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
    """The Lambda zip with its dependencies really installed for manylinux x86_64 / CPython 3.11
    (the Python running these tests, so that the bundle can be run here)."""
    archive = tmp_path_factory.mktemp("lambda-bundle") / "serverless-ml-aws.zip"
    done = run_package("--provider", "aws", "--python-version", "3.11", "--out", str(archive))
    assert done.returncode == 0, done.stderr
    return archive, done


@pytest.fixture(scope="session")
def lambda_folder(lambda_bundle, tmp_path_factory) -> Path:
    """That zip unpacked, as Lambda unpacks it into /var/task."""
    return unzip_to(lambda_bundle[0], tmp_path_factory.mktemp("var-task"))
