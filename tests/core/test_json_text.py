"""core.json_text writes exactly what the json module writes, whichever encoder it used."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import random
import struct
import sys
import uuid

import pytest

from core import json_text
from core.installed import orjson_module


def spaced_reference(value):
    return json.dumps(value, default=str, ensure_ascii=False)


def compact_reference(value):
    return json.dumps(value, separators=(",", ":"), default=str)


def _floats(count: int) -> list[float]:
    rng = random.Random(0)
    values = [0.0, -0.0, 1e-4, -1e-4, 9.99e-5, 1e-5, 5e-324, 1e15, 1e16, 1.5e16, 1e22, sys.float_info.max, 1 / 3]
    for _ in range(count):
        values.append(rng.random() * 10 ** rng.uniform(-30, 30))
        values.append(struct.unpack("d", rng.getrandbits(64).to_bytes(8, "little"))[0])
    return values


class Kind(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int


class Text(str):
    pass


ODD_VALUES = [
    float("nan"), float("inf"), -float("inf"), 1e-05, 2**64, -(2**63) - 1, "lone \ud800 surrogate",
    Kind.RED, Point(1), Text("sub"), True, None, datetime.datetime(2026, 1, 2, 3, 4, 5), uuid.UUID(int=7),
    [1, "a", None], {"nested": {"deep": [1.5, 1e-7]}}, (1, 2), b"bytes",
]


@pytest.mark.skipif(orjson_module() is None, reason="the fast path needs orjson")
def test_every_code_point_is_written_as_json_writes_it():
    # chunks of 256 code points per string, every one of them, surrogates excepted
    points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for start in range(0, len(points), 256):
        text = "".join(map(chr, points[start:start + 256]))
        line = {"message": text, "n": start}
        assert json_text.spaced(line) == spaced_reference(line)
        document = {"_aws": {"Timestamp": 1}, "service": text}
        assert json_text.compact_ascii(document, checked=[text]) == compact_reference(document)


def test_floats_are_written_as_json_writes_them():
    for value in _floats(20_000):
        line = {"latency_ms": value}
        assert json_text.spaced(line) == spaced_reference(line)
        document = {"_aws": {}, "Latency": value}
        assert json_text.compact_ascii(document, checked=[value]) == compact_reference(document)


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_values_orjson_writes_otherwise_take_the_standard_encoder(value):
    line = {"time": "2026-01-01T00:00:00.000Z", "field": value}
    assert json_text.spaced(line) == spaced_reference(line)
    document = {"_aws": {"Timestamp": 1}, "field": value}
    assert json_text.compact_ascii(document, checked=[value]) == compact_reference(document)


def test_keys_that_are_not_strings_and_empty_objects():
    assert json_text.spaced({1: "a", None: 2}) == spaced_reference({1: "a", None: 2})
    assert json_text.spaced({}) == "{}"
    assert json_text.compact_ascii({}, checked=[]) == "{}"


def test_a_request_line_and_an_emf_line_as_written():
    line = {"time": "2026-01-01T00:00:00.000Z", "level": "INFO", "logger": "serverless_ml.http",
            "message": "request", "request_id": "abc", "status": 200, "rows": 1, "latency_ms": 0.412,
            "cold_start": False, "error_code": None}
    assert json_text.spaced(line) == spaced_reference(line)
    document = {"_aws": {"Timestamp": 1764000000000, "CloudWatchMetrics": [{"Namespace": "serverless-ml",
                "Dimensions": [["service"]], "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}]}]},
                "service": "fn", "Latency": 412.5, "route": "/predict", "status": 200}
    checked = [v for k, v in document.items() if k != "_aws"]
    assert json_text.compact_ascii(document, checked=checked) == compact_reference(document)


@pytest.mark.skipif(orjson_module() is None, reason="the fast path needs orjson")
def test_plain_lines_do_not_reach_the_standard_encoder(monkeypatch):
    monkeypatch.setattr(json_text, "_SPACED", None)
    monkeypatch.setattr(json_text, "_COMPACT_ASCII", None)
    line = {"message": "request", "status": 200, "latency_ms": 0.5, "cold_start": True, "error_code": None}
    assert json_text.spaced(line) == spaced_reference(line)
    document = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": []}, "service": "fn", "Latency": 0.5}
    assert json_text.compact_ascii(document, checked=["fn", 0.5]) == compact_reference(document)
