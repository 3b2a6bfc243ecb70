"""Fixtures of the robustness tests: the generated corpus, the settings the fuzzed functions run
with (including recognisable fake secrets), and the replay of a corpus through a provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.robustness.generated import FUZZ_SETTINGS, FuzzRequest, corpus
from tests.robustness.runs import CORPUS_SIZE, FAKE_SECRETS, SUMMARY, Run, WorkerReplay, gcp_run


@pytest.fixture(scope="session")
def fuzz_corpus(tmp_path_factory) -> tuple[list[FuzzRequest], Path]:
    """The generated requests (the same on every run) and the file the replay workers read."""
    requests = corpus(CORPUS_SIZE)
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("".join(json.dumps(r.as_json()) + "\n" for r in requests))
    return requests, path


@pytest.fixture(scope="session")
def fuzz_env(demo_model_uri) -> dict[str, str]:
    """The settings of a fuzzed function: the demo model, small limits, fake secrets around."""
    return {"MODEL_URI": demo_model_uri, "LOG_LEVEL": "INFO", **FUZZ_SETTINGS, **FAKE_SECRETS}


# the test modules that need each provider's replay
PROVIDER_MODULES = {
    provider: {f"test_malformed_requests_{provider}", "test_malformed_requests_agree"}
    for provider in ("aws", "azure", "gcp")
}


@pytest.fixture(scope="session")
def fuzz_runs(request, fuzz_corpus, fuzz_env, tmp_path_factory) -> dict[str, Run]:
    """The corpus replayed through every provider whose fuzz test is in this session, at once."""
    requests, corpus_path = fuzz_corpus
    selected = {item.module.__name__.rsplit(".", 1)[-1] for item in request.session.items}
    wanted = [provider for provider, modules in PROVIDER_MODULES.items() if modules & selected]
    workers = {
        provider: WorkerReplay(provider, corpus_path, fuzz_env, tmp_path_factory.mktemp(provider))
        for provider in wanted if provider != "gcp"
    }
    try:
        runs = {"gcp": gcp_run(requests, fuzz_env, tmp_path_factory.mktemp("gcp"))} if "gcp" in wanted else {}
        runs.update((provider, worker.result()) for provider, worker in workers.items())
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
    return runs


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("robustness: requests tried")
        for line in SUMMARY:
            terminalreporter.write_line(line)
