"""What every answer to a malformed request must be: the judge the fuzz tests share.

An answer passes when its status is below 500 and one the API documents, its body carries no
stack trace, no server path and no secret, and an error body is exactly the documented Error
schema of core/http/openapi.json, with a ``code`` that belongs to its status and the same
``request_id`` as the ``x-request-id`` header. The other protocols answer errors in their own
documented shapes (``OipError`` for a path under /v2, ``MlflowError`` on /invocations), never
carrying a request id in the body, only the header; a binary infer answer is
``application/octet-stream`` whose first ``Inference-Header-Content-Length`` bytes are the JSON
``OipInferResponse``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import jsonschema

from core import errors

REPO = Path(__file__).resolve().parents[2]
OPENAPI = json.loads((REPO / "core" / "http" / "openapi.json").read_text())
# the document itself is the root, so that the Error schema's $refs resolve inside it
ERROR_SCHEMA = {**OPENAPI, "$ref": "#/components/schemas/Error"}
_ERROR_VALIDATOR = jsonschema.Draft202012Validator(ERROR_SCHEMA)
_VALIDATORS = {name: jsonschema.Draft202012Validator({**OPENAPI, "$ref": f"#/components/schemas/{name}"})
               for name in ("OipError", "MlflowError", "OipInferResponse", "MlflowPredictions")}
# statuses a request can earn; 5xx never (the model here is healthy)
ANSWERABLE = {200, 204, 400, 404, 405, 413, 415}
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\bat 0x[0-9a-f]{6,}")
SERVER_PATH = re.compile(r"(?<![A-Za-z0-9])/(?:tmp|root|home|usr|opt|var|work|srv|proc|etc)/|site-packages|\.py\b")


def _codes_by_status() -> dict[str, int]:
    found, todo = {}, [errors.ServerlessMLError]
    while todo:
        kind = todo.pop()
        found[kind.code] = kind.status
        todo.extend(kind.__subclasses__())
    return found


STATUS_OF_CODE = _codes_by_status()


def problems(
    method: str, path: str, status: int, headers: dict[str, str], body: bytes, forbidden: Iterable[str] = ()
) -> list[str]:
    """Everything wrong with one answer (empty when it is right). ``headers`` lower-case names."""
    found = []
    if status >= 500:
        found.append(f"status {status}")
    elif status not in ANSWERABLE:
        found.append(f"undocumented status {status}")
    text = body.decode("utf-8", "replace")
    echoed = headers.get("x-request-id")
    if echoed:
        # the client's own X-Request-Id comes back in the body: an id such as 'main.py' is the
        # client's word, not a server path (ids cannot hold '/', so no path hides in one)
        text = text.replace(f'"request_id":"{echoed}"', '"request_id":""')
    found += _leaks(text, forbidden)
    if method.upper() == "HEAD" or status == 204:
        if body:
            found.append(f"a body on a {method} {status} answer")
        return found
    if "x-request-id" not in headers:
        found.append("no x-request-id header")
    media_type = headers.get("content-type", "").split(";")[0]
    if media_type == "application/octet-stream" and status == 200 and "/v2/" in path:
        return found + _binary_answer_problems(headers, body)
    if status == 200 and body == b"\n" and "ping" in path:  # MLflow's /ping: a newline, not a JSON document
        return found
    try:
        answer = json.loads(body)
    except ValueError:
        return found + [f"a body that is not JSON: {text[:200]!r}"]
    if media_type != "application/json":
        found.append(f"content-type {headers.get('content-type')!r}")
    if status >= 400:
        found += _error_answer_problems(status, headers, answer, path)
    elif status == 200:
        found += _success_problems(path, answer)
    return found


def _success_problems(path: str, answer: object) -> list[str]:
    route = path.rstrip("/")
    if route == "/predict":
        if not (isinstance(answer, dict) and isinstance(answer.get("predictions"), list) and answer["predictions"]):
            return ["a 200 without predictions"]
    elif route.endswith("/infer"):
        return [f"the infer answer breaks OipInferResponse: {e.message[:200]}"
                for e in _VALIDATORS["OipInferResponse"].iter_errors(answer)]
    elif route == "/invocations":
        return [f"the answer breaks MlflowPredictions: {e.message[:200]}"
                for e in _VALIDATORS["MlflowPredictions"].iter_errors(answer)]
    return []


def _binary_answer_problems(headers: dict[str, str], body: bytes) -> list[str]:
    """The binary-data extension: a JSON header of the declared length, then exactly the bytes its
    binary outputs declare."""
    length = headers.get("inference-header-content-length", "")
    if not length.isdigit() or int(length) > len(body):
        return [f"inference-header-content-length {length!r} for a body of {len(body)} bytes"]
    try:
        answer = json.loads(body[:int(length)])
    except ValueError:
        return ["the binary answer's JSON header is not JSON"]
    found = [f"the binary answer's header breaks OipInferResponse: {e.message[:200]}"
             for e in _VALIDATORS["OipInferResponse"].iter_errors(answer)]
    if not found:
        sizes = sum((o.get("parameters") or {}).get("binary_data_size", 0) for o in answer["outputs"])
        if int(length) + sizes != len(body):
            found.append(f"the binary outputs declare {sizes} bytes; the body has {len(body) - int(length)}")
    return found


def _leaks(text: str, forbidden: Iterable[str]) -> list[str]:
    """What a body shows that it must not: a stack trace, a server path, a secret."""
    found = []
    if TRACEBACK.search(text):
        found.append("a stack trace in the body")
    if SERVER_PATH.search(text):
        found.append(f"a server path in the body: {SERVER_PATH.search(text).group(0)!r}")
    for secret in forbidden:
        if secret and secret in text:
            found.append(f"a secret or environment value in the body: {secret[:12]}...")
    return found


def _error_answer_problems(status: int, headers: dict[str, str], answer: object, path: str = "") -> list[str]:
    """What is wrong with an error answer's JSON: its shape, its code, its request id."""
    # the protocols' own shapes, only where that protocol answers (a path that names it)
    protocol = "OipError" if "v2" in path.lower() else "MlflowError" if "invocations" in path.lower() else None
    if protocol is not None and isinstance(answer, dict) and "request_id" not in answer:
        return [f"the error body breaks {protocol}: {error.message[:200]}"
                for error in _VALIDATORS[protocol].iter_errors(answer)]
    found = []
    for error in _ERROR_VALIDATOR.iter_errors(answer):
        found.append(f"the error body breaks the Error schema: {error.message[:200]}")
    code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
    if code is not None and STATUS_OF_CODE.get(code) != status:
        found.append(f"code {code!r} with status {status}")
    if isinstance(answer, dict) and answer.get("request_id") != headers.get("x-request-id"):
        found.append("request_id differs from the x-request-id header")
    return found


def forbidden_values(environment: dict[str, str], *extra: str | None) -> list[str]:
    """Strings no answer may carry: the server's folders, and every environment value long enough
    to be recognisable (the settings a test gave the function, its secrets)."""
    values = {str(REPO), sys.prefix, *(v for v in extra if v)}
    values.update(v for v in environment.values() if len(v) >= 12 and not v.startswith("https://app.example"))
    return sorted(values)


def log_problems(lines: Iterable[str], forbidden: Iterable[str] = ()) -> list[str]:
    """A log may hold anything the operator needs, but no unhandled error and no secret."""
    found = []
    secrets = [s for s in forbidden if s]
    for number, line in enumerate(lines, 1):
        if "Traceback" in line or "unhandled error" in line or "Exception occurred" in line:
            found.append(f"log line {number}: {line[:300]}")
        for secret in secrets:
            if secret in line:
                found.append(f"log line {number} carries a secret: {secret[:12]}...")
    return found
