"""The HTTP service: the one code path every provider and the local server call.

``PredictionService.handle`` takes an :class:`HttpRequest` and always returns an
:class:`HttpResponse`; it never raises. Routes::

    POST /predict        predictions for the rows in the body
    GET  /health         liveness, and whether the model is loaded
    GET  /model          what is loaded: version, digest, feature names, classes
    GET  /openapi.json   the OpenAPI 3.1 document of this API, typed for the loaded model
    OPTIONS <route>      CORS preflight
    /v2/...              the Open Inference Protocol v2 (core/http/open_inference.py)
    POST /invocations    MLflow's scoring server / SageMaker (core/http/mlflow_scoring.py)
    GET  /ping           their health check: 200 once the model can be served, else 503

Errors are JSON: ``{"error": {"code": ..., "message": ...}, "request_id": ...}``; the two other
protocols answer theirs in their own shapes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from core.errors import MethodNotAllowed, RouteNotFound, ServerlessMLError
from core.http.cors import CorsPolicy
from core.http.messages import HttpRequest, HttpResponse
from core.http.openapi import OpenApiDocuments
from core.installed import orjson_module
from core.logs import log_context, log_info
from core.model import ModelHolder
from core.prediction import answer_from, predict, predict_arrays
from core.request import RowSchema, check_content_type, decode_json_object, rows_from_payload
from core.settings import Settings

if TYPE_CHECKING:
    from core.http.open_inference import OpenInference
    from core.model import ModelDescription
    from core.rollout import Candidate

logger = logging.getLogger("serverless_ml.http")

OPENAPI_PATH = os.path.join(os.path.dirname(__file__), "openapi.json")
_REQUEST_ID = r"[A-Za-z0-9._:-]{1,128}"  # compiled on the first request that sends one (_request_id_match)
_JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # built once, not per answer

_cold_start = True  # true until this process's first invocation has been taken
_cold_start_lock = threading.Lock()


def take_cold_start() -> bool:
    """True exactly once per process: for its first invocation. An adapter whose invocations are
    not all HTTP requests (a Lambda warm-up) takes it itself and passes it on in
    ``HttpRequest.cold_start``, so that the request after a warm-up is not logged as cold."""
    global _cold_start
    if not _cold_start:  # every invocation but the first: no lock
        return False
    with _cold_start_lock:
        cold, _cold_start = _cold_start, False
    return cold


def restart_cold_start() -> None:
    """Make the next invocation this process's first again: a process restored from a memory
    snapshot (Lambda SnapStart) begins a new instance's life there, whatever the snapshotted
    process had taken before."""
    global _cold_start
    with _cold_start_lock:
        _cold_start = True


# the Allow header of a route, from the methods it serves: HEAD comes with GET, OPTIONS with all
_ALLOWED: dict[tuple[str, ...], tuple[str, ...]] = {("POST",): ("POST", "OPTIONS"), ("GET",): ("GET", "HEAD", "OPTIONS")}


class PredictionService:
    """Answers the HTTP API for one model. Thread-safe; one instance per process."""

    def __init__(self, settings: Settings, model: ModelHolder | None = None) -> None:
        self.settings = settings
        self.model = model if model is not None else ModelHolder(settings)
        self.cors = CorsPolicy(settings.cors_allow_origins)
        self._schemas: dict[int, tuple[Any, RowSchema]] = {}  # id(model) -> (model, its schema)
        self.candidate: Candidate | None = None
        if settings.candidate is not None:
            from core.rollout import Candidate  # only with a candidate: no cold-start cost otherwise

            self.candidate = Candidate(settings)
        self._openapi = OpenApiDocuments()
        self._routes: dict[str, dict[str, Callable[[HttpRequest, dict], Any]]] = {
            "/predict": {"POST": self._predict},
            "/health": {"GET": self._health},
            "/model": {"GET": self._model_info},
            "/openapi.json": {"GET": self._openapi_document},
            # MLflow's scoring server and SageMaker's container contract
            "/invocations": {"POST": self._invocations},
            "/ping": {"GET": self._ping},
        }
        self._open_inference: OpenInference | None = None

    # --- entry point ---------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request. Never raises. A request that carries an ``error`` (a front end could
        not read its body) is answered with that error, like any other request."""
        started = time.perf_counter()
        first = take_cold_start()
        cold_start = first if request.cold_start is None else request.cold_start
        request_id = _request_id(request)
        context: dict[str, Any] = {"rows": None, "request_id": request_id}
        route = request.path.rstrip("/") or "/"
        try:
            if request.error is not None:
                raise request.error
            with log_context(cold_start=cold_start):  # so a model load logged here carries it too
                response = self._dispatch(request, route, context)
        except ServerlessMLError as exc:
            response = self.error_response(exc, request_id)
            context["error_code"] = exc.code
        except Exception:  # the last guard: log it, answer without any detail
            logger.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            internal = ServerlessMLError(f"an internal error occurred; it was logged with request id {request_id}")
            response = self.error_response(internal, request_id)
            context["error_code"] = internal.code
        response.headers["x-request-id"] = request_id
        response.rows = context["rows"]
        response.route = context.get("route") or (route if route in self._routes else "unmatched")
        self.cors.decorate(request, response)
        if request.method == "HEAD":
            response.body = b""
        fields = {
            "request_id": request_id,
            "method": request.method,
            "route": response.route,
            "status": response.status,
            "rows": response.rows,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "cold_start": cold_start,
        }
        if "error_code" in context:
            fields["error_code"] = context["error_code"]
        rollout = context.get("rollout")
        if rollout is not None:
            fields.update(rollout)
            response.rollout = rollout
        log_info(logger, "request", fields)
        if self.candidate is not None:
            self.candidate.start_loading()  # after the answer is ready: never before the primary's first
        return response

    def error_response(self, exc: ServerlessMLError, request_id: str | None = None) -> HttpResponse:
        """The one place an exception becomes an answer."""
        request_id = request_id or os.urandom(16).hex()
        response = _json_response(
            exc.status, {"error": {"code": exc.code, "message": exc.message}, "request_id": request_id}
        )
        if isinstance(exc, MethodNotAllowed):
            response.headers["allow"] = ", ".join(exc.allowed)
        if exc.status == 503:
            response.headers["retry-after"] = "5"
        return response

    # --- routing -------------------------------------------------------------------------------

    def _dispatch(self, request: HttpRequest, route: str, context: dict) -> HttpResponse:
        methods = self._routes.get(route)
        if methods is None:
            if route == "/v2" or route.startswith("/v2/"):
                if request.method == "OPTIONS":
                    context["route"] = "/v2"
                    return self.cors.preflight(request, allowed=("GET", "HEAD", "POST", "OPTIONS"))
                return self._v2().handle(request, route, context)
            raise RouteNotFound(
                f"no route {_short(route)}; expected one of: POST /predict, GET /health, GET /model, "
                "GET /openapi.json, POST /invocations, GET /ping, /v2/... (Open Inference Protocol)"
            )
        method = request.method
        handler = methods.get("GET" if method == "HEAD" else method)
        if handler is not None and method != "OPTIONS":
            return handler(request, context)
        allowed = _ALLOWED[tuple(methods)]
        if method == "OPTIONS":
            return self.cors.preflight(request, allowed=allowed)
        raise MethodNotAllowed(
            f"{_short(method)} is not allowed on {route}; expected {' or '.join(methods)}", allowed
        )

    # --- routes --------------------------------------------------------------------------------

    def _predict(self, request: HttpRequest, context: dict) -> HttpResponse:
        check_content_type(request.header("content-type"))
        payload = decode_json_object(request.body, self.settings.max_body_bytes)
        model = self.model.get()
        answering, shadowing = self._rollout(model, request, context)
        rows = rows_from_payload(payload, self._schema_for(answering), self.settings.max_rows)
        context["rows"] = len(rows)
        if shadowing is None:
            answer = predict(answering, rows)
        else:
            answer = self._shadowed(model, shadowing, payload, rows, context)
        answer["model_version"] = answering.version
        answer["request_id"] = context["request_id"]
        return _json_response(200, answer)

    def _rollout(
        self, model: ModelDescription, request: HttpRequest, context: dict,
    ) -> tuple[ModelDescription, ModelDescription | None]:
        """Which model answers and which one shadows it (core/rollout.py), chosen before the rows
        are read: they are read once, by the schema of the model that answers."""
        candidate = self.candidate
        if candidate is None:
            return model, None
        ready = candidate.holder.loaded  # its load is started after the answer, never before
        if ready is None:
            context["rollout"] = {"answered_by": "primary", "candidate_state": candidate.state()}
            return model, None
        if candidate.mode == "canary":
            key = request.header(candidate.settings.key_header) or context["request_id"]
            if candidate.answers(key):
                context["rollout"] = {"answered_by": "candidate"}
                return ready, None
            context["rollout"] = {"answered_by": "primary"}
            return model, None
        return model, ready

    def _shadowed(
        self, model: ModelDescription, candidate: ModelDescription, payload: dict, rows: Any, context: dict,
    ) -> dict[str, Any]:
        """The primary's answer; the candidate predicts the same rows and is compared."""
        primary_answer = predict_arrays(model, rows)
        answer = answer_from(model, *primary_answer)
        try:
            if not candidate.schema.takes_rows_read_by(model.schema):
                rows = rows_from_payload(payload, self._schema_for(candidate), self.settings.max_rows)
            candidate_answer = predict_arrays(candidate, rows)
        except ServerlessMLError as exc:  # the candidate's refusal or failure is a finding, not an answer
            context["rollout"] = {"answered_by": "primary", "shadow_rows": len(rows), "shadow_error": exc.code}
            return answer
        from core.rollout import compare

        assert self.candidate is not None  # the one a shadow comes from
        agreement = compare(model, primary_answer, candidate, candidate_answer, self.candidate.settings.probability_tolerance)
        context["rollout"] = {
            "answered_by": "primary", "shadow_rows": agreement.rows, "shadow_disagreements": agreement.disagreeing,
            "shadow_max_probability_gap": agreement.max_probability_gap,
        }
        if agreement.disagreeing:
            logger.info("shadow disagreement", extra={"fields": {
                "request_id": context["request_id"], "primary_version": model.version,
                "candidate_version": candidate.version, "rows": agreement.rows, "disagreeing": agreement.disagreeing,
                "labels_differ": agreement.labels_differ, "max_probability_gap": agreement.max_probability_gap,
                "positions": list(agreement.positions),
            }})
        return answer

    def _v2(self) -> OpenInference:
        if self._open_inference is None:
            from core.http.open_inference import OpenInference  # on the first /v2 request only

            self._open_inference = OpenInference(
                self.model.get, self._schema_for, self.model_name, self.settings.max_rows, self.settings.max_body_bytes,
                encode_json,
            )
        return self._open_inference

    def model_name(self, model: ModelDescription) -> str:
        """The model's name in the Open Inference Protocol: MODEL_NAME, else the manifest's
        ``name``, else the model file's (or MLflow folder's) name without its extension."""
        if self.settings.model_name:
            return self.settings.model_name
        named = model.manifest.content.get("name") if model.manifest is not None else None
        if isinstance(named, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", named):
            return named
        uri = self.settings.model_uri
        stem = uri.name if uri.name != "MLmodel" else uri.key.rstrip("/").rsplit("/", 2)[-2]
        stem = stem.split(".", 1)[0] or "model"
        return re.sub(r"[^A-Za-z0-9_.-]", "-", stem)[:64]

    def _invocations(self, request: HttpRequest, context: dict) -> HttpResponse:
        """MLflow's ``POST /invocations``: its JSON forms or a CSV with a header; ``{"predictions": [...]}``."""
        from core.http.mlflow_scoring import mlflow_error, rows_from_invocation

        try:
            model = self.model.get()
            rows = rows_from_invocation(request, self._schema_for(model), self.settings)
            context["rows"] = len(rows)
            predictions, _ = predict_arrays(model, rows)
        except ServerlessMLError as exc:
            context["error_code"] = exc.code
            return mlflow_error(exc)
        from core.prediction import json_values

        return _json_response(200, {"predictions": json_values(predictions)})

    def _ping(self, request: HttpRequest, context: dict) -> HttpResponse:
        """MLflow's and SageMaker's health check: 200 once the model can be served (it is loaded
        now if it was not), 503 otherwise."""
        try:
            self.model.get()
        except ServerlessMLError as exc:
            context["error_code"] = exc.code
            return _json_response(503, {"status": "unavailable", "message": exc.message})
        return HttpResponse(200, dict(_JSON_HEADERS), b"\n")

    def _health(self, request: HttpRequest, context: dict) -> HttpResponse:
        loaded = self.model.loaded
        if loaded is not None:
            state = "loaded"
        elif self.model.last_error is not None:
            state = "load_failed"
        else:
            state = "not_loaded"
        body: dict[str, Any] = {"status": "ok", "model": state}
        if loaded is not None:
            body["model_version"] = loaded.version
        if self.candidate is not None:
            body["candidate"] = self.candidate.view(with_model=False)
        return _json_response(200, body)

    def _model_info(self, request: HttpRequest, context: dict) -> HttpResponse:
        view = self.model.get().public_view()
        if self.candidate is not None:
            view["candidate"] = self.candidate.view(with_model=True)
        return _json_response(200, view)

    def _openapi_document(self, request: HttpRequest, context: dict) -> HttpResponse:
        # the loaded model's rows; a model that cannot load still leaves the API to describe
        try:
            model = self.model.get()
        except ServerlessMLError:
            body = self._openapi.generic(OPENAPI_PATH)
        else:
            body = self._openapi.for_model(model, OPENAPI_PATH, self.model_name(model))
        return HttpResponse(200, dict(_JSON_HEADERS), body)

    def _schema_for(self, model: ModelDescription) -> RowSchema:
        cached = self._schemas.get(id(model))
        if cached is None or cached[0] is not model:
            if len(self._schemas) > 4:  # models replaced over time: keep the cache small
                self._schemas.clear()
            cached = self._schemas[id(model)] = (model, RowSchema(model.schema))
        return cached[1]

    def preload(self) -> bool:
        """Load the model now (PRELOAD_MODEL, warm-ups) instead of on the first request.

        A failure is logged, not raised: the service still starts, answers 503 and retries the
        load on the next request.
        """
        try:
            self.model.get()
        except ServerlessMLError:
            return False
        if self.candidate is not None:
            self.candidate.load_now()  # its failure leaves the primary serving: logged, not raised
        return True


def _request_id(request: HttpRequest) -> str:
    """The client's X-Request-Id, else the provider's id, else a new one; only safe characters."""
    for candidate in (request.headers.get("x-request-id"), request.request_id):
        if candidate and _request_id_match()(candidate):
            return candidate
    return os.urandom(16).hex()


@cache
def _request_id_match() -> Callable[[str], Any]:
    # compiled once, on first use rather than at import (a cold start that never sees an id
    # skips it); re.fullmatch(pattern, ...) would look the pattern up in re's cache every call
    return re.compile(_REQUEST_ID).fullmatch


def _json_response(status: int, body: dict) -> HttpResponse:
    return HttpResponse(status, dict(_JSON_HEADERS), encode_json(body))


def encode_json(body: dict) -> bytes:
    """Compact JSON bytes: orjson when installed (an answer of 100 rows of probabilities in a
    tenth of the time), else the standard encoder. Values are plain JSON values already
    (core.prediction.json_values turned non-finite floats into null), so both write the same."""
    orjson = orjson_module()
    dumps = None if orjson is None else orjson.dumps
    if dumps is not None:
        try:
            return dumps(body)
        except TypeError:  # a value orjson does not take (a subclass, a 64-bit overflow): the slow way
            pass
    return _ENCODER.encode(body).encode()


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
