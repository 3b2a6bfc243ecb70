"""run_batch(): one input object -> a predictions file and, when lines failed, an errors file.

Memory holds one block of input, one chunk of rows and its predictions, whatever the file's
size: rows are parsed, predicted and appended to a temporary file chunk by chunk, and the files
are handed to the store only when complete (see outputs.py). Nothing is published when reading
the input or writing the outputs fails halfway: a retry then starts clean and loses nothing.

A run reads one version of its input: the one its event names (``version``), else the one that
is current when it starts, and publishes only while that version is still the current one
(publish.py). When it is not (replaced or deleted since the event), the run ends *skipped*, with
a reason that starts ``superseded:``, and publishes nothing: the newer version's run publishes.
Two steps a caller can reuse on their own: :func:`core.batch.steps.open_input` (the pinned read) and
:func:`core.batch.publish.publish`.

With a candidate model in shadow mode (CANDIDATE_MODEL_URI, CANDIDATE_MODE=shadow), the candidate
predicts the same chunks' good rows too, and the run publishes two more outputs beside the
predictions: the candidate's predictions and a summary of how far it agrees (core/batch/shadow.py).
In canary mode a batch run predicts with the primary alone: a file has no requests to share out.
Without a candidate, none of that is imported or run.
"""

from __future__ import annotations

import gzip
import logging
import time
import zlib
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO, cast

from core.batch.deadline import BatchTimeLimit, Deadline, Pace
from core.batch.formats import input_format
from core.batch.model_threads import model_thread_limit
from core.batch.outputs import OutputFiles
from core.batch.publish import publish
from core.batch.readers import BatchInputError, RowFailure
from core.batch.steps import CountingStream, Counts, open_input, predict_chunks, reader_for
from core.errors import ObjectSuperseded
from core.request.rows import RowSchema
from core.settings import Settings
from core.storage import StorageURI, parse_uri, store_for
from core.storage.locations import outputs_for
from core.storage.versions import ObjectVersion

logger = logging.getLogger("serverless_ml.batch")

# (rows read so far, input bytes read so far): for a progress bar
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchResult:
    input: str  # the input's display form (a local path is shortened, as in every log line)
    rows_read: int = 0
    rows_predicted: int = 0
    rows_failed: int = 0
    predictions_uri: str | None = None
    errors_uri: str | None = None
    skipped: str | None = None  # why the object was not taken as input ("superseded: ..." when replaced)
    input_error: str | None = None  # why reading stopped before the end (also in the errors file)
    version: str | None = None  # the input's version that was read: "versionId ...", "generation ..."
    # shadow mode only: the candidate's predictions (None when it could not predict), the summary,
    # and the summary's headline (state, candidate_version, rows_compared, agreement, error)
    candidate_uri: str | None = None
    summary_uri: str | None = None
    shadow: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_batch(
    input_uri: str | StorageURI,
    model_holder: Any,
    settings: Settings,
    *,
    output_prefix: StorageURI | None = None,
    progress: Progress | None = None,
    store_for: Callable[..., Any] = store_for,
    version: ObjectVersion | None = None,
    deadline: Deadline | None = None,
    candidate_holder: Any = None,
) -> BatchResult:
    """Predict every row of ``input_uri`` (exactly ``version`` of it, when given); write the
    outputs under ``output_prefix`` (default: ``settings.batch_output_uri``, else ``predictions/``
    beside the input).

    With ``settings.candidate`` in shadow mode, the candidate (``candidate_holder``, default: this
    process's holder of it) predicts the same rows, and its predictions and the comparison's
    summary are published with the predictions; a candidate that cannot load or predict never
    fails the run: the summary says why it is missing.

    A ``version`` that is gone, or no longer current when the outputs are published, ends the run
    skipped (``superseded: ...``) with nothing published. Raises SettingsError for an output prefix
    that is the input's folder, ModelUnavailable when the model cannot be loaded, ObjectNotFound
    when the input is missing, StorageError when the input cannot be read or the outputs cannot
    be written (nothing is published then), PredictionFailed when the model breaks, BatchTimeLimit
    when ``deadline`` comes before the file can be finished (see deadline.py; nothing published).
    """
    source = parse_uri(input_uri) if isinstance(input_uri, str) else input_uri
    targets = outputs_for(
        source, output_prefix or settings.batch_output_uri, "the output prefix" if output_prefix else "BATCH_OUTPUT_URI"
    )
    found = input_format(source.name)
    if isinstance(targets, str) or isinstance(found, str):  # an output's own event, or not an input
        reason = targets if isinstance(targets, str) else cast(str, found)
        logger.info("batch input skipped", extra={"fields": {"input": source.display, "reason": reason}})
        return BatchResult(source.display, skipped=reason)

    model = model_holder.get()
    started = time.perf_counter()
    reader = reader_for(found.kind, RowSchema(model.schema), by_position=model.feature_names_source == "generated")
    shadow = None
    if settings.candidate is not None:
        if settings.candidate.mode == "shadow":
            from core.batch.shadow import Shadow, candidate_holder_for  # only with a candidate

            holder = candidate_holder if candidate_holder is not None else candidate_holder_for(settings)
            shadow = Shadow(settings, model, holder, targets)
        else:
            logger.info("batch predicts with the primary alone", extra={"fields": {
                "input": source.display, "reason": "CANDIDATE_MODE=canary shares out requests; a batch file has none"}})
    try:
        return _run(source, targets, found, reader, model, settings, version, progress, store_for, started, deadline,
                    shadow)
    except ObjectSuperseded as exc:
        reason = f"superseded: {exc.message}"
        shown = version.describe() if version is not None and version.pinned else None
        logger.info("batch input skipped", extra={"fields": {"input": source.display, "version": shown, "reason": reason}})
        return BatchResult(source.display, skipped=reason, version=shown)


def _run(source: StorageURI, targets: Any, found: Any, reader: Any, model: Any, settings: Settings,
         version: ObjectVersion | None, progress: Progress | None, store_for: Callable[..., Any],
         started: float, deadline: Deadline | None = None, shadow: Any = None) -> BatchResult:
    timeout = settings.storage_timeout_seconds
    counts = Counts()
    input_error = None
    with OutputFiles() as outputs, model_thread_limit(settings.batch_model_threads), shadow or nullcontext():
        stream_in, version = open_input(source, version, timeout, store_for)
        shown = version.describe() if version is not None else None
        logger.info("batch started", extra={"fields": {
            "input": source.display, "format": found.kind, "gzip": found.gzipped, "version": shown}})
        raw = CountingStream(stream_in)
        pace = None
        if deadline is not None:
            size = version.size if version is not None else None
            if size is None:  # an event that did not tell the size, or a store without versions
                known = store_for(source, timeout).stat(source)
                size = known.size if known is not None else None
            pace = Pace(deadline, source.display, size)

        def after_chunk() -> None:
            if progress is not None:
                progress(counts.read, raw.count)
            if pace is not None:
                pace.check(counts.read, raw.count)

        try:
            # CountingStream has the read and close the readers use, not all of BinaryIO; gzip reads forward
            # only, though typeshed's protocol for its file object also asks for seek
            stream: BinaryIO = (
                gzip.GzipFile(fileobj=raw, mode="rb") if found.gzipped else raw  # type: ignore[call-overload,assignment]
            )
            sink, on_chunk = outputs, None
            if shadow is not None:
                sink, on_chunk = shadow.start(outputs, source, version, found, store_for)
            try:
                predict_chunks(reader.chunks(stream, settings.batch_chunk_rows), model, sink, counts, after_chunk,
                               on_chunk)
            except BatchInputError as exc:
                input_error, error_line = exc.message, exc.line
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                error_line = counts.last_line + 1
                input_error = (
                    f"the input is not a complete gzip stream ({exc}); lines from {error_line} on could not be read"
                )
            if input_error is not None:
                outputs.write_failures([RowFailure(error_line, BatchInputError.code, input_error)])
        except BatchTimeLimit as exc:
            logger.error("batch stopped before the time limit", extra={"fields": {
                "input": source.display, "version": shown, "rows_read": counts.read, "error_code": exc.code,
                "reason": exc.message}})
            raise
        finally:
            raw.close()
        outputs.finish()
        extras = shadow.finish(shown) if shadow is not None else ()
        published = publish(
            outputs, targets, source, version, store_for=store_for, timeout=timeout, part_bytes=settings.batch_part_bytes,
            extras=extras,
        )
        errors_uri = str(published.errors) if published.errors is not None else None
    read, predicted, failed = counts.read, counts.predicted, counts.failed

    seconds = time.perf_counter() - started
    result = BatchResult(
        source.display, read, predicted, failed, str(targets.predictions), errors_uri, input_error=input_error,
        version=shown, **(shadow.result_fields() if shadow is not None else {}),
    )
    logger.info(
        "batch finished",
        extra={"fields": {
            "input": source.display, "version": shown, "rows_read": read, "rows_predicted": predicted,
            "rows_failed": failed, "predictions": targets.predictions.display,
            "errors": targets.errors.display if errors_uri else None,
            "input_error": input_error, "seconds": round(seconds, 3),
            "rows_per_second": round(read / seconds) if seconds > 0 else None,
        }},
    )
    return result


