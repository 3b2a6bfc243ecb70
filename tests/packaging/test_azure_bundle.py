"""The Azure Functions app: a folder (function_app.py, host.json, requirements.txt, core/) and the
same files zipped with host.json at the root, as zip deploy expects."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from tests.azure_app import run_in_app
from tests.support import REPO

APP_FILES = [".funcignore", "core", "function_app.py", "host.json", "requirements.txt"]
ROWS = [[6.7, 3.0, 5.2, 2.3]]


def test_the_folder_and_the_zip_hold_the_same_app(built):
    archive = built("azure")
    folder = archive.with_suffix("")
    assert sorted(p.name for p in folder.iterdir()) == APP_FILES
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        assert bundle.read("host.json") == (REPO / "azure_function" / "host.json").read_bytes()
    assert sorted(names) == sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "local_host.py" not in names and not [n for n in names if "__pycache__" in n]


def test_the_app_folder_imports_core_from_itself_and_answers(built, demo_model_uri):
    folder = built("azure").with_suffix("")
    # the folder, then the installed third-party packages, as the Functions worker has them
    outcome = run_in_app(folder, [str(folder), sysconfig.get_paths()["purelib"]], {"MODEL_URI": demo_model_uri},
                         isolated=False, rows=ROWS)
    assert outcome["core"] == str(folder)
    assert outcome["status"] == 200 and outcome["body"]["predictions"] == ["virginica"], outcome["body"]


def test_vendored_dependencies_serve_the_app_without_any_installed_package(built, tmp_path):
    folder = built("azure", "--vendor-deps", "--python-version", "3.11").with_suffix("")  # the Python running the tests
    site_packages = folder / ".python_packages" / "lib" / "site-packages"
    assert (site_packages / "azure" / "storage" / "blob").is_dir()
    assert list((site_packages / "sklearn" / "__pycache__").glob("*.cpython-311.pyc"))
    # the model is trained by the vendored scikit-learn, the one the app will load it with
    train = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         f"import sys; sys.path[:0] = [{str(folder)!r}, {str(site_packages)!r}]\n"
         f"from core.demo import ensure_demo_model; print(ensure_demo_model(__import__('pathlib').Path({str(tmp_path)!r})).as_uri())"],
        capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert train.returncode == 0, train.stderr[-3000:]
    outcome = run_in_app(folder, [str(folder), str(site_packages)], {"MODEL_URI": train.stdout.strip()},
                         isolated=True, rows=ROWS, report=["sklearn"])
    assert outcome["core"] == str(folder)
    assert Path(outcome["modules"]["sklearn"]).is_relative_to(site_packages)
    assert outcome["status"] == 200 and outcome["body"]["predictions"] == ["virginica"], outcome["body"]


def test_a_folder_that_is_not_a_bundle_is_never_replaced(package, tmp_path):
    keep = tmp_path / "app"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    done = package("--provider", "azure", "--out", str(tmp_path / "app.zip"))
    assert done.returncode == 2
    assert f"{keep} exists and is not an earlier bundle" in done.stderr
    assert (keep / "notes.txt").read_text() == "mine"


def test_an_earlier_bundle_is_replaced(package, tmp_path):
    for _ in range(2):
        done = package("--provider", "azure", "--out", str(tmp_path / "app.zip"))
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == APP_FILES
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
