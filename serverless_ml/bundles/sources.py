"""The project's source tree: where it is, what each provider's bundle copies from it, and the
requirements it declares (pyproject.toml and the adapters' requirements.txt)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from serverless_ml.bundles.errors import SourceTreeMissing
from serverless_ml.bundles.providers import Provider

# never deployed: caches (the platform cannot use them; Lambda's are compiled afresh), the
# adapters' documentation, and a package adapter's requirements files (the Lambda zip carries the
# dependencies themselves)
SKIPPED_SOURCES = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.pyo", "README.md", "requirements*.txt", ".DS_Store")


def default_source_tree() -> Path:
    """The checkout this package runs from (serverless_ml/ sits beside core/ and the adapters)."""
    return Path(__file__).resolve().parents[2]


def check_source_tree(root: Path, provider: Provider) -> None:
    needed = [root / "pyproject.toml", root / "core" / "__init__.py", root / provider.adapter_dir]
    needed += [root / provider.adapter_dir / name for name in provider.adapter_files]
    missing = [path for path in needed if not path.exists()]
    if missing:
        raise SourceTreeMissing(
            f"the {provider.title} bundle is built from the project's source tree; {missing[0]} is missing "
            f"in {root}; expected a checkout of serverless-ml (pass --source PATH to point at one)"
        )


def copy_sources(root: Path, provider: Provider, destination: Path) -> None:
    """core/ and the provider's adapter, as the platform imports them from the bundle's root."""
    shutil.copytree(root / "core", destination / "core", ignore=SKIPPED_SOURCES)
    adapter = root / provider.adapter_dir
    if provider.adapter_is_package:
        shutil.copytree(adapter, destination / provider.adapter_dir, ignore=SKIPPED_SOURCES)
    for name in provider.adapter_files:
        shutil.copy2(adapter / name, destination / name)


def _pyproject(root: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise SourceTreeMissing("serverless-ml package needs Python 3.11 or later (it reads pyproject.toml with tomllib)") from None
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def declared_requirements(root: Path, extras: Iterable[str]) -> list[str]:
    """The package's own dependencies plus those of ``extras``, as pyproject.toml declares them."""
    project = _pyproject(root)["project"]
    optional = project.get("optional-dependencies", {})
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in optional:
            raise SourceTreeMissing(
                f"pyproject.toml in {root} declares no extra {extra!r}; expected one of {', '.join(sorted(optional))}"
            )
        requirements += optional[extra]
    return requirements


def extra_requirements(root: Path, extras: Iterable[str]) -> list[str]:
    """Only the requirements of ``extras`` (the model formats added to a provider's requirements.txt)."""
    optional = _pyproject(root)["project"].get("optional-dependencies", {})
    lines: list[str] = []
    for extra in extras:
        if extra not in optional:
            raise SourceTreeMissing(f"pyproject.toml in {root} declares no extra {extra!r}")
        lines += optional[extra]
    return lines


def requirement_name(spec: str) -> str:
    """The normalised project name of a requirement line (``scikit-learn>=1.3`` -> ``scikit-learn``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def requirements_file_lines(path: Path) -> list[str]:
    return _requirement_lines(path.read_text(encoding="utf-8"))


def _requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def without(requirements: Iterable[str], left_out: Iterable[str]) -> list[str]:
    """``requirements`` less those of the projects ``left_out``."""
    names = {requirement_name(name) for name in left_out}
    return [spec for spec in requirements if requirement_name(spec) not in names]


def write_requirements(path: Path, base: Path, added: Sequence[str], options: str,
                       left_out: Sequence[str] = ()) -> None:
    """The adapter's requirements.txt less the projects ``left_out`` (``--onnx-only``), plus the
    model-format extras' lines not already in it; each change under a comment naming ``options``,
    the command's options that made it."""
    text = base.read_text(encoding="utf-8")
    names = {requirement_name(name) for name in left_out}
    dropped = [requirement_name(line) for line in _requirement_lines(text) if requirement_name(line) in names]
    if dropped:
        text = "".join(f"{line}\n" for line in text.splitlines()
                       if line.lstrip().startswith("#") or requirement_name(line) not in names)
        text += f"# left out by `serverless-ml package {options}` (it serves .onnx models only): {', '.join(dropped)}\n"
    present = {requirement_name(line) for line in _requirement_lines(text)}
    new = [spec for spec in added if requirement_name(spec) not in present]
    if new:
        if not text.endswith("\n"):
            text += "\n"
        text += f"# added by `serverless-ml package {options}`\n"
        text += "".join(f"{spec}\n" for spec in new)
    path.write_text(text, encoding="utf-8")
