"""Batch shadow (issue 17): a run with no candidate costs what it did, and what shadowing costs.

    python bench/batch_shadow.py                   200,000 x 20 CSV, one run of each side
    python bench/batch_shadow.py --rows 1000000 --repeat 3

Three sides, each its own process, on the same file and the same primary model, through
``core.batch.engine.run_batch`` on ``file://`` (batch_throughput.py's engine side):

- ``before``: the engine as it was before batch shadow existed (``core/`` of ``--before``, by
  default the commit this branch started from, taken with ``git archive`` into a temporary folder),
  no candidate;
- ``none``: this tree's engine, no candidate (what every deployment without a candidate runs);
- ``shadow``: this tree's engine with ``CANDIDATE_MODEL_URI`` (``CANDIDATE_MODE=shadow``): the
  candidate predicts every row too and its predictions and summary are written.

Models: the primary and its candidate are the same kind fitted on the same data with other
settings (a "v8" beside "v7"): logistic regressions (C=1 and C=0.1), and hist-gradient-boosting
(100 and 150 iterations). Reported: rows/s, CPU-seconds (this process and its writer processes),
peak RSS above the process after the primary's load, and the ratios none/before (goal: 1.0, within
the noise of one run on a shared machine) and shadow/none (the price of a shadow, as CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _models import ROOT, environment, write_json  # importing _models puts core on sys.path

MODELS = {"lr": "logistic_regression", "hgb": "hist_gradient_boosting"}


def build(folder: str, rows: int, features: int) -> tuple[str, dict[str, tuple[str, str]]]:
    import joblib
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=5000, n_features=features, n_informative=10, random_state=0)
    pairs = {
        "lr": (LogisticRegression(max_iter=1000), LogisticRegression(C=0.1, max_iter=1000)),
        "hgb": (HistGradientBoostingClassifier(max_iter=100), HistGradientBoostingClassifier(max_iter=150)),
    }
    models = {}
    for key, (primary, candidate) in pairs.items():
        paths = (os.path.join(folder, f"{key}.joblib"), os.path.join(folder, f"{key}-candidate.joblib"))
        joblib.dump(primary.fit(X, y), paths[0])
        joblib.dump(candidate.fit(X, y), paths[1])
        models[key] = paths
    data = os.path.join(folder, "rows.csv")
    rng = np.random.default_rng(0)
    with open(data, "w") as out:
        out.write(",".join(f"f{i}" for i in range(features)) + "\n")
        for start in range(0, rows, 100_000):
            np.savetxt(out, rng.normal(size=(min(100_000, rows - start), features)) * 2, fmt="%.6g", delimiter=",")
    return data, models


def child(root: str, data: str, model: str, candidate: str, out: str) -> dict:
    """One measured run in this process, with ``core`` imported from ``root``."""
    sys.path.insert(0, root)
    from batch_throughput import cpu_seconds, current_rss, peak_rss, watch_writer_process

    writer_peaks: list[int] = []
    watch_writer_process(writer_peaks)
    from core.batch.engine import run_batch
    from core.model import ModelHolder
    from core.settings import Settings
    from core.storage.locations import parse_output_prefix

    env = {"MODEL_URI": "file://" + model, "LOG_LEVEL": "WARNING"}
    if candidate != "-":
        env["CANDIDATE_MODEL_URI"] = "file://" + candidate
    settings = Settings.from_env(env)
    holder = ModelHolder(settings)
    holder.get()
    before = current_rss()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    result = run_batch("file://" + data, holder, settings, output_prefix=parse_output_prefix("file://" + out))
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    shadow = getattr(result, "shadow", None)
    return {"rows": result.rows_predicted, "seconds": seconds, "rows_per_s": result.rows_predicted / seconds,
            "cpu_seconds": cpu, "peak_above_mb": (peak_rss() - before) / 2**20 + sum(writer_peaks) / 2**20,
            "shadow": shadow, "core_from": "this tree" if sys.modules["core"].__file__.startswith(str(ROOT)) else root}


def measure(root: str, data: str, model: str, candidate: str | None) -> dict:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", root, data, model, candidate or "-", out],
            capture_output=True, text=True, cwd=os.path.join(ROOT, "bench"),
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    if proc.returncode != 0:
        raise SystemExit(f"run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def export_core(ref: str, folder: str) -> str:
    """``core/`` of ``ref`` in ``folder`` (read from git's objects; no worktree is touched)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "core"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--models", default="lr,hgb")
    parser.add_argument("--before", default="9322b67", help="the commit whose engine is 'before' (default: this branch's base)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side, interleaved; each side's least CPU kept")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    from batch_throughput import cpu_model

    cases = []
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as before_root:
        export_core(args.before, before_root)
        print(f"writing {args.rows:,} x {args.features} CSV ...", file=sys.stderr)
        data, models = build(folder, args.rows, args.features)
        for key in args.models.split(","):
            primary, candidate = models[key]
            runs: dict[str, list[dict]] = {"before": [], "none": [], "shadow": []}
            for _ in range(args.repeat):  # interleaved: a burst of load elsewhere hits every side alike
                runs["before"].append(measure(before_root, data, primary, None))
                runs["none"].append(measure(str(ROOT), data, primary, None))
                runs["shadow"].append(measure(str(ROOT), data, primary, candidate))
            best = {side: min(found, key=lambda run: run["cpu_seconds"]) for side, found in runs.items()}
            case = {"model": MODELS[key], "rows": args.rows, **best,
                    "none_over_before_cpu": best["none"]["cpu_seconds"] / best["before"]["cpu_seconds"],
                    "none_over_before_wall": best["none"]["seconds"] / best["before"]["seconds"],
                    "shadow_over_none_cpu": best["shadow"]["cpu_seconds"] / best["none"]["cpu_seconds"],
                    "shadow_over_none_wall": best["shadow"]["seconds"] / best["none"]["seconds"]}
            cases.append(case)
            print(f"  {key}: {json.dumps(case)}", file=sys.stderr)

    result = {"environment": {**environment(), "cpu_model": cpu_model(), "load_average": os.getloadavg()},
              "before": args.before, "repeat": args.repeat, "cases": cases}
    result["summary"] = [
        {"benchmark": "batch shadow", "model": c["model"], "case": f"{c['rows']:,} rows x {args.features} CSV",
         "core": f"no candidate {c['none_over_before_cpu']:.2f}x the CPU of before; shadow {c['shadow_over_none_cpu']:.2f}x",
         "baseline": f"the engine at {args.before}", "result": f"{c['none_over_before_cpu']:.2f}x",
         "goal": "no candidate: 1.0x (noise of one run)", "met": None}
        for c in cases
    ]
    lines = ["### Batch shadow", "",
             "| model | before rows/s | no candidate rows/s | shadow rows/s | no candidate / before (CPU, wall) "
             "| shadow / no candidate (CPU, wall) | peak RSS before / none / shadow |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for c in cases:
        lines.append(
            f"| {c['model']} | {c['before']['rows_per_s']:,.0f} | {c['none']['rows_per_s']:,.0f} | "
            f"{c['shadow']['rows_per_s']:,.0f} | {c['none_over_before_cpu']:.2f}x, {c['none_over_before_wall']:.2f}x | "
            f"{c['shadow_over_none_cpu']:.2f}x, {c['shadow_over_none_wall']:.2f}x | "
            f"+{c['before']['peak_above_mb']:.0f} / +{c['none']['peak_above_mb']:.0f} / +{c['shadow']['peak_above_mb']:.0f} MB |")
    result["markdown"] = "\n".join(lines)
    write_json("batch_shadow.json", result)
    print(result["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
