"""CORS: which browser origins may call the API, from ``CORS_ALLOW_ORIGINS``.

With no origins configured (the default) no CORS header is ever sent, so browsers on other
origins are refused; ``*`` allows any origin; otherwise only the listed origins are echoed back.
"""

from __future__ import annotations

from core.http.messages import HttpRequest, HttpResponse

ALLOWED_REQUEST_HEADERS = "content-type, authorization, x-request-id, x-api-key"
PREFLIGHT_MAX_AGE_SECONDS = "600"


class CorsPolicy:
    def __init__(self, allow_origins: tuple[str, ...]) -> None:
        self.any_origin = "*" in allow_origins
        self.origins = frozenset(allow_origins)

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and (self.any_origin or origin in self.origins)

    def decorate(self, request: HttpRequest, response: HttpResponse) -> None:
        """Add the CORS headers an allowed origin needs to read this answer."""
        origin = request.headers.get("origin")
        if origin is None or not self.allows(origin):
            return
        response.headers["access-control-allow-origin"] = "*" if self.any_origin else origin
        response.headers["access-control-expose-headers"] = "x-request-id"
        if not self.any_origin:
            response.headers["vary"] = "Origin"

    def preflight(self, request: HttpRequest, allowed: tuple[str, ...]) -> HttpResponse:
        """Answer OPTIONS: 204 with the route's methods; CORS headers only for an allowed origin."""
        response = HttpResponse(204, {"allow": ", ".join(allowed)}, b"")
        if self.allows(request.headers.get("origin")):
            response.headers["access-control-allow-methods"] = ", ".join(allowed)
            response.headers["access-control-allow-headers"] = ALLOWED_REQUEST_HEADERS
            response.headers["access-control-max-age"] = PREFLIGHT_MAX_AGE_SECONDS
        return response
