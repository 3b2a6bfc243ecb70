"""The batch trigger: S3 object events (direct, via SQS, via EventBridge) -> core's run_batch.

Only translation happens here: the event is read by :mod:`aws_lambda.storage_events`, each created
object is handed to :func:`core.batch.engine.run_batch` (which owns formats, the loop guard, outputs and
idempotency), and the outcome goes back in the shape the delivery needs:

* **SQS**: ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...], "results": [...]}``; only
  the messages listed are retried (the event source mapping needs ``ReportBatchItemFailures``).
* **Direct and EventBridge** (asynchronous invocations): ``{"results": [...]}``; when an input
  failed the handler raises :class:`BatchFailed` after doing the rest, so Lambda's own retries
  (two by default) and the function's on-failure destination or dead-letter queue apply.

Every piece of the event gets one result and one log line::

    predicted     the outputs were written (rows that failed are in the errors file)
    fanned_out    with BATCH_FANOUT_STATE_MACHINE_ARN set, a file larger than one part
                  (BATCH_FANOUT_PART_BYTES): a Step Functions execution was started for it
                  (``"execution"``: its ARN; aws_lambda/fanout.py), which publishes the outputs.
                  A repeated event for the same version starts none: the execution's name is
                  derived from the input and its version (aws_lambda/step_functions.py)
    skipped       nothing to do: a delete or other non-create event, an object under the output
                  prefix, a name that is not a batch input, an object deleted before it was
                  read, a version replaced before its run could publish ("superseded: ..."),
                  S3's s3:TestEvent
    unrecognised  not an S3 object event (an SQS body of another kind, a non-S3 event): logged
                  at WARNING and not retried, since no retry can make it one
    failed        storage or model error: retried as above (``"retry": true``); a wrong setting
                  is not retried (``"retry": false``), since every retry would fail the same
                  way. The policy is core's (core/batch/triggered.py), the same on every cloud.
                  A file that cannot be finished before the invocation's time limit
                  (``context.get_remaining_time_in_millis()``) stops between chunks, publishes
                  nothing and fails with ``batch_time_limit`` (not retried): the message names the
                  file, the rows done and FANOUT_SETTING, which splits such files
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aws_lambda.app import Invocation, LambdaApp
from aws_lambda.events import describe_event
from aws_lambda.storage_events import VIA_SQS, ObjectNotice, Unrecognised, storage_delivery
from aws_lambda.warmup import warmup_source

logger = logging.getLogger("serverless_ml.aws_lambda.batch")

# The setting that has a file too large for one invocation split and run by Step Functions (the
# fan-out of core/batch/fanout.py); a run that cannot finish before Lambda's time limit names it.
FANOUT_SETTING = "BATCH_FANOUT_STATE_MACHINE_ARN"

__all__ = ["BatchFailed", "handle"]


class BatchFailed(Exception):
    """Raised for a direct or EventBridge invocation in which an input failed, so that Lambda
    retries it. The message names each failed input and why; nothing else (no data, no secret)."""


def handle(app: LambdaApp, event: Any, context: Any) -> dict[str, Any]:
    invocation = Invocation(context)
    with invocation.log_context():
        warmup = warmup_source(event, context)
        if warmup is not None:
            return app.warm_up(warmup, invocation)
        delivery = storage_delivery(event)
        if delivery is None:
            results = [_unrecognised(Unrecognised(
                f"batch(event, context) takes S3 object events (direct, via SQS, via EventBridge "
                f"'Object Created'); it received {describe_event(event)}"
            ), "none")]
            via = "none"
        else:
            via = delivery.via
            deadline = _deadline(context)
            results = [_one(app, piece, via, deadline) for piece in delivery.pieces]

        answer: dict[str, Any] = {"results": results}
        failed = [r for r in results if r["status"] == "failed" and r["retry"]]
        if via == VIA_SQS:
            failing_ids = dict.fromkeys(r["message_id"] for r in failed if r.get("message_id"))
            answer = {"batchItemFailures": [{"itemIdentifier": m} for m in failing_ids], **answer}
        app.metrics.emit(
            latency_ms=(time.perf_counter() - invocation.started) * 1000,
            rows=sum(r.get("rows_predicted", 0) for r in results),
            cold_start=invocation.cold_start,
            model_load_ms=app.unreported_load_ms(),
            counts=_counts(app, results),
            properties={"function_request_id": invocation.request_id, "source": f"batch-{via}", "inputs": len(results)},
        )
        if failed and via != VIA_SQS:
            raise BatchFailed(
                f"{len(failed)} of {len(results)} input(s) failed; Lambda retries the event: "
                + "; ".join(_naming_input(r) for r in failed)
            )
        return answer


def _counts(app: LambdaApp, results: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"RowsFailed": sum(r.get("rows_failed", 0) for r in results),
              "InputsFailed": sum(r["status"] == "failed" for r in results)}
    if app.state_machine_arn is not None:  # only where fan-out is deployed: the other lines stay as they were
        counts["InputsFannedOut"] = sum(r["status"] == "fanned_out" for r in results)
    return counts


def _deadline(context: Any) -> Any:
    """Lambda's time limit, as core asks for it (core/batch/deadline.py); None for a context
    without one (a test's, a local runner's)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    from core.batch.deadline import Deadline

    return Deadline(lambda: remaining() / 1000.0, FANOUT_SETTING)


def _one(app: LambdaApp, piece: Any, via: str, deadline: Any = None) -> dict[str, Any]:
    if isinstance(piece, Unrecognised):
        if piece.test_event:
            return _record("skipped", via, piece.message_id, reason=piece.reason)
        return _unrecognised(piece, via)
    notice: ObjectNotice = piece
    shown = notice.uri.display
    if notice.skip_reason is not None:
        return _record(
            "skipped", via, notice.message_id, input=shown, event_name=notice.event_name, reason=notice.skip_reason
        )
    from core.batch.triggered import settle_created_object  # the engine on first use, not at init

    service = app.service
    common = {"input": shown, "event_name": notice.event_name,
              "version": notice.version.describe() if notice.version is not None else None}
    try:
        settled = settle_created_object(notice.uri, service.model, service.settings, notice.version, deadline,
                                        orchestrator=app.orchestrator())
    except Exception:  # a bug: the trace goes to the log only
        logger.exception("unhandled error in the batch handler", extra={"fields": {"input": shown}})
        return _record(
            "failed", via, notice.message_id, **common, retry=True,
            error={"code": "internal_error", "message": f"{shown}: an internal error occurred; it was logged"},
        )
    if settled.status == "skipped":
        return _record("skipped", via, notice.message_id, **common, reason=settled.reason)
    if settled.status == "fanned_out":
        return _record("fanned_out", via, notice.message_id, **common, execution=settled.execution)
    if settled.status == "failed":
        error = settled.error
        assert error is not None, "a failed settlement carries its error"
        return _record("failed", via, notice.message_id, **common, retry=settled.retry,
                       error={"code": error.code, "message": error.message})
    result = settled.result
    assert result is not None, "a predicted settlement carries its result"
    return _record(
        "predicted", via, notice.message_id, **common,
        rows_predicted=result.rows_predicted, rows_failed=result.rows_failed,
        predictions=result.predictions_uri, errors=result.errors_uri, input_error=result.input_error,
    )


def _unrecognised(piece: Unrecognised, via: str) -> dict[str, Any]:
    return _record("unrecognised", via, piece.message_id, reason=piece.reason)


def _record(status: str, via: str, message_id: str | None, **details: Any) -> dict[str, Any]:
    """One result, logged as one line (INFO; WARNING when unrecognised; ERROR when failed)."""
    result: dict[str, Any] = {"status": status}
    if message_id:
        result["message_id"] = message_id
    result.update((k, v) for k, v in details.items() if v is not None)
    level = {"failed": logging.ERROR, "unrecognised": logging.WARNING}.get(status, logging.INFO)
    fields = {"trigger": via, **result}
    error = fields.pop("error", None)
    if error:  # "message" is the log line's own field
        fields.update(error_code=error["code"], reason=error["message"])
    logger.log(level, "batch record", extra={"fields": fields})
    return result


def _naming_input(result: dict[str, Any]) -> str:
    message = result["error"]["message"]
    shown = result.get("input", "")
    return message if message.startswith(shown) else f"{shown}: {message}"

