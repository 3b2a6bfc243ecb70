"""What ``serverless-ml package`` prints, refuses and guarantees for every provider."""

from __future__ import annotations

import hashlib
import zipfile

import pytest


@pytest.mark.parametrize("provider, args", [("aws", ("--no-deps",)), ("gcp", ()), ("azure", ())])
def test_the_same_sources_give_the_same_bytes(package, tmp_path, provider, args):
    digests = []
    for name in ("first", "second"):
        archive = tmp_path / name / f"{provider}.zip"
        done = package("--provider", provider, "--out", str(archive), *args)
        assert done.returncode == 0, done.stderr
        digests.append(hashlib.sha256(archive.read_bytes()).hexdigest())
        with zipfile.ZipFile(archive) as bundle:
            infos = bundle.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert digests[0] == digests[1]


@pytest.mark.parametrize("provider, args", [("aws", ("--no-deps",)), ("gcp", ()), ("azure", ())])
def test_above_the_limit_nothing_is_written_and_the_message_says_by_how_much(package, tmp_path, provider, args):
    archive = tmp_path / f"{provider}.zip"
    done = package("--provider", provider, "--out", str(archive), "--limit-mb", "0.01", *args)
    assert done.returncode == 2
    assert "over the 0.01 MB limit (set with --limit-mb); nothing was written" in done.stderr
    assert "Traceback" not in done.stderr
    assert not archive.exists() and not archive.with_suffix("").exists()
    assert list(tmp_path.iterdir()) == []


def test_the_limit_can_come_from_the_environment(package, tmp_path):
    done = package("--provider", "gcp", "--out", str(tmp_path / "gcp.zip"), env={"SERVERLESS_ML_BUNDLE_LIMIT_MB": "0.01"})
    assert done.returncode == 2 and "over the 0.01 MB limit" in done.stderr
    done = package("--provider", "gcp", "--out", str(tmp_path / "gcp.zip"), env={"SERVERLESS_ML_BUNDLE_LIMIT_MB": "lots"})
    assert done.returncode == 2
    assert "SERVERLESS_ML_BUNDLE_LIMIT_MB='lots' is not allowed; expected a positive number of megabytes" in done.stderr


def test_the_report_shows_the_sizes_against_the_provider_limits(package, tmp_path):
    done = package("--provider", "gcp", "--out", str(tmp_path / "gcp.zip"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"built {tmp_path / 'gcp.zip'} for Google Cloud Functions (gen2)")
    assert "MB of 500 MB" in lines[1] and "MB of 100 MB" in lines[2]


@pytest.mark.parametrize("args, expected", [
    (("--provider", "aws", "--out", "bundle.tar"), "does not end in .zip; expected the path of the zip to write"),
    (("--provider", "gcp", "--no-deps"), "--no-deps is for --provider aws"),
    (("--provider", "aws", "--vendor-deps"), "--vendor-deps is for --provider azure"),
    (("--provider", "gcp", "--limit-mb", "-3"), "--limit-mb='-3' is not allowed; expected a positive number"),
    (("--provider", "aws", "--no-deps", "--python-version", "3.11"),
     "--python-version 3.11 is not a Lambda runtime this package is built for; expected 3.12, 3.13 or 3.14"),
])
def test_a_wrong_argument_is_refused_with_what_was_expected(package, tmp_path, args, expected):
    done = package(*args)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_the_output_may_not_land_in_the_sources(package):
    from tests.support import REPO

    done = package("--provider", "gcp", "--out", str(REPO / "core" / "bundle.zip"))
    assert done.returncode == 2
    assert "is inside the sources it is built from" in done.stderr
    assert not (REPO / "core" / "bundle.zip").exists()


def test_a_missing_source_tree_is_named(package, tmp_path):
    done = package("--provider", "aws", "--no-deps", "--source", str(tmp_path), "--out", str(tmp_path / "out" / "a.zip"))
    assert done.returncode == 2
    assert f"{tmp_path / 'pyproject.toml'} is missing" in done.stderr


def test_a_model_too_large_for_lambdas_default_tmp_gets_a_warning_with_the_size_to_set(package, demo_model_path, tmp_path):
    """A real model, padded to 600 MB without using the disk (a sparse file; pickle stops at its
    STOP opcode, so the padding is never read as model): it is copied to /tmp to be loaded."""
    model = tmp_path / "large.joblib"
    model.write_bytes(demo_model_path.read_bytes())
    with model.open("r+b") as file:
        file.truncate(600 * 1024 * 1024)
    done = package("--provider", "aws", "--no-deps", "--model", str(model), "--out", str(tmp_path / "aws.zip"))
    assert done.returncode == 0, done.stderr
    assert f"warning: --model {model} is 600 MB; the predict function copies it to /tmp" in done.stdout
    assert "predictEphemeralStorage" in done.stdout and "at least 724" in done.stdout
    small = package("--provider", "aws", "--no-deps", "--model", str(demo_model_path), "--out", str(tmp_path / "s.zip"))
    assert small.returncode == 0 and "warning" not in small.stdout
