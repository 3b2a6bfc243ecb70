"""A fitted scikit-learn model -> an ONNX graph with typed inputs, checked against scikit-learn.

The graph's inputs follow the model's input schema (core.schema):

* a model that takes a numeric matrix (layout ``array``): one float ``[N, k]`` input, as before;
* a DataFrame pipeline (layout ``frame``): one ``[N, 1]`` input per column, named after it:
  ``string`` and string ``categorical`` columns a String tensor, a non-nullable ``integer`` (or
  integer categories) an Int64 tensor, anything else a Float tensor (NaN for a missing value);
* a text pipeline (layout ``text``): one String ``[N, 1]`` input.

Text vectorisers are written with the StringNormalizer locale ``C``: skl2onnx leaves the locale
out, and onnxruntime then asks for ``en_US.UTF-8``, which a function runtime may lack (onnxruntime
refuses to start the graph). ``C`` exists everywhere; it lowercases ASCII letters only, and
skl2onnx's tokenizer reads ASCII words only anyway, so a text with other letters can be answered
differently from scikit-learn: the check below finds it when the sample holds such texts.

Before anything is written, :func:`check_answers` runs the graph (through core's own ONNX loader,
so exactly as it will be served) and scikit-learn on the same checked rows: labels must be equal
and probabilities within 1e-5 (regressors: values within 1e-5, relative or absolute), or the export
is refused naming the rows. Each column that takes a missing value is probed on its own; where the
graph answers a missing value differently (skl2onnx drops a random forest's learnt NaN routing),
the ONNX model's schema refuses a missing value there instead of answering it wrongly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from core.schema import ANY, ARRAY, BOOLEAN, CATEGORICAL, INTEGER, NUMBER, STRING, TEXT, Column, InputSchema

# what onnxruntime >= 1.17 (the extra's floor) runs; skl2onnx's default when a converter needs more
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}
TEXT_LOCALE = "C"
TOLERANCE = 1e-5
SAMPLE_ROWS = 64
_VECTORISERS = ("CountVectorizer", "TfidfVectorizer")
_SHOWN_ROWS = 10


class ExportRefused(ValueError):
    """The model cannot be exported as asked; ``message`` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Converted(NamedTuple):
    data: bytes
    opset: int | None
    schema: InputSchema  # what the graph is served with (a column it answers NaN wrongly for is not nullable)
    check: dict


def to_onnx(model: Any, schema: InputSchema, sample: list[list[Any]] | None = None,
            labels: Sequence[Any] | None = None) -> Converted:
    """Convert ``model`` (core's ModelDescription of a scikit-learn model) and check it on
    ``sample`` (rows in column order, as a client sends them; None: rows made from the schema),
    whose rows messages name by ``labels`` (a DataFrame's index) or by position.

    >>> converted = to_onnx(load_model(uri, store), schema)  # doctest: +SKIP
    >>> converted.check
    {'sample_rows': 64, 'same_labels': 64, 'max_probability_difference': 3.1e-08}
    """
    try:
        from skl2onnx import to_onnx as skl2onnx_to_onnx
    except ImportError:
        raise ExportRefused("--to onnx needs skl2onnx, which is not installed here; install it with pip install skl2onnx") from None

    estimator = model.estimator
    inputs = initial_types(schema, model.n_features)
    options = _options(estimator, model)
    try:
        onx = skl2onnx_to_onnx(estimator, initial_types=inputs, options=options, target_opset=ONNX_OPSET)
        opset: int | None = ONNX_OPSET[""]
    except Exception:
        # some converters (HistGradientBoosting) need a newer ai.onnx.ml opset: skl2onnx's default,
        # which the installed onnxruntime is then checked against below
        try:
            onx = skl2onnx_to_onnx(estimator, initial_types=inputs, options=options)
        except Exception as exc:
            raise ExportRefused(unconvertible_message(estimator, model.estimator_type, exc)) from None
        opset = next((o.version for o in onx.opset_import if o.domain in ("", "ai.onnx")), None)
    data = onx.SerializeToString()
    rows = sample if sample is not None else sample_rows(estimator, schema, model.n_features)
    served_schema, check = check_onnx(model, schema, data, rows, sampled=sample is not None, labels=labels)
    return Converted(data, opset, served_schema, check)


def initial_types(schema: InputSchema, n_features: int | None) -> list[tuple[str, Any]]:
    """The graph's inputs for ``schema`` (see the module docstring)."""
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    if schema.columns is None or (schema.layout == ARRAY and all(c.type in (NUMBER, INTEGER, BOOLEAN, ANY) for c in schema.columns)):
        width = n_features if schema.columns is None else len(schema.columns)
        if width is None:
            raise ExportRefused("the model does not say how many features it takes (no n_features_in_); it cannot be exported")
        return [("input", FloatTensorType([None, width]))]
    types = {"string": StringTensorType, "int64": Int64TensorType, "float": FloatTensorType}
    return [(column.name, types[tensor_kind(column)]([None, 1])) for column in schema.columns]


def tensor_kind(column: Column) -> str:
    """``string``, ``int64`` or ``float``: the element type of the column's input."""
    if column.type == STRING:
        return "string"
    if column.type == CATEGORICAL and column.categories and isinstance(column.categories[0], str):
        return "string"
    exact = column.type == INTEGER or (
        column.type == CATEGORICAL and column.categories and all(isinstance(c, int) for c in column.categories)
    )
    return "int64" if exact and not column.nullable else "float"


def _options(estimator: Any, model: Any) -> dict | None:
    options: dict = {}
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if model.classes is not None and model.has_probabilities:
        options[id(final)] = {"zipmap": False}
    for _, step in walk_steps(estimator):
        if type(step).__name__ in _VECTORISERS:
            options[id(step)] = {"locale": TEXT_LOCALE}
    return options or None


def walk_steps(estimator: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every estimator inside ``estimator`` (Pipeline steps, ColumnTransformer and FeatureUnion
    parts) with its path of step names, ``prepare > cat``; the estimator itself last."""
    found: list[tuple[str, Any]] = []
    parts: list[tuple[str, Any]] = []
    if hasattr(estimator, "steps"):
        parts = list(estimator.steps)
    elif hasattr(estimator, "transformers_"):
        parts = [(name, step) for name, step, _ in estimator.transformers_]
    elif hasattr(estimator, "transformer_list"):
        parts = list(estimator.transformer_list)
    for name, step in parts:
        if isinstance(step, str) or step is None:  # "drop", "passthrough"
            continue
        found.extend(walk_steps(step, f"{path} > {name}" if path else str(name)))
    found.append((path, estimator))
    return found


def unconvertible_message(estimator: Any, estimator_type: str, exc: Exception) -> str:
    """What cannot be converted, naming the step: a step skl2onnx has no converter for, a
    HistGradientBoosting model with categorical features, else skl2onnx's own first line."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    for path, step in walk_steps(estimator):
        where = f"step '{path}' ({type(step).__name__})" if path else f"the model ({type(step).__name__})"
        categorical = getattr(step, "is_categorical_", None)
        if categorical is not None and any(bool(flag) for flag in categorical):
            return (
                f"skl2onnx cannot convert {where}: it was fitted with categorical features "
                "(categorical_features), which skl2onnx does not support; serve the .joblib or .skops file, "
                "or refit it on one-hot or ordinal-encoded columns (an encoder in a Pipeline) before exporting"
            )
        if type(step) not in sklearn_operator_name_map and not hasattr(step, "steps"):
            return (
                f"skl2onnx has no converter for {where}; serve the .joblib or .skops file, or register a "
                f"converter with skl2onnx.update_registered_converter ({reason})"
            )
    return f"skl2onnx could not convert {estimator_type}: {reason}"


# --- the sample ------------------------------------------------------------------------------------


def sample_rows(estimator: Any, schema: InputSchema, n_features: int | None, count: int = SAMPLE_ROWS) -> list[list[Any]]:
    """Rows made from the schema, when no sample of the training data is given: random numbers,
    every known category in turn (and an unknown one where the model predicts it), texts from
    the vectoriser's vocabulary in mixed case."""
    import numpy as np

    rng = np.random.default_rng(0)
    if schema.layout == TEXT:
        words = _vocabulary(estimator) or ["free", "money", "now", "lunch", "friday"]
        texts = []
        for i in range(count):
            picked = [str(w) for w in rng.choice(words, size=int(rng.integers(1, 7)))]
            if i % 3 == 1:
                picked = [w.upper() if j % 2 else w.capitalize() for j, w in enumerate(picked)]
            texts.append([(", " if i % 4 == 3 else " ").join(picked) + ("!" if i % 5 == 4 else "")])
        return texts
    columns = schema.columns or [Column(f"f{j}") for j in range(n_features or 0)]
    rows: list[list[Any]] = [[] for _ in range(count)]
    for column in columns:
        for i, value in enumerate(_column_values(column, count, rng)):
            rows[i].append(value)
    return rows


def _column_values(column: Column, count: int, rng: Any) -> list[Any]:
    if column.type == CATEGORICAL and column.categories:
        known = list(column.categories)
        unknown = "__unknown__" if isinstance(known[0], str) else max(known) + 1
        values = [known[i % len(known)] for i in range(count)]
        if column.unknown_predicted:
            values[5::11] = [unknown] * len(values[5::11])
        return values
    if column.type == INTEGER:
        return [int(v) for v in rng.integers(0, 5, count)]
    if column.type == BOOLEAN:
        return [bool(v) for v in rng.random(count) < 0.5]
    if column.type == STRING:
        return [str(v) for v in rng.choice(["a", "b", "c", "dd"], count)]
    if column.type == ANY:
        return [None] * count
    return [float(v) for v in rng.normal(size=count)]


def _vocabulary(estimator: Any) -> list[str]:
    for _, step in walk_steps(estimator):
        vocabulary = getattr(step, "vocabulary_", None)
        if vocabulary:
            return sorted(w for w in vocabulary if " " not in w)[:500]
    return []


# --- the check -------------------------------------------------------------------------------------


def check_onnx(model: Any, schema: InputSchema, data: bytes, rows: Sequence[list[Any]], *, sampled: bool,
               labels: Sequence[Any] | None = None) -> tuple[InputSchema, dict]:
    """Run both models on ``rows``; return the schema to serve the graph with and the report, or
    raise ExportRefused naming the rows that disagree."""
    from core.request.rows import RowSchema

    try:
        onnx_model = _load_onnx(data, model, schema)
    except Exception as exc:
        reason = getattr(exc, "message", None) or str(exc)
        raise ExportRefused(f"onnxruntime cannot run the converted model, so it was not written: {reason}") from None
    from core.errors import ServerlessMLError

    checker = RowSchema(schema)
    names = schema.names or ()
    try:
        checked = [
            _float32_numbers(checker.checked(list(row), lambda j, i=i: f"sample row {i}, column '{names[j] if j < len(names) else j}'"), schema)
            for i, row in enumerate(rows)
        ]
    except ServerlessMLError as exc:
        raise ExportRefused(f"the sample does not fit the model's input schema: {exc.message}") from None
    unused = {j for j, c in enumerate(schema.columns or ()) if c.type == ANY}
    missing = [{j for j, v in enumerate(row) if _is_missing(v) and j not in unused} for row in rows]
    complete = [i for i, m in enumerate(missing) if not m]

    refused_missing: list[str] = []
    columns = list(schema.columns or ())
    probe_base = [checked[i] for i in complete[:16]] or [checked[0]]
    for j, column in enumerate(columns):
        if not column.nullable or column.type == ANY:
            continue
        # each row with and without the missing value: a column of missing values alone would be
        # given to scikit-learn as a float column, which its string encoders refuse
        probes = [probe for row in probe_base for probe in (row, row[:j] + [float("nan")] + row[j + 1:])]
        try:
            expected_answers = _answers(model, probes)
        except ServerlessMLError:  # scikit-learn itself refuses it: so does the ONNX model
            refused_missing.append(column.name)
            continue
        if disagreeing(*expected_answers, *_answers(onnx_model, probes), model.classes is not None):
            refused_missing.append(column.name)
    served = schema
    if refused_missing:
        served = InputSchema([c._replace(nullable=False) if c.name in refused_missing else c for c in columns],
                             layout=schema.layout, source=schema.source)

    refused_names = set(refused_missing)
    kept = [i for i, m in enumerate(missing) if not any(columns[j].name in refused_names for j in m)] if columns else list(range(len(rows)))
    if not kept:
        raise ExportRefused("no row of the sample can be checked (each has a missing value the ONNX model refuses)")
    chosen = [checked[i] for i in kept]
    expected, got = _answers(model, chosen), _answers(onnx_model, chosen)
    bad = disagreeing(*expected, *got, model.classes is not None)
    if bad:
        named = [labels[kept[k]] if labels is not None else kept[k] for k in bad]
        raise ExportRefused(disagreement_message(named, bad, expected, got, sampled))
    report: dict[str, Any] = {"sample_rows" if sampled else "generated_rows": len(kept), "same_labels" if model.classes is not None else "same_values": len(kept)}
    if expected[1] is not None:
        import numpy as np

        report["max_probability_difference"] = float(np.max(np.abs(np.asarray(expected[1], dtype=np.float64) - np.asarray(got[1], dtype=np.float64))))
    if refused_missing:
        report["missing_values_refused"] = refused_missing
        report["left_out_rows"] = len(rows) - len(kept)
    return served, report


def disagreeing(labels: Any, probabilities: Any, onnx_labels: Any, onnx_probabilities: Any, classifier: bool) -> list[int]:
    """The rows whose answers differ: labels not equal (values beyond TOLERANCE for a regressor;
    a tie of scikit-learn's two best probabilities takes either label) or a probability further
    than TOLERANCE from scikit-learn's.

    >>> disagreeing(np.array(["a", "b"]), None, np.array(["a", "c"]), None, True)  # doctest: +SKIP
    [1]
    """
    import numpy as np

    labels, onnx_labels = np.asarray(labels), np.asarray(onnx_labels)
    if onnx_labels.ndim == 2 and onnx_labels.shape[1] == 1 and labels.ndim == 1:
        onnx_labels = onnx_labels[:, 0]
    if classifier or labels.dtype.kind not in "fc":
        same = np.array([a == b for a, b in zip(labels.tolist(), onnx_labels.tolist(), strict=True)], dtype=bool)
        if labels.ndim > 1:
            same = same.reshape(len(labels), -1).all(axis=1)
    else:
        same = np.isclose(onnx_labels.astype(np.float64), labels.astype(np.float64), rtol=TOLERANCE, atol=TOLERANCE)
        same = same.reshape(len(labels), -1).all(axis=1)
    if probabilities is not None and onnx_probabilities is not None:
        expected = np.asarray(probabilities, dtype=np.float64).reshape(len(labels), -1)
        close = np.abs(expected - np.asarray(onnx_probabilities, dtype=np.float64).reshape(len(labels), -1)) <= TOLERANCE
        if expected.shape[1] > 1:
            # where scikit-learn's own two best classes tie, either label is the model's answer
            top_two = np.sort(expected, axis=1)[:, -2:]
            same |= (top_two[:, 1] - top_two[:, 0]) <= TOLERANCE
        same &= close.all(axis=1)
    elif (probabilities is None) != (onnx_probabilities is None):
        same[:] = False
    return [int(i) for i in np.flatnonzero(~same)]


def disagreement_message(rows: list[int], positions: list[int], expected: tuple, got: tuple, sampled: bool) -> str:
    import numpy as np

    first = positions[0]
    shown = ", ".join(str(r) for r in rows[:_SHOWN_ROWS]) + (f" and {len(rows) - _SHOWN_ROWS} more" if len(rows) > _SHOWN_ROWS else "")
    detail = f"row {rows[0]}: scikit-learn {_plain(expected[0][first])!r}, ONNX {_plain(got[0][first])!r}"
    if expected[1] is not None and got[1] is not None:
        gap = float(np.max(np.abs(np.asarray(expected[1][first], dtype=np.float64) - np.asarray(got[1][first], dtype=np.float64))))
        detail += f", probabilities {gap:.2g} apart (at most {TOLERANCE:g} allowed)"
    where = "the sample" if sampled else "rows made from the model's schema"
    return (
        f"the ONNX model answers differently from scikit-learn on {len(rows)} row(s) of {where} "
        f"(rows {shown}; {detail}), so it was not written; serve the .joblib or .skops file instead"
    )


def _answers(model: Any, rows: list[list[Any]]) -> tuple[Any, Any]:
    from core.prediction import predict_arrays

    return predict_arrays(model, rows)


def _load_onnx(data: bytes, model: Any, schema: InputSchema) -> Any:
    """The graph loaded by core's own ONNX format, with the manifest it will be written with."""
    import hashlib
    import json

    from core.model.context import LoadContext
    from core.model.formats import onnx_format
    from core.model.manifest import parse_manifest
    from core.storage import StorageURI

    content = {"classes": model.classes, "input_schema": _schema_json(schema)}
    manifest = parse_manifest(json.dumps({k: v for k, v in content.items() if v is not None}).encode(), "the manifest")
    context = LoadContext(StorageURI("file", "", "/export/model.onnx"), data, hashlib.sha256(data).hexdigest(),
                          manifest, None, 0.0)
    return onnx_format.load(context)


def _schema_json(schema: InputSchema) -> dict | None:
    if schema.columns is None:
        return None
    return {k: v for k, v in schema.as_json().items() if k != "source"}


def _float32_numbers(row: list[Any], schema: InputSchema) -> list[Any]:
    """Numbers as float32 holds them, for both models: the graph takes float32, and the check is of
    the conversion, not of a value that rounds across a tree's threshold."""
    import numpy as np

    kinds = [c.type for c in schema.columns] if schema.columns is not None else [NUMBER] * len(row)
    return [float(np.float32(v)) if kind == NUMBER and type(v) is float else v for v, kind in zip(row, kinds, strict=True)]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
