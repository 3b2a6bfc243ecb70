"""Batch throughput: the engine against pandas on the same CSV, rows/s and peak RSS.

    python bench/batch_throughput.py                      200,000 x 20 (quick)
    python bench/batch_throughput.py --rows 1000000       the issue's 1,000,000 x 20 (~190 MB)
    python bench/batch_throughput.py --rows 1000000 --cases typed
                                                          1,000,000 rows of 5 numbers and 3 strings,
                                                          10% of the cells empty, a DataFrame pipeline

Each run is its own process (peak RSS is per process); RSS is reported above what the process
held after imports and model load, so the two sides differ only by their work on the file. The
engine's writer process (core/batch/output_writer.py) is added whole: its own peak RSS (VmHWM).
Engine: ``core.batch.engine.run_batch`` on ``file://`` (read in chunks, predict, predictions file with
line, prediction and probabilities). Baseline: pandas ``read_csv`` of the whole file,
``predict_proba`` + argmax, ``to_csv`` of the same columns. The baseline needs pandas, which is
not a dependency: without it the engine is measured alone and the table says why.

The typed case (issue 21): a ``Pipeline(ColumnTransformer(imputer+scaler on the numbers,
imputer+OneHotEncoder on the strings), LogisticRegression)`` fitted on a DataFrame; the baseline
is ``read_csv`` (empty cells as NaN, strings as pandas makes them) + ``predict_proba`` on the frame
+ ``to_csv``, the engine reads the same file typed by the model's schema.

Goal (issue 6, issue 21): engine >= 1.0x the baseline's rows/s at <= 0.35x its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from _models import ROOT, environment, write_json  # importing _models puts core on sys.path

MODELS = {"lr": "logistic_regression", "hgb": "hist_gradient_boosting"}
GOAL_SPEED, GOAL_MEMORY = 1.0, 0.35


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the engine's writer process): on a
    machine shared with other work, wall time includes waiting for a CPU, this does not."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def build(folder: str, rows: int, features: int) -> tuple[str, dict[str, str]]:
    import joblib
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=5000, n_features=features, n_informative=10, random_state=0)
    models = {}
    for key, estimator in (("lr", LogisticRegression(max_iter=1000)), ("hgb", HistGradientBoostingClassifier(max_iter=100))):
        models[key] = os.path.join(folder, f"{key}.joblib")
        joblib.dump(estimator.fit(X, y), models[key])
    data = os.path.join(folder, "rows.csv")
    rng = np.random.default_rng(0)
    with open(data, "w") as out:  # written in blocks: the generator holds no more than the engine
        out.write(",".join(f"f{i}" for i in range(features)) + "\n")
        for start in range(0, rows, 100_000):
            block = rng.normal(size=(min(100_000, rows - start), features)) * 2
            np.savetxt(out, block, fmt="%.6g", delimiter=",")
    return data, models


TYPED_NUMBERS, TYPED_STRINGS = ["n0", "n1", "n2", "n3", "n4"], ["city", "plan", "device"]
VOCABULARY = {
    "city": ["paris", "lyon", "berlin", "madrid", "rome", "oslo", "lisbon", "vienna"],
    "plan": ["free", "basic", "pro", "team", "enterprise"],
    "device": ["ios", "android", "web", "desktop"],
}


def typed_frame(rows: int, seed: int):
    """``rows`` rows of 5 numbers and 3 strings, 10% of all cells missing; and a label."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = {name: (rng.normal(size=rows) * 2).round(4) for name in TYPED_NUMBERS}
    data.update({name: rng.choice(VOCABULARY[name], rows).astype(object) for name in TYPED_STRINGS})
    frame = pd.DataFrame(data)
    y = (frame["n0"] + (frame["plan"] == "pro") - (frame["device"] == "web") > 0).to_numpy()
    for name in frame.columns:
        frame.loc[rng.random(rows) < 0.10, name] = np.nan
    return frame, y


def build_typed(folder: str, rows: int) -> tuple[str, dict[str, str]]:
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, y = typed_frame(5000, 0)
    model = Pipeline([
        ("prepare", ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), TYPED_NUMBERS),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
             TYPED_STRINGS),
        ])),
        ("classify", LogisticRegression(max_iter=1000)),
    ]).fit(frame, y)
    path = os.path.join(folder, "typed.joblib")
    joblib.dump(model, path)
    data = os.path.join(folder, "typed.csv")
    for start in range(0, rows, 100_000):  # in blocks: the generator holds no more than the engine
        block, _ = typed_frame(min(100_000, rows - start), 1 + start)
        block.to_csv(data, mode="w" if start == 0 else "a", header=start == 0, index=False)
    return data, {"typed": path}


def watch_writer_process(peaks: list[int]) -> None:
    """Record the writer process's peak RSS (VmHWM, read just before it is told to finish).

    getrusage(RUSAGE_CHILDREN) would not do: it counts the pages the child shared with this
    process between fork and exec, i.e. this whole process once more."""
    from core.batch import output_writer

    close = output_writer.OutputWriterProcess.close

    def measured_close(self) -> None:
        with open(f"/proc/{self._process.pid}/status") as status:
            peaks.append(next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")))
        close(self)

    output_writer.OutputWriterProcess.close = measured_close


def child(mode: str, data: str, model: str, out: str, chunk_rows: int, typed: bool = False) -> dict:
    """One measured run in this process; prints a JSON line."""
    writer_peaks: list[int] = []
    if mode == "engine":
        watch_writer_process(writer_peaks)
        from core.batch.engine import run_batch
        from core.model import ModelHolder
        from core.settings import Settings
        from core.storage.locations import parse_output_prefix

        settings = Settings.from_env({"MODEL_URI": "file://" + model, "BATCH_CHUNK_ROWS": str(chunk_rows)})
        holder = ModelHolder(settings)
        holder.get()
        before = current_rss()
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        result = run_batch("file://" + data, holder, settings, output_prefix=parse_output_prefix("file://" + out))
        seconds = time.perf_counter() - started
        rows = result.rows_predicted
    else:
        import joblib
        import numpy as np
        import pandas as pd

        estimator = joblib.load(model)
        before = current_rss()
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        frame = pd.read_csv(data)
        probabilities = estimator.predict_proba(frame if typed else frame.to_numpy(dtype=np.float64))
        table = pd.DataFrame(probabilities, columns=[str(c) for c in estimator.classes_])
        table.insert(0, "prediction", estimator.classes_[probabilities.argmax(axis=1)])
        table.insert(0, "line", np.arange(2, len(frame) + 2))
        table.to_csv(os.path.join(out, "pandas.csv"), index=False)
        seconds = time.perf_counter() - started
        rows = len(frame)
    children_mb = writer_peaks[-1] / 2**20 if mode == "engine" and writer_peaks else 0.0
    cpu = cpu_seconds() - cpu_before
    return {
        "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "cpu_seconds": cpu, "rows_per_cpu_s": rows / cpu,
        "peak_above_mb": (peak_rss() - before) / 2**20 + children_mb, "writer_process_peak_mb": children_mb,
    }


def measure(mode: str, data: str, model: str, chunk_rows: int, python: str, typed: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [python, __file__, "--child", mode, data, model, out, str(chunk_rows), "typed" if typed else "numeric"],
            capture_output=True, text=True, cwd=ROOT,
        )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_model() -> str | None:
    """The processor's name (what lscpu prints as "Model name"): figures travel with it."""
    try:
        with open("/proc/cpuinfo") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), None)
    except OSError:
        return None


def pandas_missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("pandas") is None:
        return (
            "pandas is not installed here: the baseline was not run. Install it in a separate virtualenv "
            "(pip install numpy scikit-learn joblib pandas && pip install -e . --no-deps) and run this script there."
        )
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=10_000, help="BATCH_CHUNK_ROWS for the engine (default: its default)")
    parser.add_argument("--models", default="lr,hgb", help="comma-separated: lr, hgb")
    parser.add_argument("--cases", default="numeric", help="comma-separated: numeric (--models on a float CSV), typed")
    parser.add_argument("--repeat", type=int, default=1, help=(
        "runs of each side, interleaved; each side's fastest is kept (load from elsewhere only ever slows a run)"))
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, data, model, out, chunk, kind = args.child
        print(json.dumps(child(mode, data, model, out, int(chunk), kind == "typed")))
        return 0

    missing = pandas_missing()
    if missing:
        print(missing, file=sys.stderr)
    cases = []
    plan = []
    with tempfile.TemporaryDirectory() as folder:
        cases_asked = args.cases.split(",")
        if "numeric" in cases_asked:
            print(f"writing {args.rows:,} x {args.features} CSV ...", file=sys.stderr)
            data, models = build(folder, args.rows, args.features)
            plan += [(key, MODELS[key], data, models[key], False, f"{args.features} numbers") for key in args.models.split(",")]
        if "typed" in cases_asked:
            if missing:
                raise SystemExit("the typed case needs pandas to write its data and fit its model: " + missing)
            print(f"writing {args.rows:,} typed rows (5 numbers, 3 strings, 10% empty) ...", file=sys.stderr)
            data, models = build_typed(folder, args.rows)
            plan.append(("typed", "typed_pipeline", data, models["typed"], True, "5 numbers + 3 strings, 10% empty"))
        for key, model_name, data, model, typed, columns in plan:
            size_mb = os.path.getsize(data) / 2**20
            engines, baselines = [], []
            for _ in range(args.repeat):  # interleaved: a burst of load elsewhere hits both sides alike
                engines.append(measure("engine", data, model, args.chunk_rows, sys.executable, typed))
                if not missing:
                    baselines.append(measure("pandas", data, model, args.chunk_rows, sys.executable, typed))
            engine = max(engines, key=lambda run: run["rows_per_s"])
            baseline = max(baselines, key=lambda run: run["rows_per_s"]) if baselines else None
            case = {"model": model_name, "columns": columns, "rows": args.rows, "file_mb": round(size_mb, 1),
                    "engine": engine, "pandas": baseline}
            if baseline:
                case["speed_ratio"] = engine["rows_per_s"] / baseline["rows_per_s"]
                case["cpu_ratio"] = engine["rows_per_cpu_s"] / baseline["rows_per_cpu_s"]  # >1: the engine uses less CPU
                case["memory_ratio"] = engine["peak_above_mb"] / max(baseline["peak_above_mb"], 1e-9)
                case["met"] = case["speed_ratio"] >= GOAL_SPEED and case["memory_ratio"] <= GOAL_MEMORY
            cases.append(case)
            print(f"  {key}: {json.dumps(case)}", file=sys.stderr)

    result = {"environment": {**environment(), "cpu_model": cpu_model(), "load_average": os.getloadavg()},
              "chunk_rows": args.chunk_rows, "repeat": args.repeat, "cases": cases, "pandas_missing": missing}
    result["summary"] = [
        {
            "benchmark": "batch throughput",
            "model": c["model"],
            "case": f"{c['rows']:,} rows x {c['columns']} CSV ({c['file_mb']} MB)",
            "core": f"{c['engine']['rows_per_s'] / 1e6:.2f} M rows/s, +{c['engine']['peak_above_mb']:.0f} MB RSS",
            "baseline": f"{c['pandas']['rows_per_s'] / 1e6:.2f} M rows/s, +{c['pandas']['peak_above_mb']:.0f} MB RSS (pandas whole file)"
            if c["pandas"] else "not run: pandas missing",
            "result": f"speed {c['speed_ratio']:.2f}x, memory {c['memory_ratio']:.2f}x" if c["pandas"] else "-",
            "goal": f"speed >= {GOAL_SPEED}x, memory <= {GOAL_MEMORY}x",
            "met": c.get("met"),
        }
        for c in cases
    ]
    lines = ["### Batch throughput", "", *(f"- {missing}\n" for missing in [missing] if missing),
             "| model | engine rows/s | engine peak RSS | pandas rows/s | pandas peak RSS | speed | memory | rows per CPU-second |", "|---|---|---|---|---|---|---|---|"]
    for c in cases:
        p = c["pandas"]
        lines.append(
            f"| {c['model']} | {c['engine']['rows_per_s']:,.0f} | +{c['engine']['peak_above_mb']:.0f} MB | "
            + (f"{p['rows_per_s']:,.0f} | +{p['peak_above_mb']:.0f} MB | {c['speed_ratio']:.2f}x | {c['memory_ratio']:.2f}x | "
               f"{c['cpu_ratio']:.2f}x |" if p else "- | - | - | - | - |")
        )
    result["markdown"] = "\n".join(lines)
    write_json("batch_throughput.json", result)
    print(result["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
