"""What a storage trigger does with one created object, the same on every cloud.

The object is predicted by :func:`run_batch`, and the run is settled one of three ways:

- ``predicted``: the outputs were written (rows that failed are listed in the errors file);
- ``skipped``: nothing to do, logged with the reason: the object is an output, not a batch input,
  or was deleted before it could be read (a retry would find it missing for ever), or the version
  the event names was replaced before the run could publish (``superseded: ...``; the newer
  version's own event publishes its predictions);
- ``fanned_out``: the file is larger than one part (core/batch/fanout.py) and the deployment has
  a workflow engine (an :class:`Orchestrator`: Step Functions, Durable Functions, Workflows): an
  execution of plan/run_part/merge was started for it, which publishes the outputs; logged with
  the execution's id. Without an orchestrator every file runs here, as before;
- ``failed``: logged at ERROR with ``retry``. A wrong setting (``BATCH_OUTPUT_URI`` that is the
  input's folder) is not retried: every retry would fail the same way; nor is a run stopped before
  its invocation's time limit (core/batch/deadline.py): every retry would meet the same limit. Any other failure (storage,
  model, the output writer) is retried by the platform (SQS, Lambda's async retries, the blob
  trigger, Eventarc, Event Grid), so that nothing is lost.

:func:`settle_created_object` says which; :func:`run_for_created_object` raises what a retry may
cure, for triggers whose platform retries on an exception (GCP, Azure).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from core.batch.deadline import BatchTimeLimit, Deadline
from core.batch.engine import BatchResult, run_batch
from core.errors import ObjectNotFound, ServerlessMLError, SettingsError
from core.settings import Settings
from core.storage import StorageURI
from core.storage.versions import ObjectVersion

logger = logging.getLogger("serverless_ml.batch")


class Orchestrator(Protocol):
    """A cloud's workflow engine, as a trigger starts it for one input too large for one run."""

    name: str  # as the logs name it: "Step Functions", "Durable Functions", "Workflows"

    def start(self, request: dict[str, Any]) -> str:
        """Start plan/run_part/merge for ``request`` (``{"input": uri, "version": {...} | None}``,
        the version as core.batch.fanout.version_json writes it); the execution's id. Raises a
        ServerlessMLError (a StorageError when the engine cannot be reached) that a retry may cure."""
        ...


def request_digest(request: dict[str, Any]) -> str:
    """The hex SHA-256 of an :class:`Orchestrator` request's canonical JSON: the same input and
    version give the same digest, so an engine that names its executions by it starts one per
    input version however often the event is delivered."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Settled:
    """How one created object ended."""

    status: str  # "predicted", "skipped", "fanned_out" or "failed"
    result: BatchResult | None = None  # predicted (and skipped by the engine)
    reason: str | None = None  # skipped: why
    error: ServerlessMLError | None = None  # failed: what
    retry: bool = False  # failed: whether the platform should deliver the event again
    execution: str | None = None  # fanned_out: the orchestrator's execution


def settle_created_object(
    uri: StorageURI, model_holder: Any, settings: Settings, version: ObjectVersion | None = None,
    deadline: Deadline | None = None, orchestrator: Orchestrator | None = None,
) -> Settled:
    """Predict the object a trigger announced (the ``version`` its event names; stopping cleanly
    before ``deadline``, when given), or with an ``orchestrator``, hand a file larger than one part
    to it; never raises a ServerlessMLError."""
    try:
        if orchestrator is not None:
            handed = _hand_to(orchestrator, uri, settings, version)
            if handed is not None:
                return handed
        result = run_batch(uri, model_holder, settings, version=version, deadline=deadline)
    except ObjectNotFound as exc:
        if exc.uri != uri.display:  # the output bucket or the model is missing: a setting to fix
            return _failed(uri, exc, retry=True)
        reason = f"{exc.message} (deleted after the event was sent?)"
        logger.warning("batch input skipped", extra={"fields": {"input": uri.display, "reason": reason}})
        return Settled("skipped", reason=reason)
    except (SettingsError, BatchTimeLimit) as exc:
        return _failed(uri, exc, retry=False)
    except ServerlessMLError as exc:
        return _failed(uri, exc, retry=True)
    if result.skipped:
        return Settled("skipped", result, reason=result.skipped)
    return Settled("predicted", result)


def run_for_created_object(
    uri: StorageURI, model_holder: Any, settings: Settings, version: ObjectVersion | None = None,
    orchestrator: Orchestrator | None = None,
) -> BatchResult | None:
    """Predict the object a trigger announced (the ``version`` its event names), or hand it to
    ``orchestrator`` (None returned then); raise only what a retry may cure."""
    settled = settle_created_object(uri, model_holder, settings, version, orchestrator=orchestrator)
    if settled.retry and settled.error is not None:
        raise settled.error
    return settled.result


def _hand_to(orchestrator: Orchestrator, uri: StorageURI, settings: Settings,
             version: ObjectVersion | None) -> Settled | None:
    """The execution started for a file of more than one part; None for a file that runs here
    (one part, gzip, .json: the survey reads a few KB, so a small file costs one look more)."""
    from core.batch import fanout  # only where an orchestrator is deployed

    surveyed = fanout.survey(uri, settings, version=version)
    if surveyed["skipped"]:
        logger.warning("batch input skipped", extra={"fields": {"input": uri.display, "reason": surveyed["skipped"]}})
        return Settled("skipped", reason=surveyed["skipped"])
    if not surveyed["grains"]:
        return None
    execution = orchestrator.start({"input": surveyed["input"], "version": surveyed["version"]})
    logger.info("batch input fanned out", extra={"fields": {
        "input": uri.display, "orchestrator": orchestrator.name, "execution": execution, "size": surveyed["size"]}})
    return Settled("fanned_out", execution=execution)


def _failed(uri: StorageURI, exc: ServerlessMLError, *, retry: bool) -> Settled:
    logger.error("batch failed", extra={"fields": {
        "input": uri.display, "error_code": exc.code, "reason": exc.message, "retry": retry}})
    return Settled("failed", error=exc, retry=retry)
