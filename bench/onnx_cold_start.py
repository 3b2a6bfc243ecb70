"""The ONNX path: cold start through the HTTP path and warm 1-row predictions, against scikit-learn.

Each model of ``_models.py`` (a 200-tree random forest, a logistic regression) and a mixed-type
DataFrame pipeline (imputed and scaled numbers, one-hot encoded strings, a logistic regression;
fitted on a pandas DataFrame, as in issue 21) is exported with ``serverless-ml export --to onnx``
(float32 inputs, or one typed input per column for the pipeline; no ZipMap; with its manifest). Then:

Cold start, in rounds of fresh processes (the order inside a round rotates), wall-clock from spawn
to exit as in cold_start.py:

  onnx      imports core, builds the service from the environment with MODEL_URI=<model>.onnx and
            handles one POST /predict in-process (the path a function's first request takes)
  floor     imports joblib and numpy, joblib.load()s the .joblib, predicts one row: cold_start.py's
            floor, the baseline of every ratio; for the mixed pipeline it imports joblib and pandas
            and predicts one DataFrame row (what a hand-written handler of that model does)
  bare-ort  imports onnxruntime, builds an InferenceSession from the .onnx (onnxruntime's default
            options) and runs one row: a minimal ONNX handler, for reference (anchors: 0.11x lr,
            0.20x rf); core builds its session with ONNX_THREADS=1, no thread pool

Goal: median per-round ratio onnx/floor <= 0.15 (logistic regression), <= 0.22 (forest) and
<= 0.25 (mixed pipeline).

Warm, in this process, 1 row, medians of perf_counter_ns calls in blocks (order rotating) after a warm-up:
service.handle() on the ONNX model, bare session.run(), scikit-learn's predict() and its
service.handle() on the .joblib (the pipeline: predict on a one-row DataFrame, built in the call).
Goal: scikit-learn predict / ONNX handle >= 100 on the forest.

    python bench/onnx_cold_start.py [--rounds 11] [--reps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _models import ROOT, build_models, environment, write_json
from cold_start import CORE_CHILD, CORE_SETTINGS, FLOOR_CHILD

GOALS = {"logistic_regression": 0.15, "random_forest_200": 0.22, "mixed_pipeline": 0.25}
MIXED = "mixed_pipeline"
MIXED_ROW = {"age": 22.0, "fare": 7.25, "pclass": 3, "sex": "male", "embarked": "S"}
GOAL_WARM_SPEEDUP = 100.0

BARE_ORT_CHILD = """\
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
session.run(None, {{session.get_inputs()[0].name: np.array([{row!r}], dtype=np.float32)}})
print(0)
"""

BARE_ORT_MIXED_CHILD = """\
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
row = {row!r}
feeds = {{i.name: np.array([[row[i.name]]], dtype=object if i.type == "tensor(string)" else np.float32)
         for i in session.get_inputs()}}
session.run(None, feeds)
print(0)
"""

MIXED_FLOOR_CHILD = """\
import joblib
import pandas as pd
model = joblib.load({path!r})
model.predict(pd.DataFrame([{row!r}]))
print(0)
"""

# after the prediction: what the ONNX path must never have imported
ONNX_CHILD = CORE_CHILD.replace(
    'print(int("pandas" in sys.modules))',
    'heavy = [m for m in ("sklearn", "scipy", "pandas", "joblib") if m in sys.modules]\n'
    'if heavy:\n    sys.exit(f"the ONNX path imported {{heavy}}")\nprint(0)',
)


def run_child(code: str, env: dict, cwd: str) -> tuple[float, float]:
    """One fresh interpreter: seconds from spawn to its answer (the line it prints when the
    prediction is done; PYTHONUNBUFFERED) and from spawn to exit (interpreter teardown included)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    answered = time.perf_counter() - started
    _, err = proc.communicate()
    exited = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"a child process failed (exit {proc.returncode}):\n{err.decode(errors='replace')}")
    return answered, exited


def build_mixed(folder: str) -> str:
    """The mixed-type pipeline of issue 21, fitted on a 2000-row DataFrame (NaN in age), joblib.dump()ed."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame({
        "age": rng.normal(30, 12, n).round(1), "fare": rng.exponential(20, n).round(2),
        "pclass": rng.integers(1, 4, n), "sex": rng.choice(["male", "female"], n),
        "embarked": rng.choice(["S", "C", "Q"], n),
    })
    frame.loc[::9, "age"] = np.nan
    survived = ((frame["sex"] == "female") | (frame["pclass"] == 1)).to_numpy()
    model = Pipeline([
        ("prepare", ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "fare", "pclass"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "embarked"]),
        ])),
        ("classify", LogisticRegression()),
    ]).fit(frame, survived)
    path = os.path.join(os.path.abspath(folder), f"{MIXED}.joblib")
    joblib.dump(model, path)
    return path


def export_onnx(path: str) -> str:
    out = path[: -len(".joblib")] + ".onnx"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "serverless_ml.cli", "export", path, "--to", "onnx"],
                          capture_output=True, text=True, env=env, cwd=str(ROOT))
    if proc.returncode != 0:
        sys.exit(f"export failed: {proc.stderr}")
    return out


def cold(joblib_path: str, onnx_path: str, row, rounds: int, cwd: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CORE_SETTINGS and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        MODEL_URI="file://" + onnx_path,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    body = json.dumps({"instances": [row]}).encode()
    mixed = isinstance(row, dict)
    codes = {
        "onnx": ONNX_CHILD.format(body=body),
        "floor": (MIXED_FLOOR_CHILD if mixed else FLOOR_CHILD).format(path=joblib_path, row=row),
        "bare-ort": (BARE_ORT_MIXED_CHILD if mixed else BARE_ORT_CHILD).format(path=onnx_path, row=row),
    }
    for code in codes.values():  # untimed: .pyc files, page cache
        run_child(code, env, cwd)
    kinds = list(codes)
    times = {k: [] for k in kinds}  # to exit
    answers = {k: [] for k in kinds}  # to the answer
    for i in range(rounds):
        order = kinds[i % len(kinds):] + kinds[: i % len(kinds)]
        for kind in order:
            answered, exited = run_child(codes[kind], env, cwd)
            answers[kind].append(answered)
            times[kind].append(exited)
        print(f"  round {i + 1}/{rounds}: " + ", ".join(f"{k} {times[k][-1] * 1e3:.1f} ms" for k in kinds), file=sys.stderr)
    ratio = {k: [t / f for t, f in zip(times[k], times["floor"], strict=True)] for k in ("onnx", "bare-ort")}
    answer_ratio = {k: [t / f for t, f in zip(answers[k], answers["floor"], strict=True)] for k in ("onnx", "bare-ort")}
    return {
        "median_ms": {k: round(statistics.median(v) * 1e3, 2) for k, v in times.items()},
        "ratios": {k: [round(r, 4) for r in v] for k, v in ratio.items()},
        "median_ratio": {k: round(statistics.median(v), 4) for k, v in ratio.items()},
        "median_answer_ms": {k: round(statistics.median(v) * 1e3, 2) for k, v in answers.items()},
        "median_answer_ratio": {k: round(statistics.median(v), 4) for k, v in answer_ratio.items()},
        "size_bytes": {"joblib": os.path.getsize(joblib_path), "onnx": os.path.getsize(onnx_path)},
    }


def warm(joblib_path: str, onnx_path: str, row, reps: int, warmup: int = 20) -> dict:
    import numpy as np
    import onnxruntime as ort

    from core.http import HttpRequest, PredictionService
    from core.logs import configure
    from core.settings import Settings

    configure("WARNING")
    headers = {"content-type": "application/json"}
    body = json.dumps({"instances": [row]}).encode()
    onnx_service = PredictionService(Settings.from_env({"MODEL_URI": "file://" + onnx_path}))
    sk_service = PredictionService(Settings.from_env({"MODEL_URI": "file://" + joblib_path}))
    estimator = sk_service.model.get().estimator
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    if isinstance(row, dict):  # the mixed pipeline: one [1, 1] tensor per column, a one-row DataFrame
        import pandas as pd

        feeds = {i.name: np.array([[row[i.name]]], dtype=object if i.type == "tensor(string)" else np.float32)
                 for i in session.get_inputs()}
        sklearn_predict = lambda: estimator.predict(pd.DataFrame([row]))  # noqa: E731
    else:
        X64 = np.array([row])
        feeds = {session.get_inputs()[0].name: np.array([row], dtype=np.float32)}
        sklearn_predict = lambda: estimator.predict(X64)  # noqa: E731
    a = json.loads(onnx_service.handle(HttpRequest("POST", "/predict", headers=headers, body=body)).body)
    b = json.loads(sk_service.handle(HttpRequest("POST", "/predict", headers=headers, body=body)).body)
    if a["predictions"] != b["predictions"]:
        sys.exit(f"ONNX and scikit-learn disagree on the row: {a['predictions']} vs {b['predictions']}")
    calls = {
        "onnx handle": lambda: onnx_service.handle(HttpRequest("POST", "/predict", headers=headers, body=body)),
        "bare session.run": lambda: session.run(None, feeds),
        "sklearn predict": sklearn_predict,
        "sklearn handle": lambda: sk_service.handle(HttpRequest("POST", "/predict", headers=headers, body=body)),
    }
    # In blocks of consecutive calls, block order rotating: interleaving single calls would have
    # scikit-learn's 40 ms forest walk evict the caches before every ONNX call, which is not how a
    # warm function serves a stream of requests to one model.
    names = list(calls)
    times = {n: [] for n in names}
    clock = time.perf_counter_ns
    blocks = 3
    for block in range(blocks):
        for n in names[block % len(names):] + names[: block % len(names)]:
            call = calls[n]
            count = max(1, reps // blocks)
            if n == "sklearn predict" or n == "sklearn handle":
                count = max(1, count // 10)  # each takes milliseconds on the forest
            for i in range(warmup + count):
                started = clock()
                call()
                if i >= warmup:
                    times[n].append(clock() - started)
    return {n: round(statistics.median(v) / 1e3, 1) for n, v in times.items()}


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "### ONNX path: cold start through the HTTP path, and warm 1-row predictions",
        "",
        f"{result['rounds']} rounds of fresh processes per model (onnx, floor, bare-ort; order rotating); "
        f"Python {env['python']}, scikit-learn {env['scikit-learn']}, onnxruntime {result['onnxruntime']}, {env['cpus']} CPUs.",
        "",
        "To exit: spawn to exit, interpreter teardown included (cold_start.py's measure; the goal). To answer: spawn to "
        "the line the child prints once its prediction is done (what a caller of a function waits for).",
        "",
        "| model | .joblib / .onnx | onnx median | floor median | bare-ort median | onnx/floor (min-max) | bare-ort/floor | goal | met "
        "| to answer: onnx / floor / bare-ort | to answer: onnx/floor, bare-ort/floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, m in result["models"].items():
        c = m["cold"]
        lines.append(
            f"| {name} | {_size(c['size_bytes']['joblib'])} / {_size(c['size_bytes']['onnx'])} | {c['median_ms']['onnx']:.1f} ms "
            f"| {c['median_ms']['floor']:.1f} ms | {c['median_ms']['bare-ort']:.1f} ms "
            f"| {c['median_ratio']['onnx']:.3f} ({min(c['ratios']['onnx']):.3f}-{max(c['ratios']['onnx']):.3f}) "
            f"| {c['median_ratio']['bare-ort']:.3f} | <= {GOALS[name]} | {'yes' if m['met_cold'] else 'NO'} "
            f"| {c['median_answer_ms']['onnx']:.1f} / {c['median_answer_ms']['floor']:.1f} / {c['median_answer_ms']['bare-ort']:.1f} ms "
            f"| {c['median_answer_ratio']['onnx']:.3f}, {c['median_answer_ratio']['bare-ort']:.3f} |"
        )
    lines += ["", "Warm, 1 row, median us:", "",
              "| model | onnx handle | bare session.run | sklearn predict | sklearn handle | sklearn predict / onnx handle | goal |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, m in result["models"].items():
        w = m["warm"]
        goal = f">= {GOAL_WARM_SPEEDUP:.0f}x" if name == "random_forest_200" else "-"
        lines.append(f"| {name} | {w['onnx handle']} | {w['bare session.run']} | {w['sklearn predict']} | "
                     f"{w['sklearn handle']} | {m['warm_speedup']:.0f}x | {goal} |")
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11, help="rounds of fresh processes per model (at least 9)")
    parser.add_argument("--reps", type=int, default=300, help="warm repetitions per call")
    args = parser.parse_args()
    if args.rounds < 9:
        parser.error("--rounds must be at least 9")
    import onnxruntime

    result = {"benchmark": "onnx_cold_start", "rounds": args.rounds, "environment": environment(),
              "onnxruntime": onnxruntime.__version__, "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as folder:
        paths, X = build_models(folder)
        paths[MIXED] = build_mixed(folder)
        numeric_row = [float(v) for v in X[0]]
        for name, path in paths.items():
            print(f"onnx_cold_start: {name}", file=sys.stderr)
            row = MIXED_ROW if name == MIXED else numeric_row
            onnx_path = export_onnx(path)
            c = cold(path, onnx_path, row, args.rounds, folder)
            w = warm(path, onnx_path, row, args.reps)
            result["models"][name] = {
                "cold": c, "warm": w,
                "met_cold": c["median_ratio"]["onnx"] <= GOALS[name],
                "warm_speedup": w["sklearn predict"] / w["onnx handle"],
            }
    summary = []
    for name, m in result["models"].items():
        c = m["cold"]
        summary.append({
            "benchmark": "onnx cold start", "model": name, "case": "1 row, fresh process, .onnx",
            "core": f"{c['median_ms']['onnx']:.1f} ms",
            "baseline": f"{c['median_ms']['floor']:.1f} ms (joblib+{'pandas, DataFrame row' if name == MIXED else 'numpy'})",
            "result": f"ratio {c['median_ratio']['onnx']:.3f} (bare ort {c['median_ratio']['bare-ort']:.3f}; "
                      f"to answer {c['median_answer_ratio']['onnx']:.3f})",
            "goal": f"ratio <= {GOALS[name]}", "met": m["met_cold"],
        })
        w = m["warm"]
        is_rf = name == "random_forest_200"
        summary.append({
            "benchmark": "onnx warm", "model": name, "case": "1 row, warm",
            "core": f"{w['onnx handle']} us (handle)", "baseline": f"{w['sklearn predict']} us (sklearn predict)",
            "result": f"{m['warm_speedup']:.0f}x faster", "goal": f">= {GOAL_WARM_SPEEDUP:.0f}x" if is_rf else "-",
            "met": (m["warm_speedup"] >= GOAL_WARM_SPEEDUP) if is_rf else None,
        })
    result["summary"] = summary
    result["markdown"] = markdown(result)
    write_json("onnx_cold_start.json", result)
    print(result["markdown"])


if __name__ == "__main__":
    main()
