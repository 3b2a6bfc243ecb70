"""Publishing a run's outputs: only while its input is still the version it read, and never over
outputs another run published after looking.

The rule, for an input read at version V (what its event named, or what was current when the run
began)::

    1. look at the outputs:        predictions P, errors E (each: its version, or absent)
    2. look at the input:          its current version is V?   no: superseded, publish nothing
    3. errors:   write E' on "E is as seen"   (no failed line: delete E on "E is as seen")
    3b. a shadow run's candidate predictions and summary (``extras``), each the same way as E
    4. predictions: write P' on "P is as seen"
    a condition that fails (another run published between 1 and 3-4): back to 1

"Newer" is what the provider answers in step 2: the current version of the object (S3: its
current versionId, or eTag in a bucket without versioning; GCS: its generation; Azure: its eTag).
A version that is no longer current has been replaced by one whose event comes (or came) too, and
whose run publishes; so a run for V1 that ends after V2 was uploaded publishes nothing, in either
order of the events, and a run for V1 that published before V2 was uploaded is overwritten by
V2's. The outputs are looked at before the input: a run that published for a newer version
after step 1 makes the conditions of 3-4 fail, and the next look finds the newer input. The
ordering keys of the events (S3 ``sequencer``, Event Grid ``data.sequencer``, GCS generations)
are recorded with the outputs but not compared: the current version is the provider's own answer,
it exists for every trigger (a blob trigger or the command line carries no sequencer), and it
also catches a newer version whose run has not published yet.

Each output records the input's version as object metadata (``input-version-id``,
``input-etag``, ``input-generation``, ``input-sequencer``), so a reader can tell which version of
the input a file answers.

A run that wrote its errors file (or shadow outputs) and then finds, at step 4, that a newer
version has published removes them again (on "it is still the one I wrote"): the newer run may have had no
failed lines and so no errors file to write over it. Only a run stopped between those two steps
leaves an errors file beside newer predictions, and its metadata then names the older version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from core.errors import ObjectNotFound, ObjectSuperseded, PreconditionFailed, StorageError
from core.storage import StorageURI
from core.storage.locations import OutputLocations
from core.storage.versions import ObjectVersion, Precondition

logger = logging.getLogger("serverless_ml.batch")

# Rounds of look-and-write before giving up. Each lost round means another run published in
# between; five in a row is a storm of events for one key, left to the platform's retry.
ATTEMPTS = 5


class Published:
    """Where the outputs went: the errors file's location, or None when no line failed."""

    def __init__(self, errors: StorageURI | None) -> None:
        self.errors = errors


def publish(
    outputs: Any,
    targets: OutputLocations,
    source: StorageURI,
    version: ObjectVersion | None,
    *,
    store_for: Callable[..., Any],
    timeout: float,
    part_bytes: int,
    extras: Sequence[tuple[StorageURI, str | None]] = (),
) -> Published:
    """Publish ``outputs`` to ``targets`` as made from ``source`` at ``version``: finished
    OutputFiles (a run's temporary files), or a fanned-out run's parts (core/batch/fanout.py), each
    an object with ``has_errors`` and ``store_as(store, "predictions" | "errors", uri, metadata=...,
    precondition=..., part_bytes=...)`` that stores one output and returns its version.
    ``extras``: more outputs published the same way before the predictions, each ``(location,
    local file)``, or ``(location, None)`` for one that must not stay beside these predictions
    (a shadow run's candidate outputs, core/batch/shadow.py). Raises ObjectSuperseded when ``version`` is no longer the input's current one,
    ObjectNotFound when the input is gone, StorageError when the outputs cannot be written."""
    out = store_for(targets.predictions, timeout)
    metadata = version.metadata() if version is not None else {}
    if version is None or not version.pinned:  # a local input: nothing to hold the run to
        return _publish_as_is(out, outputs, targets, metadata, part_bytes, extras)
    inputs = store_for(source, timeout)
    if not out.versioned:  # local outputs of a cloud input: checked, but no condition to write on
        _check_current(inputs, source, version)
        return _publish_as_is(out, outputs, targets, metadata, part_bytes, extras)

    ours: dict[StorageURI, ObjectVersion] = {}  # outputs written but not yet followed by predictions
    for _ in range(ATTEMPTS):
        predictions_found = out.stat(targets.predictions)
        errors_found = out.stat(targets.errors)
        extras_found = [out.stat(uri) for uri, _ in extras]
        try:
            _check_current(inputs, source, version)
        except (ObjectSuperseded, ObjectNotFound):
            for uri, written in ours.items():
                _withdraw(out, uri, written)
            raise
        try:
            if outputs.has_errors:
                _keep(ours, targets.errors, outputs.store_as(
                    out, "errors", targets.errors, metadata=metadata,
                    precondition=Precondition(errors_found), part_bytes=part_bytes,
                ))
            elif errors_found is not None:  # an earlier run's errors must not sit beside these predictions
                out.delete(targets.errors, precondition=Precondition(errors_found))
            for (uri, path), found in zip(extras, extras_found, strict=True):
                if path is not None:
                    _keep(ours, uri, out.write_file(uri, path, metadata=metadata, precondition=Precondition(found),
                                                    part_bytes=part_bytes))
                elif found is not None:
                    out.delete(uri, precondition=Precondition(found))
            outputs.store_as(
                out, "predictions", targets.predictions, metadata=metadata,
                precondition=Precondition(predictions_found), part_bytes=part_bytes,
            )
        except PreconditionFailed as exc:
            logger.info("batch outputs changed while publishing; looking again", extra={"fields": {
                "input": source.display, "version": version.describe(), "reason": exc.message}})
            continue
        return Published(targets.errors if outputs.has_errors else None)
    raise StorageError(
        f"{targets.predictions.display} cannot be written: other runs published it {ATTEMPTS} times while this run "
        f"tried to; the platform retries this one",
        targets.predictions.display,
    )


def _check_current(inputs: Any, source: StorageURI, version: ObjectVersion) -> None:
    current = inputs.stat(source)
    if current is None:
        raise ObjectNotFound(f"{source.display} does not exist any more: it was deleted while it was predicted",
                             source.display)
    if not version.same_as(current):
        raise ObjectSuperseded(
            f"{source.display} was read at {version.describe()}, and {current.describe()} is its current version "
            "now; that version's own event publishes its predictions",
            source.display,
        )


def _keep(ours: dict[StorageURI, ObjectVersion], uri: StorageURI, written: ObjectVersion | None) -> None:
    if written is not None:
        ours[uri] = written


def _withdraw(out: Any, output: StorageURI, ours: ObjectVersion) -> None:
    """Remove an output this run wrote, if it is still the one it wrote."""
    try:
        out.delete(output, precondition=Precondition(ours))
    except (PreconditionFailed, ObjectNotFound):
        pass  # replaced or removed by the newer run: theirs now


def _publish_as_is(out: Any, outputs: Any, targets: OutputLocations, metadata: dict[str, str],
                   part_bytes: int, extras: Sequence[tuple[StorageURI, str | None]]) -> Published:
    """Unconditionally, as for a local file: errors first (or the stale errors file removed), the
    extras, then the predictions, so whoever waits for the predictions finds the others there."""
    if outputs.has_errors:
        outputs.store_as(out, "errors", targets.errors, metadata=metadata, part_bytes=part_bytes)
    else:
        _delete_if_there(out, targets.errors)
    for uri, path in extras:
        if path is not None:
            out.write_file(uri, path, metadata=metadata, part_bytes=part_bytes)
        else:
            _delete_if_there(out, uri)
    outputs.store_as(out, "predictions", targets.predictions, metadata=metadata, part_bytes=part_bytes)
    return Published(targets.errors if outputs.has_errors else None)


def _delete_if_there(out: Any, uri: StorageURI) -> None:
    try:
        out.delete(uri)
    except ObjectNotFound:
        pass  # no folder yet, so nothing stale; a missing bucket fails the write just below


__all__ = ["ATTEMPTS", "Published", "publish"]
