"""core.logs: the request line's record, log contexts, the time field."""

from __future__ import annotations

import json
import logging
import sys
import time

from core.logs import JsonFormatter, context_fields, log_context, log_info


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_log_info_makes_the_record_logger_info_makes():
    logger = logging.getLogger("serverless_ml.test_logs")
    handler = Records()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("request", extra={"fields": {"status": 200}})
        line = sys._getframe().f_lineno - 1
        log_info(logger, "request", {"status": 200})
        line_too = sys._getframe().f_lineno - 1
        logger.setLevel(logging.WARNING)
        log_info(logger, "request", {"status": 200})  # below the level: no record
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    expected, got = handler.records
    assert (expected.lineno, got.lineno) == (line, line_too)
    kept = ("name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "funcName",
            "exc_info", "stack_info", "fields", "process", "thread")
    assert {name: getattr(got, name) for name in kept} == {name: getattr(expected, name) for name in kept}
    assert got.funcName == "test_log_info_makes_the_record_logger_info_makes"


def test_a_context_inside_one_with_the_same_values_changes_nothing_and_others_merge():
    assert context_fields() == {}
    with log_context(function_request_id="r1", cold_start=True):
        with log_context(cold_start=True):
            assert context_fields() == {"function_request_id": "r1", "cold_start": True}
            with log_context(cold_start=False, route="/predict"):
                assert context_fields() == {"function_request_id": "r1", "cold_start": False, "route": "/predict"}
            assert context_fields() == {"function_request_id": "r1", "cold_start": True}
        assert context_fields() == {"function_request_id": "r1", "cold_start": True}
    assert context_fields() == {}


def test_the_time_field_is_the_records_utc_time_to_the_millisecond():
    formatter = JsonFormatter()
    for created in (1764000000.0, 1764000000.9994, 1764000001.5, 1764000001.5, 1764086399.999, 0.25):
        record = logging.LogRecord("serverless_ml", logging.INFO, __file__, 1, "m", (), None)
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(record.msecs):03d}Z"
        assert json.loads(formatter.format(record))["time"] == expected
