"""The HTTP API: provider-neutral messages, routing, CORS, and the local server."""

from core.http.messages import HttpRequest, HttpResponse
from core.http.service import PredictionService

__all__ = ["HttpRequest", "HttpResponse", "PredictionService"]
