"""A candidate model beside the primary: shadow it on real traffic, or let it answer a share.

Settings (core.settings.CandidateSettings)::

    MODEL_URI=s3://models/churn/v7.joblib
    CANDIDATE_MODEL_URI=s3://models/churn/v8.joblib    CANDIDATE_MODEL_SHA256=<its digest>
    CANDIDATE_MODE=shadow | canary                      CANDIDATE_PERCENT=5   (canary: its share)
    CANDIDATE_KEY_HEADER=x-request-id                   (canary: which header keeps a client on one model)
    CANDIDATE_PROBABILITY_TOLERANCE=0.05                (shadow: a larger gap is a disagreement)

* ``shadow``: the primary answers every request; the candidate predicts the same rows in the same
  invocation, before the answer is sent (a serverless platform freezes or throttles work after
  it), and the two are compared (:func:`compare`): a row disagrees when its label differs or a
  class's probability differs by more than the tolerance. The counts go into the request's log
  line and the adapter's metrics; a separate ``shadow disagreement`` line names the request id
  and the row positions, never a row's values.
* ``canary``: ``percent`` of requests are answered by the candidate, chosen by a stable hash of
  the key header (:func:`canary_share`), so one client stays on one model; without the header the
  request id decides.

The candidate never delays or endangers the primary: it is loaded on a thread of its own after
the primary's first answer (or with the primary by PRELOAD_MODEL), and until it is loaded, or
after its load failed (retried every :data:`RETRY_SECONDS` in the background), the primary answers
everything and ``/model`` and ``/health`` say why.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any, NamedTuple

from core.errors import ServerlessMLError
from core.model import ModelDescription, ModelHolder
from core.settings import CandidateSettings, Settings

logger = logging.getLogger("serverless_ml.rollout")

RETRY_SECONDS = 60.0  # a candidate that failed to load is tried again after this long
SHADOW, CANARY = "shadow", "canary"
_ROWS_NAMED = 20  # a disagreement line names at most this many row positions


class Agreement(NamedTuple):
    """How two models' answers for the same rows compare."""

    rows: int  # rows compared
    disagreeing: int  # rows whose label differs or whose probabilities differ beyond the tolerance
    labels_differ: int  # rows whose label differs
    max_probability_gap: float | None  # the largest difference of one class's probability; None: not comparable
    positions: tuple[int, ...]  # the first disagreeing rows' positions (0-based), never their values


def compare(
    primary: ModelDescription, primary_answer: tuple[Any, Any],
    candidate: ModelDescription, candidate_answer: tuple[Any, Any], tolerance: float,
) -> Agreement:
    """Compare ``(predictions, probabilities)`` arrays of two models for the same rows.

    Probabilities are compared class by class where both models have them and know the same
    classes (in any order); otherwise labels alone decide."""
    import numpy as np

    differ, gaps = row_differences(primary, primary_answer, candidate, candidate_answer)
    disagreeing = differ if gaps is None else differ | (gaps > tolerance)
    positions = np.flatnonzero(disagreeing)
    return Agreement(
        rows=len(differ), disagreeing=len(positions), labels_differ=int(differ.sum()),
        max_probability_gap=None if gaps is None else (float(gaps.max()) if len(gaps) else 0.0),
        positions=tuple(positions[:_ROWS_NAMED].tolist()),
    )


def row_differences(
    primary: ModelDescription, primary_answer: tuple[Any, Any],
    candidate: ModelDescription, candidate_answer: tuple[Any, Any],
) -> tuple[Any, Any]:
    """Per row: whether the labels differ, and the largest gap of one class's probability (None
    where the probabilities cannot be compared)."""
    import numpy as np

    labels, probabilities = primary_answer
    other_labels, other_probabilities = candidate_answer
    if labels.dtype == other_labels.dtype:
        differ = np.asarray(labels != other_labels, dtype=bool).reshape(len(labels), -1).any(axis=1)
    else:  # e.g. int64 labels against strings: compared as Python values
        differ = np.array([a != b for a, b in zip(labels.tolist(), other_labels.tolist(), strict=True)], dtype=bool)
    if probabilities is None or other_probabilities is None:
        return differ, None
    order = _class_order(primary.classes, candidate.classes)
    if order is None:
        return differ, None
    gaps = np.abs(np.asarray(probabilities, dtype=np.float64) - np.asarray(other_probabilities, dtype=np.float64)[:, order])
    return differ, gaps.max(axis=1) if gaps.size else np.zeros(len(labels))


class Tally:
    """Agreement of two models over many rows (a file, in chunks): what ``serverless-ml compare``
    prints and a batch shadow run summarises. Rows are named by their line numbers only."""

    def __init__(self, tolerance: float, largest: int = 10) -> None:
        self.tolerance = tolerance
        self.rows = 0
        self.disagreeing = 0
        self.labels_differ = 0
        self.max_probability_gap: float | None = None
        self.confusion: dict[tuple[Any, Any], int] = {}  # (primary's label, candidate's label) -> rows
        self.disagreeing_lines: list[int] = []  # the first ones
        self._largest = largest
        self._gaps: list[tuple[float, int]] = []  # the largest gaps: (gap, line)

    def add(self, lines: list[int], primary: ModelDescription, primary_answer: tuple[Any, Any],
            candidate: ModelDescription, candidate_answer: tuple[Any, Any]) -> None:
        import heapq

        import numpy as np

        differ, gaps = row_differences(primary, primary_answer, candidate, candidate_answer)
        disagreeing = differ if gaps is None else differ | (gaps > self.tolerance)
        self.rows += len(differ)
        self.disagreeing += int(disagreeing.sum())
        self.labels_differ += int(differ.sum())
        room = _ROWS_NAMED - len(self.disagreeing_lines)
        if room > 0:
            self.disagreeing_lines.extend(lines[i] for i in np.flatnonzero(disagreeing)[:room].tolist())
        for pair in zip(primary_answer[0].tolist(), candidate_answer[0].tolist(), strict=True):
            key = (_key(pair[0]), _key(pair[1]))
            self.confusion[key] = self.confusion.get(key, 0) + 1
        if gaps is not None and len(gaps):
            top = float(gaps.max())
            self.max_probability_gap = top if self.max_probability_gap is None else max(self.max_probability_gap, top)
            candidates = np.argsort(gaps)[-self._largest:]
            for i in candidates.tolist():
                item = (float(gaps[i]), lines[i])
                if len(self._gaps) < self._largest:
                    heapq.heappush(self._gaps, item)
                elif item > self._gaps[0]:
                    heapq.heapreplace(self._gaps, item)

    @property
    def agreement(self) -> float:
        return 1.0 if not self.rows else (self.rows - self.disagreeing) / self.rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_compared": self.rows,
            "agreement": round(self.agreement, 6),
            "disagreeing_rows": self.disagreeing,
            "labels_differ": self.labels_differ,
            "probability_tolerance": self.tolerance,
            "max_probability_gap": self.max_probability_gap,
            "label_confusion": [
                {"primary": _plain(p), "candidate": _plain(c), "rows": n}
                for (p, c), n in sorted(self.confusion.items(), key=lambda item: (-item[1], str(item[0])))
            ],
            "largest_differences": [{"line": line, "probability_gap": gap} for gap, line in sorted(self._gaps, reverse=True)],
            "first_disagreeing_lines": self.disagreeing_lines,
        }


def _plain(value: Any) -> Any:
    return list(map(_plain, value)) if isinstance(value, tuple) else value


def _class_order(classes: Any, other: Any) -> list[int] | None:
    """Where each of ``classes`` sits in ``other``; None when they are not the same set."""
    if not isinstance(classes, list) or not isinstance(other, list) or len(classes) != len(other):
        return None
    where = {_key(value): i for i, value in enumerate(other)}
    try:
        return [where[_key(value)] for value in classes]
    except (KeyError, TypeError):
        return None


def _key(value: Any) -> Any:
    return tuple(map(_key, value)) if isinstance(value, list) else value


def canary_share(key: str) -> float:
    """Where ``key`` falls in [0, 100): the same for the same key in every process and on every
    cloud (BLAKE2b of its UTF-8 bytes), spread evenly over the range."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100.0


class Candidate:
    """The candidate model of this process, loaded off the request path. Thread-safe."""

    def __init__(self, settings: Settings, holder: ModelHolder | None = None) -> None:
        candidate = settings.candidate
        if candidate is None:
            raise ValueError("no candidate model is configured (CANDIDATE_MODEL_URI)")
        self.settings: CandidateSettings = candidate
        self.holder = holder if holder is not None else ModelHolder(settings.for_candidate())
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None
        self._next_try = 0.0

    @property
    def mode(self) -> str:
        return self.settings.mode

    def ready(self) -> ModelDescription | None:
        """The candidate if it is loaded; else None, after starting its load in the background
        when none is running and the last failure is old enough."""
        model = self.holder.loaded
        if model is None:
            self.start_loading()
        return model

    def start_loading(self) -> None:
        if self.holder.loaded is not None or time.monotonic() < self._next_try:
            return
        with self._lock:
            if (self._loader is not None and self._loader.is_alive()) or time.monotonic() < self._next_try:
                return
            self._loader = threading.Thread(target=self.load_now, name="candidate-model", daemon=True)
            self._loader.start()

    def load_now(self) -> bool:
        """Load the candidate here (the background thread, PRELOAD_MODEL); a failure is logged by
        the holder and sets the time of the next try, never raised."""
        try:
            self.holder.get()
        except ServerlessMLError:
            self._next_try = time.monotonic() + RETRY_SECONDS
            return False
        except Exception:  # a bug in a candidate's load must not reach the primary's requests
            logger.exception("candidate model load failed unexpectedly")
            self._next_try = time.monotonic() + RETRY_SECONDS
            return False
        return True

    def answers(self, key: str) -> bool:
        """Whether the candidate answers the request with this key (canary mode)."""
        return self.settings.mode == CANARY and canary_share(key) < self.settings.percent

    def state(self) -> str:
        if self.holder.loaded is not None:
            return "loaded"
        if self.holder.last_error is not None:
            return "load_failed"
        return "loading" if self._loader is not None and self._loader.is_alive() else "not_loaded"

    def view(self, with_model: bool) -> dict[str, Any]:
        """What /model (``with_model``) and /health say of the candidate."""
        settings = self.settings
        out: dict[str, Any] = {
            "mode": settings.mode, "state": self.state(), "model_uri": settings.model_uri.display,
        }
        if settings.mode == CANARY:
            out.update(percent=settings.percent, key_header=settings.key_header)
        else:
            out["probability_tolerance"] = settings.probability_tolerance
        model = self.holder.loaded
        if model is not None:
            out["model_version"] = model.version
            if with_model:
                out["model"] = model.public_view()
        error = self.holder.last_error
        if model is None and error is not None:
            out["error"] = {"code": error.code, "message": error.message}
        return out
