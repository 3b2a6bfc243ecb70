"""Where reading a model into memory stops paying (issue 20): core/model/fetch.py's MEMORY_BELOW_BYTES.

    python bench/model_threshold.py              forests of about 1, 4, 16 and 64 MB, file:// and moto S3
    python bench/model_threshold.py --rounds 9   more rounds where the spread is wide
    python bench/model_threshold.py --trees 1 2 4 8   other sizes (a tree is about 1 MB)

Below MEMORY_BELOW_BYTES a model's bytes are read into memory, hashed there and deserialised from
there; from it on, a local file is hashed in blocks and loaded from its path, and a remote one is
streamed to a scratch file (hashed on the way) and loaded from that. This runs the same cold start
both ways for each size: a fresh process imports core, builds the service (``LOG_LEVEL=WARNING``),
loads the model and answers one POST /predict, with the threshold set in that process to "never"
(``memory``) or "always" (``file``: the file itself for file://, a scratch copy for S3). The two
ways differ only in the load (read, hash, deserialise), so that is what is compared: its CPU time
(``time.process_time``, all threads; medians, and the median of per-round ratios file/memory),
which a busy machine disturbs far less than wall-clock time, and the best wall-clock load and
whole cold start of the rounds (about a second, mostly imports). joblib and scikit-learn are
imported before the load, alike both ways, to keep their import out of it. The S3 server's own
work (moto, another process) is in neither CPU figure: it serves the same bytes both ways. Peak
RSS is the process's VmHWM (medians).

The models are one forest of 64 trees fitted on 50,000 rows with noisy labels (deep trees, about
1 MB each) and saved with its first 1, 4, 16 and 64 trees. Rounds run every case once, both
ways in alternating order; the ratio is the median of the per-round ratios file/memory (below
1.0: loading from the file is cheaper). The page cache is warm for both ways (the file was just
written or read), as it is for a scratch copy; a first read from a cold disk costs both the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from _models import ROOT, environment, write_json  # importing _models puts core on sys.path
from aws_cold_start import aws_env, start_moto

TREES = (1, 4, 16, 64)
PEAK = 'next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))'
CORE = f"""
import json, sys, time
started = time.perf_counter()
import core.model.fetch
core.model.fetch.MEMORY_BELOW_BYTES = int(sys.argv[1])  # before any load: read at each fetch
from core.http import PredictionService
from core.http.messages import HttpRequest
from core.settings import Settings
import joblib, sklearn.ensemble  # loaded alike both ways: kept out of the load's time, with their noise
service = PredictionService(Settings.from_env())
loading, cpu = time.perf_counter(), time.process_time()
model = service.model.get()
load_seconds, load_cpu_seconds = time.perf_counter() - loading, time.process_time() - cpu
body = json.dumps({{"instances": [[0.5] * 20]}}).encode()
answer = service.handle(HttpRequest("POST", "/predict", {{"content-type": "application/json"}}, body))
seconds = time.perf_counter() - started
assert answer.status == 200, answer.body
print(json.dumps({{"seconds": seconds, "load_seconds": load_seconds, "load_cpu_seconds": load_cpu_seconds, "peak": {PEAK}, "load": model.public_view()["load"]}}))
"""
NEVER, ALWAYS = 1 << 62, 0  # the threshold that keeps every model in memory, and the one that never does


def build_forests(folder: str, sizes: tuple[int, ...]) -> dict[int, str]:
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50_000, 20))
    y = (X[:, 0] + rng.normal(size=len(X)) > 0).astype(int)  # noisy labels: deep trees
    forest = RandomForestClassifier(n_estimators=max(sizes), n_jobs=-1, random_state=0).fit(X, y)
    everything = forest.estimators_
    paths = {}
    for trees in sizes:
        forest.estimators_, forest.n_estimators = everything[:trees], trees
        paths[trees] = os.path.join(folder, f"forest-{trees}.joblib")
        joblib.dump(forest, paths[trees])
    return paths


def run(env: dict[str, str], threshold: int) -> dict:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "AWS_"))}
    child_env.update(PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING", **env)
    done = subprocess.run([sys.executable, "-c", CORE, str(threshold)], env=child_env, capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"a child process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--trees", type=int, nargs="+", default=TREES, help="the sizes: trees of about 1 MB each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"fitting a {max(args.trees)}-tree forest ...", file=sys.stderr)
        paths = build_forests(folder, tuple(args.trees))
        moto, url = start_moto(folder)
        try:
            import boto3

            s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
            s3.create_bucket(Bucket="bench-threshold")
            scratch = tempfile.mkdtemp(dir=folder)
            cases = {}
            for trees, path in paths.items():
                s3.upload_file(path, "bench-threshold", os.path.basename(path))
                size = os.path.getsize(path)
                cases[(trees, "file")] = (size, {"MODEL_URI": "file://" + path})
                cases[(trees, "s3")] = (size, {**aws_env(url), "MODEL_SCRATCH_DIR": scratch,
                                               "MODEL_URI": f"s3://bench-threshold/{os.path.basename(path)}"})
            runs: dict[tuple, dict[str, list[dict]]] = {key: {"memory": [], "file": []} for key in cases}
            for round_number in range(args.rounds):
                print(f"round {round_number + 1}/{args.rounds}", file=sys.stderr)
                for key, (_, env) in cases.items():
                    order = ("memory", "file") if round_number % 2 == 0 else ("file", "memory")
                    for way in order:
                        runs[key][way].append(run(env, NEVER if way == "memory" else ALWAYS))
        finally:
            moto.kill()
            moto.wait()

    results = []
    for (trees, source), (size, _) in cases.items():
        memory, file = runs[(trees, source)]["memory"], runs[(trees, source)]["file"]
        assert {r["load"]["loaded_from"] for r in memory} == {"memory"}, memory[0]["load"]
        ratios = [f["load_cpu_seconds"] / m["load_cpu_seconds"] for m, f in zip(memory, file, strict=True)]
        results.append({
            "source": source, "trees": trees, "model_mb": round(size / 1e6, 1),
            "file_way": file[0]["load"]["loaded_from"],
            "memory_load_seconds": min(r["load_seconds"] for r in memory),
            "file_load_seconds": min(r["load_seconds"] for r in file),
            "memory_load_cpu_seconds": statistics.median(r["load_cpu_seconds"] for r in memory),
            "file_load_cpu_seconds": statistics.median(r["load_cpu_seconds"] for r in file),
            "memory_seconds": min(r["seconds"] for r in memory),
            "file_seconds": min(r["seconds"] for r in file),
            "time_ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "memory_peak_mb": round(statistics.median(r["peak"] for r in memory) / 1e6, 1),
            "file_peak_mb": round(statistics.median(r["peak"] for r in file) / 1e6, 1),
        })
        print(f"  {json.dumps(results[-1])}", file=sys.stderr)

    lines = ["### Model threshold: the cold start with the bytes in memory or loaded from a file", "",
             "| source | model | load CPU ms, memory | load CPU ms, file | CPU file/memory (min-max) | best load ms, memory | "
             "best load ms, file | best cold start s, memory | best cold start s, file | peak, memory | peak, file |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['source']} ({r['file_way']}) | {r['model_mb']} MB | {r['memory_load_cpu_seconds'] * 1e3:.1f} | "
            f"{r['file_load_cpu_seconds'] * 1e3:.1f} | {r['time_ratio']:.3f}x ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) | "
            f"{r['memory_load_seconds'] * 1e3:.1f} | {r['file_load_seconds'] * 1e3:.1f} | {r['memory_seconds']:.3f} | "
            f"{r['file_seconds']:.3f} | {r['memory_peak_mb']} MB | {r['file_peak_mb']} MB |")
    result = {
        "environment": {**environment(), "load_average": os.getloadavg()}, "rounds": args.rounds,
        "cases": results, "markdown": "\n".join(lines),
        "summary": [{
            "benchmark": "model threshold", "case": f"{r['model_mb']} MB forest from {r['source']}",
            "core": f"from a file: load {r['file_load_cpu_seconds'] * 1e3:.1f} ms CPU, {r['file_peak_mb']} MB peak",
            "baseline": f"from memory: load {r['memory_load_cpu_seconds'] * 1e3:.1f} ms CPU, {r['memory_peak_mb']} MB peak",
            "result": f"load CPU {r['time_ratio']:.3f}x", "goal": "- (sets MEMORY_BELOW_BYTES)", "met": None,
        } for r in results],
    }
    write_json("model_threshold.json", result)
    print(result["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
