"""Helpers of the format tests: the export command as a user runs it, the iris rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.support import isolated_env

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def export(model: Path, to: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`serverless-ml export`, run as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "serverless_ml.cli", "export", str(model), "--to", to, *extra],
        capture_output=True, text=True, timeout=180, env=isolated_env(**(env or {})),
    )


def iris_rows() -> np.ndarray:
    from sklearn.datasets import load_iris

    return load_iris().data


