"""``serverless-ml compare``: how far a candidate model agrees with the primary on a batch file.

    serverless-ml compare --primary s3://models/v7.joblib --candidate s3://models/v8.joblib \\
        s3://data/incoming/2026-12-04.csv --min-agreement 0.98

Prints the agreement, the label confusion between the two models and the lines with the largest
probability gaps (line numbers only, never a row's values); ``--json`` prints the same as one JSON
document. Exit status: 0 agreement at or above ``--min-agreement``; 1 below it (CI can gate a
promotion on it); 2 nothing compared (a bad argument, a model or the input unavailable).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from core.settings import DEFAULT_CANDIDATE_PROBABILITY_TOLERANCE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[2].replace("\n", " ")
    parser.add_argument("input", metavar="INPUT", help="a .csv, .jsonl or .json(.gz) file: a local path or a URI")
    parser.add_argument("--primary", required=True, help="the model in service: a URI or a local path")
    parser.add_argument("--candidate", required=True, help="the model to judge: a URI or a local path")
    parser.add_argument("--min-agreement", type=_share, default=0.99,
                        help="the share of rows that must agree, 0 to 1 (default 0.99)")
    parser.add_argument("--tolerance", type=_share, default=DEFAULT_CANDIDATE_PROBABILITY_TOLERANCE,
                        help="a row whose class probabilities differ by more than this disagrees (default "
                        f"{DEFAULT_CANDIDATE_PROBABILITY_TOLERANCE})")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the report")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected a value from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is outside 0 to 1")
    return value


def run(args: argparse.Namespace) -> int:
    from core.batch.compare import compare_file
    from core.errors import ServerlessMLError
    from core.logs import configure
    from core.model import ModelHolder
    from core.settings import Settings
    from serverless_ml.cli import _as_uri, _progress_bar

    env = {**os.environ, "MODEL_URI": _as_uri(args.primary)}
    primary_settings = Settings.from_env(env)
    candidate_settings = Settings.from_env({**env, "MODEL_URI": _as_uri(args.candidate)})
    configure(primary_settings.log_level)
    input_uri = _as_uri(args.input)
    size = os.path.getsize(input_uri[len("file://"):]) if input_uri.startswith("file://") and os.path.isfile(
        input_uri[len("file://"):]) else None
    bar = _progress_bar(size)
    try:
        compared = compare_file(
            input_uri, ModelHolder(primary_settings), ModelHolder(candidate_settings), primary_settings,
            tolerance=args.tolerance, progress=bar.update if bar else None,
        )
    except ServerlessMLError as exc:
        print(f"serverless-ml: {exc.message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"serverless-ml: INPUT {args.input!r}: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar:
            bar.close()
    figures = compared.as_dict()
    passed = figures["rows_compared"] > 0 and figures["agreement"] >= args.min_agreement
    figures.update(min_agreement=args.min_agreement, passed=passed)
    print(json.dumps(figures) if args.json else report(figures))
    return 0 if passed else 1


def report(figures: dict) -> str:
    lines = [
        f"rows compared: {figures['rows_compared']:,} (lines read {figures['lines_read']:,}; refused by the primary "
        f"{figures['refused_by_primary']:,}, by the candidate {figures['refused_by_candidate']:,})",
        f"agreement: {figures['agreement']:.4%} (minimum {figures['min_agreement']:.2%}): "
        + ("passed" if figures["passed"] else "FAILED"),
        f"labels differ: {figures['labels_differ']:,} rows; largest probability gap: {figures['max_probability_gap']}",
        "label confusion (primary -> candidate: rows):",
    ]
    lines += [f"  {c['primary']!r} -> {c['candidate']!r}: {c['rows']:,}" for c in figures["label_confusion"][:20]]
    if figures["largest_differences"]:
        lines.append("largest probability gaps (line: gap):")
        lines += [f"  {d['line']}: {d['probability_gap']:.4f}" for d in figures["largest_differences"]]
    return "\n".join(lines)
