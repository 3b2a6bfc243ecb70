"""What a storage trigger does with one created object, the same on every cloud.

The object is predicted by :func:`run_batch`. Then:

- an input deleted before it could be read is skipped with a log line (a retry would find it
  missing for ever);
- a wrong setting (``BATCH_OUTPUT_URI`` that is the input's folder) is logged and not raised: every
  retry would fail the same way;
- any other failure (storage, model) is logged with ``retry: true`` and raised, so that the platform
  retries the event (blob trigger, Eventarc, Event Grid) and nothing is lost.
"""

from __future__ import annotations

import logging
from typing import Any

from core.batch.engine import BatchResult, run_batch
from core.errors import ObjectNotFound, ServerlessMLError, SettingsError
from core.settings import Settings
from core.storage import StorageURI

logger = logging.getLogger("serverless_ml.batch")


def run_for_created_object(uri: StorageURI, model_holder: Any, settings: Settings) -> BatchResult | None:
    """Predict the object a trigger announced; raise only what a retry may cure."""
    try:
        return run_batch(uri, model_holder, settings)
    except ObjectNotFound as exc:
        if exc.uri != uri.display:  # the output bucket or the model is missing: a setting to fix
            _log_failure(uri, exc, retry=True)
            raise
        logger.warning("batch input skipped", extra={"fields": {
            "input": uri.display, "reason": f"{exc.message} (deleted after the event was sent?)"}})
    except SettingsError as exc:
        _log_failure(uri, exc, retry=False)
    except ServerlessMLError as exc:
        _log_failure(uri, exc, retry=True)
        raise
    return None


def _log_failure(uri: StorageURI, exc: ServerlessMLError, *, retry: bool) -> None:
    logger.error("batch failed", extra={"fields": {
        "input": uri.display, "error_code": exc.code, "reason": exc.message, "retry": retry}})
