"""The steps of one batch run that other runs reuse: the pinned read of an input, its reader,
and predicting parsed chunks into outputs. run_batch (engine.py) is made of them, and so are a
fanned-out part (fanout.py), a shadow candidate's pass (shadow.py) and ``serverless-ml compare``
(compare.py), which is why they live below all four."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from core.batch.readers import CsvReader, JsonlReader, RowFailure
from core.errors import ObjectNotFound, PredictionRejected
from core.request.rows import RowSchema
from core.storage import StorageURI, store_for
from core.storage.versions import ObjectVersion

__all__ = ["Counts", "CountingStream", "open_input", "predict_chunks", "predict_into", "reader_for"]


def open_input(source: StorageURI, version: ObjectVersion | None, timeout: float,
               store_for: Callable[..., Any] = store_for) -> tuple[BinaryIO, ObjectVersion | None]:
    """The input as a stream, and the version it is: ``version`` when it is pinned (read exactly,
    or ObjectSuperseded), else the version current now (stat, then held to it). None for a store
    without versions (a local file)."""
    store = store_for(source, timeout)
    if (version is None or not version.pinned) and store.versioned:
        found = store.stat(source)
        if found is None:
            raise ObjectNotFound(f"{source.display} does not exist", source.display)
        version = found._replace(sequencer=version.sequencer if version is not None else None)
    if not store.versioned:
        version = None
    return store.open_read(source, version), version



class Counts:
    """Rows of one run (or one part) so far."""

    __slots__ = ("read", "predicted", "failed", "last_line")

    def __init__(self) -> None:
        self.read = self.predicted = self.failed = self.last_line = 0


def predict_chunks(chunks: Iterable[Any], model: Any, outputs: Any, counts: Counts,
                   after_chunk: Callable[[], None] | None = None,
                   on_chunk: Callable[[Any, list[RowFailure]], None] | None = None) -> None:
    """Predict each parsed chunk and write its lines and failures (in line order) to ``outputs``
    (OutputFiles, or what stands for it); the step of a whole run and of a fanned-out part
    (core/batch/fanout.py). ``on_chunk(parsed, refused)``: after each chunk is written, with the
    lines the model refused (a shadow run's candidate predicts the rest). A BatchInputError from
    the reader propagates: the caller writes it as the last failure."""
    for parsed in chunks:
        counts.last_line = max(counts.last_line, parsed.last_line)
        rejected = predict_into(model, parsed.numbers, parsed.rows, outputs) if parsed.numbers else []
        outputs.write_failures(sorted(parsed.failures + rejected, key=lambda f: f.line))
        counts.read += len(parsed.numbers) + len(parsed.failures)
        counts.predicted += len(parsed.numbers) - len(rejected)
        counts.failed += len(parsed.failures) + len(rejected)
        if on_chunk is not None:
            on_chunk(parsed, rejected)
        if after_chunk is not None:
            after_chunk()


def predict_into(model: Any, numbers: list[int], rows: Any, outputs: Any) -> list[RowFailure]:
    """Predict ``rows`` and write them (``outputs.write_predictions``); return the lines the model
    itself refused.

    A refused chunk is split in halves until each refused row stands alone, so one row the model
    cannot take costs about two extra passes over its chunk, and every other row is predicted.
    """
    from core.prediction import predict_arrays

    try:
        predictions, probabilities = predict_arrays(model, rows)
    except PredictionRejected as exc:
        if len(numbers) == 1:
            return [RowFailure(numbers[0], exc.code, f"line {numbers[0]}: {exc.message}")]
        half = len(numbers) // 2
        return predict_into(model, numbers[:half], rows[:half], outputs) + predict_into(
            model, numbers[half:], rows[half:], outputs
        )
    outputs.write_predictions(numbers, predictions, probabilities, model.classes)
    return []


class CountingStream:
    """A read-only stream that counts the bytes read through it (progress over the stored size)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data

    def close(self) -> None:
        self._stream.close()


def reader_for(kind: str, schema: RowSchema, *, by_position: bool = False) -> Any:
    """The reader of one input format; ``by_position``: the model's feature names are generated
    (f0, f1, ...), so a CSV header is matched to them by position."""
    if kind == "csv":
        return CsvReader(schema, by_position=by_position)
    if kind == "json":
        from core.batch.json_document import JsonDocumentReader  # only for .json inputs

        return JsonDocumentReader(schema)
    return JsonlReader(schema)
