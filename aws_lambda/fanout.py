"""The steps of the fan-out state machine (infra/aws/fanout.asl.json.tftpl): thin Lambda entry
points over core/batch/fanout.py's plan / run_part / merge, whose docstring is the JSON contract.

    fanout_plan   {"input": "s3://...", "version": {...} | null}
                  -> {"status": "fan_out", "plan": <the plan without its parts>, "parts": {"bucket", "key", "count"}}
                  |  {"status": "whole", "request": {...}, "reason": "..."}   (gzip, .json, one part)
                  |  {"status": "skipped", "reason": "..."}                   (not an input, superseded, deleted)
    fanout_part   one part (an item of the parts list) -> its result;  {"whole": request} -> the run's result
    fanout_merge  {"plan", "parts", "results"} -> the batch result (run_batch's), outputs published

**The parts go through S3, never through the state.** Step Functions carries at most 256 KB
between states, and a part is about 600 bytes of JSON (the input's URI, its version, its range):
a few hundred parts would not fit. So plan always writes the parts, as one JSON array, to
``<output prefix>_parts/<input key>/<run>/parts.json`` (beside the part outputs: under the output
prefix, so no storage event of it is taken as an input) and the Distributed Map reads it with an
S3 ItemReader; merge reads it again and removes it. One path for every size, rather than a Choice
between an inline list and S3 that would double what is tested for one S3 request saved.

**The results do go through the state**, as the Map's output into merge: about 150 bytes each
(up to ~400 for a superseded part's reason). So a plan has at most :data:`MAX_PARTS` parts: a
larger file gets larger parts (logged), rather than an execution that fails on its data limit.

**Errors.** What a retry may cure (storage, the model, a throttled invocation) is raised: each
task's Retry runs the step again with backoff, a part alone. What never succeeds is not retried:
a superseded or deleted input ends ``skipped`` (returned, the execution succeeds, nothing is
published); a wrong setting or a request that is not a step's input raises :class:`StepNotRetried`,
which every Retry of the definition lists first with ``MaxAttempts: 0``, so the execution fails
at once, naming the cause. A part's outputs stay until merge removes them, so a failed execution
can be redriven (only its failed parts run again); the bucket's lifecycle rule on ``_parts/``
removes what a run that never merged left.

Each step writes one ``fanout step`` log line and one EMF line (aws_lambda/metrics.py), as the
batch handler does, with ``source`` ``fanout-plan``, ``fanout-part`` or ``fanout-merge``.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda.app import Invocation, LambdaApp
from core.errors import ObjectNotFound, ServerlessMLError, SettingsError
from core.storage import StorageURI, parse_uri, store_for

logger = logging.getLogger("serverless_ml.aws_lambda.fanout")

__all__ = ["MAX_PARTS", "PARTS_LIST", "StepNotRetried", "merge_step", "part_step", "plan_step"]

PARTS_LIST = "parts.json"
# 500 results of at most ~400 bytes stay under Step Functions' 256 KB between states
MAX_PARTS = 500
# grains scanned at once by the plan step: S3 reads overlap, the scanning itself holds the GIL
_SCAN_THREADS = 4


class StepNotRetried(Exception):
    """A step that will never succeed, however often it runs: the definition's Retry lists this
    name first with MaxAttempts 0. The message says what was wrong and what was expected."""


# --- the steps ----------------------------------------------------------------------------------


def plan_step(app: LambdaApp, event: Any, context: Any) -> dict[str, Any]:
    def step() -> tuple[dict[str, Any], dict[str, Any]]:
        from core.batch import fanout

        source, version = _request(event)
        settings = app.service.settings
        try:
            surveyed = fanout.survey(source, settings, version=version)
        except ObjectNotFound as exc:
            if exc.uri != source.display:  # the output bucket, say: a setting to fix, retried as the trigger does
                raise
            reason = f"{exc.message} (deleted after the execution was started?)"
            return {"status": "skipped", "reason": reason}, {"input": source.display}
        if surveyed["size"] and surveyed["part_bytes"] and surveyed["size"] > MAX_PARTS * surveyed["part_bytes"]:
            larger = -(-surveyed["size"] // MAX_PARTS)
            logger.info("fanout parts enlarged", extra={"fields": {
                "input": source.display, "part_bytes": larger, "reason": f"at most {MAX_PARTS} parts per execution"}})
            surveyed = fanout.survey(source, settings, version=version, part_bytes=larger, part_rows=0)
        shown = {"input": source.display}
        if surveyed["skipped"]:
            return {"status": "skipped", "reason": surveyed["skipped"]}, shown
        if surveyed["whole"]:
            request = {"input": surveyed["input"], "version": surveyed["version"]}
            return {"status": "whole", "request": request, "reason": surveyed["whole"]}, shown
        with ThreadPoolExecutor(_SCAN_THREADS) as pool:
            scans = list(pool.map(fanout.scan_grain, surveyed["grains"]))
            made = fanout.cut(surveyed, scans, locate=pool.map)
        parts = made.pop("parts")
        where = parts_list_uri(made)
        store_for(where, settings.storage_timeout_seconds).write_bytes(
            where, json.dumps(parts, separators=(",", ":")).encode())
        return ({"status": "fan_out", "plan": made, "parts": {"bucket": where.bucket, "key": where.key,
                                                              "count": len(parts)}},
                {**shown, "parts": len(parts)})

    return _step(app, "plan", event, context, step)


def part_step(app: LambdaApp, event: Any, context: Any) -> dict[str, Any]:
    def step() -> tuple[dict[str, Any], dict[str, Any]]:
        settings = app.service.settings
        if isinstance(event, dict) and "whole" in event:  # gzip, .json: one run, as without fan-out
            return _whole(app, event["whole"])
        from core.batch import fanout

        if not isinstance(event, dict) or not {"input", "index", "start", "end", "run"} <= set(event):
            raise StepNotRetried(f"fanout_part takes one part of a plan (core/batch/fanout.py); it received {_shown(event)}")
        result = fanout.run_part(event, app.service.model, settings)
        return result, {"input": parse_uri(event["input"]).display, "part": event["index"], **_counted(result)}

    return _step(app, "part", event, context, step)


def merge_step(app: LambdaApp, event: Any, context: Any) -> dict[str, Any]:
    def step() -> tuple[dict[str, Any], dict[str, Any]]:
        from core.batch import fanout

        if not isinstance(event, dict) or not {"plan", "parts", "results"} <= set(event):
            raise StepNotRetried(f"fanout_merge takes {{plan, parts, results}} (the Map's state); it received {_shown(event)}")
        settings = app.service.settings
        plan, where = dict(event["plan"]), parts_list_uri(event["plan"])
        store = store_for(where, settings.storage_timeout_seconds)
        plan["parts"] = json.loads(store.read_bytes(where))
        try:
            result = fanout.merge(plan, event["results"], settings)
        except ValueError as exc:  # a result missing: the same state gives the same answer
            raise StepNotRetried(str(exc)) from None
        store.delete(where)
        status = "skipped" if result["skipped"] else "predicted"
        return {"status": status, **result}, {"input": result["input"], "parts": len(plan["parts"]), **_counted(result)}

    return _step(app, "merge", event, context, step)


# --- shared -------------------------------------------------------------------------------------


def _whole(app: LambdaApp, request: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run over the file, settled by core's policy as the batch trigger settles it."""
    from core.batch.triggered import settle_created_object

    source, version = _request(request)
    settled = settle_created_object(source, app.service.model, app.service.settings, version)
    shown = {"input": source.display}
    if settled.status == "failed":
        assert settled.error is not None, "a failed settlement carries its error"
        if settled.retry:
            raise settled.error
        raise StepNotRetried(settled.error.message)
    if settled.result is None:  # skipped before the engine ran: deleted, not an input
        return {"status": "skipped", "input": source.display, "skipped": settled.reason}, shown
    result = settled.result.as_dict()
    return {"status": settled.status, **result}, {**shown, **_counted(result)}


def parts_list_uri(plan: dict[str, Any]) -> StorageURI:
    """Where plan writes the parts list: beside the part outputs of core/batch/fanout.py."""
    from core.batch import fanout

    return fanout.run_object(plan, PARTS_LIST)


def _request(request: Any) -> tuple[StorageURI, Any]:
    from core.batch.fanout import version_from

    if not isinstance(request, dict) or not isinstance(request.get("input"), str):
        raise StepNotRetried(
            f"the fan-out takes {{\"input\": \"s3://bucket/key\", \"version\": {{...}} or null}}; it received {_shown(request)}")
    try:
        source = parse_uri(request["input"])
        version = version_from(request.get("version"))
    except (ServerlessMLError, TypeError, ValueError) as exc:
        raise StepNotRetried(f"the fan-out's input {request['input']!r} cannot be read as a batch input: {exc}") from None
    return source, version


def _counted(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result[key] for key in ("rows_read", "rows_predicted", "rows_failed", "skipped") if result.get(key)}


def _shown(event: Any) -> str:
    text = json.dumps(event, default=str) if isinstance(event, dict | list) else repr(event)
    return text if len(text) <= 200 else text[:197] + "..."


def _step(app: LambdaApp, name: str, event: Any, context: Any, step: Any) -> dict[str, Any]:
    """Run one step: its log line and EMF line; a ServerlessMLError a retry may cure raised as it
    is (Step Functions retries it), a wrong setting as StepNotRetried."""
    invocation = Invocation(context)
    with invocation.log_context():
        status, fields, answer = "failed", {}, None
        try:
            answer, fields = step()
            status = answer.get("status") or ("skipped" if answer.get("skipped") else "predicted")
            return answer
        except SettingsError as exc:
            fields = {"error_code": exc.code, "reason": exc.message, "retry": False}
            raise StepNotRetried(exc.message) from None
        except StepNotRetried as exc:
            fields = {"error_code": "not_retried", "reason": str(exc), "retry": False}
            raise
        except ServerlessMLError as exc:
            fields = {"error_code": exc.code, "reason": exc.message, "retry": True}
            raise
        finally:
            level = logging.ERROR if status == "failed" else logging.INFO
            logger.log(level, "fanout step", extra={"fields": {"step": name, "status": status, **fields}})
            rows = answer.get("rows_predicted", 0) if isinstance(answer, dict) else 0
            app.metrics.emit(
                latency_ms=(time.perf_counter() - invocation.started) * 1000,
                rows=rows,
                cold_start=invocation.cold_start,
                model_load_ms=app.unreported_load_ms(),
                counts={"RowsFailed": answer.get("rows_failed", 0) if isinstance(answer, dict) else 0,
                        "StepsFailed": int(status == "failed")},
                properties={"function_request_id": invocation.request_id, "source": f"fanout-{name}",
                            "input": fields.get("input"), "part": fields.get("part")},
            )
