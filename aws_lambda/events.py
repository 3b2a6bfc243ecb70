"""Typed, read-only views of the events a Lambda function receives.

Each HTTP view wraps the raw event dict without copying it and answers the same questions —
method, route, headers, query, body — so the handler turns any of the four HTTP sources into one
:class:`core.http.HttpRequest`. Nothing here raises ``KeyError`` on a missing or ``null`` field:
a field that is absent reads as empty.

An API Gateway REST (payload 1.0) proxy event, abridged::

    {"resource": "/{proxy+}", "path": "/predict", "httpMethod": "POST",
     "headers": {"Content-Type": "application/json"},
     "multiValueHeaders": {"Content-Type": ["application/json"]},
     "queryStringParameters": null, "pathParameters": {"proxy": "predict"},
     "requestContext": {"stage": "prod", "path": "/prod/predict", "requestId": "c6af9ac6-..."},
     "body": "{\\"instances\\": [[5.1, 3.5, 1.4, 0.2]]}", "isBase64Encoded": false}

The route core sees
-------------------
Core routes ``/predict``, ``/health``, ``/model``, ``/openapi.json``; what the API Gateway stage
or a custom-domain base path adds in front is not part of it:

* API Gateway REST and HTTP API payload 1.0: the ``resource`` template with its
  ``pathParameters`` filled in (``/{proxy+}`` + ``{"proxy": "predict"}`` -> ``/predict``). The
  resource is the path as defined in the API, so neither the stage (``/prod``) nor a custom
  domain's base path (``/ml``) is in it. Without a usable template (``$default``, a missing
  parameter): ``path`` with a leading ``/{stage}`` removed.
* HTTP API payload 2.0: the ``routeKey`` template filled the same way (``ANY /{proxy+}``);
  for the ``$default`` route, ``rawPath`` (percent-decoded) with a leading ``/{stage}`` removed
  when the stage is not ``$default`` (a named stage is in ``rawPath``, ``$default`` is not).
* Lambda Function URL and ALB: the path as sent, percent-decoded (as API Gateway and the other
  clouds' servers hand it over); neither has stages. An ALB listener rule that
  forwards ``/ml/*`` hands over ``/ml/predict``: forward the routes themselves instead.

Recognising a source
--------------------
Each source is one class that recognises its events (:meth:`HttpEvent.recognises`), reads them
and shapes the reply (:meth:`HttpEvent.reply`), as Mangum's handlers do. :func:`http_event` asks
the classes of :data:`HTTP_SOURCES` in order, the more specific first (a Function URL event is
also a payload 2.0 event, an ALB event also has REST's fields); a new source is one more class in
that tuple.

The reply
---------
API Gateway REST (payload 1.0)::

    {"statusCode": 200, "headers": {"content-type": "application/json", ...},
     "body": "{\\"predictions\\": [...]}", "isBase64Encoded": false}

HTTP API (payload 2.0) and Function URLs take the same four keys. An ALB target also needs
``statusDescription`` (``"200 OK"``), and when the target group has multi-value headers turned on
(the request then came with ``multiValueHeaders``) the ALB reads only ``multiValueHeaders`` from
the answer, so the headers go there instead. Bodies are JSON text; a body that is not UTF-8 goes
out base64-encoded with ``isBase64Encoded: true``, which every source decodes before it reaches
the client.

Headers and query strings
-------------------------
Header names are lower-cased. A header sent several times (``multiValueHeaders``) is joined with
``", "`` as HTTP allows (cookies with ``"; "``). For a query parameter sent several times, the
last value is in :attr:`HttpEvent.query` (as API Gateway's ``queryStringParameters`` has it) and
all of them in :attr:`HttpEvent.multi_query`. ALB passes query strings still percent-encoded;
they are decoded here, so every source yields the same values.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus

from core.errors import RequestError
from core.http import HttpRequest, HttpResponse
from core.request.json_body import json_type

__all__ = [
    "HTTP_SOURCES", "AlbEvent", "ApiGatewayRestEvent", "FunctionUrlEvent", "HttpApiEvent", "HttpEvent",
    "describe_event", "http_event",
]

_PLACEHOLDER = re.compile(r"\{([^{}/]+?)\+?\}")


def _is_mapping(value: Any) -> bool:
    # the objects of an event parsed from JSON are dicts: an exact type test first, since
    # isinstance against the Mapping ABC costs ten times more and runs a dozen times per request
    return type(value) is dict or isinstance(value, Mapping)


def _mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # as in _is_mapping; inlined, since every property of a view asks
        return value
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


class HttpEvent:
    """What every HTTP event source answers; subclasses recognise and read their own shape."""

    #: short name of the source, used in logs and metrics
    source = "http"

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw
        self._context = _mapping(raw.get("requestContext"))  # asked for by most properties

    @classmethod
    def recognises(cls, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` comes from this source (asked in the order of :data:`HTTP_SOURCES`)."""
        raise NotImplementedError

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._raw

    @property
    def request_context(self) -> Mapping[str, Any]:
        return self._context

    # --- answered by each source -------------------------------------------------------------

    @property
    def method(self) -> str:
        return _text(self._raw.get("httpMethod")).upper()

    @property
    def path(self) -> str:
        """The route inside the app (see the module docstring for the rule of each source)."""
        raise NotImplementedError

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names; multi-value headers joined."""
        multi = self._raw.get("multiValueHeaders")
        if _is_mapping(multi) and multi:
            return _joined_headers(multi)
        return _single_headers(self._raw.get("headers"))

    @property
    def multi_query(self) -> dict[str, list[str]]:
        multi = self._raw.get("multiValueQueryStringParameters")
        if _is_mapping(multi) and multi:
            return {_text(k): [_text(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in multi.items()}
        single = _mapping(self._raw.get("queryStringParameters"))
        return {_text(k): [_text(v)] for k, v in single.items()}

    @property
    def query(self) -> dict[str, str]:
        """One value per parameter: the last one sent."""
        return {name: values[-1] for name, values in self.multi_query.items() if values}

    @property
    def has_multi_value_headers(self) -> bool:
        """Whether the request came with ``multiValueHeaders`` (the answer must use them for ALB)."""
        return _is_mapping(self._raw.get("multiValueHeaders"))

    @property
    def is_base64_encoded(self) -> bool:
        return self._raw.get("isBase64Encoded") is True

    @property
    def body(self) -> bytes:
        """The raw body bytes; raises RequestError when a base64 body does not decode."""
        body = self._raw.get("body")
        if body is None:
            return b""
        if not isinstance(body, str):
            raise RequestError(f"the event's body is a {type(body).__name__}; expected a string")
        if self.is_base64_encoded:
            try:
                return base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise RequestError(
                    "the body is marked isBase64Encoded but is not valid base64"
                ) from None
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from the event's JSON: core reports it as non-UTF-8
            return body.encode("utf-8", "surrogatepass")

    @property
    def stage(self) -> str:
        return _text(self.request_context.get("stage"))

    @property
    def source_request_id(self) -> str | None:
        """The front end's own request id (API Gateway's ``requestContext.requestId``), if any."""
        value = self.request_context.get("requestId")
        return value if isinstance(value, str) and value else None

    def to_core_request(self, request_id: str | None = None, *, cold_start: bool | None = None) -> HttpRequest:
        """The core request. A body the event itself encodes wrongly (base64 that is not, a body
        that is not a string) gives an empty body and the error, which the service answers (400)."""
        error: RequestError | None = None
        try:
            body = self.body
        except RequestError as exc:
            body, error = b"", exc
        return HttpRequest(
            method=self.method or "GET",
            path=self.path,
            headers=self.headers,
            body=body,
            query=self.query,
            request_id=request_id,
            cold_start=cold_start,
            error=error,
        )

    def reply(self, response: HttpResponse) -> dict[str, Any]:
        """The dict the function returns for this event, carrying ``response``."""
        body, is_base64 = _body_text(response.body)
        return {"statusCode": response.status, **self._reply_headers(response), "body": body,
                "isBase64Encoded": is_base64}

    def _reply_headers(self, response: HttpResponse) -> dict[str, Any]:
        return {"headers": dict(response.headers)}


class ApiGatewayRestEvent(HttpEvent):
    """API Gateway REST API proxy integration, and HTTP API with payload format 1.0 (the event in
    the module docstring): ``httpMethod`` and a ``requestContext``, without payload 2.0's fields."""

    source = "api-gateway-rest"

    @classmethod
    def recognises(cls, event: Mapping[str, Any]) -> bool:
        return (
            isinstance(event.get("httpMethod"), str)
            and bool(_mapping(event.get("requestContext")))
            and not _is_payload_v2(event)  # a 2.0 event without a usable method is no REST event either
        )

    @property
    def path(self) -> str:
        route = _fill_template(_text(self._raw.get("resource")), _mapping(self._raw.get("pathParameters")))
        if route is not None:
            return route
        return _strip_stage(_text(self._raw.get("path")) or "/", self.stage)


class HttpApiEvent(HttpEvent):
    """API Gateway HTTP API, payload format 2.0 (tests/events/aws/apiGatewayProxyV2Event.json)::

        {"version": "2.0", "routeKey": "$default", "rawPath": "/my/path",
         "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
         "cookies": ["cookie1", "cookie2"], "headers": {"Header1": "value1"},
         "requestContext": {"domainName": "id.execute-api.us-east-1.amazonaws.com",
                            "http": {"method": "POST", "path": "/my/path"}, "stage": "$default"},
         "body": "{\\"message\\": \\"hello world\\"}", "isBase64Encoded": false}
    """

    source = "http-api"

    @classmethod
    def recognises(cls, event: Mapping[str, Any]) -> bool:
        return _is_payload_v2(event) and isinstance(_mapping(event["requestContext"]["http"]).get("method"), str)

    @property
    def http(self) -> Mapping[str, Any]:
        return _mapping(self.request_context.get("http"))

    @property
    def method(self) -> str:
        return _text(self.http.get("method")).upper()

    @property
    def path(self) -> str:
        route_key = _text(self._raw.get("routeKey"))
        if route_key and route_key != "$default" and " " in route_key:
            template = route_key.split(" ", 1)[1]
            route = _fill_template(template, _mapping(self._raw.get("pathParameters")))
            if route is not None:
                return route
        raw_path = unquote(_text(self._raw.get("rawPath")) or _text(self.http.get("path")) or "/")
        return _strip_stage(raw_path, self.stage)

    @property
    def headers(self) -> dict[str, str]:
        headers = _single_headers(self._raw.get("headers"))
        cookies = self._raw.get("cookies")
        if isinstance(cookies, list) and cookies and "cookie" not in headers:
            headers["cookie"] = "; ".join(_text(c) for c in cookies)
        return headers

    @property
    def multi_query(self) -> dict[str, list[str]]:
        raw_query = self._raw.get("rawQueryString")
        if isinstance(raw_query, str):
            values: dict[str, list[str]] = {}
            for name, value in _query_pairs(raw_query):
                values.setdefault(name, []).append(value)
            return values
        return super().multi_query

    @property
    def query(self) -> dict[str, str]:
        raw_query = self._raw.get("rawQueryString")
        if isinstance(raw_query, str):  # the last value of each name, in order of first appearance
            return dict(_query_pairs(raw_query))
        return super().query

    @property
    def has_multi_value_headers(self) -> bool:
        return False


class FunctionUrlEvent(HttpApiEvent):
    """A Lambda Function URL: the payload 2.0 shape, from a ``*.lambda-url.<region>.on.aws`` host
    (tests/events/aws/lambdaFunctionUrlEvent.json)::

        {"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
         "headers": {"host": "<url-id>.lambda-url.us-east-1.on.aws", ...},
         "requestContext": {"domainName": "<url-id>.lambda-url.us-east-1.on.aws",
                            "http": {"method": "GET", "path": "/"}, ...},
         "isBase64Encoded": false}
    """

    source = "function-url"

    @classmethod
    def recognises(cls, event: Mapping[str, Any]) -> bool:
        return super().recognises(event) and ".lambda-url." in _text(event["requestContext"].get("domainName"))

    @property
    def path(self) -> str:
        return unquote(_text(self._raw.get("rawPath")) or _text(self.http.get("path")) or "/")


class AlbEvent(HttpEvent):
    """An Application Load Balancer target group event, single- or multi-value headers
    (tests/events/aws/albEvent.json)::

        {"requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:...:targetgroup/..."}},
         "httpMethod": "GET", "path": "/lambda", "queryStringParameters": {"query": "1234ABCD"},
         "headers": {"host": "lambda-alb-123578498.us-east-2.elb.amazonaws.com", ...},
         "body": "Test", "isBase64Encoded": false}
    """

    source = "alb"

    @classmethod
    def recognises(cls, event: Mapping[str, Any]) -> bool:
        return "elb" in _mapping(event.get("requestContext")) and isinstance(event.get("httpMethod"), str)

    @property
    def path(self) -> str:
        # like its query strings, ALB hands the path over still percent-encoded
        return unquote(_text(self._raw.get("path")) or "/")

    @property
    def multi_query(self) -> dict[str, list[str]]:
        # ALB hands query strings over exactly as sent, still percent-encoded
        return {
            unquote_plus(name): [unquote_plus(v) for v in values]
            for name, values in super().multi_query.items()
        }

    @property
    def target_group_arn(self) -> str:
        return _text(_mapping(self.request_context.get("elb")).get("targetGroupArn"))

    def _reply_headers(self, response: HttpResponse) -> dict[str, Any]:
        shaped: dict[str, Any] = {"statusDescription": _status_description(response.status)}
        if self.has_multi_value_headers:  # the ALB then reads only multiValueHeaders from the answer
            shaped["multiValueHeaders"] = {name: [value] for name, value in response.headers.items()}
        else:
            shaped["headers"] = dict(response.headers)
        return shaped


#: The HTTP sources, in the order they are asked: the more specific first, since a Function URL
#: event is also a payload 2.0 event and an ALB event has the payload 1.0 fields REST looks for.
HTTP_SOURCES: tuple[type[HttpEvent], ...] = (AlbEvent, FunctionUrlEvent, HttpApiEvent, ApiGatewayRestEvent)


def http_event(event: Any) -> HttpEvent | None:
    """The HTTP view of ``event``, or None when it is not an HTTP event of a known source."""
    if not _is_mapping(event):
        return None
    for source in HTTP_SOURCES:
        if source.recognises(event):
            return source(event)
    return None


def describe_event(event: Any) -> str:
    """A short description of a non-HTTP event, for an error message: its kind, never its data."""
    if not isinstance(event, Mapping):
        return f"a JSON {json_type(event)}"
    records = event.get("Records")
    if isinstance(records, list) and records:
        first = _mapping(records[0])
        source = _text(first.get("eventSource") or first.get("EventSource"))
        kinds = {"aws:s3": "an S3 notification", "aws:sqs": "an SQS batch", "aws:sns": "an SNS notification",
                 "aws:dynamodb": "a DynamoDB stream batch", "aws:kinesis": "a Kinesis batch"}
        kind = kinds.get(source, f"a batch of records from '{source or 'an unknown source'}'")
        return f"{kind} ({len(records)} record{'s' if len(records) != 1 else ''})"
    if "detail-type" in event and "source" in event:
        return (
            f"an EventBridge event (source '{_text(event.get('source'))[:60]}', "
            f"detail-type '{_text(event.get('detail-type'))[:80]}')"
        )
    context = _mapping(event.get("requestContext"))
    if context or "httpMethod" in event or "rawPath" in event:
        return "an HTTP-like event without a usable method (httpMethod or requestContext.http.method)"
    keys = sorted(_text(k) for k in event)[:8]
    return "a JSON object with " + (f"keys {', '.join(repr(k[:40]) for k in keys)}" if keys else "no keys")


# --- helpers --------------------------------------------------------------------------------------


def _is_payload_v2(event: Mapping[str, Any]) -> bool:
    """HTTP API payload 2.0 (and Function URLs): ``version`` 2.x and ``requestContext.http``."""
    return _is_mapping(_mapping(event.get("requestContext")).get("http")) and _text(
        event.get("version")
    ).startswith("2")


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``; a query with nothing to decode (no ``%`` and
    no ``+``, the usual case) is split here, where parse_qsl would unquote each name and value."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def _single_headers(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in _mapping(headers).items():
        if value is None:
            continue
        key = _text(name).lower()
        out[key] = f"{out[key]}, {_text(value)}" if key in out else _text(value)
    return out


def _joined_headers(multi: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, values in multi.items():
        key = _text(name).lower()
        items = [_text(v) for v in (values if isinstance(values, list) else [values]) if v is not None]
        if not items:
            continue
        separator = "; " if key == "cookie" else ", "
        joined = separator.join(items)
        out[key] = f"{out[key]}{separator}{joined}" if key in out else joined
    return out


def _fill_template(template: str, parameters: Mapping[str, Any]) -> str | None:
    """``/{proxy+}`` with ``{"proxy": "a/b"}`` -> ``/a/b``; None when not a template that fills."""
    if not template.startswith("/"):
        return None
    missing = False

    def substitute(match: re.Match) -> str:
        nonlocal missing
        value = parameters.get(match.group(1))
        if not isinstance(value, str):
            missing = True
            return ""
        return value

    route = _PLACEHOLDER.sub(substitute, template)
    return None if missing else route


def _strip_stage(path: str, stage: str) -> str:
    if stage and stage != "$default":
        prefix = "/" + stage
        if path == prefix:
            return "/"
        if path.startswith(prefix + "/"):
            return path[len(prefix):]
    return path


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
