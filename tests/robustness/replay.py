"""Replays a corpus of generated requests through one provider's real entry point, in a fresh
process (settings are read once per process, as in a deployed function).

    python tests/robustness/replay.py aws   corpus.jsonl answers.jsonl
    python tests/robustness/replay.py azure corpus.jsonl answers.jsonl

aws: ``aws_lambda.handler.predict(event, context)``; request number i arrives as an event of
source i % 4 (API Gateway REST, HTTP API, Function URL, ALB), built the way each source builds
them (tests/aws_lambda/lambda_support.py). azure: the functions of ``azure_function/function_app.py``
called with a ``func.HttpRequest``, routed as the Functions host routes (azure_function/local_host.py).
Each answer is written as one JSON line: status, lower-case headers, body (base64).
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: the repository's root holds the tests package

from tests.robustness.generated import FuzzRequest  # noqa: E402

Answer = tuple[int, dict[str, str], bytes]


def aws() -> Callable[[int, FuzzRequest], Answer]:
    from aws_lambda.handler import predict
    from tests.aws_lambda import lambda_support as support

    def run(number: int, request: FuzzRequest) -> Answer:
        source = support.SOURCES[number % 4]
        try:
            request.body.decode("utf-8")
            # a body that is valid UTF-8 still arrives base64-encoded now and then (HTTP API does it
            # for any content type it does not know as text)
            base64_body, escaped = number % 8 >= 6, None
        except UnicodeDecodeError:
            # bytes that are not UTF-8 arrive base64-encoded, or (every other one) as a JSON string
            # with lone surrogates, which a hand-made or test event can hold; binary tensors (the
            # Open Inference Protocol's binary-data extension) always base64-encoded, as API Gateway
            # sends binary media, so that their bytes reach core as they reach it on the other clouds
            binary_tensors = request.header("inference-header-content-length") is not None
            base64_body = number % 2 == 0 or binary_tensors
            escaped = None if base64_body else request.body.decode("utf-8", "surrogateescape")
        # request.path is the path as sent (percent-encoded); API Gateway REST hands over the path
        # decoded, HTTP API and Function URL as sent in rawPath, ALB as sent
        path = unquote(request.path) if source == "api-gateway-rest" else request.path
        event = support.make_event(
            source, request.method, path, body=None if escaped else request.body,
            headers=dict(request.headers), query=list(request.query), base64_body=base64_body,
            multi_value=number % 8 != 3,
        )
        if escaped is not None:
            event["body"] = escaped
        answer = predict(event, support.LambdaContext(aws_request_id=str(uuid.uuid4())))
        headers = support.response_headers(answer)
        body = answer["body"]
        raw = base64.b64decode(body) if answer["isBase64Encoded"] else body.encode("utf-8")
        return answer["statusCode"], {k.lower(): v for k, v in headers.items()}, raw

    return run


def azure() -> Callable[[int, FuzzRequest], Answer]:
    import logging

    # the Functions worker collects what reaches the root logger; here it goes to stderr
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # the Functions worker imports function_app with the app's folder on the path; so does this
    sys.path.insert(0, str(REPO / "azure_function"))
    import function_app
    from local_host import FunctionsHost

    host = FunctionsHost(function_app.app, REPO / "azure_function" / "host.json")

    def run(number: int, request: FuzzRequest) -> Answer:
        url = host.url(request.target)
        # every path and method reaches a function: `unmatched` takes what the others do not
        response = host.request(request.method, request.path, url=url, headers=dict(request.headers), body=request.body)
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.get_body()

    return run


def main() -> None:
    provider, corpus_path, answers_path = sys.argv[1:4]
    run = {"aws": aws, "azure": azure}[provider]()
    with open(corpus_path) as corpus, open(answers_path, "w") as out:
        for number, line in enumerate(corpus):
            status, headers, body = run(number, FuzzRequest.from_json(json.loads(line)))
            out.write(json.dumps({"status": status, "headers": headers, "body": base64.b64encode(body).decode()}) + "\n")


if __name__ == "__main__":
    main()
