"""Whether a library is installed, asked before anything imports it.

Settings check a cloud SDK at start and the model loader checks scikit-learn before it downloads a
pickle, on every cold start, so the common answer ("yes, it is there") must cost nothing: a stat
per ``sys.path`` entry. ``importlib.util.find_spec`` would cost 3 ms to import and would import the
parents of a dotted name (the azure / google namespace packages); it is asked only when the files
are not found, for zip or custom-finder installs.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from types import ModuleType


def is_installed(module: str) -> bool:
    """Whether ``module`` (dotted, e.g. ``azure.storage.blob``) can be imported here."""
    if _on_sys_path(module):
        return True
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _on_sys_path(module: str) -> bool:
    parts = module.split(".")
    for entry in sys.path:
        base = os.path.join(entry or ".", *parts)
        if os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__init__.py")):
            return True
    return False


@cache
def orjson_module() -> ModuleType | None:
    """orjson, imported on first use (~1 ms once scikit-learn's standard modules are in), or None.

    A dependency of the package, but a bundle or environment built without it still works: each
    caller keeps the standard library's way as its fallback. The one place that asks, so the
    request parser, the answer encoder and the batch readers agree on whether it is there."""
    try:
        import orjson
    except ImportError:
        return None
    return orjson
