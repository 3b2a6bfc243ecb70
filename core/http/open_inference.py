"""The Open Inference Protocol v2 (KServe, Triton, Seldon MLServer) on core's model, so the clients
teams already have (``tritonclient``, KServe's REST client) can call this service unchanged.

Routes (``{name}`` is the deployment's model name: MODEL_NAME, else the manifest's ``name``, else
the model file's name without its extension)::

    GET  /v2                                    server metadata
    GET  /v2/health/live | /v2/health/ready     liveness; readiness (the model loads)
    GET  /v2/models/{name}[/versions/{v}]       model metadata: inputs from the model's schema
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer

An infer request sends one tensor per column (named by feature; BYTES for strings) or one 2-D
tensor of all columns, as JSON ``data`` or, with the binary-data extension, as raw little-endian
bytes after a JSON header of ``Inference-Header-Content-Length`` bytes (Triton's clients do so by
default)::

    {"id": "42", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                             "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}],
     "outputs": [{"name": "predict"}, {"name": "predict_proba", "parameters": {"binary_data": true}}]}

A tensor's datatype must be one its column takes, as ``GET /v2/models/{name}`` lists them: numbers
(FP64, FP32, FP16 or an integer type) for a number or integer column, BOOL for a boolean one,
BYTES for strings and string categories; a 2-D tensor needs columns that all take its datatype. In
a binary tensor NaN is a missing value where the column takes one (JSON has no NaN). A numeric 2-D
tensor of a numbers-only model becomes its float64 matrix in one step, never a Python list per row.

Outputs are ``predict`` (labels) and, where the model has it, ``predict_proba`` (FP64, one column
per class; the classes in its ``parameters``), only those requested, each as JSON or binary as
requested. Rows go through the same checks and limits as ``POST /predict`` (MAX_BODY_BYTES before
anything is read, MAX_ROWS, the schema's types and missing values), and the request writes the
same log line. Errors answer in the protocol's shape, ``{"error": "..."}``, with /predict's statuses,
naming the tensor; every answer is ``Cache-Control: no-store`` and a 503 carries ``Retry-After``.
A percent-encoded ``{name}`` or ``{version}`` segment (``sha256%3A...``) is decoded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import chain
from typing import Any
from urllib.parse import unquote

from core.errors import (
    InvalidShape,
    InvalidValue,
    MalformedJSON,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    ServerlessMLError,
)
from core.http.messages import HttpRequest, HttpResponse
from core.model import ModelDescription
from core.prediction import json_values, predict_arrays
from core.request import RowSchema, decode_json_object, rows_from_payload
from core.schema import BOOLEAN, CATEGORICAL, INTEGER, NUMBER, STRING, TEXT

# datatype -> NumPy little-endian type of one element (BYTES: length-prefixed, read apart)
_NUMPY = {
    "BOOL": "?", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
DATATYPES = (*_NUMPY, "BYTES")
_NUMBER_TYPES = frozenset((int, float))
_MODEL_ROUTE = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?")
_HEADER_LENGTH = "inference-header-content-length"
# every answer, as every JSON answer of the service: never cached; a 503 also says when to retry
_NO_STORE = "no-store"
_RETRY_AFTER_SECONDS = "5"


class OpenInference:
    """Answers ``/v2/...`` for one service's model."""

    def __init__(self, model: Callable[[], ModelDescription], schema_for: Callable[[ModelDescription], RowSchema],
                 name_for: Callable[[ModelDescription], str], max_rows: int, max_body_bytes: int,
                 encode: Callable[[dict], bytes]) -> None:
        self._encode = encode  # the service's JSON encoder, as its other answers are written
        self._model = model
        self._schema_for = schema_for
        self._name_for = name_for
        self._max_rows = max_rows
        self._max_body_bytes = max_body_bytes
        # per loaded model, not per request: its name, and the datatype families of its columns
        self._named: tuple[Any, str] = (None, "")
        self._typed: tuple[Any, frozenset[str]] = (None, frozenset())

    def handle(self, request: HttpRequest, route: str, context: dict) -> HttpResponse:
        """The answer to a ``/v2`` request, errors included (in the protocol's shape)."""
        try:
            return self._route(request, route, context)
        except ServerlessMLError as exc:
            context["error_code"] = exc.code
            response = _json(exc.status, {"error": exc.message})
            if isinstance(exc, MethodNotAllowed):
                response.headers["allow"] = ", ".join(exc.allowed)
            return response

    def _route(self, request: HttpRequest, route: str, context: dict) -> HttpResponse:
        method = "GET" if request.method == "HEAD" else request.method
        if route in ("/v2", "/v2/health/live", "/v2/health/ready"):
            context["route"] = route
            _allow(method, "GET")
            if route == "/v2":
                return _json(200, {"name": "serverless-ml", "version": "2", "extensions": ["binary_tensor_data"]})
            if route == "/v2/health/live":
                return _json(200, {"live": True})
            try:
                self._model()
            except ServerlessMLError as exc:
                return _json(503, {"ready": False, "error": exc.message})
            return _json(200, {"ready": True})
        match = _MODEL_ROUTE.fullmatch(route)
        if match is None:
            raise RouteNotFound(
                f"no route {route[:60]!r} in the Open Inference Protocol; expected /v2, /v2/health/live, "
                "/v2/health/ready, /v2/models/{name}[/versions/{version}][/ready|/infer]"
            )
        name, version, action = match.groups()
        # a segment as a client may encode it (':' of a digest version as %3A); the path was split first
        name = unquote(name) if "%" in name else name
        version = unquote(version) if version is not None and "%" in version else version
        context["route"] = "/v2/models/{name}" + ("/versions/{version}" if version else "") + (action or "")
        _allow(method, "POST" if action == "/infer" else "GET")
        model = self._model()
        named = self._named
        if named[0] is not model:
            named = self._named = (model, self._name_for(model))
        own_name = named[1]
        if name != own_name:
            raise RouteNotFound(f"no model named {name[:60]!r}; this deployment serves {own_name!r}")
        if version is not None and version != model.version:
            raise RouteNotFound(f"model {name!r} has no version {version[:60]!r}; it serves {model.version!r}")
        if action == "/ready":
            return _json(200, {"name": name, "ready": True})
        if action is None:
            return _json(200, model_metadata(model, own_name))
        return self._infer(request, model, own_name, context)

    # --- infer --------------------------------------------------------------------------------

    def _infer(self, request: HttpRequest, model: ModelDescription, name: str, context: dict) -> HttpResponse:
        body = request.body
        if len(body) > self._max_body_bytes:
            raise PayloadTooLarge(
                f"the body has {len(body)} bytes; at most {self._max_body_bytes} bytes are accepted (MAX_BODY_BYTES)"
            )
        binary = b""
        length_text = request.header(_HEADER_LENGTH)
        if length_text is not None:
            if not length_text.isdigit() or int(length_text) > len(body):
                raise MalformedJSON(
                    f"Inference-Header-Content-Length is {length_text[:20]!r}; expected the JSON header's length in "
                    f"bytes, at most the body's {len(body)}"
                )
            binary = body[int(length_text):]
            body = body[:int(length_text)]
        header = decode_json_object(body, self._max_body_bytes)
        inputs = header.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InvalidShape("'inputs' is missing or empty; expected a list of tensors with name, shape, datatype and data")
        tensors = _read_tensors(inputs, binary)
        schema = self._schema_for(model)
        rows = self._rows(tensors, model, schema)
        context["rows"] = len(rows)
        predictions, probabilities = predict_arrays(model, rows)
        return self._answer(header, model, name, predictions, probabilities, context)

    def _rows(self, tensors: list[Tensor], model: ModelDescription, schema: RowSchema) -> Any:
        columns = schema.schema.columns
        if len(tensors) == 1 and len(tensors[0].shape) == 2 and schema.schema.layout != TEXT:
            tensor = tensors[0]
            count, width = tensor.shape
            _check_rows(tensor, count, self._max_rows)
            expected = schema.count
            if expected is not None and width != expected:
                raise InvalidShape(
                    f"input {tensor.name!r} has shape {tensor.shape}; expected [rows, {expected}], one column per feature"
                )
            typed = self._typed
            if typed[0] is not schema:  # the datatype families every column takes, once per model
                typed = self._typed = (schema, frozenset.intersection(*map(_families, columns or (None,))))
            if _FAMILY.get(tensor.datatype, _NUMBERS) not in typed[1]:
                _check_datatype(tensor, columns or (None,))
            if schema.numbers_fast:  # one float matrix straight from the tensor: no Python list per row
                return _number_matrix(tensor, count, width, nullable=not schema.plain_numeric)
            return rows_from_payload({"instances": tensor.rows()}, schema, self._max_rows)
        if schema.schema.layout == TEXT:
            if len(tensors) != 1:
                raise InvalidShape(f"{len(tensors)} input tensors; this model takes one, of texts (BYTES)")
            tensor = tensors[0]
            _check_rows(tensor, tensor.shape[0], self._max_rows)
            if tensor.datatype != "BYTES":
                raise InvalidValue(f"input {tensor.name!r} is {tensor.datatype}; this model takes one text per row: BYTES")
            return rows_from_payload({"instances": tensor.column()}, schema, self._max_rows)
        # one tensor per column
        names = schema.names
        if names is None or columns is None:
            raise InvalidShape(
                f"{len(tensors)} input tensors; this model has no feature names, so it takes one tensor of shape "
                f"[rows, {schema.count or 'features'}]"
            )
        by_name = {tensor.name: tensor for tensor in tensors}
        if len(by_name) != len(tensors):
            twice = sorted({t.name for t in tensors if sum(u.name == t.name for u in tensors) > 1})
            raise InvalidShape(f"input tensors named twice: {', '.join(map(repr, twice[:10]))}; expected one per feature")
        missing = [n for n in names if n not in by_name]
        unknown = [t.name for t in tensors if t.name not in schema.index]
        if missing or unknown:
            parts = ([f"missing {', '.join(map(repr, missing[:10]))}"] if missing else []) + (
                [f"unknown {', '.join(map(repr, unknown[:10]))}"] if unknown else [])
            raise InvalidShape(f"input tensors: {'; '.join(parts)}; expected one per feature: {', '.join(names[:20])}")
        for name, column in zip(names, columns, strict=True):
            _check_datatype(by_name[name], (column,))
        values = [by_name[n].column() for n in names]
        counts = {len(c) for c in values}
        if len(counts) != 1:
            raise InvalidShape("the input tensors hold different numbers of rows; expected one value per row in each")
        _check_rows(by_name[names[0]], counts.pop(), self._max_rows)
        return rows_from_payload(
            {"dataframe_split": {"columns": list(names), "data": [list(row) for row in zip(*values, strict=True)]}},
            schema, self._max_rows,
        )

    def _answer(self, header: dict, model: ModelDescription, name: str, predictions: Any, probabilities: Any,
                context: dict) -> HttpResponse:
        available = {"predict": predictions}
        if probabilities is not None:
            available["predict_proba"] = probabilities
        requested = header.get("outputs")
        binary_default = bool((header.get("parameters") or {}).get("binary_data_output")) if isinstance(
            header.get("parameters"), dict) else False
        if requested is None:
            wanted = [(output, binary_default) for output in available]
        else:
            if not isinstance(requested, list):
                raise InvalidShape("'outputs' is not a list; expected [{\"name\": \"predict\"}, ...]")
            wanted = []
            for output in requested:
                output_name = output.get("name") if isinstance(output, dict) else None
                if output_name not in available:
                    raise InvalidShape(
                        f"output {str(output_name)[:60]!r} is not one this model gives; expected one of {', '.join(available)}"
                    )
                parameters = output.get("parameters") if isinstance(output.get("parameters"), dict) else {}
                wanted.append((output_name, bool(parameters.get("binary_data", binary_default))))
        outputs, chunks = [], []
        for output_name, as_binary in wanted:
            array = available[output_name]
            described: dict[str, Any] = {"name": output_name, "shape": list(array.shape), "datatype": _datatype(array)}
            if output_name == "predict_proba":
                described["parameters"] = {"classes": model.classes}
            if as_binary:
                raw = _to_bytes(array, described["datatype"])
                described.setdefault("parameters", {})["binary_data_size"] = len(raw)
                chunks.append(raw)
            else:
                described["data"] = json_values(array.reshape(-1))
            outputs.append(described)
        answer = {"model_name": name, "model_version": model.version,
                  "id": str(header["id"]) if isinstance(header.get("id"), (str, int)) else context["request_id"],
                  "outputs": outputs}
        document = self._encode(answer)
        if not chunks:
            return HttpResponse(200, {"content-type": "application/json", "cache-control": _NO_STORE}, document)
        headers = {"content-type": "application/octet-stream", "cache-control": _NO_STORE,
                   _HEADER_LENGTH: str(len(document))}
        return HttpResponse(200, headers, document + b"".join(chunks))


def model_metadata(model: ModelDescription, name: str) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs from the model's schema, its outputs."""
    return {
        "name": name, "versions": [model.version], "platform": "onnx" if model.format == "onnx" else "scikit-learn",
        "inputs": _inputs(model), "outputs": _outputs(model),
    }


def _inputs(model: ModelDescription) -> list[dict[str, Any]]:
    schema = model.schema
    if schema.layout == TEXT:
        return [{"name": (schema.names or ("text",))[0], "datatype": "BYTES", "shape": [-1]}]
    if schema.columns:
        return [{"name": column.name, "datatype": _datatype_of(column), "shape": [-1]} for column in schema.columns]
    return [{"name": "input-0", "datatype": "FP64", "shape": [-1, model.n_features if model.n_features else -1]}]


class Tensor:
    """One input tensor: its name, shape, datatype and values (flat, row-major)."""

    __slots__ = ("name", "shape", "datatype", "values")

    def __init__(self, name: str, shape: list[int], datatype: str, values: Any) -> None:
        self.name, self.shape, self.datatype, self.values = name, shape, datatype, values

    def column(self) -> list[Any]:
        """The values as one column (shape [rows] or [rows, 1]); NaN is a missing value."""
        if len(self.shape) == 2 and self.shape[1] != 1 or len(self.shape) not in (1, 2):
            raise InvalidShape(f"input {self.name!r} has shape {self.shape}; expected [rows] or [rows, 1] for one column")
        return [_missing_for_nan(v) for v in _as_list(self.values)]

    def rows(self) -> list[list[Any]]:
        count, width = self.shape
        values = [_missing_for_nan(v) for v in _as_list(self.values)]
        return [values[i * width:(i + 1) * width] for i in range(count)]


def _read_tensors(inputs: list, binary: bytes) -> list[Tensor]:
    tensors, offset = [], 0
    for i, item in enumerate(inputs):
        tensor, offset = _read_tensor(i, item, binary, offset)
        tensors.append(tensor)
    return tensors


def _read_tensor(i: int, item: Any, binary: bytes, offset: int) -> tuple[Tensor, int]:
    """Input ``i``, and where the next binary tensor starts."""
    where = f"inputs[{i}]"
    if not isinstance(item, dict):
        raise InvalidShape(f"{where} is not an object; expected a tensor with name, shape, datatype and data")
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not name:
        raise InvalidShape(f"{where} has no name; expected the feature's (or the tensor's) name")
    where = f"input {name!r}"
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) or not shape:
        raise InvalidShape(f"{where} has shape {str(shape)[:60]}; expected a list of non-negative integers")
    if datatype not in DATATYPES:
        raise InvalidShape(f"{where} has datatype {str(datatype)[:20]!r}; expected one of {', '.join(DATATYPES)}")
    count = math.prod(shape)
    parameters = item.get("parameters")
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise InvalidShape(f"{where} has binary_data_size {size!r}; the binary part holds {len(binary) - offset} more bytes")
        return Tensor(name, shape, datatype, _binary_values(binary[offset:offset + size], datatype, shape, where)), offset + size
    data = item.get("data")
    if not isinstance(data, list):
        raise InvalidShape(f"{where} has no data; expected 'data' (a list) or parameters.binary_data_size")
    values = _flat(data, len(shape), where)
    if len(values) != count:
        raise InvalidShape(f"{where} has {len(values)} values; its shape {shape} needs {count}")
    kinds = set(map(type, values))  # the types present, in one pass at C speed
    if datatype == "BYTES":
        if not kinds <= {str}:
            raise InvalidValue(f"{where} is BYTES; expected its data as JSON strings")
    elif datatype == "BOOL":
        if not kinds <= {bool}:
            raise InvalidValue(f"{where} is BOOL; expected its data as true or false")
    elif not kinds <= _NUMBER_TYPES:
        raise InvalidValue(f"{where} is {datatype}; expected its data as numbers")
    return Tensor(name, shape, datatype, values), offset


def _binary_values(raw: bytes, datatype: str, shape: list[int], where: str) -> Any:
    import numpy as np

    count = math.prod(shape)
    if datatype == "BYTES":
        return _bytes_elements(raw, count, where)
    itemsize = np.dtype(_NUMPY[datatype]).itemsize
    if len(raw) != count * itemsize:
        raise InvalidShape(f"{where} has {len(raw)} bytes of {datatype}; shape {shape} needs {count * itemsize}")
    return np.frombuffer(raw, dtype=_NUMPY[datatype])


def _bytes_elements(raw: bytes, count: int, where: str) -> list[str]:
    """BYTES in binary: each element a 4-byte little-endian length, then that many bytes (UTF-8)."""
    values: list[str] = []
    position = 0
    for _ in range(count):
        if position + 4 > len(raw):
            raise InvalidShape(f"{where}: its binary BYTES data ends before element {len(values)}")
        length = int.from_bytes(raw[position:position + 4], "little")
        element = raw[position + 4:position + 4 + length]
        if len(element) != length:
            raise InvalidShape(f"{where}: element {len(values)} is cut short")
        try:
            values.append(element.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidValue(f"{where}: element {len(values)} is not UTF-8 text") from None
        position += 4 + length
    return values


def _to_bytes(array: Any, datatype: str) -> bytes:
    import numpy as np

    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            encoded = str(value).encode("utf-8")
            parts.append(len(encoded).to_bytes(4, "little") + encoded)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=_NUMPY[datatype]).tobytes()


def _datatype(array: Any) -> str:
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def _datatype_of(column: Any) -> str:
    if column.type == NUMBER:
        return "FP64"
    if column.type == INTEGER:
        return "INT64"
    if column.type == BOOLEAN:
        return "BOOL"
    if column.type == CATEGORICAL and column.categories and not isinstance(column.categories[0], str):
        return "INT64" if all(isinstance(c, int) for c in column.categories) else "FP64"
    return "BYTES"


def _outputs(model: ModelDescription) -> list[dict[str, Any]]:
    classes = model.classes
    labels = "BYTES" if classes and isinstance(classes[0], str) else ("INT64" if classes else "FP64")
    described: list[dict[str, Any]] = [{"name": "predict", "datatype": labels, "shape": [-1]}]
    if model.has_probabilities:
        described.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes or ())],
                          "parameters": {"classes": classes}})
    return described


def _flat(data: list, rank: int, where: str) -> list:
    """Row-major values of ``data``, flat or nested one level per dimension (the protocol allows
    both); flattened a level at a time, never recursively, so that a body nested a thousand levels
    deep is a 400 and not a RecursionError."""
    values = data
    for level in range(rank):
        kinds = set(map(type, values))  # the types present, in one pass at C speed
        if list not in kinds:
            return values
        if level == rank - 1:
            break
        if kinds == {list}:
            values = list(chain.from_iterable(values))
            continue
        flat: list = []
        for value in values:
            if type(value) is list:
                flat.extend(value)
            else:
                flat.append(value)
        values = flat
    raise InvalidShape(f"{where} has data nested more than {rank} level{'s' if rank != 1 else ''} deep; expected its "
                       "values flat, or nested one level per dimension of its shape")


def _as_list(values: Any) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _missing_for_nan(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def _check_rows(tensor: Tensor, count: int, max_rows: int) -> None:
    if count > max_rows:
        raise PayloadTooLarge(f"the tensors hold {count} rows; at most {max_rows} are accepted per request (MAX_ROWS)")
    if count == 0:
        raise InvalidShape(f"input {tensor.name!r} has shape {tensor.shape}; expected at least one row")


def _check_datatype(tensor: Tensor, columns: Any) -> None:
    """A tensor's datatype must be one its columns take (``None``: a column of numbers), as GET
    /v2/models/{name} lists them: an InvalidValue naming the tensor otherwise."""
    family = _FAMILY.get(tensor.datatype, _NUMBERS)
    for column in columns:
        families = _families(column)
        if family not in families:
            takes = f"column {column.name!r} takes" if column is not None and column.name != tensor.name else "it takes"
            raise InvalidValue(
                f"input {tensor.name!r} is {tensor.datatype}; {takes} "
                f"{' or '.join(_DESCRIBED[f] for f in sorted(families, key=list(_DESCRIBED).index))}"
                + ("; send one tensor per column" if len({_families(c) for c in columns}) > 1 else "")
            )


_NUMBERS = "numbers"
_FAMILY = {"BOOL": "BOOL", "BYTES": "BYTES"}  # every other datatype carries numbers
_ONLY_NUMBERS = frozenset((_NUMBERS,))
_DESCRIBED = {_NUMBERS: "numbers (FP64, FP32 or an integer datatype)", "BOOL": "BOOL", "BYTES": "BYTES (strings)"}


def _families(column: Any) -> frozenset[str]:
    """The datatype families a column takes, as core.request.cells checks its values."""
    if column is None or column.type in (NUMBER, INTEGER):
        return _ONLY_NUMBERS
    if column.type == BOOLEAN:
        return frozenset(("BOOL",))
    if column.type == STRING:
        return frozenset(("BYTES",))
    if column.type == CATEGORICAL:
        if not column.categories:
            return frozenset(("BYTES", _NUMBERS))
        return frozenset(("BYTES",)) if isinstance(column.categories[0], str) else _ONLY_NUMBERS
    return frozenset((_NUMBERS, "BOOL", "BYTES"))  # ANY


def _number_matrix(tensor: Tensor, count: int, width: int, nullable: bool) -> Any:
    """A numeric tensor as the model's float64 matrix; NaN (a missing value) only where every
    column takes one, infinities never: what POST /predict takes, checked in bulk."""
    import numpy as np

    try:
        matrix = np.asarray(tensor.values, dtype=np.float64).reshape(count, width)
    except OverflowError:  # an integer of JSON data beyond the float range
        raise InvalidValue(f"input {tensor.name!r} holds a number outside the 64-bit float range; "
                           "expected finite numbers") from None
    finite = np.isfinite(matrix)
    if not finite.all():
        refused = ~(finite | np.isnan(matrix)) if nullable else ~finite
        if refused.any():
            row, column = (int(i) for i in np.argwhere(refused)[0])
            raise InvalidValue(
                f"input {tensor.name!r} holds {float(matrix[row, column])} at [{row}, {column}]; expected finite "
                f"numbers{' (NaN for a missing value)' if nullable else ''}"
            )
    return matrix


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"{method[:20]!r} is not allowed here; expected {allowed}",
                               (allowed, "OPTIONS") if allowed == "POST" else ("GET", "HEAD", "OPTIONS"))


def _json(status: int, body: dict) -> HttpResponse:
    headers = {"content-type": "application/json", "cache-control": _NO_STORE}
    if status == 503:
        headers["retry-after"] = _RETRY_AFTER_SECONDS
    return HttpResponse(status, headers, json.dumps(body).encode())
