"""Model file formats, chosen by the model file's extension.

==========================================  =========  ============================================
extension                                   format     loaded with
==========================================  =========  ============================================
``.joblib``, ``.pkl``, ``.pickle``          joblib     ``joblib.load`` (runs the pickle: pin
(also compressed: ``.joblib.gz``, ...)                 ``MODEL_SHA256``)
``.skops``                                  skops      ``skops.io.loads``, trusting only skops'
                                                       defaults and ``SKOPS_TRUSTED_TYPES``
``.onnx``                                   onnx       onnxruntime; no scikit-learn, SciPy, pandas
==========================================  =========  ============================================

The settings refuse a ``MODEL_URI`` of any other extension at start, so this table sits below them,
outside the ``core.model`` package (importing anything in that package runs its ``__init__``, which
loads the model loader, and the loader reads the settings). It imports nothing beyond the standard
library; each format's module in :mod:`core.model.formats` (and its library) is imported when a
model of that format is loaded.
"""

from __future__ import annotations

from typing import NamedTuple

from core.installed import is_installed


class ModelFormat(NamedTuple):
    name: str
    suffixes: tuple[str, ...]
    module: str  # core.model.formats.<module>: defines load(data, context) -> ModelDescription
    library: str  # what loads it, for messages
    extra: str | None = None  # the pip extra that installs the library


_COMPRESSED = (".gz", ".bz2", ".xz", ".lzma", ".z")  # what joblib.dump compresses by file name

FORMATS = (
    ModelFormat("joblib", (".joblib", ".pkl", ".pickle"), "joblib_format", "joblib"),
    ModelFormat("skops", (".skops",), "skops_format", "skops", "skops"),
    ModelFormat("onnx", (".onnx",), "onnx_format", "onnxruntime", "onnx"),
)
_BY_NAME = {f.name: f for f in FORMATS}


def format_for_name(file_name: str) -> ModelFormat | None:
    """The format of a model file by its name (case-insensitive), or None if not supported.

    >>> format_for_name("iris.joblib.gz").name, format_for_name("model.ONNX").name
    ('joblib', 'onnx')
    """
    name = file_name.lower()
    for fmt in FORMATS:
        for suffix in fmt.suffixes:
            if name.endswith(suffix) and len(name) > len(suffix):
                return fmt
            if fmt.name == "joblib" and any(name.endswith(suffix + c) for c in _COMPRESSED):
                return fmt
    return None


def supported_extensions() -> str:
    """For messages: '.joblib, .pkl, .pickle (joblib), .skops (skops), .onnx (onnxruntime)'."""
    return ", ".join(f"{', '.join(f.suffixes)} ({f.library})" for f in FORMATS)


def format_named(name: str) -> ModelFormat:
    return _BY_NAME[name]


# What rebuilds the estimator of a scikit-learn format, as (import name, project name): none of it
# is in a bundle built with `serverless-ml package --onnx-only`, which serves .onnx models only.
_ESTIMATOR_LIBRARIES = {
    "joblib": (("sklearn", "scikit-learn"), ("joblib", "joblib")),
    "skops": (("sklearn", "scikit-learn"), ("skops", "skops")),
}


def missing_estimator_libraries(fmt: ModelFormat) -> list[str]:
    """The projects ``fmt`` needs that are not installed here, when scikit-learn is one of them
    (else ``[]``: the format's own loader reports a missing skops); nothing is imported."""
    needed = _ESTIMATOR_LIBRARIES.get(fmt.name, ())
    if not needed or is_installed("sklearn"):
        return []
    return [project for module, project in needed if not is_installed(module)]
