"""Structured logs: one JSON object per line, on the ``serverless_ml`` logger.

Fields a record carries go in ``extra={"fields": {...}}``; the formatter merges them into the
line. Adapters may swap the handler (Azure's and Cloud Logging's conventions differ) but keep
the fields. A request body is never logged.

    {"level": "INFO", "logger": "serverless_ml.http", "message": "request", "request_id": "9f0c...",
     "method": "POST", "route": "/predict", "status": 200, "rows": 1, "latency_ms": 0.41,
     "cold_start": false, "time": "2026-11-24T13:40:00.123Z"}
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar, Token
from typing import Any

from core import json_text

LOGGER_NAME = "serverless_ml"

# Fields every line logged during one invocation carries (the provider's invocation id, say);
# adapters set them with log_context(), the formatter merges them. No default: get({}) hands each
# reader a fresh empty dict, so none can change a shared one.
_context: ContextVar[dict[str, Any]] = ContextVar("serverless_ml_log_context")


class _Bound:
    """What log_context returns: a plain context manager rather than @contextmanager's generator,
    which cost three times as much, and a Lambda request enters two (the invocation's, core's)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields
        self._token: Token[dict[str, Any]] | None = None

    def __enter__(self) -> None:
        bound = _context.get(None)
        if bound and bound.items() >= self._fields.items():
            return  # already bound to these values (core's cold_start inside a Lambda invocation's)
        # the fields dict is this call's own (**fields), so it can be the context itself
        self._token = _context.set({**bound, **self._fields} if bound else self._fields)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _context.reset(self._token)
            self._token = None


def log_context(**fields: Any) -> _Bound:
    """Add ``fields`` to every log line written inside the ``with`` block (this thread or task)."""
    return _Bound(fields)


def context_fields() -> dict[str, Any]:
    """The fields of the current log context, for handlers other than JsonFormatter."""
    return _context.get({})


def log_info(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """``logger.info(message, extra={"fields": fields})``, the same record to the same handlers,
    for the line every request writes: the caller's file, line and function are read from its own
    frame, where logging's findCaller walks up the stack and gives every frame it passes a frame
    object (3 us of a 1-row request's 30 us of logging)."""
    if logger.isEnabledFor(logging.INFO):
        caller = sys._getframe(1)
        code = caller.f_code
        logger.handle(logger.makeRecord(
            logger.name, logging.INFO, code.co_filename, caller.f_lineno, message, (), None, code.co_name,
            {"fields": fields},
        ))


class JsonFormatter(logging.Formatter):
    """One JSON object per record. Subclasses adapt the fields (a provider's names) in ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        return json_text.spaced(self.fields(record))

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        line: dict[str, Any] = {
            "time": _utc_second(record.created) + f".{int(record.msecs):03d}Z",
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


_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text


def _utc_second(created: float) -> str:
    """``time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))``, formatted once per second."""
    global _second
    whole = int(created)  # gmtime() floors too: created is positive
    second = _second
    if second[0] != whole:
        second = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return second[1]


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
