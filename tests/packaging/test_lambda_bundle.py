"""The Lambda zip: dependencies for Lambda's platform, bytecode its read-only file system can use,
and a handler that answers from the unzipped bundle alone."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path

from tests.support import REPO


def test_the_handler_answers_an_api_gateway_event_from_the_unzipped_bundle_alone(
        lambda_folder, tmp_path, in_bundle, predict_event, lambda_python):
    event = predict_event({"instances": [[6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2]]})
    model_dir = tmp_path / "model"
    outcome = in_bundle(lambda_folder, f"""
        import json, os
        from pathlib import Path
        # the model is trained by the bundle's own scikit-learn: a pickle loads under the version that wrote it
        from core.demo import ensure_demo_model
        os.environ["MODEL_URI"] = ensure_demo_model(Path({str(model_dir)!r})).as_uri()
        import numpy, scipy, sklearn
        from aws_lambda import handler

        class Context:
            aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
            function_name = "serverless-ml-predict"
            client_context = None

        answer = handler.predict(json.loads({json.dumps(event)!r}), Context())
        try:
            import boto3
            boto3_found = boto3.__file__
        except ImportError:
            boto3_found = None
        print(json.dumps({{
            "answer": answer,
            "homes": [m.__file__ for m in (numpy, scipy, sklearn, handler)],
            "boto3": boto3_found,
        }}))
    """, python=lambda_python)
    assert all(Path(home).is_relative_to(lambda_folder) for home in outcome["homes"]), outcome["homes"]
    answer = outcome["answer"]
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    assert body["predictions"] == ["virginica", "setosa"]
    assert body["request_id"]
    # left out on purpose: the Lambda runtime provides boto3
    assert outcome["boto3"] is None


def test_the_lambda_zip_reports_its_sizes_against_both_limits(lambda_bundle):
    archive, done = lambda_bundle
    with zipfile.ZipFile(archive) as bundle:
        unzipped_mb = sum(info.file_size for info in bundle.infolist()) / 2**20
    zipped_mb = archive.stat().st_size / 2**20
    assert f"unzipped {unzipped_mb:8.1f} MB of 250 MB" in done.stdout
    assert f"zipped   {zipped_mb:8.1f} MB of 50 MB" in done.stdout
    assert "boto3 left out" in done.stdout


def test_a_second_build_with_dependencies_gives_the_same_bytes(lambda_bundle, package, tmp_path):
    again = tmp_path / "again.zip"
    done = package("--provider", "aws", "--out", str(again))
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(lambda_bundle[0].read_bytes()).digest()


def test_the_lambda_zip_holds_what_runs_and_not_what_never_does(lambda_bundle):
    archive, _ = lambda_bundle
    with zipfile.ZipFile(archive) as bundle:
        infos = bundle.infolist()
    names = [info.filename for info in infos]
    tops = {name.split("/")[0] for name in names}
    assert {"core", "aws_lambda", "numpy", "scipy", "sklearn", "joblib"} <= tops
    assert not tops & {"bin", "boto3", "botocore", "gcp_function", "azure_function", "serverless_ml", "tests"}
    # test suites are gone (a module of one that the library itself imports would stay: NumPy 2.2's
    # numpy.testing imported numpy/_core/tests/_natype.py; the pinned 2.4 no longer does)
    assert not [n for n in names if "/tests/" in n and n.rsplit("/", 1)[-1].startswith("test_")]
    assert "numpy/_core/tests/_natype.py" not in names
    assert not [n for n in names if "/__pycache__/" in n and not n.endswith(".cpython-313.pyc")]
    assert "aws_lambda/__pycache__/handler.cpython-313.pyc" in names
    assert "sklearn/__pycache__/base.cpython-313.pyc" in names
    # world-readable for Lambda's sandbox user, whatever the builder's umask
    assert all(stat.S_IMODE(info.external_attr >> 16) in (0o644, 0o755) for info in infos)


def test_the_bytecode_is_what_runs_on_a_read_only_file_system(built, unzip, tmp_path, in_bundle, lambda_python):
    folder = unzip(built("aws", "--no-deps"), tmp_path / "task")  # run here by the runtime's Python, 3.13
    assert (folder / "core" / "__pycache__" / "__init__.cpython-313.pyc").is_file()
    # unchecked hash-based pycs: the zip's 1980 timestamps cannot make them look stale; edit the
    # source and the bytecode still wins, as on Lambda where nothing may be rewritten
    init = folder / "core" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "edited-'))
    for path in folder.rglob("*"):
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        outcome = in_bundle(folder, """
            import json, core
            print(json.dumps({"version": core.__version__, "cached": core.__cached__}))
        """, python=lambda_python)
    finally:
        for path in folder.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
    assert not outcome["version"].startswith("edited-")
    assert Path(outcome["cached"]).is_file()


def test_the_default_lambda_bundle_ships_the_versions_serverless_yml_deploys(built):
    """Python 3.13 (the default runtime of both AWS paths): aws_lambda/requirements.txt is the constraint,
    so `serverless-ml package` (Terraform) and `sls package` ship the same scikit-learn and NumPy."""
    pins = dict(
        line.split("==") for line in (REPO / "aws_lambda" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    with zipfile.ZipFile(built("aws")) as bundle:
        folders = {name.split("/")[0][: -len(".dist-info")] for name in bundle.namelist()
                   if name.split("/")[0].endswith(".dist-info")}  # e.g. scikit_learn-1.9.1
        shipped = dict(folder.replace("_", "-").lower().rsplit("-", 1) for folder in folders)
        assert any(name.endswith(".cpython-313.pyc") for name in bundle.namelist() if name.startswith("sklearn/"))
    for package in ("numpy", "scipy", "scikit-learn", "joblib"):
        assert shipped[package] == pins[package], package
