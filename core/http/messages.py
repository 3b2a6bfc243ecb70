"""The provider-neutral HTTP request and response every adapter translates to and from.

Plain classes with ``__slots__`` rather than dataclasses: a dataclass builds its methods with
``exec`` when its module is imported (0.3 ms each, on every cold start), these are two of many.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.errors import ServerlessMLError


class HttpRequest:
    """One HTTP request as core sees it; read-only once built.

    ``headers`` keys are lower-case; ``path`` is the route inside the app (adapters strip any
    stage or ``/api`` prefix); ``request_id`` is the provider's id when it has one;
    ``cold_start`` is set by an adapter that tracks it itself (see ``take_cold_start``);
    ``error`` is set when a front end could not read the request whole (a body over the limit or
    not decodable): the service answers with it, with the same headers, CORS and log line.
    """

    __slots__ = ("method", "path", "headers", "body", "query", "request_id", "cold_start", "error")

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str]
    request_id: str | None
    cold_start: bool | None
    error: ServerlessMLError | None

    def __init__(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        query: Mapping[str, str] | None = None,
        request_id: str | None = None,
        cold_start: bool | None = None,
        error: ServerlessMLError | None = None,
    ) -> None:
        # adapters hand over whatever casing their provider uses; core looks up lower-case names
        init = object.__setattr__  # __setattr__ below refuses every assignment after this
        init(self, "method", method.upper())
        init(self, "path", path)
        init(self, "headers", dict(zip(map(str.lower, headers), headers.values(), strict=True)) if headers else {})
        init(self, "body", body)
        init(self, "query", dict(query) if query else {})
        init(self, "request_id", request_id)
        init(self, "cold_start", cold_start)
        init(self, "error", error)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"HttpRequest is read-only: build a new one (with_body) instead of setting {name!r}")

    def with_body(self, body: bytes) -> HttpRequest:
        """The same request carrying ``body`` (a server reads the body after the headers)."""
        return HttpRequest(
            self.method, self.path, self.headers, body, self.query, self.request_id, self.cold_start, self.error
        )

    def with_error(self, error: ServerlessMLError) -> HttpRequest:
        """The same request, to be answered with ``error`` (its body could not be read)."""
        return HttpRequest(
            self.method, self.path, self.headers, self.body, self.query, self.request_id, self.cold_start, error
        )

    def header(self, name: str) -> str | None:
        """The header's value, by lower-case name."""
        return self.headers.get(name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HttpRequest):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # headers and query are dicts

    def __repr__(self) -> str:
        # the body is left out: a request's features are the caller's data
        return (
            f"HttpRequest(method={self.method!r}, path={self.path!r}, headers={self.headers!r}, "
            f"body=<{len(self.body)} bytes>, query={self.query!r}, request_id={self.request_id!r}, "
            f"cold_start={self.cold_start!r}"
            f"{'' if self.error is None else f', error={self.error.code!r}'})"
        )


class HttpResponse:
    """The answer; ``rows`` and ``route`` are facts about it for an adapter's metrics, not sent."""

    __slots__ = ("status", "headers", "body", "rows", "route")

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        rows: int | None = None,  # rows predicted (POST /predict answered 200)
        route: str | None = None,  # the route matched, or "unmatched"
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.rows = rows
        self.route = route

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HttpResponse):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"HttpResponse(status={self.status!r}, headers={self.headers!r}, body={self.body[:200]!r}"
            f"{'...' if len(self.body) > 200 else ''}, rows={self.rows!r}, route={self.route!r})"
        )
