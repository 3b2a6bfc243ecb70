"""The Lambda application: one per process, built at init; ``predict`` answers one invocation.

It only translates: an HTTP event becomes a :class:`core.http.HttpRequest` for the process's
:class:`~core.http.PredictionService`, whose answer goes back in the event source's shape; a
warm-up loads the model; anything else gets a structured error. It never raises, so no event,
however odd, turns into a Lambda error with a stack trace.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda.events import HttpEvent, describe_event, http_event
from aws_lambda.metrics import EmfMetrics, namespace_from_env
from aws_lambda.step_functions import state_machine_arn_from_env
from aws_lambda.warmup import warmup_source
from core import logs, runtime
from core.errors import ServerlessMLError, SettingsError
from core.http import PredictionService
from core.http.service import take_cold_start

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

logger = logging.getLogger("serverless_ml.aws_lambda")

__all__ = ["Invocation", "LambdaApp"]


class LambdaApp:
    """Answers invocations for one service. Thread-safe."""

    def __init__(self, service: PredictionService, metrics: EmfMetrics, state_machine_arn: str | None = None) -> None:
        self.service = service
        self.metrics = metrics
        # BATCH_FANOUT_STATE_MACHINE_ARN (aws_lambda/step_functions.py): the batch trigger hands a
        # file larger than one part to this state machine; None: every file runs in the trigger
        self.state_machine_arn = state_machine_arn
        self._orchestrator: Any = None
        self._state_lock = threading.Lock()
        self._reported_model: Any = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> LambdaApp:
        """Build from the environment (the init phase). A wrong setting is logged as one JSON line
        naming the variable (core's settings by core, the adapter's own here), then raised, so the
        init fails instead of every request later."""
        env = os.environ if environ is None else environ
        service = runtime.service()
        try:
            namespace = namespace_from_env(env)
            state_machine_arn = state_machine_arn_from_env(env)
        except SettingsError as exc:
            logs.configure().error("invalid setting", extra={"fields": {"error_code": exc.code, "reason": exc.message}})
            raise
        return cls(service, EmfMetrics(namespace, env.get("AWS_LAMBDA_FUNCTION_NAME") or "serverless-ml"),
                   state_machine_arn)

    def orchestrator(self) -> Any:
        """The batch trigger's Step Functions starter (core's Orchestrator), or None without
        BATCH_FANOUT_STATE_MACHINE_ARN; built on first use, kept for the instance."""
        if self.state_machine_arn is None:
            return None
        with self._state_lock:
            if self._orchestrator is None:
                from aws_lambda.step_functions import StepFunctions

                self._orchestrator = StepFunctions(self.state_machine_arn, self.service.settings.storage_timeout_seconds)
            return self._orchestrator

    # --- the handler -------------------------------------------------------------------------

    def predict(self, event: Any, context: Any) -> dict[str, Any]:
        invocation = Invocation(context)
        with invocation.log_context():
            view: HttpEvent | None = None
            try:
                warmup = warmup_source(event, context)
                if warmup is not None:
                    return self.warm_up(warmup, invocation)
                view = http_event(event)
                if view is not None:
                    return self._http(view, invocation)
                return self._unsupported(event, invocation)
            except Exception:  # the last guard: a bug here must still give a structured answer
                logger.exception("unhandled error in the Lambda adapter")
                error = ServerlessMLError(
                    f"an internal error occurred; it was logged with request id {invocation.request_id}"
                )
                if view is not None:
                    return view.reply(self.service.error_response(error, invocation.request_id))
                return {"error": {"code": error.code, "message": error.message}, "request_id": invocation.request_id}

    # --- the three kinds of invocation -------------------------------------------------------

    def _http(self, view: HttpEvent, invocation: Invocation) -> dict[str, Any]:
        response = self.service.handle(view.to_core_request(invocation.request_id, cold_start=invocation.cold_start))
        answer = view.reply(response)
        self.metrics.emit(
            latency_ms=(time.perf_counter() - invocation.started) * 1000,
            rows=response.rows,
            cold_start=invocation.cold_start,
            model_load_ms=self.unreported_load_ms(),
            counts=_rollout_counts(response.rollout),
            properties={
                "function_request_id": invocation.request_id,
                "source": view.source,
                "route": response.route,
                "status": response.status,
            },
        )
        return answer

    def warm_up(self, source: str, invocation: Invocation) -> dict[str, Any]:
        was_loaded = self.service.model.loaded is not None
        ok = self.service.preload()
        model = self.service.model.loaded
        answer: dict[str, Any] = {"warmup": True, "source": source, "model": "loaded" if ok else "load_failed"}
        if model is not None:
            answer["model_version"] = model.version
        error = self.service.model.last_error
        if not ok and error is not None:
            answer["error"] = {"code": error.code, "message": error.message}
        logger.info(
            "warm-up",
            extra={"fields": {"warmup_source": source, "model": answer["model"], "loaded_now": ok and not was_loaded}},
        )
        self.metrics.emit(
            cold_start=invocation.cold_start,
            model_load_ms=self.unreported_load_ms(),
            properties={"function_request_id": invocation.request_id, "source": "warmup"},
        )
        return answer

    def _unsupported(self, event: Any, invocation: Invocation) -> dict[str, Any]:
        from aws_lambda.storage_events import is_storage_notification  # not on a request's path

        what = describe_event(event)
        if is_storage_notification(event):
            code = "batch_event_not_handled_here"
            message = (
                f"predict(event, context) answers HTTP requests; it received {what}. Object-storage "
                "notifications go to the batch handler, aws_lambda.handler.batch: point the trigger there"
            )
        else:
            code = "unsupported_event"
            message = (
                f"predict(event, context) answers API Gateway (REST or HTTP API), Lambda Function URL and "
                f"ALB requests, and warm-ups (serverless-plugin-warmup, EventBridge 'Scheduled Event'); "
                f"it received {what}"
            )
        logger.error("unsupported event", extra={"fields": {"error_code": code, "reason": message}})
        self.metrics.emit(
            cold_start=invocation.cold_start,
            model_load_ms=self.unreported_load_ms(),
            properties={"function_request_id": invocation.request_id, "source": "unsupported"},
        )
        return {"error": {"code": code, "message": message}, "request_id": invocation.request_id}

    # --- SnapStart -----------------------------------------------------------------------------

    def preload(self) -> bool:
        """Load the model now (PRELOAD_MODEL, warm-ups, the SnapStart before-snapshot hook)."""
        return self.service.preload()

    # --- state ---------------------------------------------------------------------------------

    def unreported_load_ms(self) -> float | None:
        """The load time of a model loaded since the last metrics line, once."""
        model = self.service.model.loaded
        if model is None or model is self._reported_model:
            return None
        with self._state_lock:
            if model is self._reported_model:
                return None
            self._reported_model = model
        return (model.read_seconds + model.deserialize_seconds) * 1000


def _rollout_counts(rollout: dict[str, Any] | None) -> dict[str, int] | None:
    """With a candidate model (core/rollout.py): ShadowRows and ShadowDisagreements in shadow mode,
    CandidateAnswers (1 or 0) in canary mode, CandidateUnavailable while it is not loaded."""
    if rollout is None:
        return None
    if "candidate_state" in rollout:
        return {"CandidateUnavailable": 1}
    if "shadow_rows" in rollout:
        counts = {"ShadowRows": rollout["shadow_rows"], "ShadowDisagreements": rollout.get("shadow_disagreements", 0)}
        if "shadow_error" in rollout:
            counts["ShadowErrors"] = 1
        return counts
    return {"CandidateAnswers": int(rollout.get("answered_by") == "candidate")}


class Invocation:
    """What every Lambda entry point (``predict``, ``batch``) knows of its invocation from the
    start: when it started, whether it is the instance's first, and Lambda's request id, which
    with the X-Ray trace id is on every log line it writes."""

    __slots__ = ("started", "cold_start", "request_id")

    def __init__(self, context: Any) -> None:
        self.started = time.perf_counter()
        # core's own flag, taken here rather than by the service: a warm-up first makes the next
        # request warm, and a batch invocation counts as well
        self.cold_start = take_cold_start()
        value = getattr(context, "aws_request_id", None)
        self.request_id = value if isinstance(value, str) and value else os.urandom(16).hex()

    def log_context(self) -> AbstractContextManager[None]:
        fields: dict[str, Any] = {"function_request_id": self.request_id, "cold_start": self.cold_start}
        trace_id = os.environ.get("_X_AMZN_TRACE_ID")
        if trace_id:
            fields["xray_trace_id"] = trace_id
        return logs.log_context(**fields)
