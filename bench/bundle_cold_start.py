"""Cold start as deployed on Lambda: the handler run from the unzipped bundles that
``serverless-ml package --provider aws`` builds, the default one serving the .joblib and the
``--onnx-only`` one serving the same model exported to .onnx, against the floor.

The other cold-start scripts run their children in this checkout's virtualenv, where every
interpreter also processes site-packages' .pth files (the editable install's import hook, about
10 ms). A Lambda function has none of that: its /var/task is the unzipped bundle, bytecode
included. Here each child is ``python3.13 -I -S`` in the bundle's folder with sys.path = the
bundle and the standard library, which is what /var/task gives the handler, and each first imports
what Lambda's runtime has imported before the handler (json, logging, traceback; RUNTIME_PRELUDE):

  joblib-bundle  the default bundle (scikit-learn, SciPy, joblib, NumPy): imports
                 aws_lambda.handler and invokes predict once with an HTTP API (payload 2.0)
                 POST /predict event, MODEL_URI=file://<model>.joblib
  onnx-bundle    the --onnx-only bundle (onnxruntime, NumPy): the same, MODEL_URI=<model>.onnx
  floor          in the default bundle: imports joblib and numpy, joblib.load()s the .joblib,
                 predicts one row (bench/cold_start.py's floor)
  bare-ort       in the --onnx-only bundle: an onnxruntime session on the .onnx and one row, for
                 reference (onnx_cold_start.py's bare handler)

Timed from this parent, spawn to the answer (the line printed after the prediction) and spawn to
exit, in rounds whose order rotates. Reported per model: medians, the medians of per-round ratios
to the floor, and the bundles' sizes. No goal: this shows what the ONNX figures of
onnx_cold_start.py become in the deployed layout, and what a smaller bundle is worth.

    python bench/bundle_cold_start.py [--rounds 11]

Needs a Python 3.13 (the Lambda runtime the bundles are built for by default; its compiled wheels
load only under it) and pip's access to PyPI for the bundles' dependencies.
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
import zipfile

from _models import ROOT, build_models, environment, write_json
from aws_cold_start import LAMBDA_CHILD
from cold_start import FLOOR_CHILD
from onnx_cold_start import BARE_ORT_CHILD, export_onnx

KINDS = ("joblib-bundle", "onnx-bundle", "floor", "bare-ort")
# What Lambda's Python runtime (awslambdaric/bootstrap.py) has imported before it imports the
# handler: every child starts with it, the floor too, so that no side is charged for modules a
# real function never loads itself.
RUNTIME_PRELUDE = "import importlib, json, logging, os, sys, time, traceback\n"


def lambda_python() -> str:
    sys.path.insert(0, str(ROOT))
    from serverless_ml.bundles.dependencies import find_interpreter
    from serverless_ml.bundles.providers import LAMBDA_DEFAULT_PYTHON

    found = find_interpreter(LAMBDA_DEFAULT_PYTHON)  # the runtime the bundles are built for by default
    if found is None:
        sys.exit(f"bundle_cold_start: no Python {LAMBDA_DEFAULT_PYTHON} here (Lambda's runtime for the bundles); install one")
    return found


def build_bundle(out: str, *options: str) -> dict:
    """Build and unzip one Lambda bundle; its folder and sizes."""
    archive = os.path.join(out, "bundle.zip")
    done = subprocess.run([sys.executable, "-m", "serverless_ml.cli", "package", "--provider", "aws", "--out", archive,
                           *options], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"serverless-ml package {' '.join(options)} failed:\n{done.stderr[-3000:]}")
    folder = os.path.join(out, "task")
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(folder)
        unzipped = sum(info.file_size for info in bundle.infolist())
    return {"folder": folder, "zipped_bytes": os.path.getsize(archive), "unzipped_bytes": unzipped}


def run_child(python: str, code: str, folder: str, env: dict) -> tuple[float, float]:
    """One fresh ``python -I -S`` with the bundle ``folder`` first on sys.path: seconds to the
    answer (the last line it prints, unbuffered) and to exit."""
    prelude = RUNTIME_PRELUDE + f"sys.path.insert(0, {folder!r})\n"
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-I", "-S", "-u", "-c", prelude + code], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    answered = None
    for line in proc.stdout:
        if line.strip() in (b"0", b"1"):
            answered = time.perf_counter() - started
    stderr = proc.stderr.read()
    proc.wait()
    exited = time.perf_counter() - started
    if proc.returncode != 0 or answered is None:
        sys.exit(f"a child process failed (exit {proc.returncode}):\n{stderr.decode(errors='replace')[-3000:]}")
    return answered, exited


def measure(python: str, bundles: dict, joblib_path: str, onnx_path: str, row: list[float], rounds: int) -> dict:
    body = json.dumps({"instances": [row]})
    base_env = {"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", "AWS_LAMBDA_FUNCTION_NAME": "bench",
                "AWS_REGION": "us-east-1"}
    children = {
        "joblib-bundle": (LAMBDA_CHILD.format(body=body), bundles["joblib"]["folder"],
                          {**base_env, "MODEL_URI": "file://" + joblib_path}),
        "onnx-bundle": (LAMBDA_CHILD.format(body=body), bundles["onnx"]["folder"],
                        {**base_env, "MODEL_URI": "file://" + onnx_path}),
        "floor": (FLOOR_CHILD.format(path=joblib_path, row=row), bundles["joblib"]["folder"], base_env),
        "bare-ort": (BARE_ORT_CHILD.format(path=onnx_path, row=row), bundles["onnx"]["folder"], base_env),
    }
    for code, folder, env in children.values():  # untimed: page cache
        run_child(python, code, folder, env)
    answers = {k: [] for k in KINDS}
    exits = {k: [] for k in KINDS}
    for i in range(rounds):
        for kind in KINDS[i % len(KINDS):] + KINDS[: i % len(KINDS)]:
            answered, exited = run_child(python, *children[kind])
            answers[kind].append(answered)
            exits[kind].append(exited)
        print(f"  round {i + 1}/{rounds}: " + ", ".join(f"{k} {answers[k][-1] * 1e3:.1f} ms" for k in KINDS),
              file=sys.stderr)

    def ratio(times: dict, kind: str, base: str = "floor") -> list[float]:
        return [a / b for a, b in zip(times[kind], times[base], strict=True)]

    return {
        "median_answer_ms": {k: round(statistics.median(v) * 1e3, 1) for k, v in answers.items()},
        "median_exit_ms": {k: round(statistics.median(v) * 1e3, 1) for k, v in exits.items()},
        "answer_ratio": {k: round(statistics.median(ratio(answers, k)), 3) for k in ("joblib-bundle", "onnx-bundle", "bare-ort")},
        "answer_ratio_range": {k: [round(min(ratio(answers, k)), 3), round(max(ratio(answers, k)), 3)]
                               for k in ("joblib-bundle", "onnx-bundle")},
        "exit_ratio": {k: round(statistics.median(ratio(exits, k)), 3) for k in ("joblib-bundle", "onnx-bundle")},
        "onnx_over_joblib_bundle": round(statistics.median(ratio(answers, "onnx-bundle", "joblib-bundle")), 3),
    }


def markdown(result: dict) -> str:
    sizes = result["bundles"]
    lines = [
        "### Cold start as deployed: the Lambda handler from the unzipped bundles (python3.13 -I -S)",
        "",
        f"{result['rounds']} rounds per model, order rotating; Python {result['lambda_python']} in the bundles. "
        f"Default bundle: {sizes['joblib']['unzipped_bytes'] / 2**20:.1f} MB unzipped / "
        f"{sizes['joblib']['zipped_bytes'] / 2**20:.1f} MB zipped; --onnx-only: "
        f"{sizes['onnx']['unzipped_bytes'] / 2**20:.1f} / {sizes['onnx']['zipped_bytes'] / 2**20:.1f} MB.",
        "",
        "| model | joblib-bundle | onnx-bundle | floor | joblib-bundle/floor (min-max) | onnx-bundle/floor (min-max) "
        "| bare-ort/floor | onnx-bundle/joblib-bundle | to exit: joblib-bundle/floor, onnx-bundle/floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in result["models"].items():
        a, r, rr, x = m["median_answer_ms"], m["answer_ratio"], m["answer_ratio_range"], m["exit_ratio"]
        lines.append(
            f"| {name} | {a['joblib-bundle']:.1f} ms | {a['onnx-bundle']:.1f} ms | {a['floor']:.1f} ms "
            f"| {r['joblib-bundle']:.3f} ({rr['joblib-bundle'][0]:.3f}-{rr['joblib-bundle'][1]:.3f}) "
            f"| {r['onnx-bundle']:.3f} ({rr['onnx-bundle'][0]:.3f}-{rr['onnx-bundle'][1]:.3f}) "
            f"| {r['bare-ort']:.3f} | {m['onnx_over_joblib_bundle']:.3f} | {x['joblib-bundle']:.3f}, {x['onnx-bundle']:.3f} |"
        )
    lines += ["", "Times to the answer (what a Lambda client waits for; the instance is frozen after it, not torn down)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11, help="rounds per model (default 11, at least 9)")
    args = parser.parse_args()
    if args.rounds < 9:
        parser.error("--rounds must be at least 9")
    python = lambda_python()
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    result = {"benchmark": "bundle_cold_start", "rounds": args.rounds, "environment": environment(),
              "lambda_python": version, "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-bundle-cold-") as folder:
        print("bundle_cold_start: building the default and the --onnx-only Lambda bundles", file=sys.stderr)
        bundles = {"joblib": build_bundle(tempfile.mkdtemp(dir=folder)),
                   "onnx": build_bundle(tempfile.mkdtemp(dir=folder), "--onnx-only")}
        result["bundles"] = {k: {s: v for s, v in b.items() if s != "folder"} for k, b in bundles.items()}
        paths, X = build_models(folder)
        row = [float(v) for v in X[0]]
        for name, path in paths.items():
            print(f"bundle_cold_start: {name}", file=sys.stderr)
            result["models"][name] = measure(python, bundles, path, export_onnx(path), row, args.rounds)

    result["summary"] = [
        {
            "benchmark": "cold start as deployed",
            "model": name,
            "case": "1 row, Lambda handler from the unzipped bundle, python3.13 -I -S, local file",
            "core": f"{m['median_answer_ms']['onnx-bundle']:.1f} ms (--onnx-only, .onnx)",
            "baseline": f"{m['median_answer_ms']['floor']:.1f} ms (joblib+numpy floor); default bundle "
                        f"{m['median_answer_ms']['joblib-bundle']:.1f} ms",
            "result": f"onnx-bundle/floor {m['answer_ratio']['onnx-bundle']:.3f}, "
                      f"joblib-bundle/floor {m['answer_ratio']['joblib-bundle']:.3f}",
            "goal": "-",
            "met": None,
        }
        for name, m in result["models"].items()
    ]
    result["markdown"] = markdown(result)
    write_json("bundle_cold_start.json", result)
    print(result["markdown"])


if __name__ == "__main__":
    main()
