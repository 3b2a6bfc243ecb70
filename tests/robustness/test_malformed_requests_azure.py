"""10,000 generated malformed requests through the Azure Functions app: each one a
``func.HttpRequest`` handed to the function of function_app.py that the Functions host routes it
to (azure_function/local_host.py): never a 5xx, never a stack trace, server path or secret, every
error body the documented Error schema, one log line per request and no unhandled error."""

from __future__ import annotations

from tests.robustness import oracle
from tests.robustness.runs import FAKE_SECRETS, judge_run


def test_every_generated_request_gets_a_documented_answer(fuzz_corpus, fuzz_runs, fuzz_env):
    requests, _ = fuzz_corpus
    run = fuzz_runs["azure"]
    judge_run("azure (func.HttpRequest -> function_app)", requests, run, fuzz_env).assert_clean()
    assert not oracle.log_problems(run.log_lines, FAKE_SECRETS.values())
    assert sum('"message": "request"' in line for line in run.log_lines) == len(requests), "every request is logged once"
