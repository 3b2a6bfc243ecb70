"""Two models over one batch file: how far a candidate agrees with the primary, row by row.

The file is read as a batch run reads it (CSV, JSONL, .json, gzip), in chunks, each model's rows
typed by its own schema; a line either model refuses is counted, not compared. Nothing is
written: the figures are a :class:`core.rollout.Tally` (agreement, label confusion, the largest
probability gaps by line number, never a row's values).

    >>> tally = compare_file("s3://bucket/incoming/day.csv", primary, candidate, settings, tolerance=0.05)  # doctest: +SKIP
    >>> tally.as_dict()["agreement"]  # doctest: +SKIP
    0.9931
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.batch.engine import open_input, reader_for
from core.batch.formats import input_format
from core.model import ModelHolder
from core.model.inputs import Columns
from core.prediction import predict_arrays
from core.request import RowSchema
from core.rollout import Tally
from core.settings import Settings
from core.storage import StorageURI, parse_uri

Progress = Callable[[int, int], None]  # (rows read, bytes read) so far, as the batch engine reports


class ComparedFile:
    """The tally, and the lines each model refused (not compared)."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.lines_read = 0
        self.refused_by_primary = 0
        self.refused_by_candidate = 0

    def as_dict(self) -> dict[str, Any]:
        return {"lines_read": self.lines_read, "refused_by_primary": self.refused_by_primary,
                "refused_by_candidate": self.refused_by_candidate, **self.tally.as_dict()}


def compare_file(
    input_uri: str | StorageURI, primary: ModelHolder, candidate: ModelHolder, settings: Settings, *,
    tolerance: float, progress: Progress | None = None,
) -> ComparedFile:
    """Predict every row of the input with both models and tally their agreement. Raises
    ServerlessMLError (a model or the input unavailable) and ValueError (not a batch input)."""
    source = parse_uri(input_uri) if isinstance(input_uri, str) else input_uri
    found = input_format(source.name)
    if isinstance(found, str):
        raise ValueError(f"{source.display} is not a batch input: {found}")
    models = (primary.get(), candidate.get())
    readers = [reader_for(found.kind, RowSchema(m.schema), by_position=m.feature_names_source == "generated")
               for m in models]
    same_schema = models[0].schema == models[1].schema
    opened = [_opened(source, settings, found.gzipped) for _ in range(1 if same_schema else 2)]
    result = ComparedFile(Tally(tolerance))
    try:
        primary_chunks = readers[0].chunks(opened[0][1], settings.batch_chunk_rows)
        if same_schema:
            pairs: Any = ((chunk, chunk) for chunk in primary_chunks)
        else:  # each model reads the file its own way; chunks are cut by lines, so they pair up
            pairs = zip(primary_chunks, readers[1].chunks(opened[1][1], settings.batch_chunk_rows), strict=True)
        for chunks in pairs:
            _add(result, models, *chunks)
            if progress is not None:
                progress(result.lines_read, opened[0][0].count)
    finally:
        for raw, _ in opened:
            raw.close()
    return result


def _opened(source: StorageURI, settings: Settings, gzipped: bool) -> tuple[Any, Any]:
    """(the stored bytes, counted; the stream the reader reads)."""
    from core.batch.engine import _Counting as Counting  # the engine's own byte counter

    stream, _ = open_input(source, None, settings.storage_timeout_seconds)
    raw = Counting(stream)
    if gzipped:
        import gzip

        return raw, gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[call-overload]
    return raw, raw


def _add(result: ComparedFile, models: tuple[Any, Any], primary_chunk: Any, candidate_chunk: Any) -> None:
    refused = {f.line for f in primary_chunk.failures}
    refused_too = {f.line for f in candidate_chunk.failures}
    result.lines_read += len(primary_chunk.numbers) + len(refused)
    result.refused_by_primary += len(refused)
    result.refused_by_candidate += len(refused_too)
    both = sorted(set(primary_chunk.numbers) & set(candidate_chunk.numbers))
    if not both:
        return
    rows = [_take(chunk.rows, chunk.numbers, both) for chunk in (primary_chunk, candidate_chunk)]
    answers = [predict_arrays(model, chunk_rows) for model, chunk_rows in zip(models, rows, strict=True)]
    result.tally.add(both, models[0], answers[0], models[1], answers[1])


def _take(rows: Any, numbers: list[int], wanted: list[int]) -> Any:
    """The rows of ``wanted`` line numbers out of a chunk's rows (a matrix, Columns or a list)."""
    if len(wanted) == len(numbers):
        return rows
    position = {number: i for i, number in enumerate(numbers)}
    keep = [position[n] for n in wanted]
    if isinstance(rows, Columns):
        return rows.take(keep)
    if hasattr(rows, "shape"):
        return rows[keep]
    return [rows[i] for i in keep]
