"""Typed inputs: a DataFrame pipeline served through core, against what a user would write by hand.

The model is tests/typed_models.py's ``mixed`` pipeline (ColumnTransformer: imputer + scaler on
three numbers, OneHotEncoder on two strings; LogisticRegression), fitted on a pandas DataFrame and
saved with joblib.dump. Two measurements:

  cold   pairs of fresh interpreters, order alternating: ``core`` imports core, builds the service
         from the environment and handles one POST /predict of one row as an object (strings and a
         null); ``floor`` imports joblib and pandas, joblib.load()s the file and predicts the same
         row as ``pd.DataFrame([row])``. Median of per-pair ratios core/floor; goal <= 1.0.
  warm   in this process, interleaved after a warm-up: ``handle`` (service.handle of the same
         POST, the JSON log line formatted into a null stream) against ``bare``
         (``model.predict(pd.DataFrame([row]))``: what a hand-written handler does for the same
         answer; core also answers probabilities, from one more call, shown as ``bare+proba``).
         Ratio of medians handle/bare; goal <= 1.0.

    python bench/typed_serving.py [--pairs 11] [--reps 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from _models import ROOT, environment, write_json  # importing _models puts the repository's root on sys.path
from cold_start import CORE_CHILD, CORE_SETTINGS, run_child

from tests.typed_models import PASSENGER, mixed  # the typed test models, defined once for tests and bench

GOAL_COLD = 1.0
GOAL_WARM = 1.0
ROW = {**PASSENGER, "age": None}

FLOOR_CHILD = """\
import sys
import joblib
import pandas as pd
model = joblib.load({path!r})
model.predict(pd.DataFrame([{row!r}]))
print(int("pandas" in sys.modules))
"""


def cold(path: str, pairs: int, cwd: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CORE_SETTINGS and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(MODEL_URI="file://" + path, LOG_LEVEL="WARNING",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    body = json.dumps({"instances": [ROW]}).encode()
    row = {k: (float("nan") if v is None else v) for k, v in ROW.items()}
    codes = {"core": CORE_CHILD.format(body=body), "floor": FLOOR_CHILD.format(path=path, row=row).replace("nan", "float('nan')")}
    for code in codes.values():
        run_child(code, env, cwd)
    times: dict[str, list[float]] = {"core": [], "floor": []}
    for i in range(pairs):
        for kind in ("core", "floor") if i % 2 == 0 else ("floor", "core"):
            times[kind].append(run_child(codes[kind], env, cwd)[0])
    ratios = [c / f for c, f in zip(times["core"], times["floor"], strict=True)]
    return {
        "median_core_ms": round(statistics.median(times["core"]) * 1e3, 2),
        "median_floor_ms": round(statistics.median(times["floor"]) * 1e3, 2),
        "median_ratio": round(statistics.median(ratios), 4),
        "ratio_range": [round(min(ratios), 4), round(max(ratios), 4)],
        "goal": GOAL_COLD,
    }


def warm(path: str, reps: int) -> dict:
    import joblib
    import pandas as pd

    from core.http import HttpRequest
    from core.logs import configure
    from core.runtime import service as build_service

    os.environ["MODEL_URI"] = "file://" + path
    configure(stream=open(os.devnull, "w"))
    service = build_service()
    model = joblib.load(path)
    body = json.dumps({"instances": [ROW]}).encode()
    headers = {"content-type": "application/json"}
    row = {k: (float("nan") if v is None else v) for k, v in ROW.items()}
    answer = json.loads(service.handle(HttpRequest("POST", "/predict", headers=headers, body=body)).body)
    if answer["predictions"] != model.predict(pd.DataFrame([row])).tolist():
        sys.exit(f"core's answer differs from the bare model: {answer}")

    def bare_proba():
        frame = pd.DataFrame([row])
        model.predict(frame)
        model.predict_proba(frame)

    calls = {
        "handle": lambda: service.handle(HttpRequest("POST", "/predict", headers=headers, body=body)),
        "bare": lambda: model.predict(pd.DataFrame([row])),
        "bare+proba": bare_proba,
    }
    names = list(calls)
    times: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for rep in range(reps + reps // 10):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            started = clock()
            calls[name]()
            if rep >= reps // 10:
                times[name].append(clock() - started)
    medians = {name: statistics.median(t) / 1e3 for name, t in times.items()}
    return {
        "median_us": {name: round(v, 1) for name, v in medians.items()},
        "ratio_handle_over_bare": round(medians["handle"] / medians["bare"], 4),
        "ratio_handle_over_bare_proba": round(medians["handle"] / medians["bare+proba"], 4),
        "goal": GOAL_WARM,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=11)
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    import joblib

    with tempfile.TemporaryDirectory(prefix="bench-typed-") as folder:
        path = os.path.join(folder, "mixed.joblib")
        joblib.dump(mixed(), path)
        result = {"benchmark": "typed_serving", "environment": environment(),
                  "cold": cold(path, args.pairs, folder), "warm": warm(path, args.reps)}
    c, w = result["cold"], result["warm"]
    result["markdown"] = "\n".join([
        "### Typed inputs: the mixed DataFrame pipeline (joblib), core against a hand-written floor",
        "",
        "| case | core | baseline | ratio | goal |",
        "|---|---:|---:|---:|---:|",
        f"| cold start, 1 row | {c['median_core_ms']:.1f} ms | {c['median_floor_ms']:.1f} ms (joblib+pandas, "
        f"predict(pd.DataFrame([row]))) | {c['median_ratio']:.3f} ({c['ratio_range'][0]:.3f}-{c['ratio_range'][1]:.3f}) | <= {GOAL_COLD} |",
        f"| warm, 1 row | {w['median_us']['handle']:.0f} us | {w['median_us']['bare']:.0f} us (predict(pd.DataFrame([row]))) "
        f"| {w['ratio_handle_over_bare']:.3f} | <= {GOAL_WARM} |",
        f"| warm, 1 row, both answers | {w['median_us']['handle']:.0f} us | {w['median_us']['bare+proba']:.0f} us "
        f"(predict + predict_proba) | {w['ratio_handle_over_bare_proba']:.3f} | - |",
    ])
    write_json("typed_serving.json", result)
    print(result["markdown"])


if __name__ == "__main__":
    main()
