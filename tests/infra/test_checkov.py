"""checkov on each of infra/aws, infra/azure, infra/gcp: no failed check, no parsing error, and
every skipped check carries a written reason (``# checkov:skip=<ID>: <why>`` in the resource).

checkov runs offline (--skip-download: no Prisma Cloud guideline lookups) from its own venv
(.venv-checkov, built by the Makefile; CHECKOV points elsewhere).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.infra import terraform_support as tf

MIN_REASON_WORDS = 6  # "ok", "not needed" or checkov's "No comment provided" are not reasons


def run_checkov(checkov: str, folder) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BC_", "PRISMA_", "CKV_"))}
    env.update({"TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1", "LOG_LEVEL": "WARNING"})
    result = subprocess.run(
        [checkov, "--directory", str(folder), "--framework", "terraform", "--skip-download",
         "--output", "json", "--compact"],
        capture_output=True, text=True, timeout=240, env=env, cwd=tf.REPO,
    )
    assert result.stdout.strip(), f"checkov printed nothing (exit {result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="module", params=tf.CLOUDS)
def checkov_report(request, checkov):
    return request.param, run_checkov(checkov, tf.INFRA / request.param)


def test_no_check_fails(checkov_report):
    cloud, report = checkov_report
    failed = report["results"]["failed_checks"]
    shown = "\n".join(f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range']})" for c in failed)
    assert not failed, f"checkov fails on infra/{cloud}:\n{shown}"
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0  # it did read the configuration


def test_every_skipped_check_says_why(checkov_report):
    cloud, report = checkov_report
    unexplained = [
        f"{c['check_id']} on {c['resource']}: {c['check_result'].get('suppress_comment')!r}"
        for c in report["results"]["skipped_checks"]
        if len(str(c["check_result"].get("suppress_comment") or "").split()) < MIN_REASON_WORDS
    ]
    assert not unexplained, f"infra/{cloud} skips checks without a reason:\n" + "\n".join(unexplained)
