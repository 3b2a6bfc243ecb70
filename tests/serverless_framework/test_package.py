"""What `sls package` puts in the Lambda zip: the code that runs, wheels for the function's
platform, bytecode that stays valid on Lambda, and a handler that answers from the unzipped
package the way /var/task holds it."""

from __future__ import annotations

import json
import zipfile
from pathlib import PurePosixPath

import pytest

from tests.serverless_framework import sls_support as sls

# Lambda's limit for a function's code, unzipped (layers included).
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
NOT_FOR_LAMBDA = (
    "tests", "bench", "azure_function", "gcp_function", "infra", "node_modules", "serverless_ml",
    ".venv", ".venv-checkov", ".git", "build", ".serverless", ".serverless-ml", ".hypothesis",
    "boto3", "botocore", "s3transfer",
)


def _top(name: str) -> str:
    return PurePosixPath(name).parts[0]


def test_the_zip_holds_the_code_that_runs_and_its_requirements(package_entries, packaged):
    names = set(package_entries)
    tops = {_top(n) for n in names}
    for needed in ("aws_lambda/handler.py", "aws_lambda/warmup.py", "core/settings.py", "core/http/openapi.json"):
        assert needed in names, f"{needed} is missing from {packaged.zip_path.name}"
    for package in ("numpy", "scipy", "sklearn", "joblib", "threadpoolctl.py"):
        assert package in tops, f"requirement {package} is missing from the package"
    unwanted = sorted(tops & set(NOT_FOR_LAMBDA))
    assert not unwanted, f"the package carries what never runs on Lambda: {unwanted}"
    stale = [n for n in names if _top(n) in ("core", "aws_lambda") and ("__pycache__" in n or n.endswith(".md"))]
    assert not stale, stale
    unzipped = sum(info.file_size for info in package_entries.values())
    print(f"\n{packaged.zip_path.name}: {packaged.zip_path.stat().st_size / 2**20:.1f} MiB zipped, "
          f"{unzipped / 2**20:.1f} MiB unzipped, {len(names)} files; sls package took {packaged.seconds:.0f} s")
    assert unzipped < LAMBDA_UNZIPPED_LIMIT, f"{unzipped} bytes unzipped exceeds Lambda's 250 MB"


def test_the_wheels_are_for_python312_on_linux_x86_64(package_entries, packaged):
    with zipfile.ZipFile(packaged.zip_path) as archive:
        for dist in ("numpy", "scipy", "scikit_learn"):
            wheel = next(n for n in package_entries if n.startswith(f"{dist}-") and n.endswith(".dist-info/WHEEL"))
            tags = [line.split(":", 1)[1].strip() for line in archive.read(wheel).decode().splitlines() if line.startswith("Tag:")]
            assert tags and all(t.startswith("cp312-cp312-manylinux") and t.endswith("_x86_64") for t in tags), (dist, tags)
    extensions = [n for n in package_entries if n.startswith("numpy/") and n.endswith(".so")]
    assert extensions and all("cpython-312-x86_64-linux-gnu" in n for n in extensions), extensions[:5]


def test_dependencies_carry_bytecode_that_lambda_will_use(package_entries, packaged):
    """The zip dates every entry the same, so only hash-checked .pyc files (PEP 552 flags 0b11)
    stay valid once unzipped into /var/task, which is read-only: without them every cold start
    compiles NumPy, SciPy and scikit-learn again."""
    if packaged.bytecode_python is None:
        pytest.skip("python3.12 (the function's runtime) is not on this machine: pip ran under "
                    f"{packaged.pip_python}, whose bytecode Lambda's Python 3.12 never reads")
    sources = [n for n in package_entries if n.endswith(".py") and _top(n) in ("numpy", "scipy", "sklearn", "joblib")]
    assert sources
    missing, not_hashed = [], []
    with zipfile.ZipFile(packaged.zip_path) as archive:
        for source in sources:
            path = PurePosixPath(source)
            cached = str(path.parent / "__pycache__" / f"{path.stem}.cpython-312.pyc")
            if cached not in package_entries:
                missing.append(source)
                continue
            flags = int.from_bytes(archive.read(cached)[4:8], "little")
            if flags != 0b11:
                not_hashed.append(cached)
    assert not missing, f"{len(missing)} modules without bytecode, e.g. {missing[:3]}"
    assert not not_hashed, f"{len(not_hashed)} .pyc files are timestamp-checked (stale on Lambda), e.g. {not_hashed[:3]}"


def test_the_unzipped_package_answers_a_prediction(packaged, demo_model_uri, tmp_path):
    """/var/task is the unzipped package and nothing else (no site-packages, no bytecode writes):
    the handler the deployment names imports from it and answers an HTTP API request."""
    if packaged.bytecode_python is None:
        pytest.skip("python3.12 (the function's runtime, whose wheels the package holds) is not on this machine")
    body = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    answer = sls.invoke_unzipped(packaged, tmp_path / "task", demo_model_uri, body)["answer"]
    assert answer["statusCode"] == 200, answer
    payload = json.loads(answer["body"])
    assert len(payload["predictions"]) == 2 and payload["request_id"], payload
