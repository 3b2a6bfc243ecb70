"""MLflow model directories saved by ``mlflow.sklearn.save_model`` / ``log_model``, served
without importing mlflow.

Which ``MODEL_URI`` is an MLflow model (decided from the text alone, so no storage call at start):

* it ends with ``/``: ``file:///models/titanic/``, ``s3://bucket/models/titanic/``,
  ``gs://bucket/runs/3f2a/artifacts/model/``, ``az://container/models/titanic/``;
* its last segment is ``MLmodel``: ``s3://bucket/models/titanic/MLmodel``;
* a local ``file://`` path without a model file's extension whose folder holds an ``MLmodel``
  (``file:///models/titanic``; a stat at start, local only).

The settings (``core.settings._mlflow_mlmodel``) turn each into the location of the ``MLmodel``
file, which is read first (YAML, with PyYAML's safe loader:
``pip install 'serverless-ml[mlflow]'``). Its ``sklearn`` flavour names the model file and its ``serialization_format``, and
that file is then loaded by the format loaders every other model goes through
(``core.model.loading.load_model``), with all their rules:

==================  ==========  ===================================================================
serialization       file        loaded as
==================  ==========  ===================================================================
``pickle``          model.pkl   joblib (reads any pickle); pin it with ``MODEL_SHA256``
``cloudpickle``     model.pkl   the same (a cloudpickle file is a pickle that may refer to
                                cloudpickle's helpers: cloudpickle must be installed, and joblib
                                depends on it; where it is missing: 503 naming it)
``skops``           model.skops skops, trusting its defaults and ``SKOPS_TRUSTED_TYPES`` only: the
                                ``skops_trusted_types`` MLmodel lists are shown, never trusted
==================  ==========  ===================================================================

``MODEL_SHA256`` is the digest of that model file (``sha256sum model.pkl``), checked before it is
deserialised; ``GET /model``'s ``sha256`` is the same. MLmodel is YAML read without running code
and cannot widen what is trusted; a changed MLmodel can only name another file, which then fails
the pinned digest.

The signature's inputs (``signature.inputs``: column specs or one tensor spec) become the input
schema, with source ``mlflow``, merged with what the fitted model knows (see ``_merged_column``);
a signature whose columns are not the ones the model was fitted on is refused.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from core.errors import ModelInvalid, ModelRuntimeMissing, ModelUnavailable, ObjectNotFound, StorageError
from core.schema import ANY, ARRAY, BOOLEAN, CATEGORICAL, FRAME, INTEGER, NUMBER, STRING, TEXT, Column, InputSchema
from core.storage import ObjectStore, StorageURI

MLMODEL = "MLmodel"
MAX_MLMODEL_BYTES = 1024 * 1024
# serialization_format -> the core format that loads its file (core.model.formats)
_LOADED_AS = {"pickle": "joblib", "cloudpickle": "joblib", "skops": "skops"}
# MLflow column types -> core.schema types. A JSON body cannot carry bytes or dates: binary and
# datetime columns are taken as strings (base64, ISO 8601) and handed to the model as such.
_COLUMN_TYPES = {
    "double": NUMBER, "float": NUMBER, "long": INTEGER, "integer": INTEGER, "boolean": BOOLEAN,
    "string": STRING, "binary": STRING, "datetime": STRING, "any": ANY,
}


# --- what MLmodel says ----------------------------------------------------------------------------


class MLflowModel(NamedTuple):
    """What this service uses of an MLmodel file."""

    model_file: str  # relative to the model's folder, e.g. model.pkl
    serialization_format: str  # pickle, cloudpickle or skops
    signature_inputs: list | None  # the parsed JSON of signature.inputs
    info: dict[str, Any]  # shown by GET /model under "mlflow"
    python_version: str | None = None


def parse_mlmodel(raw: bytes, display: str) -> MLflowModel:
    """Validate an MLmodel file; raise ModelInvalid naming what is wrong.

    >>> parse_mlmodel(b"flavors:\\n  sklearn:\\n    pickled_model: model.pkl\\n    serialization_format: pickle\\n"
    ...               b"run_id: 3f2a\\n", "s3://b/m/").serialization_format
    'pickle'
    """

    def invalid(reason: str) -> ModelInvalid:
        return ModelInvalid(f"the MLflow model at {display} has an MLmodel file that {reason}")

    if len(raw) > MAX_MLMODEL_BYTES:
        raise invalid(f"has {len(raw)} bytes; expected at most {MAX_MLMODEL_BYTES}")
    content = _load_yaml(raw, display, invalid)
    if not isinstance(content, dict):
        raise invalid(f"is not a YAML mapping (found {type(content).__name__})")
    flavors = content.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise invalid("lists no flavors; expected one written by mlflow.sklearn.save_model or log_model")
    sklearn = flavors.get("sklearn")
    if not isinstance(sklearn, dict):
        found = ", ".join(str(name) for name in flavors)
        raise invalid(
            f"has no sklearn flavor (its flavors: {found}); this service serves scikit-learn models saved by "
            "mlflow.sklearn.save_model or mlflow.sklearn.log_model"
        )
    model_file = sklearn.get("pickled_model")
    if not isinstance(model_file, str) or not _is_relative_file(model_file):
        raise invalid(
            f"names the model file {model_file!r}; expected a file inside the model's folder, e.g. model.pkl"
        )
    serialization = sklearn.get("serialization_format", "pickle")  # what mlflow assumes when absent
    if serialization not in _LOADED_AS:
        raise invalid(f"says serialization_format {serialization!r}; expected one of {', '.join(_LOADED_AS)}")
    inputs = _signature_inputs(content.get("signature"), invalid)
    pyfunc = flavors.get("python_function")
    pyfunc = pyfunc if isinstance(pyfunc, dict) else {}
    info = {
        "run_id": _text(content.get("run_id")),
        "model_uuid": _text(content.get("model_uuid")),
        "model_id": _text(content.get("model_id")),
        "artifact_path": _text(content.get("artifact_path")),
        "mlflow_version": _text(content.get("mlflow_version")),
        "utc_time_created": _text(content.get("utc_time_created")),
        "flavors": [str(name) for name in flavors],
        "model_file": model_file,
        "serialization_format": serialization,
        "sklearn_version": _text(sklearn.get("sklearn_version")),
        "skops_trusted_types": _texts(sklearn.get("skops_trusted_types")),
        "signature": inputs is not None,
    }
    return MLflowModel(model_file, serialization, inputs, info, _text(pyfunc.get("python_version")))


def _load_yaml(raw: bytes, display: str, invalid) -> Any:
    try:
        import yaml
    except ImportError:
        raise ModelRuntimeMissing(
            f"the model at {display} is an MLflow model, whose MLmodel file is YAML, and PyYAML is not installed "
            "here; install it with pip install 'serverless-ml[mlflow]' (or pip install PyYAML)"
        ) from None
    # libyaml's loader where the wheel has it (5x faster); both build plain dicts, lists and scalars
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        return yaml.load(raw, Loader=loader)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise invalid(f"is not valid YAML{line}") from None


def _signature_inputs(signature: Any, invalid) -> list | None:
    if signature is None:
        return None
    if not isinstance(signature, dict):
        raise invalid("has a 'signature' that is not a mapping")
    inputs = signature.get("inputs")
    if inputs is None:
        return None
    try:
        parsed = json.loads(inputs) if isinstance(inputs, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, list) or not parsed or not all(isinstance(spec, dict) for spec in parsed):
        raise invalid("has a 'signature.inputs' that is not a JSON list of column or tensor specs")
    return parsed


def _is_relative_file(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _text(value: Any) -> str | None:
    # scalars only: YAML aliases can make a small file hold a huge nested list, never turned to text
    import datetime

    if isinstance(value, (str, int, float, datetime.date)):
        return str(value)[:256]
    return None


def _texts(value: Any) -> list[str] | None:
    return [v[:256] for v in value if isinstance(v, str)][:100] if isinstance(value, list) else None


# --- loading ------------------------------------------------------------------------------------


def load_mlflow_model(uri: StorageURI, store: ObjectStore, load_file: Callable[[StorageURI], Any]):
    """Read MLmodel at ``uri`` (or in the folder ``uri`` ends with), load the sklearn flavour's file
    with ``load_file`` (``core.model.loading.load_model`` with the settings: digest, trusted types),
    and describe it as an MLflow model with its signature as the input schema."""
    folder_key = uri.key if uri.key.endswith("/") else uri.key[: len(uri.key) - len(MLMODEL)]
    mlmodel = StorageURI(uri.scheme, uri.bucket, folder_key + MLMODEL)
    display = folder_display(uri.scheme, uri.bucket, folder_key)
    if uri.scheme != "file":  # PyYAML is imported while MLmodel travels
        threading.Thread(target=_import_yaml_quietly, name="mlmodel-yaml", daemon=True).start()
    started = time.perf_counter()
    try:
        raw = store.read_bytes(mlmodel)
    except ObjectNotFound:
        raise ModelUnavailable(
            f"there is no MLmodel file in {display}; expected the folder mlflow.sklearn.save_model wrote "
            "(MLmodel, model.pkl or model.skops, ...)"
        ) from None
    except StorageError as exc:
        raise ModelUnavailable(f"the MLflow model's MLmodel file could not be read: {exc.message}") from None
    mlmodel_seconds = time.perf_counter() - started
    spec = parse_mlmodel(raw, display)

    model_uri = StorageURI(uri.scheme, uri.bucket, folder_key + spec.model_file)
    _check_loadable(spec, model_uri, display)
    described = load_file(model_uri)
    return _with_mlflow(described, spec, display, mlmodel_seconds)


def folder_display(scheme: str, bucket: str, folder_key: str) -> str:
    """An MLflow model's folder as shown in messages: a local folder by its name only."""
    if scheme == "file":
        return f"file://.../{folder_key.rstrip('/').rsplit('/', 1)[-1]}/"
    return f"{scheme}://{bucket}/{folder_key}"


def _import_yaml_quietly() -> None:
    try:
        import yaml  # noqa: F401
    except Exception:  # the load imports it again and reports the failure
        pass


def _check_loadable(spec: MLflowModel, model_uri: StorageURI, display: str) -> None:
    from core.file_formats import format_for_name

    expected = _LOADED_AS[spec.serialization_format]
    fmt = format_for_name(model_uri.name)
    if fmt is None or fmt.name != expected:
        raise ModelInvalid(
            f"the MLflow model at {display} names the model file {spec.model_file!r} in serialization_format "
            f"{spec.serialization_format!r}; expected a {'.skops' if expected == 'skops' else '.pkl'} file, "
            "as mlflow.sklearn.save_model writes it"
        )
    if spec.serialization_format == "cloudpickle":
        # a cloudpickle file refers to cloudpickle's helpers for what it pickled by value; joblib,
        # which reads it, imports cloudpickle anyway (joblib >= 1.5 depends on it): no extra cost
        try:
            import cloudpickle  # noqa: F401
        except ImportError:
            raise ModelRuntimeMissing(
                f"the MLflow model at {display} was saved with serialization_format 'cloudpickle', and cloudpickle "
                "is not installed here; install it with pip install cloudpickle (joblib depends on it: a bundle "
                "built without dependencies lacks it)"
            ) from None


def _with_mlflow(described, spec: MLflowModel, display: str, mlmodel_seconds: float):
    """The description of the loaded file, as an MLflow model: format, identity, signature."""
    from core.model.inputs import check_frame_library

    notes = list(described.warnings)
    if spec.python_version:
        import platform

        here = platform.python_version()
        if spec.python_version.split(".")[:2] != here.split(".")[:2]:
            notes.append(f"the MLmodel says the model was saved with Python {spec.python_version}; this is Python {here}")
    names, source, schema = described.feature_names, described.feature_names_source, described.schema
    manifest_schema = described.manifest is not None and described.manifest.input_schema is not None
    if spec.signature_inputs is not None and not manifest_schema:  # a manifest's schema comes first
        names, source, schema = signature_schema(spec.signature_inputs, described, display)
        check_frame_library(schema, display)
    return described._replace(
        format="mlflow",
        mlflow=spec.info,
        feature_names=names,
        feature_names_source=source,
        feature_names_from_model=source != "generated",
        schema=schema,
        read_seconds=described.read_seconds + mlmodel_seconds,
        warnings=tuple(notes),
    )


# --- the signature as the input schema -------------------------------------------------------------


def signature_schema(inputs: list, described, display: str) -> tuple[tuple[str, ...] | None, str, InputSchema]:
    """(feature names, where they come from, input schema) for a signature's inputs and the model
    they describe. Column specs name the columns (or give them by position); a tensor spec gives
    the width and the type of every column."""
    if any(spec.get("type") == "tensor" for spec in inputs):
        return _tensor_schema(inputs, described, display)
    model_schema: InputSchema = described.schema
    columns = [_column_spec(spec, i, display) for i, spec in enumerate(inputs)]
    signed = [name for name, _, _ in columns]
    fitted = described.feature_names if described.feature_names_source == "model" else None

    if model_schema.layout == TEXT:  # one text per row: the signature may only name that column
        name, kind, optional = columns[0]
        if len(columns) != 1 or kind != STRING:
            raise _disagree(display, _listed(columns), "one text column (its first step is a text vectoriser)")
        column = (model_schema.columns or ())[0]  # a text model has its one column
        text = Column(name or column.name, STRING, column.nullable or optional)
        return described.feature_names, described.feature_names_source, InputSchema([text], layout=TEXT, source="mlflow")

    if fitted is not None and all(signed) and tuple(signed) != tuple(fitted):
        raise _disagree(display, _listed(columns), f"the columns {_names(fitted)}")
    width = described.n_features
    if width is not None and len(columns) != width:
        raise _disagree(display, _listed(columns), f"{width} columns")
    if fitted is not None:
        names, source = tuple(fitted), "model"
    elif all(signed):
        names, source = tuple(signed), "mlflow"
    else:  # unnamed column specs: by position, under the model's (generated) names
        names, source = described.feature_names or tuple(f"f{i}" for i in range(len(columns))), described.feature_names_source
    from_model = model_schema.columns if model_schema.columns is not None and len(model_schema.columns) == len(names) else None
    merged = [
        _merged_column(name, kind, optional, from_model[j] if from_model is not None else None)
        for j, (name, (_, kind, optional)) in enumerate(zip(names, columns, strict=True))
    ]
    needs_frame = model_schema.layout == FRAME or any(c.type in (STRING, CATEGORICAL, ANY) for c in merged)
    return names, source, InputSchema(merged, layout=FRAME if needs_frame else ARRAY, source="mlflow")


def _merged_column(name: str, kind: str, optional: bool, fitted: Column | None) -> Column:
    """One column: the signature's name and type, and what the fitted model knows more of.

    The fitted model's categories (and whether an unknown one is predicted) are kept: a signature
    says 'string' where the model knows the categories. A column is nullable when the signature
    says it is optional (mlflow infers ``required: false`` from missing values in the training
    frame, which the model was then fitted with) or when the model takes a missing value there
    (an imputer, NaN-aware trees). A column the model drops keeps the signature's type and takes
    a missing value.
    """
    if fitted is None:
        return Column(name, kind, optional)
    if fitted.type == CATEGORICAL:
        return fitted._replace(name=name, nullable=fitted.nullable or optional)
    if fitted.type == ANY:
        return Column(name, kind, True)
    return Column(name, kind, fitted.nullable or optional)


def _tensor_schema(inputs: list, described, display: str) -> tuple[tuple[str, ...] | None, str, InputSchema]:
    if len(inputs) != 1:
        raise _disagree(display, f"{len(inputs)} tensors", "one matrix (a scikit-learn model takes one input)")
    spec = inputs[0].get("tensor-spec") if isinstance(inputs[0].get("tensor-spec"), dict) else {}
    dtype, shape = str(spec.get("dtype", "float64")), spec.get("shape")
    model_schema: InputSchema = described.schema
    kind = _tensor_kind(dtype)
    if model_schema.layout == TEXT and isinstance(shape, list) and len(shape) == 1 and kind in (STRING, ANY):
        return described.feature_names, described.feature_names_source, InputSchema(
            model_schema.columns, layout=TEXT, source="mlflow")
    if not isinstance(shape, list) or len(shape) != 2 or not isinstance(shape[1], int) or shape[1] < 1:
        raise _disagree(display, f"a tensor of shape {shape}", "a matrix of shape [-1, n_features]")
    width = described.n_features
    if width is not None and shape[1] != width:
        raise _disagree(display, f"a tensor of {shape[1]} columns", f"{width} columns")
    names = described.feature_names or tuple(f"f{i}" for i in range(shape[1]))
    source = described.feature_names_source
    fitted = model_schema.columns if model_schema.columns is not None and len(model_schema.columns) == len(names) else None
    if kind == ANY:  # an object tensor says nothing of its cells: the model's own types
        columns = list(fitted) if fitted is not None else [Column(n, NUMBER) for n in names]
    else:
        columns = [_merged_column(n, kind, False, fitted[j] if fitted is not None else None) for j, n in enumerate(names)]
    needs_frame = model_schema.layout == FRAME or any(c.type in (STRING, CATEGORICAL, ANY) for c in columns)
    return names, source, InputSchema(columns, layout=FRAME if needs_frame else ARRAY, source="mlflow")


def _column_spec(spec: dict, i: int, display: str) -> tuple[str | None, str, bool]:
    """(name or None, core type, optional) of one MLflow column spec."""
    name, kind = spec.get("name"), spec.get("type")
    if name is not None and (not isinstance(name, str) or not name):
        raise ModelInvalid(f"the MLflow model at {display} has a signature whose input {i} has the name {name!r}")
    if kind not in _COLUMN_TYPES:
        raise ModelInvalid(
            f"the MLflow model at {display} has a signature whose column {name or i!r} has the type {kind!r}; "
            f"a scikit-learn model takes one value per cell ({', '.join(_COLUMN_TYPES)})"
        )
    return name, _COLUMN_TYPES[kind], spec.get("required", True) is False


def _tensor_kind(dtype: str) -> str:
    """numpy's dtype name (as mlflow writes it) -> a column type; ANY for object, bytes, dates."""
    if dtype == "bool":
        return BOOLEAN
    if dtype.startswith("float"):
        return NUMBER
    if dtype.startswith(("int", "uint")):
        return INTEGER
    return STRING if dtype == "str" else ANY


def _disagree(display: str, signed: str, fitted: str) -> ModelInvalid:
    return ModelInvalid(
        f"the MLflow model at {display} has a signature with {signed}, but its scikit-learn model was fitted on "
        f"{fitted}; save it again with the signature of its training data (mlflow.models.infer_signature)"
    )


def _listed(columns: list) -> str:
    names = [name for name, _, _ in columns]
    if all(names):
        return f"the columns {_names(names)}"
    return f"{len(columns)} unnamed column{'s' if len(columns) != 1 else ''}"


def _names(names) -> str:
    text = json.dumps(list(names))
    return text if len(text) <= 160 else text[:157] + "..."
