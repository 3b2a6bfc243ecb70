"""Two models over one batch file: how far a candidate agrees with the primary, row by row.

The file is read as a batch run reads it (CSV, JSONL, .json, gzip), in chunks, each model's rows
typed by its own schema, and predicted as a batch run predicts (a row a model refuses is split
off, the others predicted); a line either model refuses is counted, not compared. Nothing is
written: the figures are a :class:`core.rollout.Tally` (agreement, label confusion, the largest
probability gaps by line number, never a row's values). A batch run in shadow mode
(core/batch/shadow.py) counts with the same :func:`add_chunk`, on the rows it has predicted.

    >>> tally = compare_file("s3://bucket/incoming/day.csv", primary, candidate, settings, tolerance=0.05)  # doctest: +SKIP
    >>> tally.as_dict()["agreement"]  # doctest: +SKIP
    0.9931
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from core.batch.formats import input_format
from core.batch.readers import RowFailure
from core.batch.steps import open_input, predict_into, reader_for
from core.model import ModelHolder
from core.model.inputs import Columns
from core.request import RowSchema
from core.rollout import Tally
from core.settings import Settings
from core.storage import StorageURI, parse_uri

Progress = Callable[[int, int], None]  # (rows read, bytes read) so far, as the batch engine reports


class ComparedFile:
    """The tally, and the lines each model refused (not compared): ``refused_by_primary`` the
    lines the primary could not read or predict, ``refused_by_candidate`` those of the rest that
    the candidate could not."""

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
    from core.batch.steps import CountingStream as Counting  # the engine's own byte counter

    stream, _ = open_input(source, None, settings.storage_timeout_seconds)
    raw = Counting(stream)
    if gzipped:
        import gzip

        return raw, gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[call-overload]
    return raw, raw


def _add(result: ComparedFile, models: tuple[Any, Any], primary_chunk: Any, candidate_chunk: Any) -> None:
    add_chunk(result, models, primary_chunk, candidate_chunk)


class Answered(NamedTuple):
    """One model's answers for some rows of a chunk: the lines it predicted, in order, their
    predictions and probabilities (None: no predict_proba), and the lines it refused."""

    lines: list[int]
    predictions: Any
    probabilities: Any
    refused: list[RowFailure]


class Captured:
    """What ``predict_into`` writes to, passing each predicted stretch of rows on to ``sink`` (an
    OutputFiles, or None) and keeping its arrays for the comparison (one chunk's at a time)."""

    def __init__(self, sink: Any = None) -> None:
        self.sink = sink
        self._stretches: list[tuple[Sequence[int], Any, Any]] = []

    def write_predictions(self, numbers: Sequence[int], predictions: Any, probabilities: Any, classes: Any) -> None:
        if self.sink is not None:
            self.sink.write_predictions(numbers, predictions, probabilities, classes)
        self._stretches.append((numbers, predictions, probabilities))

    def write_failures(self, failures: Sequence[RowFailure]) -> None:
        if self.sink is not None:
            self.sink.write_failures(failures)

    def take(self, refused: list[RowFailure]) -> Answered:
        """The rows written since the last take, as one answer."""
        import numpy as np

        stretches, self._stretches = self._stretches, []
        if not stretches:
            return Answered([], None, None, refused)
        if len(stretches) == 1:  # a chunk no row of which was refused: no copy
            numbers, predictions, probabilities = stretches[0]
            return Answered(list(numbers), predictions, probabilities, refused)
        probabilities = None if stretches[0][2] is None else np.concatenate([s[2] for s in stretches])
        return Answered([n for s in stretches for n in s[0]], np.concatenate([s[1] for s in stretches]),
                        probabilities, refused)


def predict_rows(model: Any, numbers: list[int], rows: Any, sink: Any = None) -> Answered:
    """Predict ``rows`` (of lines ``numbers``) as a batch run does: a row the model refuses is
    split off and reported, the others predicted; each predicted row also written to ``sink``."""
    captured = Captured(sink)
    refused = predict_into(model, numbers, rows, captured) if numbers else []
    return captured.take(refused)


def add_chunk(result: ComparedFile, models: tuple[Any, Any], primary_chunk: Any, candidate_chunk: Any,
              primary: Answered | None = None, candidate_sink: Any = None) -> None:
    """Count one chunk: the lines read, those each model refused, and the agreement on the rest.
    ``candidate_chunk``: the same lines as the candidate reads them (the primary's chunk when the
    two share a schema); ``primary``: the primary's answers when it has predicted the chunk
    already (a batch run), else predicted here; ``candidate_sink``: where the candidate's
    predictions are written too. The candidate predicts only the rows the primary predicted.
    Raises what predicting raises, but never for a row a model refuses."""
    if primary is None:
        primary = predict_rows(models[0], primary_chunk.numbers, primary_chunk.rows)
    result.lines_read += len(primary_chunk.numbers) + len(primary_chunk.failures)
    result.refused_by_primary += len(primary_chunk.failures) + len(primary.refused)
    if candidate_chunk is primary_chunk:
        wanted = primary.lines
    else:
        readable = set(candidate_chunk.numbers)
        wanted = [line for line in primary.lines if line in readable]
    result.refused_by_candidate += len(primary.lines) - len(wanted)
    if not wanted:
        return
    candidate = predict_rows(models[1], wanted, _take(candidate_chunk.rows, candidate_chunk.numbers, wanted),
                             candidate_sink)
    result.refused_by_candidate += len(candidate.refused)
    if not candidate.lines:
        return
    answer = (primary.predictions, primary.probabilities)
    if len(candidate.lines) != len(primary.lines):
        keep = _positions(primary.lines, candidate.lines)
        answer = (answer[0][keep], None if answer[1] is None else answer[1][keep])
    result.tally.add(candidate.lines, models[0], answer, models[1], (candidate.predictions, candidate.probabilities))


def _positions(numbers: list[int], wanted: list[int]) -> list[int]:
    position = {number: i for i, number in enumerate(numbers)}
    return [position[n] for n in wanted]


def _take(rows: Any, numbers: list[int], wanted: list[int]) -> Any:
    """The rows of ``wanted`` line numbers out of a chunk's rows (a matrix, Columns or a list)."""
    if len(wanted) == len(numbers):
        return rows
    keep = _positions(numbers, wanted)
    if isinstance(rows, Columns):
        return rows.take(keep)
    if hasattr(rows, "shape"):
        return rows[keep]
    return [rows[i] for i in keep]
