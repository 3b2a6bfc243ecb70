"""The demo model: a classifier of iris flowers, trained from the data set scikit-learn ships.

Trained on first use (no download) and written as an ordinary joblib file, so it is then loaded
through ``MODEL_URI=file://...`` exactly like a user's model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DEMO_FILE_NAME = "iris-random-forest.joblib"
FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def ensure_demo_model(folder: Path) -> Path:
    """Return the demo model's path under ``folder``, training and writing it if absent."""
    path = Path(folder).resolve() / DEMO_FILE_NAME
    if path.is_file():
        return path
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    iris = load_iris()
    model = RandomForestClassifier(n_estimators=100, random_state=0)
    model.fit(iris.data, iris.target_names[iris.target])
    # Named features without pandas: clients may then send rows as objects keyed by these names.
    model.feature_names_in_ = np.asarray(FEATURE_NAMES, dtype=object)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    joblib.dump(model, tmp)
    os.replace(tmp, path)  # concurrent first runs never see a half-written file
    return path
