"""The OpenAPI document a running service serves: core/http/openapi.json narrowed to the rows of
the loaded model.

The file is the base and the fallback: it describes the API for any model (a value may be a
number, a string, true/false or null). For a loaded model the row schemas are rewritten from its
input schema (core.schema), so that a client, a code generator or a fuzzer sees the real shape::

    >>> from core.schema import Column, InputSchema
    >>> schema = InputSchema([Column("age", "number", nullable=True),
    ...                       Column("sex", "categorical", categories=("female", "male"), unknown_predicted=False)],
    ...                      layout="frame", source="model")
    >>> value_schemas(schema)
    [{'type': ['number', 'null']}, {'enum': ['female', 'male']}]
    >>> typed_document(json.loads(STATIC_PATH.read_bytes()), schema)["components"]["schemas"]["RowObject"]["required"]
    ['age', 'sex']

What changes: ``RowArray`` (one schema per column, in order), ``RowObject`` (the names, all
required, no other), ``Value`` (any value of this model), ``Rows`` and the one-row forms (texts
only for a text model), ``dataframe_split`` (its columns are the names, in any order) and every
request example (rows of this model). For the other protocols: the Open Inference Protocol's
``{name}`` and ``{version}`` (the one name and version served, as enums), the model's metadata
and infer requests of its tensors as examples, and a CSV of its columns for ``/invocations``.
Everything else is the file's.

Built once per loaded model (:class:`OpenApiDocuments` keeps it with the model it describes), never
per request, and never at start: the model is loaded by the first request that needs it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from pathlib import Path
from typing import Any

from core.schema import ANY, BOOLEAN, CATEGORICAL, INTEGER, NUMBER, STRING, TEXT, Column, InputSchema

logger = logging.getLogger("serverless_ml.http")

STATIC_PATH = Path(__file__).with_name("openapi.json")
# categories listed as an enum up to this many; a longer list stays in GET /model only
MAX_ENUM = 50
# columns named in a description (the schemas themselves always have every column)
_MAX_DESCRIBED = 20
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)
_REF = "#/components/schemas/"
_BODY_FORMS = ("InstancesBody", "InputsBody", "DataframeSplitBody", "DataframeRecordsBody", "FeaturesBody", "DataBody")


class OpenApiDocuments:
    """The bytes of /openapi.json: the generic file, and the document of the last model asked
    about (rebuilt only when another model is loaded). Thread-safe: a race builds the same
    bytes twice, never a mixed document."""

    def __init__(self) -> None:
        self._generic: bytes | None = None
        self._typed: tuple[Any, bytes | None] = (None, None)  # (model, its document)
        self._lock = threading.Lock()

    def generic(self, path: str | Path) -> bytes:
        """The file as it is: the document of any model (served when the model cannot load)."""
        if self._generic is None:
            self._generic = Path(path).read_bytes()
        return self._generic

    def for_model(self, model: Any, path: str | Path, model_name: str | None = None) -> bytes:
        """The document of ``model`` (a ModelDescription, served as ``model_name`` in the Open
        Inference Protocol): built on its first request, then kept."""
        cached_model, document = self._typed
        if cached_model is model and document is not None:
            return document
        with self._lock:
            cached_model, document = self._typed
            if cached_model is not model or document is None:
                document = self._build(model, self.generic(path), model_name)
                self._typed = (model, document)
        return document

    def _build(self, model: Any, base: bytes, model_name: str | None) -> bytes:
        try:
            metadata = None
            if model_name is not None:
                from core.http.open_inference import model_metadata

                metadata = model_metadata(model, model_name)
            typed = typed_document(json.loads(base), model.schema, model_version=model.version, metadata=metadata)
            return _ENCODER.encode(typed).encode()
        except Exception:  # a schema this code does not foresee must not take the route down
            logger.exception("the OpenAPI document of the model could not be built; serving the generic one")
            return base


def typed_document(base: dict, schema: InputSchema, *, model_version: str | None = None,
                   metadata: dict | None = None) -> dict:
    """``base`` (the parsed file, modified in place and returned) narrowed to ``schema``'s rows;
    with the model's Open Inference Protocol ``metadata`` (core.http.open_inference.model_metadata),
    its name, version and tensors too."""
    schemas = base["components"]["schemas"]
    text = schema.layout == TEXT
    names = schema.names
    values = value_schemas(schema)

    schemas["Value"] = _value_union(values, schema)
    schemas["RowArray"] = _row_array(schema, values)
    schemas["RowObject"] = _row_object(schema, values)
    rows = [_rows_of("RowArray", "arrays")]
    if names is not None:
        rows.append(_rows_of("RowObject", "objects"))
    if text:
        rows.append({"title": "rows as texts", "type": "array", "minItems": 1, "items": {"$ref": _REF + "Text"}})
    schemas["Rows"]["oneOf"] = rows
    schemas["FeaturesBody"]["properties"]["features"] = {"$ref": _REF + ("Text" if text else "RowArray")}
    schemas["DataBody"]["properties"]["data"] = (
        {"oneOf": [{"$ref": _REF + "RowObject"}, {"$ref": _REF + "Text"}]} if text else {"$ref": _REF + "RowObject"}
    )
    split = schemas["DataframeSplitBody"]["properties"]["dataframe_split"]["properties"]
    split["data"]["items"] = _split_row(schema, values)
    if names is not None:
        split["columns"].update(minItems=len(names), maxItems=len(names), items={"enum": list(names)})
    if names is None:  # a model without names: rows as objects are refused, so are the object forms
        schemas["PredictRequest"]["oneOf"] = [
            form for form in schemas["PredictRequest"]["oneOf"]
            if form["$ref"] not in (_REF + "DataframeRecordsBody", _REF + "DataBody")
        ]

    _replace_examples(base, schema)
    described = f"the model {model_version}" if model_version else "the loaded model"
    base["info"]["description"] += (
        f"\n\nThis document describes the rows of {described}: {_summary(schema)}."
    )
    base["info"]["x-input-schema"] = schema.as_json()
    _replace_csv_example(base, schema)
    if metadata is not None:
        _type_open_inference(base, schema, metadata)
    return base


# --- the other protocols: Open Inference Protocol v2, MLflow's /invocations -----------------------

INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


def _type_open_inference(base: dict, schema: InputSchema, metadata: dict) -> None:
    parameters = base["components"]["parameters"]
    for parameter, value in (("OipModelName", metadata["name"]), ("OipModelVersion", metadata["versions"][0])):
        parameters[parameter]["schema"] = {"type": "string", "enum": [value]}
        parameters[parameter]["example"] = value
    schemas = base["components"]["schemas"]
    schemas["OipModelMetadata"]["examples"] = [metadata]
    examples = infer_examples(schema, metadata["inputs"])
    schemas["OipInferRequest"]["examples"] = [example["value"] for example in examples.values()]
    for path in INFER_PATHS:
        base["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"] = examples


def infer_examples(schema: InputSchema, inputs: list[dict]) -> dict[str, dict]:
    """Infer requests of two rows this model takes: one tensor per column (a model with names), one
    2-D FP64 tensor (a model whose columns are all numbers), one BYTES tensor of texts (a text model)."""
    if schema.layout == TEXT:
        texts = [row[0] for row in example_rows(schema)]
        tensor = {"name": inputs[0]["name"], "shape": [len(texts)], "datatype": "BYTES", "data": texts}
        return {"texts": {"summary": "one BYTES tensor of texts", "value": {"inputs": [tensor]}}}
    rows = _rows_without_missing(schema)
    examples = {}
    if schema.names is not None:
        tensors = [
            {"name": meta["name"], "shape": [len(rows)], "datatype": meta["datatype"],
             "data": [str(row[j]) if meta["datatype"] == "BYTES" else row[j] for row in rows]}
            for j, meta in enumerate(inputs)
        ]
        examples["tensor_per_column"] = {
            "summary": "one tensor per column, named by feature; only predict asked for",
            "value": {"id": "42", "inputs": tensors, "outputs": [{"name": "predict"}]},
        }
    if schema.columns is None or all(column.type in (NUMBER, INTEGER) for column in schema.columns):
        matrix = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64",
                  "data": [float(value) for row in rows for value in row]}
        examples["matrix"] = {"summary": "one 2-D FP64 tensor of every column, flat row-major data; every output",
                              "value": {"inputs": [matrix]}}
    return examples


def _rows_without_missing(schema: InputSchema) -> list[list[Any]]:
    """Two example rows with a value in every column: a JSON tensor has no null (a binary one
    carries a missing number as NaN)."""
    if schema.columns is None:
        return example_rows(schema)
    return [[_example(column, which) for column in schema.columns] for which in (0, 1)]


def _replace_csv_example(base: dict, schema: InputSchema) -> None:
    """The /invocations CSV example: a header of this model's names and its example rows."""
    csv_schema = base["components"]["schemas"].get("InvocationsCsv")
    if csv_schema is None:
        return
    if schema.names is None:  # a CSV header names the columns: such a model takes JSON rows only
        csv_schema.pop("examples", None)
        return
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(schema.names)
    for row in example_rows(schema):
        writer.writerow(["" if value is None else value for value in row])
    csv_schema["examples"] = [out.getvalue()]


def value_schemas(schema: InputSchema) -> list[dict]:
    """One JSON Schema per column, in column order, of the values that column takes."""
    if schema.columns is None:
        return []
    return [column_value_schema(column) for column in schema.columns]


def column_value_schema(column: Column) -> dict:
    """The values ``column`` takes, as core.request.cells checks them (null where it is nullable)."""
    kind = column.type
    if kind == ANY:  # what a ColumnTransformer drops: any scalar, a null too
        return {"type": ["number", "string", "boolean", "null"]}
    if kind == CATEGORICAL:
        return _categorical(column)
    base = {NUMBER: "number", INTEGER: "integer", BOOLEAN: "boolean", STRING: "string"}[kind]
    return {"type": [base, "null"]} if column.nullable else {"type": base}


def _categorical(column: Column) -> dict:
    categories = list(column.categories or ())
    # the checker takes strings only when the model's categories are strings, else finite numbers
    base = "string" if categories and isinstance(categories[0], str) else "number"
    if not categories:
        return {"type": [base, "null"]} if column.nullable else {"type": base}
    listed = len(categories) <= MAX_ENUM
    if not column.unknown_predicted:
        if listed:
            return {"enum": categories + [None]} if column.nullable else {"enum": categories}
        described = {
            "type": [base, "null"] if column.nullable else base,
            "description": f"one of the {len(categories)} categories the model was fitted on (listed in GET /model); "
            "another value is refused",
        }
        return described
    if not listed:
        return {
            "type": [base, "null"] if column.nullable else base,
            "description": f"the model was fitted on {len(categories)} categories (listed in GET /model); "
            "another value is predicted as an unknown category",
        }
    choices: list[dict] = [
        {"enum": categories, "description": "a category the model was fitted on"},
        {"type": base, "description": "another value: predicted as an unknown category"},
    ]
    if column.nullable:
        choices.append({"type": "null", "description": "a missing value"})
    return {"anyOf": choices}


def _value_union(values: list[dict], schema: InputSchema) -> dict:
    distinct = _distinct(values)
    described = {"description": "Any value of this model's rows; each column's own type is in `RowArray` and `RowObject`."}
    if not distinct:
        return {**described, "type": "number"}
    if len(distinct) == 1:
        return {**described, **distinct[0]}
    return {**described, "anyOf": distinct}


def _row_array(schema: InputSchema, values: list[dict]) -> dict:
    description = "One row as an array, in this model's column order"
    if schema.columns is None:  # no names, no width: numbers, as many as the model takes
        return {
            "description": description + ": finite numbers, as many as the model was fitted on (`null` is refused).",
            "type": "array", "minItems": 1, "items": {"type": "number"}, "examples": [[0.5, 1.5]],
        }
    width = len(schema.columns)
    row: dict[str, Any] = {
        "description": f"{description}: {_summary(schema)}.",
        "type": "array", "minItems": width, "maxItems": width,
    }
    distinct = _distinct(values)
    if len(distinct) == 1:  # every column alike (an all-numeric model): one schema, whatever the width
        row["items"] = distinct[0]
    else:
        row["prefixItems"] = values
        row["items"] = False
    row["examples"] = [example_rows(schema)[0]]
    return row


def _row_object(schema: InputSchema, values: list[dict]) -> dict:
    if schema.names is None:
        return {
            "description": "This model has no feature names: rows as objects are refused (400 `invalid_shape`); "
            "send rows as arrays.",
            "not": {},
        }
    return {
        "description": "One row as an object of column name to value; every column present, no other name: "
        f"{_summary(schema)}.",
        "type": "object",
        "required": list(schema.names),
        "properties": dict(zip(schema.names, values, strict=True)),
        "additionalProperties": False,
        "examples": [dict(zip(schema.names, example_rows(schema)[0], strict=True))],
    }


def _split_row(schema: InputSchema, values: list[dict]) -> dict:
    """A row of ``dataframe_split.data``: in the order of its own ``columns``, so any value of the model."""
    if schema.columns is None:
        return {"$ref": _REF + "RowArray"}
    width = len(schema.columns)
    distinct = _distinct(values)
    items = distinct[0] if len(distinct) == 1 else {"anyOf": distinct}
    return {
        "description": "One row, with one value per name in `columns`, in that order.",
        "type": "array", "minItems": width, "maxItems": width, "items": items,
    }


def _rows_of(component: str, kind: str) -> dict:
    return {"title": f"rows as {kind}", "type": "array", "minItems": 1, "items": {"$ref": _REF + component}}


# --- examples: rows of this model ------------------------------------------------------------------


def example_rows(schema: InputSchema) -> list[list[Any]]:
    """Two rows this model takes: typical values, then others (a null where a column takes one)."""
    if schema.columns is None:
        return [[0.5, 1.5], [1.0, 2.0]]
    if schema.layout == TEXT:
        return [["free money now"], ["see you at lunch"]]
    first = [_example(column, 0) for column in schema.columns]
    second = [_example(column, 1) for column in schema.columns]
    nullable = next((j for j, column in enumerate(schema.columns) if column.nullable), None)
    if nullable is not None:
        second[nullable] = None
    return [first, second]


def _example(column: Column, which: int) -> Any:
    if column.type == CATEGORICAL and column.categories:
        return column.categories[min(which, len(column.categories) - 1)]
    return {
        NUMBER: (0.5, 1.5), INTEGER: (1, 2), BOOLEAN: (True, False), STRING: ("some text", "other text"),
        CATEGORICAL: (1, 2), ANY: (0, 1),
    }[column.type][which]


def _replace_examples(base: dict, schema: InputSchema) -> None:
    first, second = example_rows(schema)
    names = list(schema.names) if schema.names is not None else None
    objects = [dict(zip(names, row, strict=True)) for row in (first, second)] if names is not None else None
    text = schema.layout == TEXT
    rows = [row[0] for row in (first, second)] if text else [first, second]
    split = {"columns": names or [f"f{j}" for j in range(len(first))], "data": [first, second]}
    forms: dict[str, tuple[str, Any]] = {
        "instances_arrays": ("instances: " + ("texts" if text else "rows as arrays"), {"instances": rows}),
        "inputs_arrays": ("inputs: " + ("texts" if text else "rows as arrays"), {"inputs": rows[:1]}),
        "features": ("features: one row" + (" (its text)" if text else " as an array"),
                     {"features": rows[0]}),
    }
    if objects is not None:
        forms.update({
            "instances_objects": ("instances: rows as objects", {"instances": objects}),
            "inputs_objects": ("inputs: rows as objects", {"inputs": objects[:1]}),
            "dataframe_split": ("dataframe_split (MLflow)", {"dataframe_split": split}),
            "dataframe_records": ("dataframe_records (MLflow)", {"dataframe_records": objects}),
            "data": ("data: one row as an object", {"data": objects[0]}),
        })
    else:
        forms["dataframe_split"] = ("dataframe_split (MLflow)", {"dataframe_split": split})
    media = base["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    media["examples"] = {key: {"summary": summary, "value": value} for key, (summary, value) in forms.items()}
    by_form = {
        "InstancesBody": [value for key, (_, value) in forms.items() if key.startswith("instances")],
        "InputsBody": [value for key, (_, value) in forms.items() if key.startswith("inputs")],
        "DataframeSplitBody": [forms["dataframe_split"][1]],
        "DataframeRecordsBody": [forms["dataframe_records"][1]] if "dataframe_records" in forms else [],
        "FeaturesBody": [forms["features"][1]],
        "DataBody": [forms["data"][1]] if "data" in forms else [],
    }
    schemas = base["components"]["schemas"]
    for form in _BODY_FORMS:
        if by_form[form]:
            schemas[form]["examples"] = by_form[form]
        else:
            schemas[form].pop("examples", None)


# --- helpers ---------------------------------------------------------------------------------------


def _distinct(schemas: list[dict]) -> list[dict]:
    seen: list[dict] = []
    for schema in schemas:
        if schema not in seen:
            seen.append(schema)
    return seen


def _summary(schema: InputSchema) -> str:
    """The columns in a few words: ``age (number or null), sex (one of 'female', 'male')``."""
    if schema.columns is None:
        return "numbers, as many as the model was fitted on"
    if schema.layout == TEXT:
        return "one text per row (a JSON string)"
    parts = [f"{c.name} ({c.describe()}{' or null' if c.nullable else ''})" for c in schema.columns[:_MAX_DESCRIBED]]
    more = len(schema.columns) - _MAX_DESCRIBED
    return f"{len(schema.columns)} columns: " + ", ".join(parts) + (f" and {more} more" if more > 0 else "")
