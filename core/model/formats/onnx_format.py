"""``.onnx``: onnxruntime, without scikit-learn, SciPy, pandas or joblib in the process.

What is served comes from the graph: the inputs, and the outputs as skl2onnx writes them.

Inputs, either
* one numeric ``[N, k]`` tensor: the rows as one matrix (a model fitted on numbers), or
* one ``[N, 1]`` tensor per column (what ``serverless-ml export`` makes of a DataFrame pipeline):
  ``tensor(string)``, ``tensor(int64)``/``int32``, ``tensor(float)``/``double`` or ``tensor(bool)``,
  each fed from its column of the checked rows: a missing number is NaN, a missing string is ``""``
  (which an encoder that ignores unknown categories treats as one).

The input schema is the manifest's ``input_schema`` when it has one (it knows categories and which
columns take a missing value), else it is read from the graph: a string input is a string column,
an integer input an integer column, a float input a number; a lone ``[N, 1]`` string input is one
text per row. A column fed to an integer or boolean tensor never takes a missing value.

Outputs:
* a classifier: a label tensor (``tensor(int64)`` or ``tensor(string)``) and probabilities, either
  a ``[N, C]`` tensor (exported with ``zipmap=False``) or a sequence of maps (the ZipMap default);
  a model fitted on boolean classes answers int64 labels, turned back into booleans when the
  manifest's classes are ``[false, true]``;
* a regressor: one float tensor, ``[N]``, ``[N, 1]`` (served as one value per row) or ``[N, k]``.

Feature names come from the graph's inputs when there is one input per column, else from the
manifest, else they are ``f0, f1, ...``. Classes come from the manifest or the graph's classifier
node; without them a classifier is served with labels only.

``infer(rows)`` takes the checked rows themselves (lists in column order, or a float matrix from
the batch engine), never a DataFrame: the feeds are built here, with NumPy alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from core.errors import ModelInvalid, ModelRuntimeMissing
from core.model.context import LoadContext
from core.model.description import ModelDescription
from core.model.formats.onnx_graph import graph_facts
from core.model.inputs import column_values
from core.model.manifest import Manifest, reconcile_classes, reconcile_feature_names, reconcile_schema
from core.schema import ANY, ARRAY, BOOLEAN, CATEGORICAL, FRAME, INTEGER, NUMBER, STRING, TEXT, Column, InputSchema

logger = logging.getLogger("serverless_ml.model")

# ONNX tensor element types the service feeds, and the column type each one is read as
_NUMERIC_INPUTS = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int64)": "int64", "tensor(int32)": "int32",
}
_COLUMN_INPUTS = {
    **_NUMERIC_INPUTS, "tensor(string)": "object", "tensor(bool)": "bool",
}
_COLUMN_TYPES = {
    "tensor(float)": NUMBER, "tensor(double)": NUMBER, "tensor(float16)": NUMBER,
    "tensor(int64)": INTEGER, "tensor(int32)": INTEGER, "tensor(string)": STRING, "tensor(bool)": BOOLEAN,
}
# inputs that cannot carry NaN: a column fed to one of them takes no missing value
_NO_MISSING = {"tensor(int64)", "tensor(int32)", "tensor(bool)"}
_LABEL_OUTPUTS = {"tensor(int64)", "tensor(int32)", "tensor(string)"}
_FLOAT_OUTPUTS = {"tensor(float)", "tensor(double)"}

Feed = Callable[[Any], dict]


def load(context: LoadContext) -> ModelDescription:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelRuntimeMissing(
            "the model is an .onnx file, and onnxruntime is not installed here; install it with "
            "pip install 'serverless-ml[onnx]'"
        ) from None
    import numpy as np

    started = time.perf_counter()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings go to stderr, outside the JSON logs
    options.intra_op_num_threads = context.onnx_threads  # ONNX_THREADS; see core/settings.py
    try:
        session = ort.InferenceSession(context.path or context.data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        logger.error("onnxruntime could not load the model", extra={"fields": {"model_uri": context.display, "reason": first_line}})
        raise ModelInvalid(
            f"the file at {context.display} could not be loaded by onnxruntime {ort.__version__} "
            f"({type(exc).__name__}); expected an ONNX model, e.g. written by skl2onnx"
        ) from None
    facts = graph_facts(context.contents())
    deserialize_seconds = time.perf_counter() - started

    graph_inputs = _graph_inputs(session, context.display)
    names_in_graph = graph_inputs.names if graph_inputs.per_column else None
    feature_names, source = reconcile_feature_names(context.manifest, names_in_graph, graph_inputs.width, context.display)
    schema = _schema(context, graph_inputs, feature_names)
    feed = _feed(graph_inputs, schema, np)
    outputs = session.get_outputs()
    label = next((o for o in outputs if o.type in _LABEL_OUTPUTS), None)
    notes: list[str] = []
    if label is not None:
        probabilities = next((o for o in outputs if o is not label and _is_probabilities(o)), None)
        classes, as_booleans = _classes(context, _graph_classes(facts.classes, label, probabilities))
        if probabilities is not None and classes is None:
            notes.append("the class order is unknown (no classifier node with class labels and no manifest); "
                         "probabilities are not served: add 'classes' to the manifest")
            probabilities = None
        if probabilities is not None and classes is not None and _width(probabilities) not in (None, len(classes)):
            raise ModelInvalid(
                f"the model at {context.display} answers {_width(probabilities)} probabilities per row, "
                f"but has {len(classes)} classes; expected one probability per class"
            )
        infer = _classifier(session, feed, label, probabilities, classes, np, as_booleans)
        task = "Classifier"
    else:
        value = next((o for o in outputs if o.type in _FLOAT_OUTPUTS), None)
        if value is None:
            raise ModelInvalid(
                f"the model at {context.display} has outputs {', '.join(f'{o.name}: {o.type}' for o in outputs)}; "
                "expected a label tensor (a classifier) or a float tensor (a regressor)"
            )
        classes, probabilities = None, None
        infer = _regressor(session, feed, value)
        task = "Regressor"

    manifest = context.manifest
    estimator_type = (manifest.estimator if manifest is not None and manifest.estimator else None) or (
        f"{facts.main_op or task} (ONNX)"
    )
    return ModelDescription(
        estimator=session,
        estimator_type=estimator_type,
        feature_names=feature_names,
        feature_names_from_model=source != "generated",
        feature_names_source=source,
        classes=classes,
        has_probabilities=probabilities is not None,
        predict_from_probabilities=False,
        format="onnx",
        manifest=manifest,
        infer=infer,
        schema=schema,
        **context.identity(deserialize_seconds, tuple(notes)),
    )


class _GraphInputs:
    """The graph's inputs: names, tensor types, and whether there is one ``[N, 1]`` input per column
    (else one numeric ``[N, k]`` matrix)."""

    __slots__ = ("names", "types", "per_column", "width")

    def __init__(self, names: tuple[str, ...], types: tuple[str, ...], per_column: bool, width: int | None) -> None:
        self.names, self.types, self.per_column, self.width = names, types, per_column, width


def _graph_inputs(session: Any, display: str) -> _GraphInputs:
    inputs = session.get_inputs()
    for node in inputs:
        if node.type not in _COLUMN_INPUTS:
            raise ModelInvalid(
                f"the model at {display} has input '{node.name}' of type {node.type}; this service feeds "
                f"one of {', '.join(sorted(_COLUMN_INPUTS))}"
            )
    names = tuple(node.name for node in inputs)
    types = tuple(node.type for node in inputs)
    if len(inputs) == 1 and inputs[0].type in _NUMERIC_INPUTS:
        node = inputs[0]
        shape = list(node.shape)
        if len(shape) != 2:
            raise ModelInvalid(
                f"the model at {display} has input '{node.name}' of shape {shape}; expected [rows, features]"
            )
        width = shape[1] if isinstance(shape[1], int) and shape[1] > 0 else None
        return _GraphInputs(names, types, False, width)

    # one input per column (a model exported from a DataFrame's columns, or one text per row)
    for node in inputs:
        if len(node.shape) != 2 or node.shape[1] not in (1, None, "1"):
            raise ModelInvalid(
                f"the model at {display} has {len(inputs)} input(s) and '{node.name}' ({node.type}) has shape "
                f"{list(node.shape)}; expected one numeric input of shape [rows, features], or one input of "
                "shape [rows, 1] per column"
            )
    return _GraphInputs(names, types, True, len(inputs))


def _schema(context: LoadContext, graph: _GraphInputs, feature_names: tuple[str, ...] | None) -> InputSchema:
    """The manifest's schema where it has one, else the graph's; columns fed to integer or boolean
    tensors take no missing value whatever the manifest says (NaN has no such tensor)."""
    if not graph.per_column:
        from_graph = InputSchema.numeric(feature_names)
    else:
        columns = [Column(name, _COLUMN_TYPES[kind]) for name, kind in zip(graph.names, graph.types, strict=True)]
        if len(columns) == 1 and columns[0].type == STRING:
            layout = TEXT
        else:
            layout = ARRAY if all(c.type == NUMBER for c in columns) else FRAME
        from_graph = InputSchema(columns, layout=layout, source="model")
    schema = reconcile_schema(context.manifest, from_graph, context.display)
    if not graph.per_column:
        if schema.columns is not None and any(c.type in (STRING, CATEGORICAL) and not _numeric_categories(c) for c in schema.columns):
            raise ModelInvalid(
                f"the manifest {_shown(context.manifest)} describes string columns, but the model at "
                f"{context.display} takes one {graph.types[0]} matrix; export the model again or remove the manifest"
            )
        return schema
    if schema is from_graph:
        return schema
    fed = dict(zip(graph.names, graph.types, strict=True))  # reconcile_schema made the names the graph's
    columns = []
    changed = False
    for column in schema.columns or ():
        kind = fed[column.name]
        if column.nullable and column.type != ANY and kind in _NO_MISSING:
            column, changed = column._replace(nullable=False), True
        columns.append(column)
    return InputSchema(columns, layout=schema.layout, source=schema.source) if changed else schema


def _shown(manifest: Manifest | None) -> str:
    return manifest.display if manifest is not None else "(none)"  # string columns come from a manifest


def _numeric_categories(column: Column) -> bool:
    return column.type == CATEGORICAL and bool(column.categories and not isinstance(column.categories[0], str))


def _feed(graph: _GraphInputs, schema: InputSchema, np: Any) -> Feed:
    """How checked rows become the session's feeds."""
    if not graph.per_column:
        name, dtype = graph.names[0], np.dtype(_NUMERIC_INPUTS[graph.types[0]])
        if dtype.kind == "f":
            # straight from the rows (lists or the batch engine's float matrix) to the graph's type
            return lambda rows: {name: np.asarray(rows, dtype=dtype)}
        return lambda rows: {name: np.asarray(rows, dtype=np.float64).astype(dtype)}

    # graph inputs by name when they are the schema's columns, else by position
    positions = schema.index if set(graph.names) <= set(schema.index) else {n: j for j, n in enumerate(graph.names)}
    any_columns = {j for j, c in enumerate(schema.columns or ()) if c.type == ANY}
    builders = [
        (name, positions[name], _column_feed(kind, name, positions[name] in any_columns, np))
        for name, kind in zip(graph.names, graph.types, strict=True)
    ]

    def feed(rows: Any) -> dict:
        return {name: build(column_values(rows, j)) for name, j, build in builders}

    return feed


def _column_feed(kind: str, name: str, unused: bool, np: Any) -> Callable[[list], Any]:
    """One ``[N, 1]`` tensor from one column's checked values."""
    dtype = np.dtype(_COLUMN_INPUTS[kind])
    if unused:
        # a column the model drops ("any" in the schema): the graph still wants a tensor of its type
        blank = "" if dtype.kind == "O" else 0
        return lambda values: np.full((len(values), 1), blank, dtype=dtype)
    if kind == "tensor(string)":
        def strings(values: list) -> Any:
            # a missing value (None or NaN after checking) as "", an unknown category to an encoder
            return np.array([v if type(v) is str else _text(v) for v in values], dtype=object).reshape(-1, 1)

        return strings
    if dtype.kind in "iub":
        def exact(values: list) -> Any:
            try:
                return np.array(values, dtype=dtype).reshape(-1, 1)
            except (ValueError, TypeError, OverflowError):
                raise ValueError(f"column '{name}' takes {kind} values; a value did not fit") from None

        return exact
    return lambda values: np.array(values, dtype=dtype).reshape(-1, 1)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _classes(context: LoadContext, from_graph: list | None) -> tuple[list | None, bool]:
    """The classes to serve, and whether int64 labels stand for booleans (a model fitted on
    ``[False, True]``, which skl2onnx writes as the labels 0 and 1)."""
    listed = context.manifest.classes if context.manifest is not None else None
    if listed is not None and all(type(c) is bool for c in listed):
        if from_graph is not None and [int(c) for c in listed] != list(from_graph):
            reconcile_classes(context.manifest, from_graph, context.display)  # raises, naming both
        return list(listed), True
    return reconcile_classes(context.manifest, from_graph, context.display), False


def _is_probabilities(output: Any) -> bool:
    return output.type.startswith("seq(map(") or (output.type in _FLOAT_OUTPUTS and len(output.shape) == 2)


def _width(output: Any) -> int | None:
    if output.type.startswith("seq("):
        return None
    width = output.shape[1]
    return width if isinstance(width, int) and width > 0 else None


def _graph_classes(found: list | None, label: Any, probabilities: Any) -> list | None:
    """The graph's class labels if they fit the label output's type and the probabilities' width."""
    if not found:
        return None
    if (label.type == "tensor(string)") != all(isinstance(c, str) for c in found):
        return None
    if probabilities is not None and _width(probabilities) not in (None, len(found)):
        return None
    return list(found)


def _run(session: Any, names: list[str], feeds: dict) -> list:
    try:
        return session.run(names, feeds)
    except Exception as exc:
        # onnxruntime's InvalidArgument (a shape or type the graph refuses) is the input's fault
        if type(exc).__name__ == "InvalidArgument":
            raise ValueError((str(exc).strip().splitlines() or ["invalid input"])[0]) from None
        raise


def _classifier(session, feed, label, probabilities, classes, np, as_booleans: bool) -> Callable[[Any], tuple[Any, Any]]:
    names = [label.name] if probabilities is None else [label.name, probabilities.name]
    zipmap = probabilities is not None and probabilities.type.startswith("seq(map(")
    order = list(classes) if zipmap else []

    def infer(rows):
        outputs = _run(session, names, feed(rows))
        labels = outputs[0].astype(bool) if as_booleans else outputs[0]
        if probabilities is None:
            return labels, None
        if zipmap:  # one {class: probability} per row, keyed by the graph's labels
            keys = [int(c) for c in order] if as_booleans else order
            return labels, np.array([[row[c] for c in keys] for row in outputs[1]], dtype=np.float64)
        return labels, outputs[1]

    return infer


def _regressor(session, feed, value) -> Callable[[Any], tuple[Any, Any]]:
    names = [value.name]

    def infer(rows):
        (out,) = _run(session, names, feed(rows))
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out, None

    return infer
