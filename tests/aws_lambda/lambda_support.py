"""Events of the four HTTP sources as Lambda delivers them, the context object the adapter reads,
and readers for the answers."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

# verbatim copies of ../shared/events (provenance in tests/events/SOURCES.md), kept in the repo for CI
SHARED_EVENTS = Path(__file__).resolve().parents[1] / "events" / "aws"


@dataclass
class LambdaContext:
    """The attributes of the runtime's context object that the adapter reads."""

    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    function_name: str = "serverless-ml-test"
    client_context: Any = None


@dataclass
class ClientContext:
    custom: dict | None = None
    env: dict | None = None
    client: Any = None


# --- events of the four HTTP sources, as Lambda delivers them --------------------------------------

SOURCES = ("api-gateway-rest", "http-api", "function-url", "alb")


def make_event(
    source: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
    base64_body: bool = False,
    stage: str = "prod",
    multi_value: bool = True,
) -> dict[str, Any]:
    """An event of ``source`` for one request, with the fields each source really sends."""
    headers = dict(headers or {})
    query = list(query or [])
    text_body = None
    if body is not None:
        text_body = base64.b64encode(body).decode() if base64_body else body.decode("utf-8")
    single_query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        single_query[name] = value
        multi_query.setdefault(name, []).append(value)

    if source == "api-gateway-rest":
        return {
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": method,
            "headers": headers or None,
            "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
            "queryStringParameters": single_query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {"proxy": path.lstrip("/")},
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/{proxy+}", "httpMethod": method, "path": f"/{stage}{path}",
                "stage": stage, "requestId": "apigw-" + uuid.uuid4().hex[:8],
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "apiId": "abc123",
                "identity": {"sourceIp": "203.0.113.7"},
            },
            "body": text_body,
            "isBase64Encoded": base64_body,
        }
    if source in ("http-api", "function-url"):
        function_url = source == "function-url"
        stage = "$default" if function_url else stage
        raw_path = path if stage == "$default" else f"/{stage}{path}"
        domain = "abcdefgh.lambda-url.us-east-1.on.aws" if function_url else "abc123.execute-api.us-east-1.amazonaws.com"
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": urlencode(query),
            "headers": {k.lower(): v for k, v in headers.items()},
            "requestContext": {
                "accountId": "anonymous" if function_url else "123456789012", "apiId": domain.split(".")[0],
                "domainName": domain, "domainPrefix": domain.split(".")[0],
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "test"},
                "requestId": "req-" + uuid.uuid4().hex[:8], "routeKey": "$default", "stage": stage,
                "time": "24/Nov/2026:14:00:00 +0000", "timeEpoch": 1795528800000,
            },
            "isBase64Encoded": base64_body,
        }
        if single_query:
            event["queryStringParameters"] = {k: ",".join(v) for k, v in multi_query.items()}
        if text_body is not None:
            event["body"] = text_body
        return event
    if source == "alb":
        event = {
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ml/6d0ecf831eec9f09"}},
            "httpMethod": method,
            "path": path,
            "body": text_body or "",
            "isBase64Encoded": base64_body,
        }
        # ALB passes the query string on still percent-encoded
        if multi_value:
            event["multiValueHeaders"] = {k.lower(): [v] for k, v in headers.items()}
            event["multiValueQueryStringParameters"] = {
                quote(k): [quote(v) for v in vs] for k, vs in multi_query.items()
            }
        else:
            event["headers"] = {k.lower(): v for k, v in headers.items()}
            event["queryStringParameters"] = {quote(k): quote(v) for k, v in single_query.items()}
        return event
    raise ValueError(source)


def response_headers(answer: dict) -> dict[str, str]:
    """The answer's headers, whichever key the source uses (ALB multi-value: first value)."""
    if "multiValueHeaders" in answer:
        return {k: v[0] for k, v in answer["multiValueHeaders"].items()}
    return answer["headers"]


def response_json(answer: dict) -> Any:
    body = answer["body"]
    if answer.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
