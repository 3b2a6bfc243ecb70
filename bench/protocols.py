"""Warm cost of the Open Inference Protocol v2 against POST /predict: the same rows, the same
process, the same service.

For each model and for 1 and 100 rows, these run interleaved (the order rotates every
repetition), after a warm-up, each timed with time.perf_counter_ns() around service.handle()
(the request built inside the timed call from body bytes prepared once, as an adapter receives
them; the JSON log line formatted and written to os.devnull):

  predict      POST /predict {"instances": rows}: predictions and probabilities as JSON
  v2 json      POST /v2/models/{name}/infer, one 2-D FP64 tensor as JSON "data"; both outputs
               (predict, predict_proba) as JSON, as a JSON client asks for them
  v2 binary    the same with the binary-data extension, as tritonclient sends it by default: the
               tensor as raw little-endian float64 after the JSON header
               (Inference-Header-Content-Length), both outputs asked as binary

Every answer is checked against model.predict / predict_proba before timing.
Goal: v2 binary at 100 rows <= 0.8x POST /predict's time for the same rows (no JSON number
parsing for the tensor data), for models whose own predict does not dominate the request; for a
model that takes most of the time itself (the 200-tree forest) the ratio is shown, not judged.

    python bench/protocols.py [--reps-1 2000] [--reps-100 300] [--profile]
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

GOAL_RATIO_100 = 0.8
JUDGED = ("logistic_regression", "decision_tree")  # models cheap enough that the service's cost shows
JSON_HEADERS = {"content-type": "application/json"}


def requests_for(rows, name: str) -> dict[str, tuple[str, dict, bytes]]:
    """(path, headers, body) of each way of asking for the same rows."""
    import numpy as np

    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64"}
    header = json.dumps({
        "inputs": [{**tensor, "parameters": {"binary_data_size": rows.size * 8}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}},
                    {"name": "predict_proba", "parameters": {"binary_data": True}}],
    }).encode()
    infer = f"/v2/models/{name}/infer"
    return {
        "predict": ("/predict", JSON_HEADERS, json.dumps({"instances": rows.tolist()}).encode()),
        "v2 json": (infer, JSON_HEADERS, json.dumps({"inputs": [{**tensor, "data": rows.ravel().tolist()}]}).encode()),
        "v2 binary": (infer, {"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))},
                      header + np.ascontiguousarray(rows, dtype="<f8").tobytes()),
    }


def check(service: PredictionService, kind: str, path: str, headers: dict, body: bytes, estimator, rows) -> None:
    """The answer to one request is model.predict / predict_proba of its rows, or the run stops."""
    import numpy as np

    response = service.handle(HttpRequest("POST", path, headers=headers, body=body))
    if response.status != 200:
        sys.exit(f"{kind}: {response.status} {response.body[:300]!r}")
    expected = estimator.predict(rows).tolist(), estimator.predict_proba(rows)
    if kind == "predict":
        answer = json.loads(response.body)
        labels, probabilities = answer["predictions"], np.asarray(answer["probabilities"])
    else:
        length = int(response.headers.get("inference-header-content-length", len(response.body)))
        document = json.loads(response.body[:length])
        outputs, offset = {}, length
        for output in document["outputs"]:
            size = (output.get("parameters") or {}).get("binary_data_size")
            if size is None:
                outputs[output["name"]] = np.asarray(output["data"])
            else:
                dtype = {"INT64": "<i8", "FP64": "<f8", "BOOL": "?"}[output["datatype"]]
                outputs[output["name"]] = np.frombuffer(response.body[offset:offset + size], dtype=dtype)
                offset += size
        labels = outputs["predict"].tolist()
        probabilities = outputs["predict_proba"].reshape(expected[1].shape)
    if labels != expected[0] or not np.array_equal(probabilities, expected[1]):
        sys.exit(f"{kind}: the answer differs from the model's own predict/predict_proba")


def measure(service: PredictionService, name: str, rows, reps: int, warmup: int) -> dict:
    """Median ns of each way of asking for ``rows``, interleaved."""
    estimator = service.model.get().estimator
    calls = {}
    for kind, (path, headers, body) in requests_for(rows, name).items():
        check(service, kind, path, headers, body, estimator, rows)

        def call(path=path, headers=headers, body=body):
            service.handle(HttpRequest("POST", path, headers=headers, body=body))

        calls[kind] = call
    names = list(calls)
    times: dict[str, list[int]] = {kind: [] for kind in names}
    clock = time.perf_counter_ns
    for rep in range(warmup + reps):
        shift = rep % len(names)
        for kind in names[shift:] + names[:shift]:
            started = clock()
            calls[kind]()
            if rep >= warmup:
                times[kind].append(clock() - started)
    return {kind: statistics.median(values) for kind, values in times.items()}


def profile(service: PredictionService, name: str, rows, kind: str, calls: int, top: int = 25) -> str:
    import cProfile
    import io
    import pstats

    path, headers, body = requests_for(rows, name)[kind]
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        service.handle(HttpRequest("POST", path, headers=headers, body=body))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def extra_model(folder: str, X, labels) -> str:
    """A decision tree on the same data: it takes missing values (its columns are nullable, the
    path a forest's rows take, where NaN is a missing value) and predicts 100 rows in tens of
    microseconds, so the service's own cost shows."""
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    path = os.path.join(folder, "decision_tree.joblib")
    joblib.dump(DecisionTreeClassifier(max_depth=8, random_state=0).fit(X, labels), path)
    return path


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "### Open Inference Protocol v2 vs POST /predict: service.handle(), same rows, same process",
        "",
        f"Medians over {result['reps']['1']} (1 row) / {result['reps']['100']} (100 rows) interleaved repetitions "
        f"after {result['warmup']} warm-up; Python {env['python']}, scikit-learn {env['scikit-learn']}, "
        f"numpy {env['numpy']}, {env['cpus']} CPUs. Logging: {result['logging']}.",
        "",
        "| model | rows | /predict | v2 JSON | v2 binary | v2 JSON / predict | v2 binary / predict | goal (100 rows) | met |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for case in result["cases"]:
        goal = f"binary <= {GOAL_RATIO_100}x" if case["met"] is not None else "-"
        met = "-" if case["met"] is None else ("yes" if case["met"] else "NO")
        lines.append(
            f"| {case['model']} | {case['rows']} | {case['predict_us']:.1f} us | {case['v2_json_us']:.1f} us "
            f"| {case['v2_binary_us']:.1f} us | {case['json_ratio']:.3f} | {case['binary_ratio']:.3f} | {goal} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps-1", type=int, default=2000, help="repetitions for 1 row (default 2000)")
    parser.add_argument("--reps-100", type=int, default=300, help="repetitions for 100 rows (default 300)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed repetitions first (default 50)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of 100-row v2 binary calls")
    args = parser.parse_args()

    configure("INFO", stream=open(os.devnull, "w"))  # the log line is formatted and written, not shown
    result = {
        "benchmark": "protocols",
        "environment": environment(),
        "reps": {"1": args.reps_1, "100": args.reps_100},
        "warmup": args.warmup,
        "logging": "LOG_LEVEL=INFO, each request's JSON log line formatted and written to os.devnull",
        "cases": [],
    }
    profiles = []
    with tempfile.TemporaryDirectory(prefix="bench-protocols-") as folder:
        paths, X = build_models(folder)
        import joblib

        paths["decision_tree"] = extra_model(folder, X, joblib.load(paths["logistic_regression"]).predict(X))
        for name, path in paths.items():
            service = PredictionService(Settings.from_env({"MODEL_URI": "file://" + path, "LOG_LEVEL": "INFO"}))
            for n_rows, reps in ((1, args.reps_1), (100, args.reps_100)):
                print(f"protocols: {name}, {n_rows} row(s), {reps} reps", file=sys.stderr)
                ns = measure(service, name, X[:n_rows], reps, args.warmup)
                binary_ratio = ns["v2 binary"] / ns["predict"]
                judged = n_rows == 100 and name in JUDGED
                result["cases"].append({
                    "model": name,
                    "rows": n_rows,
                    "predict_us": round(ns["predict"] / 1e3, 2),
                    "v2_json_us": round(ns["v2 json"] / 1e3, 2),
                    "v2_binary_us": round(ns["v2 binary"] / 1e3, 2),
                    "json_ratio": round(ns["v2 json"] / ns["predict"], 4),
                    "binary_ratio": round(binary_ratio, 4),
                    "met": binary_ratio <= GOAL_RATIO_100 if judged else None,
                })
            if args.profile:
                text = profile(service, name, X[:100], "v2 binary", 300)
                profiles.append(f"#### cProfile, {name}, 300 v2 binary calls with 100 rows, by own time\n\n```\n{text}```")

    result["summary"] = [
        {
            "benchmark": "protocols",
            "model": case["model"],
            "case": f"{case['rows']} row{'s' if case['rows'] > 1 else ''}, warm, v2 binary",
            "core": f"{case['v2_binary_us']:.1f} us (v2 JSON {case['v2_json_us']:.1f} us)",
            "baseline": f"{case['predict_us']:.1f} us (POST /predict)",
            "result": f"ratio {case['binary_ratio']:.3f} (JSON {case['json_ratio']:.3f})",
            "goal": f"binary <= {GOAL_RATIO_100}x at 100 rows" if case["met"] is not None else "-",
            "met": case["met"],
        }
        for case in result["cases"]
    ]
    result["markdown"] = markdown(result)
    write_json("protocols.json", result)
    print("\n\n".join([result["markdown"], *profiles]))


if __name__ == "__main__":
    main()
