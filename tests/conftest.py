"""Shared fixtures: real models on disk, a service over them, and the real local endpoint."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.demo import ensure_demo_model
from core.http import PredictionService
from tests import background
from tests.aws_lambda import moto_support
from tests.support import LocalEndpoint, make_service, start_endpoint, stop_endpoint


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the builds of minutes (tests/background.py) that the collected tests need."""
    if not session.config.option.collectonly and session.items:
        background.start(session.items, session.config._tmp_path_factory)  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session) -> None:
    background.finish()


@pytest.fixture(scope="session")
def demo_model_path(tmp_path_factory) -> Path:
    """The demo iris random forest, trained once for the whole run."""
    return ensure_demo_model(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def demo_model_uri(demo_model_path) -> str:
    return demo_model_path.as_uri()


@pytest.fixture(scope="session")
def model_bytes(demo_model_path) -> bytes:
    """The demo model's file, for tests that upload it to a storage emulator."""
    return demo_model_path.read_bytes()


@pytest.fixture(scope="session")
def exported_demo_model(demo_model_path, tmp_path_factory) -> Callable[[str], tuple[Path, str]]:
    """``exported_demo_model(to)``: the demo forest exported by `serverless-ml export --to <to>`
    (onnx or skops), as a user runs it, once per run: the file (``model.<to>``, with its manifest,
    beside ``model.joblib``) and what the command printed."""
    from tests.formats.format_support import export

    folder = tmp_path_factory.mktemp("exported")
    shutil.copy(demo_model_path, folder / "model.joblib")
    done: dict[str, tuple[Path, str]] = {}

    def exported(to: str) -> tuple[Path, str]:
        if to not in done:
            result = export(folder / "model.joblib", to)
            assert result.returncode == 0, result.stderr
            done[to] = (folder / f"model.{to}", result.stdout + result.stderr)
        return done[to]

    return exported


@pytest.fixture(scope="session")
def typed_models(tmp_path_factory) -> dict[str, Path]:
    """The models of tests/typed_models.py (fitted on DataFrames), saved once per run as joblib."""
    from tests.typed_models import save_typed_models

    return save_typed_models(tmp_path_factory.mktemp("typed"))


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """One moto S3 server for the session, on 127.0.0.1 and a free port (tests that need a server
    of their own, with IAM enforced or stopped, start one with moto_support.start_moto)."""
    server = moto_support.start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    moto_support.stop_moto(server)


@pytest.fixture
def aws_env(moto, monkeypatch):
    """This process's AWS settings point at the moto server; all restored afterwards."""
    with moto_support.pointed_at(moto, monkeypatch):
        yield moto


@pytest.fixture
def service(demo_model_uri) -> PredictionService:
    return make_service(demo_model_uri)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory, demo_model_uri) -> Iterator[LocalEndpoint]:
    """The real local endpoint serving the demo model, for one test module."""
    ep = start_endpoint(tmp_path_factory.mktemp("endpoint"), {"MODEL_URI": demo_model_uri, "MAX_ROWS": "50"})
    yield ep
    stop_endpoint(ep)

