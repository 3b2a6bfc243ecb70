"""moto's S3 server as a real local process: start, wait, count requests from its log, freeze, stop."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port, stop_process, wait_until_answers

REPO = Path(__file__).resolve().parents[2]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def moto_executable() -> str:
    """``moto_server`` next to this interpreter (the venv's), else on the PATH."""
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if not found:
        raise RuntimeError("moto_server is not installed; install serverless-ml[test] (moto[server])")
    return found


@dataclass
class MotoServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def request_lines(self) -> list[str]:
        return [_ANSI.sub("", line) for line in self.log_path.read_text(errors="replace").splitlines()]

    def count(self, method: str, path: str) -> int:
        """How many ``method path`` requests the server logged (query strings ignored)."""
        pattern = re.compile(rf'"{re.escape(method)} {re.escape(path)}(\?[^ ]*)? HTTP/1\.[01]"')
        return sum(1 for line in self.request_lines() if pattern.search(line))

    def env(self) -> dict[str, str]:
        """What an S3 client needs to reach this server, and nothing real."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            **DUMMY_CREDENTIALS,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing answers them."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)


# Variables that would point a client elsewhere or at real credentials; removed for the tests.
AWS_VARIABLES_TO_CLEAR = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL",
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
)


def start_moto(folder: Path, extra_env: dict[str, str] | None = None, name: str = "moto",
               command: list[str] | None = None) -> MotoServer:
    """Start ``moto_server -H 127.0.0.1 -p <free port>`` (or ``command`` with those arguments)
    and wait until it answers (30 s at most)."""
    port = free_port()
    log_path = folder / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra_env or {})
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*(command or [moto_executable()]), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder,
        )
    server = MotoServer(f"http://127.0.0.1:{port}", process, log_path)
    wait_until_answers(server.url + "/moto-api/", process, log_path, "moto_server")
    return server


def stop_moto(server: MotoServer) -> None:
    if server.process.poll() is None:
        server.thaw()  # a frozen process does not act on SIGTERM
        stop_process(server.process)


@contextmanager
def pointed_at(server: MotoServer, monkeypatch) -> Iterator[MotoServer]:
    """This process's AWS settings point at ``server`` (dummy credentials, no metadata lookups, no
    ~/.aws files) until the block ends; S3 clients are rebuilt on either side."""
    from core.storage.s3 import drop_all_clients

    for name in AWS_VARIABLES_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    drop_all_clients()
    try:
        yield server
    finally:
        drop_all_clients()
