"""moto's own server (``moto_server``) with the two Step Functions calls it lacks and Terraform's
AWS provider makes for an aws_sfn_state_machine: ValidateStateMachineDefinition, sent before the
state machine is created or changed, and ListStateMachineVersions, read after. moto 5.2 answers
both 500 (not implemented), which the provider retries for minutes and then fails. Here the first
is answered by asl-validator (npm, pinned in package.json), the validator the tests use anyway: a
definition it refuses comes back FAIL with its diagnostics, as AWS's would; the second with no
versions (the configuration publishes none).

Run as ``python moto_with_asl_validation.py -H 127.0.0.1 -p PORT`` (moto_server's arguments);
everything else is moto's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ASL_VALIDATOR = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "asl-validator"


def validate_state_machine_definition(self):  # a method of moto's StepFunctionResponse
    with tempfile.NamedTemporaryFile("w", suffix=".json") as definition:
        definition.write(self._get_param("definition"))
        definition.flush()
        # --no-arn-check: moto's ARNs are AWS's shape, the check is for typos in hand-written ones
        checked = subprocess.run([str(ASL_VALIDATOR), "--json-path", definition.name, "--no-arn-check"],
                                 capture_output=True, text=True, timeout=60)
    if checked.returncode == 0:
        return json.dumps({"result": "OK", "diagnostics": []})
    message = (checked.stdout + checked.stderr).strip()[-1000:]
    return json.dumps({"result": "FAIL", "diagnostics": [
        {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": message}]})


def list_state_machine_versions(self):
    return json.dumps({"stateMachineVersions": []})


if __name__ == "__main__":
    from moto.server import main
    from moto.stepfunctions.responses import StepFunctionResponse

    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition
    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions
    main(sys.argv[1:])
