"""10,000 generated malformed requests through ``aws_lambda.handler.predict``, as events of the
four HTTP sources (API Gateway REST, HTTP API, Function URL, ALB: request i comes from source
i % 4; bodies that are not UTF-8, and a quarter of the others, arrive base64-encoded): never a
5xx, never a stack trace, server path or secret, every error body the documented Error schema,
one log line per request and no unhandled error in the log."""

from __future__ import annotations

from tests.robustness import oracle
from tests.robustness.runs import FAKE_SECRETS, judge_run


def test_every_generated_request_gets_a_documented_answer(fuzz_corpus, fuzz_runs, fuzz_env):
    requests, _ = fuzz_corpus
    run = fuzz_runs["aws"]
    judge_run("aws (handler.predict, 4 event sources)", requests, run, fuzz_env).assert_clean()
    assert not oracle.log_problems(run.log_lines, FAKE_SECRETS.values())
    assert sum('"message": "request"' in line for line in run.log_lines) == len(requests), "every request is logged once"
