"""Trace headers -> Cloud Logging fields, and core's line -> a Cloud Logging entry, for the header
forms the server tests do not send."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from gcp_function import gcp_logging
from gcp_function.gcp_logging import TraceContext

TRACE_ID = "105445aa7843bc8bf206b12000100000"


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"x-cloud-trace-context": f"{TRACE_ID}/1;o=1"}, TraceContext(TRACE_ID, "0000000000000001", True)),
        ({"x-cloud-trace-context": TRACE_ID}, TraceContext(TRACE_ID, None, None)),
        ({"x-cloud-trace-context": f"{TRACE_ID.upper()}/0"}, TraceContext(TRACE_ID, None, None)),
        ({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-00"}, TraceContext(TRACE_ID, "00f067aa0ba902b7", False)),
        (  # both: the W3C header wins, as in google-cloud-logging
            {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x-cloud-trace-context": "f" * 32 + "/2;o=0"},
            TraceContext(TRACE_ID, "00f067aa0ba902b7", True),
        ),
        ({"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"}, None),  # all-zero id is invalid
        ({"x-cloud-trace-context": "not-a-trace/1;o=1"}, None),
        ({"x-cloud-trace-context": f"{TRACE_ID}/{2**64};o=1"}, TraceContext(TRACE_ID, None, True)),
        ({}, None),
    ],
)
def test_trace_context_from_headers(headers, expected):
    assert TraceContext.from_headers(headers) == expected


def test_without_a_project_the_trace_id_is_kept_as_a_plain_field():
    fields = gcp_logging.invocation_fields(TraceContext(TRACE_ID, None, None), "exec-1", project=None)
    assert fields == {"trace_id": TRACE_ID, "logging.googleapis.com/labels": {"execution_id": "exec-1"}}


def test_formatter_writes_severity_and_keeps_core_fields():
    record = logging.LogRecord("serverless_ml.http", logging.WARNING, __file__, 1, "slow answer", None, None)
    record.fields = {"route": "/predict", "latency_ms": 812.5}
    entry = json.loads(gcp_logging.CloudLoggingFormatter().format(record))
    assert entry["severity"] == "WARNING" and "level" not in entry
    assert (entry["message"], entry["route"], entry["latency_ms"]) == ("slow answer", "/predict", 812.5)
    assert entry["time"].endswith("Z")


def test_formatter_keeps_an_exception_for_the_operator():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("serverless_ml.http", logging.ERROR, __file__, 1, "unhandled error", None, sys.exc_info())
    entry = json.loads(gcp_logging.CloudLoggingFormatter().format(record))
    assert entry["severity"] == "ERROR"
    assert "RuntimeError: boom" in entry["exception"]
