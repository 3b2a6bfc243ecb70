"""Building one provider's bundle: sources, requirements, dependencies, size check, archive."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from serverless_ml.bundles import dependencies, sources
from serverless_ml.bundles.archive import ArchiveSize, folder_size, write_zip
from serverless_ml.bundles.errors import BundleTooLarge, DependencyInstallFailed, OutputRefused
from serverless_ml.bundles.providers import (
    AWS,
    AZURE,
    LAMBDA_ARCHITECTURES,
    MB,
    Provider,
    lambda_glibc_minor,
    limit_text,
    manylinux_platforms,
)

# what a deployed model needs at the same version it was trained with (checked against this machine)
MODEL_LIBRARIES = ("scikit-learn", "numpy", "onnxruntime", "skops", "pandas")
# in Lambda's Python runtimes already; left out unless asked for (see BundleOptions.include_boto3)
LAMBDA_RUNTIME_PACKAGES = ("boto3",)
# what BundleOptions.onnx_only leaves out of the declared requirements (SciPy, threadpoolctl and
# narwhals come only with scikit-learn) ...
SCIKIT_LEARN_REQUIREMENTS = ("scikit-learn", "joblib")
# ... and what must then be absent from the installed dependencies: serving an .onnx model imports none of it
SCIKIT_LEARN_STACK = ("scikit-learn", "scipy", "joblib", "threadpoolctl", "narwhals", "pandas")
# Azure's Linux workers run on x86-64 with the glibc of Debian 11 (2.31)
AZURE_PLATFORM = dependencies.TargetPlatform(tuple(manylinux_platforms("x86_64", 31)), "3.11")
WWWROOT = "/home/site/wwwroot"
BUNDLE_DESCRIPTION_SUFFIX = ".bundle.json"
LAMBDA_TASK_ROOT = "/var/task"


@dataclass(frozen=True)
class BundleOptions:
    provider: Provider
    output: Path  # the zip to write; Azure's folder is written beside it, without the .zip
    source: Path
    extras: tuple[str, ...] = ()
    onnx_only: bool = False  # serve .onnx models only: onnxruntime and NumPy, no scikit-learn, SciPy or joblib
    install_dependencies: bool = True  # Lambda: into the zip; Azure: into .python_packages (no remote build)
    python_version: str = "3.12"
    architecture: str = "x86_64"  # Lambda's: x86_64 or arm64
    include_boto3: bool = False
    constraints: Path | None = None
    limit_bytes: int | None = None  # instead of the provider's unzipped limit

    @property
    def folder(self) -> Path | None:
        return self.output.with_suffix("") if self.provider is AZURE else None

    @property
    def description_path(self) -> Path:
        """What the bundle carries, beside the zip (``serverless-ml-aws.zip`` ->
        ``serverless-ml-aws.bundle.json``): Terraform reads it to refuse a bundle without pandas for
        a model that needs it (infra/modules/bundle), since it cannot look inside a zip."""
        return self.output.with_name(self.output.stem + BUNDLE_DESCRIPTION_SUFFIX)

    @property
    def model_extras(self) -> tuple[str, ...]:
        """The model-format extras to install: ``extras``, and onnx for an ONNX-only bundle."""
        return (*self.extras, "onnx") if self.onnx_only and "onnx" not in self.extras else self.extras

    @property
    def left_out(self) -> tuple[str, ...]:
        """The declared requirements this bundle leaves out."""
        return SCIKIT_LEARN_REQUIREMENTS if self.onnx_only else ()

    @property
    def command_options(self) -> str:
        """The options of ``serverless-ml package`` that change the requirements, as typed."""
        return " ".join([*(f"--extra {extra}" for extra in self.extras), *(["--onnx-only"] if self.onnx_only else [])])

    @property
    def unzipped_limit(self) -> int:
        return self.limit_bytes if self.limit_bytes is not None else self.provider.unzipped_limit


@dataclass
class BundleResult:
    options: BundleOptions
    archive: Path
    size: ArchiveSize
    seconds: float
    dependencies: dict[str, str] = field(default_factory=dict)  # bundled versions of the model libraries
    # what scikit-learn and what comes with it take, in a bundle that carries onnxruntime too: the
    # saving of --onnx-only (0 when not measured)
    scikit_learn_bytes: int = 0
    notes: list[str] = field(default_factory=list)


def lambda_platform(options: BundleOptions) -> dependencies.TargetPlatform:
    arch = LAMBDA_ARCHITECTURES[options.architecture]
    return dependencies.TargetPlatform(
        tuple(manylinux_platforms(arch, lambda_glibc_minor(options.python_version))), options.python_version)


def build(options: BundleOptions) -> BundleResult:
    started = time.perf_counter()
    provider = options.provider
    sources.check_source_tree(options.source, provider)
    _check_output(options)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{options.output.stem}-", dir=options.output.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would become the Azure folder's
    try:
        sources.copy_sources(options.source, provider, staging)
        if provider.requirements_file:
            sources.write_requirements(
                staging / provider.requirements_file, options.source / provider.adapter_dir / provider.requirements_file,
                sources.extra_requirements(options.source, options.model_extras), options.command_options,
                left_out=options.left_out)
        result = BundleResult(options, options.output, ArchiveSize(0, 0, 0), 0.0)
        if options.onnx_only:
            result.notes.append(
                f"ONNX only, without {', '.join(SCIKIT_LEARN_STACK)}: it serves .onnx models "
                "(a .joblib or .skops MODEL_URI answers 503 model_unavailable)")
        if options.install_dependencies:
            _install_dependencies(options, staging, result)
        if provider is AWS:
            _compile_for_lambda(options, staging, result)
        if options.install_dependencies and "onnx" in options.model_extras and not options.onnx_only:
            result.scikit_learn_bytes = _scikit_learn_bytes(_site_packages(options, staging))
            result.notes.append(
                f"scikit-learn and what comes with it take {result.scikit_learn_bytes / MB:.1f} MB of this: "
                "--onnx-only leaves them out, to serve a model exported to .onnx")
        unzipped = folder_size(staging)
        if unzipped > options.unzipped_limit:
            saving = (f"; or --onnx-only, {result.scikit_learn_bytes / MB:.1f} MB less, for a model exported to .onnx"
                      if result.scikit_learn_bytes else "")
            raise BundleTooLarge(
                f"the {provider.title} bundle would be {unzipped / MB:.1f} MB unzipped, over the "
                f"{limit_text(options.unzipped_limit)} MB limit ({_limit_source(options)}); nothing was written. "
                f"Leave out what the model does not need (an --extra{saving}), or ship large libraries in a layer or image")
        folder = options.folder
        if folder is not None:
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
            staging = folder
        result.size = write_zip(staging, options.output)
        _write_description(options, result)
        zipped_limit = provider.zipped_limit
        if provider.zipped_limit_is_hard and zipped_limit and result.size.zipped_bytes > zipped_limit:
            options.output.unlink()
            raise BundleTooLarge(
                f"the {provider.title} bundle is {result.size.zipped_bytes / MB:.1f} MB zipped, over the "
                f"{limit_text(zipped_limit)} MB limit ({provider.zipped_limit_what}); the zip was removed")
        result.seconds = time.perf_counter() - started
        return result
    finally:
        if staging != options.folder and staging.exists():
            shutil.rmtree(staging)


def _install_dependencies(options: BundleOptions, staging: Path, result: BundleResult) -> None:
    provider = options.provider
    if provider is AWS:
        extras = [*options.model_extras, *([provider.pyproject_extra] if options.include_boto3 else [])]
        requirements = sources.without(sources.declared_requirements(options.source, extras), options.left_out)
        platform, site_packages = lambda_platform(options), _site_packages(options, staging)
        if not options.include_boto3:
            result.notes.append("boto3 left out: Lambda's Python runtime has it (--include-boto3 to pin your own)")
    elif provider is AZURE:
        requirements = sources.requirements_file_lines(staging / provider.requirements_file)
        site_packages = _site_packages(options, staging)
        platform = dependencies.TargetPlatform(AZURE_PLATFORM.platforms, options.python_version)
        runtime_root = f"{WWWROOT}/.python_packages/lib/site-packages"
        result.notes.append("dependencies vendored in .python_packages: deploy without a remote build")
    else:
        raise OutputRefused(f"{provider.title} installs the dependencies itself (Cloud Build); --deps is not used there")
    site_packages.mkdir(parents=True, exist_ok=True)
    dependencies.install(requirements, site_packages, platform, options.constraints)
    if options.onnx_only:
        _check_scikit_learn_left_out(site_packages, requirements)
    removed = dependencies.prune(site_packages)
    result.notes.append(f"{removed / MB:.1f} MB of test suites and scripts removed")
    if provider is AZURE:
        _compile(options, site_packages, runtime_root, result)
    result.dependencies = dependencies.installed_versions(site_packages, MODEL_LIBRARIES)
    # the note is about pickles, which an ONNX-only bundle does not load
    here = {} if options.onnx_only else dependencies.local_versions(list(result.dependencies))
    for name, version in sorted(result.dependencies.items()):
        if name in here and here[name] != version:
            result.notes.append(
                f"{name} {version} in the bundle (the newest with wheels for {platform.describe()}), {here[name]} here: "
                f"a model pickled here may not load there; train it with {name}=={version} or pin with --constraint")


def _write_description(options: BundleOptions, result: BundleResult) -> None:
    """The bundle's description, e.g.
    ``{"bundle": "serverless-ml-aws.zip", "sha256": "<the zip's>", "provider": "aws", "extras": ["pandas"], ...}``.
    The zip's digest ties it to this very zip: a zip replaced since is not described by it."""
    import hashlib

    digest = hashlib.sha256()
    with open(options.output, "rb") as archive:
        for block in iter(lambda: archive.read(1024 * 1024), b""):
            digest.update(block)
    description = {
        "bundle": options.output.name,
        "sha256": digest.hexdigest(),
        "provider": options.provider.name,
        "python_version": options.python_version,
        "architecture": options.architecture if options.provider is AWS else None,
        "extras": list(options.model_extras),
        "onnx_only": options.onnx_only,
        "dependencies_installed": options.install_dependencies,
        "dependencies": dict(sorted(result.dependencies.items())),
    }
    path = options.description_path
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def _site_packages(options: BundleOptions, staging: Path) -> Path:
    """Where the dependencies go: the zip's root on Lambda, Azure's .python_packages."""
    return staging / ".python_packages" / "lib" / "site-packages" if options.provider is AZURE else staging


def _scikit_learn_bytes(site_packages: Path) -> int:
    """The bytes of SCIKIT_LEARN_STACK's installed files, bytecode included: each distribution's
    top-level entries (e.g. scipy/, scipy.libs/, its .dist-info) as they are now."""
    from importlib import metadata

    tops: set[str] = set()
    for distribution in metadata.distributions(path=[str(site_packages)]):
        if sources.requirement_name(distribution.metadata["Name"] or "") in SCIKIT_LEARN_STACK:
            tops.update(Path(file).parts[0] for file in distribution.files or () if Path(file).parts[0] != "..")
    total = 0
    for top in tops:
        path = site_packages / top
        total += folder_size(path) if path.is_dir() else path.stat().st_size if path.is_file() else 0
    return total


def _check_scikit_learn_left_out(site_packages: Path, requirements) -> None:
    found = dependencies.installed_versions(site_packages, SCIKIT_LEARN_STACK)
    if found:
        raise DependencyInstallFailed(
            f"--onnx-only leaves out scikit-learn and what comes with it, but installing {', '.join(requirements)} "
            f"brought {', '.join(f'{name} {version}' for name, version in sorted(found.items()))}; "
            "expected only packages that serving an .onnx model needs: remove the requirement that pulls them in")


def _compile_for_lambda(options: BundleOptions, staging: Path, result: BundleResult) -> None:
    """Lambda's /var/task is read-only: bytecode not in the zip is compiled again at every cold start."""
    _compile(options, staging, LAMBDA_TASK_ROOT, result)


def _compile(options: BundleOptions, root: Path, runtime_root: str, result: BundleResult) -> None:
    interpreter = dependencies.find_interpreter(options.python_version)
    if interpreter is None:
        result.notes.append(
            f"no python{options.python_version} on this machine: the bundle carries no bytecode, so every "
            "cold start compiles its modules (build with that Python to include it)")
        return
    dependencies.compile_bytecode(root, interpreter, runtime_root)


def _limit_source(options: BundleOptions) -> str:
    return "set with --limit-mb" if options.limit_bytes is not None else options.provider.unzipped_limit_what


def _check_output(options: BundleOptions) -> None:
    output = options.output
    if output.suffix != ".zip":
        raise OutputRefused(f"--out {output} does not end in .zip; expected the path of the zip to write")
    protected = [options.source / "core", options.source / options.provider.adapter_dir]
    for path in filter(None, (output, options.folder)):
        resolved = path.resolve()
        if resolved == options.source.resolve() or any(resolved == p.resolve() or p.resolve() in resolved.parents for p in protected):
            raise OutputRefused(f"--out {output} is inside the sources it is built from; expected a place of its own, e.g. build/")
    folder = options.folder
    if folder is not None and folder.exists():
        earlier_bundle = (folder / "function_app.py").exists() and (folder / "host.json").exists()
        if not folder.is_dir() or (any(folder.iterdir()) and not earlier_bundle):
            raise OutputRefused(
                f"{folder} exists and is not an earlier bundle; expected a new folder or an earlier Azure bundle to replace")
