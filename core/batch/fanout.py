"""A file too large for one run: split into row-aligned byte ranges, predicted in parallel, merged
into the very outputs one run over the whole file writes. Three plain steps over the storage
interface, for any orchestrator (Step Functions, Durable Functions, Workflows, or the local
``serverless-ml batch INPUT --workers N``); every input and output is a small JSON value.

    plan(input)              -> plan          cut the input (pinned to one version) into parts
    run_part(part)           -> part result   predict one part into part outputs
    merge(plan, results)     -> batch result  publish the outputs, in input order; remove the parts

Parts are whole chunks of the single run: a part starts where one run over the file starts a
chunk (after a multiple of BATCH_CHUNK_ROWS entries, core/batch/boundaries.py), so the model sees
the very batches it would see in one run. That matters: a model's numbers can depend on the batch
a row is predicted in (a logistic regression's probabilities move in the last digit with the
batch's shape), and the outputs are to be the same bytes. The plan carries ``chunk_rows`` and every
part reads with it, whatever the worker's own setting.

Finding those places takes a pass over the bytes that may itself run in parallel: ``plan`` is
``survey`` (one look at the input, a few KB read) + ``scan_grain`` for each grain of the survey
(pass 1: line ends, entries and CSV quote states from both possible starting states; any order,
any machine) + ``cut`` (the scans combined in order from byte 0; then ``locate_entry`` reads again,
up to it, the one grain that holds each cut: pass 2). An orchestrator calls them one by one, or
``plan`` with its own ``scan=`` map.

Which files are split: ``.csv`` and ``.jsonl``. A gzip stream cannot be entered in the middle, and
a ``.json`` document is one JSON value: those run whole (a plan of one part, ``whole`` says why),
as does a file no larger than one part (``BATCH_FANOUT_PART_BYTES``, or ``BATCH_FANOUT_PART_ROWS``
rows estimated from its first lines). A plan of one part is not worth fanning out: run the file
with :func:`core.batch.engine.run_batch`, exactly as a trigger does without fan-out. After a line
over 1 MiB that holds a quote, where the reader's outcome is not known in advance, no cut is made.
A candidate model in shadow mode (core/batch/shadow.py) is not carried by parts: ``survey`` (and
so ``plan``) refuses a file of more than one part with it (SettingsError, naming the ways out);
a file that runs whole keeps its shadow outputs.

The contract, with the values of a real run (a 1,920,042-byte CSV of 120,000 rows on S3 (moto),
two of them bad, ``BATCH_FANOUT_PART_BYTES=524288``, BATCH_CHUNK_ROWS at its 10,000)::

    plan("s3://data/incoming/day.csv", settings) ->
    {"input": "s3://data/incoming/day.csv",
     "version": {"version_id": "e08646e4-8760-4e02-a37e-7de076918a04",
                 "etag": "\\"e84c1eee4390372e92b6ad3c09a154e9\\""},
     "format": "csv", "size": 1920042, "header_end": 50, "output_prefix": "s3://data/predictions/",
     "run": "60f8eed6171a48c2", "chunk_rows": 10000, "whole": null, "skipped": null,
     "parts": [
       {"input": "s3://data/incoming/day.csv", "version": {...as above}, "format": "csv",
        "output_prefix": "s3://data/predictions/", "run": "60f8eed6171a48c2", "header_end": 50,
        "chunk_rows": 10000, "index": 0, "count": 3, "start": 0, "end": 640034, "first_line": 1,
        "first_entry": 0},
       {..., "index": 1, "count": 3, "start": 640034, "end": 1280034, "first_line": 40001, "first_entry": 40000},
       {..., "index": 2, "count": 3, "start": 1280034, "end": 1920042, "first_line": 80001, "first_entry": 80000}]}

    run_part(plan["parts"][0], model_holder, settings) ->
    {"index": 0, "rows_read": 39999, "rows_predicted": 39998, "rows_failed": 1, "errors": true,
     "input_error": null, "skipped": null, "seconds": 1.47}

    merge(plan, [result_0, result_1, result_2], settings) ->
    {"input": "s3://data/incoming/day.csv", "rows_read": 120000, "rows_predicted": 119998,
     "rows_failed": 2, "predictions_uri": "s3://data/predictions/incoming/day.csv.predictions.jsonl",
     "errors_uri": "s3://data/predictions/incoming/day.csv.errors.jsonl", "skipped": null,
     "input_error": null, "version": "versionId e08646e4-8760-4e02-a37e-7de076918a04"}

A part is self-contained: the input, the version every part reads (pinned by the plan: the one its
event named, else the one current when planned), its byte range ``start``-``end`` (starting at a
line start outside any quoted field), the whole file's number of its first line and of its first
entry (a multiple of ``chunk_rows``), and where the CSV header ends (every part reads bytes 0 to
``header_end`` first, so its rows are typed and numbered exactly as one run over the file would). Its outputs go to
``<output prefix>_parts/<input key>/<run>/<index>.predictions.jsonl`` (and ``.errors.jsonl``),
under the output prefix, so their storage events are never taken as inputs; a part run again (a
retry) writes the same bytes to the same objects. ``run`` is drawn once per plan, so two plans of
one file never mix their parts. A lifecycle rule on ``<output prefix>_parts/`` removes the parts
of a run that never merged.

``merge`` composes the part outputs server-side (ObjectStore.compose: S3 UploadPartCopy, GCS
compose, Azure Put Block From URL) and publishes them as core/batch/publish.py publishes a single
run's files: only while the input is still the planned version, on conditions, the version
recorded in the outputs' metadata. The bytes are those one run over the whole file writes: the
same lines, in the same order, with the same line numbers, the errors file only when a line failed
(a failure reported once, by the part that holds its line). A part whose version was replaced ends
``skipped`` ("superseded: ..."; or the input was deleted), and so does the merge, publishing
nothing; the parts are removed either way.
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

from core.batch.boundaries import OUTSIDE, Scanner, header_end
from core.batch.engine import BatchResult
from core.batch.formats import input_format
from core.batch.lines import MAX_LINE_BYTES
from core.batch.model_threads import model_thread_limit
from core.batch.outputs import OutputFiles
from core.batch.publish import publish
from core.batch.readers import BatchInputError, RowFailure
from core.batch.steps import Counts, predict_chunks, reader_for
from core.errors import ObjectNotFound, ObjectSuperseded, SettingsError
from core.request.rows import RowSchema
from core.settings import Settings
from core.storage import StorageURI, parse_uri, store_for
from core.storage.locations import OutputLocations, outputs_for, parse_output_prefix
from core.storage.versions import ObjectVersion

logger = logging.getLogger("serverless_ml.batch")

PARTS_FOLDER = "_parts/"
SPLIT_FORMATS = ("csv", "jsonl")
# The plan's pass reads its grains (the ranges scanned one by one; each cut reads one again, up to
# the cut) of at most this size, but a file in at most MAX_GRAINS of them, so that the survey stays
# a small JSON value whatever the file's size.
MAX_GRAIN_BYTES = 16 * 1024 * 1024
MIN_GRAIN_BYTES = 64
MAX_GRAINS = 4096
# Bytes of the input's head read to find the CSV header and guess the bytes per row.
HEAD_BYTES = 64 * 1024
_DELETE_THREADS = 8

ScanMap = Callable[[Callable[[dict], dict], Iterable[dict]], Iterable[dict]]


# --- plan ---------------------------------------------------------------------------------------


def plan(
    input_uri: str | StorageURI, settings: Settings, *, version: ObjectVersion | None = None,
    output_prefix: StorageURI | None = None, part_bytes: int | None = None, part_rows: int | None = None,
    scan: ScanMap = map, store_for: Callable[..., Any] = store_for,
) -> dict[str, Any]:
    """The plan of ``input_uri`` (exactly ``version`` of it, else its current version): its parts
    of about ``part_bytes`` (default BATCH_FANOUT_PART_BYTES) or ``part_rows`` rows (default
    BATCH_FANOUT_PART_ROWS, 0: bytes only), whichever comes first. ``scan``: how the grains are
    scanned, ``map`` by default (an executor's map runs them in parallel). Raises ObjectNotFound
    when the input is missing, StorageError when it cannot be read."""
    surveyed = survey(input_uri, settings, version=version, output_prefix=output_prefix, part_bytes=part_bytes,
                      part_rows=part_rows, store_for=store_for)
    scans = list(scan(scan_grain, surveyed["grains"])) if surveyed["grains"] else []
    return cut(surveyed, scans, locate=scan)


def survey(
    input_uri: str | StorageURI, settings: Settings, *, version: ObjectVersion | None = None,
    output_prefix: StorageURI | None = None, part_bytes: int | None = None, part_rows: int | None = None,
    at_least: int = 1, floor_bytes: int = 0, store_for: Callable[..., Any] = store_for,
) -> dict[str, Any]:
    """The first step of a plan: one look at the input (its version and size, the CSV header, the
    bytes per line of its head) and the grains to scan. ``at_least``, ``floor_bytes``: parts
    small enough that there are at least ``at_least`` of them, but not under ``floor_bytes``
    (a local run spreads a file over its workers this way). Raises SettingsError for a file of
    more than one part with a candidate in shadow mode (parts carry no candidate)."""
    source = parse_uri(input_uri) if isinstance(input_uri, str) else input_uri
    prefix = output_prefix or settings.batch_output_uri
    targets = outputs_for(source, prefix, "the output prefix" if output_prefix else "BATCH_OUTPUT_URI")
    found = input_format(source.name)
    base: dict[str, Any] = {
        "input": str(source), "version": None, "format": None, "size": None, "header_end": None,
        "output_prefix": None, "run": uuid.uuid4().hex[:16], "chunk_rows": settings.batch_chunk_rows,
        "whole": None, "skipped": None, "grains": [], "part_bytes": None, "part_rows": None,
        "timeout": settings.storage_timeout_seconds,
    }
    if isinstance(targets, str) or isinstance(found, str):
        base["skipped"] = targets if isinstance(targets, str) else found
        return base
    base["format"] = found.kind
    base["output_prefix"] = str(_prefix_of(source, targets))
    timeout = settings.storage_timeout_seconds
    store = store_for(source, timeout)
    current = store.stat(source)
    if current is None:
        raise ObjectNotFound(f"{source.display} does not exist", source.display)
    if version is not None and version.pinned and not version.same_as(current):
        base["skipped"] = (f"superseded: {source.display} was announced at {version.describe()}, and "
                           f"{current.describe()} is its current version now; that version's own event predicts it")
        return base
    pinned = current._replace(sequencer=version.sequencer if version is not None else None)
    base["version"] = version_json(pinned if store.versioned else None)
    size = base["size"] = current.size or 0
    if found.gzipped:
        base["whole"] = "a gzip stream cannot be entered in the middle: the file runs whole"
        return base
    if found.kind not in SPLIT_FORMATS:
        base["whole"] = "a .json file is one JSON document: it runs whole"
        return base
    target_bytes = part_bytes or settings.batch_fanout_part_bytes
    if at_least > 1:
        target_bytes = min(target_bytes, max(floor_bytes, -(-size // at_least)))
    rows = settings.batch_fanout_part_rows if part_rows is None else part_rows
    if size <= min(target_bytes, rows * 2 if rows else target_bytes):  # a row takes 2 bytes at least
        base["whole"] = "the file is no larger than one part"
        return base
    version_read = version_from(base["version"])
    head = _read(store, source, version_read, 0, min(size, HEAD_BYTES))
    line_bytes = max(1.0, len(head) / max(1, head.count(b"\n")))
    if found.kind == "csv":
        end = header_end([head])
        if end is None and size > len(head):
            end = header_end([_read(store, source, version_read, 0, min(size, MAX_LINE_BYTES + HEAD_BYTES))])
        if end is None:
            base["whole"] = "no CSV header record ending within the first MiB was found: the file runs whole"
            return base
        base["header_end"] = end
    if rows:
        target_bytes = min(target_bytes, max(1, int(rows * line_bytes)))
    if size <= target_bytes:
        base["whole"] = "the file is no larger than one part"
        return base
    _refuse_shadow(settings, source, size, target_bytes)
    grain = max(min(MAX_GRAIN_BYTES, max(MIN_GRAIN_BYTES, target_bytes // 4)), -(-size // MAX_GRAINS))
    base.update(part_bytes=target_bytes, part_rows=rows or None)
    common = {"input": base["input"], "version": base["version"], "format": found.kind, "size": size,
              "timeout": timeout}
    base["grains"] = [
        {**common, "index": index, "nominal_start": start, "nominal_end": min(size, start + grain)}
        for index, start in enumerate(range(0, size, grain))
    ]
    return base


def _refuse_shadow(settings: Settings, source: StorageURI, size: int, part_bytes: int) -> None:
    """Parts carry no candidate: a shadow run's candidate outputs and summary would have to be
    merged from every part's, which is not built. Refused rather than published without them, so
    that nobody reads a file's missing summary as a candidate that was never judged."""
    candidate = settings.candidate
    if candidate is not None and candidate.mode == "shadow":
        raise SettingsError(
            f"CANDIDATE_MODE=shadow: {source.display} ({size:,} bytes) is larger than one part ({part_bytes:,} "
            "bytes) and a fanned-out run does not shadow a candidate; expected no CANDIDATE_MODEL_URI on a batch "
            "that fans out, a BATCH_FANOUT_PART_BYTES of at least the file's size (it then runs whole, with the "
            "shadow outputs), or `serverless-ml compare` for this file"
        )


def scan_grain(grain: dict[str, Any], store_for: Callable[..., Any] = store_for) -> dict[str, Any]:
    """Pass 1 over one grain of a survey: where it really starts and ends (the line starts at or
    after its nominal bounds), its line ends, and for a start outside and a start inside a quoted
    field the entries that start in it and the quote state at its end (boundaries.Scanner). Any
    grain on any machine, in any order."""
    source = parse_uri(grain["input"])
    version = version_from(grain["version"])
    size, nominal_end = grain["size"], grain["nominal_end"]
    store = store_for(source, grain["timeout"])
    start = _line_start(store, source, version, grain["nominal_start"], size)
    answer = {"index": grain["index"], "start": start}
    if start >= nominal_end and nominal_end < size:  # a line longer than the grain: nothing starts here
        return {**answer, "end": start, "newlines": 0, "outside": {"state": False, "entries": 0},
                "inside": {"state": True, "entries": 0}}
    scanner = Scanner(quoted=grain["format"] == "csv", at_file_start=start == 0, offset=start)
    boundary = nominal_end - 1 if nominal_end < size else None  # the first "\n" from here ends the grain
    position, end = start, size
    with closing(_blocks(store, source, version, start, size, (nominal_end - start) + HEAD_BYTES)) as blocks:
        for block in blocks:
            if boundary is not None and position + len(block) > boundary:
                newline = block.find(b"\n", max(0, boundary - position))
                if newline >= 0:
                    scanner.feed(block[:newline + 1])
                    end = position + newline + 1
                    break
            scanner.feed(block)
            position += len(block)
    return {**answer, "end": end, **scanner.finish()}


def cut(surveyed: dict[str, Any], scans: Sequence[dict[str, Any]], locate: ScanMap = map) -> dict[str, Any]:
    """The plan: the survey's grains (their ``scans``, any order) combined from the start of the
    file, which tells where each grain's first entry is; cuts at the entries that start the
    single run's chunks (multiples of BATCH_CHUNK_ROWS), about a part's size apart; each cut's
    byte and line found by reading its grain again up to it (``locate_entry``, through ``locate``:
    ``map`` by default, an executor's map runs them in parallel)."""
    keys = ("input", "version", "format", "size", "header_end", "output_prefix", "run", "chunk_rows", "whole",
            "skipped")
    made: dict[str, Any] = {key: surveyed[key] for key in keys}
    if surveyed["skipped"] is not None:
        made["parts"] = []
        return made
    size, chunk = surveyed["size"], surveyed["chunk_rows"]
    cuts: list[dict[str, Any]] = []
    if surveyed["grains"]:
        by_index = {scan["index"]: scan for scan in scans}
        missing = [g["index"] for g in surveyed["grains"] if g["index"] not in by_index]
        if missing:
            raise ValueError(f"scans of grains {_indexes(missing)} are missing; expected one per grain of the survey")
        known = _known_grains([by_index[g["index"]] for g in surveyed["grains"]])
        requests = [
            {**{key: surveyed[key] for key in ("input", "version", "format", "size")}, "timeout": surveyed["timeout"],
             "cut": entry, **grain}
            for entry, grain in _cut_entries(known, chunk, surveyed["part_bytes"], surveyed["part_rows"])
        ]
        cuts = sorted(locate(locate_entry, requests), key=lambda found: found["cut"]) if requests else []
    bounds = [(0, 1, 0)] + [(c["offset"], c["first_line"], c["cut"]) for c in cuts] + [(size, 0, 0)]
    common = {key: made[key] for key in ("input", "version", "format", "output_prefix", "run", "header_end",
                                         "chunk_rows")}
    made["parts"] = [
        {**common, "index": index, "count": len(bounds) - 1, "start": start, "end": bounds[index + 1][0],
         "first_line": first_line, "first_entry": first_entry}
        for index, (start, first_line, first_entry) in enumerate(bounds[:-1])
    ]
    return made


def locate_entry(request: dict[str, Any], store_for: Callable[..., Any] = store_for) -> dict[str, Any]:
    """Pass 2 for one cut: read the grain that holds entry ``request["cut"]`` from its start up
    to that entry; its byte in the file and its line number."""
    source = parse_uri(request["input"])
    version = version_from(request["version"])
    store = store_for(source, request["timeout"])
    scanner = Scanner(quoted=request["format"] == "csv", at_file_start=request["start"] == 0,
                      starts=(request["state"],), offset=request["start"], stop_at=request["stop_at"])
    with closing(_blocks(store, source, version, request["start"], request["end"],
                         request["end"] - request["start"])) as blocks:
        for block in blocks:
            scanner.feed(block)
            if scanner.found is not None:
                break
    if scanner.found is None:
        scanner.finish()
    if scanner.found is None:
        raise RuntimeError(f"entry {request['cut']} of {source.display} was not found in bytes "
                           f"{request['start']}-{request['end']}: the input changed since it was scanned?")
    offset, newlines = scanner.found
    return {"cut": request["cut"], "offset": offset, "first_line": request["newlines_before"] + newlines + 1}


def _known_grains(scans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The grains, in order, whose first entry, line and quote state are known for certain: up
    to the first one whose outcome from its start state is not known (an over-long line there)."""
    known = []
    state, entries, newlines = OUTSIDE, 0, 0
    for scan in scans:
        outcome = scan["inside" if state else "outside"]
        if outcome is None:
            break
        known.append({"start": scan["start"], "end": scan["end"], "state": state, "entries_before": entries,
                      "entries": outcome["entries"], "newlines_before": newlines})
        state, entries, newlines = outcome["state"], entries + outcome["entries"], newlines + scan["newlines"]
    return known


def _cut_entries(known: list[dict[str, Any]], chunk: int, part_bytes: int, part_rows: int | None):
    """(entry, grain) of each cut: multiples of ``chunk``, about ``part_bytes`` (or ``part_rows``
    entries) apart, each starting in a known grain; the last part at least half the others."""
    total = known[-1]["entries_before"] + known[-1]["entries"] if known else 0

    def entry_at(byte: float) -> float:
        for grain in known:
            if byte < grain["end"]:
                share = (byte - grain["start"]) / max(1, grain["end"] - grain["start"])
                return grain["entries_before"] + max(0.0, share) * grain["entries"]
        return float(total)

    def byte_at(entry: int) -> float:
        for grain in known:
            if entry < grain["entries_before"] + grain["entries"]:
                share = (entry - grain["entries_before"]) / max(1, grain["entries"])
                return grain["start"] + share * (grain["end"] - grain["start"])
        return float(known[-1]["end"]) if known else 0.0

    last_entry, last_byte = 0, 0.0
    while True:
        goal = entry_at(last_byte + part_bytes)
        if part_rows:
            goal = min(goal, last_entry + part_rows)
        entry = max(last_entry + chunk, -(-int(goal) // chunk) * chunk)
        if total - entry < (entry - last_entry) / 2:  # the rest is less than half a part: it stays in this one
            return
        grain = next(g for g in known if entry < g["entries_before"] + g["entries"])
        yield entry, {"start": grain["start"], "end": grain["end"], "state": grain["state"],
                      "stop_at": entry - grain["entries_before"], "newlines_before": grain["newlines_before"]}
        last_entry, last_byte = entry, byte_at(entry)


# --- run one part --------------------------------------------------------------------------------


def run_part(part: dict[str, Any], model_holder: Any, settings: Settings,
             store_for: Callable[..., Any] = store_for) -> dict[str, Any]:
    """Predict one part of a plan into its part outputs; its result (a small JSON value) for merge.
    Reads the plan's version of the input, or ends ``skipped`` when that version (or the input)
    is gone. Raises
    ModelUnavailable, StorageError, PredictionFailed as run_batch does (an orchestrator retries the
    part alone: it writes the same bytes again)."""
    started = time.perf_counter()
    source = parse_uri(part["input"])
    version = version_from(part["version"])
    index = part["index"]
    result: dict[str, Any] = {"index": index, "rows_read": 0, "rows_predicted": 0, "rows_failed": 0, "errors": False,
                              "input_error": None, "skipped": None, "seconds": 0.0}
    model = model_holder.get()
    reader = reader_for(part["format"], RowSchema(model.schema), by_position=model.feature_names_source == "generated")
    timeout, chunk_rows = settings.storage_timeout_seconds, part["chunk_rows"]
    store = store_for(source, timeout)
    counts = Counts()
    with OutputFiles() as outputs, model_thread_limit(settings.batch_model_threads):
        try:
            if _reader_at_part_start(reader, part, store, source, version, chunk_rows):
                with store.open_read(source, version, start=part["start"], end=part["end"]) as stream:
                    chunks = reader.chunks(stream, chunk_rows, first_line=part["first_line"], offset=part["start"])
                    try:
                        predict_chunks(chunks, model, outputs, counts)
                    except BatchInputError as exc:  # the header, in part 0 only: every other part read it already
                        outputs.write_failures([RowFailure(exc.line, BatchInputError.code, exc.message)])
                        result["input_error"] = exc.message
        except ObjectSuperseded as exc:
            result["skipped"] = f"superseded: {exc.message}"
        except ObjectNotFound as exc:
            if exc.uri != source.display:  # the output bucket, say: a setting to fix, and retried
                raise
            result["skipped"] = f"{exc.message} (deleted after the plan was made?)"
        if result["skipped"] is not None:
            logger.info("batch part skipped", extra={"fields": {
                "input": source.display, "part": index, "reason": result["skipped"]}})
            return result
        outputs.finish()
        locations = part_locations(part, index)
        out = store_for(locations.predictions, timeout)
        if outputs.has_errors:
            out.write_file(locations.errors, outputs.errors_path, part_bytes=settings.batch_part_bytes)
        else:  # an earlier attempt of this part cannot have had errors (same bytes), but a stale one
            _delete_quietly(out, locations.errors)
        out.write_file(locations.predictions, outputs.predictions_path, part_bytes=settings.batch_part_bytes)
    result.update(rows_read=counts.read, rows_predicted=counts.predicted, rows_failed=counts.failed,
                  errors=outputs.has_errors, seconds=round(time.perf_counter() - started, 3))
    logger.info("batch part finished", extra={"fields": {
        "input": source.display, "part": index, "of": part["count"], "start": part["start"], "end": part["end"],
        "first_line": part["first_line"], **{k: result[k] for k in ("rows_read", "rows_failed", "seconds")}}})
    return result


def _reader_at_part_start(reader: Any, part: dict[str, Any], store: Any, source: StorageURI,
                          version: ObjectVersion | None, chunk_rows: int) -> bool:
    """Bring ``reader`` to the state a run over the whole file is in at this part's first line:
    the CSV header read (bytes 0 to header_end), the width of a JSONL file's array rows learnt
    where the model does not fix it. False when the header is refused: part 0 reports that, and
    a run over the whole file reads nothing after it."""
    if part["start"] == 0:
        return True
    if part["format"] == "csv":
        with store.open_read(source, version, start=0, end=part["header_end"]) as stream:
            try:
                for _ in reader.chunks(stream, chunk_rows):
                    pass
            except BatchInputError:
                return False
        return True
    json_rows = getattr(reader, "json_rows", None)
    if json_rows is not None and json_rows.width is None:  # the first good array row of the file sets it
        with store.open_read(source, version, start=0, end=part["start"]) as stream:
            for _ in reader.chunks(stream, min(chunk_rows, 1000)):
                if json_rows.width is not None:
                    break
    return True


# --- merge --------------------------------------------------------------------------------------


class _PartSources:
    """The parts' outputs, as publish.py stores outputs: composed into each final file."""

    def __init__(self, predictions: list[StorageURI], errors: list[StorageURI]) -> None:
        self.predictions = predictions
        self.errors = errors
        self.has_errors = bool(errors)

    def store_as(self, store: Any, which: str, uri: StorageURI, **options: Any) -> Any:
        return store.compose(uri, self.predictions if which == "predictions" else self.errors, **options)


def merge(plan: dict[str, Any], results: Sequence[dict[str, Any]], settings: Settings,
          store_for: Callable[..., Any] = store_for) -> dict[str, Any]:
    """Publish the outputs of a plan whose every part has run (``results``: one per part, any
    order), then remove the parts; the run's result as run_batch gives it (``BatchResult.as_dict``).
    Raises ValueError when a part's result is missing, StorageError when the outputs cannot be
    written (the parts stay: merge can be called again)."""
    started = time.perf_counter()
    source = parse_uri(plan["input"])
    if plan["skipped"] is not None:
        return BatchResult(source.display, skipped=plan["skipped"]).as_dict()
    version = version_from(plan["version"])
    shown = version.describe() if version is not None and version.pinned else None
    count = len(plan["parts"])
    by_index = {result["index"]: result for result in results}
    missing = sorted(set(range(count)) - set(by_index))
    if missing:
        raise ValueError(f"results of parts {_indexes(missing)} are missing; expected one per part of the plan ({count})")
    ordered = [by_index[index] for index in range(count)]
    locations = [part_locations(plan, index) for index in range(count)]
    timeout = settings.storage_timeout_seconds
    skipped = next((r["skipped"] for r in ordered if r.get("skipped")), None)
    if skipped is None:
        sources = _PartSources([where.predictions for where in locations],
                               [where.errors for where, r in zip(locations, ordered, strict=True) if r["errors"]])
        targets = final_outputs(plan)
        try:
            published = publish(sources, targets, source, version, store_for=store_for, timeout=timeout,
                                part_bytes=settings.batch_part_bytes)
        except ObjectSuperseded as exc:
            skipped = f"superseded: {exc.message}"
        except ObjectNotFound as exc:
            if exc.uri != source.display:
                raise
            skipped = f"{exc.message} (deleted after the plan was made?)"
    _remove_parts(locations, store_for, timeout)
    if skipped is not None:
        logger.info("batch input skipped", extra={"fields": {"input": source.display, "version": shown,
                                                             "reason": skipped}})
        return BatchResult(source.display, skipped=skipped, version=shown).as_dict()
    result = BatchResult(
        source.display,
        rows_read=sum(r["rows_read"] for r in ordered), rows_predicted=sum(r["rows_predicted"] for r in ordered),
        rows_failed=sum(r["rows_failed"] for r in ordered), predictions_uri=str(targets.predictions),
        errors_uri=str(published.errors) if published.errors is not None else None,
        input_error=ordered[0]["input_error"], version=shown,
    )
    logger.info("batch merged", extra={"fields": {
        "input": source.display, "version": shown, "parts": count, "rows_read": result.rows_read,
        "rows_predicted": result.rows_predicted, "rows_failed": result.rows_failed,
        "predictions": targets.predictions.display, "seconds": round(time.perf_counter() - started, 3)}})
    return result.as_dict()


def remove_parts(plan: dict[str, Any], settings: Settings, store_for: Callable[..., Any] = store_for) -> None:
    """Delete whatever part outputs of ``plan`` exist (an orchestrator whose run failed for good)."""
    if plan["skipped"] is None:
        _remove_parts([part_locations(plan, index) for index in range(len(plan["parts"]))], store_for,
                      settings.storage_timeout_seconds)


def _remove_parts(locations: list[OutputLocations], store_for: Callable[..., Any], timeout: float) -> None:
    """Delete every part output (a missing one is fine); local folders left empty go too."""
    uris = [uri for where in locations for uri in where]
    if not uris:
        return
    store = store_for(uris[0], timeout)
    with ThreadPoolExecutor(min(_DELETE_THREADS, len(uris))) as pool:
        list(pool.map(lambda uri: _delete_quietly(store, uri), uris))
    if uris[0].scheme == "file":
        folder = posixpath.dirname(uris[0].key)
        for _ in range(3):  # <run>/, <input name>/ and _parts/, each when nothing else is in it
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = posixpath.dirname(folder)


def _delete_quietly(store: Any, uri: StorageURI) -> None:
    try:
        store.delete(uri)
    except ObjectNotFound:  # a local folder that is not there: nothing to remove
        pass


# --- where things are ---------------------------------------------------------------------------


def final_outputs(plan: dict[str, Any]) -> OutputLocations:
    """The outputs a run over the whole input writes (a plan's, or a part's)."""
    source = parse_uri(plan["input"])
    targets = outputs_for(source, parse_output_prefix(plan["output_prefix"]), "the output prefix")
    assert not isinstance(targets, str), "a plan is made for inputs only"
    return targets


def part_locations(plan: dict[str, Any], index: int) -> OutputLocations:
    """Where part ``index`` of a plan (or the part itself) writes its outputs."""
    return OutputLocations(run_object(plan, f"{index:05d}.predictions.jsonl"),
                           run_object(plan, f"{index:05d}.errors.jsonl"))


def run_object(plan: dict[str, Any], name: str) -> StorageURI:
    """An object of one run (a plan or a part), in the folder of its part outputs:
    ``<output prefix>_parts/<input key>/<run>/<name>``; an orchestrator keeps its state there
    (the parts list, the plan), under the output prefix, so it is never taken as an input."""
    source = parse_uri(plan["input"])
    prefix = parse_output_prefix(plan["output_prefix"])
    relative = source.name if source.scheme == "file" else source.key
    return StorageURI(prefix.scheme, prefix.bucket, f"{prefix.key}{PARTS_FOLDER}{relative}/{plan['run']}/{name}")


def _prefix_of(source: StorageURI, targets: OutputLocations) -> StorageURI:
    """The output prefix, from the predictions' location (outputs_for resolved the default)."""
    relative = source.name if source.scheme == "file" else source.key
    key = targets.predictions.key
    return StorageURI(targets.predictions.scheme, targets.predictions.bucket,
                      key[: len(key) - len(relative) - len(".predictions.jsonl")])


def version_json(version: ObjectVersion | None) -> dict[str, Any] | None:
    """A version as a plan carries it: its names, without the size."""
    if version is None:
        return None
    return {name: value for name, value in version._asdict().items() if value is not None and name != "size"}


def version_from(data: dict[str, Any] | None) -> ObjectVersion | None:
    return ObjectVersion(**data) if data else None


# --- reading ------------------------------------------------------------------------------------


def _read(store: Any, source: StorageURI, version: ObjectVersion | None, start: int, end: int) -> bytes:
    with store.open_read(source, version, start=start, end=end) as stream:
        return stream.read()


def _blocks(store: Any, source: StorageURI, version: ObjectVersion | None, start: int, size: int,
            window: int) -> Generator[bytes, None, None]:
    """The bytes from ``start`` on, in blocks, through ranged reads of ``window`` bytes (so a
    reader that stops early has not asked for the whole rest of the object)."""
    position = start
    while position < size:
        end = min(size, position + window)
        with store.open_read(source, version, start=position, end=end) as stream:
            while True:
                block = stream.read(MAX_LINE_BYTES)  # the largest a Scanner takes in one piece
                if not block:
                    break
                yield block
        position = end
        window = max(window, MAX_LINE_BYTES)


def _line_start(store: Any, source: StorageURI, version: ObjectVersion | None, at: int, size: int) -> int:
    """The first line start at or after ``at``: 0, or just after the first "\\n" from ``at - 1``."""
    if at == 0:
        return 0
    position = at - 1
    with closing(_blocks(store, source, version, position, size, HEAD_BYTES)) as blocks:
        for block in blocks:
            newline = block.find(b"\n")
            if newline >= 0:
                return position + newline + 1
            position += len(block)
    return size


def _indexes(indexes: Sequence[int]) -> str:
    shown = ", ".join(map(str, indexes[:10]))
    return shown + (f" and {len(indexes) - 10} more" if len(indexes) > 10 else "")


__all__ = [
    "PARTS_FOLDER", "cut", "final_outputs", "locate_entry", "merge", "part_locations", "plan", "remove_parts",
    "run_part", "scan_grain", "survey", "version_from", "version_json",
]
