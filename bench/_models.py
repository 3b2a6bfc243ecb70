"""What both benchmarks share: the two models, the data they are fitted on, the environment.

Not a benchmark itself (``run_all.py`` skips files starting with ``_``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:  # `core` without installing the package
    sys.path.insert(0, str(ROOT))

N_FEATURES = 20
RANDOM_STATE = 0
MODEL_NAMES = ("random_forest_200", "logistic_regression")


def build_models(folder: str):
    """Fit both models on the synthetic data set, joblib.dump them into ``folder``.

    Returns ({name: absolute path}, X) where X is the (2000, 20) float64 training data.
    """
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(
        n_samples=2000, n_features=N_FEATURES, n_informative=10, n_redundant=4, random_state=RANDOM_STATE
    )
    estimators = {
        "random_forest_200": RandomForestClassifier(n_estimators=200, random_state=RANDOM_STATE),
        "logistic_regression": LogisticRegression(max_iter=1000),
    }
    paths = {}
    for name in MODEL_NAMES:
        path = os.path.join(os.path.abspath(folder), f"{name}.joblib")
        joblib.dump(estimators[name].fit(X, y), path)
        paths[name] = path
    return paths, X


def pandas_installed() -> bool:
    """If pandas is installed, scikit-learn imports it, and every cold start pays for it."""
    return importlib.util.find_spec("pandas") is not None


def environment() -> dict:
    import joblib
    import numpy
    import sklearn

    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "pandas_installed": pandas_installed(),
        "onnxruntime": _installed_version("onnxruntime"),
    }


def _installed_version(distribution: str):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def write_json(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path

