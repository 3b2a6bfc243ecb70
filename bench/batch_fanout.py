"""Batch fan-out on one machine: ``serverless-ml batch --workers 2`` against one worker.

    python bench/batch_fanout.py                       1,000,000 x 20 CSV (quick, ~190 MB)
    python bench/batch_fanout.py --rows 10000000       the issue's 10,000,000 rows (~1.9 GB)

Each run is the command as a user runs it (a process of its own, on a local file, outputs to a
local folder), for a logistic regression and a 200-tree random forest (bench/_models.py). Reported:

    speedup        one worker's wall time / two workers' (goal for the forest: >= 1.8x)
    merge share    the two-worker run's merge (parts concatenated and published) / its total (<= 3%)
    plan share     the plan (the pass that finds where rows and quoted fields end, and the line
                   numbers) / the one-worker run's total (<= 5%), measured two ways: in the
                   two-worker run (``plan_seconds``, which includes starting the worker processes,
                   as a user waits for them) and alone, in one process (``fanout.plan``)
    peak RSS       of the largest process of each run (a worker, with two): getrusage of the
                   command's process tree, measured by a process of this script that runs only
                   that command; and the same for a file a tenth the size, to show it flat in the
                   file's size
    identical      whether the two runs' outputs are the same bytes

The rows are a block of distinct rows (at most 1,000,000) written again and again: generating ten
million distinct rows of text costs minutes and says nothing more about the engine. A machine
shared with other work slows the runs unevenly: the CPU model and the load average before and
after are printed with the figures.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from _models import ROOT, build_models, environment, write_json  # importing _models puts core on sys.path

GOALS = {"speedup_forest": 1.8, "merge_share": 0.03, "plan_share": 0.05}
DISTINCT_ROWS = 1_000_000


def write_csv(path: str, rows: int, features: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    distinct = min(rows, DISTINCT_ROWS)
    with tempfile.TemporaryFile() as block_file:
        for start in range(0, distinct, 100_000):
            np.savetxt(block_file, rng.normal(size=(min(100_000, distinct - start), features)) * 2, fmt="%.6g",
                       delimiter=",")
        block_file.seek(0)
        block = block_file.read()
    with open(path, "wb") as out:
        out.write((",".join(f"f{i}" for i in range(features)) + "\n").encode())
        for _ in range(rows // distinct):
            out.write(block)
        rest = rows % distinct
        if rest:
            out.write(b"".join(block.splitlines(keepends=True)[:rest]))


def run_command(data: str, model: str, out: str, workers: int) -> dict:
    """The command, through a process of this script that runs it and reports: wall time, the
    command's JSON summary, and the peak RSS of the largest process of the command's tree."""
    proc = subprocess.run([sys.executable, __file__, "--child", data, model, out, str(workers)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"--workers {workers} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(data: str, model: str, out: str, workers: int) -> dict:
    env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    for name in ("BATCH_FANOUT_PART_BYTES", "BATCH_FANOUT_PART_ROWS", "BATCH_CHUNK_ROWS", "MODEL_URI"):
        env.pop(name, None)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "serverless_ml.cli", "batch", data, out, "--model", model, "--workers", str(workers)],
        capture_output=True, text=True, cwd=ROOT, env=env,
    )
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"--workers {workers} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    # every process of the command's tree was reaped by now: RUSAGE_CHILDREN keeps the largest
    # peak among them (the command itself, its workers, their writer processes)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "summary": json.loads(proc.stdout.strip().splitlines()[-1]), "peak_mb": peak_mb}


def plan_alone(data: str, model: str) -> float:
    from core.batch import fanout
    from core.batch.workers import LOCAL_FLOOR_BYTES
    from core.settings import Settings

    settings = Settings.from_env({"MODEL_URI": "file://" + model})
    started = time.perf_counter()
    surveyed = fanout.survey("file://" + data, settings, at_least=4, floor_bytes=LOCAL_FLOOR_BYTES)
    fanout.cut(surveyed, [fanout.scan_grain(grain) for grain in surveyed["grains"]])
    return time.perf_counter() - started


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), None)
    except OSError:
        return None


def measure_model(name: str, data: str, model: str, folder: str) -> dict:
    one_out, two_out = os.path.join(folder, "one"), os.path.join(folder, "two")
    one = run_command(data, model, one_out, 1)
    two = run_command(data, model, two_out, 2)
    base = os.path.basename(data)
    identical = all(filecmp.cmp(os.path.join(one_out, base + suffix), os.path.join(two_out, base + suffix),
                                shallow=False)
                    for suffix in (".predictions.jsonl",) + ((".errors.jsonl",) if one["summary"]["errors_uri"] else ()))
    shutil.rmtree(one_out)
    shutil.rmtree(two_out)
    fanned = two["summary"]["fanout"]
    alone = plan_alone(data, model)
    return {
        "model": name,
        "rows": one["summary"]["rows_read"],
        "one_worker_seconds": round(one["seconds"], 2),
        "two_workers_seconds": round(two["seconds"], 2),
        "speedup": round(one["seconds"] / two["seconds"], 3),
        "parts": fanned["parts"],
        "plan_seconds_in_run": fanned["plan_seconds"],
        "plan_seconds_alone": round(alone, 3),
        "plan_share_of_one_worker": round(fanned["plan_seconds"] / one["seconds"], 4),
        "plan_alone_share_of_one_worker": round(alone / one["seconds"], 4),
        "parts_seconds": fanned["parts_seconds"],
        "merge_seconds": fanned["merge_seconds"],
        "merge_share": round(fanned["merge_seconds"] / two["seconds"], 4),
        "one_worker_peak_mb": round(one["peak_mb"], 1),
        "two_workers_largest_process_peak_mb": round(two["peak_mb"], 1),
        "identical_outputs": identical,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--models", default="random_forest_200,logistic_regression")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        data, model, out, workers = args.child
        print(json.dumps(child(data, model, out, int(workers))))
        return 0
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        paths, _ = build_models(folder)
        data = os.path.join(folder, "rows.csv")
        print(f"writing {args.rows:,} x {args.features} CSV ...", file=sys.stderr)
        write_csv(data, args.rows, args.features)
        size_mb = os.path.getsize(data) / 2**20
        for name in args.models.split(","):
            print(f"{name}: one worker, then two ...", file=sys.stderr)
            results.append(measure_model(name, data, paths[name], folder))
        # the same with a tenth of the rows: the peak memory of a process must not follow the file
        small = os.path.join(folder, "small.csv")
        write_csv(small, max(1, args.rows // 10), args.features)
        flat_name = args.models.split(",")[-1]
        print(f"{flat_name} on a tenth of the rows (memory) ...", file=sys.stderr)
        flat = run_command(small, paths[flat_name], os.path.join(folder, "small-out"), 2)
    load_after = os.getloadavg()
    report = {
        "benchmark": "batch_fanout", "rows": args.rows, "features": args.features, "file_mb": round(size_mb, 1),
        "cpu_model": cpu_model(), "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
        "results": results,
        "tenth_of_the_rows": {"model": flat_name, "rows": flat["summary"]["rows_read"],
                              "two_workers_largest_process_peak_mb": round(flat["peak_mb"], 1)},
        "goals": GOALS, "environment": environment(),
    }
    forest = next((r for r in results if r["model"] == "random_forest_200"), None)
    if forest is not None:
        report["goals_met"] = {
            "speedup_forest": forest["speedup"] >= GOALS["speedup_forest"],
            "merge_share": all(r["merge_share"] <= GOALS["merge_share"] for r in results),
            "plan_share": all(r["plan_share_of_one_worker"] <= GOALS["plan_share"] for r in results),
        }
    report["summary"] = [
        {
            "benchmark": "batch fan-out",
            "model": r["model"],
            "case": f"{r['rows']:,} rows x {args.features} CSV ({size_mb:.0f} MB), --workers 2 vs 1, {r['parts']} parts",
            "core": f"{r['two_workers_seconds']:.1f} s with 2 workers",
            "baseline": f"{r['one_worker_seconds']:.1f} s with 1",
            "result": f"{r['speedup']:.2f}x; plan {r['plan_share_of_one_worker']:.1%}, merge {r['merge_share']:.1%}",
            "goal": ("speedup >= 1.8x, " if r["model"] == "random_forest_200" else "") + "plan <= 5%, merge <= 3%",
            "met": (r["speedup"] >= GOALS["speedup_forest"] if r["model"] == "random_forest_200" else True)
            and r["plan_share_of_one_worker"] <= GOALS["plan_share"] and r["merge_share"] <= GOALS["merge_share"],
        }
        for r in results
    ]
    lines = ["### Batch fan-out", "",
             f"{args.rows:,} rows x {args.features} ({size_mb:,.0f} MB) on {cpu_model()} ({os.cpu_count()} CPUs), "
             f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after.", "",
             "| model | 1 worker | 2 workers | speedup | parts | plan (in run / alone) | merge | peak RSS 1 / 2 workers | same bytes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['one_worker_seconds']:.1f} s | {r['two_workers_seconds']:.1f} s | {r['speedup']:.2f}x | "
            f"{r['parts']} | {r['plan_share_of_one_worker']:.1%} / {r['plan_alone_share_of_one_worker']:.1%} | "
            f"{r['merge_share']:.1%} | {r['one_worker_peak_mb']:.0f} / {r['two_workers_largest_process_peak_mb']:.0f} MB | "
            f"{'yes' if r['identical_outputs'] else 'NO'} |")
    tenth = report["tenth_of_the_rows"]
    lines += ["", f"A tenth of the rows ({tenth['rows']:,}, {tenth['model']}): largest process "
                  f"{tenth['two_workers_largest_process_peak_mb']:.0f} MB with 2 workers."]
    report["markdown"] = "\n".join(lines)
    print(json.dumps(report, indent=2))
    write_json("batch_fanout.json", report)
    print(f"\n{args.rows:,} rows x {args.features} ({size_mb:,.0f} MB) on {cpu_model()}, load {load_before[0]:.2f} -> "
          f"{load_after[0]:.2f}", file=sys.stderr)
    for r in results:
        print(f"{r['model']:>20}: 1 worker {r['one_worker_seconds']:.1f} s, 2 workers {r['two_workers_seconds']:.1f} s "
              f"({r['speedup']:.2f}x, {r['parts']} parts); plan {r['plan_share_of_one_worker']:.1%} of one worker "
              f"(alone {r['plan_alone_share_of_one_worker']:.1%}); merge {r['merge_share']:.1%}; peak "
              f"{r['one_worker_peak_mb']:.0f} MB / {r['two_workers_largest_process_peak_mb']:.0f} MB; "
              f"identical: {r['identical_outputs']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
