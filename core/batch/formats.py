"""Which objects the batch engine reads: the format is told by the name, never guessed from bytes.

    .csv    a header row, then one record per row (quoted fields may hold commas and line ends)
    .jsonl  one JSON row per line
    .json   one JSON document: an array of rows, or an object in a request form ({"instances": [...]})

each optionally gzipped (``.gz``). ``rows.jsonl`` is JSONL, not JSON: the longer suffix wins.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("csv", "jsonl", "json")
ACCEPTED = ".csv, .jsonl, .json, .csv.gz, .jsonl.gz or .json.gz"


@dataclass(frozen=True)
class InputFormat:
    kind: str  # "csv", "jsonl" or "json"
    gzipped: bool


def input_format(name: str) -> InputFormat | str:
    """The format of an object called ``name``, or a sentence saying why it is not an input."""
    lowered = name.lower()  # DATA.CSV from a Windows export is still a CSV
    gzipped = lowered.endswith(".gz")
    stem = lowered[: -len(".gz")] if gzipped else lowered
    kind = next((k for k in FORMATS if stem.endswith("." + k)), None)
    if kind == "json" and stem.endswith(".manifest.json"):  # written beside a model by serverless-ml export
        return f"'{_short(name)}' is a model's manifest, not a batch input"
    if kind is None:
        return f"'{_short(name)}' is not a batch input; expected a name ending in {ACCEPTED}"
    return InputFormat(kind, gzipped)


def _short(name: str) -> str:
    return name if len(name) <= 80 else name[:77] + "..."
