"""Helpers the tests share: building a service, calling it, and running the real local endpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.http import HttpRequest, HttpResponse, PredictionService
from core.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def make_service(model_uri: str, **env: str) -> PredictionService:
    return PredictionService(Settings.from_env({"MODEL_URI": model_uri, **env}))


def post_json(service: PredictionService, body, path: str = "/predict", **headers: str) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return service.handle(
        HttpRequest("POST", path, headers={"content-type": "application/json", **headers}, body=raw)
    )


def answer(response: HttpResponse) -> dict:
    return json.loads(response.body)


class NegativeRefusingModel:
    """A model whose predict() refuses negative values, as some encoders do (pickled by reference)."""

    n_features_in_ = 2

    def predict(self, X):
        if (X < 0).any():
            raise ValueError("Input X contains negative values")
        return X.sum(axis=1)


class OverflowingRegressor:
    """A regressor whose prediction overflows to infinity for a first feature above 100."""

    n_features_in_ = 2

    def predict(self, X):
        import numpy as np

        return np.where(X[:, 0] > 100, np.inf, X.sum(axis=1))


class BrokenModel:
    """A model that fails for a reason of its own, not the input's."""

    n_features_in_ = 2

    def predict(self, X):
        raise RuntimeError("secret-internal-state at /srv/app/model.py")


# batch inputs for the demo model: every row good, and the same with one bad value on line 3
GOOD_CSV = (
    "sepal_length,sepal_width,petal_length,petal_width\n"
    "5.1,3.5,1.4,0.2\n"
    "6.7,3.0,5.2,2.3\n"
)
CSV_WITH_A_BAD_ROW = (
    "sepal_length,sepal_width,petal_length,petal_width\n"
    "5.1,3.5,1.4,0.2\n"
    "5.9,3.0,abc,1.8\n"
    "6.7,3.0,5.2,2.3\n"
)


# --- the real local endpoint -------------------------------------------------------------------


@dataclass
class LocalEndpoint:
    url: str
    process: subprocess.Popen
    log_path: Path

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body bytes) of one HTTP request; HTTP errors are answers too."""
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def post_json(self, body, path: str = "/predict"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request("POST", path, raw, {"Content-Type": "application/json"})

    def log_lines(self) -> list[dict]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


def serve_command() -> list[str]:
    """The installed console script when present, else the same entry point through -m."""
    script = Path(sys.executable).with_name("serverless-ml")
    if script.exists():
        return [str(script)]
    found = shutil.which("serverless-ml")
    return [found] if found else [sys.executable, "-m", "serverless_ml.cli"]


def start_endpoint(tmp_path: Path, env: dict[str, str], extra_args: tuple[str, ...] = ()) -> LocalEndpoint:
    """Start ``serverless-ml serve --port 0`` on 127.0.0.1 and wait until /health answers."""
    log_path = tmp_path / "server.log"
    log = open(log_path, "w")
    full_env = {k: v for k, v in os.environ.items() if k not in ("MODEL_URI", "MODEL_SHA256")}
    full_env.update(env)
    process = subprocess.Popen(
        [*serve_command(), "serve", "--host", "127.0.0.1", "--port", "0", *extra_args],
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=tmp_path,
        env=full_env,
        text=True,
    )
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise RuntimeError(f"serve exited with {process.returncode}: {log_path.read_text()[-2000:]}")
    endpoint = LocalEndpoint(json.loads(line)["listening"], process, log_path)
    deadline = time.monotonic() + 30
    while True:
        try:
            status, _, _ = endpoint.request("GET", "/health")
            if status == 200:
                return endpoint
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_endpoint(endpoint)
            raise RuntimeError("the local endpoint did not answer /health within 30 s")
        time.sleep(0.05)


def stop_endpoint(endpoint: LocalEndpoint) -> None:
    endpoint.process.terminate()
    try:
        endpoint.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        endpoint.process.kill()
        endpoint.process.wait()
    endpoint.process.stdout.close()


# --- programs the tests start ------------------------------------------------------------------

# settings a developer's shell may hold; a server under test gets only what the test gives it
_SETTINGS = (
    "MODEL_URI", "MODEL_SHA256", "MODEL_VERSION", "BATCH_OUTPUT_URI", "BATCH_CHUNK_ROWS", "BATCH_PART_BYTES", "MAX_ROWS",
    "MAX_BODY_BYTES",
    "CORS_ALLOW_ORIGINS", "LOG_LEVEL", "PRELOAD_MODEL", "STORAGE_TIMEOUT_SECONDS",
    "SKOPS_TRUSTED_TYPES", "STRICT_MODEL_VERSION", "ONNX_THREADS", "BATCH_INPUT_URI",
    "BATCH_FANOUT_PART_BYTES", "BATCH_FANOUT_PART_ROWS",
    "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    env.update(extra)
    return env


def isolated_env(**extra: str) -> dict[str, str]:
    """This process's environment without any serverless-ml or cloud setting, plus ``extra``:
    for the programs the tests start, which get only what the test gives them."""
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_answers(url: str, process: subprocess.Popen, log_path: Path, what: str) -> None:
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
