"""Core's answer in the shape each event source expects back from the function.

API Gateway REST (payload 1.0)::

    {"statusCode": 200, "headers": {"content-type": "application/json", ...},
     "body": "{\\"predictions\\": [...]}", "isBase64Encoded": false}

HTTP API (payload 2.0) and Function URLs take the same four keys. An ALB target also needs
``statusDescription`` (``"200 OK"``), and when the target group has multi-value headers turned on
(the request then came with ``multiValueHeaders``) the ALB reads only ``multiValueHeaders`` from
the answer, so the headers go there instead.

Bodies are JSON text; a body that is not UTF-8 would go out base64-encoded with
``isBase64Encoded: true``, which every source decodes before it reaches the client.
"""

from __future__ import annotations

import base64
from http import HTTPStatus
from typing import Any

from core.http import HttpResponse

from aws_lambda.events import AlbEvent, HttpEvent

__all__ = ["lambda_response"]


def lambda_response(event: HttpEvent, response: HttpResponse) -> dict[str, Any]:
    """The dict the function returns for ``event``, carrying ``response``."""
    body, is_base64 = _body_text(response.body)
    answer: dict[str, Any] = {"statusCode": response.status}
    if isinstance(event, AlbEvent):
        answer["statusDescription"] = _status_description(response.status)
        if event.has_multi_value_headers:
            answer["multiValueHeaders"] = {name: [value] for name, value in response.headers.items()}
        else:
            answer["headers"] = dict(response.headers)
    else:
        answer["headers"] = dict(response.headers)
    answer["body"] = body
    answer["isBase64Encoded"] = is_base64
    return answer


def _body_text(body: bytes) -> tuple[str, bool]:
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _status_description(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
