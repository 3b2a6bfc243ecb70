"""The two output files, written to local temporary files and then handed to the store whole.

Predictions (``<input name>.predictions.jsonl``), one JSON object per good row, in file order::

    {"line":2,"prediction":"setosa","probabilities":{"setosa":1.0,"versicolor":0.0,"virginica":0.0}}

``line`` is the row's 1-based line number in the input (the CSV header is line 1), so a row is
found again in the input and in the errors file by the same number. ``probabilities`` (keyed by
class label, in the model's class order) is present only for models with ``predict_proba``.

Errors (``<input name>.errors.jsonl``), only when a line failed, one object per failed line::

    {"line":7,"code":"invalid_value","message":"line 7, column 'petal_length' is the string 'abc'; expected a number"}

Nothing in either file depends on time or on the machine, so the same input and model always
give byte-identical files. Both are streamed to disk (memory holds one chunk) and published only
when complete: errors first, then predictions, so whoever waits for the predictions file finds
the errors file already there.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Optional, Sequence

from core.batch.readers import RowFailure

_COMPACT = {"separators": (",", ":"), "ensure_ascii": False}


class OutputFiles:
    """The temporary predictions and errors files of one run; removed on close."""

    def __init__(self) -> None:
        # the platform's temp dir: /tmp on Lambda and Cloud Functions, %TEMP% on Azure
        self.folder = tempfile.TemporaryDirectory(prefix="serverless-ml-batch-")
        self.predictions_path = os.path.join(self.folder.name, "predictions.jsonl")
        self.errors_path = os.path.join(self.folder.name, "errors.jsonl")
        self._predictions = open(self.predictions_path, "w", encoding="utf-8", newline="\n")
        self._errors: Optional[Any] = None  # opened on the first failure only
        self._template: Optional[str] = None
        self._class_json: dict[Any, str] = {}

    def write_predictions(self, numbers: Sequence[int], result: dict[str, Any]) -> None:
        predictions = result["predictions"]
        probabilities = result.get("probabilities")
        out = self._predictions
        if probabilities is None:
            out.writelines(
                f'{{"line":{n},"prediction":{json.dumps(p, **_COMPACT)}}}\n' for n, p in zip(numbers, predictions)
            )
            return
        template = self._template or self._make_template(result["classes"])
        columns = list(zip(*probabilities))  # one tuple per class: a None is found with one C scan each
        try:
            labels = list(map(self._class_json.__getitem__, predictions))
        except (KeyError, TypeError):  # a label that is not one of classes_ (a rare shape)
            labels = None
        if labels is None or any(None in column for column in columns):  # None: a non-finite probability
            classes = [str(c) for c in result["classes"]]
            out.writelines(
                json.dumps({"line": n, "prediction": p, "probabilities": dict(zip(classes, probs))}, **_COMPACT) + "\n"
                for n, p, probs in zip(numbers, predictions, probabilities)
            )
            return
        # repr of a finite float is its JSON text; map(template % row) keeps the per-row work in C,
        # several times faster than json.dumps per row
        out.writelines(map(template.__mod__, zip(numbers, labels, *columns)))

    def _make_template(self, classes: list[Any]) -> str:
        self._class_json = {c: json.dumps(c, **_COMPACT) for c in classes}
        keys = ",".join(json.dumps(str(c), **_COMPACT).replace("%", "%%") + ":%r" for c in classes)
        self._template = '{"line":%d,"prediction":%s,"probabilities":{' + keys + "}}\n"
        return self._template

    def write_failures(self, failures: Sequence[RowFailure]) -> None:
        if not failures:
            return
        if self._errors is None:
            self._errors = open(self.errors_path, "w", encoding="utf-8", newline="\n")
        self._errors.writelines(
            json.dumps({"line": f.line, "code": f.code, "message": f.message}, **_COMPACT) + "\n" for f in failures
        )

    @property
    def has_errors(self) -> bool:
        return self._errors is not None

    def finish(self) -> None:
        """Flush and close both files; after this they are complete and can be published."""
        self._predictions.close()
        if self._errors is not None:
            self._errors.close()

    def close(self) -> None:
        self.finish()
        self.folder.cleanup()

    def __enter__(self) -> "OutputFiles":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
