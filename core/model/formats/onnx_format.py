"""``.onnx``: onnxruntime, without scikit-learn, SciPy, pandas or joblib in the process.

What is served comes from the graph: the inputs (one ``[N, k]`` tensor, or one ``[N, 1]`` tensor
per feature, named after it), and the outputs as skl2onnx writes them:

* a classifier: a label tensor (``tensor(int64)`` or ``tensor(string)``) and probabilities, either
  a ``[N, C]`` tensor (exported with ``zipmap=False``) or a sequence of maps (the ZipMap default);
* a regressor: one float tensor, ``[N]``, ``[N, 1]`` (served as one value per row) or ``[N, k]``.

Feature names come from the graph's inputs when there is one input per feature, else from the
manifest, else they are ``f0, f1, ...``. Classes come from the manifest or the graph's classifier
node; without them a classifier is served with labels only.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

from core.errors import ModelInvalid, ModelRuntimeMissing
from core.model.context import LoadContext
from core.model.description import ModelDescription
from core.model.formats.onnx_graph import graph_facts
from core.model.manifest import reconcile_classes, reconcile_feature_names
from core.schema import InputSchema

logger = logging.getLogger("serverless_ml.model")

# ONNX tensor element types the service can feed from JSON numbers.
_NUMERIC_INPUTS = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int64)": "int64", "tensor(int32)": "int32",
}
_LABEL_OUTPUTS = {"tensor(int64)", "tensor(int32)", "tensor(string)"}
_FLOAT_OUTPUTS = {"tensor(float)", "tensor(double)"}


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
        session = ort.InferenceSession(context.data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        logger.error("onnxruntime could not load the model", extra={"fields": {"model_uri": context.display, "reason": first_line}})
        raise ModelInvalid(
            f"the file at {context.display} could not be loaded by onnxruntime {ort.__version__} "
            f"({type(exc).__name__}); expected an ONNX model, e.g. written by skl2onnx"
        ) from None
    facts = graph_facts(context.data)
    deserialize_seconds = time.perf_counter() - started

    feed, n_features, names_in_graph = _inputs(session, np, context.display)
    feature_names, source = reconcile_feature_names(context.manifest, names_in_graph, n_features, context.display)
    outputs = session.get_outputs()
    label = next((o for o in outputs if o.type in _LABEL_OUTPUTS), None)
    notes: list[str] = []
    if label is not None:
        probabilities = next((o for o in outputs if o is not label and _is_probabilities(o)), None)
        classes = reconcile_classes(context.manifest, _graph_classes(facts.classes, label, probabilities), context.display)
        if probabilities is not None and classes is None:
            notes.append("the class order is unknown (no classifier node with class labels and no manifest); "
                         "probabilities are not served: add 'classes' to the manifest")
            probabilities = None
        if probabilities is not None and _width(probabilities) not in (None, len(classes)):
            raise ModelInvalid(
                f"the model at {context.display} answers {_width(probabilities)} probabilities per row, "
                f"but has {len(classes)} classes; expected one probability per class"
            )
        infer = _classifier(session, feed, label, probabilities, classes, np)
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
        schema=InputSchema.numeric(feature_names),
        **context.identity(deserialize_seconds, tuple(notes)),
    )


def _inputs(session: Any, np: Any, display: str) -> tuple[Callable[[Any], dict], Optional[int], Optional[tuple[str, ...]]]:
    """How rows become the session's feeds; the number of features; names if the graph has them."""
    inputs = session.get_inputs()
    for node in inputs:
        if node.type not in _NUMERIC_INPUTS:
            raise ModelInvalid(
                f"the model at {display} has input '{node.name}' of type {node.type}; this service sends "
                f"numbers, so expected one of {', '.join(sorted(_NUMERIC_INPUTS))}"
            )
    if len(inputs) == 1:
        node = inputs[0]
        shape = list(node.shape)
        if len(shape) != 2:
            raise ModelInvalid(
                f"the model at {display} has input '{node.name}' of shape {shape}; expected [rows, features]"
            )
        name, dtype = node.name, np.dtype(_NUMERIC_INPUTS[node.type])
        width = shape[1] if isinstance(shape[1], int) and shape[1] > 0 else None
        return (lambda features: {name: features.astype(dtype, copy=False)}), width, None

    # one input per feature (a model exported from a DataFrame's columns)
    for node in inputs:
        if len(node.shape) != 2 or node.shape[1] not in (1, None, "1"):
            raise ModelInvalid(
                f"the model at {display} has {len(inputs)} inputs and '{node.name}' has shape {list(node.shape)}; "
                "expected one input of shape [rows, features], or one input of shape [rows, 1] per feature"
            )
    columns = [(i, node.name, np.dtype(_NUMERIC_INPUTS[node.type])) for i, node in enumerate(inputs)]

    def feed(features: Any) -> dict:
        return {name: features[:, i:i + 1].astype(dtype) for i, name, dtype in columns}

    return feed, len(inputs), tuple(name for _, name, _ in columns)


def _is_probabilities(output: Any) -> bool:
    return output.type.startswith("seq(map(") or (output.type in _FLOAT_OUTPUTS and len(output.shape) == 2)


def _width(output: Any) -> Optional[int]:
    if output.type.startswith("seq("):
        return None
    width = output.shape[1]
    return width if isinstance(width, int) and width > 0 else None


def _graph_classes(found: Optional[list], label: Any, probabilities: Any) -> Optional[list]:
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


def _classifier(session, feed, label, probabilities, classes, np) -> Callable[[Any], tuple[Any, Any]]:
    if probabilities is None:
        names = [label.name]

        def infer(features):
            return _run(session, names, feed(features))[0], None

        return infer
    names = [label.name, probabilities.name]
    if probabilities.type.startswith("seq(map("):
        order = list(classes)

        def infer(features):  # ZipMap: one {class: probability} per row
            labels, maps = _run(session, names, feed(features))
            return labels, np.array([[row[c] for c in order] for row in maps], dtype=np.float64)

        return infer

    def infer(features):
        labels, probs = _run(session, names, feed(features))
        return labels, probs

    return infer


def _regressor(session, feed, value) -> Callable[[Any], tuple[Any, Any]]:
    names = [value.name]

    def infer(features):
        (out,) = _run(session, names, feed(features))
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out, None

    return infer
