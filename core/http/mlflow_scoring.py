"""MLflow's scoring server contract (also SageMaker's container contract): ``POST /invocations``
and ``GET /ping``, so an MLflow or SageMaker client calls this service unchanged.

``/invocations`` takes what ``mlflow models serve`` takes: ``application/json`` in every MLflow
form (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``; MLflow's own
``params`` are ignored) and ``text/csv`` with a header of feature names; it answers as MLflow's
server does, ``{"predictions": [...]}``, labels only. Errors take MLflow's shape,
``{"error_code": "BAD_REQUEST", "message": "..."}``, with /predict's statuses and words.

    curl -X POST localhost:8080/invocations -H 'Content-Type: text/csv' \\
         --data-binary $'sepal_length,sepal_width,petal_length,petal_width\\n5.1,3.5,1.4,0.2\\n'
    {"predictions":["setosa"]}
"""

from __future__ import annotations

import io
import json
from typing import Any

from core.errors import InvalidShape, PayloadTooLarge, ServerlessMLError, UnsupportedMediaType
from core.http.messages import HttpRequest, HttpResponse
from core.request import RowSchema, decode_json_object, rows_from_payload
from core.settings import Settings

# MLflow's error codes (mlflow.protos.databricks_pb2) for the statuses this service answers
_MLFLOW_CODES = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST", 415: "BAD_REQUEST",
                 503: "TEMPORARILY_UNAVAILABLE", 500: "INTERNAL_ERROR"}


def rows_from_invocation(request: HttpRequest, schema: RowSchema, settings: Settings) -> Any:
    """The checked rows of an /invocations body; a RequestError saying what is wrong."""
    content_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type in ("application/json", ""):
        return rows_from_payload(decode_json_object(request.body, settings.max_body_bytes), schema, settings.max_rows)
    if content_type == "text/csv":
        return _csv_rows(request.body, schema, settings)
    raise UnsupportedMediaType(
        f"Content-Type {content_type[:60]!r} is not accepted on /invocations; expected application/json or text/csv"
    )


def _csv_rows(body: bytes, schema: RowSchema, settings: Settings) -> Any:
    from core.batch.lines import line_chunks
    from core.batch.readers import BatchInputError, CsvReader

    if len(body) > settings.max_body_bytes:
        raise PayloadTooLarge(
            f"the body has {len(body)} bytes; at most {settings.max_body_bytes} bytes are accepted (MAX_BODY_BYTES)"
        )
    reader = CsvReader(schema)
    chunks = line_chunks(io.BytesIO(body), settings.max_rows + 1, quoted=True)  # the header and max_rows rows
    try:
        parsed = next(chunks, None)
        if parsed is None or not parsed.numbers:
            raise InvalidShape("the CSV body is empty; expected a header of feature names and at least one row")
        chunk = reader.parse(parsed)
    except BatchInputError as exc:
        raise InvalidShape(f"the CSV body: {exc.message}") from None
    if next(chunks, None) is not None:
        raise PayloadTooLarge(f"the CSV body has more than {settings.max_rows} rows; at most that many are accepted (MAX_ROWS)")
    if chunk.failures:
        first = chunk.failures[0]
        raise InvalidShape(f"the CSV body: {first.message}") if first.code == InvalidShape.code else _refused(first)
    if not chunk.numbers:
        raise InvalidShape("the CSV body has a header but no rows; expected at least one row")
    return chunk.rows


def _refused(failure: Any) -> ServerlessMLError:
    from core.errors import InvalidFeatures, InvalidValue

    kind = {InvalidFeatures.code: InvalidFeatures, InvalidValue.code: InvalidValue}.get(failure.code, InvalidShape)
    return kind(f"the CSV body: {failure.message}")


def mlflow_error(exc: ServerlessMLError) -> HttpResponse:
    body = {"error_code": _MLFLOW_CODES.get(exc.status, "INTERNAL_ERROR"), "message": exc.message}
    headers = {"content-type": "application/json", "cache-control": "no-store"}  # as every JSON answer of the service
    response = HttpResponse(exc.status, headers, json.dumps(body).encode())
    if exc.status == 503:
        response.headers["retry-after"] = "5"
    return response
