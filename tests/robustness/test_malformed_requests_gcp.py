"""10,000 generated malformed requests over HTTP to ``gcp_function/main.py: predict`` served by
functions-framework's own server, from 4 keep-alive connections: never a 5xx, never a stack
trace, server path or secret, every error body the documented Error schema, one log line per
request and no unhandled error in the function's log."""

from __future__ import annotations

from tests.robustness import oracle
from tests.robustness.runs import FAKE_SECRETS, judge_run


def test_every_generated_request_gets_a_documented_answer(fuzz_corpus, fuzz_runs, fuzz_env):
    requests, _ = fuzz_corpus
    run = fuzz_runs["gcp"]
    judge_run("gcp (functions-framework over HTTP)", requests, run, fuzz_env).assert_clean()
    assert not oracle.log_problems(run.log_lines, FAKE_SECRETS.values())
    logged = sum('"message": "request"' in line for line in run.log_lines)
    # once each, plus the /health the starter waits for (and a resent one may be logged twice)
    assert len(requests) + 1 <= logged <= len(requests) + 1 + run.resent, "every request is logged once"
