"""SnapStart: time from the after-restore hook to the first answer, against a normal cold start.

For each model (on S3, a local moto server), in rounds of fresh processes (the order alternates):

  cold      a normal cold start: the interpreter starts, imports aws_lambda.handler (the init
            phase, PRELOAD_MODEL=false as the default deployment), and handler.predict answers
            one HTTP API POST /predict of 1 row, fetching and deserialising the model on the way.
            Timed from spawn to the answer on the pipe (bench/aws_cold_start.py's "lambda-s3").
  restore   a simulated SnapStart restore: the child imports the handler with PRELOAD_MODEL=true
            (what snapStart forces), runs the before-snapshot hooks through snapshot-restore-py's
            registry as Lambda does (reverse order: the model is loaded, S3 clients dropped), then
            - the "restore" - runs the after-restore hooks in order (re-seeding, dropping cached
            clients and credentials, the cold-start flag) and answers the same request. Timed
            inside the child from the first after-restore hook to the answer.

Reported per model: the medians and the median of per-round ratios restore / cold.

What the simulation leaves out: the restore itself. On Lambda, an instance is resumed from a
snapshot of its memory (Firecracker microVM snapshot, pages loaded lazily from a cache), which
costs tens to hundreds of ms and grows with the memory the model and libraries touch; the first
requests then page in what they use (page faults served from the snapshot cache, not local RAM as
here). Lambda also bills and limits the restore phase (10 s for the runtime and after-restore
hooks). Here the process never stopped, so every page is already in RAM: the ratio is a floor of
what SnapStart can give, not a measurement of it. The cold side leaves out Lambda's own runtime
start and the download of the code package, which SnapStart avoids too.

    python bench/snapstart_restore.py [--rounds 9]

Needs moto[server] and snapshot-restore-py next to this interpreter (the test extra).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from _models import ROOT, build_models, environment, write_json
from aws_cold_start import LAMBDA_CHILD, aws_env, run_child, start_moto, upload
from cold_start import CORE_SETTINGS

RESTORE_CHILD = """\
import json, sys, time
import snapshot_restore_py
from aws_lambda.handler import predict
# as awslambdaric's hooks runner does: pops the before-snapshot hooks (reverse order of registration)
hooks = snapshot_restore_py.get_before_snapshot()
while hooks:
    func, args, kwargs = hooks.pop()
    func(*args, **kwargs)
class Context:
    aws_request_id = "bench"
    client_context = None
event = {{"version": "2.0", "routeKey": "$default", "rawPath": "/predict", "rawQueryString": "",
         "headers": {{"content-type": "application/json"}},
         "requestContext": {{"http": {{"method": "POST", "path": "/predict"}}, "stage": "$default",
                            "requestId": "bench", "domainName": "x.execute-api.us-east-1.amazonaws.com"}},
         "body": {body!r}, "isBase64Encoded": False}}
started = time.perf_counter()
for func, args, kwargs in snapshot_restore_py.get_after_restore():
    func(*args, **kwargs)
answer = predict(event, Context())
elapsed = time.perf_counter() - started
if answer["statusCode"] != 200:
    sys.exit(f"the handler answered {{answer['statusCode']}}: {{answer['body'][:300]!r}}")
print("RESTORE " + json.dumps(elapsed))
"""


def restore_once(code: str, env: dict, cwd: str) -> float:
    done = subprocess.run([sys.executable, "-u", "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESTORE ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"a restore child failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[0][len("RESTORE "):])


def measure(s3_uri: str, url: str, row: list[float], rounds: int, cwd: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in CORE_SETTINGS and k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("AWS_")}
    base.update(aws_env(url), LOG_LEVEL="WARNING", AWS_LAMBDA_FUNCTION_NAME="bench", MODEL_URI=s3_uri,
                PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    body = json.dumps({"instances": [row]})
    cold_code, restore_code = LAMBDA_CHILD.format(body=body), RESTORE_CHILD.format(body=body)
    cold, restored = [], []
    for index in range(rounds):
        order = ("cold", "restore") if index % 2 == 0 else ("restore", "cold")
        for kind in order:
            if kind == "cold":
                cold.append(run_child(cold_code, {**base, "PRELOAD_MODEL": "false"}, cwd)[0])
            else:
                restored.append(restore_once(restore_code, {**base, "PRELOAD_MODEL": "true"}, cwd))
    ratios = [r / c for r, c in zip(restored, cold, strict=True)]
    return {
        "cold_ms": [round(s * 1000, 2) for s in cold],
        "restore_ms": [round(s * 1000, 2) for s in restored],
        "median_cold_ms": statistics.median(cold) * 1000,
        "median_restore_ms": statistics.median(restored) * 1000,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
    }


def markdown(result: dict) -> str:
    lines = [
        "### SnapStart (simulated restore): after-restore hook to first answer vs a normal cold start",
        "",
        f"{result['rounds']} rounds of fresh processes per model, model on moto S3, 1 row, HTTP API event.",
        "",
        "| model | cold start, spawn to answer: median (min-max) | restore, hook to answer: median (min-max) "
        "| ratio restore / cold: median of rounds (min-max) |",
        "|---|---|---|---|",
    ]
    for name, m in result["models"].items():
        lines.append(
            f"| {name} | {m['median_cold_ms']:.1f} ms ({min(m['cold_ms']):.0f}-{max(m['cold_ms']):.0f}) "
            f"| {m['median_restore_ms']:.1f} ms ({min(m['restore_ms']):.1f}-{max(m['restore_ms']):.1f}) "
            f"| {m['median_ratio']:.4f} ({min(m['ratios']):.4f}-{max(m['ratios']):.4f}) |")
    lines += ["", "Leaves out the restore of the microVM's memory and the page faults after it (see the docstring)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds per model (default 9, at least 5)")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5")
    result = {"benchmark": "snapstart_restore", "rounds": args.rounds, "environment": environment(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-snapstart-") as folder:
        moto, url = start_moto(folder)
        try:
            paths, X = build_models(folder)
            uris = upload(url, paths)
            row = [float(v) for v in X[0]]
            for name in paths:
                print(f"snapstart_restore: {name}", file=sys.stderr)
                started = time.perf_counter()
                result["models"][name] = measure(uris[name], url, row, args.rounds, folder)
                print(f"  {time.perf_counter() - started:.0f} s", file=sys.stderr)
        finally:
            moto.send_signal(signal.SIGTERM)
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
    result["summary"] = [
        {
            "benchmark": "SnapStart restore (simulated)",
            "model": name,
            "case": "1 row, fresh process, after-restore hooks to answer vs spawn to answer of a cold start, model on moto S3",
            "core": f"{m['median_restore_ms']:.1f} ms",
            "baseline": f"{m['median_cold_ms']:.1f} ms (normal cold start)",
            "result": f"ratio {m['median_ratio']:.3f}",
            "goal": "-",
            "met": None,
        }
        for name, m in result["models"].items()
    ]
    result["markdown"] = markdown(result)
    write_json("snapstart_restore.json", result)
    print(result["markdown"])


if __name__ == "__main__":
    main()
