"""Cold start: one POST /predict through core in a fresh interpreter, against a bare floor.

For each model, in pairs of fresh processes (the order inside a pair alternates):

  core   imports core, builds the service from the environment (core.runtime.service(), as an
         adapter's init does), handles one POST /predict in-process, checks the 200, exits.
  floor  imports joblib and numpy, joblib.load()s the same file, predicts one row, exits.

Each process is timed wall-clock from this parent (interpreter start to exit). Reported per
model: median core, median floor, median of the per-pair ratios core/floor; goal <= 1.05.

    python bench/cold_start.py [--pairs 11]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _models import ROOT, build_models, environment, write_json

GOAL_RATIO = 1.05
CORE_SETTINGS = ("MODEL_URI", "MODEL_SHA256", "MODEL_VERSION", "BATCH_OUTPUT_URI", "MAX_ROWS",
                 "MAX_BODY_BYTES", "CORS_ALLOW_ORIGINS", "LOG_LEVEL", "PRELOAD_MODEL",
                 "SKOPS_TRUSTED_TYPES", "STRICT_MODEL_VERSION", "ONNX_THREADS")

# Both children print whether pandas ended up imported (scikit-learn imports it when installed).
CORE_CHILD = """\
import sys
from core.http import HttpRequest
from core.runtime import service
response = service().handle(HttpRequest("POST", "/predict", headers={{"content-type": "application/json"}}, body={body!r}))
if response.status != 200:
    sys.exit(f"core answered {{response.status}}: {{response.body[:300]!r}}")
print(int("pandas" in sys.modules))
"""

FLOOR_CHILD = """\
import sys
import joblib
import numpy as np
model = joblib.load({path!r})
model.predict(np.array([{row!r}]))
print(int("pandas" in sys.modules))
"""


def run_child(code: str, env: dict, cwd: str) -> tuple[float, int, bool]:
    """One fresh interpreter: seconds from spawn to exit, its minor page faults, whether it imported pandas."""
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - started
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - faults
    if proc.returncode != 0:
        sys.exit(f"a child process failed (exit {proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return elapsed, faults, proc.stdout.strip() == b"1"


def measure(path: str, row: list[float], pairs: int, cwd: str) -> dict:
    # PYTHONDONTWRITEBYTECODE is dropped: a deployed package has its .pyc files, so the untimed
    # first run may write them (into __pycache__, as any import does) instead of every run compiling.
    env = {k: v for k, v in os.environ.items() if k not in CORE_SETTINGS and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        MODEL_URI="file://" + path,
        LOG_LEVEL="WARNING",  # no request log line; stderr is captured and dropped anyway
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    body = json.dumps({"instances": [row]}).encode()
    codes = {"core": CORE_CHILD.format(body=body), "floor": FLOOR_CHILD.format(path=path, row=row)}

    for code in codes.values():  # untimed: writes missing .pyc files, warms the page cache
        run_child(code, env, cwd)
    times = {"core": [], "floor": []}
    faults = {"core": [], "floor": []}
    pandas_loaded = {"core": False, "floor": False}
    for i in range(pairs):
        for kind in ("core", "floor") if i % 2 == 0 else ("floor", "core"):
            seconds, minflt, pandas = run_child(codes[kind], env, cwd)
            times[kind].append(seconds)
            faults[kind].append(minflt)
            pandas_loaded[kind] |= pandas
        print(f"  pair {i + 1}/{pairs}: core {times['core'][-1] * 1e3:.1f} ms, "
              f"floor {times['floor'][-1] * 1e3:.1f} ms", file=sys.stderr)

    ratios = [c / f for c, f in zip(times["core"], times["floor"], strict=True)]
    median_ratio = statistics.median(ratios)
    return {
        "size_bytes": os.path.getsize(path),
        "core_ms": [round(t * 1e3, 3) for t in times["core"]],
        "floor_ms": [round(t * 1e3, 3) for t in times["floor"]],
        "ratios": [round(r, 4) for r in ratios],
        "median_core_ms": round(statistics.median(times["core"]) * 1e3, 2),
        "median_floor_ms": round(statistics.median(times["floor"]) * 1e3, 2),
        "median_ratio": round(median_ratio, 4),
        "goal_ratio": GOAL_RATIO,
        "met": median_ratio <= GOAL_RATIO,
        # a diagnostic, not a goal: see "Reading the numbers" in bench/README.md
        "median_minor_faults": {kind: int(statistics.median(v)) for kind, v in faults.items()},
        "pandas_imported": pandas_loaded,
    }


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "### Cold start: one POST /predict in a fresh process, core vs bare joblib+numpy",
        "",
        f"{result['pairs']} pairs per model, fresh interpreter each, wall-clock from the parent; "
        f"Python {env['python']}, scikit-learn {env['scikit-learn']}, numpy {env['numpy']}, {env['cpus']} CPUs.",
        "",
        "| model | file | core median | floor median | median ratio core/floor (min-max) | goal | met "
        "| minor page faults core / floor |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, m in result["models"].items():
        lines.append(
            f"| {name} | {_size(m['size_bytes'])} | {m['median_core_ms']:.1f} ms | "
            f"{m['median_floor_ms']:.1f} ms | {m['median_ratio']:.3f} ({min(m['ratios']):.3f}-{max(m['ratios']):.3f}) "
            f"| <= {GOAL_RATIO} | {'yes' if m['met'] else 'NO'} "
            f"| {m['median_minor_faults']['core']} / {m['median_minor_faults']['floor']} |"
        )
    imported = any(v for m in result["models"].values() for v in m["pandas_imported"].values())
    lines += [
        "",
        f"pandas installed: {'yes' if env['pandas_installed'] else 'no'}; "
        f"imported by the children: {'yes' if imported else 'no'}"
        + (" (scikit-learn imports pandas whenever it is installed: both sides pay for it)" if imported else "")
        + ".",
    ]
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=11, help="core/floor pairs per model (default 11, at least 9)")
    args = parser.parse_args()
    if args.pairs < 9:
        parser.error("--pairs must be at least 9")

    result = {"benchmark": "cold_start", "pairs": args.pairs, "environment": environment(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        paths, X = build_models(folder)
        row = [float(v) for v in X[0]]
        for name, path in paths.items():
            print(f"cold_start: {name}", file=sys.stderr)
            result["models"][name] = measure(path, row, args.pairs, folder)

    result["summary"] = [
        {
            "benchmark": "cold start",
            "model": name,
            "case": "1 row, fresh process",
            "core": f"{m['median_core_ms']:.1f} ms",
            "baseline": f"{m['median_floor_ms']:.1f} ms (joblib+numpy)",
            "result": f"ratio {m['median_ratio']:.3f}",
            "goal": f"ratio <= {GOAL_RATIO}",
            "met": m["met"],
        }
        for name, m in result["models"].items()
    ]
    result["markdown"] = markdown(result)
    write_json("cold_start.json", result)
    print(result["markdown"])


if __name__ == "__main__":
    main()
