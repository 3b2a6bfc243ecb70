"""The Azure Functions app (Python v2 programming model): ``app`` with the HTTP API of core.

The Functions worker imports this module to index the app; that import is the init phase:
settings are read and checked (a wrong value fails the indexing with a message naming the
variable), logging is routed to the Functions host, and the model is loaded right away only when
``PRELOAD_MODEL=true``. Otherwise the import loads neither scikit-learn, NumPy nor a storage SDK,
and the first request loads the model.

Functions (``host.json`` sets the route prefix to ``""``, so the URLs are the same as on the other
providers; with a prefix such as ``api`` they move under ``/api`` and still answer the same)::

    predict   POST, OPTIONS        /predict
    health    GET, HEAD, OPTIONS   /health
    model     GET, HEAD, OPTIONS   /model
    openapi   GET, HEAD, OPTIONS   /openapi.json
    unmatched any method           /{*path}   every other path or method

Batch (core's engine on one blob; see :class:`BlobCreatedEvent` and :func:`run_batch_for`)::

    batch_blob        blob trigger, Event Grid source, on ``BATCH_INPUT_CONTAINER/{name}``
    batch_event_grid  Event Grid trigger: ``Microsoft.Storage.BlobCreated`` events of any container

With ``BATCH_FANOUT_DURABLE=true`` (off by default: without it azure-functions-durable is not even
imported and the app is the one above), a file larger than one part is handed to Durable
Functions in the same app (core/batch/fanout.py's plan / run_part / merge), and both batch
functions take a durable client binding to start it::

    batch_fanout            orchestrator: plan, every part at once (each retried alone), merge
    batch_fanout_plan       activity: fanout.plan
    batch_fanout_part       activity: fanout.run_part
    batch_fanout_merge      activity: fanout.merge
    batch_fanout_cleanup    activity: fanout.remove_parts, after a part failed for good

Each only translates: the ``func.HttpRequest`` becomes a :class:`core.http.HttpRequest` for the
process's :class:`~core.http.PredictionService` (path = the URL path without the route prefix,
request id = the invocation id), and the answer goes back as a ``func.HttpResponse``. ``unmatched``
lets core answer unknown routes (404) and wrong methods (405, with ``Allow``) exactly as every
provider does; since core routes by path, an answer never depends on which function the host
picked. The HTTP auth level of every function is ``FUNCTION_AUTH_LEVEL`` (default ``FUNCTION``).

A request as the worker hands it over::

    func.HttpRequest(method="POST", url="https://<app>.azurewebsites.net/predict?code=<key>",
                     headers={"content-type": "application/json"}, params={"code": "<key>"},
                     route_params={}, body=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}')
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import azure.functions as func

try:
    from core import runtime
except ModuleNotFoundError as exc:  # the most common cause of "0 functions found" for this app
    if exc.name != "core":
        raise
    raise ModuleNotFoundError(
        "the package 'core' is not importable next to function_app.py: deploy the folder that "
        "`serverless-ml package --provider azure` builds (it carries core), or install the project "
        "(pip install -e '.[azure]') in the environment that runs `func start`",
        name="core",
    ) from None
from core.batch.triggered import run_for_created_object
from core.errors import ObjectNotFound, ServerlessMLError, SettingsError, StorageError
from core.http import HttpRequest
from core.logs import LOGGER_NAME, JsonFormatter, log_context
from core.storage import StorageURI, parse_uri
from core.storage.locations import check_output_prefix
from core.storage.versions import ObjectVersion

AUTH_LEVEL_VARIABLE = "FUNCTION_AUTH_LEVEL"
HOST_JSON = Path(__file__).with_name("host.json")
DEFAULT_ROUTE_PREFIX = "api"  # the host's, when host.json does not set one
INPUT_CONTAINER_VARIABLE = "BATCH_INPUT_CONTAINER"
DEFAULT_INPUT_CONTAINER = "batch-input"
CONNECTION_VARIABLE = "BATCH_STORAGE_CONNECTION"
DEFAULT_CONNECTION = "AzureWebJobsStorage"
FANOUT_VARIABLE = "BATCH_FANOUT_DURABLE"
ORCHESTRATOR_NAME = "batch_fanout"
# A part is retried alone: 1 min, 2 min, 4 min... (capped at 10 min), 5 tries in all, then the
# orchestration fails and the parts written so far are removed. Plan and merge are cheaper steps.
# (first interval in s, attempts, backoff coefficient, longest interval in s)
PART_RETRY = (60, 5, 2.0, 600)
STEP_RETRY = (30, 3, 2.0, 300)
# How long a trigger waits for the Durable extension to accept a new instance (its HTTP API runs
# in the same host: seconds at most, unless the task hub's storage is in trouble).
START_TIMEOUT_SECONDS = 60.0
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
# Azure's rule: 3-63 lowercase letters, digits and single hyphens, starting and ending alphanumeric
_CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_BLOB_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<name>.+)$")


def auth_level_from_env() -> func.AuthLevel:
    """``FUNCTION_AUTH_LEVEL``: ANONYMOUS, FUNCTION (default) or ADMIN, in any case."""
    raw = os.environ.get(AUTH_LEVEL_VARIABLE, "").strip()
    if not raw:
        return func.AuthLevel.FUNCTION
    try:
        return func.AuthLevel[raw.upper()]
    except KeyError:
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise SettingsError(
            f"{AUTH_LEVEL_VARIABLE}={shown!r} is not allowed; expected one of "
            f"{', '.join(level.name for level in func.AuthLevel)} (FUNCTION: a function key is needed)"
        ) from None


def input_container_from_env() -> str:
    """``BATCH_INPUT_CONTAINER``: the container the blob trigger watches (default ``batch-input``)."""
    name = os.environ.get(INPUT_CONTAINER_VARIABLE, "").strip() or DEFAULT_INPUT_CONTAINER
    if not _CONTAINER_NAME.match(name):
        shown = name if len(name) <= 70 else name[:67] + "..."
        raise SettingsError(
            f"{INPUT_CONTAINER_VARIABLE}={shown!r} is not a container name; expected 3-63 lowercase "
            "letters, digits and single hyphens, e.g. batch-input"
        )
    return name


def fanout_from_env() -> bool:
    """``BATCH_FANOUT_DURABLE``: true to fan a large file out to Durable Functions (default false)."""
    raw = os.environ.get(FANOUT_VARIABLE, "").strip().lower()
    if raw in ("", "false", "0", "no", "off"):
        return False
    if raw in ("true", "1", "yes", "on"):
        return True
    shown = raw if len(raw) <= 40 else raw[:37] + "..."
    raise SettingsError(f"{FANOUT_VARIABLE}={shown!r} is not allowed; expected true or false (default false)")


def route_prefix(host_json: Path = HOST_JSON) -> str:
    """``extensions.http.routePrefix`` of host.json, the same value the host routes with."""
    try:
        config = json.loads(host_json.read_text())
    except FileNotFoundError:
        return DEFAULT_ROUTE_PREFIX
    prefix = config.get("extensions", {}).get("http", {}).get("routePrefix", DEFAULT_ROUTE_PREFIX)
    return prefix.strip("/")


class FunctionsHostHandler(logging.Handler):
    """Hands each ``serverless_ml`` record, its message replaced by core's JSON line, to the root
    logger's handlers: that is where the Functions worker collects logs and tags them with the
    invocation (a line on stderr would reach the host without either)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            relayed = logging.makeLogRecord({**record.__dict__, "msg": line, "args": None,
                                             "exc_info": None, "exc_text": None})
            logging.getLogger().handle(relayed)
        except Exception:
            self.handleError(record)


def log_through_functions_host() -> None:
    """Replace core's stderr handler with :class:`FunctionsHostHandler` (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, "_serverless_ml", False):
            logger.removeHandler(handler)
    if not any(isinstance(handler, FunctionsHostHandler) for handler in logger.handlers):
        logger.addHandler(FunctionsHostHandler())
    logger.propagate = False  # the handler relays to root; propagating too would log twice


def without_route_prefix(path: str, prefix: str) -> str:
    """``/api/predict`` -> ``/predict`` for the prefix ``api``; the host matches it in any case."""
    marker = "/" + prefix
    head, rest = path[: len(marker)], path[len(marker):]
    if prefix and head.lower() == marker.lower() and rest[:1] in ("", "/"):
        return rest or "/"
    return path


def to_core_request(req: func.HttpRequest, invocation_id: str) -> HttpRequest:
    return HttpRequest(
        method=req.method,
        # decoded, as the host routes it and the other providers hand it over: /pr%65dict is /predict
        path=without_route_prefix(unquote(urlsplit(req.url).path) or "/", ROUTE_PREFIX),
        headers=dict(req.headers),
        body=req.get_body() or b"",
        query=dict(req.params),
        request_id=invocation_id,
    )


def answer(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    with log_context(invocation_id=context.invocation_id, function_name=context.function_name):
        response = service.handle(to_core_request(req, context.invocation_id))
    return func.HttpResponse(response.body, status_code=response.status, headers=response.headers)


class BlobCreatedEvent:
    """A read-only view of the Event Grid event a storage account sends for a blob, as the worker
    hands it over (``func.EventGridEvent``; tests/events/azure/StorageBlobCreatedEvent.json)::

        {"topic": "/subscriptions/.../providers/Microsoft.Storage/storageAccounts/myaccount",
         "subject": "/blobServices/default/containers/testcontainer/blobs/file1.txt",
         "eventType": "Microsoft.Storage.BlobCreated", "id": "602a88ef-0001-00e6-1233-1646070610ea",
         "data": {"api": "PutBlockList", "url": "https://myaccount.blob.core.windows.net/testcontainer/file1.txt", ...}}

    The same questions as the other adapters' storage views: is it a created object
    (:attr:`created`), which one (:attr:`uri`, None when the event names none), which version of
    it (:attr:`version`: ``data.eTag``, with ``data.sequencer`` recorded beside the outputs), and
    if it is not to be predicted, why (:attr:`skip_reason`). The blob's name is read from the
    subject, which, unlike ``data.url``, is not URL-encoded.
    """

    def __init__(self, event: func.EventGridEvent) -> None:
        self._event = event

    @property
    def version(self) -> ObjectVersion | None:
        data = self._event.get_json()
        if not isinstance(data, dict):
            return None
        etag, sequencer = data.get("eTag"), data.get("sequencer")
        version = ObjectVersion(etag=etag if isinstance(etag, str) else None,
                                sequencer=sequencer if isinstance(sequencer, str) else None)
        return version if version.pinned else None

    @property
    def created(self) -> bool:
        return self._event.event_type == BLOB_CREATED

    @property
    def uri(self) -> StorageURI | None:
        found = _BLOB_SUBJECT.match(self._event.subject or "")
        return StorageURI("az", found["container"], found["name"]) if found else None

    @property
    def skip_reason(self) -> str | None:
        if not self.created:
            return f"event type {self._event.event_type!r} is not {BLOB_CREATED}"
        if self.uri is None:
            return "the event's subject does not name a blob (/blobServices/default/containers/<c>/blobs/<name>)"
        return None


class TriggeredBlob:
    """The blob a blob trigger hands over (``func.InputStream``), read as a storage view like
    :class:`BlobCreatedEvent`. Its ``name`` is ``<container>/<blob>``; the blob alone is accepted
    too. The trigger fires only for created blobs. Its version is the ``ETag`` of the properties
    the host read with the blob's content (no sequencer comes with it)."""

    created = True

    def __init__(self, container: str, blob: func.InputStream) -> None:
        self._container = container
        self._name = blob.name
        # the worker's InputStream has them; the abstract type it is declared as does not
        properties = getattr(blob, "blob_properties", None)
        properties = properties if isinstance(properties, dict) else {}
        etag = next((value for name, value in properties.items() if name.lower() == "etag"), None)
        self._version = ObjectVersion(etag=etag) if isinstance(etag, str) and etag.strip('" ') else None

    @property
    def version(self) -> ObjectVersion | None:
        return self._version

    @property
    def uri(self) -> StorageURI | None:
        if not self._name:
            return None
        head, _, rest = self._name.partition("/")
        return StorageURI("az", self._container, rest if head == self._container and rest else self._name)

    @property
    def skip_reason(self) -> str | None:
        return None if self.uri is not None else "the blob trigger gave no blob name"


def run_batch_for(event: BlobCreatedEvent | TriggeredBlob, context: func.Context,
                  orchestrator: DurableFanout | None = None) -> None:
    """Core's batch engine on the blob ``event`` names, with the invocation's id on every log line.

    An event that names no created blob is skipped with a log line, and so are objects named like
    outputs, objects under the output prefix, names that are not inputs and a blob deleted before
    it could be read. A failure that a retry may cure (storage, model) is logged and raised, so
    the host retries (blob trigger: up to 5 tries, then the poison queue; Event Grid: the
    subscription's retry policy). A BATCH_OUTPUT_URI that is the input's folder is logged and not
    raised: a retry fails the same way.
    """
    with log_context(invocation_id=context.invocation_id, function_name=context.function_name):
        if event.skip_reason is not None:
            # another event type is what a broad subscription lets through; a created blob that
            # is not named is not
            level = logging.WARNING if event.created else logging.INFO
            logging.getLogger("serverless_ml.batch").log(level, "event skipped", extra={"fields": {
                "reason": event.skip_reason}})
            return
        assert event.uri is not None, "an event without a skip reason names its object"
        # the engine's lines ("batch started", "batch finished", "batch input skipped") say which version
        run_for_created_object(event.uri, service.model, service.settings, event.version, orchestrator=orchestrator)


def instance_id_for(request: dict[str, Any]) -> str:
    """The orchestration's instance id: the same input and version give the same id, so a repeated
    event finds the instance the first one started. Instance ids take up to 100 characters."""
    from core.batch.triggered import request_digest

    return f"{ORCHESTRATOR_NAME}-{request_digest(request)[:40]}"


class DurableFanout:
    """The :class:`core.batch.triggered.Orchestrator` of this app: starts ``batch_fanout`` through
    the durable client binding the trigger got (a ``DurableOrchestrationClient``).

    Core settles the object in a worker thread (it reads storage, and for a small file predicts
    it); the client is asynchronous and belongs to the function's event loop, so ``start`` hands
    the call to that loop and waits. An instance of the same id that is pending, running or
    completed is not started again; a failed or terminated one is (the extension replaces it).
    Two events at the very same moment may both see no instance: host.json's
    ``overridableExistingInstanceStates: NonRunningStates`` makes the second start fail, and its
    event's retry finds the first instance."""

    name = "Durable Functions"

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop, timeout: float = START_TIMEOUT_SECONDS) -> None:
        self._client = client
        self._loop = loop
        self._timeout = timeout

    def start(self, request: dict[str, Any]) -> str:
        instance = instance_id_for(request)
        future = asyncio.run_coroutine_threadsafe(self._start(instance, request), self._loop)
        try:
            return future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise StorageError(f"the Durable Functions extension did not accept orchestration {instance} within "
                               f"{self._timeout:g} s; expected its HTTP API to answer (is the task hub's storage "
                               "reachable?)", request["input"]) from None
        except ServerlessMLError:
            raise
        except Exception as exc:  # aiohttp's errors, and the SDK raises a bare Exception for the extension's
            raise StorageError(f"the Durable Functions extension refused to start orchestration {instance}: "
                               f"{type(exc).__name__}: {str(exc)[:300]}", request["input"]) from exc

    async def _start(self, instance: str, request: dict[str, Any]) -> str:
        status = await self._status(instance)
        if status in ("Pending", "Running", "ContinuedAsNew", "Completed", "Suspended"):
            logging.getLogger("serverless_ml.batch").info("orchestration exists", extra={"fields": {
                "input": request["input"], "execution": instance, "status": status}})
            return instance
        return await self._client.start_new(ORCHESTRATOR_NAME, instance, request)

    async def _status(self, instance: str) -> str | None:
        try:
            found = await self._client.get_status(instance)
        except TypeError:  # the SDK builds the status from the body, and a 404 for an unknown instance has none
            return None
        status = getattr(found, "runtime_status", None)
        return None if status is None else str(getattr(status, "value", status))


async def run_batch_fanning_out(event: BlobCreatedEvent | TriggeredBlob, context: func.Context, client: Any) -> None:
    """:func:`run_batch_for` with :class:`DurableFanout` over ``client``, in a worker thread: the
    function is asynchronous (the durable client binding requires it) and core's run is blocking
    work that must not hold the event loop."""
    orchestrator = DurableFanout(client, asyncio.get_running_loop())
    await asyncio.to_thread(run_batch_for, event, context, orchestrator)


# --- init ------------------------------------------------------------------------------------

ROUTE_PREFIX = route_prefix()
BATCH_INPUT_CONTAINER = input_container_from_env()
BATCH_FANOUT_DURABLE = fanout_from_env()
BATCH_CONNECTION = os.environ.get(CONNECTION_VARIABLE, "").strip() or DEFAULT_CONNECTION
app = func.FunctionApp(http_auth_level=auth_level_from_env())
service = runtime.service()
if service.settings.batch_output_uri is not None:
    # outputs at the watched container's root would land among the inputs: refused at start
    check_output_prefix(service.settings.batch_output_uri, StorageURI("az", BATCH_INPUT_CONTAINER, ""))
log_through_functions_host()


# --- HTTP API --------------------------------------------------------------------------------
# Synchronous functions: the worker runs them on its thread pool, and the model's predict() is
# CPU work that would block an async function's event loop.


@app.route(route="predict", methods=["POST", "OPTIONS"])
def predict(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return answer(req, context)


@app.route(route="health", methods=["GET", "HEAD", "OPTIONS"])
def health(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return answer(req, context)


@app.route(route="model", methods=["GET", "HEAD", "OPTIONS"])
def model(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return answer(req, context)


@app.route(route="openapi.json", methods=["GET", "HEAD", "OPTIONS"])
def openapi(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return answer(req, context)


@app.route(route="{*path}")
def unmatched(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return answer(req, context)


# --- batch -----------------------------------------------------------------------------------
# Neither function runs until an Event Grid subscription on the storage account delivers to it:
# subscribe one of them (both would process every blob twice; the outputs would be the same).


if not BATCH_FANOUT_DURABLE:

    @app.blob_trigger(
        arg_name="blob", path=BATCH_INPUT_CONTAINER + "/{name}", connection=BATCH_CONNECTION,
        source=func.BlobSource.EVENT_GRID,
    )
    def batch_blob(blob: func.InputStream, context: func.Context) -> None:
        """A blob created in BATCH_INPUT_CONTAINER. The host hands over the blob's content too; the
        engine does not use it and reads the blob as a stream through core's store instead."""
        run_batch_for(TriggeredBlob(BATCH_INPUT_CONTAINER, blob), context)

    @app.event_grid_trigger(arg_name="event")
    def batch_event_grid(event: func.EventGridEvent, context: func.Context) -> None:
        """A ``Microsoft.Storage.BlobCreated`` event, in any container the subscription lets through;
        other event types (BlobDeleted, ...) are skipped with a log line."""
        with log_context(event_id=event.id, event_type=event.event_type):
            run_batch_for(BlobCreatedEvent(event), context)

else:
    # Only here: the default app neither imports azure-functions-durable nor needs a task hub.
    import azure.durable_functions as df
    from azure.durable_functions.models.RetryOptions import RetryOptions

    from core.batch import fanout as _fanout

    class BackoffRetryOptions(RetryOptions):
        """RetryOptions with the backoff the Durable extension reads from the same JSON (the
        JavaScript SDK sends these fields; the Python SDK's class only lacks the attributes)."""

        def __init__(self, first_seconds: float, attempts: int, backoff: float, max_seconds: float) -> None:
            super().__init__(int(first_seconds * 1000), attempts)
            self.backoff_coefficient = backoff
            self.max_retry_interval_in_milliseconds = int(max_seconds * 1000)

        def to_json(self) -> dict[str, Any]:
            return {**super().to_json(), "backoffCoefficient": self.backoff_coefficient,
                    "maxRetryIntervalInMilliseconds": self.max_retry_interval_in_milliseconds}

    _part_retry = BackoffRetryOptions(*PART_RETRY)
    _step_retry = BackoffRetryOptions(*STEP_RETRY)
    fanout_functions = df.Blueprint(http_auth_level=auth_level_from_env())

    @fanout_functions.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR_NAME, input_type=dict)
    def batch_fanout(context: df.DurableOrchestrationContext):
        """plan -> every part at once -> merge. Deterministic, as an orchestrator must be: it
        only schedules; the activities do the work. A part that fails is retried alone with
        backoff; one that fails for good fails the orchestration after its parts are removed."""
        request = context.get_input()
        plan = yield context.call_activity_with_retry("batch_fanout_plan", _step_retry, request, dict)
        parts = [context.call_activity_with_retry("batch_fanout_part", _part_retry, part, dict) for part in plan["parts"]]
        try:
            results = (yield context.task_all(parts)) if parts else []
        except Exception:
            # the other parts may still be running; what they write after this, the lifecycle rule
            # on _parts/ removes
            yield context.call_activity("batch_fanout_cleanup", plan)
            raise
        merged = yield context.call_activity_with_retry("batch_fanout_merge", _step_retry,
                                                        {"plan": plan, "results": results}, dict)
        return merged

    @fanout_functions.activity_trigger(input_name="request")
    def batch_fanout_plan(request: dict) -> dict:
        with log_context(step="plan"):
            try:
                return _fanout.plan(request["input"], service.settings,
                                    version=_fanout.version_from(request["version"]))
            except ObjectNotFound as exc:
                if exc.uri != parse_uri(request["input"]).display:
                    raise  # the output container, say: a setting to fix, retried
                # deleted since the event: nothing to predict, which no retry changes; merge says so
                return {"input": request["input"], "skipped": f"{exc.message} (deleted after the event was sent?)",
                        "parts": []}

    @fanout_functions.activity_trigger(input_name="part")
    def batch_fanout_part(part: dict) -> dict:
        with log_context(step="part"):
            return _fanout.run_part(part, service.model, service.settings)

    @fanout_functions.activity_trigger(input_name="step")
    def batch_fanout_merge(step: dict) -> dict:
        with log_context(step="merge"):
            return _fanout.merge(step["plan"], step["results"], service.settings)

    @fanout_functions.activity_trigger(input_name="plan")
    def batch_fanout_cleanup(plan: dict) -> None:
        with log_context(step="cleanup"):
            _fanout.remove_parts(plan, service.settings)

    @fanout_functions.function_name("batch_blob")
    @fanout_functions.blob_trigger(
        arg_name="blob", path=BATCH_INPUT_CONTAINER + "/{name}", connection=BATCH_CONNECTION,
        source=func.BlobSource.EVENT_GRID,
    )
    @fanout_functions.durable_client_input(client_name="client")
    async def batch_blob_fanning_out(blob: func.InputStream, context: func.Context, client: Any) -> None:
        """batch_blob, with a file larger than one part handed to ``batch_fanout``."""
        await run_batch_fanning_out(TriggeredBlob(BATCH_INPUT_CONTAINER, blob), context, client)

    @fanout_functions.function_name("batch_event_grid")
    @fanout_functions.event_grid_trigger(arg_name="event")
    @fanout_functions.durable_client_input(client_name="client")
    async def batch_event_grid_fanning_out(event: func.EventGridEvent, context: func.Context, client: Any) -> None:
        """batch_event_grid, with a file larger than one part handed to ``batch_fanout``."""
        with log_context(event_id=event.id, event_type=event.event_type):
            await run_batch_fanning_out(BlobCreatedEvent(event), context, client)

    app.register_functions(fanout_functions)
