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

With ``BATCH_FANOUT_WORKFLOW`` (a Cloud Workflows workflow, ``projects/P/locations/L/workflows/W``)
a file larger than one part is handed to that workflow instead (:class:`WorkflowsFanout`), which
calls three more HTTP functions of this file, each one step of core/batch/fanout.py::

    fanout_plan    {"input": "gs://...", "version": {...}}   -> {"plan": "gs://.../plan.json", "parts": N, ...}
    fanout_part    {"plan": "gs://.../plan.json", "index": i} -> the part's result
    fanout_merge   {"plan": "gs://.../plan.json"}             -> the batch result

The plan and the parts' results stay in Cloud Storage, beside the part outputs under the output
prefix's ``_parts/``: a plan has up to thousands of parts, and a workflow's variables hold 512 KB
at most. Answers: 200 with JSON; 400 for a request that is wrong (not JSON, a field missing or of
the wrong type, a plan outside ``_parts/``); 404 when the plan is gone (merged already, or
removed); 409 when a part's result is missing at merge; 422 when a setting refuses the input;
503 for what a retry may cure (storage, the model), which the workflow retries with backoff.

Settings are read and checked at import (the function's init phase), so a wrong value fails the
deployment with a message naming the variable. The model loads on the first request that needs
it, or here at import when PRELOAD_MODEL=true.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import flask
import functions_framework
import gcp_logging
from cloudevents.http import CloudEvent

from core.batch.triggered import run_for_created_object
from core.errors import ObjectNotFound, ServerlessMLError, SettingsError, StorageError
from core.http import HttpRequest, HttpResponse
from core.logs import log_context
from core.runtime import service
from core.storage import StorageURI
from core.storage.versions import ObjectVersion

FINALIZED = "google.cloud.storage.object.v1.finalized"
WORKFLOW_VARIABLE = "BATCH_FANOUT_WORKFLOW"
ENDPOINT_VARIABLE = "BATCH_FANOUT_WORKFLOWS_ENDPOINT"
DEFAULT_ENDPOINT = "https://workflowexecutions.googleapis.com"
_WORKFLOW_NAME = re.compile(r"^projects/[^/]+/locations/[a-z0-9-]+/workflows/[A-Za-z][A-Za-z0-9_-]{0,127}$")
PLAN_NAME = "plan.json"


class WorkflowsFanout:
    """The :class:`core.batch.triggered.Orchestrator` of this deployment: one execution of the
    Cloud Workflows workflow ``workflow`` per input too large for one run, started through the
    Workflow Executions REST API (``POST {endpoint}/v1/{workflow}/executions``) with the
    function's own credentials (google-auth, imported on the first start).

    Executions are named by the service: the API takes no name or request id of the caller's, so
    it cannot refuse a second execution for a repeated event. The execution carries the label
    ``fanout-input`` (a digest of input and version) to find such twins; a twin costs compute but
    not correctness: each execution plans its own run (its parts never mix with another's), and
    merge publishes on conditions the same bytes.

    ``session``: how requests go out (tests pass a plain ``requests.Session``); by default an
    ``AuthorizedSession`` over ``google.auth.default()``."""

    name = "Workflows"

    def __init__(self, workflow: str, endpoint: str = DEFAULT_ENDPOINT, timeout: float = 30.0,
                 session: Any = None) -> None:
        self.workflow = workflow
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._session = session

    def start(self, request: dict[str, Any]) -> str:
        import requests

        from core.batch.triggered import request_digest

        body = {"argument": json.dumps(request), "callLogLevel": "LOG_ERRORS_ONLY",
                "labels": {"fanout-input": request_digest(request)[:40]}}
        url = f"{self.endpoint}/v1/{self.workflow}/executions"
        try:
            response = self._authorized().post(url, json=body, timeout=self.timeout)
        except (requests.RequestException, OSError) as exc:
            raise StorageError(f"the Workflow Executions API could not be reached at {self.endpoint}: "
                               f"{type(exc).__name__}", request["input"]) from None
        except Exception as exc:  # google.auth's errors: no credentials here, or a token refused
            if type(exc).__module__.startswith("google.auth"):
                raise StorageError(f"no credentials for the Workflow Executions API: {type(exc).__name__}: "
                                   f"{str(exc)[:200]}", request["input"]) from None
            raise
        if response.status_code in (403, 404):  # the same answer on every retry: a setting to fix
            raise SettingsError(f"{WORKFLOW_VARIABLE}={self.workflow!r}: the Workflow Executions API answered "
                                f"{response.status_code} ({_api_message(response)}); expected a workflow that "
                                "exists and that this function's service account may run (roles/workflows.invoker)")
        if response.status_code >= 300:
            raise StorageError(f"the Workflow Executions API answered {response.status_code} "
                               f"({_api_message(response)}) to starting {self.workflow}", request["input"])
        return str(response.json()["name"])

    def _authorized(self) -> Any:
        if self._session is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            self._session = AuthorizedSession(credentials)
        return self._session


def _api_message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])[:300]
    except Exception:
        return response.text[:300] or "no body"


def workflows_fanout_from_env(environ: Mapping[str, str] = os.environ) -> WorkflowsFanout | None:
    """``BATCH_FANOUT_WORKFLOW`` (unset: every file runs in the trigger) and, for a private or
    regional endpoint, ``BATCH_FANOUT_WORKFLOWS_ENDPOINT``."""
    workflow = environ.get(WORKFLOW_VARIABLE, "").strip()
    if not workflow:
        return None
    if not _WORKFLOW_NAME.match(workflow):
        shown = workflow if len(workflow) <= 120 else workflow[:117] + "..."
        raise SettingsError(f"{WORKFLOW_VARIABLE}={shown!r} is not a workflow's name; expected "
                            "projects/<project>/locations/<region>/workflows/<workflow>")
    endpoint = environ.get(ENDPOINT_VARIABLE, "").strip() or DEFAULT_ENDPOINT
    if not re.match(r"^https?://[^/\s]+/?$", endpoint):
        raise SettingsError(f"{ENDPOINT_VARIABLE}={endpoint[:120]!r} is not an endpoint; expected a base URL such "
                            f"as {DEFAULT_ENDPOINT}")
    return WorkflowsFanout(workflow, endpoint)


gcp_logging.install()  # before service(): its first lines are already Cloud Logging lines
_service = service()
_project = os.environ.get("GOOGLE_CLOUD_PROJECT") or None
_batch_logger = logging.getLogger("serverless_ml.batch")
_fanout = workflows_fanout_from_env()


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
            run_for_created_object(event.uri, _service.model, _service.settings, event.version, orchestrator=_fanout)


# --- fan-out steps, called by the workflow ------------------------------------------------------


class StepRequestError(ServerlessMLError):
    """A step's request body is not what the workflow sends."""

    status = 400
    code = "bad_request"


@functions_framework.http
def fanout_plan(request: flask.Request) -> flask.Response:
    """Plan the input the body names, keep the plan in Cloud Storage; its location and size."""
    return _step(request, "plan", _plan)


@functions_framework.http
def fanout_part(request: flask.Request) -> flask.Response:
    """Predict part ``index`` of the plan, keep its result beside its outputs; the result."""
    return _step(request, "part", _part)


@functions_framework.http
def fanout_merge(request: flask.Request) -> flask.Response:
    """Publish the outputs of a plan whose every part has run; remove the parts; the batch result."""
    return _step(request, "merge", _merge)


def _plan(body: dict[str, Any]) -> dict[str, Any]:
    from core.batch import fanout

    source = _field(body, "input", str)
    if not source.startswith("gs://"):
        raise StepRequestError(f"'input' is {source[:100]!r}; expected a gs:// URI")
    version = body.get("version")
    if version is not None and not isinstance(version, dict):
        raise StepRequestError("'version' must be an object (as the trigger sends it) or null")
    try:
        made = fanout.plan(source, _service.settings, version=fanout.version_from(version))
    except ObjectNotFound as exc:
        if exc.uri != source:
            raise
        return {"plan": None, "parts": 0, "skipped": f"{exc.message} (deleted after the event was sent?)"}
    if made["skipped"] is not None:
        return {"plan": None, "parts": 0, "skipped": made["skipped"]}
    where = _state_uri(made, PLAN_NAME)
    _store(where).write_bytes(where, json.dumps(made).encode())
    return {"plan": str(where), "parts": len(made["parts"]), "run": made["run"], "skipped": None}


def _part(body: dict[str, Any]) -> dict[str, Any]:
    from core.batch import fanout

    made = _read_plan(body)
    index = _field(body, "index", int)
    if not 0 <= index < len(made["parts"]):
        raise StepRequestError(f"'index' is {index}; expected 0 to {len(made['parts']) - 1} (the plan's parts)")
    result = fanout.run_part(made["parts"][index], _service.model, _service.settings)
    where = _state_uri(made, f"{index:05d}.result.json")
    _store(where).write_bytes(where, json.dumps(result).encode())
    return result


def _merge(body: dict[str, Any]) -> dict[str, Any]:
    from core.batch import fanout

    made = _read_plan(body)
    results = []
    for index in range(len(made["parts"])):
        where = _state_uri(made, f"{index:05d}.result.json")
        try:
            results.append(json.loads(_store(where).read_bytes(where)))
        except ObjectNotFound:
            raise _MissingResult(f"the result of part {index} is missing ({where.display}); expected every part "
                                 "of the plan to have run before merge") from None
    merged = fanout.merge(made, results, _service.settings)
    state = [_state_uri(made, f"{index:05d}.result.json") for index in range(len(made["parts"]))]
    for where in [*state, _state_uri(made, PLAN_NAME)]:  # the plan last: a merge retried still finds it
        try:
            _store(where).delete(where)
        except ObjectNotFound:
            pass
    return merged


class _MissingResult(ServerlessMLError):
    status = 409
    code = "part_result_missing"


def _read_plan(body: dict[str, Any]) -> dict[str, Any]:
    from core.batch.fanout import PARTS_FOLDER
    from core.storage import parse_uri

    location = _field(body, "plan", str)
    if not (location.startswith("gs://") and f"/{PARTS_FOLDER}" in location and location.endswith("/" + PLAN_NAME)):
        raise StepRequestError(f"'plan' is {location[:200]!r}; expected the gs://.../{PARTS_FOLDER}.../{PLAN_NAME} "
                               "that fanout_plan answered")
    uri = parse_uri(location)
    try:
        return json.loads(_store(uri).read_bytes(uri))
    except ObjectNotFound:
        raise _PlanGone(f"{uri.display} does not exist: merged already, or removed") from None


class _PlanGone(ServerlessMLError):
    status = 404
    code = "plan_not_found"


def _state_uri(plan: dict[str, Any], name: str) -> StorageURI:
    """Where a run's state lives: beside its part outputs."""
    from core.batch.fanout import run_object

    return run_object(plan, name)


def _store(uri: StorageURI) -> Any:
    from core.storage import store_for

    return store_for(uri, _service.settings.storage_timeout_seconds)


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise StepRequestError(f"'{name}' is {json.dumps(value)[:100]}; expected a {kind.__name__}")
    return value


def _step(request: flask.Request, step: str, run: Callable[[dict[str, Any]], dict[str, Any]]) -> flask.Response:
    """One step: JSON in, JSON out, and the status that tells the workflow whether to retry."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    trace = gcp_logging.TraceContext.from_headers(headers)
    with log_context(**gcp_logging.invocation_fields(trace, headers.get("function-execution-id"), _project),
                     step=step):
        try:
            if request.method != "POST":
                raise StepRequestError(f"{request.method} is not allowed; expected POST with a JSON body")
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                raise StepRequestError("the body is not a JSON object; expected what the workflow sends")
            answer, status = run(body), 200
        except SettingsError as exc:  # the deployment refuses this input the same way every time
            answer, status = _error(exc), 422
        except ServerlessMLError as exc:
            # a request to fix or a missing piece: 4xx; storage, model: 503, which the workflow retries
            answer, status = _error(exc), exc.status if 400 <= exc.status < 500 else 503
            if status == 503:
                _batch_logger.error("fan-out step failed", extra={"fields": {
                    "step": step, "error_code": exc.code, "reason": exc.message}})
    return flask.Response(json.dumps(answer), status=status, content_type="application/json")


def _error(exc: ServerlessMLError) -> dict[str, Any]:
    return {"error": {"code": exc.code, "message": exc.message}}


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
