"""A batch run with a candidate model in shadow mode: judge the candidate on real files before
any traffic moves.

With ``CANDIDATE_MODEL_URI`` and ``CANDIDATE_MODE=shadow`` (the default mode), a batch run
(a storage trigger, ``serverless-ml batch``) predicts every row with the primary exactly as
without a candidate, and then the same chunk's good rows with the candidate: the primary's
rows when the two models share an input schema, else the same lines read a second time, typed by
the candidate's own schema (a second stream over the same version of the input). Two more
outputs are published beside the predictions (core.storage.locations.shadow_locations)::

    predictions/<input key>.candidate.jsonl          the candidate's predictions, in the predictions' line format
    predictions/<input key>.candidate-summary.json   how far it agrees (below)

Both are published by core/batch/publish.py with the predictions and the errors: atomically, on
the same conditions, before the predictions, the input's version in their metadata, and
byte-identical for a repeated run (nothing in them depends on time or the machine). The summary::

    {"mode": "shadow", "candidate": "compared", "error": null,
     "primary_version": "sha256:...", "candidate_version": "sha256:...", "input_version": "versionId ...",
     "lines_read": 120000, "refused_by_primary": 2, "refused_by_candidate": 0,
     "rows_compared": 119998, "agreement": 0.9931, "disagreeing_rows": 828, "labels_differ": 311,
     "probability_tolerance": 0.05, "max_probability_gap": 0.61,
     "label_confusion": [{"primary": 0, "candidate": 0, "rows": 60211}, ...],
     "largest_differences": [{"line": 8817, "probability_gap": 0.61}, ...],
     "first_disagreeing_lines": [14, 97, ...]}

Rows are named by line number only, never by their values. The counting is the one
``serverless-ml compare`` prints (core/batch/compare.py, core.rollout.Tally); a line the
candidate refuses (cannot read or predict) is counted in ``refused_by_candidate`` and never
costs the primary's row.

The candidate never fails the run: when it cannot be loaded, ``candidate`` is ``load_failed``;
when it fails while predicting (or cannot read the file: a CSV header without its features),
``failed``; ``error`` says why, the figures are those up to then (``agreement`` is null when
no row was compared), no candidate predictions are
published and an earlier run's are removed, so that they never sit beside predictions they were
not made with. A run with no candidate leaves shadow outputs of an earlier run as they are (their
metadata names the input version they answer).

A fanned-out run (core/batch/fanout.py) does not carry a candidate: planning a file of more than
one part with a shadow candidate is refused (SettingsError), and a file of one part runs whole,
with its shadow outputs.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from contextlib import ExitStack
from typing import Any

from core.batch.compare import Captured, ComparedFile, add_chunk
from core.batch.outputs import OutputFiles
from core.batch.readers import BatchInputError, RowFailure
from core.batch.steps import open_input, reader_for
from core.errors import ServerlessMLError
from core.model import ModelDescription, ModelHolder
from core.request.rows import RowSchema
from core.rollout import SHADOW, Tally
from core.settings import Settings
from core.storage import StorageURI
from core.storage.locations import OutputLocations, shadow_locations
from core.storage.versions import ObjectVersion

logger = logging.getLogger("serverless_ml.batch")

COMPARED, LOAD_FAILED, FAILED = "compared", "load_failed", "failed"

# One holder per candidate per process, as the primary has one: a warm function loads its
# candidate once, not once per file. A holder whose load failed tries again on the next run.
_holders: dict[Settings, ModelHolder] = {}
_holders_lock = threading.Lock()


def candidate_holder_for(settings: Settings) -> ModelHolder:
    """This process's holder of the candidate of ``settings``."""
    key = settings.for_candidate()
    with _holders_lock:
        holder = _holders.get(key)
        if holder is None:
            holder = _holders[key] = ModelHolder(key)
        return holder


class Shadow:
    """The candidate's side of one batch run: it predicts after the primary, chunk by chunk,
    into its own temporary predictions file, and tallies the agreement. A context manager: its
    temporary files and its own input stream are closed with it."""

    def __init__(self, settings: Settings, primary: ModelDescription, holder: Any, targets: OutputLocations) -> None:
        candidate = settings.candidate
        assert candidate is not None and candidate.mode == SHADOW, "a shadow run needs a candidate in shadow mode"
        self.settings = settings
        self.primary = primary
        self.locations = shadow_locations(targets)
        self.compared = ComparedFile(Tally(candidate.probability_tolerance))
        self.state = COMPARED
        self.error: dict[str, str] | None = None  # why the candidate is missing: {"code", "message"}
        self.model: ModelDescription | None = None  # None once it failed: the primary goes on alone
        self.candidate_version: str | None = None
        self.files: OutputFiles | None = None
        self._captured: Captured | None = None
        self._chunks: Any = None  # the candidate's own chunks, when it reads the file by its own schema
        self._stack = ExitStack()
        try:
            self.model = holder.get()
        except ServerlessMLError as exc:  # logged by the holder; the primary's run goes on
            self._stop(LOAD_FAILED, exc.code, exc.message)
        except Exception:  # a bug in a candidate's load must not cost the primary's outputs either
            logger.exception("candidate model load failed unexpectedly")
            self._stop(LOAD_FAILED, ServerlessMLError.code, "the candidate model failed to load; the error was logged")
        else:
            self.candidate_version = self.model.version

    def start(self, outputs: OutputFiles, source: StorageURI, version: ObjectVersion | None, found: Any,
              store_for: Any) -> tuple[Any, Any]:
        """Called once the primary's input is open (at ``version``): what the primary writes to,
        and its ``on_chunk`` step (core.batch.engine.predict_chunks)."""
        if self.model is None:
            return outputs, None
        self.files = self._stack.enter_context(OutputFiles())
        if self.model.schema != self.primary.schema:
            self._chunks = self._own_chunks(source, version, found, store_for)
        self._captured = Captured(outputs)
        return self._captured, self.add

    def _own_chunks(self, source: StorageURI, version: ObjectVersion | None, found: Any, store_for: Any) -> Any:
        """The same version of the input again, read by the candidate's schema: its chunks are cut
        after the same lines as the primary's, so they pair up."""
        model = self.model
        assert model is not None
        stream, _ = open_input(source, version, self.settings.storage_timeout_seconds, store_for)
        self._stack.callback(stream.close)
        if found.gzipped:
            import gzip

            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        reader = reader_for(found.kind, RowSchema(model.schema), by_position=model.feature_names_source == "generated")
        return iter(reader.chunks(stream, self.settings.batch_chunk_rows))

    def add(self, parsed: Any, refused: list[RowFailure]) -> None:
        """After the primary wrote ``parsed`` (and refused ``refused`` of its rows): the candidate
        predicts the rest and the chunk is counted."""
        assert self._captured is not None
        primary = self._captured.take(refused)
        if self.model is None:  # it failed earlier in this run: the primary goes on alone
            return
        try:
            own = parsed if self._chunks is None else next(self._chunks)
            add_chunk(self.compared, (self.primary, self.model), parsed, own, primary=primary, candidate_sink=self.files)
        except BatchInputError as exc:
            self._stop(FAILED, exc.code, f"the candidate cannot read this file: {exc.message}")
        except StopIteration:  # cannot be, as the chunks pair up; but never the primary's failure
            self._stop(FAILED, BatchInputError.code,
                       f"the candidate's reading of the file ended before line {parsed.last_line}")
        except ServerlessMLError as exc:
            self._stop(FAILED, exc.code, exc.message)

    def _stop(self, state: str, code: str, message: str) -> None:
        self.state, self.model = state, None
        self.error = {"code": code, "message": message}
        if state == FAILED:  # a load failure is logged by the model holder already
            logger.warning("batch shadow stopped", extra={"fields": {"error_code": code, "reason": message}})

    def finish(self, input_version: str | None) -> list[tuple[StorageURI, str | None]]:
        """The outputs to publish with the predictions (core.batch.publish's ``extras``): the
        candidate's predictions (None when it did not predict them all: removed instead), then
        the summary."""
        candidate_file = None
        if self.files is not None:
            try:
                self.files.finish()
            except ServerlessMLError as exc:  # its writer process failed: the candidate's lines are incomplete
                if self.state == COMPARED:
                    self._stop(FAILED, exc.code, exc.message)
            if self.state == COMPARED:
                candidate_file = self.files.predictions_path
        folder = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="serverless-ml-shadow-"))
        summary_path = os.path.join(folder, "candidate-summary.json")
        with open(summary_path, "w", encoding="utf-8", newline="\n") as out:
            # indented: a person reads it; the same figures always give the same bytes
            out.write(json.dumps(self.summary(input_version), indent=2, ensure_ascii=False) + "\n")
        figures = self.compared.tally
        logger.info("batch shadow compared", extra={"fields": {
            "candidate": self.state, "candidate_version": self.candidate_version,
            "rows_compared": figures.rows, "agreement": self._agreement(),
            "disagreeing_rows": figures.disagreeing, "max_probability_gap": figures.max_probability_gap,
            "refused_by_candidate": self.compared.refused_by_candidate,
            "error_code": self.error["code"] if self.error else None}})
        return [(self.locations.candidate, candidate_file), (self.locations.summary, summary_path)]

    def summary(self, input_version: str | None) -> dict[str, Any]:
        figures = self.compared.as_dict()
        figures["agreement"] = self._agreement()
        return {
            "mode": SHADOW, "candidate": self.state,
            "error": self.error,
            "primary_version": self.primary.version, "candidate_version": self.candidate_version,
            "input_version": input_version, **figures,
        }

    def _agreement(self) -> float | None:
        """None when no row was compared: a candidate that saw nothing has not agreed."""
        tally = self.compared.tally
        return round(tally.agreement, 6) if tally.rows else None

    def result_fields(self) -> dict[str, Any]:
        """What the run's BatchResult says of the shadow."""
        return {
            "candidate_uri": str(self.locations.candidate) if self.state == COMPARED else None,
            "summary_uri": str(self.locations.summary),
            "shadow": {"candidate": self.state, "candidate_version": self.candidate_version,
                       "rows_compared": self.compared.tally.rows, "agreement": self._agreement(),
                       "error": None if self.error is None else self.error["message"]},
        }

    def __enter__(self) -> Shadow:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stack.close()


__all__ = ["COMPARED", "FAILED", "LOAD_FAILED", "Shadow", "candidate_holder_for"]
