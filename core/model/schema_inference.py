"""A fitted scikit-learn model's input schema, read from the model itself.

What is read, for a model fitted on a DataFrame (``feature_names_in_``):

* a ``ColumnTransformer`` (alone or first in a Pipeline): each column's type from the step it is
  routed to: an encoder (``OneHotEncoder``, ``OrdinalEncoder``, ``TargetEncoder``) makes it
  categorical with the fitted categories (numbers or strings) and whether an unknown one is
  predicted (``handle_unknown``); a text vectoriser makes it a string; anything else a number.
  A column is nullable when its step imputes (an imputer first in its pipeline), when its encoder
  was fitted with missing values or ignores unknown ones, or when both its step and the final
  estimator take NaN (scikit-learn's ``allow_nan`` tag); ``drop`` columns take anything;
* ``HistGradientBoosting*`` fitted with categorical features (``is_categorical_``): those columns
  categorical with the categories of its own encoder; every column nullable (it takes NaN);
* otherwise every column a number, nullable when the model's ``allow_nan`` tag says so.

A Pipeline whose first step is a text vectoriser takes one text per row (layout ``text``).

Layout ``frame`` (a DataFrame, so pandas) only when the model needs it: a column that is not a
number, or a ColumnTransformer that selects columns by name. A model fitted on a DataFrame of
numbers alone keeps the 2-D array (and pandas out of the process).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.schema import ANY, ARRAY, CATEGORICAL, FRAME, NUMBER, STRING, TEXT, Column, InputSchema

_ENCODERS = {"OneHotEncoder", "OrdinalEncoder", "TargetEncoder"}
_VECTORISERS = {"CountVectorizer", "TfidfVectorizer", "HashingVectorizer"}
_IMPUTERS = {"SimpleImputer", "KNNImputer", "IterativeImputer"}
TEXT_COLUMN = "text"


def infer_schema(estimator: Any, feature_names: Sequence[str] | None) -> InputSchema:
    """The schema of a fitted estimator; all-numeric (source ``numeric``) when it says nothing more."""
    first = _first_step(estimator)
    if type(first).__name__ in _VECTORISERS:
        return InputSchema([Column(TEXT_COLUMN, STRING)], layout=TEXT, source="model")
    final_allows_nan = _allows_nan(_final_step(estimator))
    if type(first).__name__ == "ColumnTransformer" and feature_names is not None:
        return _column_transformer_schema(first, feature_names, final_allows_nan)
    if feature_names is None:
        return InputSchema.numeric(None)
    hgb_categorical = getattr(first, "is_categorical_", None)
    if hgb_categorical is not None and any(bool(flag) for flag in hgb_categorical):
        return _hgb_schema(first, feature_names)
    nullable = _allows_nan(estimator) or _allows_nan(first)
    return InputSchema.numeric(feature_names, nullable=nullable, source="model" if nullable else "numeric")


def _column_transformer_schema(transformer: Any, names: Sequence[str], final_allows_nan: bool) -> InputSchema:
    by_name: dict[str, Column] = {}
    selects_by_name = False
    for _, step, selected in getattr(transformer, "transformers_", ()):
        selected_names = _selected_names(selected, names)
        selects_by_name = selects_by_name or _by_name(selected)
        for position, name in enumerate(selected_names):
            by_name[name] = _column_for(name, step, position, final_allows_nan, single=isinstance(selected, str))
    columns = [by_name.get(name, Column(name, ANY, True)) for name in names]
    needs_frame = selects_by_name or any(c.type != NUMBER for c in columns)
    return InputSchema(columns, layout=FRAME if needs_frame else ARRAY, source="model")


def _column_for(name: str, step: Any, position: int, final_allows_nan: bool, *, single: bool) -> Column:
    if isinstance(step, str):  # "drop" or "passthrough"
        if step == "drop":
            return Column(name, ANY, True)
        return Column(name, NUMBER, final_allows_nan)
    steps = [s for _, s in step.steps] if hasattr(step, "steps") else [step]
    kinds = [type(s).__name__ for s in steps]
    imputes = bool(kinds) and kinds[0] in _IMPUTERS
    if any(kind in _VECTORISERS for kind in kinds) and single:
        return Column(name, STRING, imputes)
    encoder = next((s for s in steps if type(s).__name__ in _ENCODERS), None)
    if encoder is not None and hasattr(encoder, "categories_") and position < len(encoder.categories_):
        known = [_plain(c) for c in encoder.categories_[position]]
        has_missing = any(c is None or (isinstance(c, float) and c != c) for c in known)
        categories = tuple(c for c in known if not (c is None or (isinstance(c, float) and c != c)))
        unknown_predicted = getattr(encoder, "handle_unknown", "error") != "error"
        nullable = imputes or has_missing or unknown_predicted
        return Column(name, CATEGORICAL, nullable, categories, unknown_predicted)
    nullable = imputes or (all(_allows_nan(s) for s in steps) and final_allows_nan)
    return Column(name, NUMBER, nullable)


def _hgb_schema(model: Any, names: Sequence[str]) -> InputSchema:
    categories = _hgb_categories(model)
    columns = []
    for j, name in enumerate(names):
        if model.is_categorical_[j]:
            known = categories.get(j)
            # HistGradientBoosting sends an unknown category down the missing-value branch
            columns.append(Column(name, CATEGORICAL, True, known, True))
        else:
            columns.append(Column(name, NUMBER, True))
    return InputSchema(columns, layout=FRAME, source="model")


def _hgb_categories(model: Any) -> dict[int, tuple[Any, ...]]:
    """The categories of each categorical column, from the OrdinalEncoder HGB fits on a DataFrame."""
    found: dict[int, tuple[Any, ...]] = {}
    preprocessor = getattr(model, "_preprocessor", None)
    for _, step, selected in getattr(preprocessor, "transformers_", ()):
        if type(step).__name__ != "OrdinalEncoder":
            continue
        positions = [j for j, flag in enumerate(selected) if flag] if _is_mask(selected) else list(selected)
        # a private attribute of scikit-learn's: a shape we do not expect must not stop inference
        for j, cats in zip(positions, step.categories_, strict=False):
            found[j] = tuple(_plain(c) for c in cats if not (isinstance(c, float) and c != c) and c is not None)
    return found


def _selected_names(selected: Any, names: Sequence[str]) -> list[str]:
    if isinstance(selected, str):
        return [selected]
    if callable(selected) or selected is None:
        return []
    items = list(selected)
    if _is_mask(selected):
        return [name for name, flag in zip(names, items, strict=False) if flag]
    return [names[i] if not isinstance(i, str) else i for i in items]


def _by_name(selected: Any) -> bool:
    if isinstance(selected, str):
        return True
    try:
        items = list(selected)
    except TypeError:
        return False
    return bool(items) and isinstance(items[0], str)


def _is_mask(selected: Any) -> bool:
    dtype = getattr(selected, "dtype", None)
    if dtype is not None:
        return dtype.kind == "b"
    items = list(selected) if not isinstance(selected, str) else []
    return bool(items) and all(isinstance(i, bool) for i in items)


def _first_step(estimator: Any) -> Any:
    while hasattr(estimator, "steps") and estimator.steps:
        estimator = estimator.steps[0][1]
    return estimator


def _final_step(estimator: Any) -> Any:
    while hasattr(estimator, "steps") and estimator.steps:
        estimator = estimator.steps[-1][1]
    return estimator


def _allows_nan(estimator: Any) -> bool:
    if isinstance(estimator, str) or estimator is None:
        return estimator == "passthrough"
    try:
        from sklearn.utils import get_tags
    except ImportError:  # scikit-learn < 1.6 has no get_tags: nothing is assumed
        return False
    try:
        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # a third-party estimator whose tags cannot be read takes no NaN
        return False


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
