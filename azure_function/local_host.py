"""What the Azure Functions host does with one HTTP request (or one blob event) to our app, reduced
to what runs locally.

The host (Core Tools' ``func start`` or Azure) is a .NET program that a pip install cannot bring,
so ``serverless-ml serve --provider azure`` and the tests drive the app through the
azure-functions library itself: the functions and
their bindings come from ``app.get_functions()`` (what the worker reports to the host at indexing),
a request is routed the way the host's router does it (functions in registration order, the first
whose route template matches the path under host.json's routePrefix and whose methods allow the
method; literal segments match in any case, a trailing slash is ignored, ``{*name}`` takes the
rest), and the chosen function is called with a ``func.HttpRequest`` and a ``func.Context``, as the
worker calls it. Function keys are not checked (the host does that before the worker sees the
request).

Not deployed (serverless-ml package leaves it out). Use::

    host = FunctionsHost(function_app.app, AZURE_FUNCTION / "host.json")
    response = host.request("POST", "/predict", headers={...}, body=b"...")
    response.status_code, dict(response.headers), response.get_body()
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

BASE_URL = "http://localhost:7071"


class InvocationContext(func.Context):
    """The ``context`` argument the worker passes: an invocation id per call."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def thread_local_storage(self):
        return self._thread_local_storage

    @property
    def trace_context(self):
        return None

    @property
    def retry_context(self):
        return None


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: frozenset[str] | None  # None: every method
    auth_level: str
    call: object

    def matches(self, route_path: str, method: str) -> dict[str, str] | None:
        """The route parameters if this function takes ``method route_path``, else None."""
        if self.methods is not None and method not in self.methods:
            return None
        template = [part for part in self.route.split("/") if part]
        segments = [part for part in route_path.split("/") if part]
        params: dict[str, str] = {}
        for index, part in enumerate(template):
            if part.startswith("{*") and part.endswith("}"):
                params[part[2:-1]] = "/".join(segments[index:])
                return params
            if index >= len(segments) or segments[index].lower() != part.lower():
                return None
        return params if len(segments) == len(template) else None


@dataclass
class Invocation:
    function: HttpFunction
    context: InvocationContext
    response: func.HttpResponse


class FunctionsHost:
    """Routes requests to the HTTP functions of one ``func.FunctionApp``, as the host would."""

    def __init__(self, app: func.FunctionApp, host_json: Path) -> None:
        self.function_directory = str(host_json.parent)
        config = json.loads(host_json.read_text())
        self.route_prefix = config.get("extensions", {}).get("http", {}).get("routePrefix", "api").strip("/")
        registered = app.get_functions()  # may be called once per app
        self.registered = registered  # every function as indexed, its bindings included
        self.functions = self._http_functions(registered)
        # the other functions by name: (their trigger binding as in function.json, the function)
        self.triggers = {
            function.get_function_name(): (_trigger_binding(function), function.get_user_function())
            for function in registered
            if _trigger_binding(function)["type"] != "httpTrigger"
        }

    @staticmethod
    def _http_functions(functions) -> list[HttpFunction]:
        found = []
        for function in functions:
            trigger = _trigger_binding(function)
            if trigger["type"] != "httpTrigger":
                continue
            methods = trigger.get("methods")
            found.append(HttpFunction(
                name=function.get_function_name(),
                route=trigger.get("route") or function.get_function_name(),
                methods=frozenset(m.upper() for m in methods) if methods else None,
                auth_level=trigger["authLevel"],
                call=function.get_user_function(),
            ))
        return found

    def url(self, path: str) -> str:
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        return f"{BASE_URL}{prefix}{path}"

    def route(self, method: str, url: str) -> tuple[HttpFunction, dict[str, str]]:
        path = urlsplit(url).path
        prefix = f"/{self.route_prefix}".lower() if self.route_prefix else ""
        if prefix:
            if not (path.lower() == prefix or path.lower().startswith(prefix + "/")):
                raise LookupError(f"{path} is outside the route prefix {prefix}: the host answers 404 itself")
            path = path[len(prefix):]
        for function in self.functions:
            params = function.matches(path, method.upper())
            if params is not None:
                return function, params
        raise LookupError(f"no function takes {method} {path}: the host answers 404 itself")

    def invoke(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
        body: bytes = b"", url: str | None = None,
    ) -> Invocation:
        """One request, as the host and worker hand it to the function. ``path`` is the route
        inside the app (``/predict?x=1``); ``url`` overrides the whole URL."""
        full_url = url or self.url(path)
        function, params = self.route(method, full_url)
        request = func.HttpRequest(
            method=method.upper(),
            url=full_url,
            headers=dict(headers or {}),
            params=dict(parse_qsl(urlsplit(full_url).query)),
            route_params=params,
            body=body,
        )
        context = InvocationContext(function.name, self.function_directory)
        return Invocation(function, context, function.call(request, context))

    def request(self, method: str, path: str, **kwargs) -> func.HttpResponse:
        return self.invoke(method, path, **kwargs).response

    def trigger(self, function_name: str, argument: object) -> object:
        """Call a non-HTTP function (blob, Event Grid) with its trigger argument, as the worker
        does once the host has turned the event into it (``func.InputStream``,
        ``func.EventGridEvent``); exceptions propagate, as the worker reports them to the host."""
        _, call = self.triggers[function_name]
        return call(argument, InvocationContext(function_name, self.function_directory))


def _trigger_binding(function) -> dict:
    # the trigger, not an input binding listed before it (a durable client's)
    found = [b for b in json.loads(function.get_function_json())["bindings"] if b["direction"] == "IN"]
    return next((b for b in found if b["type"].endswith("Trigger")), found[0])
