"""Installing the dependencies into a bundle for the platform that runs it, not for this machine,
then removing what never runs there and compiling the bytecode the read-only runtime needs.

pip does the installing (``--target`` with ``--platform``/``--python-version``/``--only-binary``:
only wheels built for the target can be chosen, so nothing compiles here for the wrong system).
Its cache is used, so a second build downloads nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serverless_ml.bundles.errors import DependencyInstallFailed

# directories of test suites that wheels ship (NumPy's, SciPy's and scikit-learn's are about 30 MB
# together); nothing imports them at run time
TEST_DIRECTORIES = frozenset({"tests", "test"})


@dataclass(frozen=True)
class TargetPlatform:
    platforms: tuple[str, ...]  # pip --platform values
    python_version: str  # "3.11"

    def describe(self) -> str:
        newest = self.platforms[0].removeprefix("manylinux_")  # e.g. 2_26_x86_64
        major, minor, arch = newest.split("_", 2)
        return f"CPython {self.python_version} on Linux {arch} with glibc {major}.{minor}"


def pip_install_command(requirements: Sequence[str], target: Path, platform: TargetPlatform,
                        constraints: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "pip", "install", "--target", str(target), "--no-compile",
               "--disable-pip-version-check", "--no-input", "--quiet",
               "--implementation", "cp", "--python-version", platform.python_version,
               "--only-binary=:all:"]
    for tag in platform.platforms:
        command += ["--platform", tag]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    return command + list(requirements)


def constraint_lines(path: Path) -> list[str]:
    """The pins of a requirements file with its ``-r other.txt`` lines replaced by that file's
    pins, as serverless-python-requirements reads it (aws_lambda/requirements-pandas.txt includes
    requirements.txt). Given to pip as they are, the lines of an included file would be
    requirements, not constraints: pip would install all of them."""
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = re.match(r"^(?:-r|--requirement)(?:\s+|=)(\S+)$", line)
        if include:
            nested = (path.parent / include.group(1))
            if not nested.is_file():
                raise DependencyInstallFailed(f"{path} includes {include.group(1)}, which is not a file beside it")
            lines += constraint_lines(nested)
        else:
            lines.append(line)
    return lines


def install(requirements: Sequence[str], target: Path, platform: TargetPlatform,
            constraints: Path | None = None) -> None:
    """Install ``requirements`` into ``target`` for ``platform``; raise with pip's own explanation."""
    with tempfile.TemporaryDirectory(prefix="serverless-ml-constraints-") as folder:
        flat = None
        if constraints is not None:
            flat = Path(folder) / "constraints.txt"
            flat.write_text("".join(f"{line}\n" for line in constraint_lines(constraints)), encoding="utf-8")
        command = pip_install_command(requirements, target, platform, flat)
        try:
            done = subprocess.run(command, capture_output=True, text=True)
        except OSError as exc:
            raise DependencyInstallFailed(f"could not run pip ({exc}); expected pip in {sys.executable}'s environment") from None
    if done.returncode != 0:
        explanation = "\n".join(line for line in done.stderr.splitlines() if line.startswith("ERROR"))
        raise DependencyInstallFailed(
            f"pip could not install {', '.join(requirements)} for {platform.describe()}:\n"
            f"{explanation or done.stderr.strip()[-2000:]}\n"
            "(only wheels built for that platform can go into the bundle; pin a version that has them, "
            "e.g. with --constraint FILE)"
        )


def prune(site_packages: Path) -> int:
    """Remove what never runs in the function: test suites, console scripts (their shebang names
    this machine's interpreter) and stray bytecode. Returns the bytes removed.

    A test folder that the library's own code imports stays (NumPy 2.2's ``numpy.testing`` imports
    ``numpy._core.tests._natype``, and ``numpy.testing`` is imported by SciPy at run time).
    """
    removed = 0

    def drop(path: Path) -> None:
        nonlocal removed
        if path.is_dir():
            removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        else:
            removed += path.stat().st_size
            path.unlink()

    if (site_packages / "bin").is_dir():
        drop(site_packages / "bin")
    candidates: list[Path] = []
    for directory, subdirectories, files in os.walk(site_packages, topdown=True):
        here = Path(directory)
        for name in list(subdirectories):
            if name == "__pycache__":
                drop(here / name)
                subdirectories.remove(name)
            elif name in TEST_DIRECTORIES and (here / "__init__.py").exists():
                # only test folders inside a package: a top-level project named "test" stays
                candidates.append(here / name)
                subdirectories.remove(name)
        for name in files:
            if name.endswith((".pyc", ".pyo")):
                drop(here / name)
    unimported = _unimported(site_packages, candidates)
    for folder in candidates:
        if folder in unimported:
            drop(folder)
        else:  # keep what the library imports from it, not its test modules
            for module in folder.rglob("test_*.py"):
                drop(module)
    return removed


def _unimported(site_packages: Path, test_folders: Sequence[Path]) -> list[Path]:
    """The test folders that no module outside the test folders imports, absolutely or relatively."""
    if not test_folders:
        return []
    dotted = {".".join(folder.relative_to(site_packages).parts): folder for folder in test_folders}
    absolute = re.compile(r"\b(" + "|".join(re.escape(name) for name in sorted(dotted, key=len, reverse=True)) + r")\b")
    relative = re.compile(r"^\s*from\s+\.\s*(?:import\s+)?(tests?)\b", re.MULTILINE)
    inside = tuple(str(folder) + os.sep for folder in test_folders)
    used: set[Path] = set()
    for path in site_packages.rglob("*.py"):
        if str(path).startswith(inside):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "test" not in text:
            continue
        used.update(dotted[match.group(1)] for match in absolute.finditer(text))
        used.update(path.parent / match.group(1) for match in relative.finditer(text))
    return [folder for folder in test_folders if folder not in used]


def find_interpreter(python_version: str) -> str | None:
    """An interpreter of the target's minor version: bytecode is only valid for the version that wrote it."""
    if "{}.{}".format(*sys.version_info[:2]) == python_version:
        return sys.executable
    candidates = [shutil.which(f"python{python_version}")]
    # pyenv's shim answers only for the selected versions; the others sit in its versions folder
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{python_version}*/bin/python{python_version}"))
    for found in filter(None, candidates):
        try:  # a version manager's shim may be on PATH without that version behind it
            done = subprocess.run([found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == python_version:
            return found
    return None


def compile_bytecode(root: Path, interpreter: str, runtime_root: str) -> None:
    """Write ``__pycache__`` for every module under ``root``, as the runtime would on first import
    if its file system were writable (Lambda's /var/task is not, so without these every cold start
    compiles every module again).

    Unchecked hash-based pycs (PEP 552): the zip's fixed timestamps would make timestamp-based ones
    look stale, and the package never changes once deployed. File names inside the bytecode are
    written as ``runtime_root``, where the code runs, so the bytes do not depend on the build folder.
    """
    # one process, files in compileall's sorted order: marshal marks an object shared only when
    # something else holds it, so a module's bytes depend on what its process compiled before, and
    # worker processes (-j 0) share the files out differently from one build to the next (two
    # scikit-learn pycs differed between builds on a loaded machine); ~1.5 s more per build
    command = [interpreter, "-m", "compileall", "-q", "-q", "-j", "1", "--invalidation-mode", "unchecked-hash",
               "-s", str(root), "-p", runtime_root, str(root)]
    # a file that does not compile (a template some wheels ship) is one that is never imported:
    # compileall's exit status 1 for it is not a failure of the bundle
    try:
        subprocess.run(command, capture_output=True, text=True)
    except OSError as exc:
        raise DependencyInstallFailed(f"could not run {interpreter} to compile the bytecode ({exc})") from None


def installed_versions(site_packages: Path, names: Sequence[str]) -> dict[str, str]:
    """The versions of ``names`` (normalised project names) installed in ``site_packages``."""
    from importlib import metadata

    from serverless_ml.bundles.sources import requirement_name

    found: dict[str, str] = {}
    for distribution in metadata.distributions(path=[str(site_packages)]):
        name = requirement_name(distribution.metadata["Name"] or "")
        if name in names:
            found[name] = distribution.version
    return found


def local_versions(names: Sequence[str]) -> dict[str, str]:
    """The versions of ``names`` installed where this command runs (where models are usually trained)."""
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
