"""What every answer to a malformed request must be: the judge the fuzz tests share.

An answer passes when its status is below 500 and one the API documents, its body carries no
stack trace, no server path and no secret, and an error body is exactly the documented Error
schema of core/http/openapi.json, with a ``code`` that belongs to its status and the same
``request_id`` as the ``x-request-id`` header.
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
    try:
        answer = json.loads(body)
    except ValueError:
        return found + [f"a body that is not JSON: {text[:200]!r}"]
    if headers.get("content-type", "").split(";")[0] != "application/json":
        found.append(f"content-type {headers.get('content-type')!r}")
    if status >= 400:
        found += _error_answer_problems(status, headers, answer)
    elif status == 200 and path.rstrip("/") == "/predict":
        if not (isinstance(answer, dict) and isinstance(answer.get("predictions"), list) and answer["predictions"]):
            found.append("a 200 without predictions")
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


def _error_answer_problems(status: int, headers: dict[str, str], answer: object) -> list[str]:
    """What is wrong with an error answer's JSON: its shape, its code, its request id."""
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
