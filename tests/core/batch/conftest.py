"""Running the batch engine on real files in tmp_path, with the demo model or one given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.batch.engine import BatchResult, run_batch
from core.model import ModelHolder
from core.settings import Settings
from tests.azure_function.azurite import Azurite
from tests.gcp_parts import GcsEmulator
from tests.support import free_port


class BatchRun:
    """Writes input files under ``folder`` and runs the engine on them, like a trigger would."""

    def __init__(self, folder: Path, model_uri: str) -> None:
        self.folder = folder
        self.model_uri = model_uri

    def write(self, name: str, content) -> Path:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        return path

    def settings(self, **env: str) -> Settings:
        return Settings.from_env({"MODEL_URI": self.model_uri, **env})

    def run(self, path: Path, *, model_uri: str | None = None, **env: str) -> BatchResult:
        settings = Settings.from_env({"MODEL_URI": model_uri or self.model_uri, **env})
        return run_batch(path.as_uri(), ModelHolder(settings), settings)


@pytest.fixture
def batch(tmp_path, demo_model_uri) -> BatchRun:
    return BatchRun(tmp_path / "incoming", demo_model_uri)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    """One Azurite for the batch tests of the session (each test makes a container of its own)."""
    server = Azurite(tmp_path_factory.mktemp("azurite-batch")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs(tmp_path_factory) -> Iterator[GcsEmulator]:
    """One GCS emulator for the batch tests of the session (each test makes a bucket of its own)."""
    emulator = GcsEmulator(free_port(), tmp_path_factory.mktemp("gcs-batch")).start()
    yield emulator
    emulator.stop()
