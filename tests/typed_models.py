"""Models fitted the way users fit them, in a notebook on a DataFrame, for the typed-input tests.

Each builder returns the fitted model and rows to ask it about; ``save_typed_models(folder)``
writes every one as ``<name>.joblib`` and is what the session fixture ``typed_models`` calls.

    mixed       Pipeline(ColumnTransformer(imputed+scaled numbers, OneHotEncoder(ignore)), LogisticRegression)
    strict      the same with OneHotEncoder(handle_unknown="error") and no imputer
    hgb         HistGradientBoostingClassifier(categorical_features="from_dtype") fitted with NaN
    text        make_pipeline(TfidfVectorizer(), LogisticRegression()) on raw texts
    logistic    LogisticRegression on four named numeric columns (takes no missing value)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np

PASSENGER = {"age": 22.0, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"}
TEXTS = ["free money now", "win cash prizes today", "see you at lunch", "meeting moved to friday"]


def passengers(n: int = 300, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.normal(30, 12, n).round(1),
        "fare": rng.exponential(20, n).round(2),
        "pclass": rng.integers(1, 4, n),
        "sex": rng.choice(["male", "female"], n),
        "embarked": rng.choice(["S", "C", "Q"], n),
    })
    frame.loc[::9, "age"] = np.nan
    survived = ((frame["sex"] == "female") | (frame["pclass"] == 1)).to_numpy()
    return frame, survived


def mixed() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, y = passengers()
    return Pipeline([
        ("prepare", ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "fare", "pclass"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "embarked"]),
        ])),
        ("classify", LogisticRegression()),
    ]).fit(frame, y)


def strict() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, y = passengers()
    frame = frame.fillna({"age": 30.0})
    return Pipeline([
        ("prepare", ColumnTransformer([
            ("num", StandardScaler(), ["age", "fare", "pclass"]),
            ("cat", OneHotEncoder(handle_unknown="error"), ["sex", "embarked"]),
        ])),
        ("classify", LogisticRegression()),
    ]).fit(frame, y)


def hgb() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, y = passengers()
    frame = frame.astype({"sex": "category", "embarked": "category"})
    return HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=20).fit(frame, y)


def text() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(TEXTS * 5, ["spam", "spam", "ham", "ham"] * 5)


def logistic() -> Any:
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    frame = pd.DataFrame(iris.data, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    return LogisticRegression(max_iter=500).fit(frame, iris.target_names[iris.target])


BUILDERS = {"mixed": mixed, "strict": strict, "hgb": hgb, "text": text, "logistic": logistic}


def save_typed_models(folder: Path) -> dict[str, Path]:
    paths = {}
    for name, build in BUILDERS.items():
        paths[name] = folder / f"{name}.joblib"
        joblib.dump(build(), paths[name])
    return paths
