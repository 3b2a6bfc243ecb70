"""Replays conformance cases through one provider's real entry point, in a fresh process.

A fresh process per (provider, configuration) is how a function really runs: settings are read
once at init. The parent sets the environment, passes the cases as JSON on stdin and reads one
JSON list of observations from the last line of stdout.

    python tests/conformance/worker.py core < cases.json
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: the repository's root holds the tests package

from tests.conformance.cases import normalise  # noqa: E402

Runner = Callable[[dict], tuple[int, dict, bytes]]


def core_runner() -> Runner:
    from core.http import HttpRequest
    from core.runtime import service

    def run(case: dict) -> tuple[int, dict, bytes]:
        body = b"" if case["body"] is None else case["body"].encode("latin-1")
        response = service().handle(HttpRequest(case["method"], case["path"], headers=case["headers"], body=body))
        return response.status, response.headers, response.body

    return run


def azure_runner() -> Runner:
    """The registered functions of function_app.py, routed from their bindings as the host does."""
    # the Functions worker imports function_app with the app's folder on the path; so does this
    sys.path.insert(0, str(REPO / "azure_function"))
    import function_app
    from local_host import FunctionsHost

    host = FunctionsHost(function_app.app, REPO / "azure_function" / "host.json")

    def run(case: dict) -> tuple[int, dict, bytes]:
        body = b"" if case["body"] is None else case["body"].encode("latin-1")
        response = host.request(case["method"], case["path"], headers=case["headers"], body=body)
        return response.status_code, dict(response.headers), response.get_body()

    return run


# --- AWS: each case as an event of one source, built on that source's shared sample event ------

EVENTS = REPO / "tests" / "events" / "aws"  # verbatim copies of the shared samples


def _event_body(body: bytes) -> tuple[str, bool]:
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def rest_event(case: dict, body: bytes) -> dict:
    """API Gateway REST (payload 1.0) proxy integration on ``/{proxy+}``, stage ``prod``."""
    event = json.loads((EVENTS / "apiGatewayProxyEvent.json").read_text())
    text, encoded = _event_body(body)
    event.update(
        resource="/{proxy+}", path=case["path"], httpMethod=case["method"],
        headers=dict(case["headers"]), multiValueHeaders={k: [v] for k, v in case["headers"].items()},
        queryStringParameters=None, multiValueQueryStringParameters=None,
        pathParameters={"proxy": case["path"].lstrip("/")}, body=text if body else None, isBase64Encoded=encoded,
    )
    event["requestContext"].update(httpMethod=case["method"], path="/prod" + case["path"], stage="prod",
                                   resourcePath="/{proxy+}")
    return event


def http_api_event(case: dict, body: bytes, sample: str = "apiGatewayProxyV2Event.json") -> dict:
    """API Gateway HTTP API (payload 2.0) on the $default route and stage."""
    event = json.loads((EVENTS / sample).read_text())
    text, encoded = _event_body(body)
    event.update(routeKey="$default", rawPath=case["path"], rawQueryString="",
                 headers={k.lower(): v for k, v in case["headers"].items()}, isBase64Encoded=encoded)
    event.pop("cookies", None)
    event.pop("queryStringParameters", None)
    event.pop("pathParameters", None)
    if body:
        event["body"] = text
    else:
        event.pop("body", None)
    event["requestContext"]["http"].update(method=case["method"], path=case["path"])
    event["requestContext"].update(routeKey="$default", stage="$default")
    return event


def function_url_event(case: dict, body: bytes) -> dict:
    return http_api_event(case, body, "lambdaFunctionUrlEvent.json")


def alb_event(case: dict, body: bytes) -> dict:
    event = json.loads((EVENTS / "albEvent.json").read_text())
    text, encoded = _event_body(body)
    event.update(httpMethod=case["method"], path=case["path"], queryStringParameters={},
                 headers={k.lower(): v for k, v in case["headers"].items()},
                 body=text, isBase64Encoded=encoded)
    return event


class LambdaContext:
    function_name = "conformance"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:conformance"

    def __init__(self, number: int) -> None:
        self.aws_request_id = f"conformance-{number}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def aws_runner(build_event: Callable[[dict, bytes], dict]) -> Callable[[], Runner]:
    def make() -> Runner:
        from aws_lambda.handler import predict

        count = iter(range(10**9))

        def run(case: dict) -> tuple[int, dict, bytes]:
            body = b"" if case["body"] is None else case["body"].encode("latin-1")
            result = predict(build_event(case, body), LambdaContext(next(count)))
            headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
            headers.update(result.get("headers") or {})
            raw = result.get("body") or ""
            answer = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode("utf-8")
            return result["statusCode"], headers, answer

        return run

    return make


RUNNERS: dict[str, Callable[[], Runner]] = {
    "core": core_runner,
    "azure": azure_runner,
    "aws-rest": aws_runner(rest_event),
    "aws-http-api": aws_runner(http_api_event),
    "aws-function-url": aws_runner(function_url_event),
    "aws-alb": aws_runner(alb_event),
}


def main() -> None:
    provider = sys.argv[1]
    cases = json.load(sys.stdin)
    run = RUNNERS[provider]()
    observed = []
    for case in cases:
        try:
            status, headers, body = run(case)
            observed.append(normalise(case["name"], status, headers, body))
        except Exception as exc:  # the observation is the failure itself
            observed.append({"status": None, "error": f"{type(exc).__name__}: {exc}"})
    sys.stdout.write("\n" + json.dumps(observed) + "\n")


if __name__ == "__main__":
    main()
