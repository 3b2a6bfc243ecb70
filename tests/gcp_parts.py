"""The GCS emulator (PyPI ``gcp-storage-emulator``) and functions-framework's own server, started
on 127.0.0.1 on free ports for the tests that need them."""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from tests.support import REPO, LocalEndpoint, free_port, isolated_env, stop_process, wait_until_answers

BIN = Path(sys.executable).parent
FUNCTION_SOURCE = REPO / "gcp_function" / "main.py"
PROJECT = "test-project"
SDK_RETRY = DEFAULT_RETRY.with_timeout(10)  # the test's own client fails in seconds, never minutes


@dataclass
class GcsEmulator:
    port: int
    log_dir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GcsEmulator:
        """Start (or restart, on the same port, empty) the in-memory emulator."""
        log_path = self.log_dir / f"gcs-emulator-{self.port}.log"
        self.process = subprocess.Popen(
            [str(BIN / "gcp-storage-emulator"), "start", "--host=127.0.0.1", f"--port={self.port}", "--in-memory"],
            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, env=isolated_env(),
        )
        wait_until_answers(f"{self.url}/storage/v1/b?project={PROJECT}", self.process, log_path, "the GCS emulator")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def env(self) -> dict[str, str]:
        """What a function needs to reach this emulator, and the project it runs in."""
        return {"STORAGE_EMULATOR_HOST": self.url, "GOOGLE_CLOUD_PROJECT": PROJECT}

    def client(self) -> storage.Client:
        """A client of this emulator that does not depend on the test process's environment."""
        return storage.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )

    def create_bucket(self, name: str) -> storage.Bucket:
        return self.client().create_bucket(name, retry=SDK_RETRY, timeout=10)

    def upload(self, bucket: str, key: str, data: bytes) -> int:
        """Upload ``data``; the generation it created (what its finalize event names)."""
        blob = self.client().bucket(bucket).blob(key)
        blob.upload_from_string(data, retry=SDK_RETRY, timeout=10)
        return blob.generation


def function_command(
    source: Path = FUNCTION_SOURCE, port: int = 0, target: str = "predict", signature_type: str | None = None
) -> list[str]:
    command = [str(BIN / "functions-framework"), "--target", target, "--source", str(source),
               "--host", "127.0.0.1", "--port", str(port)]
    if signature_type is not None:
        command += ["--signature-type", signature_type]
    return command


def function_env(workdir: Path, settings: dict[str, str]) -> dict[str, str]:
    """The environment functions-framework runs in: ``settings`` and no setting of this shell,
    gunicorn's control socket under ``workdir`` (not in the home folder, and not shared by two
    servers), and LOG_EXECUTION_ID=true, which Cloud Functions gen2 sets for Python runtimes."""
    runtime_dir = workdir / "run"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    return isolated_env(XDG_RUNTIME_DIR=str(runtime_dir), LOG_EXECUTION_ID="true", **settings)


class FunctionServer(LocalEndpoint):
    """A running function. Requests go out with exactly the headers given (urllib would add a
    form Content-Type to every body)."""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        host, port = self.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


def start_function(
    workdir: Path, env: dict[str, str], source: Path = FUNCTION_SOURCE,
    target: str = "predict", signature_type: str | None = None,
) -> FunctionServer:
    """``functions-framework --target <target> --source <source>`` on a free port, once it answers
    (``/health`` for the HTTP function; any HTTP answer for an event function)."""
    port = free_port()
    process_env = function_env(workdir, env)  # creates workdir, where the log goes
    log_path = workdir / "function.log"
    process = subprocess.Popen(
        function_command(source, port, target, signature_type),
        stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, cwd=workdir, env=process_env,
    )
    url = f"http://127.0.0.1:{port}"
    # an event function answers a GET with 400 (not an event): enough to know it is serving
    wait_until_answers(f"{url}/health", process, log_path, "functions-framework")
    return FunctionServer(url, process, log_path)


@contextmanager
def function_servers(folder: Path) -> Iterator[Callable[..., FunctionServer]]:
    """``start(env, source=..., target=..., signature_type=...)`` for a fixture: each server (which
    reads its settings once, like a deployed function) in a folder of its own under ``folder``,
    all of them stopped on leaving."""
    started: list[FunctionServer] = []

    def start(env: dict[str, str], source: Path = FUNCTION_SOURCE, target: str = "predict",
              signature_type: str | None = None) -> FunctionServer:
        server = start_function(folder / f"function-{len(started)}", env, source, target, signature_type)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            stop_process(server.process)
