"""Google Cloud Functions (gen2) entry points: functions-framework's Flask request <-> core, and
Cloud Storage events -> core's batch engine.

    functions-framework --target predict --source gcp_function/main.py
    functions-framework --target batch --signature-type cloudevent --source gcp_function/main.py

``predict`` is the one HTTP function: every path and method reaches it and core routes on
``request.path`` (POST /predict, GET /health, GET /model, GET /openapi.json, OPTIONS for CORS).
What functions-framework hands it, for example::

    POST /predict HTTP/1.1
    Host: europe-west1-my-project.cloudfunctions.net
    Content-Type: application/json
    Function-Execution-Id: d3Gk9sKq2LmZ
    traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01

    {"instances": [[5.1, 3.5, 1.4, 0.2]]}

``batch`` takes the CloudEvent of a finished upload (``google.cloud.storage.object.v1.finalized``;
see :class:`StorageObjectEvent`) and runs core's batch engine on ``gs://<bucket>/<name>``.

Settings are read and checked at import (the function's init phase), so a wrong value fails the
deployment with a message naming the variable. The model loads on the first request that needs
it, or here at import when PRELOAD_MODEL=true.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import flask
import functions_framework
import gcp_logging
from cloudevents.http import CloudEvent

from core.batch.triggered import run_for_created_object
from core.http import HttpRequest, HttpResponse
from core.logs import log_context
from core.runtime import service
from core.storage import StorageURI
from core.storage.versions import ObjectVersion

gcp_logging.install()  # before service(): its first lines are already Cloud Logging lines
_service = service()
_project = os.environ.get("GOOGLE_CLOUD_PROJECT") or None
_batch_logger = logging.getLogger("serverless_ml.batch")

FINALIZED = "google.cloud.storage.object.v1.finalized"


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    """Answer one HTTP request with core's service; every log line of it carries its trace."""
    core_request = to_core_request(request)
    trace = gcp_logging.TraceContext.from_headers(core_request.headers)
    with log_context(**gcp_logging.invocation_fields(trace, core_request.request_id, _project)):
        answer = _service.handle(core_request)
    return _flask_response(answer)


def to_core_request(request: flask.Request) -> HttpRequest:
    """functions-framework's Flask request as core's, the way every adapter's ``to_core_request``
    does it: lower-case headers, the path as sent, the platform's id for the call."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    return HttpRequest(
        method=request.method,
        path=request.path,
        headers=headers,
        body=request.get_data(),
        query=request.args.to_dict(),
        # functions-framework gives every call one (taken from the platform when it sends one);
        # it is also the execution_id label of the call's log entries
        request_id=headers.get("function-execution-id"),
    )


def _flask_response(answer: HttpResponse) -> flask.Response:
    response = flask.Response(answer.body, status=answer.status, headers=answer.headers)
    if "content-type" not in answer.headers:
        # Flask would announce text/html for a body core did not type (the empty 204 preflight)
        del response.headers["content-type"]
    return response


# --- batch ------------------------------------------------------------------------------------


class StorageObjectEvent:
    """A read-only view of the CloudEvent Eventarc delivers for a Cloud Storage object, as
    functions-framework hands it over (its ``data`` is a StorageObjectData)::

        {"specversion": "1.0", "id": "1234567890", "type": "google.cloud.storage.object.v1.finalized",
         "source": "//storage.googleapis.com/projects/_/buckets/my-bucket",
         "subject": "objects/incoming/day 1.csv",
         "data": {"bucket": "my-bucket", "name": "incoming/day 1.csv", "generation": "1587627537231057",
                  "size": "352", "contentType": "text/csv", ...}}

    The same questions as the other adapters' storage views: is it a created object
    (:attr:`created`), which one (:attr:`uri`, None when the event names none), and if it is not
    to be predicted, why (:attr:`skip_reason`). ``name`` is the object's name as is (not
    URL-encoded). ``generation`` and ``size`` arrive as strings (Eventarc's JSON form of int64) or
    as numbers; both read as ints. Nothing here raises on a missing or oddly typed field.
    """

    def __init__(self, cloud_event: CloudEvent) -> None:
        self._event = cloud_event

    @property
    def id(self) -> str:
        return self._event["id"]

    @property
    def event_type(self) -> str:
        return self._event["type"]

    @property
    def created(self) -> bool:
        return self.event_type == FINALIZED

    @property
    def data(self) -> Mapping[str, Any]:
        data = self._event.data
        return data if isinstance(data, Mapping) else {}

    @property
    def bucket(self) -> str:
        return _text(self.data.get("bucket"))

    @property
    def name(self) -> str:
        return _text(self.data.get("name"))

    @property
    def generation(self) -> int | None:
        return _int_or_none(self.data.get("generation"))

    @property
    def size(self) -> int | None:
        return _int_or_none(self.data.get("size"))

    @property
    def version(self) -> ObjectVersion | None:
        """The generation the event announces: the run reads exactly it."""
        generation = self.generation
        return None if generation is None else ObjectVersion(generation=generation)

    @property
    def uri(self) -> StorageURI | None:
        if not (self.bucket and self.name):
            return None
        # built, not parsed: an object name may hold '?', '#' or '%', which a URI would misread
        return StorageURI("gs", self.bucket, self.name)

    @property
    def skip_reason(self) -> str | None:
        if not self.created:
            return f"event type {self.event_type!r} is not {FINALIZED}"
        if not isinstance(self._event.data, Mapping):
            return f"the event's data is {type(self._event.data).__name__}, not a Cloud Storage object"
        if self.uri is None:
            return "the event's data has no 'bucket' and 'name' of a Cloud Storage object"
        return None


@functions_framework.cloud_event
def batch(cloud_event: CloudEvent) -> None:
    """Predict every row of the object a ``finalized`` event names; write the outputs.

    Other event types, objects that are not inputs (by name) and objects under the output prefix
    are skipped with a log line, and so is an input deleted before it could be read. A failure
    that a retry may cure (storage, model) is logged and raised: the platform answers 500 and
    retries the event when the trigger has retries on. A BATCH_OUTPUT_URI that is the input's
    folder is logged and not raised: every retry would fail the same way.
    """
    headers = {name.lower(): value for name, value in flask.request.headers.items()} if flask.has_request_context() else {}
    trace = gcp_logging.TraceContext.from_headers(headers)
    fields = gcp_logging.invocation_fields(trace, headers.get("function-execution-id"), _project)
    event = StorageObjectEvent(cloud_event)
    with log_context(**fields, event_id=event.id, event_type=event.event_type):
        if event.skip_reason is not None:
            # another event type is what a broad trigger lets through; a finalized event that
            # names no object is not
            level = logging.WARNING if event.created else logging.INFO
            _batch_logger.log(level, "event skipped", extra={"fields": {"reason": event.skip_reason}})
            return
        # the engine's lines ("batch started", "batch finished", "batch input skipped") say which version
        assert event.uri is not None, "an event without a skip reason names its object"
        with log_context(generation=event.generation, size=event.size):
            run_for_created_object(event.uri, _service.model, _service.settings, event.version)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
