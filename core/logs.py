"""Structured logs: one JSON object per line, on the ``serverless_ml`` logger.

Fields a record carries go in ``extra={"fields": {...}}``; the formatter merges them into the
line. Adapters may swap the handler (Azure's and Cloud Logging's conventions differ) but keep
the fields. A request body is never logged.

    {"level": "INFO", "logger": "serverless_ml.http", "message": "request", "request_id": "9f0c...",
     "method": "POST", "route": "/predict", "status": 200, "rows": 1, "latency_ms": 0.41,
     "cold_start": false, "time": "2026-11-24T13:40:00.123Z"}
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

LOGGER_NAME = "serverless_ml"

# Fields every line logged during one invocation carries (the provider's invocation id, say);
# adapters set them with log_context(), the formatter merges them. No default: get({}) hands each
# reader a fresh empty dict, so none can change a shared one.
_context: ContextVar[dict[str, Any]] = ContextVar("serverless_ml_log_context")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line written inside the ``with`` block (this thread or task)."""
    token = _context.set({**_context.get({}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def context_fields() -> dict[str, Any]:
    """The fields of the current log context, for handlers other than JsonFormatter."""
    return _context.get({})


class JsonFormatter(logging.Formatter):
    """One JSON object per record. Subclasses adapt the fields (a provider's names) in ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), default=str, ensure_ascii=False)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _context.get({})
        if bound:
            line.update(bound)
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            # kept in the log (for the operator), never in an answer
            line["exception"] = self.formatException(record.exc_info)
        return line


def configure(
    level: str = "INFO", stream: Any | None = None, formatter: logging.Formatter | None = None
) -> logging.Logger:
    """Give the package logger one JSON handler (idempotent) and return the logger.

    ``formatter`` replaces JsonFormatter, also on a handler configured earlier: an adapter
    installs its provider's line shape once, before anything is logged.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if getattr(h, "_serverless_ml", False)), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler._serverless_ml = True  # type: ignore[attr-defined]
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    if formatter is not None:
        handler.setFormatter(formatter)
    return logger
