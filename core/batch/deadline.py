"""A run that must end before its platform stops it: stop cleanly between chunks instead.

An adapter whose platform gives an invocation a time limit passes a :class:`Deadline` to
:func:`core.batch.engine.run_batch`: a callable that tells the seconds left (on Lambda,
``context.get_remaining_time_in_millis() / 1000``) and the setting that lets a file too large for
one invocation be split across several (fan-out). Core knows no provider: it only asks how much
time is left.

After each chunk the engine estimates what the rest of the file needs at the pace so far (the
input's bytes left over the bytes read per second), plus a margin for publishing: twice the
slowest chunk and :data:`PUBLISH_SECONDS`. When that is more than the time left, it stops: nothing
is published (the outputs are temporary files until then), and :class:`BatchTimeLimit` says which
file, how many rows were done, and which setting enables fan-out. A file whose size is not known
(a store that does not tell it) is stopped only when less than the margin is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from core.errors import ServerlessMLError

# Seconds kept for closing the outputs and publishing them (a few requests; a multipart upload of
# a large output takes longer, and the slowest chunk's share of the margin grows with the chunks).
PUBLISH_SECONDS = 10.0


class BatchTimeLimit(ServerlessMLError):
    """The run cannot finish its file before the invocation's time limit; it stopped between
    chunks and published nothing. Not retried: every retry would meet the same limit."""

    code = "batch_time_limit"


class Deadline(NamedTuple):
    remaining_seconds: Callable[[], float]
    fanout_setting: str  # what a user sets so that such a file is split, e.g. "BATCH_FANOUT_STATE_MACHINE_ARN"


class Pace:
    """The run's progress against its deadline, checked after each chunk."""

    def __init__(self, deadline: Deadline, input_display: str, size: int | None) -> None:
        self.deadline = deadline
        self.input = input_display
        self.size = size
        self.started = time.perf_counter()
        self._last = self.started
        self._slowest = 0.0

    def check(self, rows_done: int, bytes_read: int) -> None:
        """Raise BatchTimeLimit when the rest of the file cannot be done in the time left."""
        now = time.perf_counter()
        self._slowest = max(self._slowest, now - self._last)
        self._last = now
        elapsed = now - self.started
        margin = 2 * self._slowest + PUBLISH_SECONDS
        left_bytes = max(0, self.size - bytes_read) if self.size is not None else 0
        rest = left_bytes * elapsed / bytes_read if bytes_read and left_bytes else 0.0
        needed = rest + margin
        remaining = self.deadline.remaining_seconds()
        if remaining >= needed:
            return
        # the reader reads ahead in blocks: a share of the bytes says little of a small file
        share = f", {bytes_read / self.size:.0%} of its bytes" if self.size and bytes_read < self.size else ""
        raise BatchTimeLimit(
            f"{self.input} cannot be finished in this invocation: {rows_done} rows were done in {elapsed:.0f} s"
            f"{share}, and the rest needs about {needed:.0f} s with {remaining:.0f} s left; nothing was published. "
            f"A file this large is split across invocations when {self.deadline.fanout_setting} is set"
        )


__all__ = ["PUBLISH_SECONDS", "BatchTimeLimit", "Deadline", "Pace"]
