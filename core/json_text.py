"""JSON text exactly as the standard ``json`` module writes it, through orjson where that is the same.

Every request writes two JSON lines besides its answer (the log line and, on Lambda, the EMF
metrics line), and the standard encoder takes about ten times orjson's time for them. orjson writes
the same characters as ``json.dumps`` for exact ``str``, ``int``, ``bool`` and ``None`` values and
for floats of magnitude 1e-4 or more (below it ``repr`` writes ``1e-05`` where orjson writes
``0.00001``); tests/core/test_json_text.py compares the two over every code point and many floats.
What is not that (a subclass, NaN, a small float, an int beyond 64 bits, a lone surrogate, a key
that is not a string) takes the standard encoder, so the text never depends on which one ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from core.installed import orjson_module

_PLAIN = frozenset({str, int, bool, type(None)})
_INFINITY = float("inf")
# built once: json.dumps with keyword arguments builds an encoder per call
_SPACED = json.JSONEncoder(default=str, ensure_ascii=False)
_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"), default=str)


def plain(values: Iterable[Any]) -> bool:
    """Whether orjson writes each of ``values`` as the json module does."""
    for value in values:
        kind = type(value)
        if kind not in _PLAIN and not (kind is float and (1e-4 <= abs(value) < _INFINITY or value == 0.0)):
            return False
    return True


def spaced(line: dict[str, Any]) -> str:
    """``json.dumps(line, default=str, ensure_ascii=False)`` (a log line), character for character.

    orjson's 2-space indented form of a flat object differs from json.dumps' only by its line
    breaks and indents, which never occur inside a JSON string; nested values take the standard
    encoder."""
    orjson = orjson_module()
    if orjson is not None and plain(line.values()):
        try:
            text = orjson.dumps(line, option=orjson.OPT_INDENT_2).decode()
        except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a lone surrogate, a key
            pass
        else:
            return "{" + text[4:-2].replace(",\n  ", ", ") + "}"  # '{\n  "a": 1,\n  "b": 2\n}'
    return _SPACED.encode(line)


def compact_ascii(document: dict[str, Any], *, checked: Iterable[Any]) -> str:
    """``json.dumps(document, separators=(",", ":"), default=str)`` (an EMF line), character for
    character. ``checked``: the values of ``document`` that can be anything; the caller vouches for
    the rest (its own strings, ints and lists of them). The standard encoder escapes everything
    outside printable ASCII, orjson does not: a text that has any is written again by json."""
    orjson = orjson_module()
    if orjson is not None and plain(checked):
        try:
            # subclasses, dates and dataclasses raise instead of being written orjson's way
            passthrough = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            text = orjson.dumps(document, option=passthrough).decode()
        except TypeError:
            pass
        else:
            if text.isascii() and "\x7f" not in text:
                return text
    return _COMPACT_ASCII.encode(document)

