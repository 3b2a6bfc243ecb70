"""Real local parts for the Cloud Functions adapter: the GCS emulator (PyPI ``gcp-storage-emulator``)
and functions-framework's own server running ``gcp_function/main.py``, each on 127.0.0.1 on a
free port, waited for until it answers and stopped afterwards (see tests/gcp_parts.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from core.http import PredictionService
from tests.gcp_parts import FunctionServer, GcsEmulator, function_servers
from tests.support import free_port, make_service

MODEL_BUCKET = "models"
MODEL_KEY = "iris/model.joblib"
MODEL_URI = f"gs://{MODEL_BUCKET}/{MODEL_KEY}"
# the same limits for the function and the core service it is compared with; and the same model
# name (by default the file's stem, which is "model" in the bucket and the demo's name on disk)
LIMITS = {"CORS_ALLOW_ORIGINS": "https://app.example.com", "MAX_ROWS": "50", "MAX_BODY_BYTES": "65536",
          "MODEL_NAME": "iris"}


# --- the GCS emulator ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory) -> Iterator[GcsEmulator]:
    """The emulator the session shares; tests that stop an emulator start their own."""
    emulator = GcsEmulator(free_port(), tmp_path_factory.mktemp("gcs-emulator")).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def own_gcs_emulator(tmp_path) -> Iterator[GcsEmulator]:
    """An emulator for one test alone, which it may stop and restart."""
    emulator = GcsEmulator(free_port(), tmp_path).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def model_in_gcs(gcs_emulator, model_bytes) -> str:
    """The demo model uploaded to the emulator; its gs:// URI."""
    gcs_emulator.create_bucket(MODEL_BUCKET)
    gcs_emulator.upload(MODEL_BUCKET, MODEL_KEY, model_bytes)
    return MODEL_URI


# --- functions-framework's server ----------------------------------------------------------------


@pytest.fixture(scope="session")
def function_factory(tmp_path_factory) -> Iterator[Callable[..., FunctionServer]]:
    """``function_factory(env, source=...)``: functions-framework servers for the session."""
    with function_servers(tmp_path_factory.mktemp("functions")) as start:
        yield start


@pytest.fixture(scope="session")
def core_twin(demo_model_uri) -> PredictionService:
    """The core service with the function's settings, reading the same model from file://:
    what the function must answer, request for request."""
    service = make_service(demo_model_uri, **LIMITS)
    service.preload()
    return service


@pytest.fixture(scope="session")
def iris_function(function_factory, gcs_emulator, model_in_gcs) -> FunctionServer:
    """The function serving the demo model from gs://, with the limits in LIMITS."""
    return function_factory(
        {"MODEL_URI": model_in_gcs, **gcs_emulator.env(), "STORAGE_TIMEOUT_SECONDS": "5", **LIMITS}
    )
