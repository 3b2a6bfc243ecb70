"""Replaying the generated corpus through every provider at once: the AWS and Azure replays run
in worker processes (replay.py) while this process sends the corpus over HTTP to the GCP function
served by functions-framework, so the three share the machine's cores instead of taking turns."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.gcp_parts import start_function
from tests.robustness import oracle
from tests.robustness.generated import FuzzRequest
from tests.support import isolated_env, stop_process

HERE = Path(__file__).resolve().parent
CONNECTIONS = 4  # keep-alive connections to the GCP function
CORPUS_SIZE = 10_000
# recognisable fake secrets: no answer and no log line may ever carry one of them
FAKE_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEROBUSTNESS42",
    "AWS_SECRET_ACCESS_KEY": "fakeSecretKey/ROBUSTNESS+do-not-leak-0001",
    "AWS_SESSION_TOKEN": "FAKE-SESSION-TOKEN-ROBUSTNESS-do-not-leak-0002",
    "AZURE_STORAGE_CONNECTION_STRING": (
        "DefaultEndpointsProtocol=https;AccountName=fakeacct;"
        "AccountKey=RkFLRS1BQ0NPVU5ULUtFWS1ST0JVU1RORVNTLWRvLW5vdC1sZWFr;EndpointSuffix=core.windows.net"
    ),
    "API_TOKEN": "fake-api-token-ROBUSTNESS-do-not-leak-0003",
}
SUMMARY: list[str] = []  # printed at the end of the run (pytest_terminal_summary)
Answer = tuple[int, dict, bytes]


@dataclass
class Run:
    """One provider's answers to the corpus, in corpus order, and its log lines."""

    answers: list[Answer]
    log_lines: list[str]
    resent: int = 0  # requests sent again on a keep-alive connection the server had closed


@dataclass
class Verdict:
    provider: str
    tried: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def judge(self, request: FuzzRequest, status: int, headers: dict, body: bytes, forbidden) -> None:
        self.tried += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        found = oracle.problems(request.method, request.path, status, headers, body, forbidden)
        if found:
            self.failures.append(f"{request!r} -> {status} {body[:300]!r}: {'; '.join(found)}")

    def report(self) -> str:
        line = (f"{self.provider}: {self.tried} generated requests, statuses "
                f"{dict(sorted(self.statuses.items()))}, {len(self.failures)} failures")
        SUMMARY.append(line)
        print(line)
        return line

    def assert_clean(self, minimum: int = CORPUS_SIZE) -> None:
        assert self.tried >= minimum, f"only {self.tried} requests were tried; expected at least {minimum}"
        assert not self.failures, f"{len(self.failures)} bad answers, the first ones:\n" + "\n".join(self.failures[:15])


class WorkerReplay:
    """replay.py for one in-process provider (aws, azure), started at once, read on ``result()``."""

    def __init__(self, provider: str, corpus_path: Path, env: dict[str, str], workdir: Path) -> None:
        self.answers_path, self.log_path = workdir / f"{provider}-answers.jsonl", workdir / f"{provider}.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(HERE / "replay.py"), provider, str(corpus_path), str(self.answers_path)],
                stdout=log, stderr=subprocess.STDOUT, env=isolated_env(**env), cwd=workdir,
            )
        self._run: Run | None = None

    def result(self) -> Run:
        if self._run is None:
            returncode = self.process.wait(timeout=300)
            lines = self.log_path.read_text(errors="replace").splitlines()
            assert returncode == 0, "\n".join(lines[-40:])
            answers = []
            for line in self.answers_path.read_text().splitlines():
                answer = json.loads(line)
                answers.append((answer["status"], answer["headers"], base64.b64decode(answer["body"])))
            self._run = Run(answers, lines)
        return self._run


def send_all(url: str, requests: list[FuzzRequest]) -> tuple[list[Answer], int]:
    """Each request exactly as generated (its headers in order, no Content-Type added), over one
    keep-alive connection per thread; a connection the server closed is opened again."""
    host, port = url.removeprefix("http://").split(":")

    resent = []

    def send_slice(start: int) -> list[tuple[int, Answer]]:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        answers = []
        for number in range(start, len(requests), CONNECTIONS):
            request = requests[number]
            for attempt in (1, 2):
                try:
                    connection.putrequest(request.method, request.target, skip_accept_encoding=True)
                    for name, value in request.headers:
                        connection.putheader(name, value.encode("latin-1"))
                    connection.putheader("Content-Length", str(len(request.body)))
                    connection.endheaders(request.body)
                    response = connection.getresponse()
                    body = response.read()
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    connection.close()  # a keep-alive connection the server had closed: retried once
                    if attempt == 2:
                        raise
                    resent.append(number)
            answers.append((number, (response.status, {k.lower(): v for k, v in response.getheaders()}, body)))
            if response.will_close:
                connection.close()
        connection.close()
        return answers

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        numbered = [answer for part in pool.map(send_slice, range(CONNECTIONS)) for answer in part]
    return [answer for _, answer in sorted(numbered, key=lambda pair: pair[0])], len(resent)


def gcp_run(requests: list[FuzzRequest], env: dict[str, str], workdir: Path) -> Run:
    function = start_function(workdir, env)
    try:
        answers, resent = send_all(function.url, requests)
    finally:
        stop_process(function.process)
    return Run(answers, function.log_path.read_text(errors="replace").splitlines(), resent)


def judge_run(provider: str, requests: list[FuzzRequest], run: Run, env: dict[str, str]) -> Verdict:
    forbidden = oracle.forbidden_values(env)
    verdict = Verdict(provider)
    assert len(run.answers) == len(requests), "an answer for every request"
    for fuzz_request, (status, headers, body) in zip(requests, run.answers, strict=True):
        verdict.judge(fuzz_request, status, headers, body, forbidden)
    verdict.report()
    return verdict
