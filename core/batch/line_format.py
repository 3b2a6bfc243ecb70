"""The text of each predictions line, built the same way in whichever process writes it.

Standard library only: the output writer process (output_writer.py) imports this module and
nothing heavier. A line for a model with probabilities::

    {"line":2,"prediction":"setosa","probabilities":{"setosa":1.0,"versicolor":0.0,"virginica":0.0}}

and for a regressor (or a classifier without ``predict_proba``)::

    {"line":2,"prediction":151.0}

``repr`` of a finite float is its shortest round-trip text, which is also valid JSON, so a
``%`` template applied over whole columns keeps the per-row work in C: several times faster than
``json.dumps`` per row. Non-finite values and labels that are not plain classes go through
``json.dumps`` (:meth:`LineFormat.generic_lines`), given JSON values in which they are already
``null``, as the HTTP API answers them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

COMPACT: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}
FLOAT_PREDICTION = '{"line":%d,"prediction":%r}\n'


class LineFormat:
    """Line templates for one model: its classes fixed once, used for every chunk."""

    def __init__(self, classes: Sequence[Any] | None) -> None:
        self.classes = list(classes) if classes is not None else None
        self.label_json: list[str] = []
        self.template = FLOAT_PREDICTION
        if self.classes is not None:
            self.label_json = [json.dumps(c, **COMPACT) for c in self.classes]
            keys = ",".join(json.dumps(str(c), **COMPACT).replace("%", "%%") + ":%r" for c in self.classes)
            self.template = '{"line":%d,"prediction":%s,"probabilities":{' + keys + "}}\n"

    def wire(self) -> dict[str, Any]:
        """What the writer process needs to rebuild this format (JSON-safe)."""
        return {"label_json": self.label_json, "template": self.template}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> LineFormat:
        made = cls(None)
        made.label_json, made.template = list(data["label_json"]), data["template"]
        return made

    def probability_lines(
        self, numbers: Iterable[int], label_indexes: Iterable[int], columns: Sequence[Sequence[float]]
    ) -> Iterator[str]:
        """Lines from the class index of each prediction and one column of floats per class.

        Every float must be finite (the caller checks the chunk once, see has_non_finite)."""
        labels = map(self.label_json.__getitem__, label_indexes)
        return map(self.template.__mod__, zip(numbers, labels, *columns, strict=True))

    def float_lines(self, numbers: Iterable[int], predictions: Iterable[float]) -> Iterator[str]:
        """Lines of a model predicting finite floats (a regressor)."""
        return map(FLOAT_PREDICTION.__mod__, zip(numbers, predictions, strict=True))

    def generic_lines(
        self, numbers: Iterable[int], predictions: Iterable[Any], probabilities: Iterable[Sequence[Any]] | None
    ) -> Iterator[str]:
        """Lines through json.dumps, from JSON values (core.prediction.json_values: any label,
        null for a non-finite number)."""
        if probabilities is None:
            for n, p in zip(numbers, predictions, strict=True):
                yield json.dumps({"line": n, "prediction": p}, **COMPACT) + "\n"
            return
        names = [str(c) for c in self.classes or []]
        for n, p, row in zip(numbers, predictions, probabilities, strict=True):
            yield json.dumps({"line": n, "prediction": p, "probabilities": dict(zip(names, row, strict=True))}, **COMPACT) + "\n"
