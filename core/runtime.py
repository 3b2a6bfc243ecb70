"""The process-wide service: settings read once, logging set up, model preloaded if asked.

Adapters call :func:`service` at import (a cloud function's init phase); a wrong setting then
fails the init with a message naming the variable.
"""

from __future__ import annotations

import threading

from core.errors import SettingsError
from core.http.service import PredictionService
from core.logs import configure
from core.settings import Settings

_service: PredictionService | None = None
_lock = threading.Lock()


def service(default_model_uri: str | None = None) -> PredictionService:
    """The one PredictionService of this process, built from the environment on first call."""
    global _service
    if _service is None:
        with _lock:
            if _service is None:
                try:
                    settings = Settings.from_env(default_model_uri=default_model_uri)
                except SettingsError as exc:
                    # one readable line in the function's log before the init fails
                    configure().error(
                        "invalid setting", extra={"fields": {"error_code": exc.code, "reason": exc.message}}
                    )
                    raise
                configure(settings.log_level)
                built = PredictionService(settings)
                if settings.preload_model:
                    built.preload()
                _service = built
    return _service
