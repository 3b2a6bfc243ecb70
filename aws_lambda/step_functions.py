"""Step Functions as the batch trigger's workflow engine (core/batch/triggered.py's Orchestrator).

``BATCH_FANOUT_STATE_MACHINE_ARN`` (an AWS-only setting, so read and checked here, at the
function's init, as METRICS_NAMESPACE is) names the state machine of infra/aws/fanout.asl.json.tftpl.
When it is set, the batch handler hands a file larger than one part to :class:`StepFunctions`,
whose ``start`` is one StartExecution; unset, every file runs in the batch invocation, as before.

The execution's name is derived from the input and the version the event names (with S3's
``sequencer``, which differs for every write of the key, also of the same bytes): a repeated
event for the same version (S3, SQS and EventBridge all deliver at least once) asks for the same
name, and Step Functions refuses a second execution of a name for 90 days. That refusal
(ExecutionAlreadyExists) is success here: the execution for that version exists already.

boto3 is imported on the first start, never at the function's init. Every botocore failure is
mapped, in :func:`_mapped`, to one of two errors: :class:`StepFunctionsUnavailable` (a
StorageError: throttling, a network failure, a denied call; retried by the platform, as a storage
failure is) and SettingsError for a state machine that does not exist (every retry would fail).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from core.errors import SettingsError, StorageError

__all__ = ["SETTING", "StepFunctions", "StepFunctionsUnavailable", "execution_name", "state_machine_arn_from_env"]

SETTING = "BATCH_FANOUT_STATE_MACHINE_ARN"
# arn:<partition>:states:<region>:<account>:stateMachine:<name>, as StartExecution takes it
_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}")
_NOT_THERE = {"StateMachineDoesNotExist", "StateMachineDeleting", "InvalidArn"}


class StepFunctionsUnavailable(StorageError):
    """Step Functions could not be asked to start an execution (throttled, unreachable, denied);
    ``uri`` is the state machine's ARN. The trigger's platform retries the event."""

    code = "orchestrator_unavailable"


def state_machine_arn_from_env(environ: Mapping[str, str]) -> str | None:
    """``BATCH_FANOUT_STATE_MACHINE_ARN``, checked; None when unset or empty (no fan-out).
    Raises SettingsError naming the variable."""
    value = (environ.get(SETTING) or "").strip()
    if not value:
        return None
    if not _ARN.fullmatch(value):
        shown = repr(value if len(value) <= 120 else value[:117] + "...")
        raise SettingsError(
            f"{SETTING}={shown} is not a state machine ARN; expected "
            "arn:aws:states:<region>:<account id>:stateMachine:<name> (serverless.yml with fanOut=true and "
            "infra/aws with fan_out = true set it), or nothing to run every file in the batch function"
        )
    return value


def execution_name(request: dict[str, Any]) -> str:
    """The name of the execution for ``request`` ({"input", "version"}): the same for the same
    input and version, 80 characters at most, of the letters Step Functions allows."""
    from core.batch.triggered import request_digest

    return "batch-" + request_digest(request)[:64]


class StepFunctions:
    """Starts the fan-out state machine for one input; thread-safe, the client built once."""

    name = "Step Functions"

    def __init__(self, state_machine_arn: str, timeout_seconds: float) -> None:
        self.state_machine_arn = state_machine_arn
        self.timeout_seconds = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()

    def start(self, request: dict[str, Any]) -> str:
        name = execution_name(request)
        with _mapped(self.state_machine_arn):
            try:
                answer = self._sfn().start_execution(
                    stateMachineArn=self.state_machine_arn, name=name,
                    input=json.dumps(request, separators=(",", ":")))
            except Exception as exc:
                if _error_code(exc) != "ExecutionAlreadyExists":
                    raise
                # a repeated event for this version: its execution was started before
                return self._execution_arn(name)
        return str(answer["executionArn"])

    def _execution_arn(self, name: str) -> str:
        head, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{head}:execution:{machine}:{name}"

    def _sfn(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                from core.storage.s3 import retry_plan

                attempts, per_attempt = retry_plan(self.timeout_seconds)
                self._client = boto3.session.Session().client("stepfunctions", config=Config(
                    connect_timeout=per_attempt, read_timeout=per_attempt,
                    retries={"total_max_attempts": attempts, "mode": "standard"}))
            return self._client


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


@contextmanager
def _mapped(arn: str) -> Iterator[None]:
    """botocore's failures as this module's two errors (the one place they are mapped)."""
    try:
        yield
    except (StorageError, SettingsError):
        raise
    except Exception as exc:
        if not _is_botocore(exc):
            raise
        code = _error_code(exc)
        if code in _NOT_THERE:
            raise SettingsError(
                f"{SETTING} names {arn}, which Step Functions does not know ({code}); expected the "
                "ARN of the fan-out state machine of this deployment") from None
        what = f"Step Functions answered {code}" if code else f"Step Functions could not be reached ({type(exc).__name__})"
        raise StepFunctionsUnavailable(f"{what} when asked to start an execution of {arn}", arn) from None


def _is_botocore(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("botocore", "boto3", "urllib3"))
