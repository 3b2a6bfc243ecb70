"""``serverless-ml package --provider aws|azure|gcp``: build the deployable bundle of one provider.

    serverless-ml package --provider aws                  # build/aws/serverless-ml-aws.zip
    serverless-ml package --provider gcp --extra onnx     # build/gcp/serverless-ml-gcp.zip
    serverless-ml package --provider aws --onnx-only      # .onnx models only: no scikit-learn, SciPy, joblib
    serverless-ml package --provider aws --extra pandas   # a model that takes its rows as a DataFrame
    serverless-ml package --provider aws --model titanic.joblib   # pandas if that model needs it
    serverless-ml package --provider azure --out /tmp/app.zip   # /tmp/app/ and /tmp/app.zip

Prints the bundle's size against the provider's limits. Exit status: 0 built; 2 not built (a bad
argument, a missing source tree, pip unable to install for the target, or a bundle over the limit).
Only argparse is imported here; the builder is imported when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PROVIDER_NAMES = ("aws", "azure", "gcp")
EXTRAS = ("onnx", "skops", "pandas")
LIMIT_VARIABLE = "SERVERLESS_ML_BUNDLE_LIMIT_MB"
# aws_lambda/'s pinned requirements, by what the bundle serves: serverless.yml installs the same
# file (serverless_ml/bundles/lambda_requirements.js: requirements-onnx.txt for an .onnx model key,
# requirements-pandas.txt with modelNeedsPandas=true)
LAMBDA_REQUIREMENTS = {"onnx-only": "requirements-onnx.txt", "pandas": "requirements-pandas.txt", "": "requirements.txt"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Build the deployable bundle of one provider: core, its adapter and only its dependencies "
        "(AWS: installed for Lambda's Linux and Python; GCP and Azure: requirements.txt for the platform's build). "
        "Exit status 2 when the bundle is not built, e.g. over the provider's size limit.")
    parser.add_argument("--provider", required=True, choices=PROVIDER_NAMES, help="the cloud to build for")
    parser.add_argument(
        "--out", type=Path,
        help="the zip to write (default: build/<provider>/serverless-ml-<provider>.zip in the source tree); "
             "Azure's app folder is written beside it, with the same name without .zip")
    parser.add_argument("--extra", action="append", choices=EXTRAS, default=[],
                        help="a model format to support as well (onnx: onnxruntime; skops), or pandas for a model "
                             "that takes its rows as a DataFrame (GET /model: input_schema.layout 'frame'); repeatable")
    parser.add_argument("--model", type=Path,
                        help="the model file the bundle will serve: pandas is added when it takes its rows as a "
                             "DataFrame (read from its manifest's input_schema, else from the model loaded here "
                             "as core loads it: a pickle runs code, so give only your own model)")
    parser.add_argument("--onnx-only", action="store_true",
                        help="serve .onnx models only: onnxruntime and NumPy, without scikit-learn, SciPy or joblib "
                             "(a smaller bundle and a faster cold start); export the model first with "
                             "`serverless-ml export MODEL --to onnx`")
    parser.add_argument("--no-deps", action="store_true",
                        help="AWS: leave the dependencies out (for a layer that has them, or a quick look)")
    parser.add_argument("--vendor-deps", action="store_true",
                        help="Azure: install the dependencies into .python_packages, for a deployment without remote build")
    # AWS: one of Lambda's Amazon Linux 2023 runtimes (providers.LAMBDA_PYTHON_VERSIONS), 3.13 by
    # default as serverless.yml and infra/aws deploy (providers.LAMBDA_DEFAULT_PYTHON says why);
    # Lambda's 3.11 runs on Amazon Linux 2, whose glibc 2.26 has no wheels of current NumPy
    parser.add_argument("--python-version", choices=("3.10", "3.11", "3.12", "3.13", "3.14"),
                        help="the runtime's Python; the wheels and bytecode are for it (default: AWS 3.13, as serverless.yml "
                             "and infra/aws deploy; it must match the function's runtime; Azure and GCP 3.12)")
    parser.add_argument("--arch", default="x86_64", choices=("x86_64", "arm64"),
                        help="AWS: the function's architecture, x86_64 (default) or arm64 (Graviton: manylinux "
                             "aarch64 wheels); it must match the function's architecture")
    parser.add_argument("--include-boto3", action="store_true",
                        help="AWS: bundle boto3/botocore instead of using the runtime's (about 25 MB more)")
    parser.add_argument("--constraint", type=Path,
                        help="a pip constraints file for the installed dependencies, e.g. scikit-learn==1.7.2 "
                             "(AWS: aws_lambda/requirements.txt unless given; with --onnx-only "
                             "aws_lambda/requirements-onnx.txt, with pandas aws_lambda/requirements-pandas.txt: "
                             "the files serverless.yml deploys)")
    parser.add_argument(
        "--limit-mb",
        help=f"fail above this many MB unzipped instead of the provider's limit, e.g. to leave room for layers "
             f"(or set {LIMIT_VARIABLE})")
    parser.add_argument("--source", type=Path, help="the serverless-ml source tree (default: the one this command runs from)")


def run(args: argparse.Namespace) -> int:
    from serverless_ml.bundles import PROVIDERS, BundleError, BundleOptions, build
    from serverless_ml.bundles.providers import MB
    from serverless_ml.bundles.sources import default_source_tree

    provider = PROVIDERS[args.provider]
    try:
        limit_mb = _limit_mb(args)
        python_version = _python_version(args)
    except ValueError as exc:
        return _fail(str(exc))
    if args.vendor_deps and provider.name != "azure":
        return _fail(f"--vendor-deps is for --provider azure; {provider.title} gets its dependencies "
                     + ("in the zip already" if provider.name == "aws" else "from Cloud Build (requirements.txt)"))
    if provider.name != "aws":
        for flag, given in (("--no-deps", args.no_deps), ("--include-boto3", args.include_boto3), ("--arch", args.arch != "x86_64")):
            if given:
                return _fail(f"{flag} is for --provider aws; {provider.title} installs its dependencies on the platform")
    if args.onnx_only and "skops" in args.extra:
        return _fail("--extra skops needs scikit-learn, which --onnx-only leaves out; expected one of them: "
                     "export the model with `serverless-ml export MODEL --to onnx` for --onnx-only")
    if args.onnx_only and "pandas" in args.extra:
        return _fail("--extra pandas is for a scikit-learn model that takes a DataFrame, which --onnx-only leaves out; "
                     "an .onnx model is served from typed tensors without pandas: drop one of them")
    extras, model_notes = list(dict.fromkeys(args.extra)), []
    if args.model is not None:
        from serverless_ml.bundles.model_needs import model_needs

        try:
            needs = model_needs(args.model)
        except BundleError as exc:
            return _fail(exc.message)
        if args.onnx_only and needs.format != "onnx":
            return _fail(f"--model {args.model} is a {needs.format} file, and --onnx-only serves .onnx models only; "
                         "export it with `serverless-ml export MODEL --to onnx`, or build without --onnx-only")
        added = [extra for extra in needs.extras if extra not in extras]
        extras += added
        if added:
            model_notes.append(f"{', '.join(added)} added for --model {args.model}: {needs.reason}")
        elif "pandas" in extras and "pandas" not in needs.extras:
            model_notes.append(f"--extra pandas is not needed by --model {args.model} ({needs.reason}); "
                               "with pandas installed, scikit-learn imports it at every cold start")
        else:
            model_notes.append(f"--model {args.model}: {needs.reason}")
        model_notes += _scratch_warning(args.model) if provider.name == "aws" else []
    source = (args.source or default_source_tree()).resolve()
    output = (args.out if args.out is not None else source / provider.default_output).absolute()
    constraints = args.constraint
    pinned = source / "aws_lambda" / LAMBDA_REQUIREMENTS[
        "onnx-only" if args.onnx_only else "pandas" if "pandas" in extras else ""]
    if constraints is None and provider.name == "aws" and pinned.is_file():
        # the versions serverless.yml deploys (pinned, with wheels for every Lambda runtime): both AWS
        # paths ship the same
        constraints = pinned
    options = BundleOptions(
        provider=provider, output=output, source=source, extras=tuple(extras),
        onnx_only=args.onnx_only,
        install_dependencies=(not args.no_deps) if provider.name == "aws" else args.vendor_deps,
        python_version=python_version, architecture=args.arch, include_boto3=args.include_boto3,
        constraints=constraints, limit_bytes=None if limit_mb is None else round(limit_mb * MB),
    )
    try:
        result = build(options)
    except BundleError as exc:
        return _fail(exc.message)
    result.notes[:0] = model_notes
    _print_report(result)
    return 0


def _python_version(args: argparse.Namespace) -> str:
    from serverless_ml.bundles.providers import LAMBDA_DEFAULT_PYTHON, LAMBDA_PYTHON_VERSIONS

    if args.provider != "aws":
        return args.python_version or "3.12"
    if args.python_version is None:
        return LAMBDA_DEFAULT_PYTHON
    if args.python_version not in LAMBDA_PYTHON_VERSIONS:
        raise ValueError(
            f"--python-version {args.python_version} is not a Lambda runtime this package is built for; expected "
            f"{', '.join(LAMBDA_PYTHON_VERSIONS[:-1])} or {LAMBDA_PYTHON_VERSIONS[-1]} (Amazon Linux 2023). Lambda's "
            f"python{args.python_version} runs on Amazon Linux 2, whose glibc 2.26 has no wheels of current NumPy")
    return args.python_version


def _limit_mb(args: argparse.Namespace):
    if args.limit_mb is not None:
        text, origin = args.limit_mb, "--limit-mb"
    elif os.environ.get(LIMIT_VARIABLE, "").strip():
        text, origin = os.environ[LIMIT_VARIABLE].strip(), LIMIT_VARIABLE
    else:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{origin}={text!r} is not allowed; expected a positive number of megabytes, e.g. 200")
    return value


LAMBDA_DEFAULT_TMP_MB = 512  # Lambda's /tmp unless raised; also the most SnapStart allows


def _scratch_warning(model: Path) -> list[str]:
    """A model of 4 MiB or more is copied to /tmp to be loaded (core/model/fetch.py): say so when
    it will not fit Lambda's default /tmp, with the size to set."""
    from core.model.fetch import MEMORY_BELOW_BYTES
    from serverless_ml.bundles.providers import MB

    size = model.stat().st_size
    if size < MEMORY_BELOW_BYTES or size < 0.9 * LAMBDA_DEFAULT_TMP_MB * MB:
        return []
    needed = int(size * 1.1 / MB) + 64  # the copy, and room for the runtime's own files
    return [
        f"warning: --model {model} is {size / MB:,.0f} MB; the predict function copies it to /tmp to load it, and "
        f"Lambda's /tmp is {LAMBDA_DEFAULT_TMP_MB} MB unless raised: set predictEphemeralStorage (serverless.yml) or "
        f"predict_ephemeral_storage_mb (infra/aws) to at least {needed} (SnapStart allows {LAMBDA_DEFAULT_TMP_MB} at most)"
    ]


def _fail(message: str) -> int:
    print(f"serverless-ml: {message}", file=sys.stderr)
    return 2


def _print_report(result) -> None:
    from serverless_ml.bundles.providers import MB, limit_text

    options, provider, size = result.options, result.options.provider, result.size
    where = f"{options.folder}/ and {result.archive}" if options.folder else str(result.archive)
    print(f"built {where} for {provider.title} in {result.seconds:.1f} s ({size.files} files)")
    limit_what = "set with --limit-mb" if options.limit_bytes is not None else provider.unzipped_limit_what
    print(f"  unzipped {size.unzipped_bytes / MB:8.1f} MB of {limit_text(options.unzipped_limit)} MB "
          f"({100 * size.unzipped_bytes / options.unzipped_limit:.0f}%): {limit_what}")
    zipped = f"  zipped   {size.zipped_bytes / MB:8.1f} MB"
    if provider.zipped_limit:
        over = size.zipped_bytes > provider.zipped_limit
        zipped += f" of {limit_text(provider.zipped_limit)} MB: {provider.zipped_limit_what}"
        if over and not provider.zipped_limit_is_hard:
            zipped += " (this one is above it)"
    print(zipped)
    if result.dependencies:
        print("  " + ", ".join(f"{name} {version}" for name, version in sorted(result.dependencies.items())))
    for note in result.notes:
        print(f"  note: {note}")
