"""Warm-up invocations: keep an instance alive and its model loaded, without an HTTP request.

Two kinds are recognised:

* serverless-plugin-warmup, whose default payload is the event::

      {"source": "serverless-plugin-warmup"}

  and which can also send it as the client context (``clientContext`` in the plugin's settings).
  The Python runtime keeps only ``custom``, ``env`` and ``client`` of a client context, so the
  marker is looked for in ``context.client_context.custom["source"]`` as well.
* an EventBridge (CloudWatch Events) schedule rule, whose event is::

      {"id": "cdc73f9d-...", "detail-type": "Scheduled Event", "source": "aws.events",
       "time": "1970-01-01T00:00:00Z", "resources": ["arn:aws:events:...:rule/ExampleRule"],
       "detail": {}}

A warm-up loads the model if it is not loaded yet and returns at once; it never goes through the
HTTP path, so it does not show up as a request in the logs or in the request metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["WARMUP_PLUGIN_SOURCE", "warmup_source"]

WARMUP_PLUGIN_SOURCE = "serverless-plugin-warmup"


def warmup_source(event: Any, context: Any = None) -> str | None:
    """``"serverless-plugin-warmup"`` or ``"scheduled-event"`` for a warm-up, else None."""
    # a dict first: isinstance against the Mapping ABC is the slow test, and every request asks
    if type(event) is dict or isinstance(event, Mapping):
        if event.get("source") == WARMUP_PLUGIN_SOURCE:
            return WARMUP_PLUGIN_SOURCE
        if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
            return "scheduled-event"
    client_context = getattr(context, "client_context", None)
    if client_context is not None:
        custom = getattr(client_context, "custom", None)
        if isinstance(custom, Mapping) and custom.get("source") == WARMUP_PLUGIN_SOURCE:
            return WARMUP_PLUGIN_SOURCE
        if getattr(client_context, "source", None) == WARMUP_PLUGIN_SOURCE:
            return WARMUP_PLUGIN_SOURCE
    return None
