"""A candidate model's cost per request (core/rollout.py), in one process, interleaved.

Primary: a logistic regression; candidate: a 50-tree random forest (a typical "next model"), both
on 20 numeric columns. For 1 and 100 rows, medians over interleaved repetitions of:

  alone      service.handle(POST /predict) with no candidate configured
  shadow     the same with CANDIDATE_MODE=shadow (primary answers, candidate predicts and is compared)
  canary     CANDIDATE_MODE=canary, CANDIDATE_PERCENT=100 (the candidate answers every request)
  cand_alone a service whose primary is the candidate model, no candidate: what canary is held to
  cand_bare  the candidate's bare ``predict(X)``

Goals (issue 17): canary <= 1.05x cand_alone (the time of the model that answered);
shadow <= 1.05x (alone + cand_bare).

    python bench/rollout.py [--reps-1 1500] [--reps-100 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from _models import environment, write_json  # importing _models puts core on sys.path

from core.http import HttpRequest, PredictionService
from core.logs import configure
from core.settings import Settings

GOAL = 1.05
HEADERS = {"content-type": "application/json"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps-1", type=int, default=1500)
    parser.add_argument("--reps-100", type=int, default=300)
    args = parser.parse_args()

    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    configure(stream=open(os.devnull, "w"))  # noqa: SIM115 -- the log lines are formatted and dropped
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 20))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    folder = tempfile.mkdtemp()
    primary_path, candidate_path = os.path.join(folder, "primary.joblib"), os.path.join(folder, "candidate.joblib")
    joblib.dump(LogisticRegression().fit(X, y), primary_path)
    forest = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0).fit(X, y)
    joblib.dump(forest, candidate_path)

    def service(model: str, **env: str) -> PredictionService:
        built = PredictionService(Settings.from_env({"MODEL_URI": "file://" + model, "PRELOAD_MODEL": "true", **env}))
        built.preload()
        return built

    services = {
        "alone": service(primary_path),
        "shadow": service(primary_path, CANDIDATE_MODEL_URI="file://" + candidate_path, CANDIDATE_MODE="shadow"),
        "canary": service(primary_path, CANDIDATE_MODEL_URI="file://" + candidate_path, CANDIDATE_MODE="canary",
                          CANDIDATE_PERCENT="100"),
        "cand_alone": service(candidate_path),
    }
    rows_of = {1: X[:1], 100: X[:100]}
    results = []
    for count, reps in ((1, args.reps_1), (100, args.reps_100)):
        rows = rows_of[count]
        body = json.dumps({"instances": rows.tolist()}).encode()
        calls = {name: (lambda svc=svc, body=body: svc.handle(HttpRequest("POST", "/predict", headers=HEADERS, body=body)))
                 for name, svc in services.items()}
        calls["cand_bare"] = lambda rows=rows: forest.predict(rows)
        for name, svc in services.items():  # every service answers, and the modes do what they say
            response = svc.handle(HttpRequest("POST", "/predict", headers=HEADERS, body=body))
            assert response.status == 200, (name, response.body[:300])
        print(f"rollout: {count} row(s), {reps} reps", file=sys.stderr)
        medians = measure(calls, reps, warmup=50)
        shadow_bar = medians["alone"] + medians["cand_bare"]
        results.append({
            "rows": count, **{f"{name}_us": round(value / 1000, 1) for name, value in medians.items()},
            "canary_ratio": medians["canary"] / medians["cand_alone"],
            "shadow_ratio": medians["shadow"] / shadow_bar,
        })
    print(markdown(results))
    write_json("rollout", {"environment": environment(), "results": results, "summary": [
        {"benchmark": "rollout", "case": f"{r['rows']} row(s), {mode}", "ratio": round(r[f"{mode}_ratio"], 3),
         "goal": f"<= {GOAL}", "met": r[f"{mode}_ratio"] <= GOAL}
        for r in results for mode in ("canary", "shadow")
    ]})


def measure(calls: dict, reps: int, warmup: int) -> dict[str, float]:
    names = list(calls)
    times: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for rep in range(warmup + reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            started = clock()
            calls[name]()
            if rep >= warmup:
                times[name].append(clock() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def markdown(results: list[dict]) -> str:
    lines = [
        "### Rollout: a candidate model's cost per request (LR primary, 50-tree forest candidate)", "",
        "| rows | alone | shadow | canary (100%) | candidate alone | candidate bare predict | canary / candidate alone | shadow / (alone + candidate predict) | goal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']} | {r['alone_us']} us | {r['shadow_us']} us | {r['canary_us']} us | {r['cand_alone_us']} us | "
            f"{r['cand_bare_us']} us | {r['canary_ratio']:.3f} | {r['shadow_ratio']:.3f} | <= {GOAL} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
