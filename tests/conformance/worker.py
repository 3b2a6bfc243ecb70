"""Replays conformance cases through one provider's real entry point, in a fresh process.

A fresh process per (provider, configuration) is how a function really runs: settings are read
once at init. The parent sets the environment, passes the cases as JSON on stdin and reads one
JSON list of observations from stdout.

    python tests/conformance/worker.py core < cases.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import normalise  # noqa: E402

Runner = Callable[[dict], tuple[int, dict, bytes]]


def core_runner() -> Runner:
    from core.http import HttpRequest
    from core.runtime import service

    def run(case: dict) -> tuple[int, dict, bytes]:
        body = b"" if case["body"] is None else case["body"].encode("latin-1")
        response = service().handle(HttpRequest(case["method"], case["path"], headers=case["headers"], body=body))
        return response.status, response.headers, response.body

    return run


def azure_runner() -> Runner:
    """The registered functions of function_app.py, routed from their bindings as the host does."""
    sys.path.insert(0, str(REPO / "azure_function"))
    import function_app
    from local_host import FunctionsHost

    host = FunctionsHost(function_app.app, REPO / "azure_function" / "host.json")

    def run(case: dict) -> tuple[int, dict, bytes]:
        body = b"" if case["body"] is None else case["body"].encode("latin-1")
        response = host.request(case["method"], case["path"], headers=case["headers"], body=body)
        return response.status_code, dict(response.headers), response.get_body()

    return run


RUNNERS: dict[str, Callable[[], Runner]] = {"core": core_runner, "azure": azure_runner}


def main() -> None:
    provider = sys.argv[1]
    cases = json.load(sys.stdin)
    run = RUNNERS[provider]()
    observed = []
    for case in cases:
        try:
            status, headers, body = run(case)
            observed.append(normalise(case["name"], status, headers, body))
        except Exception as exc:  # the observation is the failure itself
            observed.append({"status": None, "error": f"{type(exc).__name__}: {exc}"})
    json.dump(observed, sys.stdout)


if __name__ == "__main__":
    main()
