"""``serverless-ml serve --provider aws|azure|gcp``: the local endpoint through a provider's adapter.

What a user sees locally is then what the cloud answers, adapter included:

- ``aws``: each request becomes an HTTP API (payload 2.0) event for ``aws_lambda.handler.predict``;
- ``azure``: each request becomes a ``func.HttpRequest`` for the function of ``function_app.app``
  that the Functions host would route it to (``azure_function/local_host.py``);
- ``gcp``: functions-framework's own server on ``gcp_function/main.py``.

The adapters' folders are deployable folders, not installed packages, so these read them from the
project checkout next to this package.
"""

from __future__ import annotations

import base64
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from core.http import HttpRequest, HttpResponse

PROVIDERS = ("aws", "azure", "gcp")
CHECKOUT = Path(__file__).resolve().parents[1]

Respond = Callable[[HttpRequest], HttpResponse]


def adapter_folder(name: str) -> Path:
    folder = CHECKOUT / name
    if not folder.is_dir():
        raise SystemExit(
            f"serverless-ml: serve --provider needs the project checkout: {name}/ was expected next to "
            f"the serverless_ml package, in {CHECKOUT}"
        )
    return folder


# --- aws -------------------------------------------------------------------------------------


class LocalLambdaContext:
    """The attributes of the Lambda context object the handler reads."""

    function_name = "serverless-ml-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:serverless-ml-local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def http_api_event(request: HttpRequest) -> dict:
    """The HTTP API (payload 2.0) event API Gateway would send for ``request`` ($default stage)."""
    try:
        body, encoded = request.body.decode("utf-8"), False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(request.body).decode("ascii"), True
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": urlencode(request.query),
        "headers": dict(request.headers),
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": request.headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if request.query:
        event["queryStringParameters"] = dict(request.query)
    if request.body:
        event["body"] = body
    return event


def aws_respond() -> Respond:
    sys.path.insert(0, str(adapter_folder("aws_lambda").parent))
    from aws_lambda.handler import predict

    def respond(request: HttpRequest) -> HttpResponse:
        result = predict(http_api_event(request), LocalLambdaContext())
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode("utf-8")
        headers = {name.lower(): str(value) for name, value in (result.get("headers") or {}).items()}
        return HttpResponse(int(result["statusCode"]), headers, body)

    return respond


# --- azure -----------------------------------------------------------------------------------


def azure_respond() -> Respond:
    folder = adapter_folder("azure_function")
    sys.path.insert(0, str(folder))
    import function_app
    from local_host import FunctionsHost

    host = FunctionsHost(function_app.app, folder / "host.json")
    _collect_relayed_logs_on_stderr()

    def respond(request: HttpRequest) -> HttpResponse:
        target = request.path + (f"?{urlencode(request.query)}" if request.query else "")
        response = host.request(request.method, target, headers=request.headers, body=request.body)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return HttpResponse(response.status_code, headers, response.get_body())

    return respond


def _collect_relayed_logs_on_stderr() -> None:
    """Do what the Functions host does with the records function_app relays to the root logger:
    collect them; here, one line each on stderr, as `serve` prints for the other providers."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))  # the message is already core's JSON line
    # relayed records reach the root's handlers whatever its level; others only from WARNING up,
    # as Python's last-resort handler would have shown them
    handler.addFilter(lambda record: record.name.startswith("serverless_ml") or record.levelno >= logging.WARNING)
    logging.getLogger().addHandler(handler)


# --- gcp -------------------------------------------------------------------------------------


def exec_functions_framework(host: str, port: int) -> None:
    """Replace this process with functions-framework serving gcp_function/main.py."""
    source = adapter_folder("gcp_function") / "main.py"
    executable = Path(sys.executable).with_name("functions-framework")
    command = [str(executable), "--target", "predict", "--source", str(source), "--host", host, "--port", str(port)]
    print(f'{{"listening": "http://{host}:{port}", "provider": "gcp"}}', flush=True)
    os.execv(command[0], command)


RESPONDERS: dict[str, Callable[[], Respond]] = {"aws": aws_respond, "azure": azure_respond}
EXTRAS = {"aws": ("aws", "botocore"), "azure": ("azure", "azure.functions"), "gcp": ("gcp", "functions_framework")}


def require_extra(provider: str) -> None:
    """Stop with the install command when the provider's extra is missing (make run installs none)."""
    extra, module = EXTRAS[provider]
    try:
        __import__(module)
    except ImportError:
        raise SystemExit(
            f"serverless-ml: serve --provider {provider} needs the '{extra}' extra, which is not installed; "
            f"run: {Path(sys.executable).parent / 'pip'} install -e '.[{extra}]'"
        ) from None
