"""Fixtures for the Azure Functions app: Azurite, the demo model in it, and the app per scenario.

Settings are read once per process in production (``core.runtime.service()``), and each scenario
here needs its own (another model location, account key or timeout). So every scenario is a fresh
worker in miniature: ``function_app.py`` is loaded again as a new module, with a new ``app``,
while ``core.runtime.service`` returns a service built for that scenario from real settings, a
real ``AzureBlobObjectStore`` on Azurite, and nothing else replaced. The production wiring itself
(settings from the environment, the storage registry) runs in fresh processes in
test_fresh_process.py.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import core.storage as core_storage
from azure_function.local_host import FunctionsHost
from tests.azure_function.azurite import Azurite
from tests.support import REPO

AZURE_FUNCTION = REPO / "azure_function"

MODEL_CONTAINER = "models"
MODEL_BLOB = "iris.joblib"
MODEL_URI = f"az://{MODEL_CONTAINER}/{MODEL_BLOB}"


@pytest.fixture(scope="session")
def app_folder() -> Path:
    """The deployable app folder, azure_function/."""
    return AZURE_FUNCTION


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    """One Azurite for the session, holding the demo model at az://models/iris.joblib."""
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_with_model(azurite, model_bytes) -> Azurite:
    azurite.put(MODEL_CONTAINER, MODEL_BLOB, model_bytes)
    return azurite


@pytest.fixture
def own_azurite(tmp_path) -> Iterator[Callable[..., Azurite]]:
    """Azurite servers of one test's own, to stop, freeze or re-key without touching the others."""
    started: list[Azurite] = []

    def start(accounts: str | None = None) -> Azurite:
        server = Azurite(tmp_path, accounts=accounts).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class CountingStore:
    """The real store, with its whole-object reads counted (each one is a download)."""

    def __init__(self, store) -> None:
        self.store = store
        self.scheme = store.scheme
        self.downloads = 0
        self._lock = threading.Lock()

    def read_bytes(self, uri):
        self._count(uri)
        return self.store.read_bytes(uri)

    def open_read(self, uri):  # a remote model is streamed (core/model/fetch.py)
        self._count(uri)
        return self.store.open_read(uri)

    def _count(self, uri) -> None:
        if not uri.key.endswith(".manifest.json"):  # the optional manifest is not the model's download
            with self._lock:
                self.downloads += 1

    def write_bytes(self, uri, data) -> None:
        self.store.write_bytes(uri, data)


@dataclass
class FunctionsApp:
    """One scenario: the freshly loaded function_app module, driven through ``host``."""

    module: object
    host: FunctionsHost
    service: object
    store: CountingStore

    def request(self, method: str, path: str, **kwargs):
        return self.host.request(method, path, **kwargs)


_loads = itertools.count()


@pytest.fixture
def load_app(monkeypatch) -> Iterator[Callable[..., FunctionsApp]]:
    """``load_app(environment, folder=...)`` -> a fresh function_app for that environment."""
    from core import runtime
    from core.http import PredictionService
    from core.model import ModelHolder
    from core.settings import Settings
    from core.storage.azure_blob import AzureBlobObjectStore

    logger = logging.getLogger("serverless_ml")
    saved = (list(logger.handlers), logger.propagate, logger.level)

    def load(environment: dict[str, str], folder: Path = AZURE_FUNCTION, auth_level: str | None = None) -> FunctionsApp:
        environment = {"STORAGE_TIMEOUT_SECONDS": "5", **environment}
        settings = Settings.from_env(environment)
        store = CountingStore(AzureBlobObjectStore(settings.storage_timeout_seconds, environ=environment))
        service = PredictionService(settings, ModelHolder(settings, store_for=lambda uri, timeout: store))
        monkeypatch.setattr(runtime, "service", lambda *args, **kwargs: service)
        if auth_level is None:
            monkeypatch.delenv("FUNCTION_AUTH_LEVEL", raising=False)
        else:
            monkeypatch.setenv("FUNCTION_AUTH_LEVEL", auth_level)
        # by path, under a new name each time: a new module with a new ``app`` per scenario (a fresh
        # worker in miniature), from the repository's app folder or an unzipped bundle's
        spec = importlib.util.spec_from_file_location(f"function_app_{next(_loads)}", folder / "function_app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        logger.setLevel(settings.log_level)
        return FunctionsApp(module, FunctionsHost(module.app, folder / "host.json"), service, store)

    yield load
    handlers, propagate, level = saved
    logger.handlers[:] = handlers
    logger.propagate = propagate
    logger.setLevel(level)


@pytest.fixture
def app_on_azurite(load_app, azurite_with_model) -> FunctionsApp:
    """The app serving az://models/iris.joblib from the session's Azurite, model not loaded yet."""
    return load_app({
        "MODEL_URI": MODEL_URI,
        "AZURE_STORAGE_CONNECTION_STRING": azurite_with_model.connection_string,
        "CORS_ALLOW_ORIGINS": "https://app.example.com",
    })


@pytest.fixture
def batch_app(load_app, azurite_with_model, monkeypatch):
    """``batch_app(**settings)``: a fresh app on the session's Azurite. Core's store registry reads
    the account from the environment, as in production, so each app gets a registry of its own."""

    def load(**settings: str):
        environment = {
            "MODEL_URI": "az://models/iris.joblib",
            "AZURE_STORAGE_CONNECTION_STRING": azurite_with_model.connection_string,
            "BATCH_CHUNK_ROWS": "2",  # several chunks even in these small files
            **settings,
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(core_storage, "_stores", {})
        return load_app(environment)

    return load
