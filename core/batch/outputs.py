"""The two output files, written to local temporary files and then handed to the store whole.

Predictions (``<input name>.predictions.jsonl``), one JSON object per good row, in file order::

    {"line":2,"prediction":"setosa","probabilities":{"setosa":1.0,"versicolor":0.0,"virginica":0.0}}

``line`` is the row's 1-based line number in the input (the CSV header is line 1), so a row is
found again in the input and in the errors file by the same number. ``probabilities`` (keyed by
class label, in the model's class order) is present only for models with ``predict_proba``.

Errors (``<input name>.errors.jsonl``), only when a line failed, one object per failed line::

    {"line":7,"code":"invalid_value","message":"line 7, column 'petal_length' is the string 'abc'; expected a number"}

Nothing in either file depends on time or on the machine, so the same input and model always
give byte-identical files, whether the lines were formatted in this process or, for a file of more
than one chunk on a machine with two or more CPUs, in the writer process (output_writer.py). Both
are streamed to disk (memory holds one chunk) and published only when complete: errors first, then predictions, so whoever waits for the predictions file finds
the errors file already there.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from core.batch.line_format import COMPACT, LineFormat
from core.batch.output_writer import OutputWriterProcess
from core.batch.readers import RowFailure


class OutputFiles:
    """The temporary predictions and errors files of one run; removed on close.

    ``writer_process``: None (the default) formats the first chunk here and hands every later
    chunk to a writer process when this machine has two or more CPUs; True or False force it.
    """

    def __init__(self, writer_process: bool | None = None) -> None:
        # the platform's temp dir: /tmp on Lambda and Cloud Functions, %TEMP% on Azure
        self.folder = tempfile.TemporaryDirectory(prefix="serverless-ml-batch-")
        self.predictions_path = os.path.join(self.folder.name, "predictions.jsonl")
        self.errors_path = os.path.join(self.folder.name, "errors.jsonl")
        use_process = _several_cpus() if writer_process is None else writer_process
        # the chunk from which the writer process takes over; by default the second, since a
        # one-chunk file is not worth starting a process for
        self._process_from = (2 if writer_process is None else 1) if use_process else None
        self._sink: Any = None  # opened with the first chunk, when the line format is known
        self._chunks = 0
        self._errors: Any | None = None  # opened on the first failure only
        self._format: LineFormat | None = None
        self._class_index: dict[Any, int] = {}

    def write_predictions(
        self, numbers: Sequence[int], predictions: Any, probabilities: Any, classes: Sequence[Any] | None
    ) -> None:
        """Append the lines of one predicted chunk: arrays as core.prediction.predict_arrays
        returns them, and the model's classes (JSON values) when it has probabilities."""
        line_format = self._line_format(classes if probabilities is not None else None)
        self._chunks += 1
        if self._chunks == self._process_from:
            if self._sink is not None:
                self._sink.close()  # the writer process appends after the first chunk's lines
            self._sink = OutputWriterProcess(self.predictions_path, line_format)
        elif self._sink is None:
            self._sink = _InProcess(self.predictions_path, line_format)
        sink = self._sink
        if probabilities is not None:
            matrix = _finite_floats(probabilities)
            indexes = self._class_indexes(predictions)
            if matrix is not None and indexes is not None:
                sink.probabilities(numbers, indexes, matrix)
                return
        else:
            floats = _finite_floats(predictions)
            if floats is not None and floats.ndim == 1:
                sink.floats(numbers, floats)
                return
        from core.prediction import json_values  # labels of any dtype, non-finite numbers as null

        rows = json_values(probabilities) if probabilities is not None else None
        sink.text("".join(line_format.generic_lines(numbers, json_values(predictions), rows)))

    def _line_format(self, classes: Sequence[Any] | None) -> LineFormat:
        if self._format is None:
            self._format = LineFormat(classes)
            self._class_index = {c: i for i, c in enumerate(self._format.classes or [])}
        return self._format

    def _class_indexes(self, predictions: Any) -> list[int] | None:
        """The class index of each prediction, or None when one is not a plain class label."""
        from core.prediction import json_values

        values = json_values(predictions)
        try:
            return list(map(self._class_index.__getitem__, values))
        except (KeyError, TypeError):  # a label that is not one of classes_ (a rare shape)
            return None

    def write_failures(self, failures: Sequence[RowFailure]) -> None:
        if not failures:
            return
        if self._errors is None:
            self._errors = open(self.errors_path, "w", encoding="utf-8", newline="\n")
        self._errors.writelines(
            json.dumps({"line": f.line, "code": f.code, "message": f.message}, **COMPACT) + "\n" for f in failures
        )

    @property
    def has_errors(self) -> bool:
        return self._errors is not None

    def store_as(self, store: Any, which: str, uri: Any, **options: Any) -> Any:
        """Upload the finished ``which`` file ("predictions" or "errors") to ``uri`` of ``store``
        (write_file's ``metadata``, ``precondition`` and ``part_bytes`` in ``options``): how
        core/batch/publish.py stores each output."""
        return store.write_file(uri, self.predictions_path if which == "predictions" else self.errors_path, **options)

    def finish(self) -> None:
        """Wait for every line and close both files; after this they are complete and can be
        published. Raises WriterProcessFailed when the writer process failed."""
        sink, self._sink = self._sink, _Closed()
        if sink is None:  # no row was predicted: the predictions file is still published, empty
            open(self.predictions_path, "w").close()
        else:
            sink.close()
        if self._errors is not None:
            self._errors.close()

    def close(self) -> None:
        if self._sink is not None:
            self._sink.abort()
        if self._errors is not None:
            self._errors.close()
        self.folder.cleanup()

    def __enter__(self) -> OutputFiles:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class _InProcess:
    """The writer process's interface, formatting in this process."""

    def __init__(self, path: str, line_format: LineFormat) -> None:
        self._out = open(path, "w", encoding="utf-8", newline="\n")
        self._line_format = line_format

    def probabilities(self, numbers: Sequence[int], class_indexes: list[int], matrix: Any) -> None:
        columns = [matrix[:, j].tolist() for j in range(matrix.shape[1])]  # one C loop per class
        self._out.writelines(self._line_format.probability_lines(numbers, class_indexes, columns))

    def floats(self, numbers: Sequence[int], predictions: Any) -> None:
        self._out.writelines(self._line_format.float_lines(numbers, predictions.tolist()))

    def text(self, lines: str) -> None:
        self._out.write(lines)

    def close(self) -> None:
        self._out.close()

    abort = close


class _Closed:
    def close(self) -> None:
        pass

    abort = close


def _finite_floats(values: Any) -> Any:
    """``values`` as a float64 array when every one is a finite number, else None."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):  # None (a non-finite value made JSON-safe), strings, ...
        return None
    if array.dtype.kind != "f" or not np.isfinite(array).all():
        return None
    return array


def _several_cpus() -> bool:
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # not on Linux
        return (os.cpu_count() or 1) > 1
