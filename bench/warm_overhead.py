"""Warm per-request overhead: service.handle() of a POST /predict against bare model.predict().

In one process, for each model and for 1 and 100 rows, these run interleaved (the order rotates
every repetition), after a warm-up, each timed with time.perf_counter_ns():

  handle    service.handle(HttpRequest("POST", "/predict", ...)): builds the request (body bytes
            prepared once, as an adapter receives them), parses, validates, predicts, serialises
            the answer and formats the JSON request log line into a null stream
  predict   model.predict(X), X the same rows as a numpy array: the baseline
  proba     model.predict_proba(X), for reference: core answers predictions and probabilities
            from one predict_proba call for forests and logistic regression

Overhead = median(handle) - median(predict); goal <= 40 us for 1 row and <= 300 us for 100 rows,
validation included. Also shown: handle - proba, core's own cost beyond the one model call it makes.

For the logistic regression, two more callers of the same rows, timed the same way:

  lambda    aws_lambda.handler.predict(event, context) on the HTTP API (v2) sample event of
            tests/events/aws with the body in it: the adapter, core, the JSON log line and the EMF
            metrics line (stdout sent to os.devnull), as the Lambda runtime calls it
  naive     what a hand-written handler does: json.loads(body), np.asarray(rows), model.predict

    python bench/warm_overhead.py [--reps-1 2000] [--reps-100 300] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from _models import build_models, environment, write_json

from core.http import HttpRequest, PredictionService
from core.logs import configure
from core.settings import Settings

GOAL_OVERHEAD_US = {1: 40.0, 100: 300.0}
HEADERS = {"content-type": "application/json"}


def measure(service: PredictionService, rows, reps: int, warmup: int) -> dict:
    """Median ns of handle / predict / predict_proba for ``rows``, interleaved."""
    estimator = service.model.get().estimator
    X = rows.copy()
    body = json.dumps({"instances": rows.tolist()}).encode()

    response = service.handle(HttpRequest("POST", "/predict", headers=HEADERS, body=body))
    answer = json.loads(response.body)
    if response.status != 200 or answer["predictions"] != estimator.predict(X).tolist():
        sys.exit(f"core's answer differs from model.predict: {response.status} {response.body[:300]!r}")

    def handle():
        service.handle(HttpRequest("POST", "/predict", headers=HEADERS, body=body))

    calls = {"handle": handle, "predict": lambda: estimator.predict(X), "proba": lambda: estimator.predict_proba(X)}
    names = list(calls)
    times = {name: [] for name in names}
    clock = time.perf_counter_ns
    for rep in range(warmup + reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            started = clock()
            call()
            elapsed = clock() - started
            if rep >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def measure_callers(path: str, rows, reps: int, warmup: int) -> dict:
    """Median ns of the Lambda handler, a naive handler and bare predict for ``rows``, interleaved."""
    import contextlib
    import copy
    import importlib

    import joblib
    import numpy as np

    os.environ.update(MODEL_URI="file://" + path, LOG_LEVEL="INFO")
    handler = importlib.import_module("aws_lambda.handler")
    from aws_lambda.app import LambdaApp

    handler.app = LambdaApp.from_environment()  # this model, whatever an earlier import built
    with open(os.path.join(os.path.dirname(__file__), "..", "tests", "events", "aws", "apiGatewayProxyV2Event.json")) as f:
        sample = json.load(f)
    body = json.dumps({"instances": rows.tolist()})
    event = copy.deepcopy(sample)
    event.update(body=body, isBase64Encoded=False, rawPath="/predict")
    event["requestContext"]["http"].update(method="POST", path="/predict")
    event["headers"] = {"content-type": "application/json"}

    class Context:
        aws_request_id = "bench"
        function_name = "bench"
        memory_limit_in_mb = 1024
        function_version = "$LATEST"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 30_000

    context = Context()
    model = joblib.load(path)
    X = rows.copy()

    def naive():
        payload = json.loads(body)
        model.predict(np.asarray(payload["instances"], dtype=np.float64))

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        answer = handler.predict(event, context)
        if answer.get("statusCode") != 200:
            sys.exit(f"the Lambda handler answered {answer}")
        calls = {"lambda": lambda: handler.predict(event, context), "naive": naive, "predict": lambda: model.predict(X)}
        names = list(calls)
        times: dict[str, list[int]] = {name: [] for name in names}
        clock = time.perf_counter_ns
        for rep in range(warmup + reps):
            shift = rep % len(names)
            for name in names[shift:] + names[:shift]:
                started = clock()
                calls[name]()
                if rep >= warmup:
                    times[name].append(clock() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def profile(service: PredictionService, rows, calls: int, top: int = 20) -> str:
    """cProfile of ``calls`` 1-row handle() calls, by own time."""
    import cProfile
    import io
    import pstats

    body = json.dumps({"instances": rows.tolist()}).encode()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        service.handle(HttpRequest("POST", "/predict", headers=HEADERS, body=body))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "### Warm overhead: service.handle(POST /predict) vs bare model.predict, same rows",
        "",
        f"Medians over {result['reps']['1']} (1 row) / {result['reps']['100']} (100 rows) interleaved repetitions "
        f"after {result['warmup']} warm-up; Python {env['python']}, scikit-learn {env['scikit-learn']}, "
        f"numpy {env['numpy']}, {env['cpus']} CPUs. Logging: {result['logging']}.",
        "",
        "| model | rows | handle | predict | predict_proba | overhead (handle - predict) | ratio handle/predict "
        "| goal | met | handle - proba |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for case in result["cases"]:
        goal = f"<= {GOAL_OVERHEAD_US[case['rows']]:.0f} us"
        met = ("yes" if case["met"] else "NO") if case["met"] is not None else "-"
        lines.append(
            f"| {case['model']} | {case['rows']} | {case['handle_us']:.1f} us | {case['predict_us']:.1f} us "
            f"| {case['proba_us']:.1f} us | {case['overhead_us']:.1f} us | {case['ratio']:.3f} | {goal} | {met} "
            f"| {case['handle_us'] - case['proba_us']:.1f} us |"
        )
    if result.get("callers"):
        lines += [
            "",
            "Logistic regression through its callers, overhead over bare `model.predict` of the same rows:",
            "",
            "| rows | Lambda handler (log line + EMF) | naive handler (json.loads + np.asarray + predict) | goal | met |",
            "|---:|---:|---:|---:|---|",
        ]
        for case in result["callers"]:
            lines.append(
                f"| {case['rows']} | +{case['lambda_overhead_us']:.1f} us | +{case['naive_overhead_us']:.1f} us "
                f"| <= {GOAL_OVERHEAD_US[case['rows']]:.0f} us | {'yes' if case['met'] else 'NO'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps-1", type=int, default=2000, help="repetitions for 1 row (default 2000)")
    parser.add_argument("--reps-100", type=int, default=300, help="repetitions for 100 rows (default 300)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed repetitions first (default 50)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of 1-row handle() calls")
    args = parser.parse_args()

    # INFO: the one JSON line per request is formatted and written, as in production, but into
    # os.devnull, so terminal or pipe I/O is not measured.
    configure("INFO", stream=open(os.devnull, "w"))
    result = {
        "benchmark": "warm_overhead",
        "environment": environment(),
        "reps": {"1": args.reps_1, "100": args.reps_100},
        "warmup": args.warmup,
        "logging": "LOG_LEVEL=INFO, each request's JSON log line formatted and written to os.devnull",
        "request": "HttpRequest built inside the timed call; body bytes prepared once",
        "cases": [],
    }
    profiles = []
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as folder:
        paths, X = build_models(folder)
        for name, path in paths.items():
            service = PredictionService(Settings.from_env({"MODEL_URI": "file://" + path, "LOG_LEVEL": "INFO"}))
            for n_rows, reps in ((1, args.reps_1), (100, args.reps_100)):
                print(f"warm_overhead: {name}, {n_rows} row(s), {reps} reps", file=sys.stderr)
                ns = measure(service, X[:n_rows], reps, args.warmup)
                overhead_us = (ns["handle"] - ns["predict"]) / 1e3
                result["cases"].append(
                    {
                        "model": name,
                        "rows": n_rows,
                        "handle_us": round(ns["handle"] / 1e3, 2),
                        "predict_us": round(ns["predict"] / 1e3, 2),
                        "proba_us": round(ns["proba"] / 1e3, 2),
                        "overhead_us": round(overhead_us, 2),
                        "ratio": round(ns["handle"] / ns["predict"], 4),
                        "goal_overhead_us": GOAL_OVERHEAD_US[n_rows],
                        "met": overhead_us <= GOAL_OVERHEAD_US[n_rows],
                    }
                )
            if args.profile:  # about one second of calls, at most 2000
                calls = int(min(2000, max(20, 1e6 / result["cases"][-2]["handle_us"])))
                text = profile(service, X[:1], calls)
                profiles.append(f"#### cProfile, {name}, {calls} calls with 1 row, by own time\n\n```\n{text}```")
        result["callers"] = []
        for n_rows, reps in ((1, args.reps_1), (100, args.reps_100)):
            print(f"warm_overhead: Lambda handler and naive handler, {n_rows} row(s)", file=sys.stderr)
            ns = measure_callers(paths["logistic_regression"], X[:n_rows], reps, args.warmup)
            lambda_us = (ns["lambda"] - ns["predict"]) / 1e3
            result["callers"].append({
                "rows": n_rows,
                "lambda_us": round(ns["lambda"] / 1e3, 2),
                "naive_us": round(ns["naive"] / 1e3, 2),
                "predict_us": round(ns["predict"] / 1e3, 2),
                "lambda_overhead_us": round(lambda_us, 2),
                "naive_overhead_us": round((ns["naive"] - ns["predict"]) / 1e3, 2),
                "met": lambda_us <= GOAL_OVERHEAD_US[n_rows],
            })

    result["summary"] = [
        {
            "benchmark": "warm overhead",
            "model": case["model"],
            "case": f"{case['rows']} row{'s' if case['rows'] > 1 else ''}, warm",
            "core": f"{case['handle_us']:.1f} us",
            "baseline": f"{case['predict_us']:.1f} us (model.predict)",
            "result": f"+{case['overhead_us']:.1f} us, ratio {case['ratio']:.3f}",
            "goal": f"overhead <= {GOAL_OVERHEAD_US[case['rows']]:.0f} us",
            "met": case["met"],
        }
        for case in result["cases"]
    ]
    result["markdown"] = markdown(result)
    write_json("warm_overhead.json", result)
    print("\n\n".join([result["markdown"], *profiles]))


if __name__ == "__main__":
    main()
