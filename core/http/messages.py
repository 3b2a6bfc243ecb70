"""The provider-neutral HTTP request and response every adapter translates to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request as core sees it.

    ``headers`` keys are lower-case; ``path`` is the route inside the app (adapters strip any
    stage or ``/api`` prefix); ``request_id`` is the provider's id when it has one;
    ``cold_start`` is set by an adapter that tracks it itself (see ``take_cold_start``).
    """

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    request_id: Optional[str] = None
    cold_start: Optional[bool] = None

    def __post_init__(self) -> None:
        # adapters hand over whatever casing their provider uses; core looks up lower-case names
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> Optional[str]:
        """The header's value, by lower-case name."""
        return self.headers.get(name)


@dataclass
class HttpResponse:
    """The answer; ``rows`` and ``route`` are facts about it for an adapter's metrics, not sent."""

    status: int
    headers: dict[str, str]
    body: bytes
    rows: Optional[int] = None  # rows predicted (POST /predict answered 200)
    route: Optional[str] = None  # the route matched, or "unmatched"
