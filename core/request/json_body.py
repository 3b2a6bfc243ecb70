"""From the raw body bytes to a JSON object, with the limits enforced before parsing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from core.errors import InvalidValue, MalformedJSON, PayloadTooLarge, UnsupportedMediaType
from core.installed import orjson_module

EXAMPLE_BODY = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'


class _NonFiniteConstant(ValueError):
    pass


def _reject_constant(name: str) -> float:
    # json accepts the non-standard NaN, Infinity and -Infinity literals by default.
    raise _NonFiniteConstant(name)


# Built once: json.loads with keyword arguments builds a new decoder on every call (~4 us).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def check_content_type(content_type: str | None) -> None:
    """Accept a missing Content-Type or any JSON media type (``application/json``, ``*+json``)."""
    if not content_type:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("application/json", "text/json") or media_type.endswith("+json"):
        return
    raise UnsupportedMediaType(
        f"Content-Type {_short(media_type)} is not supported; expected application/json"
    )


def decode_json_object(body: bytes, max_body_bytes: int) -> dict[str, Any]:
    """Parse ``body`` as a UTF-8 JSON object; raise a RequestError saying what is wrong."""
    if len(body) > max_body_bytes:
        raise PayloadTooLarge(
            f"the body has {len(body)} bytes; at most {max_body_bytes} bytes are accepted (MAX_BODY_BYTES); "
            "split the rows over several requests or use batch prediction"
        )
    if not body or body.isspace():  # not strip(): that copies the body
        raise MalformedJSON(f"the body is empty; expected a JSON object such as {EXAMPLE_BODY}")
    fast = _fast_loads() if len(body) <= FAST_PARSE_MAX_BYTES else None
    if fast is not None:
        try:
            payload = fast(body)
        except ValueError:
            pass  # the standard parser below decides, and words the error
        else:
            if type(payload) is dict:
                return payload
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedJSON(
            f"the body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at position {exc.start}); "
            "expected JSON encoded as UTF-8"
        ) from None
    try:
        payload = _DECODER.decode(text)
    except _NonFiniteConstant as exc:
        raise MalformedJSON(f"the body contains {exc}, which is not a number in JSON; expected finite numbers") from None
    except json.JSONDecodeError as exc:
        raise MalformedJSON(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
            f"expected a JSON object such as {EXAMPLE_BODY}"
        ) from None
    except RecursionError:
        raise MalformedJSON("the body is nested too deeply; expected rows of numbers") from None
    except ValueError:
        # int() refuses a literal of more digits than sys.get_int_max_str_digits() (4300 by
        # default); any such integer is far beyond the float range a feature value must be in
        raise InvalidValue(
            f"the body contains an integer of more than {sys.get_int_max_str_digits()} digits, "
            "beyond the 64-bit float range; expected finite numbers"
        ) from None
    if not isinstance(payload, dict):
        raise MalformedJSON(
            f"the body is a JSON {json_type(payload)}; expected a JSON object such as {EXAMPLE_BODY}"
        )
    return payload


_ORJSON: list = []  # [loads or None], looked up on the first body
# orjson's peak memory is about 15x the body for a long flat array (91 MiB for 6 MiB of numbers),
# the json module's about 5x: larger bodies take the json module, whose time is then the smaller
# share of a request anyway (predicting 100k rows), and a function's memory stays bounded.
FAST_PARSE_MAX_BYTES = 1 << 20


def _fast_loads() -> Callable[[bytes], Any] | None:
    """orjson's loads when it is installed (10x the standard parser on a body of rows; imported
    on the first body, ~1 ms), else None. What it refuses (NaN literals, numbers that overflow a
    double, a BOM, lone surrogates) goes to the standard parser, so the accepted bodies and every
    error message are the standard parser's; the one difference is that an integer beyond 64 bits
    arrives as the float it is closest to, which is the value a model is given anyway."""
    orjson = orjson_module()
    return None if orjson is None else orjson.loads


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
