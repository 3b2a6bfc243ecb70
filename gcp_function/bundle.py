"""Make the folder ``gcloud functions deploy --source`` uploads: this adapter plus a copy of core.

Cloud Build installs only what ``requirements.txt`` names, and serverless-ml is not on PyPI, so
core travels inside the folder, next to ``main.py`` (Cloud Functions puts that folder on the
import path).

    python gcp_function/bundle.py               # writes build/gcp_function/
    python gcp_function/bundle.py /tmp/fn-src   # or a folder of your choice (replaced)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ADAPTER_FILES = ("main.py", "gcp_logging.py", "requirements.txt")
DEFAULT_OUTPUT = REPO / "build" / "gcp_function"


def bundle(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write the deployable folder to ``output`` (replacing it) and return it."""
    output = output.resolve()
    if output == HERE or HERE in output.parents:
        raise ValueError(f"the output folder must be outside {HERE}; got {output}")
    if output.exists():
        earlier_bundle = all((output / name).exists() for name in ADAPTER_FILES)
        if any(output.iterdir()) and not earlier_bundle:
            raise ValueError(
                f"{output} is not empty and holds no earlier bundle; expected a new or empty folder"
            )
        shutil.rmtree(output)
    output.mkdir(parents=True)
    for name in ADAPTER_FILES:
        shutil.copy2(HERE / name, output / name)
    shutil.copytree(REPO / "core", output / "core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return output


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: python gcp_function/bundle.py [OUTPUT_DIR]", file=sys.stderr)
        return 2
    output = bundle(Path(argv[0]) if argv else DEFAULT_OUTPUT)
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
