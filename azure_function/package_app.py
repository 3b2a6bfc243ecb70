"""Build the deployable Functions app folder: this folder's app files plus the package ``core``.

``core`` lives at the repository root and is not published on PyPI, so the folder the Functions
host runs must carry a copy of it next to ``function_app.py`` (the host puts that folder on
``sys.path``). Third-party packages come from ``requirements.txt``, installed by the host's remote
build (or by Core Tools with ``--build local``).

    python azure_function/package_app.py                 # -> build/azure_function/
    python azure_function/package_app.py --zip           # and build/azure_function.zip
    python azure_function/package_app.py --out /tmp/app
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APP_FILES = ("function_app.py", "host.json", "requirements.txt", ".funcignore")
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")


def build(out: Path) -> Path:
    """Write the app folder to ``out`` (replacing it) and return it."""
    if out.resolve() in (REPO, HERE) or REPO.resolve().is_relative_to(out.resolve()):
        raise SystemExit(f"refusing to replace {out}: choose an output folder of its own")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in APP_FILES:
        shutil.copy2(HERE / name, out / name)
    shutil.copytree(REPO / "core", out / "core", ignore=SKIPPED)
    return out


def zip_folder(folder: Path) -> Path:
    """Zip ``folder`` with host.json at the archive's root, as zip deploy expects."""
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder).as_posix())
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "azure_function",
                        help="the folder to write (default: build/azure_function)")
    parser.add_argument("--zip", action="store_true", help="also write <out>.zip for zip deploy")
    args = parser.parse_args(argv)
    folder = build(args.out)
    print(folder)
    if args.zip:
        print(zip_folder(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
