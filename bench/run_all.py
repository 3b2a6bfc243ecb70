"""Run every benchmark in bench/ and write one combined table to bench/results/RESULTS.md.

Each ``bench/*.py`` except this file and ``_*.py`` helpers runs as a subprocess with this
interpreter, from the repository root; each writes ``bench/results/<name>.json`` with a
``summary`` (rows of the combined table) and its own ``markdown``. Progress goes to stderr.

    python bench/run_all.py        (what `make bench` runs)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
COLUMNS = ("benchmark", "model", "case", "core", "baseline", "result", "goal", "met")


def scripts() -> list[Path]:
    return sorted(p for p in BENCH.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))


def main() -> int:
    rows, details, failed, env = [], [], [], {}
    for script in scripts():
        print(f"== {script.name}", file=sys.stderr)
        output = RESULTS / f"{script.stem}.json"
        output.unlink(missing_ok=True)  # never report a previous run's numbers
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode != 0 or not output.exists():
            failed.append(script.name)
            rows.append({"benchmark": script.stem, "result": f"FAILED (exit {proc.returncode})", "met": False})
            continue
        result = json.loads(output.read_text())
        rows += result["summary"]
        env = env or result.get("environment", {})
        details.append(f"{result['markdown']}\n\n({script.name}, {seconds:.0f} s)")

    lines = ["## Benchmarks", ""]
    if env:
        lines += [
            f"Python {env['python']}, numpy {env['numpy']}, scikit-learn {env['scikit-learn']}, joblib {env['joblib']}, "
            f"pandas {'installed' if env['pandas_installed'] else 'not installed'}, "
            f"onnxruntime {env.get('onnxruntime') or 'not installed'}, {env['cpus']} CPUs, {env['platform']}.",
            "",
        ]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [str(row.get(c, "")) for c in COLUMNS]
        cells[-1] = "-" if row.get("met") is None else ("yes" if row["met"] else "NO")
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines + [""] + ["\n\n".join(details)]) + "\n"

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "RESULTS.md").write_text(text)
    print(text)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
