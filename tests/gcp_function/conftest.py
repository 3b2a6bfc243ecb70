"""Real local parts for the Cloud Functions adapter: the GCS emulator (PyPI ``gcp-storage-emulator``)
and functions-framework's own server running ``gcp_function/main.py``, each on 127.0.0.1 on a
free port, waited for until it answers and stopped afterwards.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from core.http import PredictionService
from support import LocalEndpoint, make_service

REPO = Path(__file__).resolve().parents[2]
FUNCTION_SOURCE = REPO / "gcp_function" / "main.py"
BIN = Path(sys.executable).parent
PROJECT = "test-project"
MODEL_BUCKET = "models"
MODEL_KEY = "iris/model.joblib"
MODEL_URI = f"gs://{MODEL_BUCKET}/{MODEL_KEY}"
# the same limits for the function and the core service it is compared with
LIMITS = {"CORS_ALLOW_ORIGINS": "https://app.example.com", "MAX_ROWS": "50", "MAX_BODY_BYTES": "65536"}
# settings a developer's shell may hold; a server under test gets only what the test gives it
_SETTINGS = (
    "MODEL_URI", "MODEL_SHA256", "MODEL_VERSION", "BATCH_OUTPUT_URI", "MAX_ROWS", "MAX_BODY_BYTES",
    "CORS_ALLOW_ORIGINS", "LOG_LEVEL", "PRELOAD_MODEL", "STORAGE_TIMEOUT_SECONDS",
    "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
)
SDK_RETRY = DEFAULT_RETRY.with_timeout(10)  # the test's own client fails in seconds, never minutes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def isolated_env() -> Callable[..., dict[str, str]]:
    """``isolated_env(**settings)``: this process's environment without any serverless-ml or
    Google setting, plus ``settings``: for the programs the tests start."""
    return clean_env


def function_command(source: Path = FUNCTION_SOURCE, port: int = 0) -> list[str]:
    return [str(BIN / "functions-framework"), "--target", "predict", "--source", str(source),
            "--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="session")
def functions_framework_command() -> Callable[..., list[str]]:
    """``functions_framework_command(source, port)``: the command line that serves a function."""
    return function_command


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_answers(url: str, process: subprocess.Popen, log_path: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is serving
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"{what} did not answer {url} within 30 s: {log_path.read_text()[-3000:]}")
        time.sleep(0.05)


# --- the GCS emulator ----------------------------------------------------------------------------


@dataclass
class GcsEmulator:
    port: int
    log_dir: Path
    process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "GcsEmulator":
        """Start (or restart, on the same port, empty) the in-memory emulator."""
        log_path = self.log_dir / f"gcs-emulator-{self.port}.log"
        self.process = subprocess.Popen(
            [str(BIN / "gcp-storage-emulator"), "start", "--host=127.0.0.1", f"--port={self.port}", "--in-memory"],
            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, env=clean_env(),
        )
        _wait_until_answers(f"{self.url}/storage/v1/b?project={PROJECT}", self.process, log_path, "the GCS emulator")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def client(self) -> storage.Client:
        """A client of this emulator that does not depend on the test process's environment."""
        return storage.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )

    def create_bucket(self, name: str) -> storage.Bucket:
        return self.client().create_bucket(name, retry=SDK_RETRY, timeout=10)

    def upload(self, bucket: str, key: str, data: bytes) -> None:
        self.client().bucket(bucket).blob(key).upload_from_string(data, retry=SDK_RETRY, timeout=10)


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
def gcp_project() -> str:
    """The GOOGLE_CLOUD_PROJECT the functions under test run in."""
    return PROJECT


@pytest.fixture(scope="session")
def model_bytes(demo_model_path) -> bytes:
    return demo_model_path.read_bytes()


@pytest.fixture(scope="session")
def model_in_gcs(gcs_emulator, model_bytes) -> str:
    """The demo model uploaded to the emulator; its gs:// URI."""
    gcs_emulator.create_bucket(MODEL_BUCKET)
    gcs_emulator.upload(MODEL_BUCKET, MODEL_KEY, model_bytes)
    return MODEL_URI


# --- functions-framework's server ----------------------------------------------------------------


class FunctionServer(LocalEndpoint):
    """A running function. Requests go out with exactly the headers given (urllib would add a
    form Content-Type to every body)."""

    def request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None):
        host, port = self.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


def start_function(workdir: Path, env: dict[str, str], source: Path = FUNCTION_SOURCE) -> FunctionServer:
    """``functions-framework --target predict --source <source>`` on a free port, once /health answers."""
    port = free_port()
    runtime_dir = workdir / "run"  # gunicorn's control socket goes here, not in the home folder
    runtime_dir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "function.log"
    process = subprocess.Popen(
        function_command(source, port),
        stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, cwd=workdir,
        # LOG_EXECUTION_ID=true is what Cloud Functions gen2 sets for Python runtimes
        env=clean_env(XDG_RUNTIME_DIR=str(runtime_dir), LOG_EXECUTION_ID="true", **env),
    )
    url = f"http://127.0.0.1:{port}"
    _wait_until_answers(f"{url}/health", process, log_path, "functions-framework")
    return FunctionServer(url, process, log_path)


@pytest.fixture(scope="session")
def function_factory(tmp_path_factory) -> Iterator[Callable[..., FunctionServer]]:
    """Starts functions-framework servers (each reads its settings once, like a deployed
    function) and stops them all at the end of the session."""
    started: list[FunctionServer] = []

    def start(env: dict[str, str], source: Path = FUNCTION_SOURCE) -> FunctionServer:
        server = start_function(tmp_path_factory.mktemp("function"), env, source)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_process(server.process)


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
        {
            "MODEL_URI": model_in_gcs,
            "STORAGE_EMULATOR_HOST": gcs_emulator.url,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "STORAGE_TIMEOUT_SECONDS": "5",
            **LIMITS,
        }
    )
