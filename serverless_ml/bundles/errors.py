"""What can stop a bundle from being built, one type per failure the caller can act on."""

from __future__ import annotations


class BundleError(Exception):
    """The bundle was not built; ``message`` says why and what was expected."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SourceTreeMissing(BundleError):
    """The project's source tree (pyproject.toml, core/, the provider's adapter) is not where expected."""


class OutputRefused(BundleError):
    """The output path is unusable: wrong suffix, inside the sources, or a folder that is not a bundle."""


class DependencyInstallFailed(BundleError):
    """pip could not install the dependencies for the target platform."""


class BundleTooLarge(BundleError):
    """The bundle is over the provider's size limit (or the one given with --limit-mb)."""
