"""Metrics in CloudWatch Embedded Metric Format (EMF): one JSON line on stdout per invocation.

CloudWatch Logs turns such a line into metrics with no API call and no extra latency. One line,
as written for a first ``POST /predict``::

    {"_aws": {"Timestamp": 1764000000000, "CloudWatchMetrics": [{"Namespace": "serverless-ml",
       "Dimensions": [["service"]], "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"},
       {"Name": "Rows", "Unit": "Count"}, {"Name": "ColdStart", "Unit": "Count"},
       {"Name": "ModelLoadTime", "Unit": "Milliseconds"}]}]},
     "service": "my-function", "Latency": 412.5, "Rows": 2, "ColdStart": 1, "ModelLoadTime": 385.1,
     "function_request_id": "8f5c...", "source": "http-api", "route": "/predict", "status": 200}

``Latency`` is the handler's time for the invocation, ``Rows`` the rows predicted, ``ColdStart``
is 1 on an instance's first invocation (absent otherwise) and ``ModelLoadTime`` (read + deserialise)
appears once, on the invocation during which — or before which, at init or in a SnapStart hook —
the model was loaded. The status, route and request id are properties, searchable in Logs
Insights, not dimensions: a dimension per value would make a metric per value.

Written by hand rather than with aws-lambda-powertools' ``Metrics``: importing Powertools' Logger
and Metrics costs about 16 ms of every cold start (measured; see aws_lambda/README.md), and the
format is a few keys of JSON.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

from core import json_text
from core.errors import SettingsError

__all__ = ["DEFAULT_NAMESPACE", "EmfMetrics", "namespace_from_env"]

DEFAULT_NAMESPACE = "serverless-ml"
_NAMESPACE = re.compile(r"[0-9A-Za-z.\-_/#: ]{1,255}")

def namespace_from_env(environ: Mapping[str, str]) -> str:
    """``METRICS_NAMESPACE``, validated as CloudWatch requires; raises SettingsError."""
    value = (environ.get("METRICS_NAMESPACE") or "").strip()
    if not value:
        return DEFAULT_NAMESPACE
    if not _NAMESPACE.fullmatch(value) or value.startswith("AWS/"):
        shown = repr(value if len(value) <= 80 else value[:77] + "...")
        raise SettingsError(
            f"METRICS_NAMESPACE={shown} is not allowed; expected 1-255 characters of letters, digits, "
            "'.', '-', '_', '/', '#', ':' or space, not starting with 'AWS/'"
        )
    return value


class EmfMetrics:
    """Writes one EMF line per invocation. Thread-safe (one write per line)."""

    def __init__(self, namespace: str, service: str, stream: TextIO | None = None) -> None:
        self.namespace = namespace
        self.service = service
        self._stream = stream
        self._lock = threading.Lock()

    def emit(
        self,
        *,
        latency_ms: float | None = None,
        rows: int | None = None,
        cold_start: bool = False,
        model_load_ms: float | None = None,
        counts: Mapping[str, int] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Write the line (if there is any metric to write) and return it. ``counts``: further
        metrics of unit Count by name (the batch handler's ``RowsFailed``, ``InputsFailed``)."""
        values: list[tuple[str, str, float]] = []
        if latency_ms is not None:
            values.append(("Latency", "Milliseconds", round(latency_ms, 3)))
        if rows is not None:
            values.append(("Rows", "Count", rows))
        if cold_start:
            values.append(("ColdStart", "Count", 1))
        if model_load_ms is not None:
            values.append(("ModelLoadTime", "Milliseconds", round(model_load_ms, 3)))
        for name, count in (counts or {}).items():
            values.append((name, "Count", count))
        if not values:
            return None
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in values],
                    }
                ],
            },
            "service": self.service,
        }
        for name, _, value in values:
            document[name] = value
        for key, value in (properties or {}).items():
            if value is not None and key not in document:
                document[key] = value
        # the same text as json.dumps(document, separators=(",", ":"), default=str), in a tenth of
        # the time where orjson writes the same; "_aws" holds only this class's strings and ints
        line = json_text.compact_ascii(document, checked=[v for k, v in document.items() if k != "_aws"])
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()
        return line
