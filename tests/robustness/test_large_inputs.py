"""Very large and deeply nested bodies, at the default limit (MAX_BODY_BYTES, 6 MiB), are refused
with a clear 4xx without exhausting memory or time; and what the local server reads before the
body (Content-Length, chunk sizes) is checked before it is trusted.

Memory is measured with tracemalloc around one request (peak over what was allocated before);
time is only guarded by the test timeout (a hang fails the test; speed is measured in bench/).
"""

from __future__ import annotations

import json
import socket
import tracemalloc

import pytest

from tests.support import make_service, post_json

MIB = 1024 * 1024
ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def default_service(demo_model_uri):
    service = make_service(demo_model_uri)  # the default limits: 6 MiB, 10,000 rows
    assert service.preload()
    return service


def fill(head: str, item: str, tail: str, size: int = 6 * MIB - 64) -> bytes:
    """``head`` + ``item`` repeated (comma-separated) + ``tail``, just under ``size`` bytes."""
    count = (size - len(head) - len(tail)) // (len(item) + 1)
    return (head + ",".join([item] * count) + tail).encode()


def distinct_columns() -> bytes:
    columns, size, n = [], 0, 0
    while size < 6 * MIB - 200:
        name = f"c{n}"
        columns.append(name)
        size += len(name) + 4
        n += 1
    columns.append("c0")  # one name twice
    return json.dumps({"dataframe_split": {"columns": columns, "data": [[1]]}}).encode()


CASES = {
    # name: (body, status, code, a fragment of the message)
    "6 MiB of open brackets": (b"[" * (6 * MIB - 64), 400, "malformed_json", "nested too deeply"),
    "6 MiB of nested objects": (b'{"a":' * (MIB + MIB // 5), 400, "malformed_json", "nested too deeply"),
    "brackets closed at 100,000 deep": (b'{"instances":' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400,
                                        "malformed_json", "nested too deeply"),
    "3 million values in one row": (fill('{"features": [', "1", "]}"), 400, "invalid_features",
                                    "expected 4 features"),
    "rows past MAX_ROWS": (fill('{"instances": [', json.dumps(ROW), "]}"), 413, "payload_too_large", "MAX_ROWS"),
    "600,000 columns named, one twice": (distinct_columns(), 400, "invalid_features", "'c0' more than once"),
    "one key of 6 MiB": (b'{"' + b"k" * (6 * MIB - 64) + b'": 1}', 400, "invalid_shape", "received the keys"),
    "integers of 5,000 digits": (fill('{"instances": [', "1" * 5000, "]}", MIB), 400, "invalid_value",
                                 "more than 4300 digits"),
    "one string of 6 MiB": (b'{"features": ["' + b"x" * (6 * MIB - 64) + b'", 1, 2, 3]}', 400, "invalid_value",
                            "is the string"),
}


@pytest.mark.timeout(60)  # before the fix, the duplicated columns took hours (a quadratic count)
@pytest.mark.parametrize("name", list(CASES))
def test_huge_bodies_at_the_limit_are_a_clear_4xx_in_bounded_memory(default_service, name):
    body, status, code, fragment = CASES[name]
    assert len(body) <= 6 * MIB
    tracemalloc.start()
    try:
        response = post_json(default_service, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    answer = json.loads(response.body)
    assert (response.status, answer["error"]["code"]) == (status, code), answer
    assert fragment in answer["error"]["message"]
    # the answer quotes the input only in short excerpts, however large the input
    assert len(response.body) < 2000
    # parsing keeps at most a few copies of the body; 3 million parsed numbers cost about 28 MB
    assert peak < 12 * len(body) + 16 * MIB, f"{peak / MIB:.0f} MiB for a body of {len(body) / MIB:.1f} MiB"


def test_a_body_over_the_limit_is_refused_before_it_is_decoded(default_service):
    body = b"[" * (6 * MIB + 1)
    tracemalloc.start()
    try:
        response = post_json(default_service, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status == 413
    assert peak < MIB  # not even decoded to text


# --- the local server: what comes before the body ---------------------------------------------------


def exchange(endpoint, head: bytes, rest: bytes = b"") -> tuple[int, dict]:
    """Send raw bytes, read one answer; the socket timeout fails a server that waits forever."""
    host, port = endpoint.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as connection:
        connection.sendall(head + rest)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            assert chunk, f"the server closed the connection without an answer: {data!r}"
            data += chunk
        header, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            chunk = connection.recv(65536)
            assert chunk
            body += chunk
    return int(header.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "head, rest",
    [
        # a Content-Length in digits that are not ASCII: str.isdigit() said yes, int() said no
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", b"{}"),
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -4\r\n\r\n", b"{}"),
        # chunk sizes int(..., 16) would take: -1 read until the client hung up, -5 crashed
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"-1\r\n{}\r\n"),
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"-5\r\n{}\r\n"),
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"0x2\r\n{}\r\n0\r\n\r\n"),
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"zz\r\n{}\r\n"),
    ],
    ids=["superscript-length", "negative-length", "chunk-minus-1", "chunk-minus-5", "chunk-0x", "chunk-zz"],
)
def test_the_local_server_answers_a_broken_framing_with_a_400(endpoint, head, rest):
    status, answer = exchange(endpoint, head, rest)
    assert status == 400, answer
    assert answer["error"]["code"] == "bad_request"
    assert "expected" in answer["error"]["message"] or "not a number of bytes" in answer["error"]["message"]
    # and the server still serves
    status, answer = exchange(endpoint, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200


@pytest.mark.parametrize("method", [b"TRACE", b"QUERY", b"PROPFIND"])
def test_the_local_server_answers_any_method_like_the_functions(endpoint, method):
    """http.server answered methods it has no handler for with its own HTML 501."""
    status, answer = exchange(endpoint, method + b" /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert status == 405 and answer["error"]["code"] == "method_not_allowed", answer
    status, answer = exchange(endpoint, method + b" /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert status == 404 and answer["error"]["code"] == "not_found", answer
