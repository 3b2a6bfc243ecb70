"""Where a run's outputs go, and which objects are never inputs.

Output prefix: ``BATCH_OUTPUT_URI`` when set, else ``predictions/`` in the input's own bucket or
container (for a local file: the ``predictions/`` folder next to it). Output keys:

    s3://b/incoming/2026/data.csv  ->  s3://b/predictions/incoming/2026/data.csv.predictions.jsonl
                                       s3://b/predictions/incoming/2026/data.csv.errors.jsonl
    file:///data/day.csv           ->  file:///data/predictions/day.csv.predictions.jsonl

With a candidate model in shadow mode (core/batch/shadow.py), two more beside them:
``<input key>.candidate.jsonl`` (the candidate's predictions) and
``<input key>.candidate-summary.json`` (how far it agrees with the primary).

In a bucket the whole input key is kept under the prefix, so two inputs never share an output;
a local file keeps only its name (the folder is the user's choice on the command line). The
names depend on nothing but the input's location: a repeated event rewrites the same objects.

Loop guard: an object under the output prefix, or named like an output, is never an input, so
the outputs' own storage events stop here. An output prefix equal to the input's folder (or the
root of its bucket) would put outputs among inputs, and is refused.

These rules take and give locations only, so they live with the URIs, below both of their
readers: the settings check ``BATCH_OUTPUT_URI`` against them at start, and the batch engine
applies them to every run.
"""

from __future__ import annotations

import posixpath
from typing import NamedTuple

from core.errors import SettingsError
from core.storage.uri import StorageURI, parse_uri

DEFAULT_PREFIX = "predictions/"
PREDICTIONS_SUFFIX = ".predictions.jsonl"
ERRORS_SUFFIX = ".errors.jsonl"
CANDIDATE_SUFFIX = ".candidate.jsonl"
SUMMARY_SUFFIX = ".candidate-summary.json"
# every name an output can have: the shadow outputs too, whether or not this process has a
# candidate (the summary ends in .json, an input format: without this its event would be predicted)
OUTPUT_SUFFIXES = (PREDICTIONS_SUFFIX, ERRORS_SUFFIX, CANDIDATE_SUFFIX, SUMMARY_SUFFIX)


class OutputLocations(NamedTuple):
    predictions: StorageURI
    errors: StorageURI


class ShadowLocations(NamedTuple):
    """A shadow run's two outputs beside the predictions."""

    candidate: StorageURI
    summary: StorageURI


def shadow_locations(outputs: OutputLocations) -> ShadowLocations:
    """Where a shadow run writes the candidate's predictions and the comparison summary."""
    base = outputs.predictions.key[: -len(PREDICTIONS_SUFFIX)]
    where = outputs.predictions
    return ShadowLocations(StorageURI(where.scheme, where.bucket, base + CANDIDATE_SUFFIX),
                           StorageURI(where.scheme, where.bucket, base + SUMMARY_SUFFIX))


def parse_output_prefix(text: str) -> StorageURI:
    """A folder-like location: ``s3://bucket/prefix/``, ``s3://bucket``, ``file:///abs/folder``.

    The key always ends with ``/`` (or is empty: the whole bucket). Raises ValueError saying what
    is expected.
    """
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError("expected a location such as s3://bucket/predictions/ or file:///abs/folder")
    if scheme.lower() == "file":
        path = rest[len("localhost"):] if rest.startswith("localhost/") else rest
        if not path.startswith("/"):
            raise ValueError("a file:// location needs an absolute folder; expected e.g. file:///srv/predictions")
        folder = posixpath.normpath(path)
        return StorageURI("file", "", folder.rstrip("/") + "/")
    bucket, _, prefix = rest.partition("/")
    probe = parse_uri(f"{scheme}://{bucket}/x")  # the scheme and bucket checks of every URI
    prefix = prefix.strip("/")
    return StorageURI(probe.scheme, probe.bucket, prefix + "/" if prefix else "")


def outputs_for(
    input_uri: StorageURI, configured_prefix: StorageURI | None, prefix_name: str = "BATCH_OUTPUT_URI"
) -> OutputLocations | str:
    """Where the outputs of ``input_uri`` go, or why it must not be taken as input (it is an output).

    ``configured_prefix`` None means ``predictions/`` beside the input. Raises SettingsError, naming
    the prefix as ``prefix_name``, for a prefix that is the input's own folder.
    """
    prefix = output_prefix_for(input_uri, configured_prefix)
    if not input_uri.name.lower().endswith(OUTPUT_SUFFIXES):
        # an output's own event is skipped even right under the prefix (the outputs of an input at
        # the bucket's root); any other object in the prefix's own folder means a wrong prefix
        check_output_prefix(prefix, folder_of(input_uri), prefix_name)
    return loop_guard(input_uri, prefix) or output_locations(input_uri, prefix)


def output_prefix_for(input_uri: StorageURI, configured: StorageURI | None) -> StorageURI:
    if configured is not None:
        return configured
    if input_uri.scheme == "file":
        return StorageURI("file", "", posixpath.dirname(input_uri.key).rstrip("/") + "/" + DEFAULT_PREFIX)
    return StorageURI(input_uri.scheme, input_uri.bucket, DEFAULT_PREFIX)


def output_locations(input_uri: StorageURI, prefix: StorageURI) -> OutputLocations:
    relative = input_uri.name if input_uri.scheme == "file" else input_uri.key
    base = prefix.key + relative
    return OutputLocations(
        StorageURI(prefix.scheme, prefix.bucket, base + PREDICTIONS_SUFFIX),
        StorageURI(prefix.scheme, prefix.bucket, base + ERRORS_SUFFIX),
    )


def loop_guard(input_uri: StorageURI, prefix: StorageURI) -> str | None:
    """Why ``input_uri`` must not be taken as input (it is an output), or None."""
    name = input_uri.name.lower()
    if name.endswith(OUTPUT_SUFFIXES):
        shadow = name.endswith((CANDIDATE_SUFFIX, SUMMARY_SUFFIX))
        named = (CANDIDATE_SUFFIX, SUMMARY_SUFFIX) if shadow else (PREDICTIONS_SUFFIX, ERRORS_SUFFIX)
        return (f"{input_uri.display} is named like a batch {'shadow ' if shadow else ''}output "
                f"({' or '.join(named)}); outputs are never inputs")
    if _same_place(input_uri, prefix) and input_uri.key.startswith(prefix.key):
        return f"{input_uri.display} is under the output prefix {_display(prefix)}; outputs are never inputs"
    return None


def check_output_prefix(prefix: StorageURI, input_folder: StorageURI, name: str = "BATCH_OUTPUT_URI") -> None:
    """Refuse an output prefix that is the input folder (or its bucket's root): outputs would land
    among the inputs. ``input_folder`` is a prefix like the output's; a trigger that knows the
    watched prefix calls this at start, and every run calls it with the input's own folder."""
    if not _same_place(prefix, input_folder):
        return
    if prefix.key == input_folder.key or prefix.key == "":
        shown = f"{name}={_display(prefix)}" if name.isupper() else f"{name} {_display(prefix)}"
        raise SettingsError(
            f"{shown} is the folder the inputs are in; outputs would be written among "
            f"the inputs; expected another prefix, e.g. {_display(_sibling(input_folder))}"
        )


def folder_of(uri: StorageURI) -> StorageURI:
    head = posixpath.dirname(uri.key)
    return StorageURI(uri.scheme, uri.bucket, head + "/" if head and head != "/" else ("/" if uri.scheme == "file" else ""))


def _sibling(folder: StorageURI) -> StorageURI:
    if folder.scheme == "file":
        return StorageURI("file", "", folder.key + DEFAULT_PREFIX)
    return StorageURI(folder.scheme, folder.bucket, DEFAULT_PREFIX)


def _same_place(a: StorageURI, b: StorageURI) -> bool:
    return a.scheme == b.scheme and a.bucket == b.bucket


def _display(prefix: StorageURI) -> str:
    if prefix.scheme == "file":
        return "file://.../" + posixpath.basename(prefix.key.rstrip("/")) + "/"
    return f"{prefix.scheme}://{prefix.bucket}/{prefix.key}"
