"""Cold start of the Lambda handler with the model on S3 (moto), against the bare floor.

For each model, in rounds of fresh processes (the order inside a round rotates):

  lambda-s3    imports aws_lambda.handler (the init phase: settings, logging, no model) and
               invokes handler.predict once with an HTTP API (payload 2.0) POST /predict event;
               the model is s3://... on a local moto server, so the first invocation GETs the
               object (a signed GET without botocore: the credentials are in the environment,
               as on Lambda), deserialises and predicts.
  lambda-file  the same handler with the same file read locally (MODEL_URI=file://...): what the
               adapter costs without S3.
  floor        imports joblib and numpy, joblib.load()s the same file read locally, predicts one
               row (bench/cold_start.py's floor, reused).
  floor-headroom  the floor with its load and predict run under the same stack headroom as core's
               model load (core/stack_headroom.py): shows how much of a ratio below 1 comes from
               dodging CPython gh-142183, which the bare floor can hit, rather than from the code.

Each process is timed wall-clock from this parent twice: from spawn to the moment its answer
arrives on the pipe (children run unbuffered), and from spawn to exit. On Lambda the first is the
cold start a client waits for: after answering, the instance is frozen, never shut down, so the
interpreter's teardown (freeing botocore's service models takes tens of ms) is not on the request
path. Spawn-to-exit is what bench/cold_start.py reports, shown for comparison. Reported per model:
medians and the medians of per-round ratios lambda-s3/floor (goal <= 1.05, to the answer) and
lambda-file/floor. Both Lambda children run with LOG_LEVEL=WARNING, like bench/cold_start.py's core
child; the EMF metrics line is still written (to the pipe).

    python bench/aws_cold_start.py [--pairs 11]

moto's server (moto[server], from the test extra) must be installed next to this interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _models import ROOT, build_models, environment, write_json
from cold_start import CORE_SETTINGS, FLOOR_CHILD

GOAL_RATIO = 1.05
KINDS = ("lambda-s3", "lambda-file", "floor", "floor-headroom")

# The floor's load and predict on a 1 MiB stretch of the frame stack, as core/stack_headroom.py
# does it (inlined: the floor imports nothing of this repository).
FLOOR_HEADROOM_CHILD = """\
import sys
import joblib
import numpy as np
def load_and_predict():
    model = joblib.load({path!r})
    model.predict(np.array([{row!r}]))
load_and_predict.__code__ = load_and_predict.__code__.replace(co_stacksize=65536)
load_and_predict()
print(int("pandas" in sys.modules))
"""

LAMBDA_CHILD = """\
import sys
from aws_lambda.handler import predict
class Context:
    aws_request_id = "bench"
    client_context = None
event = {{"version": "2.0", "routeKey": "$default", "rawPath": "/predict", "rawQueryString": "",
         "headers": {{"content-type": "application/json"}},
         "requestContext": {{"http": {{"method": "POST", "path": "/predict"}}, "stage": "$default",
                            "requestId": "bench", "domainName": "x.execute-api.us-east-1.amazonaws.com"}},
         "body": {body!r}, "isBase64Encoded": False}}
answer = predict(event, Context())
if answer["statusCode"] != 200:
    sys.exit(f"the handler answered {{answer['statusCode']}}: {{answer['body'][:300]!r}}")
print(int("pandas" in sys.modules))
"""


def run_child(code: str, env: dict, cwd: str) -> tuple[float, float, int]:
    """One fresh interpreter: (seconds to its answer, seconds to exit, minor page faults).

    Both child programs print one last line, "0" or "1", right after predicting; with -u it
    reaches the pipe at once, so its arrival marks the answer.
    """
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    answered = None
    for line in proc.stdout:
        if line.strip() in (b"0", b"1"):
            answered = time.perf_counter() - started
    stderr = proc.stderr.read()
    proc.wait()
    exited = time.perf_counter() - started
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - faults
    if proc.returncode != 0 or answered is None:
        sys.exit(f"a child process failed (exit {proc.returncode}):\n{stderr.decode(errors='replace')}")
    return answered, exited, faults


def start_moto(folder: str) -> tuple[subprocess.Popen, str]:
    executable = Path(sys.executable).with_name("moto_server")
    command = str(executable) if executable.exists() else shutil.which("moto_server")
    if not command:
        sys.exit("moto_server is not installed next to this interpreter; install serverless-ml[test]")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    log = open(os.path.join(folder, "moto.log"), "w")
    process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("moto_server did not answer within 30 s")


def aws_env(url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_S3": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def upload(url: str, paths: dict[str, str]) -> dict[str, str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    s3.create_bucket(Bucket="bench-models")
    uris = {}
    for name, path in paths.items():
        key = f"models/{os.path.basename(path)}"
        s3.upload_file(path, "bench-models", key)
        uris[name] = f"s3://bench-models/{key}"
    return uris


def measure(path: str, s3_uri: str, url: str, row: list[float], rounds: int, cwd: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in CORE_SETTINGS and k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("AWS_")}
    base.update(LOG_LEVEL="WARNING", AWS_LAMBDA_FUNCTION_NAME="bench",
                PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    body = json.dumps({"instances": [row]})
    envs = {
        "lambda-s3": {**base, **aws_env(url), "MODEL_URI": s3_uri},
        "lambda-file": {**base, "MODEL_URI": "file://" + path},
        "floor": base,
        "floor-headroom": base,
    }
    codes = {"lambda-s3": LAMBDA_CHILD.format(body=body), "lambda-file": LAMBDA_CHILD.format(body=body),
             "floor": FLOOR_CHILD.format(path=path, row=row),
             "floor-headroom": FLOOR_HEADROOM_CHILD.format(path=path, row=row)}

    for kind in KINDS:  # untimed: writes missing .pyc files, warms the page cache
        run_child(codes[kind], envs[kind], cwd)
    times = {k: [] for k in KINDS}  # spawn to answer
    exits = {k: [] for k in KINDS}  # spawn to exit
    faults = {k: [] for k in KINDS}
    for i in range(rounds):
        order = KINDS[i % len(KINDS):] + KINDS[:i % len(KINDS)]
        for kind in order:
            answered, exited, minflt = run_child(codes[kind], envs[kind], cwd)
            times[kind].append(answered)
            exits[kind].append(exited)
            faults[kind].append(minflt)
        print("  round {}/{}: {}".format(
            i + 1, rounds, ", ".join(f"{k} {times[k][-1] * 1e3:.1f} ms ({exits[k][-1] * 1e3:.1f} to exit)" for k in KINDS)),
            file=sys.stderr)

    def ratios(a: list[float], b: list[float]) -> list[float]:
        return [x / y for x, y in zip(a, b, strict=True)]

    ratio_s3, ratio_file = ratios(times["lambda-s3"], times["floor"]), ratios(times["lambda-file"], times["floor"])
    exit_s3, exit_file = ratios(exits["lambda-s3"], exits["floor"]), ratios(exits["lambda-file"], exits["floor"])
    extra_s3 = [(s - f) * 1e3 for s, f in zip(times["lambda-s3"], times["lambda-file"], strict=True)]
    ratio_s3_headroom = ratios(times["lambda-s3"], times["floor-headroom"])
    return {
        "size_bytes": os.path.getsize(path),
        **{f"{k}_ms": [round(t * 1e3, 3) for t in v] for k, v in times.items()},
        **{f"{k}_exit_ms": [round(t * 1e3, 3) for t in v] for k, v in exits.items()},
        **{f"median_{k.replace('-', '_')}_ms": round(statistics.median(v) * 1e3, 2) for k, v in times.items()},
        **{f"median_{k.replace('-', '_')}_exit_ms": round(statistics.median(v) * 1e3, 2) for k, v in exits.items()},
        "ratios_s3": [round(r, 4) for r in ratio_s3],
        "ratios_file": [round(r, 4) for r in ratio_file],
        "median_ratio_s3": round(statistics.median(ratio_s3), 4),
        "median_ratio_file": round(statistics.median(ratio_file), 4),
        "ratios_s3_floor_headroom": [round(r, 4) for r in ratio_s3_headroom],
        "median_ratio_s3_floor_headroom": round(statistics.median(ratio_s3_headroom), 4),
        "median_exit_ratio_s3": round(statistics.median(exit_s3), 4),
        "median_exit_ratio_file": round(statistics.median(exit_file), 4),
        "median_s3_extra_ms": round(statistics.median(extra_s3), 2),
        "goal_ratio": GOAL_RATIO,
        "met": statistics.median(ratio_s3) <= GOAL_RATIO,
        "median_minor_faults": {k: int(statistics.median(v)) for k, v in faults.items()},
    }


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "### Lambda cold start: handler + first HTTP API invocation, model on S3 (moto), vs bare joblib+numpy",
        "",
        f"{result['pairs']} rounds per model (lambda-s3, lambda-file, floor, floor-headroom; order rotating), fresh interpreter "
        f"each, wall-clock from the parent; Python {env['python']}, scikit-learn {env['scikit-learn']}, "
        f"numpy {env['numpy']}, {env['cpus']} CPUs.",
        "",
        "Times to the answer (what a Lambda client waits for); to exit in the last column.",
        "",
        "| model | file | lambda-s3 | lambda-file | floor | ratio s3/floor (min-max) | goal | met "
        "| ratio file/floor | ratio s3/floor-headroom | S3 adds | to exit: ratio s3/floor, file/floor "
        "| minor faults s3 / file / floor / floor-headroom |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in result["models"].items():
        f = m["median_minor_faults"]
        lines.append(
            f"| {name} | {_size(m['size_bytes'])} | {m['median_lambda_s3_ms']:.1f} ms | "
            f"{m['median_lambda_file_ms']:.1f} ms | {m['median_floor_ms']:.1f} ms | "
            f"{m['median_ratio_s3']:.3f} ({min(m['ratios_s3']):.3f}-{max(m['ratios_s3']):.3f}) | <= {GOAL_RATIO} | "
            f"{'yes' if m['met'] else 'NO'} | {m['median_ratio_file']:.3f} | "
            f"{m['median_ratio_s3_floor_headroom']:.3f} | {m['median_s3_extra_ms']:.1f} ms | "
            f"{m['median_exit_ratio_s3']:.3f}, {m['median_exit_ratio_file']:.3f} | "
            f"{f['lambda-s3']} / {f['lambda-file']} / {f['floor']} / {f['floor-headroom']} |"
        )
    lines += [
        "",
        "`ratio s3/floor-headroom` compares with a floor that also runs on core's stack headroom "
        "(core/stack_headroom.py), so a ratio below 1 from avoiding CPython gh-142183 is not taken for speed "
        "of the code. `S3 adds` is the median per-round difference lambda-s3 - lambda-file: the signed GET of the model "
        "(and of its manifest, in parallel) from moto. On CPython 3.11 compare the page-fault columns before "
        "reading a gap as the code's (gh-142183, see bench/README.md).",
    ]
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=11, help="rounds per model (default 11, at least 9)")
    args = parser.parse_args()
    if args.pairs < 9:
        parser.error("--pairs must be at least 9")

    result = {"benchmark": "aws_cold_start", "pairs": args.pairs, "environment": environment(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-aws-cold-") as folder:
        moto, url = start_moto(folder)
        try:
            paths, X = build_models(folder)
            uris = upload(url, paths)
            row = [float(v) for v in X[0]]
            for name, path in paths.items():
                print(f"aws_cold_start: {name}", file=sys.stderr)
                result["models"][name] = measure(path, uris[name], url, row, args.pairs, folder)
        finally:
            moto.send_signal(signal.SIGTERM)
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()

    result["summary"] = [
        {
            "benchmark": "lambda cold start (S3)",
            "model": name,
            "case": "1 row, fresh process, HTTP API event, model on moto S3",
            "core": f"{m['median_lambda_s3_ms']:.1f} ms",
            "baseline": f"{m['median_floor_ms']:.1f} ms (joblib+numpy, local file)",
            "result": f"ratio {m['median_ratio_s3']:.3f} to answer, {m['median_exit_ratio_s3']:.3f} to exit "
                      f"(file: {m['median_ratio_file']:.3f})",
            "goal": f"ratio <= {GOAL_RATIO}",
            "met": m["met"],
        }
        for name, m in result["models"].items()
    ]
    result["markdown"] = markdown(result)
    write_json("aws_cold_start.json", result)
    print(result["markdown"])


if __name__ == "__main__":
    main()
