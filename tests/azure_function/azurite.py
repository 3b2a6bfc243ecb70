"""Azurite, the Azure Blob emulator, run as a real local server for the tests.

Started from the project's own npm install (``node_modules/.bin/azurite-blob``, pinned by
package-lock.json) on 127.0.0.1 on a free port, in memory. Tests may stop, restart (same port,
empty again), freeze and thaw it to see how the product behaves when the service fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from azure.storage.blob import BlobServiceClient, LinearRetry

from tests.support import free_port, stop_process, wait_until_answers

REPO = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO / "node_modules" / ".bin" / "azurite-blob"

# Azurite's well-known development account (documented by Microsoft; not a secret)
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int, account: str = ACCOUNT, key: str = ACCOUNT_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{account};"
    )


class Azurite:
    """One azurite-blob process. ``accounts`` is AZURITE_ACCOUNTS (``name:key1[:key2]``)."""

    def __init__(self, log_dir: Path, accounts: str | None = None) -> None:
        if not AZURITE_BLOB.exists():
            raise RuntimeError(
                f"{AZURITE_BLOB.relative_to(REPO)} is missing; run `npm ci` in the repository root "
                "(make test does it)"
            )
        self.port = free_port()
        self.log_path = log_dir / f"azurite-{self.port}.log"
        self.accounts = accounts
        self.process: subprocess.Popen | None = None

    @property
    def account(self) -> str:
        return self.accounts.split(":", 1)[0] if self.accounts else ACCOUNT

    @property
    def key(self) -> str:
        return self.accounts.split(":")[1] if self.accounts else ACCOUNT_KEY

    @property
    def connection_string(self) -> str:
        return connection_string(self.port, self.account, self.key)

    def start(self) -> Azurite:
        env = dict(os.environ)
        env.pop("AZURITE_ACCOUNTS", None)
        if self.accounts:
            env["AZURITE_ACCOUNTS"] = self.accounts
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [
                    str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                    "--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--disableTelemetry",
                ],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        # any HTTP answer (403 without a signature) means it is up
        wait_until_answers(
            f"http://127.0.0.1:{self.port}/{self.account}?comp=list", self.process, self.log_path, "azurite-blob"
        )
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.thaw()
        stop_process(self.process)
        self.process = None

    def restart(self, accounts: str | None = None) -> Azurite:
        """Stop, then start on the same port (in memory: empty again), optionally with new keys."""
        self.stop()
        if accounts is not None:
            self.accounts = accounts
        return self.start()

    def freeze(self) -> None:
        """Stop the process without closing its socket: connections open, no answer ever comes."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> BlobServiceClient:
        """A client for setting up test data; retries are short so a test never hangs on it."""
        return BlobServiceClient.from_connection_string(
            self.connection_string,
            retry_policy=LinearRetry(backoff=0.2, retry_total=2, random_jitter_range=0),
            connection_timeout=5, read_timeout=10,
        )

    def put(self, container: str, blob: str, data: bytes) -> str:
        """Upload ``data``, creating the container if needed; the eTag of the blob it created
        (quoted, as the service answers it)."""
        service = self.client()
        if not service.get_container_client(container).exists():
            service.create_container(container)
        return service.get_blob_client(container, blob).upload_blob(data, overwrite=True)["etag"]
