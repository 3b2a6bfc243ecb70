"""Google Cloud Functions (gen2) entry point: functions-framework's Flask request <-> core.

    functions-framework --target predict --source gcp_function/main.py

``predict`` is the one HTTP function: every path and method reaches it and core routes on
``request.path`` (POST /predict, GET /health, GET /model, GET /openapi.json, OPTIONS for CORS).
What functions-framework hands it, for example::

    POST /predict HTTP/1.1
    Host: europe-west1-my-project.cloudfunctions.net
    Content-Type: application/json
    Function-Execution-Id: d3Gk9sKq2LmZ
    traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01

    {"instances": [[5.1, 3.5, 1.4, 0.2]]}

Settings are read and checked at import (the function's init phase), so a wrong value fails the
deployment with a message naming the variable. The model loads on the first request that needs
it, or here at import when PRELOAD_MODEL=true.
"""

from __future__ import annotations

import os

import flask
import functions_framework

import gcp_logging
from core.http import HttpRequest, HttpResponse
from core.logs import log_context
from core.runtime import service

gcp_logging.install()  # before service(): its first lines are already Cloud Logging lines
_service = service()
_project = os.environ.get("GOOGLE_CLOUD_PROJECT") or None


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    """Answer one HTTP request with core's service; every log line of it carries its trace."""
    core_request = _core_request(request)
    trace = gcp_logging.TraceContext.from_headers(core_request.headers)
    with log_context(**gcp_logging.invocation_fields(trace, core_request.request_id, _project)):
        answer = _service.handle(core_request)
    return _flask_response(answer)


def _core_request(request: flask.Request) -> HttpRequest:
    headers = {name.lower(): value for name, value in request.headers.items()}
    return HttpRequest(
        method=request.method,
        path=request.path,
        headers=headers,
        body=request.get_data(),
        query=request.args.to_dict(),
        # functions-framework gives every call one (taken from the platform when it sends one);
        # it is also the execution_id label of the call's log entries
        request_id=headers.get("function-execution-id"),
    )


def _flask_response(answer: HttpResponse) -> flask.Response:
    response = flask.Response(answer.body, status=answer.status, headers=answer.headers)
    if "content-type" not in answer.headers:
        # Flask would announce text/html for a body core did not type (the empty 204 preflight)
        del response.headers["content-type"]
    return response
