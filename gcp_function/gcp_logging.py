"""Core's JSON log lines in the shape Cloud Logging reads from a function's stderr.

Cloud Logging turns each JSON line into one entry and picks out a few special fields
(https://cloud.google.com/logging/docs/structured-logging): ``severity`` sets the entry's level,
``message`` its summary, ``logging.googleapis.com/trace`` links it to the request's trace (and so
to the request log), ``logging.googleapis.com/labels`` becomes its labels. A request line::

    {"time": "2026-11-24T13:40:00.123Z", "severity": "INFO", "logger": "serverless_ml.http",
     "message": "request", "request_id": "d3Gk9sKq2LmZ", "method": "POST", "route": "/predict",
     "status": 200, "rows": 1, "latency_ms": 0.41, "cold_start": false,
     "logging.googleapis.com/trace": "projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736",
     "logging.googleapis.com/spanId": "00f067aa0ba902b7",
     "logging.googleapis.com/trace_sampled": true,
     "logging.googleapis.com/labels": {"execution_id": "d3Gk9sKq2LmZ"}}

A trace is named ``projects/<PROJECT>/traces/<TRACE_ID>``; the project comes from
``GOOGLE_CLOUD_PROJECT``. Without it the trace id is logged as a plain ``trace_id`` field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.logs import JsonFormatter, configure

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_ID_FIELD = "logging.googleapis.com/spanId"
TRACE_SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"
LABELS_FIELD = "logging.googleapis.com/labels"

# W3C: version-traceid-parentid-flags, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# Google's: TRACE_ID/SPAN_ID;o=OPTIONS, the span id in decimal, e.g. 105445aa7843bc8bf206b12000100000/1;o=1
_CLOUD_TRACE_CONTEXT = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?")


@dataclass(frozen=True)
class TraceContext:
    """The trace a request belongs to, from its ``traceparent`` or ``X-Cloud-Trace-Context``."""

    trace_id: str
    span_id: str | None = None  # 16 hex digits, as Cloud Logging wants it
    sampled: bool | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> TraceContext | None:
        """The W3C ``traceparent`` first (as google-cloud-logging does), else Google's own header;
        None when neither is present or well formed (a trace header never fails a request)."""
        match = _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip())
        if match and match.group(1) != "0" * 32:
            return cls(match.group(1), match.group(2), bool(int(match.group(3), 16) & 1))
        match = _CLOUD_TRACE_CONTEXT.fullmatch(headers.get("x-cloud-trace-context", "").strip())
        if match and match.group(1).strip("0"):
            span = match.group(2)
            span_id = f"{int(span):016x}" if span and 0 < int(span) < 2**64 else None
            sampled = None if match.group(3) is None else match.group(3) == "1"
            return cls(match.group(1).lower(), span_id, sampled)
        return None


def invocation_fields(
    trace: TraceContext | None, execution_id: str | None, project: str | None
) -> dict[str, Any]:
    """The Cloud Logging fields every line of one invocation carries (for ``core.logs.log_context``)."""
    fields: dict[str, Any] = {}
    if trace is not None:
        if project:
            fields[TRACE_FIELD] = f"projects/{project}/traces/{trace.trace_id}"
        else:
            fields["trace_id"] = trace.trace_id
        if trace.span_id:
            fields[SPAN_ID_FIELD] = trace.span_id
        if trace.sampled is not None:
            fields[TRACE_SAMPLED_FIELD] = trace.sampled
    if execution_id:
        # the label Cloud Functions itself gives a function's log entries
        fields[LABELS_FIELD] = {"execution_id": execution_id}
    return fields


class CloudLoggingFormatter(JsonFormatter):
    """Core's line with ``severity`` in place of ``level``; every other field kept."""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {("severity" if name == "level" else name): value for name, value in super().fields(record).items()}


def install() -> logging.Logger:
    """Make core's log handler write Cloud Logging lines, before anything is logged."""
    # the level follows LOG_LEVEL once settings are read
    return configure(formatter=CloudLoggingFormatter())
