"""The deployable bundle of one provider: core, that provider's adapter, and only its dependencies.

    from serverless_ml.bundles import AWS, BundleOptions, build
    result = build(BundleOptions(AWS, Path("build/aws/serverless-ml-aws.zip"), source=Path(".")))
    result.size.unzipped_bytes, result.size.zipped_bytes

``serverless-ml package --provider aws|azure|gcp`` is the command line of :func:`build`.
"""

from serverless_ml.bundles.archive import ArchiveSize, write_zip
from serverless_ml.bundles.builder import BundleOptions, BundleResult, build
from serverless_ml.bundles.errors import (
    BundleError,
    BundleTooLarge,
    DependencyInstallFailed,
    OutputRefused,
    SourceTreeMissing,
)
from serverless_ml.bundles.providers import AWS, AZURE, GCP, MODEL_FORMAT_EXTRAS, PROVIDERS, Provider

__all__ = [
    "AWS", "AZURE", "GCP", "MODEL_FORMAT_EXTRAS", "PROVIDERS", "ArchiveSize", "BundleError", "BundleOptions",
    "BundleResult", "BundleTooLarge", "DependencyInstallFailed", "OutputRefused", "Provider", "SourceTreeMissing",
    "build", "write_zip",
]
