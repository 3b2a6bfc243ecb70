"""What each provider deploys: the adapter files, where the dependencies come from, the default
output and the size limits the provider documents.

Limits, as documented by each provider (MB here means 2**20 bytes, as they count them):

- AWS Lambda: 250 MB unzipped for the function's package and all its layers together
  ("CodeSizeUnzipped"); 50 MB zipped for a direct upload ("CodeSizeZipped"), larger packages go
  through S3, as ``sls deploy`` and the Terraform config in infra/ do.
- Google Cloud Functions: 100 MB zipped source and 500 MB uncompressed source plus modules (the
  1st gen quota; 2nd gen lists none, and its source goes through Cloud Build the same way). Cloud
  Build installs the modules from requirements.txt, so only the source is measured here.
- Azure Functions: no per-package limit is documented for Flex Consumption or Linux Consumption;
  1 GB, the smallest storage quota documented for a Consumption plan app, is applied to what is
  measured (the app folder, and ``.python_packages`` when the dependencies are vendored).
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


def limit_text(limit_bytes: int) -> str:
    """A limit as people write it: ``250``, ``0.01`` (MB)."""
    return f"{round(limit_bytes / MB, 3):g}"


@dataclass(frozen=True)
class Provider:
    name: str
    title: str
    adapter_dir: str  # the adapter's folder in the source tree
    adapter_files: tuple[str, ...]  # copied to the bundle's root
    adapter_is_package: bool  # the whole folder goes in as a package, beside core
    pyproject_extra: str  # the provider's extra in pyproject.toml
    requirements_file: str | None  # the adapter's requirements.txt, installed by the platform
    installs_dependencies: bool  # the builder installs them (Lambda) rather than the platform
    default_output: str  # relative to the source tree
    unzipped_limit: int
    unzipped_limit_what: str
    zipped_limit: int | None
    zipped_limit_what: str
    zipped_limit_is_hard: bool  # False: above it the zip still deploys, another way


AWS = Provider(
    name="aws", title="AWS Lambda", adapter_dir="aws_lambda",
    adapter_files=(), adapter_is_package=True, pyproject_extra="aws", requirements_file=None, installs_dependencies=True,
    default_output="build/aws/serverless-ml-aws.zip",
    unzipped_limit=250 * MB, unzipped_limit_what="Lambda's limit for the package and its layers, unzipped",
    zipped_limit=50 * MB, zipped_limit_what="Lambda's limit for a direct upload; above it, upload through S3",
    zipped_limit_is_hard=False,
)
GCP = Provider(
    name="gcp", title="Google Cloud Functions (gen2)", adapter_dir="gcp_function",
    adapter_files=("main.py", "gcp_logging.py", "requirements.txt"),
    adapter_is_package=False, pyproject_extra="gcp", requirements_file="requirements.txt",
    installs_dependencies=False,
    default_output="build/gcp/serverless-ml-gcp.zip",
    unzipped_limit=500 * MB,
    unzipped_limit_what="Cloud Functions' limit for source plus modules, uncompressed (Cloud Build adds the modules)",
    zipped_limit=100 * MB, zipped_limit_what="Cloud Functions' limit for the zipped source",
    zipped_limit_is_hard=True,
)
AZURE = Provider(
    name="azure", title="Azure Functions (Python v2)", adapter_dir="azure_function",
    adapter_files=("function_app.py", "host.json", "requirements.txt", ".funcignore"),
    adapter_is_package=False, pyproject_extra="azure", requirements_file="requirements.txt",
    installs_dependencies=False,
    default_output="build/azure/serverless-ml-azure.zip",
    unzipped_limit=1024 * MB,
    unzipped_limit_what="the applied limit for the app content (Azure documents no per-package limit)",
    zipped_limit=None, zipped_limit_what="", zipped_limit_is_hard=False,
)

PROVIDERS = {provider.name: provider for provider in (AWS, AZURE, GCP)}

# Model formats beyond joblib/pickle that a bundle can carry (pyproject.toml extras of the same name).
MODEL_FORMAT_EXTRAS = ("onnx", "skops")
# The DataFrame library a model whose input schema has the layout "frame" needs (pyproject.toml's
# extra of the same name); core imports it for such a model only.
DATAFRAME_EXTRA = "pandas"

# Lambda's managed runtimes: Python 3.11 and earlier run on Amazon Linux 2 (glibc 2.26), 3.12 and
# later on Amazon Linux 2023 (glibc 2.34). A wheel for a newer glibc would install and then fail
# to load in the cloud, so the platforms pip may pick stop at the runtime's glibc.
LAMBDA_ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
# The Lambda runtimes a bundle is built for, as serverless.yml (param runtime) and infra/aws
# (variable runtime) allow them: Amazon Linux 2023 only, since NumPy 2.3 and later publish no
# wheels for Amazon Linux 2's glibc 2.26 (python3.11). Every pin of aws_lambda/requirements*.txt
# has manylinux wheels for each of them on x86_64 and aarch64 (tests/packaging/test_lambda_runtimes.py).
LAMBDA_PYTHON_VERSIONS = ("3.12", "3.13", "3.14")
# What `serverless-ml package --provider aws`, serverless.yml and infra/aws default to: python3.13,
# not the newest, because infra/aws's provider (hashicorp/aws ~> 5.100, versions.tf) refuses
# python3.14, which only its 6.x releases know, and both AWS paths should deploy the same bundle by
# default. serverless.yml and this command take python3.14 when asked.
LAMBDA_DEFAULT_PYTHON = "3.13"


def lambda_glibc_minor(python_version: str) -> int:
    major, minor = (int(part) for part in python_version.split("."))
    return 26 if (major, minor) <= (3, 11) else 34


def manylinux_platforms(arch: str, glibc_minor: int) -> list[str]:
    """pip ``--platform`` values for a Linux with glibc 2.<glibc_minor> on ``arch`` (x86_64/aarch64),
    newest first; pip expands manylinux2014 to 2010 and 1 itself, but not the PEP 600 tags."""
    return [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 16, -1)] + [f"manylinux2014_{arch}"]
